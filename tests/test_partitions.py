"""Generation that scales out: partitions of a dataset do not depend on how it was split."""

from __future__ import annotations

import pandas as pd
import pytest

import vignettes
from tests.frames import assert_frames_identical
from vignettes.generate import BLOCK_ROWS


@pytest.mark.parametrize("setting", ["primary_care", "spine_clinic"])
def test_two_partitionings_give_the_same_rows(setting: str) -> None:
    # four random blocks, every partition edge of both splits inside a block
    n_total = 3 * BLOCK_ROWS + 1_000
    three = [
        vignettes.generate_partition(k, 3, n_total, seed=21, setting=setting) for k in range(3)
    ]
    seven = [
        vignettes.generate_partition(k, 7, n_total, seed=21, setting=setting) for k in range(7)
    ]
    a = pd.concat(three, ignore_index=True)
    b = pd.concat(seven, ignore_index=True)
    assert_frames_identical(a, b)
    assert a["case_id"].tolist() == list(range(n_total))


def test_partitions_equal_one_process() -> None:
    parts = [vignettes.generate_partition(k, 4, 20_000, seed=5) for k in range(4)]
    assert_frames_identical(pd.concat(parts, ignore_index=True), vignettes.generate(20_000, seed=5))


def test_partition_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="partition"):
        vignettes.generate_partition(3, 3, 100)
    with pytest.raises(ValueError, match="n_partitions"):
        vignettes.generate_partition(0, 0, 100)
