"""Turn intake frames into the numeric matrix every learned model reads.

One encoding for every candidate, chosen so that exact TreeSHAP works on all of them:
numbers stay numbers, booleans become 0/1, categories become one indicator column per value,
and an unknown answer is NaN in every column of its field (trees route NaN natively; the linear
baseline imputes and adds indicators). Attributions of a field's columns add up to the field's
attribution, so users see one number per question they answered.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from vignettes.schema import FIELDS, Field


def _columns(field: Field) -> list[str]:
    if field.kind == "category":
        return [f"{field.name}={value}" for value in field.values]
    return [field.name]


FEATURE_NAMES: tuple[str, ...] = tuple(c for f in FIELDS for c in _columns(f))
"""Column names of the encoded matrix, in order."""

FEATURE_FIELD: np.ndarray = np.array([f.name for f in FIELDS for _ in _columns(f)])
"""For each encoded column, the intake field it comes from."""

FIELD_ORDER: tuple[str, ...] = tuple(f.name for f in FIELDS)

_FIELD_START = np.array([FEATURE_NAMES.index(_columns(f)[0]) for f in FIELDS])
_CASE_LAYOUT: tuple[tuple[str, int, dict[Any, int] | None], ...] = tuple(
    (f.name, int(start), {v: i for i, v in enumerate(f.values)} if f.kind == "category" else None)
    for f, start in zip(FIELDS, _FIELD_START, strict=True)
)


def _category_codes(col: pd.Series, field: Field) -> np.ndarray:
    """Each answer's index in ``field.values`` (-1 where unknown)."""
    dtype = col.dtype
    if isinstance(dtype, pd.CategoricalDtype) and tuple(dtype.categories) == field.values:
        return np.asarray(col.cat.codes)  # the contract dtype: its codes are the field's
    return pd.Categorical(col, categories=list(field.values)).codes


def _numbers(col: pd.Series) -> np.ndarray:
    """A yes/no or numeric column as floats (booleans as 0/1), NaN where unknown."""
    if isinstance(col.dtype, pd.BooleanDtype | pd.Int64Dtype | pd.Float64Dtype):
        return col.to_numpy(dtype=float, na_value=np.nan)  # the contract dtypes, no copy first
    return col.astype("Float64").to_numpy(dtype=float, na_value=np.nan)


def encode(frame: pd.DataFrame) -> np.ndarray:
    """Encode a frame of intakes (contract columns and dtypes) as a float matrix.

    Parameters
    ----------
    frame : pandas.DataFrame
        Cases with every contract field as a column, as returned by ``vignettes.generate`` or
        ``model.intake.validate_frame``.

    Returns
    -------
    ndarray of shape (n_cases, len(FEATURE_NAMES))
        float64, NaN where the answer is unknown.
    """
    out = np.empty((len(frame), len(FEATURE_NAMES)))
    for field, start in zip(FIELDS, _FIELD_START.tolist(), strict=True):
        col = frame[field.name]
        if field.kind == "category":
            codes = _category_codes(col, field)
            block = out[:, start : start + len(field.values)]
            block[:] = codes[:, None] == np.arange(len(field.values))[None, :]
            block[codes < 0] = np.nan
        else:
            out[:, start] = _numbers(col)
    return out


def encode_case(answers: Mapping[str, Any]) -> np.ndarray:
    """Encode one validated case (``model.intake.validate_case``'s dict) as a one-row matrix.

    The same row :func:`encode` gives for a one-row frame of that case, in microseconds: no
    frame is built.

    Returns
    -------
    ndarray of shape (1, len(FEATURE_NAMES))
    """
    row = [np.nan] * len(FEATURE_NAMES)
    for name, start, index in _CASE_LAYOUT:
        value = answers.get(name)
        if value is None:
            continue
        if index is None:
            row[start] = float(value)  # numbers, and booleans as 0/1
        else:
            row[start : start + len(index)] = [0.0] * len(index)
            row[start + index[value]] = 1.0
    return np.array([row])


def to_fields(columns: np.ndarray) -> np.ndarray:
    """Sum per-column values (e.g. attributions) into per-field values.

    Parameters
    ----------
    columns : ndarray of shape (..., len(FEATURE_NAMES))

    Returns
    -------
    ndarray of shape (..., len(FIELD_ORDER))
    """
    if columns.shape[-1] == 0 or columns.size == 0:
        return np.zeros((*columns.shape[:-1], len(FIELD_ORDER)))
    return np.add.reduceat(columns, _FIELD_START, axis=-1)  # a field's columns are contiguous
