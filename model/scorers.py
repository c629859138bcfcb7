"""Fitted boosted trees as calibrated scorers with exact TreeSHAP attributions.

A :class:`Scorer` wraps one fitted tree ensemble (scikit-learn ``HistGradientBoostingClassifier``
or a LightGBM booster) and gives, in one place, its raw scores, its calibrated probabilities and
its exact per-column contributions. Calibration is a monotone map on the raw score (temperature
for the cause, Platt's ``a * score + b`` for the red flag), so the calibrated score is still a sum
of exact TreeSHAP contributions: contributions are scaled by the same factor.

Attributions come from exact TreeSHAP tables (:mod:`model.shap_tables`) when the trees are small
enough - checked against the library when they are built - and from the library itself
(LightGBM's ``pred_contrib``, ``shap.TreeExplainer``) otherwise.

Fitted estimators are saved in safe formats, never pickles: scikit-learn models with ``skops``
(loaded with an explicit allow-list of types), LightGBM boosters as their own text format. A
scorer is read from bytes already checked against the bundle's SHA-256 manifest
(:func:`model.integrity.read_verified`), so no library parses a damaged file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import expit

from model.shap_tables import ShapTables, compile_tables

SKOPS_TRUSTED_TYPES = frozenset(
    {"sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"}
)
"""The types a skops file may hold beyond those skops trusts by itself (its plain containers,
NumPy arrays and scikit-learn estimators): exactly what a fitted
``HistGradientBoostingClassifier`` needs. Anything else (``builtins.eval``, ``builtins.exec``,
any other function or class) is refused before the file is loaded."""
ROWS_PER_CHUNK = 2048
"""Most rows explained at a time from the tables."""
ROW_TREES_PER_CHUNK = 2_000_000
"""Row x tree cells explained at a time: the tables' working arrays take about 50 bytes per cell,
so a chunk stays near 100 MB however many trees the model has (a champion of 2,000 rounds over
seven causes has 14,000 trees: 142 rows a chunk)."""
TABLE_SCORE_ROWS = 64
"""Up to this many rows, a scorer whose TreeSHAP tables are built scores from their leaf values
(exact: the tables were checked against the library when built) instead of calling the library,
whose fixed cost per call is larger than the lookups for a few rows (measured: 1 row in 16 us
instead of 50 us for a 4-leaf LightGBM booster of 400 trees; 128 rows still in 0.4 ms instead
of 0.75). Larger batches go to the library, which uses every core."""

_NOT_BUILT = object()


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
    _tables: Any = field(default=_NOT_BUILT, repr=False)
    _rescaled: tuple[tuple[float, float], ShapTables] | None = field(default=None, repr=False)

    @property
    def n_scores(self) -> int:
        return 1 if self.n_classes == 2 else self.n_classes

    def raw(self, X: np.ndarray) -> np.ndarray:
        """Uncalibrated scores, shape ``(n, n_scores)``."""
        if isinstance(self._tables, ShapTables) and 0 < len(X) <= TABLE_SCORE_ROWS:
            return self._tables.score(X)
        return self.library_raw(X)

    def library_raw(self, X: np.ndarray) -> np.ndarray:
        """:meth:`raw` from the fitting library itself, never from the tables (the reference
        the tables are checked against)."""
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

    @property
    def n_features(self) -> int:
        if self.kind == "hgb":
            return int(self.estimator.n_features_in_)
        return int(self.estimator.num_feature())

    def shap_tables(self) -> ShapTables | None:
        """Exact TreeSHAP lookup tables, built and checked on first use; ``None`` if unavailable.

        See :func:`model.shap_tables.compile_tables`: ``None`` for trees too large to tabulate
        or with categorical splits, and (with a warning) if the tables disagree with the
        library. Not thread-safe on the first call: build before sharing (``serve.load`` does).
        """
        if self._tables is _NOT_BUILT:
            tables = compile_tables(self.kind, self.estimator, self.n_features)
            # e.g. a 2-class model fitted with a multiclass objective: two scores, not one
            self._tables = tables if tables is None or tables.n_scores == self.n_scores else None
        return self._tables

    def use_tables(self, tables: ShapTables) -> None:
        """Use tables that :meth:`shap_tables` built and checked before for this very estimator
        (e.g. kept beside a local copy of the model), instead of building them again."""
        if tables.n_features != self.n_features or tables.n_scores != self.n_scores:
            raise ValueError("tables: built for another model (features or scores differ)")
        self._tables, self._rescaled = tables, None

    def score_and_explain(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Calibrated scores, and the exact TreeSHAP of each row's highest score.

        For the cause, the highest score is the predicted class; a binary scorer has one score.

        Returns
        -------
        score : ndarray of shape (n, n_scores)
            As :meth:`score`.
        values : ndarray of shape (n, n_features)
            Contributions to the row's highest calibrated score.
        base : ndarray of shape (n,)
            Its base value: ``values.sum(1) + base == score.max(1)``.
        """
        tables = self._calibrated_tables()
        if tables is None:
            score = self.score(X)
            top = score.argmax(axis=1)
            values, base = self.contributions(X)
            return score, values[np.arange(len(X)), :, top], base[top]
        rows = max(1, min(ROWS_PER_CHUNK, ROW_TREES_PER_CHUNK // tables.slot_feature.shape[0]))
        if len(X) <= rows:
            return self._explain_from(tables, X)
        chunks = range(0, len(X), rows)
        parts = [self._explain_from(tables, X[i : i + rows]) for i in chunks]
        score, values, base = (np.concatenate(p) for p in zip(*parts, strict=True))
        return score, values, base

    def _calibrated_tables(self) -> ShapTables | None:
        """:meth:`shap_tables` rescaled by the current calibration (rebuilt if it changes)."""
        tables = self.shap_tables()
        if tables is None:
            return None
        key = (self.calibration.scale, self.calibration.shift)
        cached = self._rescaled
        if cached is None or cached[0] != key:
            cached = self._rescaled = (key, tables.rescaled(*key))
        return cached[1]

    @staticmethod
    def _explain_from(
        tables: ShapTables, X: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        leaves = tables.leaves(X)
        score = tables.score(X, leaves)
        top = score.argmax(axis=1)
        return score, tables.contributions(X, top, leaves), tables.base[top]

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
        """Read a scorer written by :meth:`save` (its files are read and parsed as they are;
        :meth:`from_files` is the checked route :meth:`TriageModel.load` takes)."""
        directory = Path(directory)
        files = {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file()}
        return cls.from_files(files, str(directory))

    @classmethod
    def from_files(cls, files: Mapping[str, bytes], where: str) -> Scorer:
        """A scorer from the bytes of its files (``scorer.json`` and the estimator file).

        Parameters
        ----------
        files : mapping
            File name -> bytes, already checked against the bundle manifest.
        where : str
            The scorer's folder, for messages.

        Raises
        ------
        ValueError
            Naming the file: an unknown kind, a missing key, or a skops file holding a type
            outside :data:`SKOPS_TRUSTED_TYPES`.
        """
        try:
            meta = json.loads(files["scorer.json"])
            kind, n_classes = meta["kind"], int(meta["n_classes"])
            calibration = Calibration(float(meta["scale"]), float(meta["shift"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                f"{where}/scorer.json: unreadable ({type(exc).__name__}: {exc})"
            ) from None
        file = {"hgb": "estimator.skops", "lightgbm": "estimator.txt"}.get(kind)
        if file is None:
            raise ValueError(f"{where}/scorer.json: kind must be 'hgb' or 'lightgbm', got {kind!r}")
        if file not in files:
            raise ValueError(f"{where}/{file}: missing (scorer.json says kind {kind!r})")
        if kind == "hgb":
            estimator = _load_skops(files[file], f"{where}/{file}")
        else:
            import lightgbm

            estimator = lightgbm.Booster(model_str=files[file].decode())
        return cls(kind, estimator, n_classes, calibration)


def _threads(n_rows: int) -> int:
    """One thread for small inputs: waking a thread pool costs more than a few rows of trees."""
    return 1 if n_rows < 1000 else 0  # 0: LightGBM's default (all cores)


def to_proba(score: np.ndarray) -> np.ndarray:
    """Softmax over cause scores, or the sigmoid of a single red-flag score."""
    if score.shape[1] == 1:
        return expit(score[:, 0])
    # scipy.special.softmax's own steps, without its per-call overhead (one case is ~10 us)
    shifted = np.exp(score - score.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _load_skops(data: bytes, where: str) -> Any:
    """A scikit-learn estimator from skops bytes, refusing any type not trusted here."""
    import skops.io

    untrusted = skops.io.get_untrusted_types(data=data)
    unexpected = sorted(set(untrusted) - SKOPS_TRUSTED_TYPES)
    if unexpected:
        raise ValueError(f"{where}: refusing to load unexpected types {unexpected}")
    return skops.io.loads(data, trusted=untrusted)
