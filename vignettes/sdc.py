"""The intake as a FHIR R4 SDC Questionnaire, and a case as a QuestionnaireResponse and back.

Everything here is generated from :mod:`vignettes.schema`, never written by hand: one item per
field, ``linkId`` = the field name, ``text`` = the question the interview asks
(``Field.question``), and the type from the field's kind:

=============  ===========  ==================================================================
schema kind    item type    answer in a response
=============  ===========  ==================================================================
``int``        integer      ``valueInteger`` (``minValue`` / ``maxValue`` extensions)
``float``      decimal      ``valueDecimal`` (an integral JSON number is accepted too)
``bool``       boolean      ``valueBoolean``
``category``   choice       ``valueCoding`` from the field's ``answerOption`` list
=============  ===========  ==================================================================

The items sit in three groups: ``history`` (what the patient can answer), ``examination``
(the items that need a clinician's examination, marked clinician-only by the
:data:`CLINICIAN_ONLY` extension on the group and on each item) and ``red_flags`` (the
article's red-flag questions). Only ``age`` is required. ``enableWhen`` is written for a field
that declares a dependency (``Field.enable_when``); the contract's fields declare none: an MRI
finding has its own ``not_done`` answer rather than a separate "was an MRI done" question.

The dicts are plain JSON-ready Python (the hot path builds dicts); the tests validate them with
the ``fhir.resources`` R4B models. A response is read back by :func:`from_questionnaire_response`,
which refuses, by ``linkId`` and with the project's one error type
(:class:`vignettes.intake.IntakeError`), an unknown ``linkId``, a wrong answer type, two answers
to one item, one item answered twice, and a response to another Questionnaire; the answers then go
through :func:`vignettes.validate_case` like any other case.
"""

from __future__ import annotations

import copy
import difflib
import math
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd

from vignettes.intake import IntakeError, asked_fields, validate_case
from vignettes.schema import FIELD_BY_NAME, FIELDS, Field

__all__ = [
    "ANSWER_SYSTEM_BASE",
    "CANONICAL_BASE",
    "CLINICIAN_ONLY",
    "GROUPS",
    "QUESTIONNAIRE_URL",
    "asked_in_response",
    "from_questionnaire_response",
    "is_questionnaire_response",
    "package_version",
    "questionnaire",
    "to_questionnaire_response",
]

CANONICAL_BASE = "http://sciatica-triage.example.org/fhir"
"""Base of the project's canonical URLs. ``example.org`` is reserved for examples (RFC 2606):
the project publishes no FHIR server, so its canonical URLs are identifiers, not addresses."""
QUESTIONNAIRE_URL = f"{CANONICAL_BASE}/Questionnaire/sciatica-intake"
"""Canonical URL of the intake Questionnaire; a response names it in ``questionnaire``."""
ANSWER_SYSTEM_BASE = f"{CANONICAL_BASE}/CodeSystem"
"""A choice field's answers are codes of the system ``{ANSWER_SYSTEM_BASE}/{field name}``; the
code is the contract's value (``"outer_leg_big_toe"``)."""
CLINICIAN_ONLY = f"{CANONICAL_BASE}/StructureDefinition/clinician-only"
"""Extension (``valueBoolean``) on an item that needs a clinician's examination: a
self-reported intake leaves it unanswered. SDC has no standard element for who may answer an
item, so the project defines this one."""
_MIN_VALUE = "http://hl7.org/fhir/StructureDefinition/minValue"
_MAX_VALUE = "http://hl7.org/fhir/StructureDefinition/maxValue"
_UNIT = "http://hl7.org/fhir/StructureDefinition/questionnaire-unit"
_UCUM = "http://unitsofmeasure.org"
_UNITS = {"age": ("a", "years"), "duration_weeks": ("wk", "weeks")}
"""UCUM units of the numeric fields (``a`` = year, ``wk`` = week)."""

GROUPS: tuple[tuple[str, str], ...] = (
    ("history", "History (answered by the patient or from the history)"),
    ("examination", "Examination (a clinician's findings)"),
    ("red_flags", "Red flags (ask every one before reassuring)"),
)
"""The Questionnaire's groups, ``(linkId, text)``, in order."""

