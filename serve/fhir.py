"""A prediction as FHIR R4: a collection Bundle with a RiskAssessment and the differential.

:meth:`serve.Prediction.to_fhir` calls :func:`prediction_bundle`. The Bundle holds

* the **QuestionnaireResponse** the prediction was made from (the one given, or one built from
  the prediction's answers), which the RiskAssessment's ``basis`` and each Condition's
  ``evidence`` refer to;
* a **Patient** with no identity, only when no subject is given and the response names none
  (``RiskAssessment.subject`` and ``Condition.subject`` are required in R4);
* the **RiskAssessment**: ``method`` names the model and its registry version; one
  ``prediction`` per cause (``probabilityDecimal``) and one for a serious condition (the
  model's probability, and a ``qualitativeRisk`` from the urgency tier, :data:`TIER_RISK`);
  ``mitigation`` holds the next step and the advice; ``note`` says it is research software,
  not a medical device. The attributions travel in the :data:`ATTRIBUTION` extension on the
  predicted cause's and the serious condition's ``prediction`` (every field, with its exact
  TreeSHAP contribution), and the largest ones in words in their ``rationale``;
* one **Condition** per cause of the differential, most probable first: the first
  ``provisional``, the rest ``differential`` (``verificationStatus``).

Ids are uuid5s of the answers and the model, so the same prediction gives the same Bundle.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from serve.explanation import next_step_text
from vignettes.codes import concept
from vignettes.fhir_common import condition, deterministic_uuid, urn
from vignettes.intake import asked_fields, red_flag_dont_knows
from vignettes.schema import CAUSES
from vignettes.sdc import CANONICAL_BASE, to_questionnaire_response

if TYPE_CHECKING:
    from serve.prediction import Prediction

__all__ = ["ATTRIBUTION", "RISK_SYSTEM", "TIER_RISK", "prediction_bundle"]

ATTRIBUTION = f"{CANONICAL_BASE}/StructureDefinition/feature-attribution"
"""Complex extension on a RiskAssessment ``prediction``: one per intake field, with sub-extensions
``field`` (``valueString``, the field name = the Questionnaire's linkId) and ``contribution``
(``valueDecimal``, the field's exact TreeSHAP contribution to the calibrated logit of that
outcome), plus one ``base`` (``valueDecimal``, the average training case's logit)."""
RISK_SYSTEM = "http://terminology.hl7.org/CodeSystem/risk-probability"
"""FHIR's qualitative risk codes (``negligible``, ``low``, ``moderate``, ``high``, ``certain``)."""
TIER_RISK: dict[str, str] = {
    "emergency": "high",
    "urgent": "high",
    "review": "moderate",
    "routine": "low",
}
"""The urgency tier as a qualitative risk of a serious condition: a reported red-flag sign
(emergency, urgent) is ``high`` whatever the model's probability; the model's own alert (review)
is ``moderate``; routine is ``low`` (never ``negligible``: the screen may be incomplete)."""
_N_REASONS = 5


def _attribution_extension(values: dict[str, float], base: float) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"url": "base", "valueDecimal": float(base)}]
    out += [
        {
            "url": "attribution",
            "extension": [
                {"url": "field", "valueString": name},
                {"url": "contribution", "valueDecimal": float(value)},
            ],
        }
        for name, value in values.items()
    ]
    return [{"url": ATTRIBUTION, "extension": out}]


def _rationale(values: dict[str, float], units: str) -> str:
    ranked = sorted(values.items(), key=lambda kv: -abs(kv[1]))[:_N_REASONS]
    parts = ", ".join(f"{name} {value:+.2f}" for name, value in ranked)
    return f"Largest contributions ({units}): {parts}."


def _mitigation(pred: Prediction) -> str:
    lines = [f"Next step: {next_step_text(pred)}. {pred.urgency_action}"]
    lines += [f"- {text}" for text in pred.advice]
    return "\n".join(lines)


def _urgency_rationale(pred: Prediction) -> str:
    """Why the tier: the red flags reported, those the triage counted as "don't know"
    (:attr:`Prediction.asked` and left unknown, which a response given as it came may not
    show), the rules that fired."""
    dont_know = red_flag_dont_knows(pred.answers, pred.asked)
    said = [
        f"red flags reported: {', '.join(pred.red_flags_fired)}" if pred.red_flags_fired else "",
        f'answered "don\'t know": {", ".join(dont_know)}' if dont_know else "",
        f"rules: {', '.join(pred.urgency_triggers)}" if pred.urgency_triggers else "",
    ]
    shown = "; ".join(part for part in said if part)
    return (
        f"Urgency {pred.urgency}"
        + (f" ({shown})" if shown else "")
        + f"; review threshold {pred.red_flag_threshold:.4f}. "
        + _rationale(pred.red_flag_attributions, "red-flag log-odds")
    )


def _screen_caveat(pred: Prediction) -> str:
    """What a ``low`` likelihood does not mean while the red-flag screen is not complete."""
    if pred.red_flag_screen == "complete":
        return ""
    unanswered = ", ".join(pred.red_flag_questions_unanswered)
    return f"; red-flag screen {pred.red_flag_screen}, not cleared" + (
        f" (unanswered: {unanswered})" if unanswered else ""
    )


