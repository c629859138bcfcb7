"""Find and load a triage model through MLflow, and say which registry version it is.

``models:/<name>@<alias>``, ``models:/<name>/<version>`` and ``models:/<name>/latest`` URIs are
resolved to a concrete registry version with :class:`mlflow.MlflowClient` first, and that exact
version is loaded, so the name and version a prediction reports are the ones that answered even
if an alias moves meanwhile. Any other URI (``runs:/...``, a local path) is loaded as is, and the
name and version come from the model's own metadata.

Nothing here creates a tracking store: a local store (SQLite file, file-store folder) that does
not exist is reported, never made. With ``cache_dir``, a registry version is copied to a local
folder the first time it is loaded (keyed by store, name, version, run and creation time, so a
store made anew never hits an old copy), with the TreeSHAP tables already built and checked, and
later loads read it without MLflow; for a SQLite
store the version is looked up read-only with :mod:`sqlite3`, so a warm start never imports MLflow.

mlflow is imported inside the functions: ``import serve`` and ``sciatica-triage --help`` stay fast.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np

from model.mlflow_names import CHAMPION_URI, MODEL_NAME
from model.shap_tables import ShapTables
from model.triage import TriageModel

__all__ = [
    "CHECKOUT_STORE",
    "DEFAULT_MODEL_URI",
    "LoadedModel",
    "ModelNotFoundError",
    "RegistryRef",
    "StoreUnavailableError",
    "check_store",
    "default_cache_dir",
    "load_triage_model",
    "locate_store",
    "parse_registry_uri",
    "tracking_uri",
]

DEFAULT_MODEL_URI = CHAMPION_URI
"""The registered champion (``make train`` registers it)."""

CHECKOUT_STORE = Path(__file__).resolve().parents[1] / "mlflow.db"
"""Where ``make train`` writes its store when run in the checkout this package comes from."""
POINT_AT_A_STORE = (
    "run `make train` in the checkout, or set MLFLOW_TRACKING_URI to the store that holds the "
    "model (e.g. sqlite:////path/to/checkout/mlflow.db or http://host:5000)"
)

_REGISTRY_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>[^/@]+))$")


class ModelNotFoundError(LookupError):
    """No model is registered (or logged) under the URI asked for."""


class StoreUnavailableError(ModelNotFoundError):
    """The tracking store does not exist, or its server does not answer."""


@dataclass(frozen=True)
class RegistryRef:
    """A ``models:/`` URI taken apart: the registered name and an alias or a version."""

    name: str
    alias: str | None = None
    version: str | None = None


@dataclass(frozen=True)
class LoadedModel:
    """A loaded triage model and where it came from.

    Attributes
    ----------
    model : TriageModel
        The model itself (``unwrap_python_model().model`` of the pyfunc).
    model_uri : str
        The URI asked for.
    resolved_uri : str
        The URI actually loaded (a concrete registry version where there is one).
    tracking_uri : str
        The MLflow tracking store it was found in.
    name, version : str
        Registry name and version, or the model's own metadata for unregistered models.
    """

    model: TriageModel
    model_uri: str
    resolved_uri: str
    tracking_uri: str
    name: str
    version: str


def tracking_uri() -> str:
    """The MLflow tracking store in use, as MLflow picks it.

    ``mlflow.set_tracking_uri`` if called, else ``MLFLOW_TRACKING_URI``, else MLflow's default
    (``sqlite:///mlflow.db`` in the working directory, where ``make train`` writes from the
    checkout). MLflow is imported only if it is loaded already or the variable is unset.
    """
    if "mlflow" not in sys.modules and os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    import mlflow

    return mlflow.get_tracking_uri()


def local_store_path(store: str) -> Path | None:
    """The file (SQLite) or folder (file store) of a local tracking store; ``None`` otherwise.

    ``sqlite:///name.db`` is relative to the working directory, ``sqlite:////abs/name.db``
    absolute (SQLAlchemy's convention).
    """
    if store.startswith("sqlite:"):
        path = unquote(store.removeprefix("sqlite:").removeprefix("///").split("?")[0])
        return None if path in ("", ":memory:") else Path(path)
    parsed = urlparse(store)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "":  # a plain path is a file store
        return Path(store)
    return None


def check_store(store: str, where: str = "MLFLOW_TRACKING_URI") -> None:
    """Refuse a local tracking store that does not exist (MLflow would create an empty one).

    Raises
    ------
    StoreUnavailableError
        Naming the missing file or folder and how to point at a store.
    """
    path = local_store_path(store)
    if path is None:
        return
    is_sqlite = store.startswith("sqlite:")
    if (is_sqlite and not path.is_file()) or (not is_sqlite and not path.is_dir()):
        raise StoreUnavailableError(
            f"no MLflow tracking store at {path} ({where}={store}); {POINT_AT_A_STORE}"
        )


def locate_store(
    environ: dict[str, str] | None = None,
    cwd: Path | None = None,
    checkout_store: Path = CHECKOUT_STORE,
) -> str:
    """The tracking store for the command line, found without creating anything.

    ``MLFLOW_TRACKING_URI`` if set (and, for a local store, existing); else ``./mlflow.db`` if
    there is one; else the store ``make train`` wrote in the checkout this package comes from.

    Raises
    ------
    StoreUnavailableError
        If none of them exists; the message says how to point at a store.
    """
    environ = dict(os.environ) if environ is None else environ
    if environ.get("MLFLOW_TRACKING_URI"):
        check_store(environ["MLFLOW_TRACKING_URI"])
        return environ["MLFLOW_TRACKING_URI"]
    here = (cwd or Path.cwd()) / "mlflow.db"
    for candidate in dict.fromkeys([here.resolve(), checkout_store.resolve()]):
        if candidate.is_file():
            return f"sqlite:///{candidate}"
    raise StoreUnavailableError(
        f"no MLflow tracking store found (MLFLOW_TRACKING_URI is not set; no {here} and no "
        f"{checkout_store}); {POINT_AT_A_STORE}"
    )


def default_cache_dir() -> Path | None:
    """Where the command line keeps local copies of registry versions; ``None`` if turned off.

    ``SCIATICA_TRIAGE_CACHE`` (``off`` turns the cache off), else ``$XDG_CACHE_HOME`` or
    ``~/.cache``, in ``sciatica-triage/models``.
    """
    setting = os.environ.get("SCIATICA_TRIAGE_CACHE")
    if setting is not None:
        return None if setting.strip().lower() in ("", "0", "off", "no", "false") else Path(setting)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sciatica-triage" / "models"


def parse_registry_uri(model_uri: str) -> RegistryRef | None:
    """Split ``models:/name@alias`` or ``models:/name/version``; ``None`` for other URIs."""
    match = _REGISTRY_URI.match(model_uri)
    if match is None:
        return None
    return RegistryRef(match["name"], match["alias"], match["version"])


def _not_found(what: str, store: str, cause: Exception | None = None) -> ModelNotFoundError:
    detail = f" ({cause})" if cause is not None else ""
    return ModelNotFoundError(
        f"no model {what} in the MLflow tracking store {store}{detail}; run `make train` first "
        "(or point MLFLOW_TRACKING_URI at the store that holds it)"
    )


def _unreachable(exc: BaseException) -> str | None:
    """Why a tracking server did not answer (timeout, refused), or ``None`` for other errors."""
    seen: BaseException | None = exc
    while seen is not None:
        name = type(seen).__name__
        if name in ("ConnectionError", "ConnectTimeout", "ReadTimeout", "Timeout", "MaxRetryError"):
            break
        seen = seen.__cause__ or seen.__context__
    text = str(exc)
    if seen is None and not re.search(r"Max retries exceeded|timed out|Connection refused", text):
        return None
    for pattern, reason in (
        (r"timed out|Timeout", "no answer within the time limit"),
        (r"Connection refused", "connection refused"),
        (r"Name or service not known|nodename nor servname|getaddrinfo", "unknown host"),
    ):
        if re.search(pattern, text):
            return reason
    return "no connection"


def _store_error(store: str, exc: BaseException) -> ModelNotFoundError | None:
    reason = _unreachable(exc)
    if reason is None:
        return None
    return StoreUnavailableError(
        f"the MLflow tracking server {store} does not answer ({reason}); start it, or "
        f"{POINT_AT_A_STORE}"
    )


@dataclass(frozen=True)
class _Version:
    """A registry version and what identifies its content."""

    version: str
    run_id: str
    source: str
    created: str


def _peek_sqlite(ref: RegistryRef, store: str) -> _Version | None:
    """Look the version up in a SQLite store, read-only and without MLflow; ``None`` if unsure.

    Reads MLflow's ``registered_model_aliases`` and ``model_versions`` tables. Anything
    unexpected (another schema, no such row, a version not READY) returns ``None``, and the
    caller asks MLflow, which gives the authoritative answer or error.
    """
    path = local_store_path(store) if store.startswith("sqlite:") else None
    if path is None or not path.is_file() or ref.version == "latest":
        return None
    try:
        with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=2) as db:
            version = ref.version
            if ref.alias is not None:
                rows = db.execute(
                    "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?",
                    (ref.name, ref.alias),
                ).fetchall()
                if len(rows) != 1:
                    return None
                version = str(rows[0][0])
            rows = db.execute(
                "SELECT version, run_id, source, creation_time, status FROM model_versions "
                "WHERE name = ? AND version = ?",
                (ref.name, int(str(version))),
            ).fetchall()
    except (sqlite3.Error, ValueError):
        return None
    if len(rows) != 1 or rows[0][4] != "READY":
        return None
    found = rows[0]
    return _Version(str(found[0]), str(found[1]), str(found[2]), str(found[3]))


def _resolve_version(ref: RegistryRef, store: str) -> _Version:
    """The concrete registry version ``ref`` points to, or :class:`ModelNotFoundError`."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=store)
    try:
        if ref.alias is not None:
            found = client.get_model_version_by_alias(ref.name, ref.alias)
        elif ref.version == "latest":
            versions = client.search_model_versions(f"name = '{ref.name}'")
            if not versions:
                raise _not_found(f"registered as {ref.name!r}", store)
            found = max(versions, key=lambda v: int(v.version))
        else:
            found = client.get_model_version(ref.name, str(ref.version))
    except MlflowException as exc:
        unavailable = _store_error(store, exc)
        if unavailable is not None:
            raise unavailable from None
        where = f"@{ref.alias}" if ref.alias is not None else f" version {ref.version}"
        raise _not_found(f"registered as {ref.name}{where}", store, exc) from exc
    return _Version(
        str(found.version), str(found.run_id), str(found.source), str(found.creation_timestamp)
    )


def _cache_folder(cache_dir: Path, store: str, name: str, found: _Version) -> Path:
    key = json.dumps([store, name, found.version, found.run_id, found.source, found.created])
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    return cache_dir / f"{name}-v{found.version}-{digest}"


_SCORERS = ("cause", "red_flag")


def _save_tables(triage: TriageModel, bundle: Path) -> None:
    """Keep each scorer's checked TreeSHAP tables beside the copy (building them is most of a
    warm start's load time for a large champion)."""
    for name in _SCORERS:
        tables = getattr(triage, name).shap_tables()
        if tables is not None:
            arrays = {
                f.name: np.asarray(getattr(tables, f.name))
                for f in dataclasses.fields(tables)
                if getattr(tables, f.name) is not None
            }
            np.savez(bundle / name / "shap_tables.npz", **arrays)  # type: ignore[arg-type]


def _load_tables(triage: TriageModel, bundle: Path) -> None:
    for name in _SCORERS:
        path = bundle / name / "shap_tables.npz"
        if path.is_file():
            with np.load(path, allow_pickle=False) as arrays:
                values: dict[str, Any] = {k: arrays[k] for k in arrays.files}
            for key in ("n_features", "n_scores"):
                values[key] = int(values[key])
            values.setdefault("zero_node", None)
            values.setdefault("zero_right", None)
            getattr(triage, name).use_tables(ShapTables(**values))


def _read_copy(folder: Path) -> TriageModel | None:
    """The model in a cache folder with its tables, or ``None`` if it cannot be read."""
    try:
        triage = TriageModel.load(folder / "bundle")
        _load_tables(triage, folder / "bundle")
        return triage
    except Exception:  # a damaged copy is ignored and replaced from the registry
        return None


def _from_cache(folder: Path) -> TriageModel | None:
    return _read_copy(folder) if (folder / "complete").is_file() else None


def _store_in_cache(folder: Path, triage: TriageModel) -> None:
    """Save a copy of ``triage``; keep it only if it answers exactly as the original does."""
    from model.intake import validate_case

    probe = [validate_case({"age": age, "numbness": age > 50}) for age in (25, 55, 85)]
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".incoming-", dir=folder.parent))
        triage.save(work / "bundle")
        _save_tables(triage, work / "bundle")
        copy = _read_copy(work)
        same = copy is not None and all(
            copy.predict_case(case) == triage.predict_case(case) for case in probe
        )
        if same:
            (work / "complete").write_text("")
            work.rename(folder)
        else:
            shutil.rmtree(work, ignore_errors=True)
    except OSError:  # a read-only or full disk only costs speed
        return


