"""Contradictory answers are reported in ``warnings``, naming their fields, and read the safer way.

The table is ``vignettes/contradictions.toml``; every door carries the warnings (``Prediction``,
``to_dict``, ``predict_batch``, the pyfunc and the CLI). Tests that need a model are slow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import serve
import vignettes
from vignettes.contradictions import (
    CONTRADICTIONS,
    load_contradictions,
    read_frame_safely,
    read_safely,
)
from vignettes.intake import validate_case, validate_frame
from vignettes.knowledge import KnowledgeError
from vignettes.schema import RED_FLAG_FIELDS

PROBE = [
    ({"age": 50, "pain_region": "outer_foot", "below_knee": False}, ("pain_region", "below_knee")),
    (
        {"age": 50, "progressive_weakness": True, "weakness": False},
        ("progressive_weakness", "weakness"),
    ),
]
TIERS = ["routine", "review", "urgent", "emergency"]


@pytest.mark.parametrize(("case", "fields"), PROBE)
def test_the_probes_contradictions_are_reported_naming_their_fields(
    case: dict[str, Any], fields: tuple[str, ...]
) -> None:
    _, warnings = read_safely(validate_case(case))
    assert len(warnings) == 1
    assert warnings[0].startswith(", ".join(fields) + ": ")


def test_every_impossible_pain_location_pair_is_a_contradiction_read_as_possible() -> None:
    """Each pain region with each below-knee answer: where the knowledge base gives the pair
    probability 0 (the exact posterior refuses it), the table reports it and its reading is a
    pair the posterior accepts, so no served answer rests on an impossible intake."""
    region = vignettes.schema.FIELD_BY_NAME["pain_region"].values
    for value in region:
        for below in (True, False):
            answers = validate_case({"age": 50, "pain_region": value, "below_knee": below})
            try:
                vignettes.posterior(validate_frame(pd.DataFrame([answers])))
                continue
            except vignettes.intake.IntakeError:
                pass
            reading, warnings = read_safely(answers)
            assert warnings, (value, below)
            vignettes.posterior(validate_frame(pd.DataFrame([reading])))  # possible now


def test_every_entry_has_a_reason_and_a_source_and_no_reading_turns_a_red_flag_off() -> None:
    assert len(CONTRADICTIONS) >= 7
    for entry in CONTRADICTIONS:
        assert entry.reason and entry.source, entry.name
        for field, answer in entry.reading:
            assert field not in RED_FLAG_FIELDS or answer is True, entry.name


def test_a_reported_red_flag_always_counts() -> None:
    reading, _ = read_safely(
        validate_case({"age": 60, "progressive_weakness": True, "weakness": False})
    )
    assert reading["progressive_weakness"] is True and reading["weakness"] is True


def test_consistent_answers_give_no_warning_and_are_read_as_given() -> None:
    frame = validate_frame(vignettes.generate(300, seed=8))
    for _, row in frame.head(50).iterrows():
        answers = validate_case(row)
        reading, warnings = read_safely(answers)
        if not warnings:
            assert reading == answers


def test_the_frame_reading_is_the_case_reading_row_by_row() -> None:
    cases = [
        {"age": 50, "progressive_weakness": True, "weakness": False},
        {"age": 40},
        {"age": 30, "worse_sitting": True, "better_sitting": True, "pain_region": "back_only"},
        {
            "age": 70,
            "pain_region": "back_only",
            "below_knee": True,
            "leg_pain_worse_than_back": True,
        },
    ]
    frame = validate_frame(pd.DataFrame(cases, dtype=object))
    reading, warnings = read_frame_safely(frame)
    for position, case in enumerate(cases):
        one, expected = read_safely(validate_case(case))
        assert warnings[position] == expected
        assert validate_case(reading.iloc[position]) == one
    assert list(reading.dtypes) == list(frame.dtypes)


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        (
            "when = { weaknes = true, fever = true }\nreading = { fever = true }",
            "unknown field 'weaknes'",
        ),
        (
            'when = { weakness = "yes", fever = true }\nreading = { fever = true }',
            "'yes' is not an answer",
        ),
        (
            "when = { weakness = true, fever = true }\nreading = { fever = false }",
            "may not turn a red flag off",
        ),
        ("when = { weakness = true }\nreading = { fever = true }", "at least two fields"),
    ],
)
def test_a_bad_table_is_refused_at_load_naming_the_entry(
    tmp_path: Path, entry: str, words: str
) -> None:
    path = tmp_path / "contradictions.toml"
    path.write_text(f'[[contradiction]]\nname = "x"\nreason = "r"\nsource = "s"\n{entry}\n')
    with pytest.raises(KnowledgeError, match=words) as error:
        load_contradictions(path)
    assert "contradictions.toml" in str(error.value)


# --------------------------------------------------------------------------------------------
# Every door carries the warnings; the triage takes the safer reading
# --------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def model_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's model cache in the test's own folder, never the real home."""
    monkeypatch.setenv("SCIATICA_TRIAGE_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def predictor(trained: Any) -> serve.Predictor:
    return serve.load()


@pytest.mark.parametrize(("case", "fields"), PROBE)
def test_warnings_reach_the_prediction_to_dict_and_predict_batch(
    predictor: serve.Predictor, case: dict[str, Any], fields: tuple[str, ...]
) -> None:
    prediction = predictor.predict(case)
    assert [w.split(": ")[0] for w in prediction.warnings] == [", ".join(fields)]
    assert prediction.to_dict()["warnings"] == prediction.warnings
    assert prediction.answers[fields[1]] is case[fields[1]]  # the answer itself is kept
    batch = predictor.predict_batch(pd.DataFrame([case, {"age": 40}], dtype=object))
    assert batch["warnings"].tolist() == [prediction.warnings, []]
    assert predictor.predict({"age": 40}).warnings == []


def test_progressive_weakness_without_weakness_is_triaged_as_weakness(
    predictor: serve.Predictor,
) -> None:
    contradicted = predictor.predict({"age": 55, "progressive_weakness": True, "weakness": False})
    consistent = predictor.predict({"age": 55, "progressive_weakness": True, "weakness": True})
    assert contradicted.urgency == consistent.urgency == "urgent"
    assert contradicted.red_flags_fired == ["progressive_weakness"]
    assert contradicted.probabilities == consistent.probabilities


def test_the_pyfunc_carries_the_warnings(predictor: serve.Predictor) -> None:
    import mlflow

    model = mlflow.pyfunc.load_model("models:/sciatica-triage@champion")
    case = PROBE[0][0]
    rows = model.predict([case, {"age": 40}])
    assert rows[0]["warnings"] == predictor.predict(case).warnings and rows[1]["warnings"] == []
    many = model.predict(pd.DataFrame([case] * 40, dtype=object))  # the vectorised path
    assert all(row["warnings"] == rows[0]["warnings"] for row in many)


def test_the_cli_prints_the_warnings(
    predictor: serve.Predictor, tmp_path: Path, capsys: Any
) -> None:
    from serve.cli import main

    path = tmp_path / "case.json"
    path.write_text(json.dumps(PROBE[1][0]))
    assert main(["predict", str(path)]) == 0
    assert "progressive_weakness, weakness:" in capsys.readouterr().out
    assert main(["predict", "--json", str(path)]) == 0
    (row,) = json.loads(capsys.readouterr().out)["predictions"]
    assert row["warnings"][0].startswith("progressive_weakness, weakness: ")
