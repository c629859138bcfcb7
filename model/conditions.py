"""The engine of ``article.toml``'s condition language, for a frame and for one case alike.

:class:`Evaluation` holds one call's answers and the facts the engine supplies (the model's
decisions, its likely cause) and evaluates any named condition (a predicate, a mechanism
reading, an urgency rule's trigger, an MRI criterion) on demand, each at most once per call
(memoised): a rule that several others use costs one evaluation. It is written over the
primitives of :mod:`model.answers`, so a frame gets a ``bool`` array per name (one value per
row) and one case gets a ``bool``. The language itself, and the checks that make every name
here defined and acyclic, are in :mod:`vignettes.conditions` and :mod:`vignettes.article`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from model.answers import (
    Answers,
    all_of,
    answer_in,
    answer_is,
    any_of,
    choose,
    count,
    decision,
    is_unknown,
    number,
    rows,
)
from vignettes.article import MECHANISMS, ArticleFacts
from vignettes.conditions import ENGINE_FACTS, All, AnyOf, Condition, FieldTest, Name, Not
from vignettes.schema import FIELD_BY_NAME

__all__ = ["Evaluation", "dependencies", "negate"]

_COMPARE = {
    "ge": np.greater_equal,
    "gt": np.greater,
    "le": np.less_equal,
    "lt": np.less,
}


def negate(condition: Any) -> Any:
    """Logical NOT of a bool or a bool array (``~`` on a Python bool is an integer)."""
    return not condition if isinstance(condition, bool | np.bool_) else ~condition


class Evaluation:
    """Every named condition of ``article.toml`` for one call (a frame or one case).

    Parameters
    ----------
    df : pandas.DataFrame or mapping
        Validated cases, or one validated case.
    facts : ArticleFacts
        The checked ``article.toml``.
    inputs : mapping, optional
        Engine facts given by the caller (``model_review``, ``model_urgent``,
        ``likely_<cause>``): a bool per row by position, or one bool. Absent ones are false.

    Examples
    --------
    >>> from vignettes.article import load_article
    >>> ev = Evaluation({"weakness": True, "progressive_symptoms": True}, load_article())
    >>> ev["progressive_deficit"], ev["trigger_progressive_deficit"], ev["trigger_fever"]
    (True, True, False)
    """

    def __init__(
        self, df: Answers, facts: ArticleFacts, inputs: Mapping[str, Any] | None = None
    ) -> None:
        self.df = df
        self.facts = facts
        self.n = rows(df)
        self._memo: dict[str, Any] = {
            name: decision(value, self.n, name) for name, value in (inputs or {}).items()
        }
        self._given = frozenset(self._memo)
        self._definitions = _definitions(facts)

    def __getitem__(self, name: str) -> Any:
        """The named condition's value: a bool array per row, or one bool."""
        memo = self._memo
        if name in memo:
            return memo[name]
        value = self._compute(name)
        memo[name] = bool(value) if self.n is None else self._broadcast(value)
        return memo[name]

    def carried_over(
        self, df: Answers, inputs: Mapping[str, Any], changed: frozenset[str]
    ) -> Evaluation:
        """A new one-case evaluation of ``df`` with ``inputs``, keeping every condition of
        this one that depends on none of the ``changed`` fields (see :func:`dependencies`).

        Exact when ``df`` differs from this evaluation's case in the ``changed`` fields only:
        a kept condition reads nothing that changed. The engine facts that differ from this
        evaluation's count as changed too.
        """
        if self.n is not None or rows(df) is not None:
            raise ValueError("carried_over: for one case, not a frame")
        out = Evaluation(df, self.facts, inputs)
        given = self._given | out._given
        moved = {n for n in given if self._memo.get(n, False) != out._memo.get(n, False)}
        stale = _readers(self.facts)
        drop = set().union(*(stale.get(name, ()) for name in changed | moved))
        known = dependencies(self.facts)  # a name it does not know is never carried over
        memo = out._memo
        for name, value in self._memo.items():
            if name not in memo and name not in drop and name in known:
                memo[name] = value
        return out

    def holds(self, condition: Condition) -> Any:
        """Evaluate one condition tree (compiled once per tree, see :func:`_compiled`)."""
        return _compiled(condition)(self)

    def mechanism_code(self) -> Any:
        """Index into ``MECHANISMS`` per row (or for one case), from ``[mechanism]``'s points."""
        if "_mechanism_code" not in self._memo:
            self._memo["_mechanism_code"] = self._mechanism()
        return self._memo["_mechanism_code"]

    def mechanism_points(self) -> dict[str, Any]:
        """Neurological and mechanical points (an int array per row, or ints)."""
        m = self.facts.mechanism
        return {
            "neurological": count(*(self.holds(c) for c in m.neurological)),
            "mechanical": count(*(self.holds(c) for c in m.mechanical)),
        }

    def _compute(self, name: str) -> Any:
        facts = self.facts
        definition = self._definitions.get(name)
        if definition is not None:
            return definition(self)
        if name == "mri_indicated":
            return any_of([self[f"mri_{c.code}"] for c in facts.mri if c.indicates])
        if name.startswith("mechanism_") and name[len("mechanism_") :] in MECHANISMS:
            return self.mechanism_code() == MECHANISMS.index(name[len("mechanism_") :])
        spec = FIELD_BY_NAME.get(name)
        if spec is not None and spec.kind == "bool":
            return answer_is(self.df, name, True)
        if name in ENGINE_FACTS or name.startswith(("likely_", "model_")):
            return False  # an engine fact the caller did not give: false
        raise KeyError(f"no condition named {name!r} in article.toml")

    def _mechanism(self) -> Any:
        m = self.facts.mechanism
        points = self.mechanism_points()
        n, k = points["neurological"], points["mechanical"]
        least = m.mixed_at_least
        code = choose(
            [(n == 0) & (k == 0), ((n >= least) & (k >= least)) | (n == k), n > k],
            [MECHANISMS.index(x) for x in ("unclear", "mixed", "neurological")],
            MECHANISMS.index("mechanical"),
        )
        if m.never_mechanical_when is not None:
            demote = self.holds(m.never_mechanical_when) & (code == MECHANISMS.index("mechanical"))
            code = choose([demote], [MECHANISMS.index("mixed")], code)
        return code

    def _field(self, test: FieldTest) -> Any:
        df, field, op, value = self.df, test.field, test.op, test.value
        if op == "is":
            return answer_is(df, field, value)
        if op == "in":
            return answer_in(df, field, value)
        if op == "unknown":
            return is_unknown(df, field)
        if op == "known":
            return negate(is_unknown(df, field))
        result = _COMPARE[op](number(df, field), value)  # NaN (unknown) compares false
        return bool(result) if self.n is None else np.asarray(result, dtype=bool)

    def _broadcast(self, value: Any) -> Any:
        if self.n is None:
            return bool(value)
        if np.ndim(value) == 0:
            return np.full(self.n, bool(value))
        return np.asarray(value, dtype=bool)