def _quiet_import_of_pyfunc() -> None:
    """Import the pyfunc class without MLflow's advice to model authors on stderr.

    MLflow warns "Add type hints to the `predict` method" when the class is defined, and resets
    the warning filters while doing so, so the message cannot be filtered; a user loading a
    model has no use for it.
    """
    with contextlib.redirect_stderr(io.StringIO()):
        import model.pyfunc  # noqa: F401


def _load_pyfunc(resolved: str, uri: str, store: str) -> TriageModel:
    import mlflow
    from mlflow.exceptions import MlflowException

    _quiet_import_of_pyfunc()

    try:
        pyfunc = mlflow.pyfunc.load_model(resolved)
    except (MlflowException, OSError) as exc:
        unavailable = _store_error(store, exc)
        if unavailable is not None:
            raise unavailable from None
        raise _not_found(f"at {uri!r}", store, exc) from exc
    triage: Any = getattr(pyfunc.unwrap_python_model(), "model", None)
    if not callable(getattr(triage, "predict", None)) or not hasattr(triage, "meta"):
        raise TypeError(f"{uri}: not a sciatica-triage model (no TriageModel inside the pyfunc)")
    return triage


def load_triage_model(
    model_uri: str | None = None, *, cache_dir: Path | None = None
) -> LoadedModel:
    """Load the triage model behind ``model_uri`` (default: the registered champion).

    Parameters
    ----------
    model_uri : str, optional
        Any URI ``mlflow.pyfunc.load_model`` accepts; default :data:`DEFAULT_MODEL_URI`.
    cache_dir : Path, optional
        Keep a local copy of each registry version here and load from it when it is there.

    Returns
    -------
    LoadedModel

    Raises
    ------
    ModelNotFoundError
        If the registry has no such model, alias or version, or the URI holds no model.
    StoreUnavailableError
        If the local tracking store does not exist or the tracking server does not answer.
    TypeError
        If the URI holds a pyfunc that is not a sciatica-triage model.
    """
    uri = model_uri or DEFAULT_MODEL_URI
    store = tracking_uri()
    check_store(store)
    ref = parse_registry_uri(uri)
    if ref is None:
        triage = _load_pyfunc(uri, uri, store)
        name = str(triage.meta.get("name", MODEL_NAME))
        return LoadedModel(
            triage, uri, uri, store, name, str(triage.meta.get("version", "unregistered"))
        )
    found = (_peek_sqlite(ref, store) if cache_dir is not None else None) or _resolve_version(
        ref, store
    )
    resolved = f"models:/{ref.name}/{found.version}"
    folder = _cache_folder(cache_dir, store, ref.name, found) if cache_dir is not None else None
    cached = _from_cache(folder) if folder is not None else None
    if cached is not None:
        return LoadedModel(cached, uri, resolved, store, ref.name, found.version)
    triage = _load_pyfunc(resolved, uri, store)
    if folder is not None:
        _store_in_cache(folder, triage)
    return LoadedModel(triage, uri, resolved, store, ref.name, found.version)
