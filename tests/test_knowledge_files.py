"""Both knowledge files go through one checker (:mod:`vignettes.toml_check`): every load error
names the file, the table and the key, and a misspelt name gets a "did you mean".

Each test edits a copy of the packaged file as a reviewer might by mistake.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vignettes.article import ARTICLE_PATH, load_article
from vignettes.knowledge import KNOWLEDGE_PATH, load_knowledge
from vignettes.toml_check import KnowledgeError

LOADERS = {
    "knowledge.toml": (KNOWLEDGE_PATH, load_knowledge),
    "article.toml": (ARTICLE_PATH, load_article),
}


def edited(tmp_path: Path, name: str, edit) -> Path:
    source, _ = LOADERS[name]
    path = tmp_path / name
    path.write_text(edit(source.read_text()))
    return path


def refused(name: str, path: Path) -> str:
    _, load = LOADERS[name]
    with pytest.raises(KnowledgeError) as caught:
        load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: "), message
    assert "\n" not in message
    return message


def _first_table(text: str) -> str:
    found = re.search(r"^\[([a-z_.]+)\]$", text, flags=re.M)
    assert found is not None
    return found[1]


@pytest.mark.parametrize("name", list(LOADERS))
def test_a_table_declared_twice_names_the_file_line_and_table(name: str, tmp_path: Path) -> None:
    table = _first_table(LOADERS[name][0].read_text())
    path = edited(tmp_path, name, lambda text: text + f"\n[{table}]\nsource = 'again'\n")
    message = refused(name, path)
    line = len(LOADERS[name][0].read_text().splitlines()) + 2
    assert f"line {line}" in message and f"table [{table}]" in message, message
    assert "not valid TOML" in message


@pytest.mark.parametrize("name", list(LOADERS))
def test_a_syntax_error_names_the_file_line_table_and_key(name: str, tmp_path: Path) -> None:
    text = LOADERS[name][0].read_text()
    table = _first_table(text)
    header = f"[{table}]\n"
    path = edited(tmp_path, name, lambda t: t.replace(header, header + "oops = yes\n", 1))
    message = refused(name, path)
    assert f"[{table}], key 'oops'" in message, message
    line = text.splitlines().index(header.strip()) + 2
    assert f"line {line}" in message


@pytest.mark.parametrize("name", list(LOADERS))
def test_an_unknown_top_level_table_gets_a_did_you_mean(name: str, tmp_path: Path) -> None:
    table = _first_table(LOADERS[name][0].read_text()).split(".")[0]
    misspelt = table[:-1] + table[-1] * 2  # e.g. "priorss"
    path = edited(tmp_path, name, lambda text: text + f"\n[{misspelt}]\nsource = 'typo'\n")
    message = refused(name, path)
    assert misspelt in message and f"did you mean {table!r}" in message, message


def test_a_string_among_the_mri_background_ages_names_the_key_and_item(tmp_path: Path) -> None:
    path = edited(
        tmp_path,
        "article.toml",
        lambda text: re.sub(r"^ages = \[20, ", 'ages = ["20", "x", ', text, count=1, flags=re.M),
    )
    message = refused("article.toml", path)
    assert "mri_background.ages: item 0: expected a number, got '20'" in message, message


def test_a_value_error_of_the_knowledge_parser_names_the_file(tmp_path: Path) -> None:
    path = edited(
        tmp_path,
        "knowledge.toml",
        lambda text: text.replace("[female]\n", "[female]\nspine = 'x'\n", 1),
    )
    message = refused("knowledge.toml", path)
    assert "[female]" in message


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "article.toml"
    path.write_bytes(b"\xff\xfe not text")
    assert "cannot be read" in refused("article.toml", path)


def test_the_packaged_files_still_load() -> None:
    assert load_article().advice and load_knowledge().prior.shape[1] == 7