def _bundle_id(pred: Prediction, asked: Iterable[str] | None = None) -> str:
    """The same prediction, from the same questions asked, gets the same id; a different tier
    or a different set of questions asked (a "don't know" is not a question never asked) gets
    another, so a server that updates by id never replaces one record with the other."""
    key = json.dumps(
        {
            "answers": pred.answers,
            "model": [pred.model_name, pred.model_version],
            "asked": asked_fields(asked),
            "urgency": [pred.urgency, pred.urgency_triggers],
        },
        sort_keys=True,
        default=str,
    )
    return deterministic_uuid("prediction", key)


def prediction_bundle(
    pred: Prediction,
    response: dict[str, Any] | None = None,
    subject: str | None = None,
    asked: Iterable[str] | None = None,
) -> dict[str, Any]:
    """The prediction as a FHIR R4 collection Bundle; see the module docstring.

    Parameters
    ----------
    pred : Prediction
        The prediction.
    response : dict, optional
        The QuestionnaireResponse it was made from (kept as it is, with an id added if it has
        none); default: one built from ``pred.answers``.
    subject : str, optional
        A reference to the patient (e.g. ``"Patient/123"``); default: the response's subject,
        else an anonymous Patient in the Bundle.
    asked : iterable of str, optional
        The fields that were asked, whatever the answer, for the response built from
        ``pred.answers``: an asked field left unknown stays in it as an item without an answer
        (a "don't know"), not dropped as if never asked. With ``response`` given (kept as it
        came), the RiskAssessment's rationale still names the red-flag questions answered
        "don't know".

    Returns
    -------
    dict
        A JSON-ready ``Bundle`` of type ``collection``.
    """
    key = _bundle_id(pred, asked)
    ids = {name: deterministic_uuid(key, name) for name in ("qr", "patient", "risk")}
    entries: list[dict[str, Any]] = []
    if subject is None and response is not None:
        subject = (response.get("subject") or {}).get("reference")
    if subject is None:
        subject = urn(ids["patient"])
        patient = {
            "resourceType": "Patient",
            "id": ids["patient"],
            "text": {
                "status": "generated",
                "div": '<div xmlns="http://www.w3.org/1999/xhtml">The intake\'s subject '
                "(no identity given).</div>",
            },
        }
        entries.append({"fullUrl": subject, "resource": patient})
    if response is None:
        response = to_questionnaire_response(
            pred.answers, response_id=ids["qr"], subject=subject, asked=asked
        )
    else:
        response = dict(response)
        response.setdefault("id", ids["qr"])
    qr_ref = urn(str(response["id"]))
    entries.insert(0, {"fullUrl": qr_ref, "resource": response})

    predictions: list[dict[str, Any]] = []
    for cause in CAUSES:
        item: dict[str, Any] = {
            "outcome": concept("cause", cause),
            "probabilityDecimal": float(pred.probabilities[cause]),
        }
        if cause == pred.cause:
            item["extension"] = _attribution_extension(pred.attributions, pred.attribution_base)
            item["rationale"] = "The most likely cause. " + _rationale(
                pred.attributions, "calibrated logit of this cause"
            )
        predictions.append(item)
    serious: dict[str, Any] = {
        "extension": _attribution_extension(
            pred.red_flag_attributions, pred.red_flag_attribution_base
        ),
        "outcome": concept("serious_condition", "any"),
        "probabilityDecimal": float(pred.red_flag_probability),
        "qualitativeRisk": {
            "coding": [
                {
                    "system": RISK_SYSTEM,
                    "code": TIER_RISK[pred.urgency],
                    "display": f"{TIER_RISK[pred.urgency].capitalize()} likelihood",
                }
            ],
            "text": f"urgency tier: {pred.urgency}" + _screen_caveat(pred),
        },
        "rationale": _urgency_rationale(pred),
    }
    predictions.append(serious)
    by_condition = getattr(pred, "serious_condition_probabilities", None) or {}
    for name, probability in by_condition.items():
        if probability is None:
            continue
        predictions.append(
            {
                "outcome": concept("serious_condition", name),
                "probabilityDecimal": float(probability),
            }
        )
    risk = {
        "resourceType": "RiskAssessment",
        "id": ids["risk"],
        "status": "final",
        "method": {
            "text": f"sciatica-triage model {pred.model_name}, registry version "
            f"{pred.model_version}"
        },
        "code": {"text": "Triage of lower back pain radiating to the leg"},
        "subject": {"reference": subject},
        "basis": [{"reference": qr_ref}],
        "prediction": predictions,
        "mitigation": _mitigation(pred),
        "note": [{"text": pred.disclaimer}],
    }
    entries.append({"fullUrl": urn(ids["risk"]), "resource": risk})
    for rank, cause in enumerate(pred.differential):
        resource_id = deterministic_uuid(key, "condition", cause)
        resource = condition(
            resource_id,
            "cause",
            cause,
            subject,
            "provisional" if rank == 0 else "differential",
            sides=pred.answers.get("sides"),
            evidence=qr_ref,
            note=f"Model probability {pred.probabilities[cause]:.3f} (rank {rank + 1} of the "
            f"differential, coverage {pred.differential_coverage:.2f}). {pred.disclaimer}",
            active=False,
        )
        entries.append({"fullUrl": urn(resource_id), "resource": resource})
    return {"resourceType": "Bundle", "id": key, "type": "collection", "entry": entries}
