"""Figures people would rather look at than read: each returns a matplotlib Figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: figures are written to files and MLflow, never shown

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from vignettes.schema import CAUSES

SHORT = {
    "disc_herniation": "disc hern.",
    "spinal_stenosis": "spinal sten.",
    "foraminal_stenosis": "foraminal sten.",
    "piriformis_syndrome": "piriformis",
    "spondylolisthesis": "spondylolisth.",
    "degenerative_disc_disease": "degen. disc",
    "mechanical_pain": "mechanical",
}


def confusion_matrix_figure(y: np.ndarray, pred: np.ndarray, title: str) -> Figure:
    """Row-normalised confusion matrix (each row: where that true cause went)."""
    k = len(CAUSES)
    counts = np.bincount(y * k + pred, minlength=k * k).reshape(k, k)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    labels = [SHORT[c] for c in CAUSES]
    ax.set_xticks(range(k), labels, rotation=40, ha="right")
    ax.set_yticks(range(k), labels)
    for i in range(k):
        for j in range(k):
            color = "white" if share[i, j] > 0.6 else "black"
            ax.text(j, i, f"{share[i, j]:.2f}", ha="center", va="center", fontsize=8, color=color)
    ax.set_xlabel("predicted cause")
    ax.set_ylabel("true cause")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def reliability_figure(proba: np.ndarray, y: np.ndarray, title: str, n_bins: int = 15) -> Figure:
    """Top-label reliability diagram with the share of cases per bin."""
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    counts = np.bincount(bins, minlength=n_bins)
    seen = counts > 0
    acc = np.bincount(bins, correct, n_bins)[seen] / counts[seen]
    conf = np.bincount(bins, confidence, n_bins)[seen] / counts[seen]
    fig, (ax, hist) = plt.subplots(
        2, 1, figsize=(6, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    ax.plot([0, 1], [0, 1], ls="--", color="grey", label="perfect calibration")
    ax.plot(conf, acc, "o-", label="model")
    ax.set_ylabel("observed accuracy")
    ax.set_title(title)
    ax.legend()
    hist.bar((np.arange(n_bins) + 0.5) / n_bins, counts / counts.sum(), width=1 / n_bins)
    hist.set_xlabel("confidence in the predicted cause")
    hist.set_ylabel("share")
    fig.tight_layout()
    return fig


def importance_figure(names: list[str], mean_abs: np.ndarray, title: str, top: int = 20) -> Figure:
    """Horizontal bars of mean |SHAP| per intake field."""
    order = np.argsort(mean_abs)[::-1][:top][::-1]
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(order) + 1.2))
    ax.barh([names[i] for i in order], mean_abs[order], color="#4477aa")
    ax.set_xlabel("mean |SHAP| (calibrated score units)")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def learning_curve_figure(sizes, accuracy, log_loss, bayes_accuracy, bayes_log_loss) -> Figure:
    """Accuracy and log-loss against training size, with the Bayes ceiling drawn."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, values, ceiling, label in (
        (left, accuracy, bayes_accuracy, "accuracy"),
        (right, log_loss, bayes_log_loss, "log-loss"),
    ):
        for name, series in values.items():
            ax.plot(sizes, series, "o-", label=name)
        ax.axhline(ceiling, color="black", ls="--", label="Bayes posterior (ceiling)")
        ax.set_xscale("log")
        ax.set_xlabel("training cases")
        ax.set_ylabel(f"test {label}")
        ax.legend()
    fig.suptitle("Learning curve")
    fig.tight_layout()
    return fig


def robustness_figure(shares, model_acc, bayes_acc) -> Figure:
    """Accuracy as the share of unknown answers rises."""
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(shares, model_acc, "o-", label="champion")
    ax.plot(shares, bayes_acc, "s--", color="black", label="Bayes posterior")
    ax.set_xlabel("extra share of answers made unknown")
    ax.set_ylabel("test accuracy")
    ax.set_title("Robustness to missing answers")
    ax.legend()
    fig.tight_layout()
    return fig


def urgency_tradeoff_figure(
    curves: dict[str, dict[str, np.ndarray]], chosen_cost_ratio: float, title: str
) -> Figure:
    """Share of patients flagged against share of serious conditions caught, as K varies.

    Each curve is one model's policy (reported signs by rule, plus the model's review alerts at
    threshold ``1 / (1 + K)``); the chosen K is marked on every curve.
    """
    fig, ax = plt.subplots(figsize=(7, 5))
    for name, curve in curves.items():
        (line,) = ax.plot(100 * curve["flagged"], 100 * curve["caught"], label=name)
        k = int(np.argmin(np.abs(np.log(curve["cost_ratio"] / chosen_cost_ratio))))
        ax.plot(100 * curve["flagged"][k], 100 * curve["caught"][k], "o", color=line.get_color())
    ax.axhline(85, ls=":", color="grey", label="target: 85% caught")
    ax.set_xlabel("patients flagged (emergency, urgent or review), %")
    ax.set_ylabel("serious conditions caught, %")
    ax.set_title(f"{title} (dots: K = {chosen_cost_ratio:g})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def bayes_gap_figure(names: list[str], gap_pp: list[float], champion: str | None) -> Figure:
    """Horizontal bars: accuracy points below the Bayes ceiling per candidate, champion marked."""
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(names) + 1.3))
    colors = ["#2e7d32" if n == champion else "#4477aa" for n in names]
    bars = ax.barh(names, gap_pp, color=colors)
    ax.bar_label(bars, labels=[f"{g:.2f}" for g in gap_pp], padding=3, fontsize=9)
    ax.invert_yaxis()
    ax.set_xlabel("test accuracy below the Bayes posterior (percentage points)")
    ax.set_title("Gap to the Bayes ceiling" + (f" (champion: {champion})" if champion else ""))
    ax.margins(x=0.15)
    fig.tight_layout()
    return fig
