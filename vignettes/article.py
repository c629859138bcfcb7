"""Load and validate the article's facts (``article.toml``).

The nerve-root table, the red flags, the urgency tiers, the MRI criteria, the advice and the
rules baseline's points: the knowledge a clinician reviews next to the article. This module checks
the file (every entry sourced, no unknown keys, tiers, fields, causes and values spelled as in
:mod:`vignettes.schema`) and returns frozen records. :mod:`model.rules` is the engine that applies
them (it also checks that every advice condition named here is one it can compute), and
``training/article_rules.py`` scores the causes with the baseline's points.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from vignettes.schema import (
    CAUSES,
    FIELD_BY_NAME,
    MRI_FINDINGS,
    NERVE_ROOTS,
    PAIN_REGIONS,
    RED_FLAG_FIELDS,
)
from vignettes.toml_check import KnowledgeError, did_you_mean, load_toml, numbers

__all__ = [
    "ARTICLE_PATH",
    "URGENCY_TIERS",
    "AdviceItem",
    "ArticleFacts",
    "BaselineRule",
    "PainRegion",
    "RedFlag",
    "load_article",
    "parse_article",
]

ARTICLE_PATH = Path(__file__).with_name("article.toml")
URGENCY_TIERS: tuple[str, ...] = ("emergency", "urgent", "review", "routine")
"""Urgency tiers, most urgent first (contract section 3)."""
SIGN_TIERS = URGENCY_TIERS[:2]
"""Tiers a reported red-flag sign can set (by rule)."""


@dataclass(frozen=True)
class RedFlag:
    """One of the article's red flags: its question, words, tier and safety-netting words."""

    field: str
    text: str
    tier: str
    return_if: str
    source: str


@dataclass(frozen=True)
class AdviceItem:
    """One advice item and when it is given (see ``article.toml``)."""

    code: str
    text: str
    tiers: tuple[str, ...]
    when_all: tuple[str, ...]
    when_any: tuple[str, ...]
    unless_any: tuple[str, ...]
    source: str

    @property
    def conditions(self) -> tuple[str, ...]:
        """Every condition the item names."""
        return self.when_all + self.when_any + self.unless_any


@dataclass(frozen=True)
class PainRegion:
    """A ``pain_region`` answer: the root the article's table gives it, and its words."""

    region: str
    root: str | None
    where: str
    narrated: str
    source: str


@dataclass(frozen=True)
class BaselineRule:
    """``points`` for ``cause`` when the answer to ``field`` satisfies ``op value``."""

    cause: str
    field: str
    op: str
    value: Any
    points: float
    source: str


@dataclass(frozen=True)
class ArticleFacts:
    """The whole of ``article.toml``, checked.

    Attributes
    ----------
    pain_regions : tuple of PainRegion
        In the order of ``vignettes.schema.PAIN_REGIONS``.
    urgency_action, urgency_source : dict of str to str
        Per tier (:data:`URGENCY_TIERS` order), the action text and its source.
    red_flags : tuple of RedFlag
        In the order of ``vignettes.schema.RED_FLAG_FIELDS``.
    mri_criteria : dict of str to str
        Reason code -> the article's words, in order; ``mri_information`` lists the codes that
        are information only (they do not make MRI indicated).
    advice : tuple of AdviceItem
        In the order they are shown.
    baseline_rules : tuple of BaselineRule
        The rules baseline's points, in order.
    mri_background : dict
        ``ages`` and, per MRI finding, its prevalence without pain at those ages.
    """

    pain_regions: tuple[PainRegion, ...]
    urgency_action: dict[str, str]
    urgency_source: dict[str, str]
    red_flags: tuple[RedFlag, ...]
    mri_criteria: dict[str, str]
    mri_information: tuple[str, ...]
    advice: tuple[AdviceItem, ...]
    baseline_rules: tuple[BaselineRule, ...]
    mri_background: dict[str, tuple[float, ...]]

    def red_flag(self, field: str) -> RedFlag:
        """The red flag asked by ``field``."""
        return next(flag for flag in self.red_flags if flag.field == field)


