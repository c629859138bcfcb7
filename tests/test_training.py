"""Training on small data: runs, metrics, artifacts, the registry alias, and the pyfunc model."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from scipy.special import softmax

import vignettes
from model.mlflow_names import MODEL_NAME
from training import TrainConfig, train
from training.calibrate import fit_platt, fit_temperature
from training.metrics import (
    ddxplus_metrics,
    differential_set,
    expected_calibration_error,
    threshold_for_recall,
)
from vignettes.article import URGENCY_TIERS
from vignettes.schema import CAUSES

CANDIDATE_METRICS = (
    "accuracy",
    "balanced_accuracy",
    "macro_f1",
    "top2_accuracy",
    "gtpa_at_3",
    "ddf1",
    "dsf1",
    "log_loss",
    "ece",
    "red_flag_auroc",
    "red_flag_recall",
    "red_flag_specificity",
    "fit_seconds",
    "predict_ms_per_1000",
    *(f"recall_{c}" for c in CAUSES),
    *(f"precision_{c}" for c in CAUSES),
)


def _children(parent_id: str) -> dict[str, mlflow.entities.Run]:
    runs = MlflowClient().search_runs(
        [MlflowClient().get_run(parent_id).info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent_id}'",
    )
    return {r.data.tags["candidate"]: r for r in runs}


def _artifacts(run_id: str, path: str = "") -> set[str]:
    return {a.path for a in MlflowClient().list_artifacts(run_id, path)}


def test_every_candidate_is_a_nested_run_with_metrics(trained) -> None:
    children = _children(trained.parent_run_id)
    assert set(children) == set(trained.results)
    for name, run in children.items():
        missing = [m for m in CANDIDATE_METRICS if m not in run.data.metrics]
        assert not missing, f"{name} lacks {missing}"
        assert run.data.params["seed"] == "3"
        assert run.data.tags["code_version"]
        assert {"confusion_matrix.png", "reliability_diagram.png", "per_cause_report.md"} <= (
            _artifacts(run.info.run_id)
        )
    tree = children["lightgbm"].info.run_id
    assert "shap_importance.png" in _artifacts(tree)


def test_training_data_is_logged_as_a_dataset_input(trained) -> None:
    run = _children(trained.parent_run_id)["lightgbm"]
    inputs = run.inputs.dataset_inputs
    names = {i.dataset.name for i in inputs}
    assert "vignettes-train" in names
    assert all(i.dataset.digest for i in inputs)


def test_parent_run_holds_comparison_and_robustness(trained) -> None:
    parent = MlflowClient().get_run(trained.parent_run_id)
    assert {
        "comparison.md",
        "comparison.html",
        "robustness_missing.png",
        "urgency_tradeoff.png",
    } <= _artifacts(parent.info.run_id)
    table = Path(
        mlflow.artifacts.download_artifacts(
            run_id=parent.info.run_id, artifact_path="comparison.md"
        )
    ).read_text()
    for name in trained.results:
        assert name in table
    assert "Conformal differential" in table  # per-cause coverage, champion and Bayes
    assert "Urgency tiers on the test set at K = 100" in table
    # its row in the candidates' and the urgency tables, and per cause in the differential's
    assert table.count("| bayes_posterior |") == len(CAUSES) + 3
    assert float(parent.data.params["cost_ratio"]) == 100.0
    metrics = parent.data.metrics
    assert "robust_missing_80_accuracy" in metrics
    assert metrics["robust_missing_80_accuracy"] < metrics["robust_missing_0_accuracy"]
    for model in ("unadjusted", "prior_adjusted", "bayes_unadjusted", "bayes"):
        for figure in ("accuracy", "log_loss", "ece"):
            assert f"shift_spine_clinic_{model}_{figure}" in metrics
    # the exact posterior told the new setting does at least as well as with the old priors
    assert (
        metrics["shift_spine_clinic_bayes_log_loss"]
        <= metrics["shift_spine_clinic_bayes_unadjusted_log_loss"]
    )
    assert "gap to Bayes (pp)" in trained.table.columns


def test_parent_run_holds_the_serious_types_and_the_safety_table(trained) -> None:
    parent = MlflowClient().get_run(trained.parent_run_id)
    assert {"serious_types.md", "safety.md", "safety_table.json"} <= _artifacts(parent.info.run_id)

    def text(name: str) -> str:
        path = mlflow.artifacts.download_artifacts(run_id=parent.info.run_id, artifact_path=name)
        return Path(path).read_text()

    serious = text("serious_types.md")
    for condition in ("cauda_equina", "infection", "malignancy", "progressive_deficit"):
        assert f"| {condition} |" in serious
    safety = text("safety.md")
    for policy in ("rules alone", trained.champion, "bayes"):
        assert f"| malignancy | {policy} |" in safety
    assert "points fewer serious conditions than the Bayes policy" in safety
    assert "serious conditions caught" in safety
    assert "Safety table" in text("comparison.html")
    assert "Where each serious condition lands" in text("comparison.md")
    metrics = parent.data.metrics
    for policy in ("rules", "champion", "bayes"):
        assert 0 <= metrics[f"safety_{policy}_caught"] <= 1
    # the same rules underneath: a model can only add to what the rules alone catch
    assert metrics["safety_champion_caught"] >= metrics["safety_rules_caught"]
    assert metrics["safety_bayes_caught"] >= metrics["safety_rules_caught"]
    assert metrics["serious_malignancy_log_loss_ratio"] > 0.5


def test_every_candidate_logs_its_urgency_tiers(trained) -> None:
    for name, run in _children(trained.parent_run_id).items():
        metrics = run.data.metrics
        shares = [metrics[f"urgency_tier_share_{t}"] for t in URGENCY_TIERS]
        assert sum(shares) == pytest.approx(1.0), name
        assert 0.0 <= metrics["urgency_caught"] <= 1.0, name
        # reported signs set emergency and urgent by rule: the same for every candidate
        assert metrics["urgency_tier_share_emergency"] == pytest.approx(
            trained.results["bayes_posterior"]["urgency_tier_share_emergency"]
        )
        # screened patients go urgent only by the answer-based rules (a deficit getting worse,
        # bilateral radicular pain with a deficit) or the model's upper threshold: a few percent
        assert metrics["urgency_answered_no_urgent"] <= 0.06, name


def test_no_candidate_beats_the_bayes_ceiling(trained) -> None:
    bayes = trained.results["bayes_posterior"]["log_loss"]
    for name, metrics in trained.results.items():
        assert metrics["log_loss"] >= bayes - 0.01, name


def test_champion_alias_loads_as_pyfunc(trained) -> None:
    assert trained.champion in ("hist_gradient_boosting", "lightgbm")
    version = MlflowClient().get_model_version_by_alias("sciatica-triage", "champion")
    assert version.version == trained.model_version
    loaded = mlflow.pyfunc.load_model("models:/sciatica-triage@champion")
    cases = vignettes.generate(50, seed=99)[list(vignettes.FIELD_NAMES)]
    # The pyfunc takes JSON-like columns (what `mlflow models serve` and Spark send) and
    # returns one record per case.
    out = pd.DataFrame(loaded.predict(pd.DataFrame(json.loads(cases.to_json(orient="records")))))
    probs = out[[f"prob_{c}" for c in CAUSES]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    assert out["red_flag"].dtype == bool
    assert "disclaimer" in out and out["disclaimer"].str.contains("not a medical device").all()
    serious = out[[c for c in out.columns if c.startswith("prob_serious_")]]
    assert serious.shape[1] == 4 and ((serious >= 0) & (serious <= 1)).all().all()


def test_registered_model_has_no_pickles_and_is_from_code(trained) -> None:
    local = Path(mlflow.artifacts.download_artifacts("models:/sciatica-triage@champion"))
    files = [p.name for p in local.rglob("*") if p.is_file()]
    assert not [f for f in files if f.endswith((".pkl", ".pickle", ".cloudpickle"))], files
    mlmodel = (local / "MLmodel").read_text()
    assert "mlflow_model.py" in mlmodel
    assert "MODEL_CARD.md" in files
    assert "signature" in mlmodel


def test_second_training_registers_but_keeps_the_better_champion(trained) -> None:
    worse = train(
        TrainConfig(
            n_train=300,
            n_val=300,
            n_test=2_000,
            seed=3,
            candidates=("lightgbm",),
            learning_curve=False,
            robustness=False,
        )
    )
    assert int(worse.model_version) > int(trained.model_version)
    assert not worse.alias_moved
    current = MlflowClient().get_model_version_by_alias("sciatica-triage", "champion")
    assert current.version == trained.model_version


def test_the_bayes_ceiling_s_differential_is_the_reference(trained) -> None:
    """DDXPlus's differential metrics compare with the exact posterior: the ceiling scores 1."""
    runs = {name: r.data.metrics for name, r in _children(trained.parent_run_id).items()}
    assert runs["bayes_posterior"]["ddf1"] == pytest.approx(1.0)
    assert runs["bayes_posterior"]["gtpa_at_1"] == pytest.approx(
        runs["bayes_posterior"]["accuracy"]
    )
    for name, m in runs.items():
        assert m["gtpa_at_3"] >= m["accuracy"], name
        if name != "bayes_posterior":
            assert m["ddf1"] < 1.0, name


