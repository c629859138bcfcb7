"""The interview over FHIR SDC and in a browser, on the CDS Hooks server (``make cds``).

- ``POST /Questionnaire/$next-question``: the SDC adaptive-questionnaire operation. In: a
  QuestionnaireResponse with a contained Questionnaire (the questions asked so far; an item of the
  Questionnaire without an answer in the response is a "don't know"), or a Parameters resource
  whose ``questionnaireResponse`` part holds one. Out: the same response with the next question
  added to the contained Questionnaire and ``status: in-progress``, or ``status: completed`` when
  the stop rule (:mod:`serve.questions`) says stop. The triage so far and the question's
  rationale travel as extensions (:data:`EXTENSIONS`). Bad input is answered 400 with an
  OperationOutcome whose ``expression`` names the ``linkId``.
- ``GET /interview``: a page for a patient or clinician at a browser, one question at a time with
  answer buttons and "don't know", the tier and the top causes after each answer, and the final
  summary with the advice. Plain HTML forms (no script, nothing from any CDN), usable by keyboard,
  readable on a phone-sized window. The answers so far travel in the form (``state``), so the
  server keeps nothing.

Both call :func:`serve.interview.interview_step`, as the terminal does.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse

from model.intake import IntakeError, validate_case
from serve.api import asked_fields
from serve.cds.errors import FHIR_JSON, Issue, ServiceError, request_json
from serve.explanation import next_step_text
from serve.interview import interview_step, top_causes_text, words
from serve.questions import option_words
from vignettes.readers import InputFormatError, loads_json
from vignettes.schema import FIELD_BY_NAME, FIELD_NAMES
from vignettes.sdc import CANONICAL_BASE, QUESTIONNAIRE_URL, answer_system

__all__ = ["EXTENSIONS", "QUESTIONNAIRE_ID", "next_question", "router"]

BASE = f"{CANONICAL_BASE}/StructureDefinition"
EXTENSIONS = {
    "tier": f"{BASE}/interview-tier",
    "tier_text": f"{BASE}/interview-tier-text",
    "top_causes": f"{BASE}/interview-top-causes",
    "rationale": f"{BASE}/interview-rationale",
    "stop_reason": f"{BASE}/interview-stop-reason",
    "advice": f"{BASE}/interview-advice",
}
"""The extensions the operation adds, by what they carry. On the QuestionnaireResponse:
``interview-tier`` (valueCode: the tier shown, at least review after a red-flag "don't know"),
``interview-tier-text`` (valueString: the tier with its probability and threshold in words),
``interview-top-causes`` (valueString), ``interview-stop-reason`` (valueString, at the stop),
``interview-advice`` (valueString, one per advice item, at the stop). On the new Questionnaire
item: ``interview-rationale`` (valueString: why it is asked)."""
QUESTIONNAIRE_ID = "sciatica-interview"

router = APIRouter()


# --------------------------------------------------------------------------------------------
# FHIR: QuestionnaireResponse <-> answers
# --------------------------------------------------------------------------------------------


def _item(field_name: str, rationale: str) -> dict[str, Any]:
    spec = FIELD_BY_NAME[field_name]
    item: dict[str, Any] = {"linkId": field_name, "text": spec.question}
    if spec.kind == "bool":
        item["type"] = "boolean"
    elif spec.kind == "category":
        item["type"] = "choice"
        system = answer_system(spec)  # the intake Questionnaire's own codes
        item["answerOption"] = [
            {"valueCoding": {"system": system, "code": code, "display": text}}
            for code, text in option_words(field_name)
        ]
    else:
        item["type"] = "integer" if spec.kind == "int" else "decimal"
    if rationale:
        item["extension"] = [{"url": EXTENSIONS["rationale"], "valueString": rationale}]
    return item


def _bad(message: str, link_id: str | None = None) -> ServiceError:
    where = f"QuestionnaireResponse.item[linkId='{link_id}']" if link_id else None
    return ServiceError(400, [Issue(message, where)])


def _answer_value(link_id: str, answer: Mapping[str, Any]) -> Any:
    spec = FIELD_BY_NAME[link_id]
    if spec.kind == "bool" and "valueBoolean" in answer:
        return answer["valueBoolean"]
    if spec.kind == "category":
        coding = answer.get("valueCoding")
        if isinstance(coding, Mapping) and "code" in coding:
            return coding["code"]
        if "valueString" in answer:
            return answer["valueString"]
    if spec.kind in ("int", "float"):
        for key in ("valueInteger", "valueDecimal"):
            if key in answer:
                return answer[key]
    expected = {"bool": "valueBoolean", "category": "valueCoding"}.get(spec.kind, "valueDecimal")
    raise _bad(f"{link_id}: expected an answer as {expected} ({spec.allowed()})", link_id)


def read_response(resource: Any) -> tuple[dict[str, Any], list[str], dict[str, Any]]:
    """The answers, the fields asked and the QuestionnaireResponse of a request body.

    Raises
    ------
    serve.cds.errors.ServiceError
        400 with an OperationOutcome naming the ``linkId`` (or the member) that is wrong.
    """
    if isinstance(resource, Mapping) and resource.get("resourceType") == "Parameters":
        parts = [
            p.get("resource")
            for p in resource.get("parameter") or []
            if isinstance(p, Mapping) and p.get("name") == "questionnaireResponse"
        ]
        if not parts:
            raise ServiceError(
                400, [Issue("Parameters: expected a questionnaireResponse part", "parameter")]
            )
        resource = parts[0]
    if not isinstance(resource, Mapping) or resource.get("resourceType") != (
        "QuestionnaireResponse"
    ):
        raise ServiceError(
            400, [Issue("expected a QuestionnaireResponse (or Parameters)", "resourceType")]
        )
    contained = [
        r
        for r in resource.get("contained") or []
        if isinstance(r, Mapping) and r.get("resourceType") == "Questionnaire"
    ]
    asked: list[str] = []
    for item in contained[0].get("item") or [] if contained else []:
        link = item.get("linkId") if isinstance(item, Mapping) else None
        if link not in FIELD_BY_NAME:
            raise ServiceError(
                400,
                [
                    Issue(
                        f"{link}: unknown linkId; expected an intake field",
                        f"Questionnaire.item[linkId='{link}']",
                    )
                ],
            )
        asked.append(str(link))
    answers: dict[str, Any] = {}
    items = resource.get("item") or []
    if not isinstance(items, list):
        raise ServiceError(400, [Issue("item: expected a list", "QuestionnaireResponse.item")])
    for item in items:
        if not isinstance(item, Mapping):
            raise ServiceError(400, [Issue("item: expected objects", "QuestionnaireResponse.item")])
        link = item.get("linkId")
        if link not in FIELD_BY_NAME:
            raise _bad(f"{link}: unknown linkId; expected an intake field", str(link))
        if link in answers:  # never pick one of two answers to the same question
            raise _bad(f"{link}: the item is answered twice; expected it once", str(link))
        given = item.get("answer") or []
        if not isinstance(given, list) or not all(isinstance(a, Mapping) for a in given):
            raise _bad(f"{link}: answer: expected a list of answer objects", str(link))
        if len(given) > 1:
            raise _bad(f"{link}: expected one answer, got {len(given)}", str(link))
        answers[str(link)] = _answer_value(str(link), given[0]) if given else None
        if link not in asked:
            asked.append(str(link))
    if answers.get("age") is None:
        raise _bad("age: required (an integer from 18 to 100)", "age")
    try:
        valid = validate_case(answers)
    except IntakeError as exc:
        raise _bad(str(exc), exc.field if exc.field in FIELD_BY_NAME else None) from None
    return valid, asked, dict(resource)


def _answer_item(link_id: str, value: Any) -> dict[str, Any]:
    spec = FIELD_BY_NAME[link_id]
    item: dict[str, Any] = {"linkId": link_id, "text": spec.question}
    if value is None:
        return item
    if spec.kind == "bool":
        item["answer"] = [{"valueBoolean": bool(value)}]
    elif spec.kind == "category":
        item["answer"] = [
            {"valueCoding": {"system": answer_system(spec), "code": value, "display": words(value)}}
        ]
    elif spec.kind == "int":
        item["answer"] = [{"valueInteger": int(value)}]
    else:
        item["answer"] = [{"valueDecimal": float(value)}]
    return item


def next_question(predict: Any, body: Any) -> dict[str, Any]:
    """The ``$next-question`` answer for a request body (see the module docstring)."""
    answers, asked, response = read_response(body)
    step = interview_step(SimpleNamespace(predict=predict), answers, asked)
    contained = [
        r
        for r in response.get("contained") or []
        if isinstance(r, Mapping) and r.get("resourceType") == "Questionnaire"
    ]
    questionnaire = dict(contained[0]) if contained else {}
    questionnaire.setdefault("resourceType", "Questionnaire")
    questionnaire.setdefault("id", QUESTIONNAIRE_ID)
    questionnaire.setdefault("status", "active")
    # the intake's questions, codes and linkIds: its response reads as an intake's does
    questionnaire.setdefault("derivedFrom", [QUESTIONNAIRE_URL])
    items = [dict(i) for i in questionnaire.get("item") or []]
    if not any(i.get("linkId") == "age" for i in items):
        items.insert(0, _item("age", "Required: the causes' chances depend on age."))
    if step.question is not None:
        items.append(_item(step.question.field, step.question.rationale))
    questionnaire["item"] = items
    others = [r for r in response.get("contained") or [] if r not in contained]
    out = dict(response)
    out["contained"] = [questionnaire, *others]
    out["questionnaire"] = f"#{questionnaire['id']}"
    out["status"] = "completed" if step.question is None else "in-progress"
    out["item"] = [_answer_item(f, answers.get(f)) for f in FIELD_NAMES if f in asked or f == "age"]
    kept = [
        e
        for e in response.get("extension") or []
        if isinstance(e, Mapping) and e.get("url") not in EXTENSIONS.values()
    ]
    extension = [
        *kept,
        {"url": EXTENSIONS["tier"], "valueCode": step.tier},
        {"url": EXTENSIONS["tier_text"], "valueString": step.tier_text},
        {"url": EXTENSIONS["top_causes"], "valueString": top_causes_text(step.prediction)},
    ]
    if step.question is None:
        extension.append({"url": EXTENSIONS["stop_reason"], "valueString": step.stop_reason})
        extension += [
            {"url": EXTENSIONS["advice"], "valueString": text} for text in step.prediction.advice
        ]
    out["extension"] = extension
    return out


@router.post("/Questionnaire/$next-question", summary="SDC adaptive questionnaire: next item")
async def next_question_route(request: Request) -> JSONResponse:
    out = next_question(request.app.state.predict, await request_json(request))
    return JSONResponse(out, media_type=FHIR_JSON)


# --------------------------------------------------------------------------------------------
# The browser page
# --------------------------------------------------------------------------------------------

STYLE = """
body{font-family:system-ui,sans-serif;max-width:40rem;margin:0 auto;padding:1rem;line-height:1.5}
h1{font-size:1.3rem} .tier{padding:.6rem;border-left:.4rem solid #555;background:#f3f3f3}
.tier.emergency,.tier.urgent{border-color:#b00020} .tier.review{border-color:#c77700}
.tier.routine{border-color:#2e7d32} button{font-size:1.05rem;margin:.25rem .25rem .25rem 0;
padding:.6rem 1rem;min-width:6rem} button:focus,input:focus{outline:3px solid #1565c0}
.why{color:#444;font-size:.9rem} .note{font-size:.85rem;color:#555} input{font-size:1.05rem}
"""


def _page(body: str) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>sciatica-triage interview</title><style>{STYLE}</style></head><body>"
        "<h1>Leg and back pain: questions</h1>"
        "<p class='note'>Research software on synthetic data: not a medical device, not "
        f"medical advice.</p>{body}</body></html>"
    )


def _state_field(answers: Mapping[str, Any], asked: list[str]) -> str:
    state = json.dumps({"answers": dict(answers), "asked": asked})
    return f"<input type='hidden' name='state' value='{html.escape(state, quote=True)}'>"


def _read_state(text: str | None) -> tuple[dict[str, Any], list[str]]:
    """The answers and the fields asked that the page carries, checked like any intake: a
    duplicated key, an unknown field or a bad value is refused by name, never dropped."""
    if not text:
        return {}, []
    try:
        state = loads_json(text, "state")
    except InputFormatError as exc:
        raise ServiceError(400, [Issue(str(exc), "state")]) from None
    if (
        not isinstance(state, dict)
        or set(state) != {"answers", "asked"}
        or not isinstance(state["answers"], dict)
        or not isinstance(state["asked"], list)
    ):
        message = 'state: expected {"answers": {...}, "asked": [...]}'
        raise ServiceError(400, [Issue(message, "state")])
    answers = dict(state["answers"])
    has_age = answers.get("age") is not None
    try:  # before age is answered, the rest are checked against a placeholder age
        checked = validate_case(answers if has_age else answers | {"age": 50})
        asked = asked_fields(state["asked"])
    except IntakeError as exc:
        raise ServiceError(400, [Issue(f"state: {exc}", "state")]) from None
    known = {k: checked[k] for k in answers if k != "age" or has_age}
    return known, asked


def _question_form(field_name: str, rationale: str, answers: dict, asked: list[str]) -> str:
    spec = FIELD_BY_NAME[field_name]
    hidden = _state_field(answers, asked) + (
        f"<input type='hidden' name='field' value='{field_name}'>"
    )
    if spec.kind in ("int", "float"):
        unit = "years" if field_name == "age" else "weeks"
        control = (
            f"<label for='value'>{unit}</label> <input id='value' name='value' type='number' "
            f"min='{spec.low or 0:g}' step='any' inputmode='decimal' autofocus> "
            "<button type='submit' name='answer' value='number'>Next</button>"
        )
    else:
        control = "".join(
            f"<button type='submit' name='answer' value='{html.escape(json.dumps(code))}'"
            f"{' autofocus' if i == 0 else ''}>{html.escape(text)}</button>"
            for i, (code, text) in enumerate(option_words(field_name))
        )
    dont_know = (
        ""
        if field_name == "age"
        else "<button type='submit' name='answer' value='null'>Don't know</button>"
    )
    why = f"<p class='why'>Why this question: {html.escape(rationale)}</p>" if rationale else ""
    return (
        f"<form method='get' action='/interview'>{hidden}"
        f"<fieldset><legend><strong id='question' data-field='{field_name}'>"
        f"{html.escape(spec.question)}</strong></legend>{control}{dont_know}</fieldset>"
        f"</form>{why}"
    )


def _button_value(answer: str | None) -> Any:
    """An answer button's value (JSON: true, false, null or a code in quotes)."""
    try:
        return loads_json(answer or "null", "answer")
    except InputFormatError:
        raise ValueError(f"answer: {answer!r:.40} is not one of the page's answers") from None


@router.get("/interview", summary="the interview in a browser", response_class=HTMLResponse)
async def interview_page(
    request: Request,
    state: str | None = None,
    field: str | None = None,
    answer: str | None = None,
    value: str | None = None,
) -> HTMLResponse:
    answers, asked = _read_state(state)
    error = ""
    if field is not None:
        if field not in FIELD_BY_NAME:
            raise ServiceError(400, [Issue(f"{field}: unknown field", "field")])
        try:
            given = value if answer == "number" else _button_value(answer)
            if given in ("", None):
                given = None
            elif answer == "number":
                given = float(str(given))
                if FIELD_BY_NAME[field].kind == "int" and given.is_integer():
                    given = int(given)
            checked = None
            if given is not None:  # checked with the patient's own age (a duration, say)
                context = {k: v for k, v in answers.items() if k in ("age", "duration_weeks")}
                checked = validate_case({"age": 50, **context, field: given})[field]
            if field == "age" and checked is None:
                raise IntakeError("age", "an integer from 18 to 100", "age is required")
            answers[field] = checked
            if field not in asked:
                asked.append(field)
        except (ValueError, IntakeError) as exc:
            error = f"<p role='alert' class='tier urgent'>{html.escape(str(exc))}</p>"
    if answers.get("age") is None:
        return _page(
            error
            + "<p>Age is required: the causes' chances depend on it.</p>"
            + _question_form("age", "", answers, asked)
        )
    predict = request.app.state.predict
    step = interview_step(SimpleNamespace(predict=predict), answers, asked)
    p = step.prediction
    tier = (
        f"<p class='tier {step.tier}' id='tier' data-tier='{step.tier}' role='status'>"
        f"{html.escape(step.tier_text)}</p>"
        f"<p id='causes'>{html.escape(top_causes_text(p))}</p>"
    )
    if step.question is not None:
        form = _question_form(step.question.field, step.question.rationale, answers, asked)
        return _page(error + tier + form)
    advice = _advice_sections(p)
    known = {k: v for k, v in answers.items() if v is not None}
    summary = (
        "<h2 id='summary'>Summary</h2>"
        f"<p>{html.escape(step.stop_reason)}.</p>"
        f"<p>Next step: <strong id='next-step' data-code='{html.escape(str(p.next_step))}'>"
        f"{html.escape(next_step_text(p))}</strong></p>"
        f"<h3>Advice</h3><div id='advice'>{advice}</div>"
        "<p><a href='/interview'>Start again</a></p>"
        f"<div id='answers' hidden data-answers='{html.escape(json.dumps(known), quote=True)}'>"
        "</div>"
    )
    return _page(error + tier + summary)


def _advice_sections(p: Any) -> str:
    """The advice, the patient's and the clinician's in separate lists (in that order)."""
    parts = []
    for audience, title in (("patient", "For the patient"), ("clinician", "For the clinician")):
        items = [t for t, a in zip(p.advice, p.advice_audiences, strict=True) if a == audience]
        if items:
            lis = "".join(f"<li>{html.escape(t)}</li>" for t in items)
            parts.append(f"<h4>{title}</h4><ul class='advice-{audience}'>{lis}</ul>")
    return "".join(parts)
