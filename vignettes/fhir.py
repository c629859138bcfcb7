"""Generated vignettes as FHIR R4: one transaction Bundle per case, and Bulk-Data ndjson.

Per case (:func:`to_fhir`, ``python -m vignettes --format fhir``):

* a **Patient**: a name from Faker's ``en_US`` name lists (weighted as Faker weights them,
  drawn per case id, so the same case always gets the same name), ``gender`` from ``sex``
  (``unknown`` when not answered) and a ``birthDate`` that makes the patient exactly ``age``
  years old on the encounter date;
* an **Encounter** (ambulatory, ``serviceType`` = the clinical setting) on a date drawn per case
  in :data:`ENCOUNTER_YEAR`;
* the **QuestionnaireResponse** with the intake answers (an unknown answer is absent), exactly
  :func:`vignettes.to_questionnaire_response` of the row;
* the ground truth: a **Condition** for the cause and one for the serious condition when there
  is one (``verificationStatus`` confirmed; the cause's ``bodySite`` is the laterality from
  ``sides`` when it was answered);
* with ``posterior=True``, a **RiskAssessment** of the exact Bayes posterior
  (:func:`vignettes.posterior`).

Every resource is marked as test data (``meta.security`` HTEST). Ids are uuid5s of the seed,
the setting, the case id and the resource type, so the same seed gives byte-identical files;
inside a Bundle, references are ``urn:uuid:`` fullUrls (each entry is a ``PUT`` of its id, so a
FHIR server can load the Bundle as it is); in the ndjson files they are ``Type/id``.

The resources are rendered as JSON text column by column with NumPy, with no Python loop per
field and row. Each answer's text is chosen from a few prerendered strings by the answer's code
(with or without the comma before it), and a row's text is kept as a matrix of references to
its pieces, so however deeply an item nests, its text is copied once: by one ``join`` per file
when ndjson is written, or one per row for a Bundle. Only the uuid5 hashing runs per row, and
:func:`export_ndjson` writes each chunk on a background thread while it renders the next. The
tests check that the text equals ``json.dumps`` of the dicts built one case at a time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vignettes.codes import concept
from vignettes.fhir_common import ID_NAMESPACE, condition
from vignettes.schema import CAUSES, FIELDS, SERIOUS_CONDITIONS, SETTINGS, Field
from vignettes.sdc import (
    CANONICAL_BASE,
    GROUPS,
    QUESTIONNAIRE_URL,
    _answer,
    group_of,
    package_version,
)

__all__ = [
    "ENCOUNTER_YEAR",
    "HTEST",
    "RESOURCE_TYPES",
    "bundle_lines",
    "resource_lines",
    "resource_texts",
    "to_fhir",
    "write_ndjson",
]

RESOURCE_TYPES: tuple[str, ...] = (
    "Patient",
    "Encounter",
    "QuestionnaireResponse",
    "Condition",
    "RiskAssessment",
)
"""The resource types written, one ndjson file each (``RiskAssessment`` only with the
posterior)."""
HTEST = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
    "code": "HTEST",
    "display": "test health data",
}
"""``meta.security`` of every resource: synthetic test data, not a real patient's."""
ENCOUNTER_YEAR = 2025
"""The year the encounters fall in (a fixed year keeps the files reproducible)."""
_SEP = (",", ":")
_TOKEN = "@@{}@@"
_META = {"security": [HTEST]}
_SETTING_TEXT = {"primary_care": "primary care", "spine_clinic": "spine clinic"}


# --------------------------------------------------------------------------------------------
# Vectorised text
# --------------------------------------------------------------------------------------------


def _dumps(value: object) -> str:
    return json.dumps(value, separators=_SEP, ensure_ascii=False)


def _strings(values: Sequence[str] | np.ndarray, index: np.ndarray | None = None) -> np.ndarray:
    """An object array of strings (``values[index]`` when an index is given)."""
    array = np.asarray(values, dtype=object)
    return array if index is None else array[index]


