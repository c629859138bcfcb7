"""Fit and judge the model of the serious-condition type (:class:`model.serious.SeriousTypeModel`).

One binary scorer per condition (that condition against everything else), fitted in the family
of the candidate it goes with (HistGradientBoosting or LightGBM, so the champion's family), and
Platt-calibrated on the validation split like the red-flag scorer.

Monotone constraints come from the knowledge base, not from a list written here: a feature is
constrained to raise a condition's probability where the knowledge base makes that answer more
likely with the condition than without any serious condition in every latent state (the noisy-OR
parents of ``vignettes/knowledge.toml``: weakness for cauda equina, fever for infection, a
history of cancer for malignancy, both legs for cauda equina, ...), and to lower it where the
answer is less likely (the one-sided answers of ``sides`` in cauda equina). Adding such a finding
therefore never lowers that condition's probability.

:func:`compare_with_posterior` measures the calibrated probabilities against the truth and
against the exact posterior's ``serious_<condition>`` columns, for the comparison report.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np
import pandas as pd

from model.features import FEATURE_NAMES
from model.scorers import Calibration, Scorer
from model.serious import SERIOUS_TYPES, SeriousTypeModel
from training.calibrate import fit_platt
from training.report import cell
from vignettes import load_knowledge
from vignettes.knowledge import TABLE_FIELDS
from vignettes.schema import FIELD_BY_NAME, SERIOUS_CONDITIONS

FitBinary = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[int]], Scorer]
"""``(X, y, val_X, val_y, monotone constraints) -> uncalibrated binary Scorer`` of one family."""

_EPS = 1e-9


@cache
def monotone_constraints(condition: str) -> tuple[int, ...]:
    """Per encoded feature: +1 (never lowers P(condition)), -1 (never raises it) or 0.

    A boolean answer is +1 when the knowledge base makes "yes" at least as likely with
    ``condition`` as with no serious condition in every latent state, and more likely in some;
    an indicator column of a categorical answer is +1 or -1 by the same test on its value. Every
    other feature (age, sex, duration, answers the condition does not touch) is free.

    Examples
    --------
    >>> from model.features import FEATURE_NAMES
    >>> constraints = dict(zip(FEATURE_NAMES, monotone_constraints("cauda_equina")))
    >>> constraints["saddle_numbness"], constraints["sides=both"], constraints["sides=left"]
    (1, 1, -1)
    >>> constraints["fever"], constraints["age"]
    (0, 0)
    """
    kb = load_knowledge()
    k, none = SERIOUS_CONDITIONS.index(condition), SERIOUS_CONDITIONS.index("none")
    signs: dict[str, int] = {}
    for name in TABLE_FIELDS:
        field = FIELD_BY_NAME[name]
        table = kb.tables[name]  # (bands, causes, serious, roots, values)
        diff = table[:, :, k] - table[:, :, none]  # (bands, causes, roots, values)
        if field.kind == "bool":
            signs[name] = _sign(diff[..., 1], allow_negative=False)
        elif kb.imaging is None or name != kb.imaging.field:
            for v, value in enumerate(field.values):
                signs[f"{name}={value}"] = _sign(diff[..., v], allow_negative=True)
    return tuple(signs.get(feature, 0) for feature in FEATURE_NAMES)


@cache
def any_serious_constraints() -> tuple[int, ...]:
    """Per encoded feature, the constraint for P(any serious condition) (the red-flag model).

    A feature that raises some condition and lowers none raises the probability of any serious
    condition (+1), and the other way round (-1); mixed or free features are free (0). Under the
    knowledge base's noisy-OR every condition's answer is at least as likely as without one, so
    the exact posterior obeys these constraints too.

    Examples
    --------
    >>> from model.features import FEATURE_NAMES
    >>> constraints = dict(zip(FEATURE_NAMES, any_serious_constraints()))
    >>> constraints["fever"], constraints["saddle_numbness"], constraints["sides=left"]
    (1, 1, -1)
    """
    per_condition = np.array([monotone_constraints(c) for c in SERIOUS_TYPES])
    signs = (per_condition > 0).any(axis=0).astype(int) - (per_condition < 0).any(axis=0)
    return tuple(int(v) for v in np.asarray(signs).ravel())


def _sign(diff: np.ndarray, allow_negative: bool) -> int:
    if (diff >= -_EPS).all() and (diff > _EPS).any():
        return 1
    if allow_negative and (diff <= _EPS).all() and (diff < -_EPS).any():
        return -1
    return 0


def fit_serious_types(
    fit_binary: FitBinary,
    train_X: np.ndarray,
    train_serious: np.ndarray,
    val_X: np.ndarray,
    val_serious: np.ndarray,
) -> SeriousTypeModel:
    """One calibrated binary scorer per serious condition.

    Parameters
    ----------
    fit_binary : callable
        Fits one uncalibrated binary scorer of the family (see :data:`FitBinary`).
    train_X, val_X : ndarray
        Encoded intakes (``model.features.encode``).
    train_serious, val_serious : ndarray of int
        Codes of the latent ``serious_condition`` (``vignettes.schema.SERIOUS_CONDITIONS``).

    Returns
    -------
    SeriousTypeModel
        A condition with no training case (tiny runs: infection is under 0.1% of primary care)
        gets a constant score, which Platt calibration maps to the validation prevalence.
    """
    scorers = {}
    for condition in SERIOUS_TYPES:
        code = SERIOUS_CONDITIONS.index(condition)
        y, val_y = (train_serious == code).astype(int), (val_serious == code).astype(int)
        scorer = fit_binary(train_X, y, val_X, val_y, list(monotone_constraints(condition)))
        scorer.calibration = fit_platt(scorer.raw(val_X), val_y)
        if scorer.calibration.scale < 0:
            # A score that validation finds backwards (too few cases to learn from) would turn
            # the monotone constraints around: use the validation prevalence instead.
            rate = float(np.clip(val_y.mean(), 1e-6, 1 - 1e-6))
            scorer.calibration = Calibration(0.0, float(np.log(rate / (1 - rate))))
        scorers[condition] = scorer
    return SeriousTypeModel(scorers)


def compare_with_posterior(
    model_proba: np.ndarray, bayes: pd.DataFrame, serious: np.ndarray
) -> pd.DataFrame:
    """Per condition: prevalence, mean probability, log-loss and Brier of the model and of Bayes.

    Parameters
    ----------
    model_proba : ndarray of shape (n, 4)
        The model's ``P(condition | answers)`` in :data:`SERIOUS_TYPES` order.
    bayes : pandas.DataFrame
        ``vignettes.posterior(..., latents=True)`` of the same cases (``serious_<condition>``).
    serious : ndarray of int
        The true ``serious_condition`` codes.

    Returns
    -------
    pandas.DataFrame
        One row per condition: ``cases``, ``prevalence``, ``mean_model``, ``mean_bayes``,
        ``log_loss_model``, ``log_loss_bayes``, ``log_loss_ratio``, ``brier_model``,
        ``brier_bayes`` and ``mean_abs_gap`` (mean |model - Bayes|).
    """
    rows = []
    for i, condition in enumerate(SERIOUS_TYPES):
        truth = serious == SERIOUS_CONDITIONS.index(condition)
        p_model = np.clip(model_proba[:, i], 1e-15, 1 - 1e-15)
        p_bayes = np.clip(bayes[f"serious_{condition}"].to_numpy(dtype=float), 1e-15, 1 - 1e-15)
        loss_model, loss_bayes = _log_loss(p_model, truth), _log_loss(p_bayes, truth)
        rows.append(
            {
                "condition": condition,
                "cases": int(truth.sum()),
                "prevalence": float(truth.mean()),
                "mean_model": float(p_model.mean()),
                "mean_bayes": float(p_bayes.mean()),
                "log_loss_model": loss_model,
                "log_loss_bayes": loss_bayes,
                "log_loss_ratio": loss_model / loss_bayes if loss_bayes > 0 else float("nan"),
                "brier_model": float(((p_model - truth) ** 2).mean()),
                "brier_bayes": float(((p_bayes - truth) ** 2).mean()),
                "mean_abs_gap": float(np.abs(p_model - p_bayes).mean()),
            }
        )
    return pd.DataFrame(rows).set_index("condition")


def _log_loss(p: np.ndarray, truth: np.ndarray) -> float:
    return float(-np.where(truth, np.log(p), np.log1p(-p)).mean())


def comparison_markdown(table: pd.DataFrame, model: str) -> str:
    """The comparison as a markdown table (the report's "Which serious condition" section)."""
    lines = [
        f"Which serious condition: {model}'s calibrated P(condition | answers) against the exact "
        "posterior's, on the test set (log-loss ratio = model / Bayes; 1 is the ceiling)",
        "",
        "| condition | cases | prevalence | mean P model | mean P Bayes | log-loss model "
        "| log-loss Bayes | ratio | Brier model | Brier Bayes | mean abs gap |",
        "|" + "---|" * 11,
    ]
    for condition, r in table.iterrows():
        lines.append(
            f"| {condition} | {r.cases:.0f} | {r.prevalence:.4f} | {r.mean_model:.4f} "
            f"| {r.mean_bayes:.4f} | {r.log_loss_model:.5f} | {r.log_loss_bayes:.5f} "
            f"| {cell(r.log_loss_ratio)} | {r.brier_model:.5f} | {r.brier_bayes:.5f} "
            f"| {r.mean_abs_gap:.4f} |"
        )
    return "\n".join(lines) + "\n"


__all__ = [
    "any_serious_constraints",
    "compare_with_posterior",
    "comparison_markdown",
    "fit_serious_types",
    "monotone_constraints",
]
