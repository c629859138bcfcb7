"""Shared fixtures: a small trained model in a temporary MLflow store, made once per worker.

Every test that uses that model (directly or through another fixture) is marked ``slow`` here,
so ``pytest -m "not slow"`` (``make test-fast``) never trains; tests that fit a model of their
own carry the marker in their module.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterator
from typing import Any

# Two pytest workers share two cores: one thread each, or OpenMP busy-waiting stalls the fits.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("SCIATICA_TRIAGE_THREADS", "1")
from pathlib import Path

import pytest
from hypothesis import settings

from tests.stores import make_empty_store

# The property tests draw the same examples on every run (a hash of each test function seeds
# them), so CI cannot fail on an example no earlier run saw; `pytest --hypothesis-profile=explore`
# draws fresh ones on each run, to look for new counterexamples.
settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile("repeatable")

TRAINED_FIXTURES = frozenset({"trained", "tracking_uri", "golden_predictor"})
"""Fixtures, here or in a test module, that train or register a model: a test that needs one
of them is slow (``golden_predictor`` in ``tests/test_serve.py`` fits its own LightGBM)."""

SMALL = {"n_train": 4_000, "n_val": 10_000, "n_test": 2_000, "n_cal": 2_000, "seed": 3}


@pytest.fixture(scope="session")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh SQLite tracking store (:func:`tests.stores.make_empty_store`) and artifact
    folder, used for the whole session."""
    import mlflow

    root: Path = tmp_path_factory.mktemp("mlflow")
    uri = make_empty_store(root / "mlflow.db", cwd=root)
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", uri)
    mp.chdir(root)  # default artifact location ./mlruns lands in the temporary folder
    mlflow.set_tracking_uri(uri)
    yield uri
    mp.undo()


@pytest.fixture
def own_tracking_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh SQLite store for one test. The tracking URI is process-wide: it is given back
    afterwards, or a later test in the same worker (the Spark UDF, the CLI) would look for the
    session's champion in this test's deleted store."""
    import mlflow

    previous = mlflow.get_tracking_uri()
    uri = make_empty_store(tmp_path / "mlflow.db", cwd=tmp_path)  # the tests work there
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(previous)


@pytest.fixture(scope="session")
def trained(tracking_uri: str):
    """Train the tree candidates and the ceiling on small data and register the champion."""
    from training import TrainConfig, train

    cfg = TrainConfig(
        **SMALL,
        candidates=("article_rules", "hist_gradient_boosting", "lightgbm", "bayes_posterior"),
        learning_curve=False,
        robustness=True,
    )
    return train(cfg)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Let each test process (the controller and every worker) skip the interpreter's last
    garbage collection of what the suite loaded, as the command does
    (:func:`serve.cli.skip_the_last_collection`): with pandas, scikit-learn, LightGBM and MLflow
    imported it took 0.7-0.9 s of each process's exit (measured), and the suite's end waits for
    the last worker's. Every test has run and reported by now; files are closed and the
    streams are still flushed at exit."""
    gc.freeze()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs the trained model ``slow``, wherever it is defined."""
    for item in items:
        if TRAINED_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    """A ``local[2]`` Spark session on loopback (the Spark tests skip without Java or pyspark).
    Its workers run this venv's Python and import this checkout, as the driver does."""
    from pyspark.sql import SparkSession

    root = Path(__file__).resolve().parents[1]
    os.environ["PYSPARK_PYTHON"] = sys.executable  # workers use this venv, not the system Python
    # ... and import this checkout's vignettes, as the driver does (not another installed copy).
    path = os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p)
    session = (
        SparkSession.builder.master("local[2]")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.executorEnv.PYTHONPATH", path)
        .getOrCreate()
    )
    yield session
    session.stop()
