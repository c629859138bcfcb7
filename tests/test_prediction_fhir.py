"""``Prediction.to_fhir``: a collection Bundle with a RiskAssessment and the differential."""

from __future__ import annotations

from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle

import vignettes
from model.intake import IntakeError
from serve.fhir import ATTRIBUTION, TIER_RISK
from serve.prediction import Prediction
from tests.fhir_bindings import assert_required_codes
from vignettes.schema import CAUSES, FIELD_NAMES
from vignettes.sdc import asked_in_response


def make_prediction(**changes: Any) -> Prediction:
    """A prediction with every attribute set by hand (no model needed)."""
    answers = vignettes.validate_case(
        {"age": 67, "sides": "left", "worse_walking": True, "fever": False}
    )
    probabilities = dict.fromkeys(CAUSES, 0.02)
    probabilities |= {"spinal_stenosis": 0.70, "foraminal_stenosis": 0.20}
    values: dict[str, Any] = {
        "cause": "spinal_stenosis",
        "probabilities": probabilities,
        "differential": ["spinal_stenosis", "foraminal_stenosis"],
        "differential_coverage": 0.95,
        "urgency": "routine",
        "urgency_action": "Conservative care first.",
        "red_flag": False,
        "red_flag_probability": 0.004,
        "red_flag_model": False,
        "red_flag_threshold": 0.0099,
        "red_flag_cost_ratio": 100.0,
        "red_flags_fired": [],
        "red_flags_unasked": False,
        "red_flag_questions_unanswered": ["bladder_bowel_dysfunction"],
        "attributions": {f: 0.01 * i for i, f in enumerate(FIELD_NAMES)},
        "attribution_base": -0.5,
        "red_flag_attributions": dict.fromkeys(FIELD_NAMES, -0.01),
        "red_flag_attribution_base": -4.0,
        "attribution_units": "logit",
        "nerve_root": None,
        "nerve_territory": None,
        "pain_mechanism": "neurological",
        "mri_indicated": False,
        "mri_reasons": [],
        "next_step": "conservative_care",
        "advice_codes": ["ask_red_flag_questions", "stay_active"],
        "advice": ["Ask the red-flag questions.", "Stay active."],
        "advice_audiences": ["clinician", "patient"],
        "urgency_timeframe": None,
        "urgency_timeframe_source": None,
        "urgency_triggers": [],
        "suspected_conditions": [],
        "red_flag_screen": "partial",
        "red_flag_model_urgent": False,
        "red_flag_urgent_threshold": 0.1,
        "model_name": "sciatica-triage",
        "model_version": "3",
        "disclaimer": "Research software on synthetic data; not a medical device.",
        "answers": answers,
        "warnings": [],
        "serious_condition_probabilities": {
            "cauda_equina": 0.001,
            "infection": 0.001,
            "malignancy": 0.002,
            "progressive_deficit": None,
        },
    }
    return Prediction(**(values | changes))


