"""Post-hoc calibration on held-out data: temperature for the cause, Platt for the red flag.

Both are monotone maps of the raw score, so the predicted cause never changes and exact TreeSHAP
attributions stay exact (they are scaled by the same factor).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize, minimize_scalar
from scipy.special import expit, log_expit, log_softmax

from model.scorers import Calibration


def fit_temperature(raw: np.ndarray, y: np.ndarray) -> Calibration:
    """Scale ``1 / T`` minimising the multiclass log-loss of ``softmax(raw / T)``."""
    rows = np.arange(len(y))

    def nll(log_scale: float) -> float:
        return float(-log_softmax(np.exp(log_scale) * raw, axis=1)[rows, y].mean())

    best = minimize_scalar(nll, bounds=(-3.0, 3.0), method="bounded")
    return Calibration(scale=float(np.exp(best.x)), shift=0.0)


def fit_platt(raw: np.ndarray, y: np.ndarray) -> Calibration:
    """``a * raw + b`` minimising the binary log-loss of ``sigmoid(a * raw + b)``."""
    score, target = raw.reshape(-1), y.astype(bool)

    def nll(params: np.ndarray) -> tuple[float, np.ndarray]:
        z = params[0] * score + params[1]
        loss = -(np.where(target, log_expit(z), log_expit(-z))).mean()
        residual = expit(z) - target  # d loss / d z
        return float(loss), np.array([(residual * score).mean(), residual.mean()])

    best = minimize(nll, x0=np.array([1.0, 0.0]), jac=True, method="BFGS")
    return Calibration(scale=float(best.x[0]), shift=float(best.x[1]))
