"""Turn intake frames into the numeric matrix every learned model reads.

One encoding for every candidate, chosen so that exact TreeSHAP works on all of them:
numbers stay numbers, booleans become 0/1, categories become one indicator column per value,
and an unknown answer is NaN in every column of its field (trees route NaN natively; the linear
baseline imputes and adds indicators). Attributions of a field's columns add up to the field's
attribution, so users see one number per question they answered.
"""

from __future__ import annotations

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
    blocks = []
    for field in FIELDS:
        col = frame[field.name]
        if field.kind == "category":
            codes = pd.Categorical(col, categories=list(field.values)).codes
            onehot = (codes[:, None] == np.arange(len(field.values))[None, :]).astype(float)
            onehot[codes < 0] = np.nan
            blocks.append(onehot)
        else:
            blocks.append(col.astype("Float64").to_numpy(dtype=float, na_value=np.nan)[:, None])
    return np.hstack(blocks)


def to_fields(columns: np.ndarray) -> np.ndarray:
    """Sum per-column values (e.g. attributions) into per-field values.

    Parameters
    ----------
    columns : ndarray of shape (..., len(FEATURE_NAMES))

    Returns
    -------
    ndarray of shape (..., len(FIELD_ORDER))
    """
    out = np.zeros((*columns.shape[:-1], len(FIELD_ORDER)))
    for j, name in enumerate(FIELD_ORDER):
        out[..., j] = columns[..., name == FEATURE_FIELD].sum(axis=-1)
    return out