def _resources(bundle: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for entry in bundle["entry"]:
        out.setdefault(entry["resource"]["resourceType"], []).append(entry["resource"])
    return out


def test_the_bundle_validates_with_the_r4b_models_and_references_resolve() -> None:
    bundle = make_prediction().to_fhir()
    Bundle.model_validate(bundle)
    assert_required_codes(bundle)
    assert bundle["type"] == "collection"
    full_urls = {e["fullUrl"] for e in bundle["entry"]}
    for entry in bundle["entry"]:
        resource = entry["resource"]
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        assert entry["fullUrl"] == f"urn:uuid:{resource['id']}"
    risk = _resources(bundle)["RiskAssessment"][0]
    references = [risk["subject"]["reference"], risk["basis"][0]["reference"]]
    for c in _resources(bundle)["Condition"]:
        references += [c["subject"]["reference"], c["evidence"][0]["detail"][0]["reference"]]
    assert set(references) <= full_urls


def test_the_risk_assessment_says_what_the_issue_asks() -> None:
    pred = make_prediction()
    resources = _resources(pred.to_fhir())
    risk = resources["RiskAssessment"][0]
    qr = resources["QuestionnaireResponse"][0]
    assert risk["basis"] == [{"reference": f"urn:uuid:{qr['id']}"}]
    assert vignettes.from_questionnaire_response(qr) == pred.answers
    assert "sciatica-triage" in risk["method"]["text"] and "version 3" in risk["method"]["text"]
    by_cause = [p["probabilityDecimal"] for p in risk["prediction"][: len(CAUSES)]]
    assert by_cause == [pred.probabilities[c] for c in CAUSES]
    serious = risk["prediction"][len(CAUSES)]
    assert serious["probabilityDecimal"] == pred.red_flag_probability
    assert serious["qualitativeRisk"]["coding"][0]["code"] == "low"
    # a partial screen: the low likelihood says it is not a cleared case
    assert serious["qualitativeRisk"]["text"] == (
        "urgency tier: routine; red-flag screen partial, not cleared "
        "(unanswered: bladder_bowel_dysfunction)"
    )
    screened = make_prediction(red_flag_screen="complete", red_flag_questions_unanswered=[])
    (done,) = [
        p
        for p in _resources(screened.to_fhir())["RiskAssessment"][0]["prediction"]
        if "qualitativeRisk" in p
    ]
    assert done["qualitativeRisk"]["text"] == "urgency tier: routine"
    by_condition = {
        p["outcome"]["text"]: p["probabilityDecimal"] for p in risk["prediction"][len(CAUSES) + 1 :]
    }
    assert by_condition == {
        "Cauda equina syndrome": 0.001,
        "Spinal infection (vertebral osteomyelitis, discitis or epidural abscess)": 0.001,
        "Spinal malignancy (metastasis or primary tumour)": 0.002,
    }  # no prediction where the model has no probability
    assert "Next step: conservative care" in risk["mitigation"]
    assert all(text in risk["mitigation"] for text in pred.advice)
    assert "not a medical device" in risk["note"][0]["text"]
    top = risk["prediction"][CAUSES.index(pred.cause)]
    (extension,) = top["extension"]
    assert extension["url"] == ATTRIBUTION
    fields = [
        sub["extension"][0]["valueString"]
        for sub in extension["extension"]
        if sub["url"] == "attribution"
    ]
    assert fields == list(FIELD_NAMES)
    assert "cancer_history +0.34" in top["rationale"]  # the largest attribution (the last field)


@pytest.mark.parametrize(("urgency", "risk"), sorted(TIER_RISK.items()))
def test_the_qualitative_risk_follows_the_tier(urgency: str, risk: str) -> None:
    bundle = make_prediction(urgency=urgency).to_fhir()
    serious = _resources(bundle)["RiskAssessment"][0]["prediction"][len(CAUSES)]
    assert serious["qualitativeRisk"]["coding"][0]["code"] == risk


def test_the_differential_is_conditions_top_one_provisional() -> None:
    conditions = _resources(make_prediction().to_fhir())["Condition"]
    statuses = [c["verificationStatus"]["coding"][0]["code"] for c in conditions]
    assert statuses == ["provisional", "differential"]
    assert [c["code"]["text"] for c in conditions] == [
        "Lumbar spinal stenosis",
        "Lumbar foraminal stenosis",
    ]
    assert conditions[0]["code"]["coding"][0]["code"] == "M48.0"
    assert conditions[0]["bodySite"][0]["text"] == "left leg"


def test_a_given_response_and_subject_are_used_and_the_bundle_is_deterministic() -> None:
    pred = make_prediction()
    qr = vignettes.to_questionnaire_response(
        pred.answers, response_id="qr-1", subject="Patient/p-9"
    )
    bundle = pred.to_fhir(response=qr)
    resources = _resources(bundle)
    assert "Patient" not in resources
    assert resources["RiskAssessment"][0]["subject"] == {"reference": "Patient/p-9"}
    assert resources["RiskAssessment"][0]["basis"] == [{"reference": "urn:uuid:qr-1"}]
    assert pred.to_fhir() == pred.to_fhir()
    assert make_prediction(model_version="4").to_fhir()["id"] != pred.to_fhir()["id"]


def test_a_question_asked_and_left_unknown_stays_in_the_response_built() -> None:
    pred = make_prediction(
        urgency="urgent", urgency_triggers=["cauda_equina_dont_know"], asked=["saddle_numbness"]
    )
    assert pred.answers["saddle_numbness"] is None and pred.answers["sex"] is None
    assert pred.answers["fever"] is False
    bundle = pred.to_fhir(asked=["sex", "fever"])  # more questions asked: recorded too
    Bundle.model_validate(bundle)
    (qr,) = _resources(bundle)["QuestionnaireResponse"]
    items = {i["linkId"]: i for g in qr["item"] for i in g["item"]}
    assert items["saddle_numbness"] == {"linkId": "saddle_numbness"}  # "don't know"
    assert items["sex"] == {"linkId": "sex"}
    assert items["fever"]["answer"] == [{"valueBoolean": False}]
    assert {"saddle_numbness", "sex"} <= set(asked_in_response(qr))
    plain = make_prediction()
    (unasked,) = _resources(plain.to_fhir())["QuestionnaireResponse"]
    assert "saddle_numbness" not in asked_in_response(unasked)
    given = vignettes.to_questionnaire_response(pred.answers, response_id="qr-2")
    kept = _resources(pred.to_fhir(response=given))
    assert kept["QuestionnaireResponse"] == [given]  # a response given is kept as it came
    # another record, not an update of the same one: its own ids
    assert bundle["id"] != pred.to_fhir()["id"] and qr["id"] != unasked["id"]
    assert pred.to_fhir(asked=["fever", "sex"])["id"] == bundle["id"]
    review = make_prediction(urgency="review", urgency_triggers=["red_flag_dont_know"])
    assert review.to_fhir()["id"] != plain.to_fhir()["id"]
    # a red-flag "don't know" the prediction did not count is refused, never recorded beside
    # a tier that did not count it
    with pytest.raises(IntakeError, match=r"^asked: saddle_numbness left unknown .*predict again"):
        plain.to_fhir(asked=["saddle_numbness", "sex"])


def test_the_questions_a_prediction_records_as_asked_stay_in_its_record() -> None:
    """A prediction made with ``asked`` keeps it: its record shows the "don't know" it rests
    on without the caller naming the questions again, and naming more adds to them."""
    review = make_prediction(
        urgency="review", urgency_triggers=["red_flag_dont_know"], asked=["saddle_numbness"]
    )
    bundle = review.to_fhir()
    Bundle.model_validate(bundle)
    (qr,) = _resources(bundle)["QuestionnaireResponse"]
    items = {i["linkId"]: i for g in qr["item"] for i in g["item"]}
    assert items["saddle_numbness"] == {"linkId": "saddle_numbness"}  # "don't know"
    assert bundle == review.to_fhir(asked=["saddle_numbness"])
    more = review.to_fhir(asked=["fever"])
    assert {"saddle_numbness", "fever"} <= set(
        asked_in_response(_resources(more)["QuestionnaireResponse"][0])
    )
    assert review.to_dict()["asked"] == ["saddle_numbness"]
    assert make_prediction().asked == []
    # a response given is kept as it came; the RiskAssessment still says what it rests on
    given = vignettes.to_questionnaire_response(review.answers, response_id="qr-3")
    kept = _resources(review.to_fhir(response=given))
    assert kept["QuestionnaireResponse"] == [given]
    (risk,) = kept["RiskAssessment"]
    (serious,) = [p for p in risk["prediction"] if "qualitativeRisk" in p]
    assert 'answered "don\'t know": saddle_numbness' in serious["rationale"]
    assert "rules: red_flag_dont_know" in serious["rationale"]
    plain = [p for p in _resources(make_prediction().to_fhir())["RiskAssessment"][0]["prediction"]]
    assert not any("don't know" in p.get("rationale", "") for p in plain)


def test_cause_code_is_the_icd10_code_where_one_was_verified() -> None:
    assert make_prediction().cause_code == {
        "system": "http://hl7.org/fhir/sid/icd-10",
        "code": "M48.0",
        "display": "Spinal stenosis",
    }
    assert make_prediction(cause="foraminal_stenosis").cause_code is None


def test_every_code_has_a_source_and_the_readme_lists_it() -> None:
    from pathlib import Path

    from vignettes.codes import SYSTEMS, load_codes

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    coded = 0
    for entries in load_codes().values():
        for entry in entries.values():
            for system in SYSTEMS:
                if system in entry:
                    coded += 1
                    assert entry[system]["source"].strip()
                    assert entry[system]["code"] in readme
            assert entry["text"]
    assert coded >= 2
