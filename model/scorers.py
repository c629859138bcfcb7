"""Fitted boosted trees as calibrated scorers with exact TreeSHAP attributions.

A :class:`Scorer` wraps one fitted tree ensemble (scikit-learn ``HistGradientBoostingClassifier``
or a LightGBM booster) and gives, in one place, its raw scores, its calibrated probabilities and
its exact per-column contributions. Calibration is a monotone map on the raw score (temperature
for the cause, Platt's ``a * score + b`` for the red flag), so the calibrated score is still a sum
of exact TreeSHAP contributions: contributions are scaled by the same factor.

Fitted estimators are saved in safe formats, never pickles: scikit-learn models with ``skops``
(loaded with an explicit allow-list of types), LightGBM boosters as their own text format.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import expit, softmax

SKOPS_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "builtins.", "collections.")


@dataclass
class Calibration:
    """Monotone map of raw scores: ``scale * raw + shift`` before softmax or sigmoid."""

    scale: float = 1.0
    shift: float = 0.0

    def apply(self, raw: np.ndarray) -> np.ndarray:
        return self.scale * raw + self.shift


@dataclass
class Scorer:
    """A fitted tree ensemble with calibration.

    Attributes
    ----------
    kind : {"hgb", "lightgbm"}
        Which library fitted ``estimator``.
    estimator : object
        ``HistGradientBoostingClassifier`` or ``lightgbm.Booster``.
    n_classes : int
        2 for the red flag (one score column), 7 for the cause.
    calibration : Calibration
    """

    kind: str
    estimator: Any
    n_classes: int
    calibration: Calibration = field(default_factory=Calibration)
    _explainer: Any = field(default=None, repr=False)

    @property
    def n_scores(self) -> int:
        return 1 if self.n_classes == 2 else self.n_classes

    def raw(self, X: np.ndarray) -> np.ndarray:
        """Uncalibrated scores, shape ``(n, n_scores)``."""
        if len(X) == 0:
            return np.zeros((0, self.n_scores))
        if self.kind == "hgb":
            out = self.estimator.decision_function(X)
        else:
            out = self.estimator.predict(X, raw_score=True, num_threads=_threads(len(X)))
        return np.asarray(out, dtype=float).reshape(len(X), self.n_scores)

    def score(self, X: np.ndarray) -> np.ndarray:
        """Calibrated scores (softmax logits, or the red flag's log-odds)."""
        return self.calibration.apply(self.raw(X))

    def proba(self, X: np.ndarray) -> np.ndarray:
        """Calibrated probabilities: ``(n, 7)`` for the cause, ``(n,)`` P(true) for a binary."""
        return to_proba(self.score(X))

    def contributions(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact TreeSHAP contributions to the calibrated score.

        Returns
        -------
        values : ndarray of shape (n, n_features, n_scores)
        base : ndarray of shape (n_scores,)
            The calibrated score of the average case; ``values.sum(1) + base == score(X)``.
        """
        values, base = self._tree_shap(X)
        cal = self.calibration
        return values * cal.scale, base * cal.scale + cal.shift

    def _tree_shap(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n, k = len(X), self.n_scores
        if n == 0:
            return np.zeros((0, X.shape[1], k)), np.zeros(k)
        if self.kind == "lightgbm":
            contrib = self.estimator.predict(X, pred_contrib=True, num_threads=_threads(n))
            contrib = np.asarray(contrib, dtype=float)
            contrib = contrib.reshape(n, k, -1).transpose(0, 2, 1)  # (n, F + 1, k)
            return contrib[:, :-1, :], contrib[0, -1, :] if n else np.zeros(k)
        if self._explainer is None:
            import shap  # imported late: loading shap is slow and only attributions need it

            self._explainer = shap.TreeExplainer(self.estimator)
        values = np.asarray(self._explainer.shap_values(X, check_additivity=False), dtype=float)
        base = np.atleast_1d(np.asarray(self._explainer.expected_value, dtype=float))
        return values.reshape(n, X.shape[1], k), base

    def save(self, directory: Path) -> None:
        """Write the estimator (skops or LightGBM text) and ``scorer.json``."""
        directory.mkdir(parents=True, exist_ok=True)
        if self.kind == "hgb":
            import skops.io

            skops.io.dump(self.estimator, directory / "estimator.skops")
        else:
            self.estimator.save_model(str(directory / "estimator.txt"))
        meta = {"kind": self.kind, "n_classes": self.n_classes}
        meta |= {"scale": self.calibration.scale, "shift": self.calibration.shift}
        (directory / "scorer.json").write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, directory: Path | str) -> Scorer:
        """Read a scorer written by :meth:`save`, refusing unexpected types in a skops file."""
        directory = Path(directory)
        meta = json.loads((directory / "scorer.json").read_text())
        if meta["kind"] == "hgb":
            estimator = _load_skops(directory / "estimator.skops")
        elif meta["kind"] == "lightgbm":
            import lightgbm

            estimator = lightgbm.Booster(model_file=str(directory / "estimator.txt"))
        else:
            raise ValueError(f"scorer kind must be 'hgb' or 'lightgbm', got {meta['kind']!r}")
        calibration = Calibration(meta["scale"], meta["shift"])
        return cls(meta["kind"], estimator, meta["n_classes"], calibration)


def _threads(n_rows: int) -> int:
    """One thread for small inputs: waking a thread pool costs more than a few rows of trees."""
    return 1 if n_rows < 1000 else 0  # 0: LightGBM's default (all cores)


def to_proba(score: np.ndarray) -> np.ndarray:
    """Softmax over cause scores, or the sigmoid of a single red-flag score."""
    if score.shape[1] == 1:
        return expit(score[:, 0])
    return softmax(score, axis=1)


def _load_skops(path: Path) -> Any:
    import skops.io

    untrusted = skops.io.get_untrusted_types(file=path)
    unexpected = [t for t in untrusted if not t.startswith(SKOPS_TRUSTED_PREFIXES)]
    if unexpected:
        raise ValueError(f"{path}: refusing to load unexpected types {unexpected}")
    return skops.io.load(path, trusted=untrusted)
