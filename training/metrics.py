"""Metrics every candidate is judged by, on one shared test set."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    balanced_accuracy_score,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
    roc_auc_score,
)

from model.triage import URGENT_PROBABILITY, red_flag_decision
from vignettes.article import URGENCY_TIERS
from vignettes.schema import CAUSES, SERIOUS_CONDITIONS

RED_FLAG_TARGET_RECALL = 0.99
DIFFERENTIAL_COVERAGE = 0.95
"""The coverage of the differential DDXPlus's DDR, DDP and DDF1 compare: the smallest set of
causes whose probabilities sum to 95%, the candidate's against the exact posterior's."""


RELIABILITY_BINS = 15
"""Equal-width confidence bins of the ECE and of the reliability diagrams (the same bins)."""


def reliability_bins(
    proba: np.ndarray, y: np.ndarray, n_bins: int = RELIABILITY_BINS
) -> dict[str, np.ndarray]:
    """Top-label reliability: per equal-width bin of the top probability, cases and accuracy.

    Parameters
    ----------
    proba : numpy.ndarray
        ``(n, causes)`` probabilities.
    y : numpy.ndarray of int
        The true cause per case.
    n_bins : int, default=RELIABILITY_BINS

    Returns
    -------
    dict
        Arrays of length ``n_bins``: ``lower`` and ``upper`` (the bin's edges), ``cases`` (cases
        whose top probability falls in the bin), ``confidence`` (their mean top probability) and
        ``accuracy`` (the share whose top cause is the true one); both NaN for an empty bin.
    """
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    cases = np.bincount(bins, minlength=n_bins)
    seen = cases > 0

    def mean(values: np.ndarray) -> np.ndarray:
        totals = np.bincount(bins, values, minlength=n_bins)
        return np.divide(totals, cases, out=np.full(n_bins, np.nan), where=seen)

    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return {
        "lower": edges[:-1],
        "upper": edges[1:],
        "cases": cases,
        "confidence": mean(confidence),
        "accuracy": mean(correct.astype(float)),
    }


def calibration_error(bins: dict[str, np.ndarray]) -> float:
    """ECE of :func:`reliability_bins`: mean |accuracy - confidence| over bins, case-weighted."""
    gap = np.abs(bins["accuracy"] - bins["confidence"])
    return float(np.nansum(bins["cases"] * gap) / max(int(bins["cases"].sum()), 1))


def expected_calibration_error(
    proba: np.ndarray, y: np.ndarray, n_bins: int = RELIABILITY_BINS
) -> float:
    """Top-label ECE: mean |accuracy - confidence| over equal-width confidence bins, weighted."""
    return calibration_error(reliability_bins(proba, y, n_bins))


def per_cause_rates(pred: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Recall and precision of the top cause, per cause (in ``CAUSES`` order).

    Returns
    -------
    dict
        ``cases`` (true cases of the cause), ``predicted`` (cases given it as top cause),
        ``recall`` (NaN for a cause with no case) and ``precision`` (NaN for a cause never
        predicted).
    """
    labels = np.arange(len(CAUSES))
    precision, recall, _, cases = precision_recall_fscore_support(
        y, pred, labels=labels, zero_division=np.nan
    )
    return {
        "cases": np.asarray(cases),
        "predicted": np.bincount(pred, minlength=len(CAUSES)),
        "recall": np.asarray(recall, dtype=float),
        "precision": np.asarray(precision, dtype=float),
    }


