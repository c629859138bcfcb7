"""Load and validate the article's facts (``article.toml``).

The nerve-root table, the red flags, the named predicates, the pain mechanism's points, the
urgency rules with their timeframes, the MRI criteria, the advice and the rules baseline's
points: the knowledge a clinician reviews next to the article. Every clinical rule is a
condition in the language of :mod:`vignettes.conditions`. This module checks the file (every
entry sourced, no unknown keys; tiers, timeframes, fields, causes and values spelled as in
:mod:`vignettes.schema`; every condition well formed, every name it uses defined, no cycle) and
returns frozen records. :mod:`model.rules` is the engine that applies them, and
``training/article_rules.py`` scores the causes with the baseline's points.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from vignettes.conditions import (
    ENGINE_FACTS,
    Condition,
    Name,
    check_graph,
    parse_condition,
)
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
    "AUDIENCES",
    "MECHANISMS",
    "TIMEFRAMES",
    "URGENCY_TIERS",
    "AdviceItem",
    "ArticleFacts",
    "BaselineRule",
    "Mechanism",
    "MriCriterion",
    "PainRegion",
    "RedFlag",
    "UrgencyRule",
    "condition_graph",
    "load_article",
    "parse_article",
]

ARTICLE_PATH = Path(__file__).with_name("article.toml")
URGENCY_TIERS: tuple[str, ...] = ("emergency", "urgent", "review", "routine")
"""Urgency tiers, most urgent first (contract section 3)."""
TIMEFRAMES: tuple[str, ...] = (
    "now",
    "same day",
    "within 24 hours",
    "within days",
    "within 2 weeks",
)
"""How soon a case is seen, shortest first (contract section 5)."""
MECHANISMS: tuple[str, ...] = ("neurological", "mechanical", "mixed", "unclear")
"""The readings of "Mechanical Pain vs Neurological Pain"."""
AUDIENCES: tuple[str, ...] = ("patient", "clinician")
"""Whom an advice item speaks to."""


@dataclass(frozen=True)
class RedFlag:
    """One of the article's red flags: its question, words, tier and safety-netting words."""

    field: str
    text: str
    return_if: str
    source: str


@dataclass(frozen=True)
class AdviceItem:
    """One advice item and when it is given (see ``article.toml``)."""

    code: str
    text: str
    audience: str
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
class UrgencyRule:
    """One way answers set a tier: when ``when`` holds, the case is at least ``tier``, seen
    within ``timeframe``, for the ``suspected`` serious condition."""

    code: str
    tier: str
    timeframe: str
    suspected: str
    when: Condition
    action: str
    source: str


@dataclass(frozen=True)
class MriCriterion:
    """One of the article's MRI criteria: its words, the condition that reads it, and whether
    it makes MRI indicated (``False`` for information only)."""

    code: str
    text: str
    when: Condition
    indicates: bool
    source: str


