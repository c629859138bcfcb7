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

from collections.abc import Mapping
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
from vignettes.conditions import All, AnyOf, Condition, FieldTest, Name, Not
from vignettes.schema import FIELD_BY_NAME

__all__ = ["Evaluation", "negate"]

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
        self._rules = {f"trigger_{r.code}": r.when for r in facts.urgency_rules}
        self._mri = {f"mri_{c.code}": c.when for c in facts.mri}

    def __getitem__(self, name: str) -> Any:
        """The named condition's value: a bool array per row, or one bool."""
        if name not in self._memo:
            self._memo[name] = self._broadcast(self._compute(name))
        return self._memo[name]

    def holds(self, condition: Condition) -> Any:
        """Evaluate one condition tree."""
        if isinstance(condition, Name):
            return self[condition.name]
        if isinstance(condition, FieldTest):
            return self._field(condition)
        if isinstance(condition, All):
            return all_of([self.holds(c) for c in condition.items])
        if isinstance(condition, AnyOf):
            return any_of([self.holds(c) for c in condition.items])
        if isinstance(condition, Not):
            return negate(self.holds(condition.item))
        raise TypeError(f"not a condition: {condition!r}")

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
        if name in facts.predicates:
            return self.holds(facts.predicates[name])
        if name in self._rules:
            return self.holds(self._rules[name])
        if name in self._mri:
            return self.holds(self._mri[name])
        if name == "withhold_reassurance":
            return self.holds(facts.withhold_reassurance_when)
        if name == "mri_indicated":
            return any_of([self[f"mri_{c.code}"] for c in facts.mri if c.indicates])
        if name.startswith("mechanism_") and name[len("mechanism_") :] in MECHANISMS:
            return self.mechanism_code() == MECHANISMS.index(name[len("mechanism_") :])
        spec = FIELD_BY_NAME.get(name)
        if spec is not None and spec.kind == "bool":
            return answer_is(self.df, name, True)
        if name.startswith(("likely_", "model_")):
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