Compiled = Callable[[Evaluation], Any]


@functools.cache
def _compiled(condition: Condition) -> Compiled:
    """A condition tree as one closure, built once per tree (the trees are frozen and hashable):
    no type dispatch per evaluation. For one case ``all`` / ``any`` short-circuit (a part not
    needed is not evaluated, so never memoised); for a frame every part is an array."""
    if isinstance(condition, Name):
        name = condition.name
        return lambda ev: ev[name]
    if isinstance(condition, FieldTest):
        return lambda ev: ev._field(condition)
    if isinstance(condition, All | AnyOf):
        parts = tuple(_compiled(c) for c in condition.items)
        one, many = (all, all_of) if isinstance(condition, All) else (any, any_of)

        def combined(ev: Evaluation) -> Any:
            if ev.n is None:
                return one(part(ev) for part in parts)
            return many([part(ev) for part in parts])

        return combined
    if isinstance(condition, Not):
        part = _compiled(condition.item)
        return lambda ev: negate(part(ev))
    raise TypeError(f"not a condition: {condition!r}")


def _reads(condition: Condition, named: Mapping[str, Condition], seen: dict) -> frozenset[str]:
    if isinstance(condition, Name):
        return _name_reads(condition.name, named, seen)
    if isinstance(condition, FieldTest):
        return frozenset({condition.field})
    if isinstance(condition, All | AnyOf):
        return frozenset().union(*(_reads(c, named, seen) for c in condition.items))
    if isinstance(condition, Not):
        return _reads(condition.item, named, seen)
    raise TypeError(f"not a condition: {condition!r}")