@dataclass(frozen=True)
class Mechanism:
    """ "Mechanical Pain vs Neurological Pain" as points: one per condition that holds."""

    neurological: tuple[Condition, ...]
    mechanical: tuple[Condition, ...]
    mixed_at_least: int
    never_mechanical_when: Condition | None
    source: str


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
    action_until_screened : str
        The routine tier's words while some red-flag questions are unanswered.
    action_with_findings, withhold_reassurance_when
        The routine tier's words, and when they replace its reassurance (findings that need a
        clinician's questions first).
    red_flags : tuple of RedFlag
        In the order of ``vignettes.schema.RED_FLAG_FIELDS``.
    predicates : dict of str to Condition
        The named predicates, in file order.
    mechanism : Mechanism
        The pain mechanism's points.
    urgency_rules : tuple of UrgencyRule
        Most urgent tier first.
    mri : tuple of MriCriterion
        The MRI criteria with their conditions, in order.
    mri_criteria : dict of str to str
        Reason code -> the article's words, in order; ``mri_information`` lists the codes that
        are information only (they do not make MRI indicated).
    advice : tuple of AdviceItem
        In the order they are shown.
    baseline_rules : tuple of BaselineRule
        The rules baseline's points, in order.
    mri_background : dict
        ``ages`` and, per MRI finding, its prevalence without pain at those ages.
    sources : dict of str to str
        The source of every named condition (predicates, ``trigger_<rule>``, ``mri_<code>``).
    """

    pain_regions: tuple[PainRegion, ...]
    urgency_action: dict[str, str]
    urgency_source: dict[str, str]
    action_until_screened: str
    action_with_findings: str
    withhold_reassurance_when: Condition
    red_flags: tuple[RedFlag, ...]
    predicates: dict[str, Condition]
    mechanism: Mechanism
    urgency_rules: tuple[UrgencyRule, ...]
    mri: tuple[MriCriterion, ...]
    mri_criteria: dict[str, str]
    mri_information: tuple[str, ...]
    advice: tuple[AdviceItem, ...]
    baseline_rules: tuple[BaselineRule, ...]
    mri_background: dict[str, tuple[float, ...]]
    sources: dict[str, str]

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
        Naming the table at fault: a missing or unknown key, an unsourced entry, a tier,
        timeframe, field, cause, root or value that does not exist, a red flag or pain region left
        out, a malformed condition, a name no table defines, or a cycle among conditions.
    """
    sections = {
        "pain_regions",
        "urgency",
        "red_flags",
        "predicates",
        "mechanism",
        "urgency_rules",
        "mri_criteria",
        "advice",
        "rules_baseline",
    }
    _check_keys("article.toml", doc, sections)
    predicates = _predicates(doc["predicates"])
    rules = _urgency_rules(doc["urgency_rules"])
    mri = _mri(doc["mri_criteria"])
    facts = ArticleFacts(
        pain_regions=_pain_regions(doc["pain_regions"]),
        urgency_action={t: doc["urgency"][t]["action"] for t in _urgency(doc["urgency"])},
        urgency_source={t: doc["urgency"][t]["source"] for t in URGENCY_TIERS},
        action_until_screened=doc["urgency"]["routine"]["action_until_screened"],
        action_with_findings=doc["urgency"]["routine"]["action_with_findings"],
        withhold_reassurance_when=parse_condition(
            doc["urgency"]["routine"]["withhold_reassurance_when"],
            "urgency.routine.withhold_reassurance_when",
        ),
        red_flags=_red_flags(doc["red_flags"]),
        predicates={name: when for name, (when, _) in predicates.items()},
        mechanism=_mechanism(doc["mechanism"]),
        urgency_rules=rules,
        mri=mri,
        mri_criteria={c.code: c.text for c in mri},
        mri_information=tuple(c.code for c in mri if not c.indicates),
        advice=_advice(doc["advice"]),
        baseline_rules=_baseline_rules(doc["rules_baseline"]),
        mri_background=_mri_background(doc["rules_baseline"]),
        sources={name: source for name, (_, source) in predicates.items()}
        | {f"trigger_{r.code}": r.source for r in rules}
        | {f"mri_{c.code}": c.source for c in mri},
    )
    _check_names(facts)
    return facts


def condition_graph(facts: ArticleFacts) -> dict[str, tuple[str, tuple[Condition, ...]]]:
    """Every named condition: name -> (its place in ``article.toml``, what defines it)."""
    m = facts.mechanism
    extra = () if m.never_mechanical_when is None else (m.never_mechanical_when,)
    graph: dict[str, tuple[str, tuple[Condition, ...]]] = {
        name: (f"predicates.{name}.when", (when,)) for name, when in facts.predicates.items()
    }
    graph |= {
        f"mechanism_{name}": ("mechanism", (*m.neurological, *m.mechanical, *extra))
        for name in MECHANISMS
    }
    for i, rule in enumerate(facts.urgency_rules):
        graph[f"trigger_{rule.code}"] = (f"urgency_rules[{i}] ({rule.code}).when", (rule.when,))
    for c in facts.mri:
        graph[f"mri_{c.code}"] = (f"mri_criteria.{c.code}.when", (c.when,))
    graph["withhold_reassurance"] = (
        "urgency.routine.withhold_reassurance_when",
        (facts.withhold_reassurance_when,),
    )
    graph["mri_indicated"] = (
        "mri_criteria",
        tuple(Name(f"mri_{c.code}") for c in facts.mri if c.indicates),
    )
    return graph


def _check_names(facts: ArticleFacts) -> None:
    """Every name used is defined somewhere, no cycle, and each advice item's names exist."""
    graph = condition_graph(facts)
    clash = sorted(set(facts.predicates) & (set(FIELD_BY_NAME) | set(ENGINE_FACTS)))
    if clash:
        raise KnowledgeError(f"predicates.{clash[0]}: the name is taken by a field or engine fact")
    yes_no = {name for name, spec in FIELD_BY_NAME.items() if spec.kind == "bool"}
    known = yes_no | (set(ENGINE_FACTS) - set(graph))
    for item in facts.advice:
        where = f"advice.{item.code}"
        graph[f"advice:{item.code}"] = (where, tuple(Name(c) for c in item.conditions))
    check_graph(graph, known)


def _predicates(table: dict[str, Any]) -> dict[str, tuple[Condition, str]]:
    out = {}
    for name, entry in table.items():
        where = f"predicates.{name}"
        _check_keys(where, entry, {"when", "source"})
        out[name] = (parse_condition(entry["when"], f"{where}.when"), entry["source"])
    return out


