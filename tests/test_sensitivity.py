"""make sensitivity end to end on small sizes: one fit, every world a nested MLflow run."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pytest

from training.sensitivity import SensitivityConfig, parse_args, run_sensitivity
from vignettes.perturb import uncertainties

pytestmark = pytest.mark.slow


def test_sensitivity_ranks_the_assumptions_and_logs_every_world(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, own_tracking_store: str
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = SensitivityConfig(
        worlds=2,
        cases=1_500,
        swing_cases=600,
        n_train=3_000,
        n_val=1_000,
        seed=3,
        experiment="sensitivity-test",
    )
    out = run_sensitivity(cfg)
    worlds, swings, ranking = out["worlds"], out["swings"], out["ranking"]
    n_tables = len(uncertainties())
    assert len(worlds) == 2 and len(swings) == 2 * n_tables and len(ranking) == n_tables
    assert (worlds["bayes_accuracy"] > 0.5).all() and np.isfinite(worlds["gap_pp"]).all()
    assert ranking["gap_range_pp"].is_monotonic_decreasing
    experiment = mlflow.get_experiment_by_name("sensitivity-test")
    runs = mlflow.search_runs([experiment.experiment_id])
    parent = runs[runs["tags.mlflow.parentRunId"].isna()]
    assert len(parent) == 1
    assert len(runs) == 1 + 1 + 2 + 2 * n_tables  # parent, default world, worlds, swings
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(parent["run_id"].iloc[0])}
    assert {"worlds.csv", "ranking.csv", "tornado_gap.png", "sensitivity.html"} <= artifacts


def test_the_command_line_refuses_nonsense() -> None:
    assert parse_args(["--worlds", "3"]).worlds == 3
    with pytest.raises(SystemExit):
        parse_args(["--cases", "5"])