def _check_keys(
    table: str, entry: Any, required: set[str], optional: frozenset[str] = frozenset()
) -> None:
    if not isinstance(entry, dict):
        raise KnowledgeError(f"{table}: expected a table, got {type(entry).__name__}")
    missing = required - entry.keys()
    unknown = entry.keys() - required - optional
    if missing:
        raise KnowledgeError(f"{table}: missing {sorted(missing)}")
    if unknown:
        allowed = sorted(required | optional)
        hint = did_you_mean(sorted(unknown)[0], allowed)
        raise KnowledgeError(f"{table}: unknown keys {sorted(unknown)}{hint}; allowed {allowed}")
    for key in required | optional:
        value = entry.get(key)
        if isinstance(value, str) and not value.strip():
            raise KnowledgeError(f"{table}.{key}: must not be empty")


def _names(
    table: str, key: str, value: Any, allowed: tuple[str, ...] | None = None
) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise KnowledgeError(f"{table}.{key}: expected a list of names, got {value!r}")
    if allowed is not None:
        wrong = [v for v in value if v not in allowed]
        if wrong:
            hint = did_you_mean(wrong[0], allowed)
            raise KnowledgeError(f"{table}.{key}: unknown {wrong}{hint}; allowed {list(allowed)}")
    return tuple(value)


def parse_article(doc: dict[str, Any]) -> ArticleFacts:
    """Check a parsed ``article.toml`` document and build :class:`ArticleFacts`.

    Raises
    ------
    KnowledgeError
        Naming the table at fault: a missing or unknown key, an unsourced entry, a tier, field,
        cause, root or value that does not exist, a red flag or pain region left out.
    """
    sections = {"pain_regions", "urgency", "red_flags", "mri_criteria", "advice", "rules_baseline"}
    _check_keys("article.toml", doc, sections)
    return ArticleFacts(
        pain_regions=_pain_regions(doc["pain_regions"]),
        urgency_action={t: doc["urgency"][t]["action"] for t in _urgency(doc["urgency"])},
        urgency_source={t: doc["urgency"][t]["source"] for t in URGENCY_TIERS},
        red_flags=_red_flags(doc["red_flags"]),
        mri_criteria={code: e["text"] for code, e in _mri(doc["mri_criteria"]).items()},
        mri_information=tuple(
            code for code, e in doc["mri_criteria"].items() if not e.get("indicates", True)
        ),
        advice=_advice(doc["advice"]),
        baseline_rules=_baseline_rules(doc["rules_baseline"]),
        mri_background=_mri_background(doc["rules_baseline"]),
    )


def _pain_regions(table: dict[str, Any]) -> tuple[PainRegion, ...]:
    if list(table) != list(PAIN_REGIONS):
        raise KnowledgeError(f"pain_regions: expected the regions {list(PAIN_REGIONS)} in order")
    out = []
    for region, entry in table.items():
        name = f"pain_regions.{region}"
        _check_keys(name, entry, {"where", "narrated", "source"}, frozenset({"root"}))
        root = entry.get("root")
        if root is not None and root not in NERVE_ROOTS[1:]:
            raise KnowledgeError(f"{name}.root: {root!r} is not one of {list(NERVE_ROOTS[1:])}")
        out.append(PainRegion(region, root, entry["where"], entry["narrated"], entry["source"]))
    return tuple(out)


def _urgency(table: dict[str, Any]) -> tuple[str, ...]:
    if list(table) != list(URGENCY_TIERS):
        raise KnowledgeError(f"urgency: expected the tiers {list(URGENCY_TIERS)} in that order")
    for tier, entry in table.items():
        _check_keys(f"urgency.{tier}", entry, {"action", "source"})
    return URGENCY_TIERS


def _red_flags(table: dict[str, Any]) -> tuple[RedFlag, ...]:
    if sorted(table) != sorted(RED_FLAG_FIELDS):
        raise KnowledgeError(
            f"red_flags: expected one entry per red-flag field {list(RED_FLAG_FIELDS)}"
        )
    out = []
    for field in RED_FLAG_FIELDS:
        entry = table[field]
        _check_keys(f"red_flags.{field}", entry, {"text", "tier", "return_if", "source"})
        if entry["tier"] not in SIGN_TIERS:
            raise KnowledgeError(f"red_flags.{field}.tier: expected one of {list(SIGN_TIERS)}")
        out.append(
            RedFlag(field, entry["text"], entry["tier"], entry["return_if"], entry["source"])
        )
    return tuple(out)


