"""Faults in the model store and the local cache: a damaged file is never served and never
kills the process, a damaged copy is replaced, a locked or changed store falls back to a
verified copy with a one-line warning, and nothing servable is said in one line.

A tiny model (a few boosting rounds, see ``tests/test_integrity.py``) is logged and registered
once in a temporary SQLite store, as ``make train`` does (:mod:`training.registry`). Each test
works on its own copy of that store's database (the artifacts are shared and only read), with
its own cache, and runs the installed command as a user would; each kind of damage to a cached
copy is also tried in-process, through the loader the command runs (:func:`start_here`).
Marked slow: they log and serve a model through MLflow.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pytest

import vignettes
from model.integrity import tree_manifest
from model.mlflow_names import MANIFEST_TAG, MODEL_NAME
from model.registry_pointer import pointer_path, read_pointer
from serve import loading
from serve.cli import EXIT_NO_MODEL
from serve.terminal import load_predictor
from tests.stores import make_empty_store
from tests.test_integrity import tiny_triage
from training.candidates import Split
from training.registry import log_triage_model, register_champion, write_registry_pointer

pytestmark = pytest.mark.slow

COMMAND = str(Path(sys.executable).with_name("sciatica-triage"))
CAUDA = {"age": 45, "bladder_bowel_dysfunction": True}
CASE = {"age": 58, "numbness": True, "worse_walking": True}


@contextlib.contextmanager
def using_store(uri: str, cache: str | None = None) -> Iterator[None]:
    """This process reads the store at ``uri`` (``MLFLOW_TRACKING_URI`` and MLflow's own
    setting), with ``SCIATICA_TRIAGE_CACHE`` set to ``cache`` if given; all put back after."""
    previous = mlflow.get_tracking_uri()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        if cache is not None:
            patch.setenv("SCIATICA_TRIAGE_CACHE", cache)
        mlflow.set_tracking_uri(uri)
        try:
            yield
        finally:
            mlflow.set_tracking_uri(previous)


def _register(root: Path) -> str:
    """A store at ``root`` holding the tiny model as ``sciatica-triage@champion``."""
    root.mkdir(parents=True, exist_ok=True)
    uri = make_empty_store(root / "mlflow.db", cwd=root)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        experiment = mlflow.create_experiment("store-faults", artifact_location=str(root / "art"))
        split = Split(vignettes.generate(2_000, seed=5))
        triage = tiny_triage(split)
        with mlflow.start_run(experiment_id=experiment):
            model_uri = log_triage_model(triage, "tiny test model", split.frame.head(2))
            register_champion(MODEL_NAME, model_uri, triage, split, lambda message: None)
    finally:
        mlflow.set_tracking_uri(previous)
    return uri


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _register(tmp_path_factory.mktemp("store-template"))


@pytest.fixture
def store(template: str, tmp_path: Path) -> Iterator[Path]:
    """This test's copy of the template's database (same artifacts), with a fresh pointer."""
    source = Path(template.removeprefix("sqlite:///"))
    copy = tmp_path / "store" / "mlflow.db"
    copy.parent.mkdir()
    shutil.copy(source, copy)
    assert write_registry_pointer(MODEL_NAME, f"sqlite:///{copy}")
    yield copy


@pytest.fixture(scope="module")
def expected(template: str) -> dict[str, Any]:
    """The command's answer for :data:`CASE` from the registry itself (no cache): every copy of
    the template store holds the same registered version, so it is every test's answer."""
    return answer(predict(Path(template.removeprefix("sqlite:///")), None))


@pytest.fixture
def warm_cache(store: Path, tmp_path: Path) -> Path:
    """This test's cache, holding the verified copy a first start leaves there.

    It is filled in this process, by the loader the command runs: a cold start of the command
    costs seconds (MLflow's import and store set-up) that the tests below, about what later
    starts do, need not repeat. ``test_a_second_start_reads_the_verified_copy_without_mlflow``
    runs that first start as a command.
    """
    cache = tmp_path / "cache"
    with using_store(f"sqlite:///{store}"):
        loading.load_triage_model(cache_dir=cache)
    assert (the_copy(cache) / loading.COPY_RECORD).is_file()
    return cache


