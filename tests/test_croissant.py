"""The dataset card of ``make data``: Croissant 1.1 with the RAI fields, and the datasheet."""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import hashlib
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from vignettes.__main__ import main
from vignettes.croissant import (
    CARD,
    CONFORMS_TO,
    DATASHEET,
    DISTORTIONS,
    NOT_CLINICAL,
    RAI_PROPERTIES,
    columns,
    croissant,
    knowledge_sha256,
    structural_problems,
)
from vignettes.schema import FIELD_NAMES, FIELDS, LABELS, LATENTS

N, SEED, K = 300, 11, 3
EPOCH = 1_767_225_600  # 2026-01-01T00:00:00Z
DATA_TYPE = {"int": "sc:Integer", "float": "sc:Float", "bool": "sc:Boolean", "category": "sc:Text"}
DTYPE_TYPE = {"Int64": "sc:Integer", "int64": "sc:Integer", "Float64": "sc:Float"}
DTYPE_TYPE |= {"boolean": "sc:Boolean", "bool": "sc:Boolean", "category": "sc:Text"}


def _run(out: Path, *extra: str) -> str:
    stdout = io.StringIO()
    argv = ["--n", str(N), "--seed", str(SEED), "--out", str(out), "--narratives", str(K), *extra]
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(stdout):
        patch.setenv("SOURCE_DATE_EPOCH", str(EPOCH))
        assert main(argv) == 0
    return stdout.getvalue()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """``make data`` with a small N: the output directory and what it printed."""
    out = tmp_path_factory.mktemp("data")
    return out, _run(out)


@pytest.fixture(scope="module")
def card(run: tuple[Path, str]) -> dict[str, Any]:
    return json.loads((run[0] / CARD).read_text(encoding="utf-8"))


def _cases(card: dict[str, Any]) -> dict[str, Any]:
    (cases,) = [rs for rs in card["recordSet"] if rs["@id"] == "cases"]
    return cases


def _file_objects(card: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in card["distribution"] if r["@type"] == "cr:FileObject"]


def test_the_cli_writes_the_card_and_the_datasheet(run: tuple[Path, str]) -> None:
    out, printed = run
    assert (out / CARD).is_file() and (out / DATASHEET).is_file()
    assert str(out / CARD) in printed and str(out / DATASHEET) in printed


def test_the_card_is_croissant_1_1(card: dict[str, Any]) -> None:
    assert card["conformsTo"] == CONFORMS_TO
    assert card["@type"] == "sc:Dataset"
    assert card["@context"]["cr"] == "http://mlcommons.org/croissant/"
    assert card["@context"]["rai"] == "http://mlcommons.org/croissant/RAI/"
    assert card["datePublished"] == "2026-01-01"  # from SOURCE_DATE_EPOCH
    assert structural_problems(card) == []


def test_the_record_set_is_the_schema_field_for_field(
    run: tuple[Path, str], card: dict[str, Any]
) -> None:
    fields = {f["name"]: f for f in _cases(card)["field"]}
    assert list(fields) == ["case_id", "setting", *FIELD_NAMES, *LABELS, *LATENTS, "split"]
    for field in FIELDS:
        described = fields[field.name]
        assert described["dataType"] == DATA_TYPE[field.kind], field.name
        assert described["description"].startswith(field.question), field.name
        assert field.allowed() in described["description"], field.name
        assert ("red-flag sign" in described["description"]) == field.red_flag, field.name
        assert described["source"]["extract"] == {"column": field.name}
    for label in LABELS:
        assert "cr:Label" in fields[label]["dataType"]
    # ... and the data on disk agree: same columns, in order, of the declared types.
    frame = pd.read_parquet(run[0] / "validation.parquet")
    assert list(frame.columns) == list(fields)[:-1]
    for name, dtype in frame.dtypes.items():
        declared = fields[str(name)]["dataType"]
        declared = declared[0] if isinstance(declared, list) else declared
        assert DTYPE_TYPE[str(dtype)] == declared, name