_ITEM_TYPE = {"int": "integer", "float": "decimal", "bool": "boolean", "category": "choice"}
_ANSWER_KEY = {
    "int": "valueInteger",
    "float": "valueDecimal",
    "bool": "valueBoolean",
    "category": "valueCoding",
}


@cache
def package_version() -> str:
    """The installed package's version (``"unknown"`` in a checkout that was never installed)."""
    try:
        return metadata.version("sciatica-triage")
    except metadata.PackageNotFoundError:
        return "unknown"


def group_of(field: Field) -> str:
    """The linkId of the group a field's item sits in."""
    if field.red_flag:
        return "red_flags"
    return "examination" if field.examination else "history"


def answer_system(field: Field) -> str:
    """The code system of a choice field's answers."""
    return f"{ANSWER_SYSTEM_BASE}/{field.name}"


def _display(value: str) -> str:
    return value.replace("_", " ")


def _item(field: Field) -> dict[str, Any]:
    item: dict[str, Any] = {
        "linkId": field.name,
        "text": field.question,
        "type": _ITEM_TYPE[field.kind],
        "required": field.name == "age",
    }
    extensions: list[dict[str, Any]] = []
    if field.examination:
        extensions.append({"url": CLINICIAN_ONLY, "valueBoolean": True})
    if field.kind in ("int", "float"):
        key = "valueInteger" if field.kind == "int" else "valueDecimal"
        cast = int if field.kind == "int" else float
        if field.low is not None:
            extensions.append({"url": _MIN_VALUE, key: cast(field.low)})
        if field.high is not None:
            extensions.append({"url": _MAX_VALUE, key: cast(field.high)})
        if field.name in _UNITS:
            code, display = _UNITS[field.name]
            coding = {"system": _UCUM, "code": code, "display": display}
            extensions.append({"url": _UNIT, "valueCoding": coding})
    if extensions:
        item["extension"] = extensions
    if field.kind == "category":
        system = answer_system(field)
        item["answerOption"] = [
            {"valueCoding": {"system": system, "code": v, "display": _display(v)}}
            for v in field.values
        ]
    if field.enable_when:
        item["enableWhen"] = [
            _enable_when(FIELD_BY_NAME[name], value) for name, value in field.enable_when
        ]
        item["enableBehavior"] = "all"
    return item


def _enable_when(field: Field, value: object) -> dict[str, Any]:
    """``enableWhen``: the item shows when ``field`` was answered ``value``."""
    ((key, answer),) = _answer(field, value).items()
    return {"question": field.name, "operator": "=", "answer" + key[len("value") :]: answer}


@cache
def _questionnaire(version: str) -> dict[str, Any]:
    groups = []
    for link_id, text in GROUPS:
        members = [_item(f) for f in FIELDS if group_of(f) == link_id]
        group: dict[str, Any] = {"linkId": link_id, "text": text, "type": "group", "item": members}
        if link_id == "examination":
            group["extension"] = [{"url": CLINICIAN_ONLY, "valueBoolean": True}]
        groups.append(group)
    return {
        "resourceType": "Questionnaire",
        "id": "sciatica-intake",
        "meta": {
            "profile": ["http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire"],
        },
        "url": QUESTIONNAIRE_URL,
        "version": version,
        "name": "SciaticaIntake",
        "title": "Lower back pain radiating to the leg: triage intake",
        "status": "draft",
        "experimental": True,
        "subjectType": ["Patient"],
        "description": (
            "The sciatica-triage intake, generated from vignettes.schema. Research software "
            "trained on synthetic data; not a medical device and not medical advice. Only age "
            "is required: an unanswered item means 'not asked / unknown'."
        ),
        "item": groups,
    }


