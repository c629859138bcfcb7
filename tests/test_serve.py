"""Serving: probabilities, exact attributions, the red-flag safety net, the article's triage.

Properties run on random valid (and invalid) intakes built from ``vignettes.schema.FIELDS``;
golden cases are textbook presentations from the article; the rest checks the API's promises:
batch equals single, threads equal sequential, the registry version and the text
(the command line is tested in ``tests/test_cli.py``).
Every model test uses the small champion that ``tests/conftest.py`` trains once per worker.
"""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.special import logit

import serve
import vignettes
from model.features import encode
from model.intake import IGNORED_COLUMNS, IntakeError, validate_frame
from model.rules import MRI_REASON_TEXT, RED_FLAG_TEXT
from model.serious import SERIOUS_TYPES
from model.triage import DISCLAIMER
from vignettes.contradictions import read_frame_safely
from vignettes.schema import CAUSES, FIELD_BY_NAME, FIELD_NAMES, FIELDS, RED_FLAG_FIELDS, Field
from vignettes.sdc import asked_in_response

MODEL_SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
"""For properties that run the model (well under a millisecond a case since the fast path)."""

INTAKE_SETTINGS = settings(max_examples=150, deadline=None)
"""For properties that stop at validation (no model call)."""


@pytest.fixture(scope="session")
def predictor(trained: Any) -> serve.Predictor:
    """The registered champion of the session's small model, loaded through ``serve``."""
    return serve.load()


def to_case(row: pd.Series) -> dict[str, Any]:
    """A generated row as a plain case: intake fields only, ``None`` where unknown."""
    case = {}
    for name in FIELD_NAMES:
        value = row[name]
        if pd.isna(value):
            value = None
        elif isinstance(value, np.generic):
            value = value.item()
        case[name] = value
    return case


# --------------------------------------------------------------------------------------------
# Strategies: valid and invalid intakes from the schema
# --------------------------------------------------------------------------------------------


def known_value(field: Field) -> st.SearchStrategy[Any]:
    """A valid, known answer to ``field``."""
    if field.kind == "bool":
        return st.booleans()
    if field.kind == "category":
        return st.sampled_from(field.values)
    if field.kind == "int":
        return st.integers(int(field.low or 0), int(field.high or 100))
    return st.floats(0, 400, allow_nan=False, allow_infinity=False)


valid_cases = st.fixed_dictionaries(
    {"age": known_value(FIELD_BY_NAME["age"])},
    optional={f.name: known_value(f) | st.none() for f in FIELDS if f.name != "age"},
)
"""Any subset of the fields (age always), each answer valid or ``None``."""


