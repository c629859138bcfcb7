"""The comparison view of the MLflow UI: a shared view state and metrics named alike."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest

from training.mlflow_view import (
    KEY_METRICS,
    VIEW_TAG,
    log_bayes_gaps,
    runs_view_state,
    runs_view_url,
    share_runs_view,
)


def test_the_view_shows_the_key_metrics_first_and_pins_the_comparison() -> None:
    state = runs_view_state("abc123")
    assert state["selectedColumns"][: len(KEY_METRICS)] == [f"metrics.`{m}`" for m in KEY_METRICS]
    assert state["runsPinned"] == ["abc123"]
    url = runs_view_url("4")
    assert url.endswith(
        "#/experiments/4/runs?viewStateShareKey=comparison&workflowType=machine_learning"
    )


@pytest.mark.slow
def test_gaps_and_the_view_are_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, own_tracking_store: str
) -> None:
    monkeypatch.chdir(tmp_path)
    experiment = mlflow.set_experiment("view-test")
    results = {
        "lightgbm": {"accuracy": 0.90, "log_loss": 0.30, "ece": 0.01, "urgency_caught": 0.9},
        "bayes_posterior": {"accuracy": 0.91, "log_loss": 0.27, "ece": 0.01},
    }
    with mlflow.start_run() as parent, mlflow.start_run(nested=True) as child:
        pass
    log_bayes_gaps(
        {"lightgbm": child.info.run_id}, results, "bayes_posterior", parent.info.run_id, "lightgbm"
    )
    link = share_runs_view(experiment.experiment_id, parent.info.run_id)
    client = mlflow.MlflowClient()
    metrics = client.get_run(child.info.run_id).data.metrics
    assert metrics["gap_to_bayes_pp"] == pytest.approx(1.0)
    assert metrics["log_loss_ratio_to_bayes"] == pytest.approx(0.30 / 0.27)
    top = client.get_run(parent.info.run_id).data.metrics
    assert set(KEY_METRICS) <= set(top) and top["accuracy"] == pytest.approx(0.90)
    tag = client.get_experiment(experiment.experiment_id).tags[VIEW_TAG]
    assert json.loads(tag)["runsPinned"] == [parent.info.run_id]
    assert f"experiments/{experiment.experiment_id}/runs" in link
