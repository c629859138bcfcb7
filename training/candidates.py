"""The candidates: what each one is, how it is fitted, how it predicts.

Every candidate predicts both labels: the cause (7 probabilities) and the red flag (one
probability). Learned candidates are calibrated on the validation split. Only tree ensembles can
be champion: they are the ones with exact TreeSHAP attributions, which serving promises.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Generic, TypeVar

import lightgbm
import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from model.features import encode, to_fields
from model.mlflow_names import MODEL_NAME
from model.rules import any_red_flag, urgency
from model.scorers import Scorer, to_proba
from model.triage import TriageModel
from training.article_rules import ArticleRulesClassifier
from training.calibrate import fit_platt, fit_temperature
from training.progress import boosting_progress
from training.serious import any_serious_constraints, fit_serious_types
from vignettes import posterior
from vignettes.schema import CAUSES, RED_FLAG_FIELDS

# Threads per fit; the test suite runs two workers and sets 1 so they do not oversubscribe.
N_THREADS = int(os.environ.get("SCIATICA_TRIAGE_THREADS", "2"))


@dataclass
class Split:
    """One split of the data: the frame, its encoded matrix and its labels."""

    frame: pd.DataFrame
    X: np.ndarray = field(init=False)
    y: np.ndarray = field(init=False)
    red: np.ndarray = field(init=False)
    fired: np.ndarray = field(init=False)
    sign_tier: np.ndarray = field(init=False)
    serious: np.ndarray = field(init=False)
    answered_no: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.X = encode(self.frame)
        self.y = self.frame["cause"].cat.codes.to_numpy().astype(np.int64)
        self.red = self.frame["red_flag"].to_numpy().astype(np.int64)
        self.fired = np.asarray(any_red_flag(self.frame), dtype=bool)  # reported signs
        # the tier reported signs set by rule (emergency, urgent or routine), before any model
        tiers = urgency(self.frame)
        assert isinstance(tiers, pd.Series)
        self.sign_tier = tiers.cat.codes.to_numpy().astype(np.int64)
        self.serious = self.frame["serious_condition"].cat.codes.to_numpy().astype(np.int64)
        no = [self.frame[f].eq(False).fillna(False).to_numpy(dtype=bool) for f in RED_FLAG_FIELDS]
        self.answered_no = np.asarray(np.column_stack(no).all(axis=1))

    @cached_property
    def exact_posterior(self) -> pd.DataFrame:
        """The generator's exact posterior on this split's answers (the causes and
        ``red_flag``), computed once: the Bayes ceiling's predictions, and the ground truth
        DDXPlus's differential metrics compare against."""
        return posterior(self.frame)


CEILING = "bayes_posterior"
"""The candidate that is the ceiling: the generator's exact posterior."""
CHAMPION_ELIGIBLE = ("hist_gradient_boosting", "lightgbm")
"""The candidates that can be champion: tree ensembles, whose attributions are exact TreeSHAP."""


Computed = TypeVar("Computed")


class PerSplit(Generic[Computed]):
    """``predict``, computed once per split: a run asks for the same split's predictions from
    several sections, and a 2,000-round booster takes seconds on 100,000 rows.

    The split is kept with its predictions so that its ``id`` is never reused while cached;
    :meth:`remember` stores what was computed elsewhere (the calibration's validation scores).
    """

    def __init__(self, predict: Callable[[Split], Computed]) -> None:
        self._predict = predict
        self._computed: dict[int, tuple[Split, Computed]] = {}

    def __call__(self, split: Split) -> Computed:
        if id(split) not in self._computed:
            self.remember(split, self._predict(split))
        return self._computed[id(split)][1]

    def remember(self, split: Split, value: Computed) -> None:
        """Use ``value`` as this split's predictions (they must be what ``predict`` gives)."""
        self._computed[id(split)] = (split, value)


