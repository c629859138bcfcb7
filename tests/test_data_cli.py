"""``python -m vignettes`` (``make data``): splits, dtypes, narratives and manifest on disk."""

import contextlib
import io
import json
import runpy
import sys
from pathlib import Path

import pandas as pd
import pytest

import vignettes
from tests.frames import assert_frames_identical
from vignettes.__main__ import main, plan_splits
from vignettes.narrative import narrate
from vignettes.schema import FIELDS

N, SEED, K = 1_000, 5, 7
SIZES = {"train": 800, "validation": 100, "test": 100}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Run the CLI once; return the output directory and what it printed."""
    out = tmp_path_factory.mktemp("data")
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["--n", str(N), "--seed", str(SEED), "--out", str(out), "--narratives", str(K)])
    assert code == 0
    return out, stdout.getvalue()


@pytest.fixture(scope="module")
def splits(run: tuple[Path, str]) -> dict[str, pd.DataFrame]:
    out, _ = run
    return {name: pd.read_parquet(out / f"{name}.parquet") for name in SIZES}


def test_split_sizes(splits: dict[str, pd.DataFrame]) -> None:
    assert {name: len(frame) for name, frame in splits.items()} == SIZES


def test_splits_do_not_overlap_and_cover_the_dataset(splits: dict[str, pd.DataFrame]) -> None:
    ids = {name: set(frame["case_id"]) for name, frame in splits.items()}
    assert not ids["train"] & ids["validation"]
    assert not ids["train"] & ids["test"]
    assert not ids["validation"] & ids["test"]
    assert set().union(*ids.values()) == set(range(N))


def test_splits_are_one_seeded_dataset(splits: dict[str, pd.DataFrame]) -> None:
    whole = pd.concat([splits[name] for name in SIZES], ignore_index=True)
    # Equal frames, dtypes included: Parquet round-trips categories and nullable booleans.
    assert_frames_identical(whole, vignettes.generate(N, seed=SEED))


def test_dtypes_survive_parquet(splits: dict[str, pd.DataFrame]) -> None:
    frame = splits["validation"]
    for field in FIELDS:
        column = frame[field.name]
        if field.kind == "category":
            assert isinstance(column.dtype, pd.CategoricalDtype), field.name
            assert list(column.cat.categories) == list(field.values)
        elif field.kind == "bool":
            assert column.dtype == "boolean", field.name
    assert frame["reflex_changes"].isna().any()  # <NA> answers survive as <NA>
    assert list(frame["cause"].cat.categories) == list(vignettes.CAUSES)
    assert frame["red_flag"].dtype == bool


def test_narratives_written(run: tuple[Path, str]) -> None:
    out, _ = run
    records = [json.loads(line) for line in (out / "narratives.jsonl").read_text().splitlines()]
    assert [r["case_id"] for r in records] == list(range(K))
    assert all(set(r) == {"case_id", "narrative", "cause", "red_flag"} for r in records)
    sample = vignettes.generate(K, seed=SEED)
    assert [r["narrative"] for r in records] == list(narrate(sample, seed=SEED))
    assert [r["cause"] for r in records] == list(sample["cause"].astype(str))
    assert [r["red_flag"] for r in records] == list(sample["red_flag"])
    markdown = (out / "narratives.md").read_text()
    assert markdown.count("\n## Case ") == K
    assert records[0]["narrative"] in markdown


def test_manifest(run: tuple[Path, str]) -> None:
    out, _ = run
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == SEED and manifest["setting"] == "primary_care"
    assert manifest["n_total"] == N
    assert {name: s["rows"] for name, s in manifest["splits"].items()} == SIZES
    for split in manifest["splits"].values():
        assert (out / split["file"]).is_file()
    assert "synthetic" in manifest["note"].lower()
    assert manifest["package_version"]
    assert manifest["narratives"]["count"] == K


def test_prints_where_it_wrote(run: tuple[Path, str]) -> None:
    out, printed = run
    assert "generating train" in printed
    for name in ("train.parquet", "validation.parquet", "test.parquet", "manifest.json"):
        assert str(out / name) in printed
    assert str(out / "narratives.md") in printed and str(out / "narratives.jsonl") in printed


def test_plan_splits_is_contiguous() -> None:
    planned = plan_splits(1_001, 0.1, 0.2)
    assert [(s.start, s.stop) for s in planned] == [(0, 701), (701, 801), (801, 1_001)]
    with pytest.raises(ValueError, match="validation"):
        plan_splits(4, 0.1, 0.5)


def test_refuses_a_dataset_too_small_to_split(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--n", "5", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "--n 5" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_help_exits_zero(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    # run_module takes the same path as `python -m vignettes`, without a second interpreter.
    monkeypatch.setattr(sys, "argv", ["vignettes", "--help"])
    monkeypatch.delitem(sys.modules, "vignettes.__main__")  # imported above; runpy wants it fresh
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("vignettes", run_name="__main__", alter_sys=True)
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    assert "--narratives" in printed and "(default: 20)" in printed
