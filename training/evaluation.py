"""The evaluation sections of a training run: each scores, logs and returns its report part.

:func:`evaluate` scores one candidate on the test split; the rest describe the comparison
(calibration and per-cause views, the conformal differential, the urgency tiers and their
trade-off) or the champion (learning curve, robustness to unknown answers, the change of
setting). :mod:`training.pipeline` calls them in order; nothing here decides what is registered.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from model.conformal import ConformalSets, coverage_report
from model.features import FIELD_ORDER, to_fields
from model.triage import URGENT_PROBABILITY, TriageModel, cost_ratio_threshold
from training import plots, report
from training.candidates import CEILING, Fitted, Split, fit_cause_only
from training.config import TrainConfig
from training.metrics import (
    cause_metrics,
    ddxplus_metrics,
    per_cause_rates,
    red_flag_metrics,
    reliability_bins,
    served_tiers,
    urgency_metrics,
    urgency_tradeoff,
)
from training.progress import say
from vignettes import generate, load_knowledge, posterior
from vignettes.article import URGENCY_TIERS
from vignettes.schema import CAUSES, SETTINGS

__all__ = [
    "LEARNING_CURVE_SIZES",
    "ONE_OPERATING_POINT",
    "ROBUSTNESS_CASES",
    "SHIFT_CASES",
    "TRADEOFF_COST_RATIOS",
    "TRADEOFF_MARKED_COST_RATIOS",
    "CandidateRun",
    "differential_report",
    "evaluate",
    "learning_curve",
    "robustness",
    "setting_shift",
    "urgency_report",
    "views",
]

LEARNING_CURVE_SIZES = (5_000, 20_000)
"""Training-set sizes of the learning curve below the run's own ``n_train``. Their refits run
beside robustness and the safety tables and end with them; a refit on 80,000 cases (1.052x the
Bayes log-loss, where 20,000 give 1.108x and 300,000 1.027x) kept ``make train`` waiting 20 s
after them, 8% of its time, on the 2-core machine."""
ROBUSTNESS_CASES = 20_000
"""Test cases the robustness check scores at each share of unknown answers: a standard error
of at most 0.4 points on an accuracy, where the full test split would cost five predictions of
100,000 rows by the champion."""

SHIFT_CASES = 50_000
"""Cases of the other setting the change of setting is scored on (at most ``n_test``): a
standard error of at most 0.23 points on an accuracy, and the champion and the Bayes
posterior are scored on the same cases."""

TRADEOFF_MARKED_COST_RATIOS = (3.0, 9.0, 19.0, 49.0, 99.0)
"""The cost ratios K marked on the urgency trade-off curves: thresholds 0.25, 0.1, 0.05, 0.02
and 0.01."""
TRADEOFF_COST_RATIOS = np.union1d(np.geomspace(1, 1000, 61), TRADEOFF_MARKED_COST_RATIOS)
"""The cost ratios K of the urgency trade-off curve (threshold 1 / (1 + K)); the served K is
added to them."""
ONE_OPERATING_POINT = ("article_rules",)
"""Candidates with nothing to trade: the article's rules give every patient with no reported
sign the same red-flag score, so their urgency is the reported signs' at any served K."""


def log_image(figure: Figure, name: str) -> report.Image:
    """Render ``figure`` to PNG once, log it at the active run's top level as ``name``, and
    return it for the report page (each figure was drawn twice, for MLflow and the page)."""
    image = report.Image.from_figure(figure)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(image.png)
        mlflow.log_artifact(str(path))
    return image