@dataclass
class Fitted:
    """A fitted candidate: how it predicts, what it is, how long fitting took.

    ``predict_cause`` and ``predict_red_flag`` are computed once per split (:class:`PerSplit`).
    """

    name: str
    params: dict[str, Any]
    predict_cause: Any  # Split -> (n, 7)
    predict_red_flag: Any  # Split -> (n,)
    fit_seconds: float = 0.0
    deployable: bool = True
    triage: TriageModel | None = None  # set for champion-eligible candidates
    field_importance: Any = None  # Split -> mean |SHAP| per field, for non-tree candidates
    fit_serious: Callable[[], Any] | None = None  # the serious-type fit a fit left for later

    def __post_init__(self) -> None:
        self.predict_cause = PerSplit(self.predict_cause)
        self.predict_red_flag = PerSplit(self.predict_red_flag)

    def add_serious_types(self) -> float:
        """Fit the serious-type models a ``serious=False`` fit left for later (only the champion
        needs them), once; return the seconds it took."""
        if self.triage is None or self.triage.serious is not None or self.fit_serious is None:
            return 0.0
        start = time.perf_counter()
        self.triage.serious = self.fit_serious()
        return time.perf_counter() - start


# -- the article's rules, no learning ---------------------------------------------------------


def fit_article_rules(train: Split, val: Split, seed: int) -> Fitted:
    start = time.perf_counter()
    # Without a reported sign the rules say 0.5%: below any review threshold served (K < 199),
    # so the article's policy is the reported signs alone.
    rules = ArticleRulesClassifier(red_flag_fired_proba=0.5, red_flag_baseline_proba=0.005)
    rules.fit(train.frame, train.frame["cause"])
    return Fitted(
        "article_rules",
        {"model": "ArticleRulesClassifier", "learned": False},
        lambda s: rules.predict_proba(s.frame),
        lambda s: rules.red_flag_proba(s.frame),
        time.perf_counter() - start,
    )


# -- linear baseline ----------------------------------------------------------------------------


def _linear(seed: int, C: float) -> Any:
    # Unknown answers: impute 0 and add an indicator, so "unknown" is its own level.
    return make_pipeline(
        SimpleImputer(strategy="constant", fill_value=0.0, add_indicator=True),
        StandardScaler(),
        LogisticRegression(C=C, max_iter=500, random_state=seed),
    )


def fit_logistic(train: Split, val: Split, seed: int) -> Fitted:
    start = time.perf_counter()
    C = 1.0
    params = {"model": "LogisticRegression", "C": C, "missing": "indicators", "one_hot": True}
    cause = _linear(seed, C).fit(train.X, train.y)
    red = _linear(seed, C).fit(train.X, train.red)
    cal = fit_temperature(cause.decision_function(val.X), val.y)
    red_cal = fit_platt(red.decision_function(val.X), val.red)
    return Fitted(
        "logistic_regression",
        params | {"temperature": 1 / cal.scale},
        lambda s: to_proba(cal.apply(cause.decision_function(s.X))),
        lambda s: to_proba(red_cal.apply(red.decision_function(s.X)[:, None])),
        time.perf_counter() - start,
        field_importance=lambda s: _linear_importance(cause, s.X) * cal.scale,
    )


def _linear_importance(pipeline: Any, X: np.ndarray) -> np.ndarray:
    """Mean |SHAP| per field of a linear model: exact, ``coef * (z - mean z)`` per input column.

    The scaler centres every transformed column on the training mean, so ``coef * z`` is the
    exact SHAP value (independent inputs); indicator columns count towards their field.
    """
    imputer, _, linear = pipeline.named_steps.values()
    Z = pipeline[:-1].transform(X)
    k = linear.decision_function(Z).argmax(axis=1)
    contrib = Z * linear.coef_[k]  # (n, transformed columns), for the predicted cause
    source = np.concatenate([np.arange(X.shape[1]), imputer.indicator_.features_])
    per_column = np.zeros((len(X), X.shape[1]))
    np.add.at(per_column.T, source, contrib.T)
    return np.abs(to_fields(per_column)).mean(axis=0)


