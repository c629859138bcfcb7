"""Exact frame equality that is fast on categorical columns.

``pandas.testing.assert_frame_equal`` compares a categorical column value by value in Python
(about 0.2 s per column of 20,000 rows: 2 s for a generated frame). :func:`assert_frames_identical`
first asks the same, more strictly, in one vectorised pass; only frames it cannot call identical
go to ``assert_frame_equal``, which then decides and words the failure as before.
"""

from __future__ import annotations

import pandas as pd

__all__ = ["assert_frames_identical"]


def _same_dtype(left: object, right: object) -> bool:
    """Equal dtypes; for categoricals also the same categories in the same order (``==`` on
    unordered categorical dtypes ignores the order, which ``assert_frame_equal`` checks)."""
    if left != right:
        return False
    if isinstance(left, pd.CategoricalDtype) and isinstance(right, pd.CategoricalDtype):
        return (
            left.ordered == right.ordered
            and left.categories.dtype == right.categories.dtype
            and left.categories.tolist() == right.categories.tolist()
        )
    return True


def assert_frames_identical(left: pd.DataFrame, right: pd.DataFrame) -> None:
    """Assert what ``pd.testing.assert_frame_equal(left, right)`` asserts by default, exactly.

    The same shape, column labels, index (values and dtype), dtypes (categories in order) and
    values, missing values in the same places. ``DataFrame.equals`` compares the values;
    the dtype and index checks make it as strict as ``assert_frame_equal``.
    """
    identical = (
        isinstance(left, pd.DataFrame)
        and isinstance(right, pd.DataFrame)
        and type(left.index) is type(right.index)
        and left.index.dtype == right.index.dtype
        and left.columns.tolist() == right.columns.tolist()
        and all(_same_dtype(a, b) for a, b in zip(left.dtypes, right.dtypes, strict=True))
        and left.equals(right)
    )
    if not identical:  # the slow comparison decides, and words the failure
        pd.testing.assert_frame_equal(left, right)