def test_every_file_written_is_in_the_card_with_its_sha256(
    run: tuple[Path, str], card: dict[str, Any]
) -> None:
    out, _ = run
    objects = _file_objects(card)
    written = {p.name for p in out.iterdir()} - {CARD, DATASHEET}
    assert {o["contentUrl"] for o in objects} == written
    for o in objects:
        data = (out / o["contentUrl"]).read_bytes()
        assert o["sha256"] == hashlib.sha256(data).hexdigest(), o["contentUrl"]
        assert o["contentSize"] == f"{len(data)} B"
    (file_set,) = [r for r in card["distribution"] if r["@type"] == "cr:FileSet"]
    assert file_set["includes"] == ["train.parquet", "validation.parquet", "test.parquet"]


def test_the_rai_fields_say_synthetic_biased_and_not_for_clinical_use(
    card: dict[str, Any],
) -> None:
    for key in RAI_PROPERTIES:
        assert card[key], key
    assert "synthetic" in " ".join(card["rai:dataCollectionType"]).lower()
    assert card["rai:dataBiases"] == list(DISTORTIONS)
    assert NOT_CLINICAL in card["rai:dataUseCases"] and NOT_CLINICAL in card["rai:dataLimitations"]
    assert "research" in card["rai:dataUseCases"][0].lower()
    assert knowledge_sha256() in card["rai:dataCollectionRawData"]
    assert card["prov:wasGeneratedBy"]["prov:used"]["sha256"] == knowledge_sha256()


def test_the_datasheet_names_the_knowledge_base_and_says_not_for_clinical_use(
    run: tuple[Path, str], card: dict[str, Any]
) -> None:
    out, _ = run
    sheet = (out / DATASHEET).read_text(encoding="utf-8")
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["knowledge_sha256"] == knowledge_sha256()
    assert f"Knowledge-base version: `vignettes/knowledge.toml` sha256 `{knowledge_sha256()}`" in (
        sheet
    )
    assert "Not for clinical use" in sheet
    assert f"--n {N} --seed {SEED} --setting primary_care" in sheet
    for o in _file_objects(card):
        assert f"| `{o['contentUrl']}` |" in sheet and o["sha256"] in sheet
    for column in columns():
        assert f"| `{column.name}` |" in sheet
    for distortion in DISTORTIONS:
        assert distortion in sheet


def test_the_card_is_reproducible(run: tuple[Path, str], tmp_path: Path) -> None:
    _run(tmp_path)
    assert (tmp_path / CARD).read_bytes() == (run[0] / CARD).read_bytes()
    assert (tmp_path / DATASHEET).read_bytes() == (run[0] / DATASHEET).read_bytes()


