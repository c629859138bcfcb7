"""The differential: class-conditional conformal sets keep their coverage, per cause too."""

from __future__ import annotations

import json

import numpy as np
import pytest

import vignettes
from model.conformal import ConformalSets, coverage_report
from vignettes.schema import CAUSES


@pytest.fixture(scope="module")
def posterior_splits() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Bayes posterior probabilities on two fresh, disjoint samples (calibration, test)."""
    out = {}
    for name, start in (("calibration", 0), ("test", 80_000)):
        df = vignettes.generate(80_000, seed=123, start=start)
        proba = vignettes.posterior(df)[list(CAUSES)].to_numpy()
        out[name] = (proba, df["cause"].cat.codes.to_numpy().astype(np.int64))
    return out


@pytest.mark.parametrize("alpha", [0.03, 0.05])
def test_coverage_holds_overall_and_per_cause(posterior_splits, alpha: float) -> None:
    # Sets always hold the top cause, which alone is right ~89% of the time, so coverage can only
    # sit at 1 - alpha for alpha below ~0.1; above that it over-covers (still valid).
    sets = ConformalSets.fit(*posterior_splits["calibration"], alpha=alpha)
    proba, y = posterior_splits["test"]
    rep = coverage_report(sets.sets(proba), y)
    # closing the sets upward adds causes, so coverage rises about a point above 1 - alpha
    assert -0.015 < float(rep["coverage"]) - (1 - alpha) < 0.035
    # per cause: at least the target (minus sampling error), and not trivially everything
    assert np.all(rep["coverage_per_cause"] > 1 - alpha - 0.025), rep["coverage_per_cause"]
    assert float(rep["mean_size"]) < len(CAUSES) - 1


def test_sets_are_never_empty_and_contain_the_top_cause(posterior_splits) -> None:
    sets = ConformalSets.fit(*posterior_splits["calibration"], alpha=0.5)
    proba, _ = posterior_splits["test"]
    member = sets.sets(proba)
    assert member.any(axis=1).all()
    assert member[np.arange(len(proba)), proba.argmax(axis=1)].all()


@pytest.mark.parametrize("alpha", [0.05, 0.5])
def test_one_case_members_equal_the_array_sets(posterior_splits, alpha: float) -> None:
    sets = ConformalSets.fit(*posterior_splits["calibration"], alpha=alpha)
    proba, _ = posterior_splits["test"]
    member = sets.sets(proba[:3_000])
    for row, p in zip(member, proba[:3_000], strict=True):
        assert sets.members(p.tolist()) == np.flatnonzero(row).tolist()
    # a score exactly on a threshold is in, on both paths
    edge = np.full(len(CAUSES), 0.0)
    edge[0], edge[1] = 0.5, 1.0 - sets.thresholds[1]
    assert 1 in sets.members(edge.tolist()) and sets.sets(edge[None, :])[0, 1]


def test_smaller_alpha_gives_larger_sets(posterior_splits) -> None:
    proba, _ = posterior_splits["test"]
    loose = ConformalSets.fit(*posterior_splits["calibration"], alpha=0.3).sets(proba)
    tight = ConformalSets.fit(*posterior_splits["calibration"], alpha=0.02).sets(proba)
    assert (tight | loose).sum() == tight.sum()  # nested
    assert tight.sum(axis=1).mean() > loose.sum(axis=1).mean()


def test_round_trip_and_bad_alpha() -> None:
    sets = ConformalSets(alpha=0.1, thresholds=(0.1,) * 7)
    assert ConformalSets.from_dict(json.loads(json.dumps(sets.to_dict()))) == sets
    with pytest.raises(ValueError, match="alpha"):
        ConformalSets.fit(np.full((10, 7), 1 / 7), np.zeros(10, dtype=int), alpha=1.5)


def test_champion_output_carries_its_differential(trained) -> None:
    import mlflow

    triage = mlflow.pyfunc.load_model("models:/sciatica-triage@champion").unwrap_python_model()
    cases = vignettes.generate(200, seed=8)
    out = triage.model.predict(cases)
    assert (out["differential_coverage"] == 0.95).all()
    for cause, differential in zip(out["cause"], out["differential"], strict=True):
        names = list(differential)  # a list cell (one shape for every output)
        assert names[0] == cause
        assert set(names) <= set(CAUSES)


def _raw_sets(sets: ConformalSets, proba: np.ndarray) -> np.ndarray:
    """The class-conditional sets before closing upward (written out here, independently)."""
    member = (1.0 - proba) <= np.asarray(sets.thresholds) + 1e-12
    member[np.arange(len(proba)), proba.argmax(axis=1)] = True
    return member


@pytest.mark.parametrize("alpha", [0.05, 0.2])
def test_no_cause_left_out_is_more_probable_than_one_listed(posterior_splits, alpha) -> None:
    sets = ConformalSets.fit(*posterior_splits["calibration"], alpha=alpha)
    proba, _ = posterior_splits["test"]
    member = sets.sets(proba)
    least_in = np.where(member, proba, np.inf).min(axis=1)
    most_out = np.where(member, -np.inf, proba).max(axis=1)
    assert (most_out < least_in).all()
    # the raw per-cause sets were not ordered: closing upward had something to do
    raw = _raw_sets(sets, proba)
    assert (raw != member).any()
    assert (member >= raw).all()  # only ever adds causes


def test_closing_upward_only_raises_coverage(posterior_splits) -> None:
    sets = ConformalSets.fit(*posterior_splits["calibration"], alpha=0.05)
    proba, y = posterior_splits["test"]
    raw = coverage_report(_raw_sets(sets, proba), y)
    closed = coverage_report(sets.sets(proba), y)
    assert np.all(closed["coverage_per_cause"] >= raw["coverage_per_cause"])
    assert float(closed["mean_size"]) >= float(raw["mean_size"])
    assert float(closed["mean_size"]) < float(raw["mean_size"]) + 0.5  # a few causes, not all
