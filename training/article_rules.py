"""The rules baseline: the article read as a points system, a transparent untrained classifier.

Only training uses it (as the ``article_rules`` candidate), so it lives here. Its points are data:
``vignettes/article.toml`` (``[rules_baseline]``), each rule with the article's words or the paper
it comes from; this module reads them with the answer primitives of :mod:`model.answers`, so the
baseline and the served rules read answers the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from model.answers import answer_in, answer_is, number
from model.intake import IntakeError, validate_frame
from model.rules import any_red_flag
from vignettes.article import load_article
from vignettes.schema import CAUSES, FIELD_NAMES

__all__ = [
    "CAUSE_RULES",
    "MRI_BACKGROUND",
    "ArticleRulesClassifier",
    "Rule",
    "background_prevalence",
    "cause_points",
]

_FACTS = load_article()
MRI_BACKGROUND: dict[str, tuple[float, ...]] = dict(_FACTS.mri_background)
"""``ages`` and, per MRI finding, the share of people WITHOUT back pain whose MRI shows it at
those ages (Brinjikji et al., AJNR 2015; ``vignettes/article.toml``). "Treat the patient, not the
scan": such a finding is evidence only in proportion to how rare it is without pain at that age."""


def background_prevalence(finding: str, age: Any) -> Any:
    """:data:`MRI_BACKGROUND` of ``finding`` at ``age``, linear between ages (0 for others)."""
    curve = MRI_BACKGROUND.get(finding) if finding != "ages" else None
    if curve is None:
        return 0.0 if isinstance(age, float) else np.zeros(np.shape(age))
    out = np.interp(age, MRI_BACKGROUND["ages"], curve)
    return float(out) if np.ndim(out) == 0 else out


@dataclass(frozen=True)
class Rule:
    """``points`` for ``cause`` when the answer to ``field`` satisfies ``op value``.

    ``op`` is ``"is"`` (equal), ``"in"`` (one of a tuple) or ``"gt"`` (numeric, greater than).
    Unknown answers never satisfy a rule. A rule on an MRI finding (``field`` is
    ``mri_finding``) counts ``1 - prevalence`` of its points, the prevalence of the finding in
    people without pain at the patient's age (:func:`background_prevalence`).
    """

    cause: str
    field: str
    op: Literal["is", "in", "gt"]
    value: object
    points: float
    source: str

    def matches(self, df: pd.DataFrame) -> np.ndarray:
        """Rows of ``df`` where the rule applies."""
        if self.op == "is":
            return answer_is(df, self.field, self.value)
        if self.op == "in":
            return answer_in(df, self.field, tuple(self.value))  # type: ignore[arg-type]
        return number(df, self.field) > float(self.value)  # type: ignore[arg-type]

    def weight(self, df: pd.DataFrame) -> np.ndarray:
        """Share of :attr:`points` each row earns: 0 where the rule does not apply, else 1, or
        less for an MRI finding that is common without pain at the row's age."""
        applies = np.asarray(self.matches(df), dtype=float)
        if self.field != "mri_finding" or self.op != "is":
            return applies
        age = number(df, "age")
        discount = 1.0 - background_prevalence(str(self.value), np.nan_to_num(age, nan=50.0))
        return applies * discount


CAUSE_RULES: tuple[Rule, ...] = tuple(
    Rule(r.cause, r.field, r.op, r.value, r.points, r.source)  # type: ignore[arg-type]
    for r in _FACTS.baseline_rules
)
"""The points system of :class:`ArticleRulesClassifier`: for each cause, the features the
article names for it (``source`` quotes it), with a few negative points where the article
contrasts two causes. Weights are a careful reader's judgement (1 = a named feature, 1.5 = a
distinctive one, 0.5 = a shared or weak one), fixed, never fitted; from
``vignettes/article.toml``."""


def cause_points(cases: pd.DataFrame) -> pd.DataFrame:
    """Total points of each cause under :data:`CAUSE_RULES` (unknown answers add nothing).

    An MRI finding earns its points times ``1 - `` its prevalence without pain at the case's age
    (:meth:`Rule.weight`): "Treat the patient, not the scan".

    Returns
    -------
    pandas.DataFrame
        One float column per cause (order of ``vignettes.schema.CAUSES``), indexed like ``X``.
    """
    points = np.zeros((len(cases), len(CAUSES)))
    for rule in CAUSE_RULES:
        points[:, CAUSES.index(rule.cause)] += rule.points * rule.weight(cases)
    return pd.DataFrame(points, columns=list(CAUSES), index=cases.index)