def evaluate(
    fitted: Fitted, splits: dict[str, Split], cost_ratio: float
) -> tuple[dict[str, float], dict]:
    """One candidate's test metrics (the cause, the red flag, the urgency tiers at ``cost_ratio``)
    and its outputs: the test probabilities, the red-flag scores, the threshold, the trade-off."""
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
    shown = served_tiers(red, threshold, test.sign_tier) != URGENCY_TIERS.index("routine")
    reference = test.exact_posterior[list(CAUSES)].to_numpy()
    metrics |= ddxplus_metrics(proba, test.y, reference, shown, test.red)
    metrics["val_log_loss"] = cause_metrics(val_proba, val.y)["log_loss"]
    metrics["fit_seconds"] = fitted.fit_seconds
    metrics["predict_ms_per_1000"] = 1000 * predict_seconds / len(test.y) * 1000
    cost_ratios = np.union1d(TRADEOFF_COST_RATIOS, [cost_ratio])
    tradeoff = urgency_tradeoff(red, test.sign_tier, test.serious, cost_ratios)
    return metrics, {"proba": proba, "red": red, "threshold": threshold, "tradeoff": tradeoff}


def log_figures(fitted: Fitted, outputs: dict, test: Split) -> None:
    """A candidate's figures on its nested run: confusion, reliability, mean |SHAP| per field."""
    proba = outputs["proba"]
    name = fitted.name
    fig = plots.confusion_matrix_figure(test.y, proba.argmax(1), f"{name}: confusion (test)")
    mlflow.log_figure(fig, "confusion_matrix.png")
    fig = plots.reliability_figure(proba, test.y, f"{name}: reliability (test)")
    mlflow.log_figure(fig, "reliability_diagram.png")
    mlflow.log_text(per_cause_report(proba, test.y), "per_cause_report.md")
    if fitted.triage is not None:
        sample = test.X[:2000]
        values, _ = fitted.triage.cause.contributions(sample)
        k = proba[: len(sample)].argmax(1)  # the test predictions already made
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


def per_cause_report(proba: np.ndarray, y: np.ndarray) -> str:
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
        The logged pyfunc model (the champion only: a tree model, logged once chosen).
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


def learning_curve_points(
    name: str, cfg: TrainConfig, splits: dict[str, Split]
) -> dict[int, dict[str, float]]:
    """The accuracy and log-loss of the champion's cause model refitted on fewer cases.

    Each smaller size of :data:`LEARNING_CURVE_SIZES` refits the cause model alone
    (:func:`training.candidates.fit_cause_only`, the same estimator and calibration as the
    champion's) on the first cases of the training split, and scores it on the first
    :data:`ROBUSTNESS_CASES` test cases. Computes only (no MLflow, no figures), so that it can
    run beside the other evaluations.
    """
    test = splits["test"]
    X, y = test.X[:ROBUSTNESS_CASES], test.y[:ROBUSTNESS_CASES]
    points = {}
    for size in (s for s in LEARNING_CURVE_SIZES if s < cfg.n_train):
        say(f"learning curve: {name} on {size:,} cases")
        train = Split(splits["train"].frame.iloc[:size])
        proba = fit_cause_only(name, train, splits["validation"], cfg.seeds.models)(X)
        points[size] = cause_metrics(proba, y)
    return points


def learning_curve(
    name: str,
    cfg: TrainConfig,
    splits: dict[str, Split],
    test_proba: dict[str, np.ndarray],
    points: dict[int, dict[str, float]] | None = None,
) -> report.Image:
    """The champion's accuracy and log-loss against its training-set size, on the first
    :data:`ROBUSTNESS_CASES` test cases: the smaller sizes from :func:`learning_curve_points`
    (computed here unless given), the last point the champion itself, beside the Bayes
    posterior's; logged to the active run as a figure and stepped metrics.

    ``test_proba`` holds the champion's and the ceiling's cause probabilities on the test split.
    """
    points = learning_curve_points(name, cfg, splits) if points is None else points
    y = splits["test"].y[:ROBUSTNESS_CASES]
    champion, bayes = (cause_metrics(test_proba[n][:ROBUSTNESS_CASES], y) for n in (name, CEILING))
    sizes = [*points, cfg.n_train]
    acc = [m["accuracy"] for m in points.values()] + [champion["accuracy"]]
    loss = [m["log_loss"] for m in points.values()] + [champion["log_loss"]]
    fig = plots.learning_curve_figure(
        sizes, {name: acc}, {name: loss}, bayes["accuracy"], bayes["log_loss"]
    )
    image = log_image(fig, "learning_curve.png")
    for size, a, lo in zip(sizes, acc, loss, strict=True):
        mlflow.log_metrics({"learning_curve_accuracy": a, "learning_curve_log_loss": lo}, step=size)
    plots.plt.close("all")
    return image