def confusion_shares(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Row-normalised confusion matrix: row ``i`` is where the cases of true cause ``i`` went.

    A cause with no case has a row of zeros.
    """
    k = len(CAUSES)
    counts = np.bincount(y * k + pred, minlength=k * k).reshape(k, k)
    return counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)


def top_k_accuracy(proba: np.ndarray, y: np.ndarray, k: int = 2) -> float:
    top = np.argsort(-proba, axis=1)[:, :k]
    return float((top == y[:, None]).any(axis=1).mean())


def cause_metrics(proba: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Accuracy, balanced accuracy, macro F1, top-2 accuracy, log-loss, ECE; recall and
    precision per cause (``recall_<cause>``, ``precision_<cause>``; 0 where undefined, as
    scikit-learn's ``zero_division=0``: a cause with no case, or never predicted)."""
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
    rates = per_cause_rates(pred, y)
    for rate in ("recall", "precision"):
        values = np.nan_to_num(rates[rate], nan=0.0)
        out |= {f"{rate}_{c}": float(v) for c, v in zip(CAUSES, values, strict=True)}
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


_URGENT = URGENCY_TIERS.index("urgent")
_REVIEW, _ROUTINE = URGENCY_TIERS.index("review"), URGENCY_TIERS.index("routine")


def served_tiers(
    p: np.ndarray,
    threshold: float,
    sign_tier: np.ndarray,
    urgent_threshold: float | None = URGENT_PROBABILITY,
) -> np.ndarray:
    """The served urgency tier per case (index into ``URGENCY_TIERS``), exactly as served.

    ``sign_tier`` is the tier the urgency rules set from the answers alone
    (``model.rules.urgency`` without a model). The model raises a case below review to review
    when ``p >= threshold``, and a case below urgent to urgent when ``p >= urgent_threshold``
    (``None``: no upper threshold); it never lowers a tier.
    """
    tier = np.asarray(sign_tier).copy()
    review = red_flag_decision(p, threshold)
    tier = np.where(review & (tier > _REVIEW), _REVIEW, tier)
    if urgent_threshold is not None:
        urgent = red_flag_decision(p, urgent_threshold)
        tier = np.where(urgent & (tier > _URGENT), _URGENT, tier)
    return tier


def urgency_metrics(
    p: np.ndarray,
    threshold: float,
    sign_tier: np.ndarray,
    serious: np.ndarray,
    answered_no: np.ndarray,
    urgent_threshold: float | None = URGENT_PROBABILITY,
) -> dict[str, float]:
    """What the urgency tiers do to a population, at one threshold.

    Parameters
    ----------
    p : numpy.ndarray
        Calibrated probability of a serious condition, per case.
    threshold : float
        The review threshold (``1 / (1 + K)``).
    sign_tier : numpy.ndarray of int
        Tier set by the reported signs (index into ``URGENCY_TIERS``).
    serious : numpy.ndarray of int
        The latent serious condition (index into ``vignettes.schema.SERIOUS_CONDITIONS``;
        0 = none).
    answered_no : numpy.ndarray of bool
        Cases that answered every red-flag question "no".
    urgent_threshold : float or None, default=URGENT_PROBABILITY
        The upper threshold (``None``: none), see :func:`served_tiers`.

    Returns
    -------
    dict
        ``tier_share_<tier>``; ``caught`` (share of serious conditions not routine) and
        ``caught_<condition>``; ``flagged`` (share not routine); ``ppv_flagged`` and
        ``ppv_review`` (share of flagged / review cases with a serious condition);
        ``answered_no_routine`` and ``answered_no_urgent`` (share of the all-"no" cases that are
        routine, and that are emergency or urgent).
    """
    tier = served_tiers(p, threshold, sign_tier, urgent_threshold)
    has = serious > 0
    flagged = tier != _ROUTINE
    review = tier == _REVIEW

    def share(mask: np.ndarray, of: np.ndarray) -> float:
        return float(mask[of].mean()) if of.any() else float("nan")

    out = {f"tier_share_{t}": float((tier == k).mean()) for k, t in enumerate(URGENCY_TIERS)}
    out |= {
        "flagged": float(flagged.mean()),
        "caught": share(flagged, has),
        "ppv_flagged": share(has, flagged),
        "ppv_review": share(has, review),
        "answered_no_routine": share(~flagged, answered_no),
        "answered_no_urgent": share(tier < _REVIEW, answered_no),
    }
    for k, name in enumerate(SERIOUS_CONDITIONS[1:], start=1):
        out[f"caught_{name}"] = share(flagged, serious == k)
    return out


def urgency_tradeoff(
    p: np.ndarray,
    sign_tier: np.ndarray,
    serious: np.ndarray,
    cost_ratios: np.ndarray,
) -> dict[str, np.ndarray]:
    """Share flagged, share caught and review PPV as the cost ratio K varies (threshold 1/(1+K)).

    Vectorised over K: one sort of the routine-by-rule cases' probabilities.
    """
    has = serious > 0
    silent = sign_tier == _ROUTINE  # cases the model may raise to review
    order = np.sort(p[silent])
    order_serious = np.sort(p[silent & has])
    thresholds = 1.0 / (1.0 + np.asarray(cost_ratios, dtype=float))
    n, n_serious = len(p), max(int(has.sum()), 1)
    # cases at or above each threshold (ties towards review, as served)
    raised = len(order) - np.searchsorted(order, thresholds - 1e-12, side="left")
    raised_serious = len(order_serious) - np.searchsorted(
        order_serious, thresholds - 1e-12, side="left"
    )
    by_rule, by_rule_serious = int((~silent).sum()), int((~silent & has).sum())
    return {
        "cost_ratio": np.asarray(cost_ratios, dtype=float),
        "threshold": thresholds,
        "flagged": (by_rule + raised) / n,
        "caught": (by_rule_serious + raised_serious) / n_serious,
        "ppv_review": np.where(raised > 0, raised_serious / np.maximum(raised, 1), np.nan),
    }


def differential_set(proba: np.ndarray, coverage: float = DIFFERENTIAL_COVERAGE) -> np.ndarray:
    """Boolean (cases x causes): the smallest set of causes whose probabilities reach
    ``coverage`` (the most likely first; a cause is kept while the ones before it sum to less)."""
    order = np.argsort(-proba, axis=1)
    sorted_p = np.take_along_axis(proba, order, axis=1)
    before = np.cumsum(sorted_p, axis=1) - sorted_p
    out = np.zeros_like(proba, dtype=bool)
    np.put_along_axis(out, order, before < coverage, axis=1)
    return out


def _f1(recall: float, precision: float) -> float:
    return 2 * recall * precision / (recall + precision) if recall + precision else 0.0


def ddxplus_metrics(
    proba: np.ndarray,
    y: np.ndarray,
    reference: np.ndarray,
    shown_serious: np.ndarray,
    serious: np.ndarray,
) -> dict[str, float]:
    """DDXPlus's metrics (Fansi Tchango et al., NeurIPS 2022), against the exact truth.

    Parameters
    ----------
    proba : numpy.ndarray
        (cases x causes) the candidate's cause probabilities.
    y : numpy.ndarray
        The true cause codes.
    reference : numpy.ndarray
        (cases x causes) the exact posterior on the same answers: its differential at
        :data:`DIFFERENTIAL_COVERAGE` is the ground-truth differential.
    shown_serious : numpy.ndarray of bool
        The tier shown is not routine.
    serious : numpy.ndarray of bool
        The case has a serious condition (the vignette's ``red_flag``).

    Returns
    -------
    dict
        ``gtpa_at_1`` and ``gtpa_at_3`` (the true cause first, or in the top three); ``ddr``,
        ``ddp``, ``ddf1`` (the differential's recall, precision and F1 against the reference's,
        averaged per case); ``dsr``, ``dsp``, ``dsf1`` (serious conditions: recall, precision
        and F1 of a tier above routine).
    """
    predicted, truth = differential_set(proba), differential_set(reference)
    both = (predicted & truth).sum(axis=1)
    ddr = float((both / truth.sum(axis=1)).mean())
    ddp = float((both / predicted.sum(axis=1)).mean())
    shown, serious = np.asarray(shown_serious, bool), np.asarray(serious, bool)
    hits = float((shown & serious).sum())
    dsr = hits / max(int(serious.sum()), 1)
    dsp = hits / max(int(shown.sum()), 1)
    return {
        "gtpa_at_1": top_k_accuracy(proba, y, 1),
        "gtpa_at_3": top_k_accuracy(proba, y, 3),
        "ddr": ddr,
        "ddp": ddp,
        "ddf1": _f1(ddr, ddp),
        "dsr": dsr,
        "dsp": dsp,
        "dsf1": _f1(dsr, dsp),
    }