@st.composite
def cases_with_a_red_flag(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    case = draw(valid_cases)
    sign = draw(st.sampled_from(RED_FLAG_FIELDS))
    return case | {sign: True}, sign


def wrong_type(field: Field) -> st.SearchStrategy[Any]:
    """A value of a type the field never accepts."""
    text = st.text(max_size=8)
    if field.kind == "bool":
        return st.sampled_from(["true", "True", "yes", 1, 0, 1.0, 0.0]) | text | st.integers()
    if field.kind == "category":
        return st.integers() | st.booleans() | st.floats(allow_nan=False) | st.just(["left"])
    return text | st.booleans() | st.just([1])


def out_of_range(field: Field) -> st.SearchStrategy[Any]:
    """A number outside the field's bounds, or not whole for an integer field."""
    if field.name == "age":
        return (
            st.integers(max_value=17)
            | st.integers(min_value=101)
            | st.floats(18.1, 99.9).filter(lambda x: not x.is_integer())
        )
    return st.floats(max_value=-1e-6, allow_nan=False) | st.just(math.inf)


def unknown_category(field: Field) -> st.SearchStrategy[str]:
    return st.text(max_size=20).filter(lambda text: text not in field.values)


unknown_names = st.text(min_size=1, max_size=30).filter(
    lambda name: name not in FIELD_BY_NAME and name not in IGNORED_COLUMNS
)

numeric_fields = [f for f in FIELDS if f.kind in ("int", "float")]
category_fields = [f for f in FIELDS if f.kind == "category"]


def assert_refused(case: dict[str, Any], field: str) -> None:
    """``serve.predict`` refuses ``case`` with an IntakeError (a ValueError) naming ``field``."""
    with pytest.raises(IntakeError) as info:
        serve.predict(case)
    assert isinstance(info.value, ValueError)
    assert info.value.field == field
    assert field in str(info.value)


# --------------------------------------------------------------------------------------------
# Properties over valid intakes
# --------------------------------------------------------------------------------------------


@MODEL_SETTINGS
@given(case=valid_cases)
def test_probabilities_cover_the_seven_causes_and_sum_to_one(
    predictor: serve.Predictor, case: dict[str, Any]
) -> None:
    pred = predictor.predict(case)
    assert list(pred.probabilities) == list(CAUSES)
    assert math.isclose(sum(pred.probabilities.values()), 1.0, abs_tol=1e-9)
    assert all(0.0 <= p <= 1.0 for p in pred.probabilities.values())
    assert pred.cause == max(pred.probabilities, key=pred.probabilities.__getitem__)
    assert 0.0 <= pred.red_flag_probability <= 1.0
    differential = [pred.probabilities[c] for c in pred.differential]
    assert len(set(pred.differential)) == len(pred.differential) >= 1
    assert set(pred.differential) <= set(CAUSES)
    assert differential == sorted(differential, reverse=True)
    assert 0.0 < pred.differential_coverage <= 1.0


@MODEL_SETTINGS
@given(case=valid_cases)
def test_cause_attributions_add_up_to_the_calibrated_score(
    predictor: serve.Predictor, case: dict[str, Any]
) -> None:
    pred = predictor.predict(case)
    # the model scores the safer reading of contradictory answers (vignettes/contradictions.toml)
    reading, _ = read_frame_safely(validate_frame(pd.DataFrame([case])))
    X = encode(reading)
    score = predictor.model.cause.score(X)[0, CAUSES.index(pred.cause)]
    assert list(pred.attributions) == list(FIELD_NAMES)
    assert math.isclose(
        sum(pred.attributions.values()) + pred.attribution_base, score, abs_tol=1e-6
    )
    # The softmax of the calibrated scores is the probability the prediction reports.
    scores = predictor.model.cause.score(X)[0]
    log_p = scores[CAUSES.index(pred.cause)] - np.logaddexp.reduce(scores)
    assert math.isclose(math.exp(log_p), pred.probabilities[pred.cause], rel_tol=1e-9)


@MODEL_SETTINGS
@given(case=valid_cases)
def test_red_flag_attributions_add_up_to_the_log_odds(
    predictor: serve.Predictor, case: dict[str, Any]
) -> None:
    pred = predictor.predict(case)
    total = sum(pred.red_flag_attributions.values()) + pred.red_flag_attribution_base
    assert list(pred.red_flag_attributions) == list(FIELD_NAMES)
    assert math.isclose(total, float(logit(pred.red_flag_probability)), abs_tol=1e-6)
    assert pred.red_flag_model == (pred.red_flag_probability >= pred.red_flag_threshold)


@MODEL_SETTINGS
@given(drawn=cases_with_a_red_flag())
def test_any_red_flag_sign_means_urgent_evaluation(
    predictor: serve.Predictor, drawn: tuple[dict[str, Any], str]
) -> None:
    case, sign = drawn
    pred = predictor.predict(case)
    assert pred.red_flag is True
    emergency = any(case.get(f) is True for f in ("bladder_bowel_dysfunction", "saddle_numbness"))
    reported = [f for f in RED_FLAG_FIELDS if case.get(f) is True]
    if emergency:
        assert pred.urgency == "emergency" and pred.next_step == "emergency_assessment"
    elif reported == ["unexplained_weight_loss"]:  # alone: bloods and a review (NICE NG12)
        assert pred.urgency in ("urgent", "review")
        assert pred.urgency == "urgent" or "weight_loss_review" in pred.advice_codes
    else:  # urgent, or an emergency for cancer with a deficit (NICE NG234)
        assert pred.urgency in ("emergency", "urgent")
        assert pred.next_step in ("emergency_assessment", "urgent_evaluation")
        assert pred.mri_indicated is True
        assert "red_flags_present" in [r["code"] for r in pred.mri_reasons]
    assert sign in pred.red_flags_fired
    assert pred.red_flags_unasked is False


@MODEL_SETTINGS
@given(case=valid_cases)
def test_final_red_flag_is_the_model_or_a_reported_sign(
    predictor: serve.Predictor, case: dict[str, Any]
) -> None:
    pred = predictor.predict(case)
    reported = [f for f in RED_FLAG_FIELDS if case.get(f) is True]
    assert pred.red_flags_fired == reported
    assert pred.red_flag == bool(pred.urgency_triggers)  # a rule fired: answers or the model
    assert pred.red_flag == (pred.urgency != "routine")
    if reported or pred.red_flag_model:
        assert pred.red_flag
    if pred.red_flag_model_urgent:  # at or above the upper threshold: urgent at least
        assert pred.urgency in ("emergency", "urgent")
    assert pred.red_flag_model_urgent == (
        pred.red_flag_probability >= pred.red_flag_urgent_threshold
    )
    assert pred.red_flag_threshold == pytest.approx(1 / (1 + pred.red_flag_cost_ratio))
    unanswered = [f for f in RED_FLAG_FIELDS if case.get(f) is None]
    assert pred.red_flag_questions_unanswered == unanswered
    assert pred.red_flags_unasked == (len(unanswered) == len(RED_FLAG_FIELDS))
    json.dumps(pred.to_dict())  # always serialisable


# --------------------------------------------------------------------------------------------
# Properties over invalid intakes: refused, naming the field (no model needed)
# --------------------------------------------------------------------------------------------


@INTAKE_SETTINGS
@given(case=valid_cases, name=unknown_names, value=st.booleans() | st.none() | st.integers())
def test_an_unknown_field_is_refused_by_name(case: dict, name: str, value: Any) -> None:
    assert_refused(case | {name: value}, name)


@INTAKE_SETTINGS
@given(case=valid_cases, data=st.data())
def test_a_wrong_type_is_refused_naming_the_field(case: dict, data: st.DataObject) -> None:
    field = data.draw(st.sampled_from(FIELDS))
    assert_refused(case | {field.name: data.draw(wrong_type(field))}, field.name)


@INTAKE_SETTINGS
@given(case=valid_cases, data=st.data())
def test_an_out_of_range_number_is_refused_naming_the_field(
    case: dict, data: st.DataObject
) -> None:
    field = data.draw(st.sampled_from(numeric_fields))
    assert_refused(case | {field.name: data.draw(out_of_range(field))}, field.name)


@INTAKE_SETTINGS
@given(case=valid_cases, data=st.data())
def test_an_unknown_category_is_refused_naming_the_field(case: dict, data: st.DataObject) -> None:
    field = data.draw(st.sampled_from(category_fields))
    assert_refused(case | {field.name: data.draw(unknown_category(field))}, field.name)


def test_age_is_required() -> None:
    assert_refused({"sex": "male"}, "age")


def test_predict_batch_refuses_a_bad_value_naming_field_and_row() -> None:
    frame = pd.DataFrame({"age": [40, 50], "pain_region": ["back_only", "calf"]}, index=[7, 9])
    with pytest.raises(IntakeError) as info:
        serve.predict_batch(frame)
    assert info.value.field == "pain_region"
    assert info.value.row == 9


# --------------------------------------------------------------------------------------------
# Golden cases: textbook presentations from the article
# --------------------------------------------------------------------------------------------

NO_RED_FLAGS = dict.fromkeys(RED_FLAG_FIELDS, False)
QUIET = {  # every other symptom question answered "no" unless a case says otherwise
    name: False
    for name in FIELD_NAMES
    if FIELD_BY_NAME[name].kind == "bool" and name not in RED_FLAG_FIELDS
}

GOLDEN = {
    # "2. Lumbar Spinal Stenosis": over 50, worse walking or standing, better sitting or bending
    # forward, both legs, heaviness or fatigue; persisting beyond 6-8 weeks despite conservative
    # care ("MRI is most useful when").
    "spinal_stenosis": QUIET
    | NO_RED_FLAGS
    | {
        "age": 72,
        "sex": "male",
        "duration_weeks": 40,
        "back_pain": True,
        "leg_pain_worse_than_back": True,
        "sides": "both",
        "pain_region": "back_of_leg_heel",
        "below_knee": True,
        "pain_quality": "heaviness_fatigue",
        "worse_walking": True,
        "worse_standing": True,
        "better_sitting": True,
        "better_bending_forward": True,
        "conservative_care_failed": True,
        "mri_finding": "not_done",
    },
    # "1. Lumbar Disc Herniation": sharp leg pain worse than back pain, worse sitting and bending
    # forward, coughing/sneezing intensify, numbness and tingling; one leg, outer leg to big toe.
    "disc_herniation": QUIET
    | NO_RED_FLAGS
    | {
        "age": 38,
        "sex": "male",
        "duration_weeks": 3,
        "back_pain": True,
        "leg_pain_worse_than_back": True,
        "sides": "left",
        "pain_region": "outer_leg_big_toe",
        "below_knee": True,
        "pain_quality": "sharp_electric",
        "worse_sitting": True,
        "worse_bending_forward": True,
        "worse_cough_sneeze": True,
        "numbness": True,
        "tingling": True,
        "mri_finding": "not_done",
    },
    # "4. Piriformis Syndrome": prominent buttock pain, worse with prolonged sitting, lower back
    # pain absent, spine imaging normal.
    "piriformis_syndrome": QUIET
    | NO_RED_FLAGS
    | {
        "age": 44,
        "sex": "female",
        "duration_weeks": 8,
        "back_pain": False,
        "leg_pain_worse_than_back": True,
        "buttock_pain": True,
        "sides": "right",
        "pain_region": "back_of_leg_heel",
        "pain_quality": "burning",
        "worse_sitting": True,
        "mri_finding": "normal",
    },
    # "Mechanical Pain": dull, aching; improves with rest or gentle movement; localised to the
    # lower back; no nerve signs.
    "mechanical_pain": QUIET
    | NO_RED_FLAGS
    | {
        "age": 35,
        "sex": "male",
        "duration_weeks": 2,
        "back_pain": True,
        "sides": "right",
        "pain_region": "back_only",
        "pain_quality": "dull_aching",
        "worse_bending_forward": True,
        "better_rest_movement": True,
        "mri_finding": "not_done",
    },
    # Cauda equina: a disc herniation with loss of bladder control and saddle numbness ("Red
    # Flags That Require Immediate Medical Evaluation").
    "cauda_equina": {
        "age": 45,
        "sex": "female",
        "duration_weeks": 1,
        "back_pain": True,
        "leg_pain_worse_than_back": True,
        "sides": "both",
        "pain_region": "back_of_leg_heel",
        "below_knee": True,
        "pain_quality": "sharp_electric",
        "worse_cough_sneeze": True,
        "numbness": True,
        "weakness": True,
        "bladder_bowel_dysfunction": True,
        "saddle_numbness": True,
        "progressive_weakness": True,
        "unexplained_weight_loss": False,
        "fever": False,
        "cancer_history": False,
    },
}

EXPECTED = {  # case: (top cause, urgency, next step, nerve root, pain mechanism)
    "spinal_stenosis": (
        "spinal_stenosis",
        "routine",
        "imaging_and_specialist_review",
        "S1",
        "neurological",
    ),
    "disc_herniation": ("disc_herniation", "routine", "conservative_care", "L5", "neurological"),
    "piriformis_syndrome": (
        "piriformis_syndrome",
        "routine",
        "conservative_care",
        "S1",
        "neurological",
    ),
    "mechanical_pain": ("mechanical_pain", "routine", "conservative_care", None, "mechanical"),
    "cauda_equina": ("disc_herniation", "emergency", "emergency_assessment", "S1", "neurological"),
}


GOLDEN_TRAIN = GOLDEN_VAL = 20_000
"""Cases the golden model fits and calibrates on. With 20,000 of each the textbook cases keep
wide margins (measured: their cause at 0.9986 or more; the red-flag probability of the routine
ones at most 0.0025 against the 0.0099 review threshold, the cauda equina case's 0.990), in 15 s
of one worker's time where 50,000 of each took 36 s (cause at 0.999 or more, routine red flags at
most 0.0017, cauda equina 0.997)."""


@pytest.fixture(scope="module")
def golden_predictor() -> serve.Predictor:
    """A model trained on enough cases to judge textbook presentations (about 15 s, one thread).

    The session's small fixture model has seen ~60 serious cases: its red-flag probabilities
    are too noisy for a fair golden test of the tiers. This one is calibrated on
    :data:`GOLDEN_VAL` validation cases and served at the default cost ratio, as ``make train``
    does.
    """
    from model.conformal import ConformalSets
    from model.triage import RED_FLAG_COST_RATIO, cost_ratio_threshold
    from training.candidates import Split, fit_lightgbm

    train = Split(vignettes.generate(GOLDEN_TRAIN, seed=11))
    val = Split(vignettes.generate(GOLDEN_VAL, seed=11, start=GOLDEN_TRAIN))
    fitted = fit_lightgbm(train, val, seed=11)
    triage = fitted.triage
    triage.meta |= {
        "red_flag_threshold": cost_ratio_threshold(RED_FLAG_COST_RATIO),
        "red_flag_cost_ratio": RED_FLAG_COST_RATIO,
        "conformal": ConformalSets.fit(triage.cause.proba(val.X), val.y).to_dict(),
        "version": "golden",
    }
    return serve.Predictor(triage, "golden", "golden", "none")


@pytest.mark.slow  # fits its own LightGBM model (golden_predictor)
@pytest.mark.parametrize("name", list(GOLDEN))
def test_golden_case_from_the_article(golden_predictor: serve.Predictor, name: str) -> None:
    predictor = golden_predictor
    cause, urgency, step, root, mechanism = EXPECTED[name]
    pred = predictor.predict(GOLDEN[name])
    report = f"\n{pred}"
    assert pred.cause == cause, report
    assert pred.probabilities[cause] > 0.5, report
    assert pred.nerve_root == root, report
    assert pred.pain_mechanism == mechanism, report
    assert pred.urgency == urgency, report
    assert pred.red_flag is (urgency != "routine"), report
    assert pred.next_step == step, report
    if urgency == "routine":
        assert {"conservative_care", "safety_net"} <= set(pred.advice_codes), report
        assert "immediate" not in " ".join(pred.advice).lower(), report


# One golden case per tier beyond the article's causes: reported signs set emergency and
# urgent by rule; the model raises review for a silent but worrying presentation.
TIER_GOLDEN = {
    "urgent": (
        GOLDEN["disc_herniation"] | {"fever": True},
        "urgent",
        "urgent_evaluation",
    ),
    # a history of cancer with back pain only: urgent, within days (NICE NG234: MRI in a week)
    "urgent_cancer_history": (
        GOLDEN["mechanical_pain"] | {"cancer_history": True},
        "urgent",
        "urgent_evaluation",
    ),
    # the same history with pain down both legs (radicular symptoms): suspected spinal cord
    # compression, immediate action and an MRI within 24 hours (NG234)
    "emergency_mscc": (
        GOLDEN["spinal_stenosis"] | {"cancer_history": True},
        "emergency",
        "emergency_assessment",
    ),
    # an older patient whose red-flag questions were never asked, with night pain, progressive
    # symptoms and weakness: the deficit is getting worse, so urgent by rule whatever the model
    # says (it was "review, not an emergency" before the answer-based rule)
    "urgent_worsening_deficit": (
        {
            "age": 78,
            "sex": "male",
            "duration_weeks": 6,
            "worse_at_night": True,
            "progressive_symptoms": True,
            "weakness": True,
            "reflex_changes": True,
            "pain_quality": "dull_aching",
        },
        "urgent",
        "urgent_evaluation",
    ),
    # unexplained weight loss alone, every other flag "no": a review within 2 weeks with blood
    # tests (NICE NG12), not urgent
    "review_weight_loss": (
        GOLDEN["mechanical_pain"]
        | dict.fromkeys(RED_FLAG_FIELDS, False)
        | {"unexplained_weight_loss": True},
        "review",
        None,
    ),
}


TIER_TIMEFRAME = {
    "urgent": "same day",  # fever: suspected spinal infection (NICE CKS)
    "urgent_cancer_history": "within days",
    "emergency_mscc": "within 24 hours",
    "urgent_worsening_deficit": "within days",
    "review_weight_loss": "within 2 weeks",
}


@pytest.mark.parametrize("name", list(TIER_GOLDEN))
def test_golden_case_per_tier(golden_predictor: serve.Predictor, name: str) -> None:
    case, urgency, step = TIER_GOLDEN[name]
    pred = golden_predictor.predict(case)
    report = f"\n{pred}"
    assert pred.urgency == urgency, report
    if step is not None:
        assert pred.next_step == step, report
    assert pred.urgency_timeframe == TIER_TIMEFRAME[name], report
    if urgency == "review":
        assert {"weight_loss_review", "conservative_care", "safety_net"} <= set(
            pred.advice_codes
        ), report
        assert "immediate" not in (pred.urgency_action + " ".join(pred.advice)).lower(), report


def test_golden_cauda_equina_reasons(predictor: serve.Predictor) -> None:
    pred = predictor.predict(GOLDEN["cauda_equina"])
    assert pred.red_flags_fired == [
        "bladder_bowel_dysfunction",
        "saddle_numbness",
        "progressive_weakness",
    ]
    codes = [r["code"] for r in pred.mri_reasons]
    assert {"red_flags_present", "progressive_neurological_deficit"} <= set(codes)
    assert pred.urgency == "emergency" and pred.advice_codes[0] == "emergency_assessment"
    text = str(pred)
    assert RED_FLAG_TEXT["saddle_numbness"] in text
    assert RED_FLAG_TEXT["bladder_bowel_dysfunction"] in text


def test_golden_stenosis_mri_reason_is_persistence(predictor: serve.Predictor) -> None:
    pred = predictor.predict(GOLDEN["spinal_stenosis"])
    reasons = {r["code"]: r["text"] for r in pred.mri_reasons}
    assert (
        reasons.get("persistent_beyond_6_8_weeks") == MRI_REASON_TEXT["persistent_beyond_6_8_weeks"]
    )


# --------------------------------------------------------------------------------------------
# Batch, threads, registry
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated() -> pd.DataFrame:
    """Generated cases (with their labels and gaps), under a shuffled, non-default index."""
    frame = vignettes.generate(30, seed=11)
    frame.index = pd.Index(np.random.default_rng(0).permutation(1000)[:30] + 5000)
    return frame


def test_predict_batch_has_the_contract_columns_in_input_order(
    predictor: serve.Predictor, generated: pd.DataFrame
) -> None:
    out = serve.predict_batch(generated)
    contract = ["cause", *(f"prob_{c}" for c in CAUSES), "red_flag", "red_flag_probability"]
    assert set(contract) <= set(out.columns)
    assert out.index.equals(generated.index)
    assert np.allclose(out[[f"prob_{c}" for c in CAUSES]].sum(axis=1), 1.0)
    assert out["red_flag"].dtype == bool
    assert (out["model_version"] == predictor.model_version).all()
    serious = out[[f"prob_serious_{c}" for c in SERIOUS_TYPES]]
    assert ((serious >= 0) & (serious <= 1)).all().all()


def test_each_serious_condition_has_a_probability(golden_predictor: serve.Predictor) -> None:
    quiet = golden_predictor.predict({"age": 35, "duration_weeks": 2} | NO_RED_FLAGS)
    saddle = golden_predictor.predict(GOLDEN["disc_herniation"] | {"saddle_numbness": True})
    for pred in (quiet, saddle):
        probabilities = pred.serious_condition_probabilities
        assert list(probabilities) == list(SERIOUS_TYPES)
        assert all(isinstance(p, float) and 0 <= p <= 1 for p in probabilities.values())
        assert pred.to_dict()["serious_condition_probabilities"] == probabilities
    # saddle numbness points to cauda equina, far above a quiet case's
    cauda = "cauda_equina"
    assert (
        saddle.serious_condition_probabilities[cauda]
        > 5 * (quiet.serious_condition_probabilities[cauda])
    )
    assert max(saddle.serious_condition_probabilities.items(), key=lambda kv: kv[1])[0] == cauda


def test_predict_batch_equals_predict_row_by_row(
    predictor: serve.Predictor, generated: pd.DataFrame
) -> None:
    out = predictor.predict_batch(generated)
    for label, row in generated.iterrows():
        case = to_case(row)
        single = predictor.predict(case)
        from_batch = serve.Prediction.from_row(out.loc[label], case)
        assert from_batch.cause == single.cause
        assert from_batch.red_flag == single.red_flag
        assert from_batch.next_step == single.next_step
        assert from_batch.advice == single.advice
        for name in ("probabilities", "attributions", "red_flag_attributions"):
            batch_values = list(getattr(from_batch, name).values())
            np.testing.assert_allclose(batch_values, list(getattr(single, name).values()))
        np.testing.assert_allclose(from_batch.red_flag_probability, single.red_flag_probability)
        np.testing.assert_allclose(
            list(from_batch.serious_condition_probabilities.values()),
            list(single.serious_condition_probabilities.values()),
        )
        assert from_batch.to_dict().keys() == single.to_dict().keys()


def test_an_empty_batch_gives_an_empty_frame(predictor: serve.Predictor) -> None:
    out = predictor.predict_batch(pd.DataFrame({"age": pd.Series([], dtype="Int64")}))
    assert len(out) == 0 and {"cause", "red_flag", "prob_mechanical_pain"} <= set(out.columns)
    assert predictor.predict_many([]) == []


def test_predict_many_equals_predict(predictor: serve.Predictor, generated: pd.DataFrame) -> None:
    cases = [to_case(row) for _, row in generated.head(10).iterrows()]
    many = predictor.predict_many(cases)
    assert [p.to_dict() for p in many] == [predictor.predict(c).to_dict() for c in cases]


def test_eight_threads_get_the_sequential_answers(
    predictor: serve.Predictor, generated: pd.DataFrame
) -> None:
    cases = [to_case(row) for _, row in generated.head(16).iterrows()]
    sequential = [predictor.predict(c).to_dict() for c in cases]
    work = [(i, cases[i]) for i in range(len(cases))] * 3

    def one(item: tuple[int, dict]) -> tuple[int, dict]:
        return item[0], serve.predict(item[1]).to_dict()

    serve.load()
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, work))
    for i, answer in results:
        assert answer == sequential[i]


