"""The bad-input suite shared by the three doors: the Python API, the CLI and HTTP (``make serve``).

Each :class:`BadInput` is one record exactly as a client sends it, as JSON text (so a key may
appear twice, a value may be ``NaN`` or nested 100,000 deep), and the field its refusal must
name (``None`` when the input cannot be read at all: then the refusal names the place). A door
passes an input when it refuses it by name: the Python API with an ``IntakeError`` whose
``field`` is that field, the CLI with exit status 2 and the field in its one-line error, HTTP with
400 and the field in the answer. :func:`tally` counts, per door, what was tried and what was
refused by name; the README states those counts (``tests/test_input_doors.py`` checks them).

The Python API cannot receive JSON text: it receives a pandas ``Series`` of the record's pairs in
order, which keeps a repeated field (a ``dict`` cannot). Inputs that are only text (``NaN``,
nesting) are for the two doors that read text, the CLI and HTTP.

:data:`BAD_RESPONSES` are bad FHIR QuestionnaireResponses, each with the ``linkId`` its refusal
must name and words of what is allowed; every one carries a patient's name and other answers,
which no refusal may repeat. They are not part of :data:`SUITE` (whose counts the README states).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from vignettes.schema import FIELDS
from vignettes.sdc import QUESTIONNAIRE_URL

__all__ = [
    "BAD_RESPONSES",
    "PATIENT_NAME",
    "SUITE",
    "BadInput",
    "BadResponse",
    "Tally",
    "as_series",
    "response",
    "tally",
]


@dataclass(frozen=True)
class BadInput:
    """One bad record: its JSON text and the field its refusal must name."""

    name: str
    text: str
    field: str | None

    @property
    def for_api(self) -> bool:
        """Can a Python caller hand this record to ``serve.predict`` (as a Series)?"""
        return _pairs(self.text) is not None


def _record(*pairs: tuple[str, Any]) -> str:
    """JSON text of an object with these pairs in order (a key may repeat)."""
    return "{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in pairs) + "}"


def _pairs(text: str) -> list[tuple[str, Any]] | None:
    try:
        value = json.loads(text, object_pairs_hook=lambda pairs: pairs, parse_constant=_refuse)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, list) or not all(isinstance(p, tuple) for p in value):
        return None
    return value


def _refuse(name: str) -> Any:
    raise ValueError(name)


def as_series(item: BadInput) -> pd.Series:
    """The record as a Python caller would hand it over: a Series of its pairs, in order."""
    pairs = _pairs(item.text)
    assert pairs is not None, item.name
    return pd.Series([v for _, v in pairs], index=[k for k, _ in pairs], dtype=object)


def _suite() -> list[BadInput]:
    age = ("age", 40)
    items: list[BadInput] = []
    for field in FIELDS:
        name = field.name
        if field.kind == "bool":
            wrong = [("string True", "True"), ("string TRUE", "TRUE"), ("number 1", 1)]
            twice = (True, False)
        elif field.kind == "category":
            wrong = [("unknown value", "not_a_value"), ("boolean", True)]
            twice = (field.values[0], field.values[-1])
        elif name == "age":
            wrong = [("string", "40"), ("fraction", 40.5), ("too young", 17), ("too old", 101)]
            wrong += [("boolean", True)]
            twice = (40, 70)
        else:  # duration_weeks
            wrong = [("negative", -1), ("string", "3"), ("longer than a life", 5000)]
            wrong += [("boolean", True)]
            twice = (2, 200)
        base = [] if name == "age" else [age]
        for label, value in wrong:
            items.append(BadInput(f"{name}: {label}", _record(*base, (name, value)), name))
        first, second = twice
        text = _record(*base, (name, first), (name, second))
        items.append(BadInput(f"{name}: given twice", text, name))
    items += [
        BadInput("age missing", _record(("sex", "male")), "age"),
        BadInput("unknown field", _record(("age", 40), ("fevr", True)), "fevr"),
        BadInput(
            "unknown field, null", _record(("age", 40), ("worse_coughing", None)), "worse_coughing"
        ),
        BadInput("duration 1e400", '{"age": 40, "duration_weeks": 1e400}', "duration_weeks"),
        BadInput("NaN", '{"age": 40, "duration_weeks": NaN}', None),
        BadInput("Infinity", '{"age": 40, "duration_weeks": Infinity}', None),
        BadInput("nested 40 deep", '{"age": 40, "fever": ' + "[" * 40 + "]" * 40 + "}", None),
        BadInput(
            "nested 100,000 deep",
            '{"age": 40, "fever": ' + "[" * 100_000 + "]" * 100_000 + "}",
            None,
        ),
        BadInput("not JSON", '{"age": 40, "fever": tru}', None),
    ]
    return items


SUITE: list[BadInput] = _suite()
"""Every bad record of the suite."""


PATIENT_NAME = "Ada Lovelace"
"""In every bad response (its subject and author); no refusal may repeat it."""


@dataclass(frozen=True)
class BadResponse:
    """One bad QuestionnaireResponse: the linkId its refusal must name, and what is allowed."""

    name: str
    response: dict[str, Any]
    link_id: str
    allowed: str
    """Words of the refusal's first line that say what is allowed."""


