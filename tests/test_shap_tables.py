"""Exact TreeSHAP by table lookup (:mod:`model.shap_tables`) against the libraries' own TreeSHAP.

Each test fits small ensembles on generated cases (encoded as training encodes them, NaN for
unknown answers) or on synthetic data built to reach the branches real cases rarely take
(LightGBM's missing types None and Zero), and compares raw scores, base values and every
feature's contribution with LightGBM's ``pred_contrib`` or ``shap.TreeExplainer``.
"""

from __future__ import annotations

import lightgbm
import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

import model.shap_tables as shap_tables
import vignettes
from model.features import encode
from model.scorers import Calibration, Scorer
from model.shap_tables import compile_tables, library_contributions, max_difference, probe_rows
from vignettes.schema import CAUSES

SEED = 11

pytestmark = pytest.mark.slow  # every test fits tree ensembles


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    frame = vignettes.generate(6_000, SEED)
    return {
        "X": encode(frame),
        "y": frame["cause"].cat.codes.to_numpy(),
        "red": frame["red_flag"].to_numpy(dtype=int),
        "X_new": encode(vignettes.generate(500, SEED, start=6_000)),
    }


def lightgbm_booster(X: np.ndarray, y: np.ndarray, n_classes: int, **params) -> lightgbm.Booster:
    objective = (
        {"objective": "multiclass", "num_class": n_classes}
        if n_classes > 2
        else {"objective": "binary"}
    )
    base = {"num_leaves": 5, "min_data_in_leaf": 40, "verbosity": -1, "seed": SEED}
    base |= {"num_threads": 1}
    return lightgbm.train(base | objective | params, lightgbm.Dataset(X, y), num_boost_round=40)


def hgb(X: np.ndarray, y: np.ndarray, **params) -> HistGradientBoostingClassifier:
    base = {"max_iter": 30, "max_leaf_nodes": 5, "random_state": SEED, "early_stopping": False}
    return HistGradientBoostingClassifier(**(base | params)).fit(X, y)


@pytest.mark.parametrize("target", ["y", "red"])
def test_lightgbm_tables_equal_pred_contrib(data: dict, target: str) -> None:
    n_classes = len(CAUSES) if target == "y" else 2
    booster = lightgbm_booster(data["X"], data[target], n_classes)
    tables = compile_tables("lightgbm", booster, data["X"].shape[1])
    assert tables is not None
    assert tables.n_scores == (len(CAUSES) if target == "y" else 1)
    assert max_difference(tables, "lightgbm", booster, data["X_new"]) < 1e-10


@pytest.mark.parametrize("target", ["y", "red"])
def test_hgb_tables_equal_shap_tree_explainer(data: dict, target: str) -> None:
    estimator = hgb(data["X"], data[target])
    tables = compile_tables("hgb", estimator, data["X"].shape[1])
    assert tables is not None
    assert max_difference(tables, "hgb", estimator, data["X_new"][:200]) < 1e-10


def test_contributions_add_up_to_the_score(data: dict) -> None:
    booster = lightgbm_booster(data["X"], data["y"], len(CAUSES))
    tables = compile_tables("lightgbm", booster, data["X"].shape[1])
    X = data["X_new"]
    score = tables.score(X)
    top = score.argmax(axis=1)
    values = tables.contributions(X, top)
    np.testing.assert_allclose(values.sum(axis=1) + tables.base[top], score.max(axis=1), atol=1e-10)
    # and the raw score is LightGBM's
    raw = booster.predict(X, raw_score=True)
    np.testing.assert_allclose(score, raw, atol=1e-10)


def test_one_row_gives_the_same_contributions_as_a_batch(data: dict) -> None:
    booster = lightgbm_booster(data["X"], data["y"], len(CAUSES))
    tables = compile_tables("lightgbm", booster, data["X"].shape[1])
    X = data["X_new"][:50]
    classes = np.arange(50) % len(CAUSES)
    batch = tables.contributions(X, classes)
    for i in range(len(X)):
        one = tables.contributions(X[i : i + 1], classes[i : i + 1])
        np.testing.assert_allclose(one[0], batch[i], rtol=0, atol=1e-12)


