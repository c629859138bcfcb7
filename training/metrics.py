"""Metrics every candidate is judged by, on one shared test set."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    balanced_accuracy_score,
    f1_score,
    log_loss,
    recall_score,
    roc_auc_score,
)

from model.triage import red_flag_decision
from vignettes.schema import CAUSES

RED_FLAG_TARGET_RECALL = 0.99


def expected_calibration_error(proba: np.ndarray, y: np.ndarray, n_bins: int = 15) -> float:
    """Top-label ECE: mean |accuracy - confidence| over equal-width confidence bins, weighted."""
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    counts = np.bincount(bins, minlength=n_bins)
    gap = np.abs(
        np.bincount(bins, correct, minlength=n_bins) - np.bincount(bins, confidence, n_bins)
    )
    return float(gap.sum() / max(counts.sum(), 1))


def top_k_accuracy(proba: np.ndarray, y: np.ndarray, k: int = 2) -> float:
    top = np.argsort(-proba, axis=1)[:, :k]
    return float((top == y[:, None]).any(axis=1).mean())


def cause_metrics(proba: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Accuracy, balanced accuracy, macro F1, top-2 accuracy, log-loss, ECE, recall per cause."""
    pred = proba.argmax(axis=1)
    labels = np.arange(len(CAUSES))
    clipped = np.clip(proba, 1e-15, 1.0)
    out = {
        "accuracy": float((pred == y).mean()),
        "balanced_accuracy": float(balanced_accuracy_score(y, pred)),
        "macro_f1": float(f1_score(y, pred, average="macro", labels=labels, zero_division=0)),
        "top2_accuracy": top_k_accuracy(proba, y, 2),
        "log_loss": float(log_loss(y, clipped / clipped.sum(1, keepdims=True), labels=labels)),
        "ece": expected_calibration_error(proba, y),
    }
    recalls = recall_score(y, pred, labels=labels, average=None, zero_division=0)
    out |= {f"recall_{c}": float(r) for c, r in zip(CAUSES, recalls, strict=True)}
    return out


def threshold_for_recall(
    p: np.ndarray,
    y: np.ndarray,
    recall: float = RED_FLAG_TARGET_RECALL,
    fired: np.ndarray | None = None,
) -> float:
    """Highest threshold at which the served decision reaches ``recall`` on ``(p, y)``.

    The served decision is ``fired | (p >= threshold)``: reported red-flag signs (``fired``)
    always escalate, so the model only has to find the serious cases that reported none.
    Without ``fired`` this is the model's own recall.
    """
    y = y.astype(bool)
    fired = np.zeros_like(y) if fired is None else fired.astype(bool)
    if not y.any():
        return 0.5
    n_miss = int(np.floor((1.0 - recall) * y.sum() + 1e-9))  # misses the target allows
    silent = np.sort(p[y & ~fired])  # serious cases the rules alone would miss
    if silent.size <= n_miss:
        return 1.0  # the rules already reach the target; the model adds nothing
    return float(silent[n_miss])


def red_flag_metrics(
    p: np.ndarray, y: np.ndarray, threshold: float, fired: np.ndarray | None = None
) -> dict[str, float]:
    """AUROC; recall and specificity of the served decision and of the model alone."""
    y = y.astype(bool)
    model = red_flag_decision(p, threshold)  # exactly as served
    served = model | (np.zeros_like(y) if fired is None else fired.astype(bool))

    def rates(decided: np.ndarray) -> tuple[float, float]:
        recall = float(decided[y].mean()) if y.any() else float("nan")
        return recall, float((~decided[~y]).mean()) if (~y).any() else float("nan")

    served_recall, served_specificity = rates(served)
    model_recall, model_specificity = rates(model)
    return {
        "red_flag_auroc": float(roc_auc_score(y, p)) if 0 < y.sum() < y.size else float("nan"),
        "red_flag_recall": served_recall,
        "red_flag_specificity": served_specificity,
        "red_flag_model_recall": model_recall,
        "red_flag_model_specificity": model_specificity,
        "red_flag_threshold": float(threshold),
        "red_flag_log_loss": float(log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1])),
    }
