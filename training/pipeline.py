"""The whole training path, top to bottom: data, candidates, comparison, champion, registry.

``make train`` runs :func:`train`. One parent MLflow run holds the comparison; each candidate is a
nested run with its params, dataset inputs, metrics and figures. The champion (lowest validation
log-loss among the tree models, which have exact attributions) is logged as a pyfunc model from
code and registered as ``sciatica-triage``; the ``champion`` alias moves only if the new model
beats the current champion on this run's test set.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from model.conformal import ConformalSets, coverage_report
from model.features import FIELD_ORDER, to_fields
from model.mlflow_names import EXPERIMENT, MODEL_NAME
from model.triage import (
    RED_FLAG_COST_RATIO,
    URGENT_PROBABILITY,
    TriageModel,
    cost_ratio_threshold,
)
from training import mlflow_view, plots, report
from training.candidates import CANDIDATES, Fitted, Split
from training.metrics import (
    cause_metrics,
    per_cause_rates,
    red_flag_metrics,
    reliability_bins,
    urgency_metrics,
    urgency_tradeoff,
)
from training.registry import describe, log_triage_model, register_champion
from training.safety_report import safety_sections
from vignettes import generate, load_knowledge, posterior
from vignettes.schema import CAUSES, SETTINGS

CEILING = "bayes_posterior"
CHAMPION_ELIGIBLE = ("hist_gradient_boosting", "lightgbm")


@dataclass
class TrainConfig:
    """Everything ``make train`` can be told; defaults finish in minutes on two cores."""

    n_train: int = 300_000
    n_val: int = 50_000
    n_test: int = 100_000  # the urgency targets are judged on 100,000 fresh cases
    n_cal: int = 50_000
    alpha: float = 0.05
    cost_ratio: float = RED_FLAG_COST_RATIO
    seed: int = 7
    setting: str = "primary_care"
    candidates: tuple[str, ...] = tuple(CANDIDATES)
    experiment: str = EXPERIMENT
    model_name: str = MODEL_NAME
    learning_curve: bool = True
    robustness: bool = True
    register: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.candidates) - set(CANDIDATES)
        if unknown:
            raise ValueError(f"candidates: unknown {sorted(unknown)}; allowed: {list(CANDIDATES)}")
        if self.setting not in SETTINGS:
            raise ValueError(f"setting must be one of {list(SETTINGS)}, got {self.setting!r}")
        if min(self.n_train, self.n_val, self.n_test, self.n_cal) < 100:
            raise ValueError("n_train, n_val, n_test and n_cal must each be at least 100")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        cost_ratio_threshold(self.cost_ratio)  # refuses K <= 0


@dataclass
class Outcome:
    """What :func:`train` produced (for the CLI and tests)."""

    parent_run_id: str
    table: pd.DataFrame
    champion: str | None
    model_version: str | None
    alias_moved: bool
    results: dict[str, dict[str, float]]


def say(message: str) -> None:
    """Progress output: timestamped, flushed, so long runs show where they are."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def code_version() -> str:
    """Git commit of the checkout (``+dirty`` if it has uncommitted changes), or ``unknown``."""
    try:
        root = Path(__file__).resolve().parents[1]
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def make_splits(cfg: TrainConfig) -> dict[str, Split]:
    """Disjoint row ranges of one seeded dataset: train, validation, test, conformal calibration.

    Validation picks the red-flag threshold, calibrates probabilities and chooses the champion;
    the calibration split is used only by the conformal differential, so its guarantee holds.
    """
    sizes = {"train": cfg.n_train, "validation": cfg.n_val, "test": cfg.n_test}
    sizes["calibration"] = cfg.n_cal
    frames, start = {}, 0
    for name, size in sizes.items():
        frames[name] = generate(size, cfg.seed, cfg.setting, start=start)
        start += size
    return {name: Split(frame) for name, frame in frames.items()}


def _log_dataset(frame: pd.DataFrame, name: str, context: str) -> None:
    dataset = mlflow.data.from_pandas(frame, name=name, targets="cause")  # type: ignore[attr-defined]
    mlflow.log_input(dataset, context=context)