class ArticleRulesClassifier(ClassifierMixin, BaseEstimator):
    """The article read as a points system: a transparent, untrained baseline.

    Each cause scores the points of :data:`CAUSE_RULES` that apply; points become probabilities
    with a fixed softmax, ``p = floor + (1 - 7 * floor) * softmax(scale * points)``, so every
    probability is at least ``floor`` and log-loss stays finite. Nothing is learned from data:
    :meth:`fit` only checks its input and records the (fixed) class list.

    The red flag follows the article's "Seek urgent care if you experience" list: probability
    ``red_flag_fired_proba`` when any red-flag sign is answered ``True``, else
    ``red_flag_baseline_proba``.

    Parameters
    ----------
    scale : float, default=1.0
        Softmax scale: probability ratio ``exp(scale)`` per point of difference.
    floor : float, default=1e-3
        Smallest probability of any cause.
    red_flag_fired_proba : float, default=1.0
        Red-flag probability when a sign fired.
    red_flag_baseline_proba : float, default=0.01
        Red-flag probability otherwise.

    Attributes
    ----------
    classes_ : numpy.ndarray of str
        ``vignettes.schema.CAUSES``, in that order.
    n_features_in_ : int
        Number of contract fields.
    feature_names_in_ : numpy.ndarray of str
        The contract fields, in schema order.
    """

    def __init__(
        self,
        scale: float = 1.0,
        floor: float = 1e-3,
        red_flag_fired_proba: float = 1.0,
        red_flag_baseline_proba: float = 0.01,
    ) -> None:
        self.scale = scale
        self.floor = floor
        self.red_flag_fired_proba = red_flag_fired_proba
        self.red_flag_baseline_proba = red_flag_baseline_proba

    def fit(self, X: pd.DataFrame, y: Any = None) -> ArticleRulesClassifier:
        """Check ``X`` (and ``y`` if given: labels among the causes); record the class list.

        Parameters
        ----------
        X : pandas.DataFrame
            Cases, as accepted by :func:`model.intake.validate_frame`.
        y : array-like of str, optional
            Causes; only checked (length and values), never learned from.

        Returns
        -------
        ArticleRulesClassifier
            ``self``.
        """
        n_rows = len(validate_frame(X))
        if not 0 <= self.floor * len(CAUSES) < 1:
            raise ValueError(f"floor: expected 0 <= floor < {1 / len(CAUSES):.3g}")
        if y is not None:
            labels = pd.Series(np.asarray(y, dtype=object))
            if len(labels) != n_rows:
                raise ValueError(f"y: expected {n_rows} labels, got {len(labels)}")
            unknown = ~labels.isin(list(CAUSES))
            if unknown.any():
                raise IntakeError(
                    "cause",
                    "one of " + ", ".join(map(repr, CAUSES)),
                    f"cause: {labels[unknown].iloc[0]!r} is not allowed; expected one of "
                    + ", ".join(map(repr, CAUSES)),
                )
        self.classes_ = np.asarray(CAUSES, dtype=object)
        self.n_features_in_ = len(FIELD_NAMES)
        self.feature_names_in_ = np.asarray(FIELD_NAMES, dtype=object)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Probability of each cause (columns in ``classes_`` order; rows sum to 1)."""
        check_is_fitted(self, "classes_")
        logits = self.scale * cause_points(validate_frame(X)).to_numpy()
        logits -= logits.max(axis=1, keepdims=True)
        soft = np.exp(logits)
        soft /= soft.sum(axis=1, keepdims=True)
        return self.floor + (1.0 - len(CAUSES) * self.floor) * soft

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """The most likely cause of each case (ties go to the earlier cause in ``classes_``)."""
        check_is_fitted(self, "classes_")
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def red_flag_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Probability that the case needs urgent evaluation, from the article's red flags."""
        check_is_fitted(self, "classes_")
        fired = any_red_flag(validate_frame(X))
        return np.where(fired, self.red_flag_fired_proba, self.red_flag_baseline_proba)

    def predict_red_flag(self, X: pd.DataFrame) -> np.ndarray:
        """The red-flag decision: any red-flag sign answered ``True``."""
        check_is_fitted(self, "classes_")
        return any_red_flag(validate_frame(X))