def questionnaire() -> dict[str, Any]:
    """The intake as an SDC Questionnaire (FHIR R4), generated from :mod:`vignettes.schema`.

    Returns
    -------
    dict
        A JSON-ready ``Questionnaire`` resource: canonical :data:`QUESTIONNAIRE_URL`, ``version``
        = the package version, one item per contract field (``linkId`` = field name) in the
        groups of :data:`GROUPS`. A fresh copy each call.

    Examples
    --------
    >>> q = questionnaire()
    >>> q["url"], [g["linkId"] for g in q["item"]]  # doctest: +NORMALIZE_WHITESPACE
    ('http://sciatica-triage.example.org/fhir/Questionnaire/sciatica-intake',
     ['history', 'examination', 'red_flags'])
    >>> q["item"][0]["item"][0]["linkId"], q["item"][0]["item"][0]["required"]
    ('age', True)
    """
    return copy.deepcopy(_questionnaire(package_version()))


# --------------------------------------------------------------------------------------------
# Case -> QuestionnaireResponse
# --------------------------------------------------------------------------------------------


def _answer(field: Field, value: object) -> dict[str, Any]:
    """One validated value as the ``value[x]`` of an answer."""
    if field.kind == "category":
        code = str(value)
        return {
            "valueCoding": {"system": answer_system(field), "code": code, "display": _display(code)}
        }
    if field.kind == "bool":
        return {"valueBoolean": bool(value)}  # type: ignore[arg-type]
    if field.kind == "int":
        return {"valueInteger": int(value)}  # type: ignore[call-overload]
    return {"valueDecimal": float(value)}  # type: ignore[arg-type]


def to_questionnaire_response(
    case: Mapping[str, Any] | pd.Series | Any,
    *,
    response_id: str | None = None,
    subject: str | None = None,
    status: str = "completed",
    asked: Iterable[str] | None = None,
) -> dict[str, Any]:
    """One case as a QuestionnaireResponse to :func:`questionnaire`.

    Parameters
    ----------
    case : mapping, pandas.Series or dataclass instance
        The intake answers (a generated row validates as it is: labels are ignored).
    response_id : str, optional
        The resource's ``id``.
    subject : str, optional
        A reference such as ``"Patient/123"`` or ``"urn:uuid:..."`` for ``subject``.
    status : str, default="completed"
        The response's ``status``.
    asked : iterable of str, optional
        The fields that were asked, whatever the answer. An asked field left unknown (a
        "don't know") is kept as an item without an answer, which
        :func:`asked_in_response` reads back as asked; default: only the known answers.

    Returns
    -------
    dict
        A JSON-ready ``QuestionnaireResponse``; ``questionnaire`` is ``url|version``. An unknown
        answer is absent unless it was asked (then an item without an answer), and a group with
        no item is left out.

    Raises
    ------
    IntakeError
        If the case breaks the contract (see :func:`vignettes.validate_case`), or ``asked``
        holds a name that is not an intake field.

    Examples
    --------
    >>> qr = to_questionnaire_response({"age": 67, "worse_walking": True})
    >>> [(i["linkId"], [a["linkId"] for a in i["item"]]) for i in qr["item"]]
    [('history', ['age', 'worse_walking'])]
    >>> from_questionnaire_response(qr)["worse_walking"]
    True
    >>> qr = to_questionnaire_response({"age": 67}, asked=["fever"])  # "don't know"
    >>> qr["item"][-1]
    {'linkId': 'red_flags', 'item': [{'linkId': 'fever'}]}
    >>> asked_in_response(qr)
    ['age', 'fever']
    """
    answers = validate_case(case)
    dont_know = set(asked_fields(asked))
    groups: dict[str, list[dict[str, Any]]] = {link_id: [] for link_id, _ in GROUPS}
    for field in FIELDS:
        value = answers[field.name]
        if value is not None:
            groups[group_of(field)].append(
                {"linkId": field.name, "answer": [_answer(field, value)]}
            )
        elif field.name in dont_know:  # asked, left unknown: the item, with no answer
            groups[group_of(field)].append({"linkId": field.name})
    response: dict[str, Any] = {"resourceType": "QuestionnaireResponse"}
    if response_id is not None:
        response["id"] = response_id
    response["questionnaire"] = f"{QUESTIONNAIRE_URL}|{package_version()}"
    response["status"] = status
    if subject is not None:
        response["subject"] = {"reference": subject}
    response["item"] = [
        {"linkId": link_id, "item": items} for link_id, items in groups.items() if items
    ]
    return response