TRADEOFF_MARKED_COST_RATIOS = (3.0, 9.0, 19.0, 49.0, 99.0)
"""The cost ratios K marked on the urgency trade-off curves: thresholds 0.25, 0.1, 0.05, 0.02
and 0.01."""
TRADEOFF_COST_RATIOS = np.union1d(np.geomspace(1, 1000, 61), TRADEOFF_MARKED_COST_RATIOS)
"""The cost ratios K of the urgency trade-off curve (threshold 1 / (1 + K)); the served K is
added to them."""
ONE_OPERATING_POINT = ("article_rules",)
"""Candidates with nothing to trade: the article's rules give every patient with no reported
sign the same red-flag score, so their urgency is the reported signs' at any served K."""


def _evaluate(
    fitted: Fitted, splits: dict[str, Split], cost_ratio: float
) -> tuple[dict[str, float], dict]:
    val, test = splits["validation"], splits["test"]
    val_proba = fitted.predict_cause(val)
    threshold = cost_ratio_threshold(cost_ratio)
    start = time.perf_counter()
    proba = fitted.predict_cause(test)
    red = fitted.predict_red_flag(test)
    predict_seconds = time.perf_counter() - start
    metrics = cause_metrics(proba, test.y) | red_flag_metrics(red, test.red, threshold, test.fired)
    tiers = urgency_metrics(red, threshold, test.sign_tier, test.serious, test.answered_no)
    metrics |= {f"urgency_{k}": v for k, v in tiers.items()}
    metrics["val_log_loss"] = cause_metrics(val_proba, val.y)["log_loss"]
    metrics["fit_seconds"] = fitted.fit_seconds
    metrics["predict_ms_per_1000"] = 1000 * predict_seconds / len(test.y) * 1000
    cost_ratios = np.union1d(TRADEOFF_COST_RATIOS, [cost_ratio])
    tradeoff = urgency_tradeoff(red, test.sign_tier, test.serious, cost_ratios)
    return metrics, {"proba": proba, "red": red, "threshold": threshold, "tradeoff": tradeoff}


def _log_figures(fitted: Fitted, outputs: dict, test: Split) -> None:
    proba = outputs["proba"]
    name = fitted.name
    fig = plots.confusion_matrix_figure(test.y, proba.argmax(1), f"{name}: confusion (test)")
    mlflow.log_figure(fig, "confusion_matrix.png")
    fig = plots.reliability_figure(proba, test.y, f"{name}: reliability (test)")
    mlflow.log_figure(fig, "reliability_diagram.png")
    mlflow.log_text(_per_cause_report(proba, test.y), "per_cause_report.md")
    if fitted.triage is not None:
        sample = test.X[:2000]
        values, _ = fitted.triage.cause.contributions(sample)
        k = fitted.triage.cause.proba(sample).argmax(1)
        per_field = to_fields(values[np.arange(len(sample)), :, k])
        importance = np.abs(per_field).mean(axis=0)
    elif fitted.field_importance is not None:
        importance = fitted.field_importance(test)
    else:
        importance = None
    if importance is not None:
        fig = plots.importance_figure(list(FIELD_ORDER), importance, f"{name}: mean |SHAP|")
        mlflow.log_figure(fig, "shap_importance.png")
        mlflow.log_dict(
            dict(zip(FIELD_ORDER, importance.tolist(), strict=True)), "shap_importance.json"
        )
    plots.plt.close("all")