def _name_reads(name: str, named: Mapping[str, Condition], seen: dict) -> frozenset[str]:
    if name not in seen:
        # names are acyclic (checked by vignettes.article); a name that is neither defined
        # nor a field is an engine fact, which reads itself
        seen[name] = _reads(named[name], named, seen) if name in named else frozenset({name})
    return seen[name]


def dependencies(facts: ArticleFacts) -> dict[str, frozenset[str]]:
    """Name -> the answer fields and engine facts the named condition's value depends on.

    Every name :class:`Evaluation` memoises: the predicates, the urgency rules' triggers, the
    MRI criteria, ``mri_indicated``, the mechanism readings, and the yes/no fields. Derived
    from ``article.toml``'s condition trees, so it follows the file.
    """
    cached = _DEPENDENCIES.get(id(facts))
    if cached is not None and cached[0] is facts:
        return cached[1]
    named = _named_conditions(facts)
    seen: dict[str, frozenset[str]] = {}
    # the engine's own names first (the mechanism reading, then mri_indicated), so that a
    # condition naming them reads what they read
    m = facts.mechanism
    parts = [*m.neurological, *m.mechanical]
    if m.never_mechanical_when is not None:
        parts.append(m.never_mechanical_when)
    mechanism = frozenset().union(*(_reads(c, named, seen) for c in parts))
    seen |= {f"mechanism_{code}": mechanism for code in MECHANISMS}
    seen["_mechanism_code"] = mechanism
    mri = [_name_reads(f"mri_{c.code}", named, seen) for c in facts.mri]
    seen["mri_indicated"] = frozenset().union(*mri)
    out = {name: _name_reads(name, named, seen) for name in named} | seen
    out |= {f.name: frozenset({f.name}) for f in FIELD_BY_NAME.values() if f.kind == "bool"}
    _DEPENDENCIES[id(facts)] = (facts, out)
    return out


_DEPENDENCIES: dict[int, tuple[ArticleFacts, dict[str, frozenset[str]]]] = {}
_READERS: dict[int, tuple[ArticleFacts, dict[str, frozenset[str]]]] = {}


def _readers(facts: ArticleFacts) -> dict[str, frozenset[str]]:
    """Field or engine fact -> the names that depend on it (:func:`dependencies` inverted)."""
    cached = _READERS.get(id(facts))
    if cached is not None and cached[0] is facts:
        return cached[1]
    out: dict[str, set[str]] = {}
    for name, reads in dependencies(facts).items():
        for read in reads:
            out.setdefault(read, set()).add(name)
    frozen = {k: frozenset(v) for k, v in out.items()}
    _READERS[id(facts)] = (facts, frozen)
    return frozen


_DEFINITIONS: dict[int, tuple[ArticleFacts, dict[str, Compiled]]] = {}


def _named_conditions(facts: ArticleFacts) -> dict[str, Condition]:
    named: dict[str, Condition] = dict(facts.predicates)
    named |= {f"trigger_{r.code}": r.when for r in facts.urgency_rules}
    named |= {f"mri_{c.code}": c.when for c in facts.mri}
    named["withhold_reassurance"] = facts.withhold_reassurance_when
    return named


def _definitions(facts: ArticleFacts) -> dict[str, Compiled]:
    """Name -> compiled definition of every table-defined condition, once per facts object."""
    cached = _DEFINITIONS.get(id(facts))
    if cached is not None and cached[0] is facts:
        return cached[1]
    named = _named_conditions(facts)
    compiled = {name: _compiled(condition) for name, condition in named.items()}
    _DEFINITIONS[id(facts)] = (facts, compiled)
    return compiled
