"""Exact TreeSHAP for small trees by table lookup: a fast path for one case at a time.

Path-dependent TreeSHAP (the algorithm of ``shap.TreeExplainer`` and of LightGBM's
``pred_contrib``) explains a tree through the value function ``v(S) = E[f(x) | x_S]``: follow
``x`` at nodes that split on a feature in ``S``, and average the two children by training cover
elsewhere. For one tree, ``v(S)`` - and so every Shapley value - depends on ``x`` only through the
direction ``x`` takes at each internal node. The champion's trees have at most 4 internal nodes,
so each tree has at most 16 direction patterns; this module precomputes, once per model, the leaf
value and the Shapley value of every feature of every tree for every pattern. Explaining a case
is then a few NumPy gathers and sums over the trees (no per-tree Python, no library call), which
makes one-case prediction with attributions cost about as much as a bare ``predict_proba``.

The tables are exact - the same Shapley values, up to floating-point summation order - because
they reproduce each library's decision rule (LightGBM's missing types and its zero band, exact
thresholds from the model text; scikit-learn's ``missing_go_to_left``) and the TreeSHAP value
function. :func:`compile_tables` checks this on every build: it compares raw scores and
contributions with the library's own (``Booster.predict(pred_contrib=True)`` or
``shap.TreeExplainer``) on probe rows that take both sides of every split, NaN and extreme values,
and returns ``None`` (callers then use the library) when trees are too large for tables, use
categorical or linear splits, cannot be read, or disagree by more than :data:`TOLERANCE`.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from math import factorial
from typing import Any

import numpy as np

MAX_INTERNAL_NODES = 6
"""Largest tree tabulated: ``2**6`` patterns per tree. Larger trees fall back to the library."""
TOLERANCE = 1e-9
"""Largest absolute difference from the library accepted by :func:`compile_tables`."""
_ZERO = float(np.float32(1e-35))  # LightGBM kZeroThreshold (1e-35f): |x| <= this is "zero"
_EXTREMES = np.array([np.inf, -np.inf, 1.7e308, -1.7e308, 1e301, -1e301, 1e-40, -1e-40])
_BUILD_CELLS = 2**22  # cells per step when building tables (bounds the build's memory)


# --------------------------------------------------------------------------------------------
# One tree, read from either library
# --------------------------------------------------------------------------------------------


@dataclass
class _Tree:
    """One tree as flat node arrays (internal nodes first, then leaves)."""

    feature: list[int]  # per internal node: column index
    threshold: list[float]  # per internal node: x <= threshold goes left
    nan_left: list[bool]  # per internal node: where NaN goes
    zero_left: list[bool | None]  # per internal node: where |x| <= 1e-35 goes (None: compare)
    children: list[tuple[int, int]]  # per internal node: (left, right) in the combined numbering
    cover: list[float]  # per node (internal, then leaves): training cover
    leaf_value: list[float]  # per leaf


class UnsupportedTreeError(ValueError):
    """A tree the tables cannot represent (categorical split or too many nodes)."""


def _lightgbm_trees(booster: Any) -> tuple[list[_Tree], int, np.ndarray]:
    """Trees of a LightGBM booster (best iteration), class count and per-class offset (zero)."""
    dump, text = booster.dump_model(), booster.model_to_string()
    if "\nis_linear=1" in text:  # leaves are linear models, not constants
        raise UnsupportedTreeError("linear trees")
    n_scores = int(dump.get("num_tree_per_iteration", 1))
    thresholds = _text_thresholds(text)
    if len(thresholds) != len(dump["tree_info"]):
        raise UnsupportedTreeError("model text and dump disagree on the number of trees")
    trees = [
        _lightgbm_tree(info["tree_structure"], exact)
        for info, exact in zip(dump["tree_info"], thresholds, strict=True)
    ]
    return trees, n_scores, np.zeros(n_scores)


def _text_thresholds(text: str) -> list[list[float]]:
    """Each tree's split thresholds by split index, read from LightGBM's model text.

    ``dump_model`` clips thresholds to +-1e300 (JSON has no infinity); the text keeps the exact
    doubles (``inf`` included), which the decisions need.
    """
    trees: list[list[float]] = []
    for line in text.splitlines():
        if line.startswith("Tree="):
            trees.append([])
        elif line.startswith("threshold=") and trees:
            trees[-1] = [float(value) for value in line.split("=", 1)[1].split()]
        elif line.startswith("end of trees"):
            break
    return trees


def _lightgbm_tree(root: dict[str, Any], exact_thresholds: list[float]) -> _Tree:
    internal: list[dict[str, Any]] = []
    leaves: list[dict[str, Any]] = []

    def visit(node: dict[str, Any]) -> int:
        if "leaf_value" in node:
            leaves.append(node)
            return -len(leaves)  # leaves numbered -1, -2, ... until internal nodes are counted
        if node.get("decision_type", "<=") != "<=":
            raise UnsupportedTreeError("categorical split")
        internal.append(node)
        index = len(internal) - 1
        node["_children"] = (visit(node["left_child"]), visit(node["right_child"]))
        return index

    visit(root)
    n = len(internal)

    def number(i: int) -> int:
        return i if i >= 0 else n + (-i - 1)

    tree = _Tree([], [], [], [], [], [], [])
    for node in internal:
        missing, default_left = node.get("missing_type", "None"), bool(node["default_left"])
        threshold = _lightgbm_threshold(exact_thresholds[int(node["split_index"])])
        # LightGBM: NaN is 0 unless missing_type is NaN; "zero" goes the default way if Zero.
        zero_left: bool | None = default_left if missing == "Zero" else None
        if missing == "NaN":
            nan_left = default_left
        else:
            nan_left = default_left if missing == "Zero" else threshold >= 0.0  # NaN read as 0
        tree.feature.append(int(node["split_feature"]))
        tree.threshold.append(threshold)
        tree.nan_left.append(nan_left)
        tree.zero_left.append(zero_left)
        tree.children.append((number(node["_children"][0]), number(node["_children"][1])))
        tree.cover.append(float(node["internal_count"]))
    tree.cover += [float(leaf.get("leaf_count", 1.0)) for leaf in leaves]
    tree.leaf_value = [float(leaf["leaf_value"]) for leaf in leaves]
    return tree


def _lightgbm_threshold(threshold: float) -> float:
    """A threshold that gives LightGBM's decisions with a plain ``x <= threshold``.

    LightGBM's predictor reads any ``|x| <= 1e-35f`` as exactly 0 before comparing; moving a
    threshold that falls inside that band to the band's edge makes the plain comparison agree
    for every ``x``.
    """
    if -_ZERO <= threshold < 0.0:
        return float(np.nextafter(-_ZERO, -np.inf))  # read as 0 > threshold: the band goes right
    if 0.0 <= threshold < _ZERO:
        return _ZERO  # read as 0 <= threshold: the band goes left
    return threshold


def _hgb_trees(estimator: Any) -> tuple[list[_Tree], int, np.ndarray]:
    """Trees of a fitted ``HistGradientBoostingClassifier``, class count and baseline."""
    trees = [_hgb_tree(p.nodes) for iteration in estimator._predictors for p in iteration]
    n_scores = len(estimator._predictors[0])
    return trees, n_scores, np.asarray(estimator._baseline_prediction, dtype=float).ravel()


def _hgb_tree(nodes: np.ndarray) -> _Tree:
    if nodes["is_categorical"].any():
        raise UnsupportedTreeError("categorical split")
    internal = np.flatnonzero(~nodes["is_leaf"].astype(bool))
    leaves = np.flatnonzero(nodes["is_leaf"].astype(bool))
    number = np.empty(len(nodes), dtype=np.int64)
    number[internal] = np.arange(len(internal))
    number[leaves] = len(internal) + np.arange(len(leaves))
    node = nodes[internal]
    return _Tree(
        feature=node["feature_idx"].astype(int).tolist(),
        threshold=node["num_threshold"].astype(float).tolist(),
        nan_left=node["missing_go_to_left"].astype(bool).tolist(),
        zero_left=[None] * len(internal),
        children=list(
            zip(number[node["left"]].tolist(), number[node["right"]].tolist(), strict=True)
        ),
        cover=nodes["count"][np.r_[internal, leaves]].astype(float).tolist(),
        leaf_value=nodes["value"][leaves].astype(float).tolist(),
    )


# --------------------------------------------------------------------------------------------
# Paths and tables
# --------------------------------------------------------------------------------------------


@dataclass
class _Paths:
    """Root-to-leaf paths of every tree, padded to a common shape.

    Shapes: trees T, leaves L = N + 1, path steps D = N (N = most internal nodes of any tree).
    """

    node: np.ndarray  # (T, L, D) internal node at each step (0 for padding)
    right: np.ndarray  # (T, L, D) 1 if the path goes right there
    slot: np.ndarray  # (T, L, D) the node's feature slot (its distinct-feature index), -1 pad
    ratio: np.ndarray  # (T, L, D) cover(child) / cover(node); 1 for padding
    value: np.ndarray  # (T, L) leaf values; 0 for padding leaves
    slot_feature: np.ndarray  # (T, N) column of each slot; -1 for unused slots


def _paths(trees: list[_Tree], n_nodes: int) -> _Paths:
    T, L, D = len(trees), n_nodes + 1, max(n_nodes, 1)
    p = _Paths(
        node=np.zeros((T, L, D), dtype=np.int64),
        right=np.zeros((T, L, D), dtype=np.int64),
        slot=np.full((T, L, D), -1, dtype=np.int64),
        ratio=np.ones((T, L, D)),
        value=np.zeros((T, L)),
        slot_feature=np.full((T, max(n_nodes, 1)), -1, dtype=np.int64),
    )
    for t, tree in enumerate(trees):
        features = list(dict.fromkeys(tree.feature))  # distinct, in node order
        p.slot_feature[t, : len(features)] = features
        n = len(tree.feature)
        p.value[t, : len(tree.leaf_value)] = tree.leaf_value
        stack: list[tuple[int, list[tuple[int, int, float]]]] = [(0, [])] if n else []
        while stack:
            at, path = stack.pop()
            for direction, child in enumerate(tree.children[at]):
                step = [*path, (at, direction, tree.cover[child] / tree.cover[at])]
                if child < n:
                    stack.append((child, step))
                    continue
                leaf = child - n
                for d, (node, go_right, ratio) in enumerate(step):
                    p.node[t, leaf, d], p.right[t, leaf, d] = node, go_right
                    p.slot[t, leaf, d] = features.index(tree.feature[node])
                    p.ratio[t, leaf, d] = ratio
    return p


def _shapley_weights(k: int) -> np.ndarray:
    """``|S|! (k - |S| - 1)! / k!`` for each subset size, the Shapley weight of a coalition."""
    return np.array([factorial(s) * factorial(k - s - 1) / factorial(k) for s in range(k)])


def _tables(p: _Paths, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Leaf value and Shapley values of every slot, for every tree and direction pattern.

    Returns
    -------
    value : ndarray of shape (T, 2**N)
    phi : ndarray of shape (T, 2**N, N)
    """
    N = max(n_nodes, 1)
    patterns, subsets = np.arange(2**N), np.arange(2**N)
    bit = (patterns[:, None] >> np.arange(N)[None, :]) & 1  # (B, N): direction at each node
    member = (subsets[:, None] >> np.arange(N)[None, :]) & 1  # (S, N): slot in coalition
    size = member.sum(axis=1)
    weights = _shapley_weights(N)
    T = len(p.value)
    value, phi = np.empty((T, 2**N)), np.empty((T, 2**N, N))
    per_tree = p.node.shape[1] * p.node.shape[2] * 4**N
    n_chunk = max(1, _BUILD_CELLS // per_tree)
    for lo in range(0, T, n_chunk):
        chunk = slice(lo, lo + n_chunk)
        node, right, slot, ratio = p.node[chunk], p.right[chunk], p.slot[chunk], p.ratio[chunk]
        # follows[t, l, d, b]: pattern b goes the path's way at step d
        follows = bit[:, node].transpose(1, 2, 3, 0) == right[..., None]
        # known[t, l, d, s]: the step's feature is in coalition s (padding never is)
        known = member[:, np.maximum(slot, 0)].transpose(1, 2, 3, 0).astype(bool)
        known &= (slot >= 0)[..., None]
        # weight of each step: the indicator when its feature is in S, else the cover ratio
        step = np.where(
            known[..., None, :], follows[..., :, None], ratio[..., None, None]
        )  # (t, l, d, B, S)
        v = np.einsum("tl,tlbs->tbs", p.value[chunk], step.prod(axis=2))  # (t, B, S)
        value[chunk] = v[:, :, -1]  # every feature known: the tree's prediction
        for k in range(N):
            without = subsets[member[:, k] == 0]
            gain = v[:, :, without | (1 << k)] - v[:, :, without]
            phi[chunk, :, k] = gain @ weights[size[without]]
    return value, phi


# --------------------------------------------------------------------------------------------
# The tables of one ensemble
# --------------------------------------------------------------------------------------------


@dataclass
class ShapTables:
    """Precomputed predictions and exact TreeSHAP values of a small-tree ensemble.

    Build with :func:`compile_tables`. Trees are in the library's order: tree ``t`` adds to score
    ``t % n_scores`` (one tree per score per boosting iteration, in both libraries). Node arrays
    are node-major (all trees' first node, then all second nodes, ...), so a row's direction
    pattern in every tree is one weighted sum over the node axis.

    Attributes
    ----------
    n_features : int
    n_scores : int
        Score columns: 1 (binary) or the number of classes.
    offset : ndarray of shape (n_scores,)
        Added to the sum of the trees (scikit-learn's baseline; zero for LightGBM).
    base : ndarray of shape (n_scores,)
        Expected score (``offset`` + every tree's cover-weighted mean): the TreeSHAP base value.
    """

    n_features: int
    n_scores: int
    offset: np.ndarray
    base: np.ndarray
    node_feature: np.ndarray  # (N * T,) column read at each node (0 for padding)
    threshold: np.ndarray  # (N * T,) x <= threshold goes left; +inf for padding
    nan_right: np.ndarray  # (N * T,) where NaN goes
    zero_node: np.ndarray | None  # (N * T,) nodes where |x| <= 1e-35f is missing; None if none
    zero_right: np.ndarray | None  # (N * T,) where such a zero goes
    value: np.ndarray  # (T * 2**N,) leaf value by tree and pattern
    phi: np.ndarray  # (T * 2**N, N) Shapley value of each slot by tree and pattern
    slot_feature: np.ndarray  # (T, N) column of each slot; n_features for unused slots

    @property
    def n_trees(self) -> int:
        return len(self.slot_feature)

    @property
    def n_nodes(self) -> int:
        return self.slot_feature.shape[1]

    def leaves(self, X: np.ndarray) -> np.ndarray:
        """Where each row lands in each tree, as a flat index into ``value`` and ``phi``.

        Returns
        -------
        ndarray of int, shape (n, n_trees)
            ``tree * 2**N + pattern``, the pattern's bit ``j`` being 1 where the row goes right
            at the tree's node ``j``.
        """
        x = X.take(self.node_feature, axis=1)
        right = np.greater(x, self.threshold)  # NaN compares False; set below
        nan = np.isnan(x)
        nan &= self.nan_right
        right |= nan
        if self.zero_node is not None:
            zero = self.zero_node & (np.abs(x) <= _ZERO)
            right = np.where(zero, self.zero_right, right)
        right = right.reshape(len(X), self.n_nodes, self.n_trees)
        pattern = np.matmul(self._bit_value, right)  # (n, T): sum of 2**j over right turns
        return pattern.astype(np.intp) + self._tree_start

    def __post_init__(self) -> None:
        self._bit_value = 2.0 ** np.arange(self.n_nodes)
        self._tree_start = np.arange(self.n_trees, dtype=np.intp) * 2**self.n_nodes
        self._score_trees = np.arange(0, self.n_trees, self.n_scores)  # score 0's trees

    def rescaled(self, scale: float, shift: float) -> ShapTables:
        """Tables of ``scale * score + shift`` (a calibration), sharing the tree structure.

        Shapley values are linear: contributions scale by ``scale``; ``shift`` moves the offset
        and the base value.
        """
        return dataclasses.replace(
            self,
            offset=self.offset * scale + shift,
            base=self.base * scale + shift,
            value=self.value * scale,
            phi=self.phi * scale,
        )

    def score(self, X: np.ndarray, leaves: np.ndarray | None = None) -> np.ndarray:
        """Scores, shape ``(n, n_scores)``: the library's raw score (rescaled, if so built).

        ``leaves`` (from :meth:`leaves`) may be passed to avoid computing them twice.
        """
        leaves = self.leaves(X) if leaves is None else leaves
        per_tree = self.value.take(leaves)
        per_tree = per_tree.reshape(len(leaves), self.n_trees // self.n_scores, self.n_scores)
        return per_tree.sum(axis=1) + self.offset

    def contributions(
        self, X: np.ndarray, score: np.ndarray, leaves: np.ndarray | None = None
    ) -> np.ndarray:
        """Exact TreeSHAP values of each row for one score column per row.

        Parameters
        ----------
        X : ndarray of shape (n, n_features)
        score : ndarray of int, shape (n,)
            Which score column to explain for each row (e.g. the predicted class).
        leaves : ndarray, optional
            :meth:`leaves` of ``X``, if already computed.

        Returns
        -------
        ndarray of shape (n, n_features)
            Adds up, with ``base[score]``, to ``score(X)[i, score[i]]``.
        """
        leaves = self.leaves(X) if leaves is None else leaves
        n, width = len(leaves), self.n_features + 1
        if n == 1:  # the same sums without the row axis: one case is the latency-critical call
            trees = self._score_trees + int(score[0])
            values = self.phi.take(leaves[0].take(trees), axis=0)
            columns = self.slot_feature.take(trees, axis=0)
            return np.bincount(columns.ravel(), values.ravel(), minlength=width)[None, :-1]
        # the trees of each row's score: score, score + k, score + 2k, ...
        trees = np.asarray(score)[:, None] + self._score_trees[None, :]
        rows = np.arange(n)[:, None]
        values = self.phi.take(leaves[rows, trees], axis=0)  # (n, iterations, N)
        columns = self.slot_feature.take(trees, axis=0) + width * rows[:, :, None]
        out = np.bincount(columns.ravel(), values.ravel(), minlength=n * width)
        return out.reshape(n, width)[:, : self.n_features]


def _build(trees: list[_Tree], n_scores: int, offset: np.ndarray, n_features: int) -> ShapTables:
    n_nodes = max((len(t.feature) for t in trees), default=0)
    if n_nodes > MAX_INTERNAL_NODES:
        raise UnsupportedTreeError(
            f"trees with {n_nodes} internal nodes (at most {MAX_INTERNAL_NODES})"
        )
    if len(trees) % n_scores:
        raise UnsupportedTreeError(f"{len(trees)} trees is not a whole number of iterations")
    N, T = max(n_nodes, 1), len(trees)
    feature = np.zeros((N, T), dtype=np.int64)  # padding reads column 0 ...
    threshold = np.full((N, T), np.inf)  # ... and always goes left
    nan_right = np.zeros((N, T), dtype=bool)
    zero_node = np.zeros((N, T), dtype=bool)
    zero_right = np.zeros((N, T), dtype=bool)
    for t, tree in enumerate(trees):
        n = len(tree.feature)
        feature[:n, t], threshold[:n, t] = tree.feature, tree.threshold
        nan_right[:n, t] = [not left for left in tree.nan_left]
        zero_node[:n, t] = [z is not None for z in tree.zero_left]
        zero_right[:n, t] = [z is False for z in tree.zero_left]
    paths = _paths(trees, n_nodes)
    value, phi = _tables(paths, n_nodes)
    any_zero = bool(zero_node.any())
    return ShapTables(
        n_features=n_features,
        n_scores=n_scores,
        offset=offset,
        base=_expected(paths).reshape(-1, n_scores).sum(axis=0) + offset,
        node_feature=feature.ravel(),
        threshold=threshold.ravel(),
        nan_right=nan_right.ravel(),
        zero_node=zero_node.ravel() if any_zero else None,
        zero_right=zero_right.ravel() if any_zero else None,
        value=value.ravel(),
        phi=phi.reshape(-1, N),
        slot_feature=np.where(paths.slot_feature < 0, n_features, paths.slot_feature),
    )


def _expected(p: _Paths) -> np.ndarray:
    """Each tree's cover-weighted mean leaf value, ``v(empty set)``, shape ``(T,)``."""
    return (p.value * p.ratio.prod(axis=2)).sum(axis=1)


# --------------------------------------------------------------------------------------------
# Compiling a scorer's estimator, with a check against the library
# --------------------------------------------------------------------------------------------


def compile_tables(
    kind: str, estimator: Any, n_features: int, *, random_state: int = 0
) -> ShapTables | None:
    """Tables for a fitted ensemble, checked against the library, or ``None`` if not possible.

    Parameters
    ----------
    kind : {"lightgbm", "hgb"}
        The estimator's library (``model.scorers.Scorer.kind``).
    estimator : lightgbm.Booster or HistGradientBoostingClassifier
    n_features : int
        Columns of the encoded matrix.
    random_state : int, default=0
        Seed of the probe rows.

    Returns
    -------
    ShapTables or None
        ``None`` - with a warning when the tables disagree with the library - if the trees are
        too large (:data:`MAX_INTERNAL_NODES`) or use categorical or linear splits, and with a
        warning if they cannot be read.
    """
    try:
        trees, n_scores, offset = (
            _lightgbm_trees(estimator) if kind == "lightgbm" else _hgb_trees(estimator)
        )
        tables = _build(trees, n_scores, offset, n_features)
    except UnsupportedTreeError:
        return None
    except Exception as problem:  # e.g. a library version whose model layout we cannot read
        warnings.warn(
            f"could not read the {kind} trees for TreeSHAP tables ({problem!r}); "
            "using the library's TreeSHAP instead",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    probe = probe_rows(tables, random_state=random_state)
    difference = max_difference(tables, kind, estimator, probe)
    if not difference <= TOLERANCE:
        warnings.warn(
            f"TreeSHAP tables differ from {kind} by {difference:.3g} (> {TOLERANCE}); "
            "using the library's TreeSHAP instead",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    return tables


def probe_rows(tables: ShapTables, n: int = 128, *, random_state: int = 0) -> np.ndarray:
    """Rows that take both branches of every split, and NaN, in random combinations.

    Each cell is NaN, 0, 1, an extreme (+-inf, +-DBL_MAX, +-1e301, +-1e-40), or a threshold of
    its column, just above it or just below it. Every
    such value of every column appears at least once (so every split sees both sides and NaN);
    columns are shuffled independently, so rows mix them at random. There are at least ``n``
    rows, more if a column has more values than that.
    """
    rng = np.random.default_rng(random_state)
    real = np.isfinite(tables.threshold)  # padding nodes have an infinite threshold
    values = []
    for column in range(tables.n_features):
        cuts = np.unique(tables.threshold[real & (tables.node_feature == column)])
        above, below = np.nextafter(cuts, np.inf), cuts - 1e-6
        values.append(np.r_[np.nan, 0.0, 1.0, _EXTREMES, cuts, above, below])
    rows = max(n, *(len(v) for v in values))
    return np.column_stack([rng.permutation(np.resize(v, rows)) for v in values])


def library_contributions(kind: str, estimator: Any, X: np.ndarray) -> np.ndarray:
    """The library's own TreeSHAP, shape ``(n, n_features + 1, n_scores)`` (last: base)."""
    if kind == "lightgbm":
        out = np.asarray(estimator.predict(X, pred_contrib=True, num_threads=1), dtype=float)
        k = out.shape[1] // (X.shape[1] + 1)
        return out.reshape(len(X), k, -1).transpose(0, 2, 1)
    import shap  # slow to import; only needed for scikit-learn models

    explainer = shap.TreeExplainer(estimator)
    values = np.asarray(explainer.shap_values(X, check_additivity=False), dtype=float)
    values = values.reshape(len(X), X.shape[1], -1)
    base = np.broadcast_to(np.atleast_1d(explainer.expected_value), (len(X), values.shape[2]))
    return np.concatenate([values, base[:, None, :]], axis=1)


def max_difference(tables: ShapTables, kind: str, estimator: Any, X: np.ndarray) -> float:
    """Largest absolute difference of raw scores, base values and contributions from the library."""
    raw = (
        estimator.predict(X, raw_score=True, num_threads=1)
        if kind == "lightgbm"
        else estimator.decision_function(X)
    )
    raw = np.asarray(raw, dtype=float).reshape(len(X), tables.n_scores)
    library = library_contributions(kind, estimator, X)
    leaves = tables.leaves(X)
    errors = [np.abs(tables.score(X, leaves) - raw).max()]
    errors.append(np.abs(library[0, -1, :] - tables.base).max())
    for score in range(tables.n_scores):
        mine = tables.contributions(X, np.full(len(X), score), leaves)
        errors.append(np.abs(mine - library[:, :-1, score]).max())
    return float(max(errors))