def test_ddxplus_metrics_by_hand() -> None:
    """Two cases worked by hand: the 95% differential, top-k and the serious-condition F1."""
    proba = np.zeros((2, len(CAUSES)))
    proba[0, :3] = [0.6, 0.38, 0.02]  # differential {0, 1}: 0.6 + 0.38 >= 0.95
    proba[1, :3] = [0.97, 0.02, 0.01]  # differential {0}
    reference = np.zeros_like(proba)
    reference[0, 0] = 1.0  # {0}
    reference[1, :2] = [0.5, 0.5]  # {0, 1}
    assert differential_set(proba).sum(axis=1).tolist() == [2, 1]
    m = ddxplus_metrics(
        proba, np.array([1, 2]), reference, np.array([True, False]), np.array([True, True])
    )
    assert m["gtpa_at_1"] == 0.0 and m["gtpa_at_3"] == 1.0
    assert m["ddr"] == pytest.approx((1 / 1 + 1 / 2) / 2)  # per case |both| / |reference|
    assert m["ddp"] == pytest.approx((1 / 2 + 1 / 1) / 2)  # per case |both| / |predicted|
    assert m["dsr"] == 0.5 and m["dsp"] == 1.0
    assert m["dsf1"] == pytest.approx(2 * 0.5 / 1.5)