def _per_cause_report(proba: np.ndarray, y: np.ndarray) -> str:
    """One candidate's recall, precision and mean probability of the true cause, per cause."""
    rates = per_cause_rates(proba.argmax(1), y)
    mean_p = np.bincount(y, proba[np.arange(len(y)), y], len(CAUSES)) / np.maximum(
        rates["cases"], 1
    )
    lines = [
        "| cause | support | precision | recall | mean P(true cause) |",
        "|---|---|---|---|---|",
    ]
    for k, cause in enumerate(CAUSES):
        cells = [
            report.cell(rates["precision"][k], missing="never predicted"),
            report.cell(rates["recall"][k]),
            report.cell(mean_p[k] if rates["cases"][k] else None),
        ]
        lines.append(f"| {cause} | {rates['cases'][k]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class CandidateRun:
    """One candidate's nested run: what was fitted, its test metrics and outputs, where logged.

    Attributes
    ----------
    fitted : Fitted
    metrics : dict
        Its test metrics, as logged.
    model_uri : str or None
        The logged pyfunc model (tree candidates only).
    test_proba : numpy.ndarray
        ``(n_test, causes)`` probabilities on the test split.
    tradeoff : dict
        :func:`training.metrics.urgency_tradeoff` on the test split.
    run_id : str
    """

    fitted: Fitted
    metrics: dict[str, float]
    model_uri: str | None
    test_proba: np.ndarray
    tradeoff: dict[str, np.ndarray]
    run_id: str


def _run_candidate(
    name: str, cfg: TrainConfig, splits: dict[str, Split], version: str
) -> CandidateRun:
    """Fit, evaluate and log one candidate as a nested run."""
    with mlflow.start_run(run_name=name, nested=True) as run:
        say(f"fitting {name} ...")
        fitted = CANDIDATES[name](splits["train"], splits["validation"], cfg.seed)
        metrics, outputs = _evaluate(fitted, splits, cfg.cost_ratio)
        mlflow.set_tags(
            {"candidate": name, "deployable": fitted.deployable, "code_version": version}
        )
        params = {"seed": cfg.seed, "setting": cfg.setting, "n_train": cfg.n_train}
        params |= {
            "red_flag_review_threshold": cost_ratio_threshold(cfg.cost_ratio),
            "red_flag_urgent_threshold": URGENT_PROBABILITY,
        }
        mlflow.log_params(params | {k: str(v)[:250] for k, v in fitted.params.items()})
        _log_dataset(splits["train"].frame, "vignettes-train", "training")
        _log_dataset(splits["test"].frame, "vignettes-test", "testing")
        mlflow.log_metrics(metrics)
        _log_figures(fitted, outputs, splits["test"])
        model_uri = None
        if fitted.triage is not None:
            conformal = splits["calibration"]
            sets = ConformalSets.fit(fitted.triage.cause.proba(conformal.X), conformal.y, cfg.alpha)
            fitted.triage.meta |= {
                "conformal": sets.to_dict(),
                "red_flag_threshold": outputs["threshold"],
                "red_flag_cost_ratio": cfg.cost_ratio,
                "red_flag_urgent_threshold": URGENT_PROBABILITY,
                "version": f"run-{run.info.run_id[:8]}",
                "training_run_id": run.info.run_id,
                "code_version": version,
                "config": {k: v for k, v in asdict(cfg).items() if k != "extra"},
            }
            card = report.model_card(cfg.model_name, name, metrics, asdict(cfg))
            model_uri = log_triage_model(fitted.triage, card, splits["test"].frame.head(3))
        say(
            f"  {name}: test accuracy {metrics['accuracy']:.4f},"
            f" log-loss {metrics['log_loss']:.4f},"
            f" val log-loss {metrics['val_log_loss']:.4f} ({metrics['fit_seconds']:.0f}s)"
        )
        return CandidateRun(
            fitted, metrics, model_uri, outputs["proba"], outputs["tradeoff"], run.info.run_id
        )


def _learning_curve(name: str, cfg: TrainConfig, splits: dict[str, Split], results) -> report.Image:
    sizes = [s for s in (5_000, 20_000, 80_000) if s < cfg.n_train] + [cfg.n_train]
    acc, loss = [], []
    for size in sizes[:-1]:
        say(f"learning curve: {name} on {size:,} cases")
        fitted = CANDIDATES[name](
            Split(splits["train"].frame.iloc[:size]), splits["validation"], cfg.seed
        )
        m = cause_metrics(fitted.predict_cause(splits["test"]), splits["test"].y)
        acc.append(m["accuracy"])
        loss.append(m["log_loss"])
    acc.append(results[name]["accuracy"])
    loss.append(results[name]["log_loss"])
    bayes = results[CEILING]
    fig = plots.learning_curve_figure(
        sizes, {name: acc}, {name: loss}, bayes["accuracy"], bayes["log_loss"]
    )
    mlflow.log_figure(fig, "learning_curve.png")
    image = report.Image.from_figure(fig)
    for size, a, lo in zip(sizes, acc, loss, strict=True):
        mlflow.log_metrics({"learning_curve_accuracy": a, "learning_curve_log_loss": lo}, step=size)
    plots.plt.close("all")
    return image


def _hide_answers(frame: pd.DataFrame, share: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = frame.copy()
    for name in FIELD_ORDER:
        if name != "age":
            out.loc[rng.random(len(out)) < share, name] = pd.NA
    return out


def _bayes_proba(frame: pd.DataFrame, setting: str | None = None) -> np.ndarray:
    """The exact posterior of the causes, under ``setting``'s priors (default: each row's)."""
    return posterior(frame, setting)[list(CAUSES)].to_numpy()


def _robustness(
    champion: TriageModel, cfg: TrainConfig, test: Split
) -> tuple[dict[str, float], report.Image]:
    """The champion's and the Bayes posterior's accuracy as more answers are made unknown."""
    metrics: dict[str, float] = {}
    shares = [0.0, 0.2, 0.4, 0.6, 0.8]
    model_acc, bayes_acc = [], []
    for share in shares:
        hidden = Split(_hide_answers(test.frame, share, cfg.seed))
        model_acc.append(float((champion.cause.proba(hidden.X).argmax(1) == hidden.y).mean()))
        bayes_acc.append(float((_bayes_proba(hidden.frame).argmax(1) == hidden.y).mean()))
        metrics[f"robust_missing_{int(share * 100)}_accuracy"] = model_acc[-1]
        metrics[f"robust_missing_{int(share * 100)}_bayes_accuracy"] = bayes_acc[-1]
    figure = plots.robustness_figure(shares, model_acc, bayes_acc)
    mlflow.log_figure(figure, "robustness_missing.png")
    image = report.Image.from_figure(figure)
    plots.plt.close("all")
    return metrics, image


def _setting_shift(
    champion: str,
    triage: TriageModel,
    cfg: TrainConfig,
    test: Split,
    test_proba: tuple[np.ndarray, np.ndarray],
) -> tuple[dict[str, float], str, report.Section]:
    """The champion and the Bayes posterior on the other setting's cases, with and without the
    prior adjustment, beside their figures on the training setting's test split.

    ``test_proba`` is the champion's and the Bayes posterior's on the test split. Logs the figures
    as metrics
    (``shift_<setting>_<model>_<metric>``) and the table as ``setting_shift.md`` and ``.json``;
    returns the metrics, the table as markdown and the report section.
    """
    other = next(s for s in SETTINGS if s != cfg.setting)
    shifted = Split(generate(cfg.n_test, cfg.seed + 1, other))
    proba = triage.cause.proba(shifted.X)
    prior = load_knowledge().prior
    ratio = prior[SETTINGS.index(other)] / prior[SETTINGS.index(cfg.setting)]
    adjusted = proba * ratio
    adjusted /= adjusted.sum(axis=1, keepdims=True)
    scored = {
        "unadjusted": proba,
        "prior_adjusted": adjusted,
        "bayes_unadjusted": _bayes_proba(shifted.frame, cfg.setting),
        "bayes": _bayes_proba(shifted.frame),
    }
    figures = {label: cause_metrics(p, shifted.y) for label, p in scored.items()}
    metrics = {
        f"shift_{other}_{label}_{k}": m[k]
        for label, m in figures.items()
        for k in ("accuracy", "log_loss", "ece")
    }
    table = report.setting_shift_table(
        {
            (f"{cfg.setting} (training setting)", report.IN_SETTING): (
                cause_metrics(test_proba[0], test.y),
                cause_metrics(test_proba[1], test.y),
            ),
            (other, report.WITHOUT): (figures["unadjusted"], figures["bayes_unadjusted"]),
            (other, report.WITH): (figures["prior_adjusted"], figures["bayes"]),
        }
    )
    text = report.setting_shift_markdown(table)
    mlflow.log_text(text, "setting_shift.md")
    mlflow.log_table(table, "setting_shift.json")
    section = report.setting_shift_section(table, champion, cfg.setting, other, len(shifted.y))
    return metrics, text, section


def _views(
    runs: dict[str, CandidateRun], table: pd.DataFrame, champion: str | None, test: Split
) -> tuple[list[report.Section], str]:
    """Calibration and per-cause views of every candidate, the Bayes posterior's beside them.

    Logs to the comparison run ``reliability_diagrams.png`` and ``reliability_bins.json``,
    ``per_cause.md`` and ``per_cause.json``, and (with a champion and the ceiling)
    ``confusion_champion_vs_bayes.png`` and ``confusion_champion_minus_bayes.png``. Returns the
    report sections and the per-cause tables as markdown.
    """
    bins = {name: reliability_bins(run.test_proba, test.y) for name, run in runs.items()}
    reference = bins.get(CEILING)
    curves = {name: b for name, b in bins.items() if name != CEILING} or bins
    figure = plots.reliability_grid_figure(curves, reference)
    mlflow.log_figure(figure, "reliability_diagrams.png")
    calibration = report.calibration_section(
        table, champion, CEILING, report.Image.from_figure(figure)
    )
    mlflow.log_table(
        pd.concat([pd.DataFrame(b).assign(model=n) for n, b in bins.items()], ignore_index=True),
        "reliability_bins.json",
    )
    predictions = {name: run.test_proba.argmax(axis=1) for name, run in runs.items()}
    rates = {name: per_cause_rates(pred, test.y) for name, pred in predictions.items()}
    markdown = report.per_cause_markdown(rates, champion, CEILING)
    mlflow.log_text(markdown, "per_cause.md")
    mlflow.log_table(
        pd.concat(
            [pd.DataFrame(r).assign(model=n, cause=list(CAUSES)) for n, r in rates.items()],
            ignore_index=True,
        ),
        "per_cause.json",
    )
    images = []
    if champion is not None and CEILING in predictions:
        pair = {champion: predictions[champion], CEILING: predictions[CEILING]}
        side_by_side = plots.confusion_comparison_figure(test.y, pair)
        mlflow.log_figure(side_by_side, "confusion_champion_vs_bayes.png")
        difference = plots.confusion_difference_figure(
            test.y, predictions[champion], predictions[CEILING], champion, CEILING
        )
        mlflow.log_figure(difference, "confusion_champion_minus_bayes.png")
        images = [report.Image.from_figure(f) for f in (side_by_side, difference)]
    plots.plt.close("all")
    per_cause = report.per_cause_section(rates, champion, CEILING, images)
    return [calibration, per_cause], markdown


def _differential_report(
    fitted_by_name: dict, champion: str, cfg: TrainConfig, splits
) -> tuple[str, pd.DataFrame]:
    """Per-cause coverage and set size of the conformal differential, champion vs Bayes."""
    conformal, test = splits["calibration"], splits["test"]
    rows = []
    models = {champion: fitted_by_name[champion]}
    if CEILING in fitted_by_name:
        models[CEILING] = fitted_by_name[CEILING]
    for name, fitted in models.items():
        sets = ConformalSets.fit(fitted.predict_cause(conformal), conformal.y, cfg.alpha)
        rep = coverage_report(sets.sets(fitted.predict_cause(test)), test.y)
        mlflow.log_metrics(
            {
                f"differential_{name}_coverage": float(rep["coverage"]),
                f"differential_{name}_mean_size": float(rep["mean_size"]),
            }
        )
        for k, cause in enumerate(CAUSES):
            rows.append(
                {
                    "model": name,
                    "cause": cause,
                    "coverage": rep["coverage_per_cause"][k],
                    "mean_set_size": rep["size_per_cause"][k],
                }
            )
        rows.append(
            {
                "model": name,
                "cause": "all",
                "coverage": float(rep["coverage"]),
                "mean_set_size": float(rep["mean_size"]),
            }
        )
    table = pd.DataFrame(rows)
    mlflow.log_table(table, "differential_coverage.json")
    lines = [
        f"Conformal differential, target coverage {1 - cfg.alpha:.0%} per cause (test set)",
        "",
        "| model | cause | coverage | mean set size |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {r.model} | {r.cause} | {r.coverage:.3f} | {r.mean_set_size:.2f} |"
        for r in table.itertuples()
    ]
    text = "\n".join(lines) + "\n"
    mlflow.log_text(text, "differential_coverage.md")
    champion_row = table[(table["model"] == champion) & (table["cause"] == "all")].iloc[0]
    say(
        f"differential: coverage {champion_row.coverage:.3f} at target {1 - cfg.alpha:.2f}, "
        f"mean size {champion_row.mean_set_size:.2f} causes"
    )
    return text, table


def _log_report(
    cfg: TrainConfig,
    summary: report.DataSummary,
    table: pd.DataFrame,
    champion: str | None,
    coverage: pd.DataFrame | None,
    images: dict[str, report.Image],
    views: list[report.Section],
    extra_sections: list[report.Section],
    setting_shift: report.Section | None,
) -> None:
    """Log ``comparison.html``: one self-contained page with every section and figure."""
    gap = None
    if CEILING in table.index:
        rows = table.drop(index=CEILING)
        figure = plots.bayes_gap_figure(
            list(map(str, rows.index)), rows["gap to Bayes (pp)"].tolist(), champion
        )
        gap = report.Image.from_figure(figure)
        plots.plt.close(figure)
    sections = report.comparison_sections(
        summary,
        table,
        champion,
        CEILING,
        differential=coverage,
        alpha=cfg.alpha,
        gap_figure=gap,
        views=views,
        extra=extra_sections,
        learning_curve=images.get("learning_curve"),
        robustness=images.get("robustness"),
        setting_shift=setting_shift,
    )
    run = mlflow.active_run()
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    meta = f"MLflow run {run.info.run_name if run else '-'}, {when}, code {code_version()[:12]}"
    page = report.build_html(f"{cfg.model_name}: candidates", sections, meta=meta)
    mlflow.log_text(page, "comparison.html")


def _describe(
    cfg: TrainConfig,
    experiment_id: str,
    parent_run_id: str,
    run_ids: dict[str, str],
    summary: report.DataSummary,
    table: pd.DataFrame,
    champion: str | None,
    registration: Any,
) -> None:
    """Descriptions MLflow shows: the experiment, the comparison run, candidates, the registry."""
    client = mlflow.MlflowClient()
    registered = None
    if registration is not None and champion is not None:
        registered = (
            f"Registered as {cfg.model_name} v{registration.version}. {registration.decision}"
        )
        describe(
            cfg.model_name,
            registration.version,
            report.model_version_description(
                champion, summary, table, CEILING, parent_run_id, registration.decision
            ),
            report.registered_model_description(
                cfg.model_name, registration.version, champion, summary, table, CEILING
            )
            if registration.moved
            else None,
        )
    note = report.comparison_description(summary, table, champion, CEILING, registered)
    client.set_tag(parent_run_id, report.NOTE_TAG, note)
    latest = f"run `{mlflow.active_run().info.run_name}`. " + report.champion_summary(  # type: ignore[union-attr]
        table, champion, CEILING
    )
    client.set_experiment_tag(experiment_id, report.NOTE_TAG, report.experiment_description(latest))
    for name, run_id in run_ids.items():
        text = report.candidate_description(name, summary, table, champion, CEILING)
        client.set_tag(run_id, report.NOTE_TAG, text)


URGENCY_COLUMNS = {
    "urgency_tier_share_emergency": "emergency",
    "urgency_tier_share_urgent": "urgent",
    "urgency_tier_share_review": "review",
    "urgency_tier_share_routine": "routine",
    "urgency_caught": "serious caught",
    "urgency_caught_cauda_equina": "cauda equina",
    "urgency_caught_progressive_deficit": "progressive deficit",
    "urgency_caught_malignancy": "malignancy",
    "urgency_caught_infection": "infection",
    "urgency_ppv_review": "review PPV",
    "urgency_ppv_flagged": "flagged PPV",
    "urgency_answered_no_routine": "all-no: routine",
    "urgency_answered_no_urgent": "all-no: emergency/urgent",
}


URGENCY_NO_ALERTS = ("urgency_ppv_review", "urgency_ppv_flagged")
"""Urgency columns that are a share of alerts: with no alert they say so."""


def _urgency_report(
    results: dict, tradeoffs: dict, champion: str | None, cfg: TrainConfig
) -> tuple[str, report.Image]:
    """The urgency tiers of every candidate at the served K, and the K trade-off figure."""
    curves = {n: c for n, c in tradeoffs.items() if n not in ONE_OPERATING_POINT}
    points = {
        n: (results[n]["urgency_flagged"], results[n]["urgency_caught"])
        for n in tradeoffs
        if n in ONE_OPERATING_POINT
    }
    fig = plots.urgency_tradeoff_figure(
        curves,
        cfg.cost_ratio,
        "Urgency: flagged vs caught as K varies (test)",
        marked_cost_ratios=TRADEOFF_MARKED_COST_RATIOS,
        operating_points=points,
        labelled=champion,
        reference=CEILING,
    )
    mlflow.log_figure(fig, "urgency_tradeoff.png")
    image = report.Image.from_figure(fig)
    plots.plt.close("all")
    curves_table = pd.concat(
        [pd.DataFrame(c).assign(model=name) for name, c in tradeoffs.items()], ignore_index=True
    )
    mlflow.log_table(curves_table, "urgency_tradeoff.json")
    header = ["model", *URGENCY_COLUMNS.values()]
    lines = [
        f"Urgency tiers on the test set at K = {cfg.cost_ratio:g} "
        f"(review threshold {cost_ratio_threshold(cfg.cost_ratio):.4f}, urgent threshold "
        f"{URGENT_PROBABILITY:g}); shares of patients, of serious conditions caught, and of "
        "alerts that are right",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for name, metrics in results.items():
        cells = [
            report.cell(
                metrics.get(key),
                missing=report.NO_ALERTS if key in URGENCY_NO_ALERTS else report.NO_VALUE,
            )
            for key in URGENCY_COLUMNS
        ]
        lines.append("| " + " | ".join([name, *cells]) + " |")
    marked = ", ".join(f"{k:g}" for k in TRADEOFF_MARKED_COST_RATIOS)
    lines += [
        "",
        f"The trade-off below moves the review threshold 1/(1+K) alone (K = {marked} marked; "
        f"the dots are the served K = {cfg.cost_ratio:g}). "
        + (
            f"{', '.join(points)}: every patient with no reported sign gets the same score, so "
            "there is nothing to trade; drawn as a single operating point (the reported signs' "
            "alone)."
            if points
            else ""
        ),
    ]
    return "\n".join(lines) + "\n", image


@contextlib.contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """While training, keep MLflow's download bars and schema hints out of our progress lines.

    Scoped, not set at import: importing :mod:`training` changes no environment variable and no
    warning filter, and both are as they were once :func:`train` returns.
    """
    name = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    before = os.environ.get(name)
    os.environ.setdefault(name, "false")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message=".*Integer columns in Python cannot represent.*"
            )
            yield
    finally:
        if before is None:
            os.environ.pop(name, None)


def train(cfg: TrainConfig) -> Outcome:
    """Generate, fit every candidate, compare, and register the champion.

    Parameters
    ----------
    cfg : TrainConfig

    Returns
    -------
    Outcome
    """
    with _quiet_mlflow():
        return _train(cfg)


def _train(cfg: TrainConfig) -> Outcome:
    """:func:`train`'s body, run with MLflow's progress output off."""
    experiment = mlflow.set_experiment(cfg.experiment)
    mlflow.set_experiment_tag(*report.EXPERIMENT_KIND)
    version = code_version()
    with mlflow.start_run(run_name=f"comparison-seed{cfg.seed}-n{cfg.n_train}") as parent:
        say(f"tracking to {mlflow.get_tracking_uri()} (experiment {cfg.experiment!r})")
        mlflow.set_tags({"role": "comparison", "code_version": version})
        mlflow.log_params(
            {k: v for k, v in asdict(cfg).items() if k not in ("extra", "candidates")}
        )
        say(f"generating {cfg.n_train:,} / {cfg.n_val:,} / {cfg.n_test:,} cases ({cfg.setting})")
        splits = make_splits(cfg)
        _log_dataset(splits["train"].frame, "vignettes-train", "training")
        runs: dict[str, CandidateRun] = {}
        for i, name in enumerate(cfg.candidates, start=1):
            say(f"candidate {i}/{len(cfg.candidates)}: {name}")
            runs[name] = _run_candidate(name, cfg, splits, version)
        results = {name: run.metrics for name, run in runs.items()}
        run_ids = {name: run.run_id for name, run in runs.items()}
        eligible = [n for n in cfg.candidates if n in CHAMPION_ELIGIBLE]
        champion = min(eligible, key=lambda n: results[n]["val_log_loss"]) if eligible else None
        has_ceiling = CEILING in results
        table = report.comparison_table(results, CEILING)
        fitted_by_name = {name: run.fitted for name, run in runs.items()}
        differential, coverage = (
            _differential_report(fitted_by_name, champion, cfg, splits) if champion else ("", None)
        )
        urgency, urgency_figure = _urgency_report(
            results, {name: run.tradeoff for name, run in runs.items()}, champion, cfg
        )
        views, per_cause = _views(runs, table, champion, splits["test"])
        markdown = report.to_markdown(table, champion)
        page = [markdown, per_cause, urgency, differential]
        mlflow.log_table(table.reset_index(), "comparison.json")
        summary = report.summarize_data(
            {k: s.frame for k, s in splits.items()}, cfg.setting, cfg.seed
        )
        images: dict[str, report.Image] = {}
        champion_triage, champion_uri, shift = None, None, None
        if champion:
            champion_triage, champion_uri = runs[champion].fitted.triage, runs[champion].model_uri
            # Champion-eligible candidates are tree models, always logged as pyfunc models.
            assert champion_triage is not None and champion_uri is not None
            mlflow.set_tag("champion_candidate", champion)
            mlflow.log_metrics({f"champion_{k}": v for k, v in results[champion].items()})
            if cfg.learning_curve and has_ceiling:
                images["learning_curve"] = _learning_curve(champion, cfg, splits, results)
            if cfg.robustness:
                say("robustness: missing answers and a change of setting")
                robust, images["robustness"] = _robustness(champion_triage, cfg, splits["test"])
                bayes_test = (
                    runs[CEILING].test_proba if has_ceiling else _bayes_proba(splits["test"].frame)
                )
                shifted, shift_text, shift = _setting_shift(
                    champion,
                    champion_triage,
                    cfg,
                    splits["test"],
                    (runs[champion].test_proba, bayes_test),
                )
                mlflow.log_metrics(robust | shifted)
                page.append(shift_text)
        registration = None
        if champion_triage and champion_uri and cfg.register:
            registration = register_champion(
                cfg.model_name, champion_uri, champion_triage, splits["test"], say
            )
        # Sections of comparison.html beyond the standard ones go here (after the Bayes gap).
        extra_sections = [report.Section("Urgency tiers", urgency, [urgency_figure])]
        if champion is not None and champion_triage is not None:
            say("safety: serious-condition types and the safety table (test set)")
            sections, safety_text, _, _ = safety_sections(
                champion, champion_triage, splits["test"], cfg.cost_ratio
            )
            extra_sections += sections
            page.append(safety_text)
        mlflow.log_text("\n".join(page), "comparison.md")  # the page's tables, in markdown
        _log_report(cfg, summary, table, champion, coverage, images, views, extra_sections, shift)
        _describe(
            cfg,
            experiment.experiment_id,
            parent.info.run_id,
            run_ids,
            summary,
            table,
            champion,
            registration,
        )
        mlflow_view.log_bayes_gaps(run_ids, results, CEILING, parent.info.run_id, champion)
        link = mlflow_view.share_runs_view(experiment.experiment_id, parent.info.run_id)
        say(f"the comparison in the MLflow UI (make ui): {link}")
        version_id, moved = (
            (registration.version, registration.moved) if registration else (None, False)
        )
        print("\n" + report.to_markdown(table, champion), flush=True)
        return Outcome(parent.info.run_id, table, champion, version_id, moved, results)


__all__ = ["CEILING", "EXPERIMENT", "MODEL_NAME", "Outcome", "TrainConfig", "train"]
