"""The champion at run time: one case's fast path equals the frame path, and both equal the library.

``TriageModel.predict_case`` (what ``serve.predict`` runs: no pandas, TreeSHAP from tables) must
give the numbers ``TriageModel.predict`` gives for the same case in a frame, and a model whose
scorers fall back to the library's TreeSHAP must give the same answers as one with tables.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings

import serve
import vignettes
from model.features import encode, encode_case
from model.intake import answers_frame, validate_case, validate_frame
from model.triage import LIST_COLUMNS, OUTPUT_COLUMNS, TriageModel, red_flag_decision
from tests.frames import assert_frames_identical
from tests.test_serve import valid_cases
from training.metrics import red_flag_metrics

N_CASES = 300


@pytest.fixture(scope="module")
def model(trained: Any) -> TriageModel:
    return serve.load().model


@pytest.fixture(scope="module")
def answers() -> list[dict[str, Any]]:
    frame = vignettes.generate(N_CASES, seed=23, start=5_000_000)
    return [validate_case(row) for _, row in frame.iterrows()]


def assert_same_output(one: dict[str, Any], row: pd.Series, atol: float) -> None:
    """A ``predict_case`` result equals a ``predict`` row (list cells are lists in both)."""
    assert list(one) == list(OUTPUT_COLUMNS)
    for name in OUTPUT_COLUMNS:
        expected = row[name]
        if name in LIST_COLUMNS:
            assert isinstance(expected, list) and one[name] == expected, name
        elif isinstance(one[name], float):
            assert one[name] == pytest.approx(float(expected), abs=atol), name
        else:
            assert one[name] == (None if expected is None else expected), name


def test_the_champion_explains_with_tables(model: TriageModel) -> None:
    """The small champion's trees are small enough: serving uses the lookup tables."""
    assert model.cause.shap_tables() is not None
    assert model.red_flag.shap_tables() is not None


def test_predict_case_equals_predict_on_the_same_case(
    model: TriageModel, answers: list[dict[str, Any]]
) -> None:
    out = model.predict(answers_frame(answers), validated=True)
    for i, case in enumerate(answers):
        assert_same_output(model.predict_case(case), out.iloc[i], atol=1e-12)


def test_predict_case_returns_plain_python_values(
    model: TriageModel, answers: list[dict[str, Any]]
) -> None:
    one = model.predict_case(answers[0])
    plain = (str, bool, int, float, list, type(None))
    assert all(isinstance(value, plain) for value in one.values())
    assert json.loads(json.dumps(one)) == one


def test_the_library_fallback_gives_the_same_answers(
    model: TriageModel, answers: list[dict[str, Any]]
) -> None:
    """Without tables (trees too large, say) the library's TreeSHAP gives the same answers."""
    library = copy.deepcopy(model)
    for scorer in (library.cause, library.red_flag):
        scorer._tables = None  # as compile_tables returns for trees it cannot tabulate
        scorer._rescaled = None
    frame = answers_frame(answers)
    fast = model.predict(frame, validated=True)
    slow = library.predict(frame, validated=True)
    numbers = [c for c in OUTPUT_COLUMNS if pd.api.types.is_float_dtype(fast[c])]
    np.testing.assert_allclose(fast[numbers], slow[numbers], rtol=0, atol=1e-9)
    others = [c for c in OUTPUT_COLUMNS if c not in numbers]
    assert_frames_identical(fast[others], slow[others])
    for i in range(0, N_CASES, 30):
        assert_same_output(library.predict_case(answers[i]), fast.iloc[i], atol=1e-9)


def test_encode_case_equals_encode_on_generated_cases(answers: list[dict[str, Any]]) -> None:
    rows = np.vstack([encode_case(case) for case in answers])
    np.testing.assert_array_equal(rows, encode(answers_frame(answers)))


@settings(max_examples=200, deadline=None)
@given(case=valid_cases)
def test_encode_case_equals_encode(case: dict[str, Any]) -> None:
    answers = validate_case(case)
    expected = encode(validate_frame(answers_frame([answers])))
    np.testing.assert_array_equal(encode_case(answers), expected)


def test_an_empty_frame_gives_an_empty_answer(model: TriageModel) -> None:
    out = model.predict(answers_frame([]), validated=True)
    assert len(out) == 0 and list(out.columns) == list(OUTPUT_COLUMNS)


def test_a_tie_with_the_threshold_is_urgent() -> None:
    """The threshold is one validation case's probability; an ulp below must still be urgent."""
    t = 0.000872396827003
    p = np.array([t, np.nextafter(t, 0), t - 1e-13, t - 1e-9])
    assert red_flag_decision(p, t).tolist() == [True, True, True, False]
    metrics = red_flag_metrics(p, np.array([1, 1, 1, 0]), t)
    assert metrics["red_flag_model_recall"] == 1.0 and metrics["red_flag_model_specificity"] == 1.0


def test_conformal_sets_follow_a_replaced_meta(model: TriageModel) -> None:
    changed = copy.copy(model)
    changed.meta = dict(model.meta)
    assert changed.conformal == model.conformal
    changed.meta["conformal"] = {"alpha": 0.2, "thresholds": [1.0] * 7}
    assert changed.conformal is not None and changed.conformal.alpha == 0.2


def test_explaining_in_small_chunks_gives_the_same_numbers(
    model: TriageModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks are sized by rows x trees (memory stays bounded for a many-tree champion); how
    the rows are cut must not change a number."""
    import model.scorers as scorers

    X = encode(validate_frame(vignettes.generate(700, seed=9)))
    whole = model.cause.score_and_explain(X)
    trees = model.cause.shap_tables().slot_feature.shape[0]
    monkeypatch.setattr(scorers, "ROW_TREES_PER_CHUNK", trees * 37)  # 37-row chunks
    chunked = model.cause.score_and_explain(X)
    for a, b in zip(whole, chunked, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