def test_rescaled_tables_are_the_calibrated_scores(data: dict) -> None:
    booster = lightgbm_booster(data["X"], data["red"], 2)
    tables = compile_tables("lightgbm", booster, data["X"].shape[1])
    scaled = tables.rescaled(0.7, -0.3)
    X = data["X_new"]
    np.testing.assert_allclose(scaled.score(X), 0.7 * tables.score(X) - 0.3, atol=1e-12)
    zero = np.zeros(len(X), dtype=int)
    np.testing.assert_allclose(
        scaled.contributions(X, zero), 0.7 * tables.contributions(X, zero), atol=1e-12
    )
    np.testing.assert_allclose(scaled.base, 0.7 * tables.base - 0.3)


@pytest.mark.parametrize(
    "params",
    [
        {"zero_as_missing": True},  # missing_type Zero: zeros and NaN go the default way
        {"use_missing": False},  # missing_type None: NaN is read as 0
    ],
    ids=["missing-zero", "missing-none"],
)
def test_lightgbm_missing_types(params: dict) -> None:
    rng = np.random.default_rng(SEED)
    X = rng.normal(size=(3_000, 4))
    X[rng.random(X.shape) < 0.3] = 0.0
    X[rng.random(X.shape) < 0.2] = np.nan
    y = ((np.nan_to_num(X[:, 0]) > 0) ^ (np.nan_to_num(X[:, 1], nan=1.0) < 0.5)).astype(int)
    booster = lightgbm_booster(X, y, 2, **params)
    kinds = {node["missing_type"] for node in _internal_nodes(booster)}
    expected = "Zero" if "zero_as_missing" in params else "None"
    assert expected in kinds
    tables = compile_tables("lightgbm", booster, 4)
    assert tables is not None
    probe = np.array([[np.nan, 0.0, 1e-40, -0.2], [0.0, np.nan, 0.3, np.nan], [2, -1, 0, 0.0]])
    assert max_difference(tables, "lightgbm", booster, np.vstack([X[:300], probe])) < 1e-10


def _internal_nodes(booster: lightgbm.Booster) -> list[dict]:
    out, stack = [], [t["tree_structure"] for t in booster.dump_model()["tree_info"]]
    while stack:
        node = stack.pop()
        if "split_feature" in node:
            out.append(node)
            stack += [node["left_child"], node["right_child"]]
    return out


def test_probe_rows_reach_both_sides_of_every_split(data: dict) -> None:
    booster = lightgbm_booster(data["X"], data["y"], len(CAUSES))
    tables = compile_tables("lightgbm", booster, data["X"].shape[1])
    X = probe_rows(tables, n=256)
    real = np.isfinite(tables.threshold)
    x = X[:, tables.node_feature][:, real]
    left = (x <= tables.threshold[real]).any(axis=0)
    right = (x > tables.threshold[real]).any(axis=0)
    missing = np.isnan(x).any(axis=0)
    assert left.all() and right.all() and missing.all()


def test_large_trees_fall_back_to_the_library(data: dict) -> None:
    booster = lightgbm_booster(data["X"], data["y"], len(CAUSES), num_leaves=31, min_data_in_leaf=5)
    assert compile_tables("lightgbm", booster, data["X"].shape[1]) is None
    scorer = Scorer("lightgbm", booster, len(CAUSES), Calibration(0.9, 0.0))
    X = data["X_new"][:100]
    score, values, base = scorer.score_and_explain(X)
    library = library_contributions("lightgbm", booster, X)
    top = score.argmax(axis=1)
    expected = library[np.arange(len(X)), :-1, top] * 0.9
    np.testing.assert_allclose(values, expected, atol=1e-10)
    np.testing.assert_allclose(values.sum(1) + base, score.max(axis=1), atol=1e-10)


def test_categorical_splits_fall_back_to_the_library() -> None:
    rng = np.random.default_rng(SEED)
    X = rng.integers(0, 6, size=(2_000, 2)).astype(float)
    y = np.isin(X[:, 0], [1, 4]).astype(int)
    params = {"objective": "binary", "verbosity": -1, "num_leaves": 4, "min_data_in_leaf": 20}
    dataset = lightgbm.Dataset(X, y, categorical_feature=[0])
    booster = lightgbm.train(params, dataset, num_boost_round=5)
    assert any(node["decision_type"] == "==" for node in _internal_nodes(booster))
    assert compile_tables("lightgbm", booster, 2) is None


