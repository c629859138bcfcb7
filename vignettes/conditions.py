"""The small declarative condition language of ``article.toml``, parsed and checked at load.

Every clinical rule in ``article.toml`` (predicates, the mechanism's points, the urgency rules,
the MRI criteria, the advice) is a *condition* written in one language, in the spirit of
Synthea's module conditions:

- a bare name: a named predicate (``[predicates.<name>]``), a fact the engine supplies (see
  :data:`ENGINE_FACTS` and the ``likely_<cause>``, ``mechanism_<name>``, ``trigger_<rule>`` and
  ``mri_<criterion>`` families), or a yes/no intake field, which holds when it was answered yes;
- ``{ field = "...", op = "...", value = ... }``: one answer tested with ``is``, ``in``, ``ge``,
  ``gt``, ``le``, ``lt``, or ``unknown`` / ``known`` (no ``value``). An unknown answer never
  satisfies a test other than ``unknown``;
- ``{ all = [...] }``, ``{ any = [...] }``, ``{ not = ... }``.

:func:`parse_condition` turns a TOML value into a :class:`Condition` tree, refusing an unknown
field, op or value with a message naming its place in the file; :func:`check_graph` refuses an
unknown name and a cycle among named conditions. The engine that evaluates the trees, for a frame
and for one case, is :mod:`model.conditions`.

Examples
--------
>>> parse_condition({"any": ["weakness", "reflex_changes"]}, "predicates.deficit.when")
AnyOf(items=(Name(name='weakness'), Name(name='reflex_changes')))
>>> parse_condition({"field": "age", "op": "ge", "value": "old"}, "x.when")
Traceback (most recent call last):
...
vignettes.toml_check.KnowledgeError: x.when: value 'old' is not a number (field 'age', op 'ge')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from vignettes.schema import CAUSES, FIELD_BY_NAME, RED_FLAG_FIELDS
from vignettes.toml_check import KnowledgeError, did_you_mean

__all__ = [
    "ENGINE_FACTS",
    "OPS",
    "All",
    "AnyOf",
    "Condition",
    "FieldTest",
    "Name",
    "Not",
    "check_graph",
    "names_in",
    "parse_condition",
]

OPS: tuple[str, ...] = ("is", "in", "ge", "gt", "le", "lt", "unknown", "known")
"""What a field test can ask of one answer."""
_NUMERIC_OPS = ("ge", "gt", "le", "lt")

ENGINE_FACTS: dict[str, str] = {
    "model_review": "the model's calibrated P(serious condition) is at or above the review bar",
    "model_urgent": "the model's calibrated P(serious condition) is at or above the upper bar",
    "red_flag_dont_know": (
        'a red-flag question was asked and answered "don\'t know" (given by the caller)'
    ),
    **{
        f"dont_know_{f}": f'the red-flag question {f} was asked and answered "don\'t know"'
        for f in RED_FLAG_FIELDS
    },
    "mri_indicated": "any MRI criterion that indicates imaging holds",
    **{f"likely_{c}": f"the model's most likely cause is {c}" for c in CAUSES},
}
"""Facts the engine supplies that the answers alone do not give (the model's outputs, and the
MRI criteria taken together). The ``mechanism_<name>``, ``trigger_<rule>`` and
``mri_<criterion>`` names come from the tables of ``article.toml`` themselves."""


@dataclass(frozen=True)
class Name:
    """A named condition: a predicate, an engine fact or a yes/no field answered yes."""

    name: str


@dataclass(frozen=True)
class FieldTest:
    """One answer tested: ``field op value`` (``value`` is ``None`` for unknown / known)."""

    field: str
    op: str
    value: Any = None


@dataclass(frozen=True)
class All:
    """Every item holds."""

    items: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    """At least one item holds."""

    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    """The item does not hold."""

    item: Condition


Condition: TypeAlias = Name | FieldTest | All | AnyOf | Not


def parse_condition(raw: Any, where: str) -> Condition:
    """Parse one condition written in ``article.toml``.

    Parameters
    ----------
    raw : str, dict
        The TOML value.
    where : str
        Its place in the file (``"advice.mri.when"``), for the error message.

    Raises
    ------
    KnowledgeError
        Naming ``where``: a shape that is not a condition, an unknown field or op, a value the
        field cannot take.
    """
    if isinstance(raw, str):
        if not raw.strip():
            raise KnowledgeError(f"{where}: an empty name")
        spec = FIELD_BY_NAME.get(raw)
        if spec is not None and spec.kind != "bool":
            raise KnowledgeError(
                f"{where}: {raw!r} is a {spec.kind} field; test it with "
                "{ field = ..., op = ..., value = ... }"
            )
        return Name(raw)
    if not isinstance(raw, dict):
        raise KnowledgeError(f"{where}: expected a name or a table, got {raw!r}")
    keys = set(raw)
    for combinator in ("all", "any"):
        if keys == {combinator}:
            items = raw[combinator]
            if not isinstance(items, list) or not items:
                raise KnowledgeError(f"{where}.{combinator}: expected a non-empty list")
            parsed = tuple(
                parse_condition(item, f"{where}.{combinator}[{i}]") for i, item in enumerate(items)
            )
            return All(parsed) if combinator == "all" else AnyOf(parsed)
    if keys == {"not"}:
        return Not(parse_condition(raw["not"], f"{where}.not"))
    if "field" in keys:
        return _field_test(raw, where)
    hint = did_you_mean(sorted(keys)[0] if keys else "", ["all", "any", "not", "field"])
    raise KnowledgeError(
        f"{where}: unknown condition keys {sorted(keys)}{hint}; a condition is a name, "
        "{ all = [...] }, { any = [...] }, { not = ... } or { field = ..., op = ..., value = ... }"
    )


def _field_test(raw: dict[str, Any], where: str) -> FieldTest:
    field, op = raw.get("field"), raw.get("op", "is")
    unknown_keys = set(raw) - {"field", "op", "value"}
    if unknown_keys:
        raise KnowledgeError(f"{where}: unknown keys {sorted(unknown_keys)} in a field test")
    if field not in FIELD_BY_NAME:
        hint = did_you_mean(field, FIELD_BY_NAME)
        raise KnowledgeError(f"{where}.field: {field!r} is not an intake field{hint}")
    if op not in OPS:
        raise KnowledgeError(f"{where}.op: {op!r}{did_you_mean(op, OPS)}; allowed {list(OPS)}")
    if op in ("unknown", "known"):
        if "value" in raw:
            raise KnowledgeError(f"{where}: op {op!r} takes no value")
        return FieldTest(field, op)
    if "value" not in raw:
        raise KnowledgeError(f"{where}: op {op!r} needs a value")
    value = raw["value"]
    _check_value(where, field, op, value)
    return FieldTest(field, op, tuple(value) if op == "in" else value)


def _check_value(where: str, field: str, op: str, value: Any) -> None:
    spec = FIELD_BY_NAME[field]
    context = f"(field {field!r}, op {op!r})"
    if op in _NUMERIC_OPS:
        if spec.kind not in ("int", "float"):
            raise KnowledgeError(f"{where}: op {op!r} needs a number field, not {field!r}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise KnowledgeError(f"{where}: value {value!r} is not a number {context}")
        return
    values = value if op == "in" else [value]
    if op == "in" and (not isinstance(value, list) or not value):
        raise KnowledgeError(f"{where}: op 'in' needs a non-empty list {context}")
    for v in values:
        if spec.kind == "bool":
            ok = isinstance(v, bool)
        elif spec.kind == "category":
            ok = v in spec.values
        else:
            ok = isinstance(v, int | float) and not isinstance(v, bool)
        if not ok:
            allowed = list(spec.values) if spec.kind == "category" else spec.kind
            raise KnowledgeError(
                f"{where}: value {v!r} is not allowed {context}; allowed {allowed}"
            )


def names_in(condition: Condition) -> Iterable[str]:
    """Every bare name a condition refers to (fields answered yes included)."""
    if isinstance(condition, Name):
        yield condition.name
    elif isinstance(condition, All | AnyOf):
        for item in condition.items:
            yield from names_in(item)
    elif isinstance(condition, Not):
        yield from names_in(condition.item)


def check_graph(named: Mapping[str, tuple[str, Iterable[Condition]]], known: Iterable[str]) -> None:
    """Refuse an unknown name or a cycle among named conditions.

    Parameters
    ----------
    named : mapping
        Name -> (its place in the file, the conditions that define it).
    known : iterable of str
        Names defined outside ``named`` (engine facts, yes/no fields).

    Raises
    ------
    KnowledgeError
        Naming the place of the first unknown name (with "did you mean"), or the cycle.
    """
    known = set(known)
    everything = known | set(named)
    deps: dict[str, set[str]] = {}
    for name, (where, conditions) in named.items():
        refs = {ref for condition in conditions for ref in names_in(condition)}
        for ref in sorted(refs - everything):
            hint = did_you_mean(ref, sorted(everything))
            raise KnowledgeError(f"{where}: unknown condition {ref!r}{hint}")
        deps[name] = refs & set(named)
    state: dict[str, int] = {}  # 1 = on the path, 2 = done

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = [*path[path.index(name) :], name]
            raise KnowledgeError(
                f"{named[name][0]}: the conditions form a cycle: {' -> '.join(cycle)}"
            )
        state[name] = 1
        for ref in sorted(deps[name]):
            visit(ref, [*path, name])
        state[name] = 2

    for name in named:
        visit(name, [])