def test_concurrent_first_loads_share_one_model(trained: Any) -> None:
    serve.clear_cache()
    with ThreadPoolExecutor(max_workers=8) as pool:
        loaded = list(pool.map(lambda _: serve.load(), range(8)))
    assert all(p is loaded[0] for p in loaded)
    assert serve.load() is loaded[0]


def test_predictions_carry_the_registry_name_and_version(
    predictor: serve.Predictor, trained: Any
) -> None:
    assert predictor.model_name == "sciatica-triage"
    assert predictor.model_version == str(trained.model_version)
    assert predictor.resolved_uri == f"models:/sciatica-triage/{trained.model_version}"
    assert predictor.model.meta["training_version"].startswith("run-")
    by_version = serve.load(f"models:/sciatica-triage/{trained.model_version}")
    pred = serve.predict({"age": 50})
    assert (pred.model_name, pred.model_version) == ("sciatica-triage", by_version.model_version)
    serve.load()  # back to the champion for the other tests


def test_a_missing_model_says_run_make_train(trained: Any) -> None:
    for uri in ("models:/sciatica-triage@no_such_alias", "models:/no-such-model@champion"):
        with pytest.raises(serve.ModelNotFoundError, match="make train"):
            serve.load(uri)


# --------------------------------------------------------------------------------------------
# The explanation and the dictionary
# --------------------------------------------------------------------------------------------