def _mechanism(entry: dict[str, Any]) -> Mechanism:
    keys = {"neurological", "mechanical", "mixed_at_least", "source"}
    _check_keys("mechanism", entry, keys, frozenset({"never_mechanical_when"}))
    points = {}
    for side in ("neurological", "mechanical"):
        items = entry[side]
        if not isinstance(items, list) or not items:
            raise KnowledgeError(f"mechanism.{side}: expected a non-empty list of conditions")
        points[side] = tuple(
            parse_condition(c, f"mechanism.{side}[{i}]") for i, c in enumerate(items)
        )
    least = entry["mixed_at_least"]
    if isinstance(least, bool) or not isinstance(least, int) or least < 1:
        raise KnowledgeError(f"mechanism.mixed_at_least: expected a whole number >= 1: {least!r}")
    never = entry.get("never_mechanical_when")
    return Mechanism(
        neurological=points["neurological"],
        mechanical=points["mechanical"],
        mixed_at_least=least,
        never_mechanical_when=None
        if never is None
        else parse_condition(never, "mechanism.never_mechanical_when"),
        source=entry["source"],
    )


def _urgency_rules(entries: Any) -> tuple[UrgencyRule, ...]:
    if not isinstance(entries, list) or not entries:
        raise KnowledgeError("urgency_rules: expected a list of [[urgency_rules]] tables")
    out: list[UrgencyRule] = []
    keys = {"code", "tier", "timeframe", "suspected", "when", "action", "source"}
    for i, entry in enumerate(entries):
        where = f"urgency_rules[{i}]"
        _check_keys(where, entry, keys)
        for key, allowed in (("tier", URGENCY_TIERS[:3]), ("timeframe", TIMEFRAMES)):
            if entry[key] not in allowed:
                hint = did_you_mean(entry[key], allowed)
                raise KnowledgeError(
                    f"{where}.{key}: {entry[key]!r}{hint}; allowed {list(allowed)}"
                )
        rule = UrgencyRule(
            code=entry["code"],
            tier=entry["tier"],
            timeframe=entry["timeframe"],
            suspected=entry["suspected"],
            when=parse_condition(entry["when"], f"{where}.when"),
            action=entry["action"],
            source=entry["source"],
        )
        if out and URGENCY_TIERS.index(rule.tier) < URGENCY_TIERS.index(out[-1].tier):
            raise KnowledgeError(f"{where}: rules are listed by tier, most urgent first")
        if rule.code in {r.code for r in out}:
            raise KnowledgeError(f"{where}.code: {rule.code!r} is used twice")
        out.append(rule)
    return tuple(out)


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
        extra = (
            {"action_until_screened", "action_with_findings", "withhold_reassurance_when"}
            if tier == "routine"
            else set()
        )
        _check_keys(f"urgency.{tier}", entry, {"action", "source"} | extra)
    return URGENCY_TIERS


def _red_flags(table: dict[str, Any]) -> tuple[RedFlag, ...]:
    if sorted(table) != sorted(RED_FLAG_FIELDS):
        raise KnowledgeError(
            f"red_flags: expected one entry per red-flag field {list(RED_FLAG_FIELDS)}"
        )
    out = []
    for field in RED_FLAG_FIELDS:
        entry = table[field]
        _check_keys(f"red_flags.{field}", entry, {"text", "return_if", "source"})
        out.append(RedFlag(field, entry["text"], entry["return_if"], entry["source"]))
    return tuple(out)


def _mri(table: dict[str, Any]) -> tuple[MriCriterion, ...]:
    out = []
    for code, entry in table.items():
        where = f"mri_criteria.{code}"
        _check_keys(where, entry, {"text", "when", "source"}, frozenset({"indicates"}))
        indicates = entry.get("indicates", True)
        if not isinstance(indicates, bool):
            raise KnowledgeError(f"{where}.indicates: expected true or false")
        when = parse_condition(entry["when"], f"{where}.when")
        out.append(MriCriterion(code, entry["text"], when, indicates, entry["source"]))
    return tuple(out)


def _advice(table: dict[str, Any]) -> tuple[AdviceItem, ...]:
    out = []
    for code, entry in table.items():
        name = f"advice.{code}"
        optional = frozenset({"when_all", "when_any", "unless_any"})
        _check_keys(name, entry, {"text", "audience", "tiers", "source"}, optional)
        if entry["audience"] not in AUDIENCES:
            raise KnowledgeError(f"{name}.audience: expected one of {list(AUDIENCES)}")
        out.append(
            AdviceItem(
                code=code,
                text=entry["text"],
                audience=entry["audience"],
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
    >>> facts.red_flag("saddle_numbness").return_if.split(",")[0]
    'you feel numb around the groin'
    >>> [item.code for item in facts.advice][:2]
    ['ask_red_flag_questions', 'ask_about_progression']
    """
    return load_toml(path, parse_article)
