"""Card building is pure: a prediction in, cards out (no server, no model)."""

from __future__ import annotations

import itertools
import uuid

import pytest

from model.rules import RED_FLAG_TEXT
from serve.cds.cards import (
    EXTENSION_KEY,
    SUMMARY_MAX,
    CardContext,
    is_lumbar_mri,
    lumbar_mri_orders,
    mri_cards,
    triage_cards,
    triage_detail,
)
from tests.cds_support import TIERS, lumbar_mri, make_prediction, schema_validator
from vignettes.schema import CAUSES, RED_FLAG_FIELDS

RESPONSE = schema_validator("cds-hooks-response")
CTX = CardContext(
    patient_id="p1",
    source_url="http://127.0.0.1:5002/about#research-software-not-a-medical-device",
    questionnaire_url="http://example.org/Questionnaire/intake",
)


@pytest.mark.parametrize(
    ("tier", "cause", "fired"),
    list(itertools.product(TIERS, CAUSES, [[], list(RED_FLAG_FIELDS)])),
)
def test_summary_is_short_and_leads_with_the_tier(tier: str, cause: str, fired: list[str]) -> None:
    values = TIERS[tier] | {"cause": cause, "probabilities": dict.fromkeys(CAUSES, 1 / 7)}
    if tier in ("emergency", "urgent"):
        values["red_flags_fired"] = fired or values["red_flags_fired"]
    (card,) = triage_cards(make_prediction(**values), CTX)
    RESPONSE.validate({"cards": [card]})
    assert len(card["summary"]) <= SUMMARY_MAX
    assert card["summary"].split(" ")[0].rstrip(":") in {"EMERGENCY", "URGENT", "REVIEW", "Routine"}
    assert card["extension"][EXTENSION_KEY]["urgency"] == tier


def test_every_card_and_suggestion_has_its_own_uuid() -> None:
    p = make_prediction(
        **TIERS["routine"],
        mri_indicated=True,
        next_step="imaging_and_specialist_review",
        mri_reasons=[{"code": "persistent_beyond_6_8_weeks", "text": "Pain persists"}],
    )
    (card,) = triage_cards(p, CTX)
    ids = [card["uuid"], *(s["uuid"] for s in card["suggestions"])]
    assert len(set(ids)) == len(ids) == 3
    for value in ids:
        uuid.UUID(value)


def test_no_mri_suggestion_when_an_mri_is_on_file() -> None:
    p = make_prediction(
        mri_indicated=True,
        next_step="specialist_review",
        mri_reasons=[
            {"code": "persistent_beyond_6_8_weeks", "text": "Pain persists"},
            {"code": "already_imaged", "text": "An MRI was done"},
        ],
    )
    (card,) = triage_cards(p, CTX)
    assert "suggestions" not in card


def test_the_detail_says_what_a_clinician_needs() -> None:
    p = make_prediction(**TIERS["urgent"], red_flag_questions_unanswered=["cancer_history"])
    (card,) = triage_cards(p, CTX)
    detail = card["detail"]
    assert detail.index("Urgency: URGENT") < detail.index("Likely causes")
    assert RED_FLAG_TEXT["fever"] in detail
    assert "History of cancer" in detail and "ask these before reassuring" in detail
    assert "Differential (95% coverage): disc herniation, foraminal stenosis." in detail
    assert "worse sitting = yes (+0.80)" in detail and "age = 40 (-0.30)" in detail
    assert "not a medical device" in detail and "registry version 7" in detail


def test_advice_carries_its_audience_when_the_model_gives_one() -> None:
    from dataclasses import fields

    from serve.prediction import Prediction

    if "advice_audiences" not in {f.name for f in fields(Prediction)}:
        pytest.skip("this Prediction has no advice audiences")
    p = make_prediction(
        advice=["Ask the questions.", "Keep active."], advice_audiences=["clinician", "patient"]
    )
    detail = triage_cards(p, CTX)[0]["detail"]
    assert "*for the clinician:* Ask the questions." in detail
    assert "*for the patient:* Keep active." in detail


def test_lumbar_mri_is_recognised_by_code_or_words() -> None:
    assert is_lumbar_mri(lumbar_mri())
    assert is_lumbar_mri({"resourceType": "ServiceRequest", "code": {"text": "MR L-spine"}})
    assert not is_lumbar_mri({"resourceType": "ServiceRequest", "code": {"text": "MRI brain"}})
    assert not is_lumbar_mri(lumbar_mri() | {"resourceType": "MedicationRequest"})
    bundle = {"entry": [{"resource": lumbar_mri("a")}, {"resource": {"resourceType": "X"}}]}
    assert [o["id"] for o in lumbar_mri_orders(bundle)] == ["a"]