def test_wrong_tables_are_caught_and_refused(data: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """The build-time proof can fail: break the Shapley weights and the tables are refused."""
    booster = lightgbm_booster(data["X"], data["red"], 2)
    monkeypatch.setattr(shap_tables, "_shapley_weights", lambda k: np.full(k, 1.0 / k))
    with pytest.warns(RuntimeWarning, match="differ from lightgbm"):
        assert compile_tables("lightgbm", booster, data["X"].shape[1]) is None


def test_scorer_tables_follow_a_calibration_change(data: dict) -> None:
    booster = lightgbm_booster(data["X"], data["red"], 2)
    scorer = Scorer("lightgbm", booster, 2)
    X = data["X_new"][:20]
    before, _, _ = scorer.score_and_explain(X)
    scorer.calibration = Calibration(2.0, 1.0)
    after, values, base = scorer.score_and_explain(X)
    np.testing.assert_allclose(after, 2.0 * before + 1.0, atol=1e-12)
    np.testing.assert_allclose(values.sum(1) + base, after[:, 0], atol=1e-10)


def test_lightgbm_thresholds_beyond_1e300_are_exact() -> None:
    """``dump_model`` clips thresholds to 1e300; the model text keeps the exact ones."""
    rng = np.random.default_rng(SEED)
    X = rng.choice([1.0, 2e300, np.inf, 5e304, 0.0], size=(2_000, 2))
    y = ((X[:, 0] > 1e300) ^ (X[:, 1] > 1e302)).astype(int)
    params = {"num_leaves": 4, "min_data_in_leaf": 5, "min_data_per_group": 5}
    booster = lightgbm_booster(X, y, 2, **params)
    dumped = [node["threshold"] for node in _internal_nodes(booster)]
    assert max(dumped) == 1e300  # the dump's clipped view
    tables = compile_tables("lightgbm", booster, 2)
    assert tables is not None
    extremes = np.array([[1e301, 1e308], [np.inf, -np.inf], [2e300, 5e304], [1.5e300, 1e303]])
    assert max_difference(tables, "lightgbm", booster, extremes) < 1e-10


def test_linear_trees_fall_back_to_the_library() -> None:
    rng = np.random.default_rng(SEED)
    X = rng.normal(size=(1_000, 3))
    y = (X[:, 0] + rng.normal(size=1_000) > 0).astype(int)
    booster = lightgbm_booster(X, y, 2, linear_tree=True)
    assert compile_tables("lightgbm", booster, 3) is None


def test_a_scorer_refuses_tables_with_a_different_score_count(data: dict) -> None:
    """Two classes fitted with a multiclass objective give two scores, not a binary's one."""
    booster = lightgbm_booster(data["X"], data["red"], 3, num_class=2)
    assert compile_tables("lightgbm", booster, data["X"].shape[1]).n_scores == 2
    assert Scorer("lightgbm", booster, 2).shap_tables() is None


def test_a_scorer_with_built_tables_scores_small_batches_from_them(
    data: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Up to TABLE_SCORE_ROWS rows the built tables give the score (the same numbers as the
    library); a larger batch, or a scorer whose tables were never built, asks the library."""
    from scipy.special import expit

    from model import scorers

    booster = lightgbm_booster(data["X"], data["red"], 2)
    scorer = Scorer("lightgbm", booster, 2, Calibration(0.8, 0.1))
    small, large = data["X_new"][:3], data["X_new"][: scorers.TABLE_SCORE_ROWS + 1]
    library = {n: scorer.library_raw(x) for n, x in (("small", small), ("large", large))}
    calls: list[int] = []
    original = Scorer.library_raw

    def counted(self: Scorer, X: np.ndarray) -> np.ndarray:
        calls.append(len(X))
        return original(self, X)

    monkeypatch.setattr(Scorer, "library_raw", counted)
    np.testing.assert_array_equal(scorer.raw(small), library["small"])  # no tables yet
    assert calls == [3]
    assert scorer.shap_tables() is not None
    calls.clear()
    np.testing.assert_allclose(scorer.raw(small), library["small"], atol=1e-12)
    expected = expit(0.8 * booster.predict(small, raw_score=True) + 0.1)
    np.testing.assert_allclose(scorer.proba(small), expected, atol=1e-12)
    assert calls == []  # both from the tables
    np.testing.assert_array_equal(scorer.raw(large), library["large"])
    assert calls == [scorers.TABLE_SCORE_ROWS + 1]