# -- gradient boosting --------------------------------------------------------------------------

# Small trees, many rounds: the generator's log-posterior is close to additive in the answers
# (a naive-Bayes core with a few latent interactions), and on 300k cases trees of 4-7 leaves came
# within 2.5-3% of the Bayes log-loss where 31 leaves stayed 5% away (measured; see README).
HGB_PARAMS = {
    "learning_rate": 0.25,
    "max_iter": 800,
    "max_leaf_nodes": 5,
    "min_samples_leaf": 200,
    "l2_regularization": 10.0,
    "early_stopping": True,
    "validation_fraction": 0.1,
    "n_iter_no_change": 20,
}

# Tuned on the current generator (300k training cases, seed 7, test log-loss / Bayes): learning
# rate 0.15 with 5 leaves 1.032, 0.08 with 5 leaves 1.030, 0.08 with 7 leaves 1.035, 0.05 with
# 4 leaves and 100 cases per leaf 1.025 (about 2,000 rounds). These are the binary models'
# (red flag, serious types); the cause model's overrides follow.
LGBM_PARAMS = {
    "learning_rate": 0.05,
    "num_leaves": 4,
    "min_data_in_leaf": 100,
    "lambda_l2": 10.0,
    "feature_fraction": 1.0,
    "max_rounds": 8000,
    "early_stopping_rounds": 50,
}

# The cause model grows each tree on a random half of the cases (bagging): measured on 300k
# cases (data seed 5, 100k test cases, stopping as below, two threads), rate 0.05 on every case
# ran 1,275 rounds in 134 s for a test log-loss 1.0292x Bayes and a 0.29-point accuracy gap;
# half the cases per tree, 1,144 rounds, 99 s, 1.0271x, 0.23 points; with rate 0.08, 715 rounds,
# 54 s, 1.0285x, 0.19 points; with rate 0.12, 587 rounds, 43 s, 1.0275x, 0.22 points (a third
# of the time, and of the trees to predict with). A third of the cases per tree was worse
# (1.0318x), and LightGBM's gradient-based sampling (GOSS) too (1.0300x).
LGBM_CAUSE_PARAMS = LGBM_PARAMS | {
    "learning_rate": 0.12,
    "bagging_fraction": 0.5,
    "bagging_freq": 1,
}

# The cause model stops once 50 rounds have not lowered the validation log-loss by 1e-4: measured
# on 300k cases (seed 7, 100k test cases, rate 0.05 on every case), plain early stopping ran
# 2,002 rounds for a test log-loss 1.0242x Bayes and a 0.19-point accuracy gap; min_delta 1e-4
# stops at 1,288 rounds (36% fewer, and as many fewer trees to predict with) for 1.0264x and 0.23
# points; 2e-4 stops at 1,158 for 1.0283x. The binary models keep plain early stopping: their
# log-loss on rare conditions is a hundred times smaller, where 1e-4 would stop them almost at
# once.
CAUSE_MIN_DELTA = 1e-4


def _calibrated_triage(
    name: str,
    cause: Scorer,
    red: Scorer,
    train: Split,
    val: Split,
    params: dict[str, Any],
    fit_binary: Any,
    serious: bool,
) -> tuple[TriageModel, tuple[np.ndarray, np.ndarray], Callable[[], Any]]:
    """Calibrate the cause and red-flag scorers on ``val``; add the serious-type model, fitted
    in the same family (``fit_binary``, see :data:`training.serious.FitBinary`), unless
    ``serious`` is false.

    Returns the model, its calibrated probabilities on ``val`` (cause, red flag), which
    calibrating computed on the way, and the serious-type fit (for a model without them)."""
    cause_raw, red_raw = cause.raw(val.X), red.raw(val.X)
    cause.calibration = fit_temperature(cause_raw, val.y)
    red.calibration = fit_platt(red_raw, val.red)

    def fit_serious() -> Any:
        return fit_serious_types(fit_binary, train.X, train.serious, val.X, val.serious)

    meta = {"name": MODEL_NAME, "candidate": name, "params": params}
    val_proba = (
        to_proba(cause.calibration.apply(cause_raw)),
        to_proba(red.calibration.apply(red_raw)),
    )
    triage = TriageModel(cause, red, meta, fit_serious() if serious else None)
    return triage, val_proba, fit_serious


