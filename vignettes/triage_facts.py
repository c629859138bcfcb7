"""Load and validate the article's triage facts (``triage.toml``): red flags, urgency, advice.

The TOML file is the knowledge a clinician reviews next to the article; this module checks it
(every entry sourced, no unknown keys, tiers and fields spelled as in :mod:`vignettes.schema`)
and returns frozen records. :mod:`model.rules` is the engine that applies them; it also checks
that every advice condition named here is one it can compute.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from vignettes.knowledge import KnowledgeError
from vignettes.schema import RED_FLAG_FIELDS

__all__ = [
    "TRIAGE_FACTS_PATH",
    "URGENCY_TIERS",
    "AdviceItem",
    "RedFlag",
    "TriageFacts",
    "load_triage_facts",
]

TRIAGE_FACTS_PATH = Path(__file__).with_name("triage.toml")
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
    """One advice item and when it is given (see ``triage.toml``)."""

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
class TriageFacts:
    """The whole of ``triage.toml``, checked.

    Attributes
    ----------
    urgency_action, urgency_source : dict of str to str
        Per tier (:data:`URGENCY_TIERS` order), the action text and its source.
    red_flags : tuple of RedFlag
        In the order of ``vignettes.schema.RED_FLAG_FIELDS``.
    advice : tuple of AdviceItem
        In the order they are shown.
    """

    urgency_action: dict[str, str]
    urgency_source: dict[str, str]
    red_flags: tuple[RedFlag, ...]
    advice: tuple[AdviceItem, ...]

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
        raise KnowledgeError(
            f"{table}: unknown keys {sorted(unknown)}; allowed {sorted(required | optional)}"
        )
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
            raise KnowledgeError(f"{table}.{key}: unknown {wrong}; allowed {list(allowed)}")
    return tuple(value)


def parse_triage_facts(doc: dict[str, Any]) -> TriageFacts:
    """Check a parsed ``triage.toml`` document and build :class:`TriageFacts`.

    Raises
    ------
    KnowledgeError
        Naming the table at fault: a missing or unknown key, an unsourced entry, a tier or
        red-flag field that does not exist, a red flag left out.
    """
    _check_keys("triage.toml", doc, {"urgency", "red_flags", "advice"})
    urgency = doc["urgency"]
    if list(urgency) != list(URGENCY_TIERS):
        raise KnowledgeError(f"urgency: expected the tiers {list(URGENCY_TIERS)} in that order")
    for tier, entry in urgency.items():
        _check_keys(f"urgency.{tier}", entry, {"action", "source"})
    flags = doc["red_flags"]
    if sorted(flags) != sorted(RED_FLAG_FIELDS):
        raise KnowledgeError(
            f"red_flags: expected one entry per red-flag field {list(RED_FLAG_FIELDS)}"
        )
    red_flags = []
    for field in RED_FLAG_FIELDS:
        entry = flags[field]
        _check_keys(f"red_flags.{field}", entry, {"text", "tier", "return_if", "source"})
        if entry["tier"] not in SIGN_TIERS:
            raise KnowledgeError(f"red_flags.{field}.tier: expected one of {list(SIGN_TIERS)}")
        red_flags.append(
            RedFlag(field, entry["text"], entry["tier"], entry["return_if"], entry["source"])
        )
    advice = []
    for code, entry in doc["advice"].items():
        table = f"advice.{code}"
        _check_keys(
            table,
            entry,
            {"text", "tiers", "source"},
            frozenset({"when_all", "when_any", "unless_any"}),
        )
        advice.append(
            AdviceItem(
                code=code,
                text=entry["text"],
                tiers=_names(table, "tiers", entry["tiers"], URGENCY_TIERS),
                when_all=_names(table, "when_all", entry.get("when_all", [])),
                when_any=_names(table, "when_any", entry.get("when_any", [])),
                unless_any=_names(table, "unless_any", entry.get("unless_any", [])),
                source=entry["source"],
            )
        )
    return TriageFacts(
        urgency_action={t: urgency[t]["action"] for t in URGENCY_TIERS},
        urgency_source={t: urgency[t]["source"] for t in URGENCY_TIERS},
        red_flags=tuple(red_flags),
        advice=tuple(advice),
    )


@cache
def load_triage_facts(path: Path | str = TRIAGE_FACTS_PATH) -> TriageFacts:
    """Read and check ``triage.toml`` (cached per path).

    Examples
    --------
    >>> facts = load_triage_facts()
    >>> facts.red_flag("saddle_numbness").tier
    'emergency'
    >>> [item.code for item in facts.advice][:2]
    ['emergency_assessment', 'urgent_specialist_assessment']
    """
    with open(path, "rb") as handle:
        return parse_triage_facts(tomllib.load(handle))