def response(*items: dict[str, Any], questionnaire: str = QUESTIONNAIRE_URL) -> dict[str, Any]:
    """A response answering ``age`` (67) and ``numbness`` (yes) in its history group, then
    ``items``, for :data:`PATIENT_NAME`."""
    history = [
        {"linkId": "age", "answer": [{"valueInteger": 67}]},
        {"linkId": "numbness", "answer": [{"valueBoolean": True}]},
    ]
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": questionnaire,
        "status": "completed",
        "subject": {"reference": "Patient/p-1", "display": PATIENT_NAME},
        "author": {"display": PATIENT_NAME},
        "item": [{"linkId": "history", "item": history}, *items],
    }


def _red_flags(*items: dict[str, Any]) -> dict[str, Any]:
    return {"linkId": "red_flags", "item": list(items)}


BAD_RESPONSES: list[BadResponse] = [
    BadResponse(
        "unknown linkId",
        response(_red_flags({"linkId": "fevr", "answer": [{"valueBoolean": True}]})),
        "fevr",
        "expected a linkId of",
    ),
    BadResponse(
        "unknown group",
        response({"linkId": "symptoms", "item": []}),
        "symptoms",
        "expected a linkId of",
    ),
    BadResponse(
        "wrong answer type: text for a yes/no item",
        response(_red_flags({"linkId": "fever", "answer": [{"valueString": PATIENT_NAME}]})),
        "fever",
        "expected one answer with valueBoolean",
    ),
    BadResponse(
        "wrong answer type: a string in valueBoolean",
        response(_red_flags({"linkId": "fever", "answer": [{"valueBoolean": "yes"}]})),
        "fever",
        "expected one answer with valueBoolean",
    ),
    BadResponse(
        "wrong answer type: text for a decimal item",
        response({"linkId": "duration_weeks", "answer": [{"valueString": "three weeks"}]}),
        "duration_weeks",
        "expected one answer with valueDecimal",
    ),
    BadResponse(
        "wrong answer type: text for a choice item",
        response({"linkId": "sides", "answer": [{"valueString": "left"}]}),
        "sides",
        "expected one answer with valueCoding",
    ),
    BadResponse(
        "a code that is not an answer option",
        response({"linkId": "sides", "answer": [{"valueCoding": {"code": "up"}}]}),
        "sides",
        "expected one of 'left', 'right', 'both'",
    ),
    BadResponse(
        "two answers to one item",
        response(
            _red_flags(
                {"linkId": "fever", "answer": [{"valueBoolean": True}, {"valueBoolean": False}]}
            )
        ),
        "fever",
        "expected at most one answer",
    ),
    BadResponse(
        "one item answered twice",
        response(
            _red_flags({"linkId": "fever", "answer": [{"valueBoolean": True}]}),
            {"linkId": "fever", "answer": [{"valueBoolean": False}]},
        ),
        "fever",
        "expected each item once",
    ),
    BadResponse(
        "a response to another Questionnaire",
        response(questionnaire="http://example.org/fhir/Questionnaire/phq-9"),
        "questionnaire",
        f"expected '{QUESTIONNAIRE_URL}'",
    ),
    BadResponse(
        "items that are not a list",
        {**response(), "item": {"linkId": "history"}},
        "item",
        "expected a list of items",
    ),
]
"""Bad QuestionnaireResponses, refused by every door that reads responses."""


@dataclass
class Tally:
    """What one door did with the suite."""

    door: str
    tried: int = 0
    refused_by_name: int = 0
    missed: list[str] | None = None

    def line(self) -> str:
        return f"{self.door}: {self.tried} tried, {self.refused_by_name} refused by name"


def tally(
    door: str, items: Iterable[BadInput], refused_by_name: Callable[[BadInput], bool]
) -> Tally:
    """Run ``refused_by_name`` on every item and count; the misses are listed by name."""
    result = Tally(door, missed=[])
    for item in items:
        result.tried += 1
        if refused_by_name(item):
            result.refused_by_name += 1
        else:
            assert result.missed is not None
            result.missed.append(item.name)
    return result
