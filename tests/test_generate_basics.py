"""Reproducibility, dtypes and value domains of generated frames against the contract."""

import copy
import tomllib

import numpy as np
import pandas as pd
import pytest

import vignettes
from tests.frames import assert_frames_identical
from vignettes.knowledge import KNOWLEDGE_PATH, parse_knowledge
from vignettes.schema import CAUSES, FIELD_BY_NAME, FIELDS


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return vignettes.generate(20_000, seed=11)


def test_same_seed_same_frame() -> None:
    a = vignettes.generate(3_000, seed=5)
    b = vignettes.generate(3_000, seed=5)
    assert_frames_identical(a, b)
    c = vignettes.generate(3_000, seed=6)
    assert not a["cause"].equals(c["cause"])


def test_pieces_equal_whole() -> None:
    whole = vignettes.generate(20_000, seed=9)
    piece = vignettes.generate(5_000, seed=9, start=7_000)
    assert_frames_identical(
        piece.reset_index(drop=True), whole.iloc[7_000:12_000].reset_index(drop=True)
    )


def test_columns_and_dtypes(frame: pd.DataFrame) -> None:
    for field in FIELDS:
        assert field.name in frame
        col = frame[field.name]
        if field.kind == "category":
            assert list(col.cat.categories) == list(field.values)
        elif field.kind == "bool":
            assert col.dtype == "boolean"
    assert list(frame["cause"].cat.categories) == list(vignettes.CAUSES)
    assert frame["red_flag"].dtype == bool


def test_value_domains(frame: pd.DataFrame) -> None:
    assert frame["age"].notna().all()
    assert frame["age"].between(18, 100).all()
    assert (frame["duration_weeks"].dropna() >= 0).all()
    assert frame["red_flag"].equals(frame["serious_condition"] != "none")


def test_gaps_differ_by_field(frame: pd.DataFrame) -> None:
    unknown = frame[[f.name for f in FIELDS]].isna().mean()
    assert unknown["age"] == 0
    assert unknown["reflex_changes"] > 0.5
    assert unknown["mri_finding"] > 0.3
    assert unknown["worse_sitting"] < 0.1


def test_bad_arguments_name_the_parameter() -> None:
    with pytest.raises(ValueError, match="setting"):
        vignettes.generate(10, seed=1, setting="icu")
    with pytest.raises(ValueError, match="seed"):
        vignettes.generate(10, seed=-1)
    with pytest.raises(ValueError, match=r"^n "):
        vignettes.generate(-5)


def test_posterior_rows_sum_to_one(frame: pd.DataFrame) -> None:
    post = vignettes.posterior(frame.iloc[:2_000])
    sums = post[list(vignettes.CAUSES)].sum(axis=1)
    np.testing.assert_allclose(sums, 1.0, atol=1e-9)
    assert post["red_flag"].between(0, 1).all()


@pytest.mark.parametrize("setting", vignettes.SETTINGS)
def test_answers_never_contradict_each_other(setting: str) -> None:
    """Within every joint group, the answered members always form one of its joint answers."""
    frame = vignettes.generate(100_000, seed=13, setting=setting)
    kb = vignettes.load_knowledge()
    assert kb.groups
    for group in kb.groups.values():
        codes = []
        for name in group.fields:
            column = frame[name]
            if FIELD_BY_NAME[name].kind == "bool":
                codes.append(column.astype("Int8").fillna(-1).to_numpy(dtype=int))
            else:
                codes.append(column.cat.codes.to_numpy(dtype=int))
        observed = np.column_stack(codes)  # -1 = unknown
        known = observed >= 0
        # a row agrees with a joint answer if every answered member has the answer's value
        agrees = ((observed[:, None, :] == group.codes[None]) | ~known[:, None, :]).all(axis=2)
        assert agrees.any(axis=1).all(), group.name
        # and the combinations that never happen indeed never show up
        both = known.all(axis=1)
        seen = {tuple(row) for row in observed[both].tolist()}
        assert seen <= {tuple(row) for row in group.codes.tolist()}, group.name


def test_a_group_changes_only_its_own_members() -> None:
    """The group draws with its first member's uniform and keeps every other field's draws: made
    independent again (same marginals), only the second member's answers differ."""
    with open(KNOWLEDGE_PATH, "rb") as fh:
        doc = tomllib.load(fh)
    kb = vignettes.load_knowledge()
    plain = copy.deepcopy(doc)
    del plain["groups"]["sitting"]
    for name in ("worse_sitting", "better_sitting"):
        rate = kb.tables[name][0, :, 0, 0, 1]
        plain["fields"][name] = {
            "kind": "bernoulli",
            "source": "assumption: the same rates, answered independently",
            "cause": dict(zip(CAUSES, rate.tolist(), strict=True)),
        }
    independent = vignettes.generate(20_000, seed=4, knowledge=parse_knowledge(plain))
    grouped = vignettes.generate(20_000, seed=4)
    assert_frames_identical(
        independent.drop(columns="better_sitting"), grouped.drop(columns="better_sitting")
    )
    assert not independent["better_sitting"].equals(grouped["better_sitting"])
    both = independent["worse_sitting"].fillna(False) & independent["better_sitting"].fillna(False)
    assert both.sum() > 100  # independent answers contradict each other; the group's never do