def test_threshold_reaches_the_recall_target() -> None:
    rng = np.random.default_rng(0)
    y = rng.random(5_000) < 0.05
    p = np.clip(y * 0.3 + rng.random(5_000) * 0.7, 0, 1)
    t = threshold_for_recall(p, y, 0.99)
    assert (p[y] >= t).mean() >= 0.99
    assert (p[y] >= np.nextafter(t, 1)).mean() < 0.99 or t == p[y].min()


def test_served_threshold_counts_the_reported_signs() -> None:
    rng = np.random.default_rng(3)
    y = rng.random(20_000) < 0.05
    p = np.clip(y * 0.3 + rng.random(20_000) * 0.7, 0, 1)
    fired = y & (rng.random(20_000) < 0.7)  # the rules catch 70% of serious cases
    alone = threshold_for_recall(p, y, 0.99)
    served = threshold_for_recall(p, y, 0.99, fired=fired)
    assert served > alone  # the model needs to catch fewer cases itself
    assert ((p >= served) | fired)[y].mean() >= 0.99
    everything = threshold_for_recall(p, y, 0.99, fired=y)
    assert everything == 1.0


def test_calibration_recovers_a_known_temperature() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(40_000, 7)) * 2
    y = np.array([rng.choice(7, p=row) for row in softmax(logits, axis=1)])
    cal = fit_temperature(logits * 3.0, y)  # scores three times too confident
    assert cal.scale == pytest.approx(1 / 3, rel=0.05)
    raw = rng.normal(size=20_000)
    y_bin = rng.random(20_000) < 1 / (1 + np.exp(-(0.5 * raw - 1)))
    platt = fit_platt(raw, y_bin)
    assert platt.scale == pytest.approx(0.5, abs=0.08)
    assert platt.shift == pytest.approx(-1.0, abs=0.1)


def test_ece_is_zero_for_perfect_calibration_and_large_for_overconfidence() -> None:
    rng = np.random.default_rng(2)
    proba = softmax(rng.normal(size=(50_000, 7)), axis=1)
    y = (rng.random(50_000)[:, None] > np.cumsum(proba, axis=1)).sum(axis=1)
    assert expected_calibration_error(proba, y) < 0.01
    sharp = softmax(np.log(proba) * 4, axis=1)
    assert expected_calibration_error(sharp, y) > 0.1


def test_bad_config_names_the_setting() -> None:
    with pytest.raises(ValueError, match="candidates"):
        TrainConfig(candidates=("random_forest",))
    with pytest.raises(ValueError, match="setting"):
        TrainConfig(setting="icu")


@pytest.mark.slow  # fits the logistic-regression candidate
def test_linear_baseline_has_exact_shap_importance() -> None:
    from model.features import FIELD_ORDER
    from training.candidates import Split, fit_logistic

    train = Split(vignettes.generate(6_000, seed=4))
    val = Split(vignettes.generate(2_000, seed=4, start=6_000))
    fitted = fit_logistic(train, val, seed=4)
    importance = fitted.field_importance(val)
    assert importance.shape == (len(FIELD_ORDER),)
    assert (importance >= 0).all()
    by_field = dict(zip(FIELD_ORDER, importance, strict=True))
    assert by_field["better_sitting"] > by_field["fever"]