def _fitted_tree(
    name: str,
    triage: TriageModel,
    params: dict,
    seconds: float,
    val: Split,
    val_proba: tuple[np.ndarray, np.ndarray],
    fit_serious: Callable[[], Any],
) -> Fitted:
    cal = triage.cause.calibration.scale
    fitted = Fitted(
        name,
        params | {"temperature": 1 / cal, "red_flag_platt": triage.red_flag.calibration.__dict__},
        lambda s: triage.cause.proba(s.X),
        lambda s: triage.red_flag.proba(s.X),
        seconds,
        triage=triage,
        fit_serious=fit_serious,
    )
    fitted.predict_cause.remember(val, val_proba[0])
    fitted.predict_red_flag.remember(val, val_proba[1])
    return fitted


def _hgb(seed: int, **extra: Any) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(**HGB_PARAMS, **extra, random_state=seed)


def fit_hgb(train: Split, val: Split, seed: int, *, serious: bool = True) -> Fitted:
    """HistGradientBoosting for the cause, the red flag and (``serious``) the serious types."""
    start = time.perf_counter()

    def binary(X: np.ndarray, y: np.ndarray, val_X, val_y, monotone: list[int]) -> Scorer:
        return Scorer("hgb", _hgb(seed, monotonic_cst=monotone).fit(X, y), 2)

    cause = _cause_scorer("hist_gradient_boosting", train, val, seed)
    red_model = _hgb(seed, monotonic_cst=list(any_serious_constraints())).fit(train.X, train.red)
    red = Scorer("hgb", red_model, 2)
    params = {"model": "HistGradientBoostingClassifier", **HGB_PARAMS}
    params |= {"cause_tol": CAUSE_MIN_DELTA}
    params |= {"n_iter_cause": cause.estimator.n_iter_, "n_iter_red_flag": red.estimator.n_iter_}
    triage, val_proba, later = _calibrated_triage(
        "hist_gradient_boosting", cause, red, train, val, params, binary, serious
    )
    seconds = time.perf_counter() - start
    return _fitted_tree("hist_gradient_boosting", triage, params, seconds, val, val_proba, later)


def _lgbm(
    X: np.ndarray,
    y: np.ndarray,
    val_X,
    val_y,
    n_classes: int,
    seed: int,
    monotone: list[int] | None = None,
    label: str = "lightgbm",
):
    p: dict[str, Any] = dict(LGBM_CAUSE_PARAMS if n_classes > 2 else LGBM_PARAMS)
    if monotone is not None:
        p["monotone_constraints"] = monotone
    rounds, patience = int(p.pop("max_rounds")), int(p.pop("early_stopping_rounds"))
    objective = (
        {"objective": "multiclass", "num_class": n_classes}
        if n_classes > 2
        else {"objective": "binary"}
    )
    params = p | objective | {"seed": seed, "num_threads": N_THREADS, "verbosity": -1}
    return lightgbm.train(
        params,
        lightgbm.Dataset(X, y),
        num_boost_round=rounds,
        valid_sets=[lightgbm.Dataset(val_X, val_y)],
        callbacks=[
            lightgbm.early_stopping(
                patience, verbose=False, min_delta=CAUSE_MIN_DELTA if n_classes > 2 else 0.0
            ),
            boosting_progress(label, rounds),
        ],
    )