def _template(rendered: str, tokens: Sequence[str]) -> list[str]:
    """A rendered JSON text cut at each token (in order): the constant pieces between them."""
    pieces, rest = [], rendered
    for token in tokens:
        marker = _TOKEN.format(token)
        head, sep, rest = rest.partition(f'"{marker}"')
        if not sep:
            head, sep, rest = head.partition(marker)
            if not sep:
                raise AssertionError(f"token {token} missing from template")
        pieces.append(head)
    pieces.append(rest)
    return pieces


def _pieces(parts: Sequence[np.ndarray | str], n: int | None = None) -> np.ndarray:
    """Row-wise concatenation, as a matrix of pieces (row ``i`` joined is row ``i``'s text).

    A part is a scalar string (the same in every row), a column of strings or a matrix of
    pieces. Nothing is copied but references: the text is built once, by :func:`_rows` or
    :func:`_joined`, however deeply the parts were nested.
    """
    if n is None:
        n = next(len(p) for p in parts if not isinstance(p, str))
    widths = [1 if isinstance(p, str) or np.ndim(p) == 1 else np.shape(p)[1] for p in parts]
    out = np.empty((n, sum(widths)), dtype=object)
    at = 0
    for part, width in zip(parts, widths, strict=True):
        if width == 1 and not (isinstance(part, np.ndarray) and part.ndim == 2):
            out[:, at] = part
        else:
            out[:, at : at + width] = part
        at += width
    return out


def _blank(pieces: np.ndarray, present: np.ndarray) -> np.ndarray:
    """The pieces, with every piece of an absent row replaced by ``""``."""
    return np.where(present.reshape(-1, 1), pieces.reshape(len(present), -1), "").astype(object)


def _nonempty(
    columns: Sequence[tuple[np.ndarray, np.ndarray]], sep: str = ","
) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise ``sep.join`` of the present ``(pieces, present)`` columns.

    Returns the pieces and whether any column was present in the row.
    """
    present = np.stack([here for _, here in columns], axis=1)
    after_another = np.cumsum(present, axis=1) > present  # a present column comes before
    seps = np.where(present & after_another, sep, "").astype(object)
    parts: list[np.ndarray | str] = []
    for k, (pieces, here) in enumerate(columns):
        parts += [seps[:, k], _blank(pieces, here)]
    return _pieces(parts, len(present)), np.asarray(present.any(axis=1))


def _rows(pieces: np.ndarray) -> np.ndarray:
    """Each row's text (one ``join`` per row)."""
    return np.fromiter(map("".join, pieces.tolist()), dtype=object, count=len(pieces))


def _joined(pieces: np.ndarray) -> str:
    """All rows' text as one string (a single ``join``: the ndjson writer's fast path)."""
    return "".join(pieces.ravel().tolist())


def _fill(
    templates: list[str], which: np.ndarray, tokens: Sequence[str], values: dict
) -> np.ndarray:
    """Pieces of text: template ``templates[which[i]]`` with ``values[token][i]`` at each token.

    A token that stood as a JSON string (``"@@id@@"``) takes the value's JSON text, so values
    must already be JSON (quoted strings, numbers).
    """
    cut = [_template(t, tokens) for t in templates]
    same = len(templates) == 1
    parts: list[np.ndarray | str] = []
    for k in range(len(tokens) + 1):
        parts.append(cut[0][k] if same else _strings([c[k] for c in cut], which))
        if k < len(tokens):
            parts.append(values[tokens[k]])
    return _pieces(parts, len(which))


def _quoted(values: np.ndarray) -> np.ndarray:
    """JSON string literals of plain-ASCII strings without quotes or backslashes (as pieces)."""
    return _pieces(['"', values, '"'], len(values))


def _uuid5(keys: Sequence[str], suffix: str = "") -> np.ndarray:
    """``str(uuid.uuid5(ID_NAMESPACE, key + suffix))`` for every key."""
    return _uuid5_of([ID_NAMESPACE.bytes + key.encode() for key in keys], suffix)