def test_mri_card_warns_only_when_no_criterion_is_met() -> None:
    assert mri_cards(make_prediction(), [], CTX) == []
    (warning,) = mri_cards(make_prediction(), [lumbar_mri("x"), lumbar_mri("y")], CTX)
    assert warning["indicator"] == "warning" and warning["overrideReasons"]
    removed = [a["resourceId"] for a in warning["suggestions"][0]["actions"]]
    assert removed == ["ServiceRequest/x", "ServiceRequest/y"]
    met = make_prediction(
        mri_indicated=True,
        mri_reasons=[{"code": "progressive_neurological_deficit", "text": "Progressive weakness"}],
    )
    (info,) = mri_cards(met, [lumbar_mri()], CTX)
    assert info["indicator"] == "info" and "progressive neurological deficit" in info["summary"]
    assert "overrideReasons" not in info and "suggestions" not in info


def test_a_tier_set_by_the_answers_names_its_suspicion_not_conservative_care() -> None:
    p = make_prediction(
        urgency="urgent",
        urgency_timeframe="same day",
        red_flags_fired=[],
        urgency_triggers=["suspected_cauda_equina", "model_urgent"],
        suspected_conditions=["cauda_equina", "unspecified"],
    )
    (card,) = triage_cards(p, CTX)
    assert card["summary"].startswith("URGENT (same day): suspected cauda equina syndrome")
    assert "conservative care" not in card["summary"]
    silent = make_prediction(
        urgency="urgent",
        urgency_timeframe="within days",
        red_flags_fired=[],
        urgency_triggers=["model_urgent"],
        suspected_conditions=["unspecified"],
    )
    assert "model flags a possible serious condition" in triage_cards(silent, CTX)[0]["summary"]
    unsure = make_prediction(
        urgency="review",
        urgency_timeframe="within 2 weeks",
        red_flags_fired=[],
        urgency_triggers=["red_flag_dont_know"],
        suspected_conditions=["unspecified"],
        asked=["fever"],
        answers=make_prediction().answers | {"fever": None},
    )
    summary = triage_cards(unsure, CTX)[0]["summary"]
    assert summary.startswith('REVIEW (within 2 weeks): "don\'t know" to fever; likely ')
    assert "model" not in summary  # the tier is the don't-know's, not the model's


def test_the_next_step_carries_its_timeframe_and_no_early_reassurance() -> None:
    """The card's next step says how soon (an emergency is "now", not "same day"), and offers
    no conservative care while a red-flag question is unanswered or answered "don't know"."""
    from serve.explanation import next_step_text

    emergency = make_prediction(
        urgency="emergency", urgency_timeframe="now", next_step="emergency_assessment"
    )
    assert next_step_text(emergency) == "emergency assessment, now"
    assert "Emergency assessment, now." in triage_detail(emergency)
    same_day = make_prediction(
        urgency="urgent", urgency_timeframe="same day", next_step="urgent_evaluation"
    )
    assert next_step_text(same_day) == "prompt assessment by a clinician, same day"
    screened = {"red_flag_screen": "complete", "next_step": "clinician_review"}
    review = make_prediction(urgency_timeframe="within 2 weeks", **screened)
    assert next_step_text(review).endswith("within 2 weeks; conservative care meanwhile")
    for unscreened in (
        make_prediction(red_flag_screen="partial", next_step="conservative_care"),
        make_prediction(
            urgency_triggers=["red_flag_dont_know"], urgency_timeframe="within 2 weeks", **screened
        ),
    ):
        text = next_step_text(unscreened)
        assert "first ask the red-flag questions" in text and "meanwhile" not in text


def test_a_routine_printout_does_not_reassure_before_the_screen_is_done() -> None:
    from serve.explanation import explain

    empty = {"advice": [], "advice_audiences": [], "advice_codes": []}
    partial = make_prediction(urgency="routine", red_flag_screen="partial", **empty)
    assert "Urgency: routine so far - not cleared" in explain(partial)
    assert "conservative care first" not in explain(partial).split("\n\n")[0]
    complete = make_prediction(urgency="routine", red_flag_screen="complete", **empty)
    assert "Urgency: routine - conservative care first" in explain(complete)
