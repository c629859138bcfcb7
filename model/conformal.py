"""A differential with guaranteed coverage: class-conditional (Mondrian) split conformal sets.

For each cause ``k`` we keep the ``(1 - alpha)`` quantile of the nonconformity score
``1 - p_k(x)`` among held-out cases whose true cause is ``k``. A new case's differential is every
cause whose score is within its own threshold. Because thresholds are per cause, the guarantee
holds per cause, rare causes included: P(true cause in set | cause = k) >= 1 - alpha, for
exchangeable cases (same setting as calibration). A few lines of NumPy are simpler here than a
library wrapper, and keep the registered model free of pickles (thresholds are plain numbers).

Per-cause thresholds differ, so the raw sets are not nested by probability: a cause can be left
out while a less probable one is in. A clinician reads a differential as "everything at least
this likely", so the set is then closed upward: every cause at least as probable as its least
probable member joins it. Adding causes can only raise coverage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_ALPHA = 0.05
SLACK = 1e-12
"""Tolerance of the threshold comparison (a score equal to a threshold is in the set)."""


@dataclass(frozen=True)
class ConformalSets:
    """Per-cause thresholds of the score ``1 - p_k``.

    Attributes
    ----------
    alpha : float
        Miscoverage level: each cause is covered with probability at least ``1 - alpha``.
    thresholds : tuple of float
        One per cause, in ``CAUSES`` order.
    """

    alpha: float
    thresholds: tuple[float, ...]

    @classmethod
    def fit(cls, proba: np.ndarray, y: np.ndarray, alpha: float = DEFAULT_ALPHA) -> ConformalSets:
        """Calibrate on held-out cases (not those used to fit or calibrate the model).

        Parameters
        ----------
        proba : ndarray of shape (n, n_causes)
        y : ndarray of shape (n,)
            True cause codes.
        alpha : float, default=0.05
        """
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        thresholds = []
        for k in range(proba.shape[1]):
            scores = np.sort(1.0 - proba[y == k, k])
            n = scores.size
            rank = int(np.ceil((n + 1) * (1 - alpha)))  # the finite-sample conformal rank
            # Too few cases of a cause to certify it: always include it (threshold 1).
            thresholds.append(1.0 if rank > n else float(scores[rank - 1]))
        return cls(alpha=float(alpha), thresholds=tuple(thresholds))

    def sets(self, proba: np.ndarray) -> np.ndarray:
        """Boolean membership ``(n, n_causes)``, closed upward; never empty (the top cause is
        always in), and no cause left out is more probable than one in."""
        member = (1.0 - proba) <= np.asarray(self.thresholds) + SLACK
        member[np.arange(len(proba)), proba.argmax(axis=1)] = True
        least = np.where(member, proba, np.inf).min(axis=1, keepdims=True)
        return member | (proba >= least)

    def members(self, p: list[float]) -> list[int]:
        """:meth:`sets` for one case in plain Python: the indices of the causes in its set.

        One case is the latency-critical call, and seven comparisons in Python cost a fraction
        of the array version's overhead; ``tests/test_conformal.py`` checks they agree.
        """
        top = p.index(max(p))
        least = min(
            pk
            for k, (pk, t) in enumerate(zip(p, self.thresholds, strict=True))
            if k == top or 1.0 - pk <= t + SLACK
        )
        return [k for k, pk in enumerate(p) if pk >= least]

    def to_dict(self) -> dict[str, object]:
        return {"alpha": self.alpha, "thresholds": list(self.thresholds)}

    @classmethod
    def from_dict(cls, data: dict) -> ConformalSets:
        return cls(alpha=float(data["alpha"]), thresholds=tuple(map(float, data["thresholds"])))


def coverage_report(member: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Empirical coverage and mean set size, overall and per true cause."""
    covered = member[np.arange(len(y)), y]
    size = member.sum(axis=1)
    k = member.shape[1]
    counts = np.maximum(np.bincount(y, minlength=k), 1)
    return {
        "coverage": np.array(covered.mean()),
        "mean_size": np.array(size.mean()),
        "coverage_per_cause": np.bincount(y, covered, minlength=k) / counts,
        "size_per_cause": np.bincount(y, size, minlength=k) / counts,
    }