RESPONSE = "QuestionnaireResponse"


def test_a_red_flag_dont_know_keeps_the_tier_at_least_review(predictor: serve.Predictor) -> None:
    """Told what was asked, the served model keeps a red-flag "don't know" at review or above
    (rule ``red_flag_dont_know``), and a bladder, bowel or saddle "don't know" same day
    (``cauda_equina_dont_know``), as the interview does; a question answered, or never asked,
    changes nothing; a reported sign keeps its own tier."""
    base = {"age": 35, "duration_weeks": 2, "pain_region": "back_only", "sides": "left"}
    calm = base | {f: False for f in RED_FLAG_FIELDS if f != "fever"}
    plain = predictor.predict(calm)
    assert plain.urgency == "routine"  # the case the rule is for
    kept = predictor.predict(calm, asked=["fever", "saddle_numbness"])
    assert kept.urgency == "review" and kept.urgency_timeframe == "within 2 weeks"
    assert "red_flag_dont_know" in kept.urgency_triggers and kept.next_step == "clinician_review"
    assert "don't know" in kept.urgency_action and kept.red_flag is True
    assert kept.probabilities == plain.probabilities  # the model's numbers are not touched
    assert predictor.predict(calm, asked=["saddle_numbness"]).urgency == "routine"  # answered
    unsure = base | {f: False for f in RED_FLAG_FIELDS if f != "saddle_numbness"}
    same_day = predictor.predict(unsure, asked=["saddle_numbness"])
    assert same_day.urgency == "urgent" and same_day.urgency_timeframe == "same day"
    assert "cauda_equina_dont_know" in same_day.urgency_triggers
    bladder = predictor.predict(unsure | {"bladder_bowel_dysfunction": True}, asked=["fever"])
    assert bladder.urgency == "emergency" and bladder.urgency_timeframe == "now"
    serve.load()
    assert serve.predict(calm, asked=("fever",)).urgency == "review"
    # a QuestionnaireResponse says what was asked: an item held without an answer
    response = vignettes.to_questionnaire_response(calm)
    assert predictor.predict(response).urgency == "routine"  # the item left out: not asked
    response["item"].append({"linkId": "fever"})
    assert predictor.predict(response).urgency == "review"
    assert serve.predict(response).urgency == "review"
    # the prediction records what was asked, so its FHIR record shows the "don't know"
    assert kept.asked == [f for f in FIELD_NAMES if f in ("fever", "saddle_numbness")]
    assert "fever" in serve.predict(response).asked and plain.asked == []
    record = kept.to_fhir()
    (qr,) = [e["resource"] for e in record["entry"] if e["resource"]["resourceType"] == RESPONSE]
    assert "fever" in asked_in_response(qr) and qr["item"]  # the "don't know" is on record
    # several at once: the same answers as one by one, a response's own items counted
    many = predictor.predict_many([calm, response, unsure], asked=[["fever"], None, None])
    one_by_one = [
        predictor.predict(calm, asked=["fever"]),
        predictor.predict(response),
        predictor.predict(unsure),
    ]
    assert [p.to_dict() for p in many] == [p.to_dict() for p in one_by_one]
    assert [p.urgency for p in many] == ["review", "review", "routine"]
    with pytest.raises(IntakeError, match="asked: expected one list of field names"):
        predictor.predict_many([calm, unsure], asked=[["fever"]])
    with pytest.raises(IntakeError, match=r"asked: 'sadle_numbness' is not an intake field.*did"):
        predictor.predict(calm, asked=["sadle_numbness"])
    with pytest.raises(IntakeError, match="asked: expected a list of intake field names"):
        predictor.predict(calm, asked="saddle_numbness")


