"""The suite's fast frame comparison fails wherever ``assert_frame_equal`` fails."""

from __future__ import annotations

import pandas as pd
import pytest

import vignettes
from tests.frames import assert_frames_identical


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return vignettes.generate(500, seed=4)


def test_a_frame_is_identical_to_its_copy(frame: pd.DataFrame) -> None:
    assert_frames_identical(frame, frame.copy())


@pytest.mark.parametrize(
    "change",
    [
        "value",
        "missing",
        "category_order",
        "dtype",
        "column_order",
        "index",
    ],
)
def test_every_difference_assert_frame_equal_sees_fails(frame: pd.DataFrame, change: str) -> None:
    other = frame.copy()
    if change == "value":
        other.loc[3, "age"] += 1
    elif change == "missing":
        other.loc[7, "weakness"] = pd.NA if pd.notna(frame.loc[7, "weakness"]) else True
    elif change == "category_order":
        other["sex"] = other["sex"].cat.reorder_categories(other["sex"].cat.categories[::-1])
    elif change == "dtype":
        other["age"] = other["age"].astype("float64")
    elif change == "column_order":
        other = other[[*other.columns[1:], other.columns[0]]]
    else:
        other.index = other.index + 1
    with pytest.raises(AssertionError):
        pd.testing.assert_frame_equal(frame, other)
    with pytest.raises(AssertionError):
        assert_frames_identical(frame, other)