def env(store: Path, cache: Path | None) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "SCIATICA_"))}
    return base | {
        "MLFLOW_TRACKING_URI": f"sqlite:///{store}",
        "SCIATICA_TRIAGE_CACHE": str(cache) if cache is not None else "off",
    }


def predict(store: Path, cache: Path | None, case: dict = CASE) -> subprocess.CompletedProcess:
    return subprocess.run(
        [COMMAND, "predict", "--json", "-"],
        input=json.dumps(case),
        cwd=store.parent,
        env=env(store, cache),
        capture_output=True,
        text=True,
        timeout=300,
    )


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and "INFO" not in err and "alembic" not in err
    return lines[0]


def the_copy(cache: Path) -> Path:
    (folder,) = [p for p in cache.iterdir() if not p.name.startswith(".")]
    return folder


def answer(result: subprocess.CompletedProcess) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# --------------------------------------------------------------------------------------------
# registration
# --------------------------------------------------------------------------------------------


def test_registration_records_the_manifest_and_writes_the_pointer(store: Path) -> None:
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{store}")
    version = client.get_model_version_by_alias(MODEL_NAME, "champion")
    digest = version.tags[MANIFEST_TAG]
    assert len(digest) == 64
    pointer = read_pointer(store)
    assert pointer is not None and pointer.fresh
    record = pointer.lookup(MODEL_NAME, "champion", None)
    assert record is not None and record.version == str(version.version)
    assert record.manifest_sha256 == digest


# --------------------------------------------------------------------------------------------
# the cache
# --------------------------------------------------------------------------------------------