def test_str_explains_cause_reasons_and_red_flag(predictor: serve.Predictor) -> None:
    case = GOLDEN["disc_herniation"] | {"fever": None}
    pred = predictor.predict(case)
    text = str(pred)
    assert text.splitlines()[0] == DISCLAIMER
    assert pred.cause.replace("_", " ") in text
    assert f"{pred.probabilities[pred.cause]:.1%}" in text
    assert f"Differential ({pred.differential_coverage:.0%} coverage)" in text
    assert "pushed towards it" in text and "pushed against it" in text
    assert f"Urgency: {pred.urgency.upper()}" in text.replace("routine", "ROUTINE")
    assert f"review threshold {pred.red_flag_threshold:.3g}" in text
    malignancy = pred.serious_condition_probabilities["malignancy"]
    joined = text.replace("\n    ", " ")  # wrapped lines continue indented
    assert "which serious condition (model): " in text and f"malignancy {malignancy:.2%}" in joined
    assert "red-flag questions not answered - ask these before reassuring: fever" in text
    assert "Likely nerve root: L5" in text
    assert "Next step:" in text
    assert all(advice[:40] in text.replace("\n    ", " ") for advice in pred.advice)


def test_str_says_when_red_flags_were_never_asked(predictor: serve.Predictor) -> None:
    text = str(predictor.predict({"age": 70, "worse_walking": True}))
    assert "red flags cannot be ruled out" in text


def test_to_dict_is_plain_json(predictor: serve.Predictor) -> None:
    pred = predictor.predict(GOLDEN["spinal_stenosis"])
    data = json.loads(json.dumps(pred.to_dict()))
    assert data["cause"] == pred.cause
    assert data["probabilities"] == pred.probabilities
    assert data["attribution_units"] == pred.attribution_units
    assert data["answers"]["age"] == 72
    assert all(set(r) == {"code", "text"} for r in data["mri_reasons"])


def test_prediction_is_frozen(predictor: serve.Predictor) -> None:
    pred = predictor.predict({"age": 40})
    with pytest.raises(AttributeError):
        pred.cause = "mechanical_pain"  # type: ignore[misc]
