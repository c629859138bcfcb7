"""Figures people would rather look at than read: each returns a matplotlib Figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: figures are written to files and MLflow, never shown

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.lines import Line2D

from training.metrics import confusion_shares, reliability_bins
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


def _matrix_cell(value: float, signed: bool) -> str:
    """A matrix cell's text: a share, or a signed difference ("0" where it rounds to nothing,
    not "-0.00")."""
    if not signed:
        return f"{value:.2f}"
    return f"{value:+.2f}" if round(value, 2) else "0"


def _cause_matrix(
    ax: Axes, share: np.ndarray, title: str, *, diverging: bool = False, y_labels: bool = True
) -> AxesImage:
    """One cause-by-cause matrix, each cell written in: shares (0-1), or a signed difference."""
    k = len(CAUSES)
    limit = max(float(np.abs(share).max()), 0.05) if diverging else 1.0
    if diverging:
        image = ax.imshow(share, cmap="RdBu_r", vmin=-limit, vmax=limit)
    else:
        image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    labels = [SHORT[c] for c in CAUSES]
    ax.set_xticks(range(k), labels, rotation=40, ha="right")
    ax.set_yticks(range(k), labels if y_labels else [])
    for i in range(k):
        for j in range(k):
            value = share[i, j]
            strong = abs(value) > 0.6 * limit
            color = "white" if strong else "black"
            text = _matrix_cell(value, diverging)
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color=color)
    ax.set_xlabel("predicted cause")
    if y_labels:
        ax.set_ylabel("true cause")
    ax.set_title(title)
    return image


def confusion_matrix_figure(y: np.ndarray, pred: np.ndarray, title: str) -> Figure:
    """Row-normalised confusion matrix (each row: where that true cause went)."""
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    _cause_matrix(ax, confusion_shares(y, pred), title)
    fig.tight_layout()
    return fig


def confusion_comparison_figure(y: np.ndarray, predictions: Mapping[str, np.ndarray]) -> Figure:
    """Row-normalised confusion matrices side by side, one per model (e.g. champion, Bayes).

    Parameters
    ----------
    y : numpy.ndarray of int
        The true cause per case.
    predictions : mapping of str to numpy.ndarray of int
        Model name -> its top cause per case, in panel order.
    """
    fig, axes = plt.subplots(
        1, len(predictions), figsize=(6.2 * len(predictions), 5.8), squeeze=False
    )
    for i, (ax, (name, pred)) in enumerate(zip(axes[0], predictions.items(), strict=True)):
        _cause_matrix(ax, confusion_shares(y, pred), name, y_labels=i == 0)
    fig.suptitle("Where each true cause went (row-normalised, test set)")
    fig.tight_layout()
    return fig


def confusion_difference_figure(
    y: np.ndarray, pred: np.ndarray, reference: np.ndarray, name: str, reference_name: str
) -> Figure:
    """``name``'s row-normalised confusion matrix minus ``reference_name``'s.

    Red cells: ``name`` sends more of the true cause's cases there than the reference does;
    blue: fewer. On the diagonal, blue is recall lost against the reference.
    """
    difference = confusion_shares(y, pred) - confusion_shares(y, reference)
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    image = _cause_matrix(ax, difference, f"{name} minus {reference_name}", diverging=True)
    fig.colorbar(image, ax=ax, shrink=0.8, label="difference in share of the true cause's cases")
    fig.tight_layout()
    return fig


def _reliability_panel(
    ax: Axes,
    counts: Axes,
    bins: Mapping[str, np.ndarray],
    label: str,
    reference: Mapping[str, np.ndarray] | None = None,
    reference_label: str = "Bayes posterior",
) -> None:
    """A reliability curve over its bins' case counts, the reference (if any) on the same axes."""
    width = bins["upper"] - bins["lower"]
    centre = bins["lower"] + width / 2
    ax.plot([0, 1], [0, 1], ls=":", color="grey", label="perfect calibration")
    if reference is not None:
        ax.plot(
            reference["confidence"],
            reference["accuracy"],
            "s--",
            color="black",
            ms=4,
            label=reference_label,
        )
        counts.step(
            reference["upper"],
            reference["cases"],
            where="pre",
            color="black",
            lw=1,
            label=reference_label,
        )
    ax.plot(bins["confidence"], bins["accuracy"], "o-", color="#4477aa", ms=5, label=label)
    counts.bar(centre, bins["cases"], width=width * 0.9, color="#4477aa", alpha=0.6, label=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("observed accuracy")
    ax.set_title(label)
    ax.legend(fontsize=7, loc="upper left")
    counts.set_yscale("log")
    counts.set_ylabel("cases")
    counts.set_xlabel("probability of the top cause")


def reliability_figure(proba: np.ndarray, y: np.ndarray, title: str) -> Figure:
    """Top-label reliability diagram with the cases per bin."""
    fig, (ax, counts) = plt.subplots(
        2, 1, figsize=(6, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    _reliability_panel(ax, counts, reliability_bins(proba, y), "model")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def reliability_grid_figure(
    curves: Mapping[str, Mapping[str, np.ndarray]],
    reference: Mapping[str, np.ndarray] | None = None,
    reference_label: str = "Bayes posterior",
) -> Figure:
    """Top-label reliability diagrams, one panel per model, the reference drawn on each panel.

    Parameters
    ----------
    curves : mapping of str to dict
        Model name -> :func:`training.metrics.reliability_bins`, in panel order.
    reference : dict, optional
        The reference's bins (the Bayes posterior), drawn dashed on every panel.
    reference_label : str, default="Bayes posterior"

    Returns
    -------
    Figure
        Each panel has the reliability curve over a strip of case counts per bin (log scale).
    """
    n = len(curves)
    rows = -(-n // 3)  # at most three panels a row
    columns = -(-n // rows)
    fig = plt.figure(figsize=(4.2 * columns, 4.6 * rows), layout="constrained")
    panels = fig.add_gridspec(rows, columns)
    for i, (name, bins) in enumerate(curves.items()):
        pair = panels[divmod(i, columns)].subgridspec(2, 1, height_ratios=[3, 1], hspace=0.05)
        ax = fig.add_subplot(pair[0])
        counts = fig.add_subplot(pair[1], sharex=ax)
        ax.tick_params(labelbottom=False)
        _reliability_panel(ax, counts, bins, name, reference, reference_label)
    fig.suptitle("Top-label reliability (test set)")
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


K_MARKERS = ("^", "s", "D", "v", "P", "X", "<", ">")
"""Marker shapes of the marked cost ratios on the trade-off curves, in order."""


def _nearest(cost_ratios: np.ndarray, k: float) -> int:
    """The index of the cost ratio nearest ``k`` on a log scale."""
    return int(np.argmin(np.abs(np.log(cost_ratios / k))))


def urgency_tradeoff_figure(
    curves: Mapping[str, Mapping[str, np.ndarray]],
    chosen_cost_ratio: float,
    title: str,
    *,
    marked_cost_ratios: Sequence[float] = (),
    operating_points: Mapping[str, tuple[float, float]] | None = None,
    labelled: str | None = None,
    reference: str | None = None,
) -> Figure:
    """Share of patients flagged against share of serious conditions caught, as K varies.

    Parameters
    ----------
    curves : mapping of str to dict
        Model name -> :func:`training.metrics.urgency_tradeoff`: the policy of reported signs
        by rule plus the model's review alerts at threshold ``1 / (1 + K)``, one point per K.
    chosen_cost_ratio : float
        The served K, a large dot on every curve.
    title : str
    marked_cost_ratios : sequence of float, optional
        Other values of K, each marked with its own shape on every curve (a K within 10% of
        the served one is left out: the dot is there).
    operating_points : mapping of str to (flagged, caught), optional
        Policies with nothing to trade (the article's rules: no score ranks the patients with
        no reported sign), each drawn as its single point (shares, 0-1).
    labelled : str, optional
        The curve whose marks are labelled ``K = ...`` in the plot (default: the first).
    reference : str, optional
        The curve drawn black and dashed (the Bayes posterior).
    """
    fig, ax = plt.subplots(figsize=(8, 5.5))
    marked = [k for k in marked_cost_ratios if abs(np.log(k / chosen_cost_ratio)) > np.log(1.1)]
    shapes = dict(zip(marked, K_MARKERS, strict=False))
    labelled = labelled if labelled in curves else next(iter(curves), None)
    colors = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"])
    for name, curve in curves.items():
        color = "black" if name == reference else next(colors)
        flagged, caught = 100 * curve["flagged"], 100 * curve["caught"]
        ax.plot(flagged, caught, ls="--" if name == reference else "-", color=color, label=name)
        k = _nearest(curve["cost_ratio"], chosen_cost_ratio)
        ax.plot(flagged[k], caught[k], "o", ms=8, color=color)
        for value, shape in shapes.items():
            i = _nearest(curve["cost_ratio"], value)
            ax.plot(flagged[i], caught[i], shape, ms=6, mfc="white", mec=color, mew=1.5)
        if name == labelled:
            # alternate sides, so that marks close together keep readable labels
            for j, value in enumerate([chosen_cost_ratio, *shapes]):
                i = _nearest(curve["cost_ratio"], value)
                ax.annotate(
                    f"K = {value:g}",
                    (flagged[i], caught[i]),
                    xytext=(10, -12) if j % 2 else (-10, 8),
                    textcoords="offset points",
                    ha="left" if j % 2 else "right",
                    fontsize=8,
                    color=color,
                    arrowprops={"arrowstyle": "-", "color": color, "lw": 0.6},
                )
    for name, (flagged_share, caught_share) in (operating_points or {}).items():
        x, y = 100 * flagged_share, 100 * caught_share
        ax.plot([x], [y], "*", ms=14, color="black", label=f"{name} (one operating point)")
    ax.axhline(85, ls=":", color="grey", label="target: 85% caught")
    keys = [
        Line2D([], [], ls="", marker="o", ms=8, color="grey", label=f"K = {chosen_cost_ratio:g}")
    ]
    keys += [
        Line2D([], [], ls="", marker=shape, ms=6, mfc="white", mec="grey", label=f"K = {k:g}")
        for k, shape in shapes.items()
    ]
    handles, _ = ax.get_legend_handles_labels()
    ax.legend(handles=[*handles, *keys], fontsize=8, loc="lower right", ncols=2)
    ax.set_xlabel("patients flagged (emergency, urgent or review), %")
    ax.set_ylabel("serious conditions caught, %")
    ax.set_title(f"{title} (dots: served K = {chosen_cost_ratio:g})")
    ax.grid(alpha=0.3)
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
