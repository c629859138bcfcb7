"""Reading validated answers the same way for a frame and for one case.

The article's rules (:mod:`model.rules`, and the rules baseline in ``training``) are written once
over these primitives: each reads a frame column as a NumPy array (one value per row) or one
case's answer (``model.intake.validate_case``'s dict) as a scalar, and the rules combine the
results with ``&`` and ``|``, which mean the same for both. An unknown answer (``<NA>``,
``None``) or an absent column is never "known and equal": a rule never fires on it.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Mapping
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

__all__ = [
    "Answers",
    "all_of",
    "answer_in",
    "answer_is",
    "any_of",
    "choose",
    "count",
    "decision",
    "is_one_case",
    "is_unknown",
    "number",
    "rows",
]

Answers: TypeAlias = pd.DataFrame | Mapping[str, Any]
"""Validated intakes: a frame (one case per row) or one case (``validate_case``'s dict)."""


def is_one_case(df: Answers) -> bool:
    """True for one case (a mapping of plain values), false for a frame."""
    return not isinstance(df, pd.DataFrame)


def answer_is(df: Answers, name: str, value: object) -> Any:
    """Whether the answer to ``name`` is known and equal to ``value`` (unknown -> False).

    Returns a ``bool`` for one case and a ``bool`` array (one per row) for a frame; so do the
    other primitives.
    """
    if is_one_case(df):
        answer = df.get(name)
        return answer is not None and answer == value
    if name not in df:
        return np.zeros(len(df), dtype=bool)
    # Fast paths on the underlying arrays (a generic ``eq`` costs ~10x more).
    array = df[name].array
    if isinstance(array, pd.Categorical):
        categories = array.categories
        if value not in categories:
            return np.zeros(len(df), dtype=bool)
        return np.asarray(array.codes) == categories.get_loc(value)
    if isinstance(array, pd.arrays.BooleanArray) and isinstance(value, bool):
        return array.to_numpy(dtype=bool, na_value=not value) == value  # unknown -> False
    return df[name].eq(value).fillna(False).to_numpy(dtype=bool)


def answer_in(df: Answers, name: str, values: tuple[object, ...]) -> Any:
    """Whether the answer to ``name`` is known and one of ``values``."""
    if is_one_case(df):
        answer = df.get(name)
        return answer is not None and answer in values
    if name not in df:
        return np.zeros(len(df), dtype=bool)
    return df[name].isin(list(values)).fillna(False).to_numpy(dtype=bool)


def number(df: Answers, name: str) -> Any:
    """A numeric answer as float, NaN where unknown (comparisons with NaN are False)."""
    if is_one_case(df):
        answer = df.get(name)
        return math.nan if answer is None else float(answer)
    if name not in df:
        return np.full(len(df), np.nan)
    return pd.to_numeric(df[name]).astype("Float64").to_numpy(dtype=float, na_value=np.nan)


def is_unknown(df: Answers, name: str) -> Any:
    """Whether the answer to ``name`` is unknown (``None``, ``<NA>`` or an absent column)."""
    if is_one_case(df):
        return df.get(name) is None
    if name not in df:
        return np.ones(len(df), dtype=bool)
    return df[name].isna().to_numpy(dtype=bool)


def any_of(conditions: list[Any]) -> Any:
    """Elementwise OR of conditions (bools or bool arrays alike)."""
    return functools.reduce(operator.or_, conditions)


def all_of(conditions: list[Any]) -> Any:
    """Elementwise AND of conditions (bools or bool arrays alike)."""
    return functools.reduce(operator.and_, conditions)


def count(*conditions: Any) -> Any:
    """How many of the conditions hold: an ``int``, or an ``int64`` array per row."""
    return sum(c if isinstance(c, bool) else np.asarray(c, dtype=np.int64) for c in conditions)


def choose(conditions: list[Any], choices: list[Any], default: Any) -> Any:
    """The choice of the first condition that holds (``numpy.select`` for scalars too)."""
    if isinstance(conditions[0], bool):
        return next((c for cond, c in zip(conditions, choices, strict=True) if cond), default)
    return np.select(conditions, choices, default)


def decision(decision: Any, n: int | None, name: str = "red_flag") -> Any:
    """An optional decision (bool; None = False): per row by position, or one for a case."""
    if n is None:
        return bool(decision) if decision is not None else False
    if decision is None:
        return np.zeros(n, dtype=bool)
    values = pd.Series(np.asarray(decision)).astype("boolean").fillna(False).to_numpy(dtype=bool)
    if values.shape != (n,):
        raise ValueError(f"{name}: expected {n} values (one per row), got {values.shape[0]}")
    return values


def rows(df: Answers) -> int | None:
    """Rows of a frame; ``None`` for one case."""
    return None if is_one_case(df) else len(df)
