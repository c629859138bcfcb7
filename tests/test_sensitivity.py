"""make sensitivity end to end on small sizes: one fit, every world a nested MLflow run."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pytest

from training.report import Section, build_html
from training.sensitivity import (
    SECTION_TITLE,
    SensitivityConfig,
    attach_to_comparison,
    latest_section,
    parse_args,
    run_sensitivity,
)
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
    mlflow.set_experiment("sensitivity-test")
    with mlflow.start_run(run_name="comparison-test") as comparison:  # what `make train` logs
        mlflow.set_tag("role", "comparison")
        mlflow.log_text(build_html("candidates", [Section("Candidates", "a table")]),
                        "comparison.html")  # fmt: skip
    out = run_sensitivity(cfg)
    worlds, swings, ranking = out["worlds"], out["swings"], out["ranking"]
    n_tables = len(uncertainties())
    assert len(worlds) == 2 and len(swings) == 2 * n_tables and len(ranking) == n_tables
    assert (worlds["bayes_accuracy"] > 0.5).all() and np.isfinite(worlds["gap_pp"]).all()
    assert ranking["gap_range_pp"].is_monotonic_decreasing
    experiment = mlflow.get_experiment_by_name("sensitivity-test")
    runs = mlflow.search_runs([experiment.experiment_id])
    runs = runs[runs["run_id"] != comparison.info.run_id]
    parent = runs[runs["tags.mlflow.parentRunId"].isna()]
    assert len(parent) == 1 and parent["tags.role"].iloc[0] == "sensitivity"
    assert len(runs) == 1 + 1 + 2 + 2 * n_tables  # parent, default world, worlds, swings
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(parent["run_id"].iloc[0])}
    assert {"worlds.csv", "ranking.csv", "tornado_gap.png", "sensitivity.html"} <= artifacts

    # the comparison report gained the section, with the headline and the tornado plots
    client = mlflow.MlflowClient()
    page = client.download_artifacts(comparison.info.run_id, "comparison.html", str(tmp_path))
    text = Path(page).read_text(encoding="utf-8")
    assert text.count('<section id="how-much-the-assumptions-matter">') == 1
    assert f'<a href="#how-much-the-assumptions-matter">{SECTION_TITLE}</a>' in text
    assert "stays within" in text and text.count("data:image/png") == 2
    assert "Candidates" in text  # the report's own sections are kept
    # rebuilt from the logged run, as `make train` does; attaching again replaces, never repeats
    rebuilt = latest_section("sensitivity-test")
    assert rebuilt is not None and rebuilt.title == SECTION_TITLE
    assert attach_to_comparison(rebuilt, "sensitivity-test") == "comparison-test"
    (tmp_path / "b").mkdir()
    again = client.download_artifacts(
        comparison.info.run_id, "comparison.html", str(tmp_path / "b")
    )
    assert Path(again).read_text(encoding="utf-8").count("how-much-the-assumptions-matter") == 2


def test_the_command_line_refuses_nonsense() -> None:
    assert parse_args(["--worlds", "3"]).worlds == 3
    with pytest.raises(SystemExit):
        parse_args(["--cases", "5"])