def fit_lightgbm(train: Split, val: Split, seed: int, *, serious: bool = True) -> Fitted:
    """LightGBM for the cause, the red flag and (``serious``) the serious types."""
    start = time.perf_counter()
    cause = _cause_scorer("lightgbm", train, val, seed)
    cause_booster = cause.estimator
    red_booster = _lgbm(
        train.X,
        train.red,
        val.X,
        val.red,
        2,
        seed,
        list(any_serious_constraints()),
        label="lightgbm red flag",
    )
    red = Scorer("lightgbm", red_booster, 2)
    params = {"model": "lightgbm.train", **LGBM_PARAMS, "cause_min_delta": CAUSE_MIN_DELTA}
    params |= {f"cause_{k}": v for k, v in LGBM_CAUSE_PARAMS.items() if LGBM_PARAMS.get(k) != v}
    params |= {
        "rounds_cause": cause_booster.best_iteration,
        "rounds_red_flag": red_booster.best_iteration,
    }

    def binary(X: np.ndarray, y: np.ndarray, val_X, val_y, monotone: list[int]) -> Scorer:
        booster = _lgbm(X, y, val_X, val_y, 2, seed, monotone, label="lightgbm serious type")
        return Scorer("lightgbm", booster, 2)

    triage, val_proba, later = _calibrated_triage(
        "lightgbm", cause, red, train, val, params, binary, serious
    )
    seconds = time.perf_counter() - start
    return _fitted_tree("lightgbm", triage, params, seconds, val, val_proba, later)


def _cause_scorer(name: str, train: Split, val: Split, seed: int) -> Scorer:
    """Candidate ``name``'s cause model, fitted and not yet calibrated."""
    if name == "lightgbm":
        booster = _lgbm(train.X, train.y, val.X, val.y, len(CAUSES), seed, label="lightgbm cause")
        return Scorer("lightgbm", booster, len(CAUSES))
    if name == "hist_gradient_boosting":
        # stopped as LightGBM's cause model is (CAUSE_MIN_DELTA): measured on 300k cases (data
        # seed 5), 226 iterations in 47 s for 1.0391x the Bayes log-loss, where tol 1e-7 ran
        # 292 in 57 s for 1.0371x
        estimator = _hgb(seed, tol=CAUSE_MIN_DELTA).fit(train.X, train.y)
        return Scorer("hgb", estimator, len(CAUSES))
    raise ValueError(f"name: {name!r} has no cause model to refit; allowed: {CHAMPION_ELIGIBLE}")


def fit_cause_only(
    name: str, train: Split, val: Split, seed: int
) -> Callable[[np.ndarray], np.ndarray]:
    """Candidate ``name``'s cause model alone, fitted and calibrated as in the full candidate.

    The learning curve needs only the cause probabilities at each training size; the full
    candidate also fits the red-flag and four serious-type models, which it never reads.

    Returns
    -------
    callable
        ``X -> (n, causes)`` probabilities, equal to ``CANDIDATES[name](train, val, seed)
        .triage.cause.proba(X)``.
    """
    cause = _cause_scorer(name, train, val, seed)
    cause.calibration = fit_temperature(cause.raw(val.X), val.y)
    return cause.proba


# -- the ceiling --------------------------------------------------------------------------------


def fit_bayes_posterior(train: Split, val: Split, seed: int) -> Fitted:
    """The generator's exact posterior: the ceiling. Not deployable: it knows the generator."""
    return Fitted(
        "bayes_posterior",
        {"model": "vignettes.posterior", "learned": False},
        lambda s: s.exact_posterior[list(CAUSES)].to_numpy(),
        lambda s: s.exact_posterior["red_flag"].to_numpy(),
        0.0,
        deployable=False,
    )


CANDIDATES = {
    "article_rules": fit_article_rules,
    "logistic_regression": fit_logistic,
    "hist_gradient_boosting": fit_hgb,
    "lightgbm": fit_lightgbm,
    "bayes_posterior": fit_bayes_posterior,
}
"""Every candidate, in the order they are trained and shown."""

__all__ = ["CANDIDATES", "CEILING", "CHAMPION_ELIGIBLE", "Fitted", "Split", "fit_cause_only"]