def _mri(table: dict[str, Any]) -> dict[str, Any]:
    for code, entry in table.items():
        _check_keys(f"mri_criteria.{code}", entry, {"text", "source"}, frozenset({"indicates"}))
    return table


def _advice(table: dict[str, Any]) -> tuple[AdviceItem, ...]:
    out = []
    for code, entry in table.items():
        name = f"advice.{code}"
        optional = frozenset({"when_all", "when_any", "unless_any"})
        _check_keys(name, entry, {"text", "tiers", "source"}, optional)
        out.append(
            AdviceItem(
                code=code,
                text=entry["text"],
                tiers=_names(name, "tiers", entry["tiers"], URGENCY_TIERS),
                when_all=_names(name, "when_all", entry.get("when_all", [])),
                when_any=_names(name, "when_any", entry.get("when_any", [])),
                unless_any=_names(name, "unless_any", entry.get("unless_any", [])),
                source=entry["source"],
            )
        )
    return tuple(out)


_OPS = ("is", "in", "gt")


def _baseline_rules(table: dict[str, Any]) -> tuple[BaselineRule, ...]:
    _check_keys("rules_baseline", table, {"rules", "mri_background"})
    out = []
    for i, entry in enumerate(table["rules"]):
        name = f"rules_baseline.rules[{i}]"
        _check_keys(name, entry, {"cause", "field", "op", "value", "points", "source"})
        if entry["cause"] not in CAUSES:
            raise KnowledgeError(f"{name}.cause: {entry['cause']!r} is not one of {list(CAUSES)}")
        if entry["field"] not in FIELD_BY_NAME:
            raise KnowledgeError(f"{name}.field: {entry['field']!r} is not an intake field")
        if entry["op"] not in _OPS:
            raise KnowledgeError(f"{name}.op: expected one of {list(_OPS)}")
        value = entry["value"]
        _check_value(name, FIELD_BY_NAME[entry["field"]], entry["op"], value)
        value = tuple(value) if entry["op"] == "in" else value
        points = entry["points"]
        if isinstance(points, bool) or not isinstance(points, int | float):
            raise KnowledgeError(f"{name}.points: expected a number, got {points!r}")
        out.append(
            BaselineRule(
                entry["cause"], entry["field"], entry["op"], value, float(points), entry["source"]
            )
        )
    return tuple(out)


def _check_value(name: str, field: Any, op: str, value: Any) -> None:
    """A rule's value must be one its field can take."""
    if op == "gt":
        ok = field.kind in ("int", "float") and isinstance(value, int | float)
    else:
        values = value if op == "in" else [value]
        if field.kind == "bool":
            ok = all(isinstance(v, bool) for v in values)
        elif field.kind == "category":
            ok = all(v in field.values for v in values)
        else:
            ok = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    if not ok:
        raise KnowledgeError(f"{name}.value: {value!r} is not a value of {field.name!r} for {op!r}")


def _mri_background(table: dict[str, Any]) -> dict[str, tuple[float, ...]]:
    entry = table["mri_background"]
    findings = frozenset(MRI_FINDINGS[2:])  # not "not_done" or "normal"
    _check_keys("rules_baseline.mri_background", entry, {"ages", "source"}, findings)
    ages = numbers(entry["ages"], "rules_baseline.mri_background.ages")
    if list(ages) != sorted(ages):
        raise KnowledgeError("rules_baseline.mri_background.ages: expected increasing ages")
    out = {"ages": ages}
    for finding in sorted(findings & entry.keys()):
        curve = numbers(entry[finding], f"rules_baseline.mri_background.{finding}")
        if len(curve) != len(ages) or not all(0 <= v <= 1 for v in curve):
            raise KnowledgeError(
                f"rules_baseline.mri_background.{finding}: expected {len(ages)} shares in [0, 1]"
            )
        out[finding] = curve
    return out


@cache
def load_article(path: Path | str = ARTICLE_PATH) -> ArticleFacts:
    """Read and check ``article.toml`` (cached per path).

    Examples
    --------
    >>> facts = load_article()
    >>> [(r.region, r.root) for r in facts.pain_regions][2]
    ('front_of_thigh', 'L2-L3')
    >>> facts.red_flag("saddle_numbness").tier
    'emergency'
    >>> [item.code for item in facts.advice][:2]
    ['emergency_assessment', 'urgent_specialist_assessment']
    """
    return load_toml(path, parse_article)