def _uuid5_of(prefixed: Sequence[bytes], suffix: str = "") -> np.ndarray:
    """The uuid5 text of each ``namespace bytes + key`` with ``suffix`` appended to the key.

    Only the SHA-1 runs per key; the version bits and the hex text are NumPy.
    """
    n = len(prefixed)
    if n == 0:
        return np.empty(0, dtype=object)
    sha1, tail = hashlib.sha1, suffix.encode()
    raw = b"".join([sha1(key + tail).digest() for key in prefixed])
    octets = np.frombuffer(raw, dtype=np.uint8).reshape(n, 20)[:, :16].copy()
    octets[:, 6] = (octets[:, 6] & 0x0F) | 0x50  # version 5
    octets[:, 8] = (octets[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    hexed = np.frombuffer(octets.tobytes().hex().encode(), dtype=np.uint8).reshape(n, 32)
    dash = np.full((n, 1), ord("-"), dtype=np.uint8)
    parts = [hexed[:, :8], dash, hexed[:, 8:12], dash, hexed[:, 12:16], dash, hexed[:, 16:20]]
    text = np.concatenate([*parts, dash, hexed[:, 20:]], axis=1)
    return np.ascontiguousarray(text).view("S36").ravel().astype("U36").astype(object)


def _mix(values: np.ndarray, salt: int) -> np.ndarray:
    """A per-value pseudo-random uniform in [0, 1) (splitmix64 of value and salt)."""
    with np.errstate(over="ignore"):
        z = values.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(salt)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _pick(names: Mapping[str, float], u: np.ndarray) -> np.ndarray:
    """Names drawn by their weights, one per uniform."""
    keys = np.asarray(list(names), dtype=object)
    cumulative = np.cumsum(np.fromiter(names.values(), dtype=np.float64))
    return keys[
        np.minimum(np.searchsorted(cumulative / cumulative[-1], u, side="right"), len(keys) - 1)
    ]


# --------------------------------------------------------------------------------------------
# The columns a case needs
# --------------------------------------------------------------------------------------------


class _Case:
    """The per-row values every resource is rendered from."""

    def __init__(self, frame: pd.DataFrame, seed: int) -> None:
        n = len(frame)
        self.n = n
        self.frame = frame
        self.case_id = frame["case_id"].to_numpy(dtype=np.int64)
        setting = frame["setting"].astype(str).to_numpy(dtype=object)
        self.setting_index = pd.Categorical(setting, categories=SETTINGS).codes.astype(np.intp)
        ns = ID_NAMESPACE.bytes
        self._stem = [  # the uuid5 namespace and each row's key, less the resource type
            ns + f"{seed}|{s}|{c}|".encode()
            for s, c in zip(setting, self.case_id.tolist(), strict=True)
        ]
        self._ids: dict[str, np.ndarray] = {}
        salt = int(seed) * 7919
        keyed = self.case_id + (self.setting_index.astype(np.int64) << 40)
        day = np.floor(_mix(keyed, salt) * 365).astype("timedelta64[D]")
        encounter = np.datetime64(f"{ENCOUNTER_YEAR}-01-01") + day
        age = frame["age"].to_numpy(dtype=np.int64)
        years = encounter.astype("datetime64[Y]").astype(np.int64) + 1970 - age
        # the birthday falls 1..364 days before the encounter date's anniversary
        back = 1 + np.floor(_mix(keyed, salt + 1) * 364).astype(np.int64)
        anniversary = _same_day_in_year(encounter, years)
        birth = anniversary - back.astype("timedelta64[D]")
        self.encounter_date = np.datetime_as_string(encounter, unit="D").astype(object)
        self.birth_date = np.datetime_as_string(birth, unit="D").astype(object)
        self.age_check = (encounter, birth, age)
        sex = frame["sex"].astype(object).to_numpy()
        female = sex == "female"
        male = sex == "male"
        from faker.providers.person.en_US import Provider

        u_first, u_last = _mix(keyed, salt + 2), _mix(keyed, salt + 3)
        first_any = {**Provider.first_names_female, **Provider.first_names_male}
        first = np.where(
            female,
            _pick(Provider.first_names_female, u_first),
            np.where(male, _pick(Provider.first_names_male, u_first), _pick(first_any, u_first)),
        )
        self.given = first.astype(object)
        self.family = _pick(Provider.last_names, u_last).astype(object)
        self.gender = np.where(female, "female", np.where(male, "male", "unknown")).astype(object)

    def id(self, kind: str) -> np.ndarray:
        """The uuid5 of each row's resource of one kind (computed once, on first use)."""
        if kind not in self._ids:
            self._ids[kind] = _uuid5_of(self._stem, kind)
        return self._ids[kind]


def _same_day_in_year(dates: np.ndarray, years: np.ndarray) -> np.ndarray:
    """``dates`` moved to ``years`` (29 February becomes 28 February in a common year)."""
    month_day = dates - dates.astype("datetime64[Y]")
    start = (years - 1970).astype("datetime64[Y]").astype("datetime64[D]")
    moved = start + month_day
    next_year = (years - 1970 + 1).astype("datetime64[Y]").astype("datetime64[D]")
    return np.minimum(moved, next_year - np.timedelta64(1, "D"))


def _birth_date_is_consistent(encounter: np.ndarray, birth: np.ndarray, age: np.ndarray) -> bool:
    """Whether each patient is exactly ``age`` whole years old on the encounter date."""
    e = pd.DatetimeIndex(encounter.astype("datetime64[ns]"))
    b = pd.DatetimeIndex(birth.astype("datetime64[ns]"))
    before = (e.month < b.month) | ((e.month == b.month) & (e.day < b.day))
    return bool(np.all(e.year - b.year - before.astype(int) == age))


# --------------------------------------------------------------------------------------------
# Resources
# --------------------------------------------------------------------------------------------


def _ref(token: str) -> dict[str, str]:
    return {"reference": _TOKEN.format(token)}


def _patients(case: _Case) -> np.ndarray:
    resource = {
        "resourceType": "Patient",
        "id": _TOKEN.format("id"),
        "meta": _META,
        "identifier": [{"system": f"{CANONICAL_BASE}/case-id", "value": _TOKEN.format("key")}],
        "name": [
            {
                "use": "official",
                "family": _TOKEN.format("family"),
                "given": [_TOKEN.format("given")],
            }
        ],
        "gender": _TOKEN.format("gender"),
        "birthDate": _TOKEN.format("birth"),
    }
    tokens = ("id", "key", "family", "given", "gender", "birth")
    setting = case.frame["setting"].astype(str).to_numpy(dtype=object)
    key = _pieces([setting, "-", case.case_id.astype(str).astype(object)], case.n)
    values = {
        "id": _quoted(case.id("Patient")),
        "key": _quoted(key),
        "family": _quoted(case.family),
        "given": _quoted(case.given),
        "gender": _quoted(case.gender),
        "birth": _quoted(case.birth_date),
    }
    return _fill([_dumps(resource)], np.zeros(case.n, dtype=np.intp), tokens, values)


def _encounters(case: _Case, refs: dict[str, np.ndarray]) -> np.ndarray:
    templates = []
    for setting in SETTINGS:
        templates.append(
            _dumps(
                {
                    "resourceType": "Encounter",
                    "id": _TOKEN.format("id"),
                    "meta": _META,
                    "status": "finished",
                    "class": {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                        "code": "AMB",
                        "display": "ambulatory",
                    },
                    "serviceType": {"text": _SETTING_TEXT[setting]},
                    "subject": _ref("patient"),
                    "period": {"start": _TOKEN.format("date"), "end": _TOKEN.format("date2")},
                }
            )
        )
    date = _quoted(case.encounter_date)
    values = {
        "id": _quoted(case.id("Encounter")),
        "patient": refs["Patient"],
        "date": date,
        "date2": date,
    }
    return _fill(templates, case.setting_index, ("id", "patient", "date", "date2"), values)


class _Answers:
    """One item's answers, as a choice among a few prerendered texts per row.

    ``texts`` ends with ``""`` (no answer) and ``code`` picks a text per row. For a number the
    text is only the item's head: ``number`` holds each row's value as JSON (``""`` where
    unknown), and :meth:`pieces` closes the item after it.
    """

    def __init__(self, field: Field, column: pd.Series) -> None:
        head = '{"linkId":' + _dumps(field.name) + ',"answer":['
        self.number: np.ndarray | None = None
        if field.kind in ("bool", "category"):
            values = (False, True) if field.kind == "bool" else field.values
            self.texts = [head + _dumps(_answer(field, v)) + "]}" for v in values] + [""]
            if field.kind == "bool":
                data = column.to_numpy(dtype="float64", na_value=np.nan)
                code = np.where(np.isnan(data), 2, np.nan_to_num(data).astype(np.int64))
            else:
                code = pd.Categorical(column, categories=list(field.values)).codes
                code = np.where(code < 0, len(field.values), code)
            self.code = code.astype(np.intp)
            return
        self.texts = [
            head + ('{"valueInteger":' if field.kind == "int" else '{"valueDecimal":'),
            "",
        ]
        missing = column.isna().to_numpy()
        data = column.to_numpy(dtype="float64", na_value=0.0)
        # a number column holds few distinct values: each is formatted once
        distinct, which = np.unique(data.astype(np.int64) if field.kind == "int" else data,
                                    return_inverse=True)  # fmt: skip
        number = distinct.astype(str).astype(object)[which]
        number[missing] = ""
        self.number = number
        self.code = missing.astype(np.intp)

    @property
    def present(self) -> np.ndarray:
        return self.code < len(self.texts) - 1

    def pieces(self, lead: np.ndarray, sep: str = ",") -> list[np.ndarray]:
        """The answer's pieces, after ``sep`` where ``lead`` is False (another item came first)."""
        k = len(self.texts)
        table = _strings([*(sep + t if t else "" for t in self.texts), *self.texts])
        out = [table[self.code + lead * k]]
        if self.number is not None:
            out += [self.number, _strings(["}]}", ""], self.code)]
        return out


def _leads(present: np.ndarray) -> np.ndarray:
    """Per row, which present column is the first (it takes no separator)."""
    return present & (np.cumsum(present, axis=1) == 1)


def _responses(case: _Case, refs: dict[str, np.ndarray]) -> np.ndarray:
    grouped = []
    for link_id, _ in GROUPS:
        answers = [_Answers(f, case.frame[f.name]) for f in FIELDS if group_of(f) == link_id]
        grouped.append((link_id, answers, np.stack([a.present for a in answers], axis=1)))
    group_leads = _leads(np.stack([present.any(axis=1) for _, _, present in grouped], axis=1))
    items: list[np.ndarray | str] = []
    for g, (link_id, answers, present) in enumerate(grouped):
        head = '{"linkId":' + _dumps(link_id) + ',"item":['
        answered = present.any(axis=1)
        # a group opens after a comma unless it is the first answered one; an unanswered
        # group is left out whole
        opening = np.where(answered, group_leads[:, g], 2).astype(np.intp)
        items.append(_strings(["," + head, head, ""], opening))
        leads = _leads(present)
        for k, answer in enumerate(answers):
            items += answer.pieces(leads[:, k])
        items.append(_strings(["]}", ""], np.asarray(~answered, dtype=np.intp)))
    resource = {
        "resourceType": "QuestionnaireResponse",
        "id": _TOKEN.format("id"),
        "meta": _META,
        "questionnaire": f"{QUESTIONNAIRE_URL}|{package_version()}",
        "status": "completed",
        "subject": _ref("patient"),
        "encounter": _ref("encounter"),
        "authored": _TOKEN.format("date"),
        "item": [],
    }
    template = _dumps(resource)
    assert template.endswith('"item":[]}')
    values = {
        "id": _quoted(case.id("QuestionnaireResponse")),
        "patient": refs["Patient"],
        "encounter": refs["Encounter"],
        "date": _quoted(case.encounter_date),
    }
    tokens = ("id", "patient", "encounter", "date")
    start = _fill([template[: -len("]}")]], np.zeros(case.n, dtype=np.intp), tokens, values)
    return _pieces([start, *items, "]}"], case.n)


def _with_meta(resource: dict[str, Any]) -> dict[str, Any]:
    out = {"resourceType": resource["resourceType"], "id": resource["id"], "meta": _META}
    return out | {k: v for k, v in resource.items() if k not in out}


def _conditions(
    case: _Case, refs: dict[str, np.ndarray]
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """The cause's Condition per row, and the serious condition's with where there is one."""
    tokens = ("id", "patient", "encounter", "qr")
    sides_values = ("left", "right", "both", None)
    templates: list[str] = []
    for cause in CAUSES:
        for side in sides_values:
            resource = condition(
                _TOKEN.format("id"), "cause", cause, _TOKEN.format("patient"), "confirmed",
                sides=side, encounter=_TOKEN.format("encounter"), evidence=_TOKEN.format("qr"),
                note="Ground truth of the synthetic case (the generator's cause).",
            )  # fmt: skip
            templates.append(_dumps(_with_meta(resource)))
    cause_code = pd.Categorical(case.frame["cause"], categories=list(CAUSES)).codes
    side_code = pd.Categorical(case.frame["sides"], categories=["left", "right", "both"]).codes
    side_code = np.where(side_code < 0, 3, side_code)
    which = (cause_code * len(sides_values) + side_code).astype(np.intp)
    values = {
        "id": _quoted(case.id("cause")),
        "patient": refs["Patient"],
        "encounter": refs["Encounter"],
        "qr": refs["QuestionnaireResponse"],
    }
    causes = _fill(templates, which, tokens, values)
    serious_names = [s for s in SERIOUS_CONDITIONS if s != "none"]
    serious_templates = [
        _dumps(
            _with_meta(
                condition(
                    _TOKEN.format("id"),
                    "serious_condition",
                    name,
                    _TOKEN.format("patient"),
                    "confirmed",
                    encounter=_TOKEN.format("encounter"),
                    evidence=_TOKEN.format("qr"),
                    note="Ground truth of the synthetic case (the generator's serious condition).",
                )
            )
        )
        for name in serious_names
    ]
    code = pd.Index(serious_names).get_indexer(case.frame["serious_condition"])  # -1: "none"
    values = values | {"id": _quoted(case.id("serious"))}
    serious = _fill(serious_templates, np.maximum(code, 0).astype(np.intp), tokens, values)
    return causes, (serious, code >= 0)


def _risk_assessments(case: _Case, refs: dict[str, np.ndarray]) -> np.ndarray:
    from vignettes.posterior import posterior

    post = posterior(case.frame)
    resource: dict[str, Any] = {
        "resourceType": "RiskAssessment",
        "id": _TOKEN.format("id"),
        "meta": _META,
        "status": "final",
        "method": {
            "text": "Exact Bayes posterior under the generator's knowledge base "
            f"(vignettes.posterior, sciatica-triage {package_version()})"
        },
        "code": {"text": "Triage of lower back pain radiating to the leg"},
        "subject": _ref("patient"),
        "encounter": _ref("encounter"),
        "basis": [_ref("qr")],
        "prediction": [
            {"outcome": concept("cause", c), "probabilityDecimal": _TOKEN.format(c)} for c in CAUSES
        ]
        + [
            {
                "outcome": concept("serious_condition", "any"),
                "probabilityDecimal": _TOKEN.format("red_flag"),
            }
        ],
        "note": [{"text": "Synthetic research data; not a medical device and not medical advice."}],
    }
    tokens = ("id", "patient", "encounter", "qr", *CAUSES, "red_flag")
    values: dict[str, np.ndarray] = {
        "id": _quoted(case.id("RiskAssessment")),
        "patient": refs["Patient"],
        "encounter": refs["Encounter"],
        "qr": refs["QuestionnaireResponse"],
    }
    for name in (*CAUSES, "red_flag"):
        values[name] = post[name].to_numpy(dtype=np.float64).astype(str).astype(object)
    return _fill([_dumps(resource)], np.zeros(case.n, dtype=np.intp), tokens, values)


def _render(
    frame: pd.DataFrame, seed: int, posterior: bool, mode: str
) -> tuple[_Case, dict[str, Any]]:
    case = _Case(frame, seed)
    if mode == "bundle":
        refs = {
            t: _pieces(['"urn:uuid:', case.id(t), '"'], case.n)
            for t in ("Patient", "Encounter", "QuestionnaireResponse")
        }
    else:
        refs = {
            t: _pieces(['"' + t + "/", case.id(t), '"'], case.n)
            for t in ("Patient", "Encounter", "QuestionnaireResponse")
        }
    causes, serious = _conditions(case, refs)
    out: dict[str, Any] = {
        "Patient": _patients(case),
        "Encounter": _encounters(case, refs),
        "QuestionnaireResponse": _responses(case, refs),
        "Condition": (causes, serious),
    }
    if posterior:
        out["RiskAssessment"] = _risk_assessments(case, refs)
    return case, out


def _ndjson_pieces(frame: pd.DataFrame, seed: int, posterior: bool) -> dict[str, np.ndarray]:
    """Per resource type, the pieces of its ndjson text: one row per case, each line ending in
    a newline (a case without a serious condition has one Condition line, not two)."""
    _, out = _render(frame, seed, posterior, "ndjson")
    causes, (serious, present) = out.pop("Condition")
    newline = np.where(present, "\n", "").astype(object)
    out["Condition"] = _pieces([causes, "\n", _blank(serious, present), newline])
    return {t: out[t] if t == "Condition" else _pieces([out[t], "\n"]) for t in RESOURCE_TYPES
            if t in out}  # fmt: skip


def resource_lines(
    frame: pd.DataFrame, seed: int = 0, *, posterior: bool = False
) -> dict[str, list[str]]:
    """Bulk-Data ndjson lines per resource type (references ``Type/id``), in row order."""
    return {
        kind: _joined(pieces).split("\n")[:-1]
        for kind, pieces in _ndjson_pieces(frame, seed, posterior).items()
    }


def resource_texts(
    frame: pd.DataFrame, seed: int = 0, *, posterior: bool = False
) -> dict[str, str]:
    """The Bulk-Data ndjson text of each resource type: :func:`resource_lines`, each line
    followed by a newline, built in one ``join`` per type."""
    return {
        kind: _joined(pieces) for kind, pieces in _ndjson_pieces(frame, seed, posterior).items()
    }


def bundle_lines(frame: pd.DataFrame, seed: int = 0, *, posterior: bool = False) -> np.ndarray:
    """One transaction Bundle per row as JSON text (``urn:uuid`` references)."""
    case, out = _render(frame, seed, posterior, "bundle")
    causes, (serious, has_serious) = out["Condition"]
    everyone = np.ones(case.n, dtype=bool)
    parts = [
        ("Patient", case.id("Patient"), out["Patient"], everyone),
        ("Encounter", case.id("Encounter"), out["Encounter"], everyone),
        ("QuestionnaireResponse", case.id("QuestionnaireResponse"),
         out["QuestionnaireResponse"], everyone),
        ("Condition", case.id("cause"), causes, everyone),
        ("Condition", case.id("serious"), serious, has_serious),
    ]  # fmt: skip
    if posterior:
        parts.append(("RiskAssessment", case.id("RiskAssessment"), out["RiskAssessment"], everyone))
    entries = []
    for kind, ids, text, present in parts:
        entry = _pieces(
            ['{"fullUrl":"urn:uuid:', ids, '","resource":', text,
             ',"request":{"method":"PUT","url":"' + kind + "/", ids, '"}}']
        )  # fmt: skip
        entries.append((entry, present))
    head = '{"resourceType":"Bundle","id":"'
    rest = '","meta":' + _dumps(_META) + ',"type":"transaction","entry":['
    return _rows(_pieces([head, case.id("Bundle"), rest, _nonempty(entries)[0], "]}"]))


def to_fhir(frame: pd.DataFrame, seed: int = 0, *, posterior: bool = False) -> list[dict[str, Any]]:
    """One FHIR R4 transaction Bundle per row of a generated frame.

    Parameters
    ----------
    frame : pandas.DataFrame
        Rows of :func:`vignettes.generate` (with ``case_id``, ``setting`` and the labels).
    seed : int, default=0
        The seed the frame was generated with: the ids are uuid5s of it, the setting, the case
        id and the resource type.
    posterior : bool, default=False
        Add a RiskAssessment of the exact Bayes posterior to each Bundle.

    Returns
    -------
    list of dict
        JSON-ready Bundles: Patient, Encounter, QuestionnaireResponse, the cause's Condition and
        the serious condition's when there is one (and the RiskAssessment).

    Examples
    --------
    >>> import vignettes
    >>> bundle = vignettes.to_fhir(vignettes.generate(1, seed=7), seed=7)[0]
    >>> [e["resource"]["resourceType"] for e in bundle["entry"]][:3]
    ['Patient', 'Encounter', 'QuestionnaireResponse']
    """
    return [json.loads(text) for text in bundle_lines(frame, seed, posterior=posterior)]


def write_ndjson(
    frame: pd.DataFrame,
    out: Path | str,
    seed: int = 0,
    *,
    posterior: bool = False,
    append: bool = False,
) -> dict[str, Path]:
    """Write Bulk-Data ndjson, one file per resource type (``Patient.ndjson``, ...).

    Returns the paths written, by resource type. With ``append`` the lines go after what the
    files hold (for writing a large dataset chunk by chunk).
    """
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for kind, text in resource_texts(frame, seed, posterior=posterior).items():
        path = folder / f"{kind}.ndjson"
        with open(path, "a" if append else "w", encoding="utf-8") as handle:
            handle.write(text)
        paths[kind] = path
    return paths


class _BackgroundWriter:
    """Appends each chunk's ndjson texts to their files on one background thread.

    The write (mostly the kernel copying hundreds of megabytes into the page cache, which
    releases the GIL) overlaps with rendering the next chunk; at most one chunk waits, so memory
    stays at about two chunks' text.
    """

    def __init__(self, folder: Path) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.folder = folder
        self.paths: dict[str, Path] = {}
        self._handles: dict[str, Any] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ndjson-writer")
        self._pending: Any = None

    def _append(self, texts: dict[str, str]) -> None:
        for kind, text in texts.items():
            if kind not in self._handles:
                self.paths[kind] = self.folder / f"{kind}.ndjson"
                self._handles[kind] = open(self.paths[kind], "w", encoding="utf-8")  # noqa: SIM115
            self._handles[kind].write(text)

    def write(self, texts: dict[str, str]) -> None:
        self.wait()
        self._pending = self._pool.submit(self._append, texts)

    def wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()  # re-raises a failed write here

    def __enter__(self) -> _BackgroundWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.wait()
        finally:
            self._pool.shutdown()
            for handle in self._handles.values():
                handle.close()


def export_ndjson(
    n: int,
    out: Path | str,
    seed: int = 0,
    setting: str = "primary_care",
    *,
    start: int = 0,
    posterior: bool = False,
    chunk_rows: int | None = None,
) -> dict[str, Path]:
    """Generate rows ``start .. start+n-1`` chunk by chunk and write them as Bulk-Data ndjson.

    Memory stays flat for any ``n``; the files are the same whatever ``chunk_rows`` is (each
    chunk is ``vignettes.generate(..., start=...)``, which is partition-invariant). Each chunk is
    written on a background thread while the next one is rendered.
    """
    from vignettes.generate import BLOCK_ROWS, generate

    step = chunk_rows or BLOCK_ROWS
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    for kind in RESOURCE_TYPES:
        (folder / f"{kind}.ndjson").unlink(missing_ok=True)
    with _BackgroundWriter(folder) as writer:
        for lo in range(start, start + n, step):
            frame = generate(min(step, start + n - lo), seed, setting, start=lo)
            writer.write(resource_texts(frame, seed, posterior=posterior))
    return writer.paths