@pytest.mark.filterwarnings("ignore:Hint. Inferred schema contains integer:UserWarning")
def test_schema_rows_give_the_whole_frame_s_dataset_schema() -> None:
    from mlflow.types.utils import _infer_schema

    from training.pipeline import dataset, schema_rows

    frame = vignettes.generate(4_000, seed=5)
    frame.loc[3_500, "age"] = pd.NA  # a column whose first gap comes after the head
    rows = schema_rows(frame, head=200)
    assert len(rows) < 300 and frame.iloc[:200].index.isin(rows.index).all()
    assert 3_500 in rows.index
    assert _infer_schema(rows) == _infer_schema(frame)
    logged = dataset(frame, "vignettes-test")
    assert logged.schema == _infer_schema(frame)
    assert logged.profile["num_rows"] == len(frame)  # the profile still counts every row


def test_predictions_are_computed_once_per_split() -> None:
    from training.candidates import Fitted, Split

    calls: list[int] = []

    def predict(split: Split) -> np.ndarray:
        calls.append(id(split))
        return np.zeros(len(split.y))

    fitted = Fitted("stub", {}, predict, predict)
    a, b = Split(vignettes.generate(300, seed=1)), Split(vignettes.generate(300, seed=2))
    assert fitted.predict_cause(a) is fitted.predict_cause(a)
    fitted.predict_cause(b)
    fitted.predict_red_flag(a)
    assert calls == [id(a), id(b), id(a)]


def test_the_learning_curve_refit_is_the_candidate_s_cause_model() -> None:
    from training.candidates import CANDIDATES, Split, fit_cause_only

    train_split = Split(vignettes.generate(3_000, seed=4))
    val = Split(vignettes.generate(1_000, seed=4, start=3_000))
    test = Split(vignettes.generate(1_000, seed=4, start=4_000))
    full = CANDIDATES["lightgbm"](train_split, val, 11)
    alone = fit_cause_only("lightgbm", train_split, val, 11)
    assert full.triage is not None
    np.testing.assert_allclose(alone(test.X), full.triage.cause.proba(test.X))
    # the validation probabilities kept from the calibration are the model's own
    np.testing.assert_allclose(full.predict_cause(val), full.triage.cause.proba(val.X))
    np.testing.assert_allclose(full.predict_red_flag(val), full.triage.red_flag.proba(val.X))
    with pytest.raises(ValueError, match="logistic_regression"):
        fit_cause_only("logistic_regression", train_split, val, 11)


def test_the_run_logs_where_its_time_went(trained) -> None:
    parent = MlflowClient().get_run(trained.parent_run_id)
    assert "profile.md" in _artifacts(parent.info.run_id)
    metrics = parent.data.metrics
    steps = [k for k in metrics if k.startswith("time_") and k != "time_total"]
    assert {"time_generate_cases", "time_candidate_lightgbm", "time_report"} <= set(steps)
    # a first run's ETAs: every step the run took has a reference time
    from training.progress import REFERENCE_STEP_SECONDS

    assert {k.removeprefix("time_") for k in steps} <= set(REFERENCE_STEP_SECONDS)
    assert metrics["time_total"] == pytest.approx(sum(metrics[k] for k in steps))
    seeds = {k: int(v) for k, v in parent.data.params.items() if k.startswith("seed_")}
    from training.config import Seeds

    assert seeds == {f"seed_{k}": v for k, v in vars(Seeds.spawn(3)).items()}


def test_only_the_champion_is_logged_as_a_model_and_it_has_its_serious_types(trained) -> None:
    """Tree candidates are fitted without serious-type models; the champion gets them once it is
    chosen, and is the one candidate logged (and registered) as a pyfunc model."""
    children = _children(trained.parent_run_id)
    experiment = children[trained.champion].info.experiment_id
    logged = mlflow.search_logged_models(experiment_ids=[experiment], output_format="list")
    sources = {m.source_run_id for m in logged}
    assert children[trained.champion].info.run_id in sources
    others = {n for n in ("hist_gradient_boosting", "lightgbm") if n != trained.champion}
    assert not sources & {children[n].info.run_id for n in others}
    champion = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@champion")
    assert champion.unwrap_python_model().model.serious is not None
    assert "serious_fit_seconds" in children[trained.champion].data.metrics