def test_fhir_output_gets_a_card_of_its_files(tmp_path: Path) -> None:
    printed = _run(tmp_path, "--format", "fhir")
    card = json.loads((tmp_path / CARD).read_text(encoding="utf-8"))
    assert str(tmp_path / DATASHEET) in printed
    assert structural_problems(card) == []
    urls = {o["contentUrl"] for o in _file_objects(card)}
    on_disk = {p.relative_to(tmp_path).as_posix() for p in (tmp_path / "fhir").rglob("*.ndjson")}
    assert "fhir/train/Patient.ndjson" in on_disk and on_disk <= urls
    assert card["recordSet"] == []  # FHIR resources are not a table of columns
    assert "Not for clinical use" in (tmp_path / DATASHEET).read_text(encoding="utf-8")
    python = _validator_python()
    if python is not None:  # mlcroissant accepts the card's metadata, with nothing to read
        done = subprocess.run([python, str(VALIDATOR), str(tmp_path / CARD)], capture_output=True,
                              text=True, timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stdout
        assert json.loads(done.stdout)["records"] is None


def test_a_parquet_file_whose_columns_left_the_schema_is_refused(
    run: tuple[Path, str], tmp_path: Path
) -> None:
    out, _ = run
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    pd.read_parquet(out / "train.parquet").drop(columns="fever").to_parquet(
        tmp_path / "train.parquet"
    )
    with pytest.raises(ValueError, match="differ from the schema"):
        croissant(
            [tmp_path / "train.parquet"], manifest, root=tmp_path, date_published=dt.date.today()
        )


@pytest.mark.parametrize(
    ("break_it", "problem"),
    [
        (lambda c: c.pop("conformsTo"), "missing conformsTo"),
        (lambda c: c.update(conformsTo="http://mlcommons.org/croissant/1.0"), "conformsTo"),
        (lambda c: c.pop("@context"), "missing @context"),
        (lambda c: c["@context"].pop("rai"), "@context: rai"),
        (lambda c: c.pop("rai:dataBiases"), "missing rai:dataBiases"),
        (lambda c: c.update({"rai:dataUseCases": []}), "missing rai:dataUseCases"),
        (lambda c: c.pop("datePublished"), "missing datePublished"),
        (lambda c: c["distribution"][0].update(sha256="abc"), "sha256 is not 64 hex digits"),
        (lambda c: c["recordSet"][1]["field"][0].pop("dataType"), "no dataType"),
        (lambda c: c["distribution"].pop(), "source parquet-files not found"),
    ],
)
def test_the_structural_check_finds_what_is_missing(
    card: dict[str, Any], break_it: Any, problem: str
) -> None:
    broken = copy.deepcopy(card)
    break_it(broken)
    assert any(problem in p for p in structural_problems(broken)), structural_problems(broken)


ROOT = Path(__file__).resolve().parents[1]
VALIDATOR = ROOT / "vignettes" / "croissant_validate.py"
MLCROISSANT_ABSENT = (
    "no mlcroissant: it runs in its own environment (pandas-stubs, which it brings, would make "
    "mypy fail in .venv); `make test` creates .venv-croissant, or set MLCROISSANT_PYTHON"
)


def _validator_python() -> str | None:
    """The interpreter that has mlcroissant: MLCROISSANT_PYTHON, .venv-croissant, or this one."""
    candidates = [os.environ.get("MLCROISSANT_PYTHON"), str(ROOT / ".venv-croissant/bin/python")]
    for python in candidates:
        if python and Path(python).is_file():
            return python
    return sys.executable if importlib.util.find_spec("mlcroissant") else None


def test_mlcroissant_validates_the_card_and_reads_its_records(run: tuple[Path, str]) -> None:
    python = _validator_python()
    if python is None:
        if os.environ.get("SCIATICA_REQUIRE_MLCROISSANT"):  # set by `make test`
            pytest.fail(MLCROISSANT_ABSENT)
        pytest.skip(MLCROISSANT_ABSENT)
    out, _ = run
    done = subprocess.run(
        [python, str(VALIDATOR), str(out / CARD)], capture_output=True, text=True, timeout=300
    )
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert done.returncode == 0, summary
    assert summary["warnings"] == []
    assert summary["records"] == N
    assert summary["splits"] == {"test": 30, "train": 240, "validation": 30}
    assert summary["case_ids"] == {"distinct": N, "min": 0, "max": N - 1}


def test_the_validator_refuses_a_card_that_does_not_match_its_files(
    run: tuple[Path, str], tmp_path: Path
) -> None:
    """The check can fail: a field read from a column the Parquet files lack is refused."""
    python = _validator_python()
    if python is None:
        pytest.skip(MLCROISSANT_ABSENT)
    out, _ = run
    copy_of = shutil.copytree(out, tmp_path / "data")
    broken = json.loads((copy_of / CARD).read_text(encoding="utf-8"))
    _cases(broken)["field"][0]["source"]["extract"] = {"column": "no_such_column"}
    (copy_of / CARD).write_text(json.dumps(broken), encoding="utf-8")
    done = subprocess.run(
        [python, str(VALIDATOR), str(copy_of / CARD)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 1
    assert "ReadFields(cases)" in json.loads(done.stdout)["error"]