def test_a_second_start_reads_the_verified_copy_without_mlflow(store: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    code = (
        "import json, sys; from serve.terminal import load_predictor; p = load_predictor(None); "
        "print(json.dumps([p.predict(json.loads(sys.argv[1])).to_dict(), 'mlflow' in sys.modules]))"
    )

    def start() -> tuple[dict, bool]:
        result = subprocess.run(
            [sys.executable, "-c", code, json.dumps(CASE)],
            env=env(store, cache),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
        answer, used_mlflow = json.loads(result.stdout)
        return answer, used_mlflow

    first, _ = start()  # fills the cache
    second, used_mlflow = start()
    assert not used_mlflow and second == first


def _edit_meta(folder: Path) -> None:
    path = next(folder.glob("model/artifacts/*/meta.json"))
    meta = json.loads(path.read_text())
    path.write_text(json.dumps(meta | {"red_flag_threshold": 0.99}))


def _truncate_estimator(folder: Path) -> None:
    path = next(folder.glob("model/artifacts/*/cause/estimator.txt"))
    path.write_bytes(path.read_bytes()[:300])


def _edit_scorer(folder: Path) -> None:
    path = next(folder.glob("model/artifacts/*/red_flag/scorer.json"))
    scorer = json.loads(path.read_text())
    path.write_text(json.dumps(scorer | {"shift": scorer["shift"] + 3.0}))


def _edit_tables(folder: Path) -> None:
    path = folder / "cause.shap_tables.npz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _edit_code(folder: Path) -> None:
    path = next(folder.glob("model/code/model/triage.py"))
    path.write_text(path.read_text() + "\n# changed\n")


QUIET_BY_DEFAULT = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)
"""Warning categories Python does not show by default (outside ``__main__``)."""


def start_here(store: Path, cache: Path, capfd: pytest.CaptureFixture[str]) -> tuple[dict, str]:
    """What a start of the command does (:func:`serve.terminal.load_predictor`), in this
    process: the answer for :data:`CASE` and everything written to stderr meanwhile.

    In-process, a start costs the loader's own work and not the seconds of a new interpreter's
    imports (MLflow's among them), so each kind of damage below can be tried without them;
    :func:`test_the_command_replaces_a_changed_cached_copy_silently` runs one as a command.
    Warnings the command would print (through :func:`warnings.showwarning`) are in the text.
    """
    capfd.readouterr()
    with (
        using_store(f"sqlite:///{store}", str(cache)),
        pytest.MonkeyPatch.context() as patch,
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always")
        patch.chdir(store.parent)
        predictor = load_predictor(None)
    # What the command would print: Python shows these categories by default outside __main__.
    shown = [w for w in caught if not issubclass(w.category, QUIET_BY_DEFAULT)]
    said = "".join(f"{w.category.__name__}: {w.message}\n" for w in shown)
    return predictor.predict(CASE).to_dict(), capfd.readouterr().err + said


@pytest.fixture(scope="module")
def expected_here(template: str) -> dict[str, Any]:
    """:func:`start_here`'s answer from the registry itself (no cache), as :func:`expected`."""
    with using_store(template, "off"):
        return load_predictor(None).predict(CASE).to_dict()


DAMAGES = [_edit_meta, _truncate_estimator, _edit_scorer, _edit_tables, _edit_code]


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_changed_cached_copy_is_refused_and_replaced(
    store: Path,
    warm_cache: Path,
    expected_here: dict,
    damage: Any,
    capfd: pytest.CaptureFixture[str],
) -> None:
    cache = warm_cache
    folder = the_copy(cache)
    files = tree_manifest(folder)
    damage(folder)
    assert tree_manifest(folder) != files
    # the registry's answer, not the changed copy's, and nothing said about it
    assert start_here(store, cache, capfd) == (expected_here, "")
    assert the_copy(cache) == folder and tree_manifest(folder) == files  # replaced in place ...
    assert [p.name for p in cache.iterdir() if p.name.startswith(".")] == []  # ... no leftovers
    assert start_here(store, cache, capfd) == (expected_here, "")


def test_the_command_replaces_a_changed_cached_copy_silently(
    store: Path, warm_cache: Path, expected: dict
) -> None:
    """As above, through the installed command, for the damage LightGBM would abort on."""
    cache = warm_cache
    folder = the_copy(cache)
    files = tree_manifest(folder)
    _truncate_estimator(folder)
    again = predict(store, cache)
    assert answer(again) == expected
    assert again.stderr == ""
    assert the_copy(cache) == folder and tree_manifest(folder) == files
    assert answer(predict(store, cache)) == expected


def test_orphaned_incoming_copies_are_removed(store: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    old, new = cache / ".incoming-old", cache / ".incoming-now"
    for folder in (old, new):
        (folder / "model").mkdir(parents=True)
        (folder / "model" / "x").write_bytes(b"0" * 1000)
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    answer(predict(store, cache))
    assert not old.exists()
    assert new.exists()  # another process may still be writing it


# --------------------------------------------------------------------------------------------
# the registry copy
# --------------------------------------------------------------------------------------------


def test_a_damaged_registry_copy_is_never_served_and_kills_nothing(tmp_path: Path) -> None:
    uri = _register(tmp_path / "own")
    store = Path(uri.removeprefix("sqlite:///"))
    (estimator,) = (tmp_path / "own" / "art").rglob("cause/estimator.txt")
    estimator.write_bytes(estimator.read_bytes()[:300])  # LightGBM would abort on this
    for cache in (tmp_path / "cache", None):
        result = predict(store, cache)
        assert result.returncode == EXIT_NO_MODEL, result.stderr
        line = one_line(result.stderr)
        assert "differ from the manifest recorded at registration" in line
        assert "not served" in line
    assert not any((tmp_path / "cache").iterdir())


def test_the_python_api_refuses_a_damaged_registry_copy(tmp_path: Path) -> None:
    uri = _register(tmp_path / "own")
    (meta,) = (tmp_path / "own" / "art").rglob("bundle/meta.json")
    meta.write_text(meta.read_text().replace('"red_flag_threshold"', '"red_flag_threshold" '))
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        with pytest.raises(loading.ModelDamagedError, match="not served"):
            loading.load_triage_model()
        # MLflow's own loader (make serve, mlflow.pyfunc.load_model) checks the bundle too
        with pytest.raises(Exception, match=r"meta.json: damaged or changed"):
            mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@champion")
    finally:
        mlflow.set_tracking_uri(previous)


# --------------------------------------------------------------------------------------------
# a locked or changed store
# --------------------------------------------------------------------------------------------


def _lock(store: Path) -> sqlite3.Connection:
    holder = sqlite3.connect(store, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    return holder


def _make_stale(store: Path) -> None:
    """A write to the store after the pointer was written (as a new run would make)."""
    with sqlite3.connect(store) as db:
        db.execute("CREATE TABLE IF NOT EXISTS touched (x)")
    assert not read_pointer(store).fresh  # type: ignore[union-attr]


def test_a_locked_store_with_a_fresh_pointer_serves_the_copy_silently(
    store: Path, warm_cache: Path, expected: dict
) -> None:
    cache = warm_cache
    holder = _lock(store)
    try:
        result = predict(store, cache)
    finally:
        holder.close()
    assert answer(result) == expected and result.stderr == ""


def test_a_locked_store_falls_back_to_the_verified_copy_with_one_warning(
    store: Path, warm_cache: Path, expected: dict
) -> None:
    cache = warm_cache
    _make_stale(store)
    holder = _lock(store)
    try:
        result = predict(store, cache)
    finally:
        holder.close()
    assert answer(result) == expected
    line = one_line(result.stderr)
    assert line.startswith("sciatica-triage: warning: the MLflow tracking store")
    assert "cannot be read (database is locked)" in line and "verified local copy" in line


def test_a_locked_store_with_nothing_cached_is_one_line(store: Path, tmp_path: Path) -> None:
    _make_stale(store)
    holder = _lock(store)
    try:
        result = predict(store, tmp_path / "cache")
    finally:
        holder.close()
    assert result.returncode == EXIT_NO_MODEL
    assert "cannot be read (database is locked)" in one_line(result.stderr)


def _change_schema(store: Path) -> None:
    with sqlite3.connect(store) as db:
        db.execute("UPDATE alembic_version SET version_num = 'f00dfeed1234'")


def test_a_changed_schema_falls_back_to_the_copy_or_is_one_line(
    store: Path, warm_cache: Path, expected: dict
) -> None:
    cache = warm_cache
    _change_schema(store)
    result = predict(store, cache)
    assert answer(result) == expected
    assert "out-of-date database schema" in one_line(result.stderr)
    shutil.rmtree(cache)
    result = predict(store, cache)
    assert result.returncode == EXIT_NO_MODEL
    line = one_line(result.stderr)
    assert "cannot be read" in line and "out-of-date database schema" in line
    assert "no model" not in line


def test_a_moved_alias_is_noticed(store: Path, warm_cache: Path) -> None:
    """The pointer is stale once the store changes: the next start asks MLflow again."""
    cache = warm_cache
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{store}")
    client.delete_registered_model_alias(MODEL_NAME, "champion")
    result = predict(store, cache)
    assert result.returncode == EXIT_NO_MODEL
    assert "no model registered as sciatica-triage@champion" in one_line(result.stderr)
    assert pointer_path(store).is_file()


def test_an_empty_store_says_so_in_one_line_without_mlflow_logging(tmp_path: Path) -> None:
    store = tmp_path / "mlflow.db"
    store.write_bytes(b"")
    result = predict(store, tmp_path / "cache")
    assert result.returncode == EXIT_NO_MODEL
    assert "no model registered as sciatica-triage@champion" in one_line(result.stderr)