def hide_answers(frame: pd.DataFrame, share: float, seed: int) -> pd.DataFrame:
    """``frame`` with each answer but age made unknown with probability ``share``."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    for name in FIELD_ORDER:
        if name != "age":
            out.loc[rng.random(len(out)) < share, name] = pd.NA
    return out


def bayes_proba(frame: pd.DataFrame, setting: str | None = None) -> np.ndarray:
    """The exact posterior of the causes, under ``setting``'s priors (default: each row's)."""
    return posterior(frame, setting)[list(CAUSES)].to_numpy()


def robustness(
    champion: TriageModel,
    cfg: TrainConfig,
    test: Split,
    test_proba: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[dict[str, float], report.Image]:
    """The champion's and the Bayes posterior's accuracy as more answers are made unknown.

    Scored on the first :data:`ROBUSTNESS_CASES` test cases; the answers hidden are drawn from
    the seed tree's ``masks`` seed. ``test_proba`` is the champion's and the Bayes posterior's
    cause probabilities on ``test``, when already computed (nothing hidden).
    """
    metrics: dict[str, float] = {}
    shares = [0.0, 0.2, 0.4, 0.6, 0.8]
    model_acc, bayes_acc = [], []
    cases = test.frame.iloc[:ROBUSTNESS_CASES]
    for share in shares:
        if share == 0.0 and test_proba is not None:
            y = test.y[: len(cases)]
            model, bayes = (p[: len(cases)] for p in test_proba)
        else:
            hidden = Split(hide_answers(cases, share, cfg.seeds.masks))
            y, model, bayes = hidden.y, champion.cause.proba(hidden.X), bayes_proba(hidden.frame)
        model_acc.append(float((model.argmax(1) == y).mean()))
        bayes_acc.append(float((bayes.argmax(1) == y).mean()))
        metrics[f"robust_missing_{int(share * 100)}_accuracy"] = model_acc[-1]
        metrics[f"robust_missing_{int(share * 100)}_bayes_accuracy"] = bayes_acc[-1]
    figure = plots.robustness_figure(shares, model_acc, bayes_acc)
    image = log_image(figure, "robustness_missing.png")
    plots.plt.close("all")
    return metrics, image


def setting_shift(
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
    shifted = Split(generate(min(cfg.n_test, SHIFT_CASES), cfg.seeds.shift, other))
    proba = triage.cause.proba(shifted.X)
    prior = load_knowledge().prior
    ratio = prior[SETTINGS.index(other)] / prior[SETTINGS.index(cfg.setting)]
    adjusted = proba * ratio
    adjusted /= adjusted.sum(axis=1, keepdims=True)
    scored = {
        "unadjusted": proba,
        "prior_adjusted": adjusted,
        "bayes_unadjusted": bayes_proba(shifted.frame, cfg.setting),
        "bayes": bayes_proba(shifted.frame),
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


def views(
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
    calibration = report.calibration_section(
        table, champion, CEILING, log_image(figure, "reliability_diagrams.png")
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
        images = [log_image(side_by_side, "confusion_champion_vs_bayes.png")]
        difference = plots.confusion_difference_figure(
            test.y, predictions[champion], predictions[CEILING], champion, CEILING
        )
        images.append(log_image(difference, "confusion_champion_minus_bayes.png"))
    plots.plt.close("all")
    per_cause = report.per_cause_section(rates, champion, CEILING, images)
    return [calibration, per_cause], markdown


def differential_report(
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


def urgency_report(
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
    image = log_image(fig, "urgency_tradeoff.png")
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
