"""One answer, one shape: the pyfunc, the CLI's ``--json`` and ``predict_batch`` agree.

HTTP's side (``make serve`` answers the CLI's JSON) is in ``tests/test_mlflow_serve.py``.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pandas as pd
import pytest

import serve
import vignettes
from model.triage import LIST_COLUMNS, OUTPUT_COLUMNS
from serve.cli import main
from vignettes.schema import FIELD_NAMES

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def predictor(trained: Any) -> serve.Predictor:
    return serve.load()


@pytest.fixture(autouse=True)
def model_cache(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCIATICA_TRIAGE_CACHE", str(tmp_path / "cache"))


def records(n: int, seed: int) -> list[dict[str, Any]]:
    frame = vignettes.generate(n, seed=seed)[list(FIELD_NAMES)]
    rows = json.loads(frame.to_json(orient="records"))
    return [{k: v for k, v in row.items() if v is not None} for row in rows]


def test_predict_batch_list_columns_are_lists(predictor: serve.Predictor) -> None:
    batch = predictor.predict_batch(vignettes.generate(50, seed=9))
    for name in LIST_COLUMNS:
        assert all(isinstance(cell, list) for cell in batch[name]), name
    assert all(isinstance(c, str) for cell in batch["differential"] for c in cell)


@pytest.mark.parametrize("n", [3, 40])  # the one-case path and the vectorised path
def test_the_cli_json_is_the_pyfunc_records(
    predictor: serve.Predictor, n: int, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    import mlflow

    cases = records(n, seed=10 + n)
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(cases)))
    assert main(["predict", "--json", "-"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert list(printed) == ["predictions"]
    pyfunc = mlflow.pyfunc.load_model("models:/sciatica-triage@champion").predict(cases)
    assert printed["predictions"] == json.loads(json.dumps(pyfunc))
    for row in printed["predictions"]:
        assert list(row) == list(OUTPUT_COLUMNS)


def test_the_cli_answers_an_empty_list_with_no_predictions(
    monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("[]"))
    assert main(["predict", "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out) == {"predictions": []}


def test_a_csv_and_a_parquet_file_give_the_json_files_answers(
    predictor: serve.Predictor, tmp_path: Any, capsys: Any
) -> None:
    frame = vignettes.generate(12, seed=12)
    frame.to_parquet(tmp_path / "cases.parquet")
    answers = []
    for name in ("cases.parquet",):
        assert main(["predict", "--json", str(tmp_path / name)]) == 0
        answers.append(json.loads(capsys.readouterr().out)["predictions"])
    cases = records(12, seed=12)
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    spelt = {True: "true", False: "false"}  # CSV cells spell booleans as JSON does
    text = pd.DataFrame(cases).map(lambda v: spelt[v] if isinstance(v, bool) else v)
    text.to_csv(tmp_path / "cases.csv", index=False)
    for name in ("cases.json", "cases.csv"):
        assert main(["predict", "--json", str(tmp_path / name)]) == 0
        answers.append(json.loads(capsys.readouterr().out)["predictions"])
    assert answers[0] == answers[1] == answers[2]