# --------------------------------------------------------------------------------------------
# QuestionnaireResponse -> case
# --------------------------------------------------------------------------------------------

_GROUP_IDS = frozenset(link_id for link_id, _ in GROUPS)
_ALL_LINK_IDS = (*(link_id for link_id, _ in GROUPS), *FIELD_BY_NAME)


def is_questionnaire_response(value: object) -> bool:
    """Whether ``value`` is a mapping that says it is a QuestionnaireResponse."""
    return isinstance(value, Mapping) and value.get("resourceType") == "QuestionnaireResponse"


def _refuse(link_id: str, allowed: str, problem: str) -> IntakeError:
    return IntakeError(link_id, allowed, f"{link_id}: {problem}; expected {allowed}")


def _walk(items: object, where: str) -> Iterator[Mapping[str, Any]]:
    """Every answered field item of a response, through its groups."""
    if not isinstance(items, list):
        raise _refuse(where, "a list of items", f"item is {type(items).__name__}, not a list")
    for item in items:
        if not isinstance(item, Mapping) or not isinstance(item.get("linkId"), str):
            raise _refuse(where, "items with a string linkId", "an item has no linkId")
        link_id = item["linkId"]
        if link_id in _GROUP_IDS:
            if "answer" in item:
                raise _refuse(link_id, "no answer on a group", "a group item carries an answer")
            yield from _walk(item.get("item", []), link_id)
        elif link_id in FIELD_BY_NAME:
            yield item
        else:
            close = difflib.get_close_matches(link_id, _ALL_LINK_IDS, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise _refuse(
                link_id,
                f"a linkId of {QUESTIONNAIRE_URL}: a group ({', '.join(sorted(_GROUP_IDS))}) "
                "or a field name listed in docs/interface.md",
                f"unknown linkId {link_id!r}{hint}",
            )


def _value(field: Field, answer: object) -> object:
    """The contract value of one answer, refusing a wrong ``value[x]`` by linkId."""
    key = _ANSWER_KEY[field.kind]
    allowed = f"one answer with {key} ({field.allowed()})"
    if not isinstance(answer, Mapping):
        raise _refuse(field.name, allowed, f"the answer is {type(answer).__name__}")
    keys = [k for k in answer if k.startswith("value")]
    if keys != [key]:
        got = ", ".join(keys) or "no value[x]"
        raise _refuse(field.name, allowed, f"wrong answer type: got {got}")
    value = answer[key]
    if field.kind == "category":
        if not isinstance(value, Mapping):
            raise _refuse(field.name, allowed, f"valueCoding is {type(value).__name__}")
        system, code = value.get("system"), value.get("code")
        if system is not None and system != answer_system(field):
            raise _refuse(
                field.name,
                f"codes of {answer_system(field)}: " + ", ".join(field.values),
                f"code system {system!r} is not this item's",
            )
        return code  # validate_case checks it is one of the allowed values
    if field.kind == "bool":
        if not isinstance(value, bool):
            raise _refuse(field.name, allowed, f"valueBoolean {value!r} is not true/false")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise _refuse(field.name, allowed, f"{key} {value!r} is not a number")
    if field.kind == "int":
        if isinstance(value, float | np.floating):
            raise _refuse(field.name, allowed, f"valueInteger {value!r} is not an integer")
        return int(value)
    if math.isnan(float(value)):
        raise _refuse(field.name, allowed, "valueDecimal is NaN (leave the item out for unknown)")
    return float(value)


def asked_in_response(response: Mapping[str, Any]) -> list[str]:
    """The fields a QuestionnaireResponse says were asked: every field item it holds, answered or
    not, in schema order. An item present without an answer was asked and left unanswered (a
    "don't know"); an item left out was not asked. Raises like
    :func:`from_questionnaire_response` for an unknown ``linkId``."""
    present = {item["linkId"] for item in _walk(response.get("item", []), "item")}
    return [name for name in FIELD_BY_NAME if name in present]


def _is_intake_url(canonical: object) -> bool:
    return isinstance(canonical, str) and canonical.split("|", 1)[0] == QUESTIONNAIRE_URL


def _answers_the_intake(response: Mapping[str, Any], canonical: object) -> bool:
    """Whether ``questionnaire`` is the intake's canonical URL, or ``#id`` of a contained
    Questionnaire whose ``derivedFrom`` is (SDC's adaptive form: the questions asked so far)."""
    if _is_intake_url(canonical):
        return True
    if not isinstance(canonical, str) or not canonical.startswith("#"):
        return False
    for resource in response.get("contained") or []:
        if (
            isinstance(resource, Mapping)
            and resource.get("resourceType") == "Questionnaire"
            and resource.get("id") == canonical[1:]
        ):
            return any(_is_intake_url(url) for url in resource.get("derivedFrom") or [])
    return False


def from_questionnaire_response(response: Mapping[str, Any]) -> dict[str, object]:
    """The case a QuestionnaireResponse to :func:`questionnaire` holds.

    Parameters
    ----------
    response : mapping
        A ``QuestionnaireResponse`` as a JSON-ready dict. Its ``questionnaire`` must be
        :data:`QUESTIONNAIRE_URL` (any version: each ``linkId`` is checked), or ``#id`` of a
        contained Questionnaire derived from it (``derivedFrom``), as the adaptive interview's
        ``$next-question`` answers. Items may sit in their groups or at the top level; an
        unanswered item (or one with no ``answer``) is unknown.

    Returns
    -------
    dict
        What :func:`vignettes.validate_case` returns: every field in schema order, ``None``
        where unknown. ``from_questionnaire_response(to_questionnaire_response(case))`` equals
        ``validate_case(case)``.

    Raises
    ------
    IntakeError
        Naming the ``linkId`` (or ``resourceType`` / ``questionnaire``) and what is allowed: not
        a QuestionnaireResponse, a response to another Questionnaire, an unknown ``linkId``, a
        wrong answer type, two answers to one item, an item given twice, or a value the
        contract refuses (out of range, an unknown code, ``age`` missing).

    Examples
    --------
    >>> qr = {"resourceType": "QuestionnaireResponse", "questionnaire": QUESTIONNAIRE_URL,
    ...       "status": "completed", "item": [{"linkId": "agee", "answer": [{"valueInteger": 4}]}]}
    >>> from_questionnaire_response(qr)
    Traceback (most recent call last):
    ...
    vignettes.intake.IntakeError: agee: unknown linkId 'agee' (did you mean 'age'?); expected ...
    """
    if not is_questionnaire_response(response):
        kind = response.get("resourceType") if isinstance(response, Mapping) else None
        got = repr(kind) if kind is not None else type(response).__name__
        raise _refuse("resourceType", "'QuestionnaireResponse'", f"got {got}")
    canonical = response.get("questionnaire")
    if not _answers_the_intake(response, canonical):
        raise _refuse(
            "questionnaire",
            f"{QUESTIONNAIRE_URL!r} (optionally '|version'), or a contained Questionnaire "
            "derived from it (an adaptive interview's)",
            f"the response answers another Questionnaire ({canonical!r})",
        )
    case: dict[str, object] = {}
    for item in _walk(response.get("item", []), "item"):
        field = FIELD_BY_NAME[item["linkId"]]
        if field.name in case:
            raise _refuse(field.name, "each item once", "the item is answered twice")
        answers = item.get("answer", [])
        if not isinstance(answers, list):
            raise _refuse(field.name, "a list of answers", "answer is not a list")
        if len(answers) > 1:
            raise _refuse(
                field.name,
                "at most one answer (the item does not repeat)",
                f"{len(answers)} answers to one item",
            )
        case[field.name] = _value(field, answers[0]) if answers else None
    return validate_case(case)
