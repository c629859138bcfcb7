"""Find and load a triage model through MLflow, and say which registry version it is.

``models:/<name>@<alias>``, ``models:/<name>/<version>`` and ``models:/<name>/latest`` URIs are
resolved to a concrete registry version with :class:`mlflow.MlflowClient` first, and that exact
version is loaded, so the name and version a prediction reports are the ones that answered even
if an alias moves meanwhile. Any other URI (``runs:/...``, a local path) is loaded as is, and the
name and version come from the model's own metadata.

Nothing here creates a tracking store: a local store (SQLite file, file-store folder) that does
not exist is reported, never made.

Integrity. Every registry version carries the digest of the manifest of all its files, recorded
at registration (:mod:`model.integrity`, :data:`model.mlflow_names.MANIFEST_TAG`). A version is
downloaded into a folder of its own and checked against that digest before MLflow or any model
library reads a file; a copy that differs is refused (:class:`ModelDamagedError`), never served.

The fast start. With ``cache_dir``, the checked download is kept as a local copy (keyed by store,
name, version, run, creation time and manifest digest), with the TreeSHAP tables already built and
their digests recorded; a later load checks the copy again and reads it without MLflow. Which
version an alias names comes from the project's registry pointer beside a SQLite store
(:mod:`model.registry_pointer`) while the store has not changed since it was written, and from
MLflow's client otherwise (which writes the pointer anew) - never from MLflow's internal tables.
A damaged copy is replaced by renames; leftovers of a stopped process are removed. When the store
cannot be read (locked, another schema), the version the pointer last named is served from its
verified copy with a :class:`StoreFallbackWarning`; with no copy, the error is one line, and
MLflow's own logging is kept quiet.

mlflow is imported inside the functions: ``import serve`` and ``sciatica-triage --help`` stay fast.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import logging
import os
import re
import shutil
import sqlite3
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np

from model.integrity import BUNDLE_MANIFEST, DamagedModelError, check_tree, file_sha256
from model.mlflow_names import CHAMPION_URI, MANIFEST_TAG, MODEL_NAME
from model.registry_pointer import (
    Pointer,
    VersionRecord,
    read_pointer,
    sqlite_store_file,
    store_identity,
    write_pointer,
)
from model.shap_tables import ShapTables
from model.triage import TriageModel

__all__ = [
    "CHECKOUT_STORE",
    "DEFAULT_MODEL_URI",
    "LoadedModel",
    "ModelDamagedError",
    "ModelNotFoundError",
    "RegistryRef",
    "StoreFallbackWarning",
    "StoreUnavailableError",
    "StoreUnreadableError",
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
        return sqlite_store_file(store)
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


_Version = VersionRecord
"""A registry version and what identifies its content (the pointer's record)."""

ORPHAN_AGE_S = 15 * 60
"""A ``.incoming-*`` or ``.stale-*`` folder in the cache older than this is left over from a
process that stopped while it was writing or replacing a copy, and is removed."""
QUIET_LOGGERS = ("mlflow", "alembic", "sqlalchemy", "urllib3")


class StoreUnreadableError(StoreUnavailableError):
    """The tracking store exists but cannot be read now (locked, another schema, ...)."""


class ModelDamagedError(ModelNotFoundError):
    """A model's files differ from the manifest recorded at registration: it is not served."""


@contextlib.contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """No MLflow (alembic, SQLAlchemy) logging and no warnings while the store is read: an error
    is reported once, in one line, by the caller."""
    import mlflow  # noqa: F401 - MLflow sets its loggers' levels when imported: quieten them after

    loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    bar = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    added = bar not in os.environ
    if added:
        os.environ[bar] = "false"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
        if added:
            os.environ.pop(bar, None)


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_readable(store: str) -> None:
    """Refuse at once a SQLite store another process holds an exclusive lock on (MLflow would
    wait and retry for many seconds, then print raw SQL). Reads only SQLite's own header."""
    path = sqlite_store_file(store)
    if path is None or not path.is_file():
        return
    try:
        with contextlib.closing(
            sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=1)
        ) as db:
            db.execute("PRAGMA schema_version").fetchall()
    except sqlite3.Error as exc:
        raise StoreUnreadableError(
            f"the MLflow tracking store {path} cannot be read ({_first_line(exc)})"
        ) from None


def _resolve_version(ref: RegistryRef, store: str) -> VersionRecord:
    """The concrete registry version ``ref`` points to, asked of MLflow (its public client).

    Raises
    ------
    ModelNotFoundError
        If the registry has no such name, alias or version.
    StoreUnavailableError
        If the tracking server does not answer; :class:`StoreUnreadableError` if the store
        cannot be read (locked, another schema, another error).
    """
    _check_readable(store)
    with _quiet_mlflow():
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import (
            INVALID_PARAMETER_VALUE,
            RESOURCE_DOES_NOT_EXIST,
            ErrorCode,
        )

        try:
            client = MlflowClient(tracking_uri=store)
            if ref.alias is not None:
                found = client.get_model_version_by_alias(ref.name, ref.alias)
            elif ref.version == "latest":
                versions = client.search_model_versions(f"name = '{ref.name}'")
                if not versions:
                    raise _not_found(f"registered as {ref.name!r}", store)
                found = max(versions, key=lambda v: int(v.version))
            else:
                found = client.get_model_version(ref.name, str(ref.version))
        except ModelNotFoundError:
            raise
        except Exception as exc:
            unavailable = _store_error(store, exc)
            if unavailable is not None:
                raise unavailable from None
            # the registry says "no such name / version" (RESOURCE_DOES_NOT_EXIST) and "no such
            # alias" (INVALID_PARAMETER_VALUE); anything else means the store was not read
            missing = {
                ErrorCode.Name(RESOURCE_DOES_NOT_EXIST),
                ErrorCode.Name(INVALID_PARAMETER_VALUE),
            }
            if isinstance(exc, MlflowException) and exc.error_code in missing:
                where = f"@{ref.alias}" if ref.alias is not None else f" version {ref.version}"
                raise _not_found(f"registered as {ref.name}{where}", store) from None
            raise StoreUnreadableError(
                f"the MLflow tracking store {store} cannot be read ({_first_line(exc)})"
            ) from None
    return VersionRecord(
        str(found.version),
        str(found.run_id),
        str(found.source),
        str(found.creation_timestamp),
        str((found.tags or {}).get(MANIFEST_TAG, "")),
    )


def _find_version(
    ref: RegistryRef, store: str, cache_dir: Path | None
) -> tuple[VersionRecord, TriageModel | None]:
    """The version ``ref`` names, and its verified cached copy if there is one.

    A fresh registry pointer answers without MLflow. Otherwise MLflow answers (and the pointer
    is written anew); if the store cannot be read, the version the stale pointer last named is
    served from its verified cached copy, with a warning.
    """
    store_file = sqlite_store_file(store)
    pointer = read_pointer(store_file) if store_file is not None else None
    known = pointer.lookup(ref.name, ref.alias, ref.version) if pointer is not None else None
    if pointer is not None and pointer.fresh and known is not None:
        cached = (
            _from_cache(_cache_folder(cache_dir, store, ref.name, known)) if cache_dir else None
        )
        return known, cached
    before = store_identity(store_file) if store_file is not None else None
    try:
        found = _resolve_version(ref, store)
    except StoreUnreadableError as exc:
        cached = (
            _from_cache(_cache_folder(cache_dir, store, ref.name, known))
            if cache_dir is not None and known is not None
            else None
        )
        if known is None or cached is None:
            raise
        warnings.warn(
            f"{exc}; serving the verified local copy of {ref.name} v{known.version}, "
            "which may be out of date",
            StoreFallbackWarning,
            stacklevel=3,
        )
        return known, cached
    if store_file is not None and before is not None and ref.version != "latest":
        _refresh_pointer(store_file, ref, found, pointer, before)
    cached = _from_cache(_cache_folder(cache_dir, store, ref.name, found)) if cache_dir else None
    return found, cached


class StoreFallbackWarning(UserWarning):
    """The store could not be read, and a verified cached copy is served instead."""


def _refresh_pointer(
    store_file: Path,
    ref: RegistryRef,
    found: VersionRecord,
    pointer: Pointer | None,
    before: list[int],
) -> None:
    """Write what MLflow just said into the pointer, if the store did not change meanwhile."""
    if store_identity(store_file) != before:
        return
    keep = pointer is not None and pointer.fresh
    aliases = dict(pointer.aliases) if keep and pointer is not None else {}
    versions = dict(pointer.versions) if keep and pointer is not None else {}
    if ref.alias is not None:
        aliases[f"{ref.name}@{ref.alias}"] = found.version
    versions[f"{ref.name}/{found.version}"] = found
    write_pointer(store_file, aliases, versions, before)


def _cache_folder(cache_dir: Path, store: str, name: str, found: VersionRecord) -> Path:
    key = json.dumps(
        [store, name, found.version, found.run_id, found.source, found.created]
        + ([found.manifest_sha256] if found.manifest_sha256 else [])
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    return cache_dir / f"{name}-v{found.version}-{digest}"


COPY_RECORD = "copy.json"
"""In a cache folder: the model manifest's digest, the bundle's place and the tables' digests."""


def _named_scorers(triage: TriageModel) -> dict[str, Any]:
    """Every tree scorer of the model by the name its tables are cached under: ``cause``,
    ``red_flag`` and ``serious-<condition>`` for each serious-type scorer."""
    named: dict[str, Any] = {"cause": triage.cause, "red_flag": triage.red_flag}
    if triage.serious is not None:
        named |= {f"serious-{c}": s for c, s in triage.serious.scorers.items()}
    return named


def _tables_bytes(triage: TriageModel) -> dict[str, bytes]:
    """Each scorer's checked TreeSHAP tables as ``.npz`` bytes (building them is most of a warm
    start's load time for a large champion)."""
    out = {}
    for name, scorer in _named_scorers(triage).items():
        tables = scorer.shap_tables()
        if tables is not None:
            arrays = {
                f.name: np.asarray(getattr(tables, f.name))
                for f in dataclasses.fields(tables)
                if getattr(tables, f.name) is not None
            }
            buffer = io.BytesIO()
            np.savez(buffer, **arrays)  # type: ignore[arg-type]
            out[name] = buffer.getvalue()
    return out


def _use_tables(triage: TriageModel, name: str, data: bytes) -> None:
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        values: dict[str, Any] = {k: arrays[k] for k in arrays.files}
    for key in ("n_features", "n_scores"):
        values[key] = int(values[key])
    values.setdefault("zero_node", None)
    values.setdefault("zero_right", None)
    scorer = _named_scorers(triage).get(name)
    if scorer is None:
        raise DamagedModelError(f"{name}.shap_tables.npz: the model has no such scorer")
    scorer.use_tables(ShapTables(**values))
    _check_tables(scorer, name)


def _probe_rows() -> np.ndarray:
    from model.features import encode_case
    from model.intake import validate_case

    cases = [{"age": age, "numbness": age > 50, "worse_walking": age > 60} for age in (25, 55, 85)]
    return np.vstack([encode_case(validate_case(case)) for case in cases])


def _check_tables(scorer: Any, name: str) -> None:
    """Cached tables must give the library's own scores on probe rows (a changed table that
    kept its digest record consistent would still be caught here)."""
    rows = _probe_rows()
    score, values, base = scorer.score_and_explain(rows)
    library = scorer.calibration.apply(scorer.library_raw(rows))
    if not np.allclose(score, library, rtol=1e-6, atol=1e-9) or not np.allclose(
        values.sum(axis=1) + base, score.max(axis=1), rtol=1e-6, atol=1e-9
    ):
        raise DamagedModelError(f"{name}: the cached TreeSHAP tables disagree with the model")


def _bundle_of(model_dir: Path) -> Path:
    """The bundle folder inside a downloaded MLflow model (where its manifest is)."""
    found = sorted(model_dir.glob(f"artifacts/*/{BUNDLE_MANIFEST}"))
    if len(found) != 1:
        raise DamagedModelError(f"{model_dir}: no model bundle with a manifest inside")
    return found[0].parent


def _read_copy(folder: Path, found: VersionRecord | None = None) -> TriageModel:
    """The model in a cache folder, every file checked; raises if anything differs."""
    record = json.loads((folder / COPY_RECORD).read_text())
    expected = found.manifest_sha256 if found is not None else record["manifest_sha256"]
    if not expected or record["manifest_sha256"] != expected:
        raise DamagedModelError(f"{folder}: a copy of another registry entry")
    model_dir = folder / "model"
    check_tree(model_dir, expected, f"{folder}")
    triage = TriageModel.load(_bundle_of(model_dir))
    for name, entry in record["tables"].items():
        data = (folder / f"{name}.shap_tables.npz").read_bytes()
        if file_sha256(data) != entry:
            raise DamagedModelError(f"{folder / name}.shap_tables.npz: damaged or changed")
        _use_tables(triage, name, data)
    return triage


def _from_cache(folder: Path) -> TriageModel | None:
    """The verified model in a cache folder; ``None`` if there is none, or it is damaged (it is
    then replaced from the registry)."""
    if not (folder / COPY_RECORD).is_file():
        return None
    try:
        return _read_copy(folder)
    except Exception:  # a damaged copy of any kind is replaced, never served
        return None


def _clean_orphans(cache_dir: Path, now: float | None = None) -> None:
    """Remove ``.incoming-*`` / ``.stale-*`` folders that a stopped process left behind."""
    now = time.time() if now is None else now
    with contextlib.suppress(OSError):
        for entry in cache_dir.iterdir():
            if entry.name.startswith((".incoming-", ".stale-")):
                with contextlib.suppress(OSError):
                    if now - entry.stat().st_mtime > ORPHAN_AGE_S:
                        shutil.rmtree(entry, ignore_errors=True)


def _install(work: Path, folder: Path) -> None:
    """Put the complete copy ``work`` at ``folder`` by renames; a damaged copy there is moved
    aside first and removed, so a reader sees the old folder, no folder, or the new one."""
    stale = None
    if folder.exists():
        stale = folder.with_name(f".stale-{folder.name}-{os.getpid()}-{time.time_ns()}")
        try:
            folder.rename(stale)
        except OSError:
            stale = None
    try:
        work.rename(folder)
    except OSError:  # another process installed a copy meanwhile: theirs stays
        shutil.rmtree(work, ignore_errors=True)
    if stale is not None:
        shutil.rmtree(stale, ignore_errors=True)


def _store_in_cache(work: Path, folder: Path, found: VersionRecord, triage: TriageModel) -> None:
    """Add the tables and the record to the verified download ``work``; keep it only if it reads
    back and answers exactly as ``triage`` does. A full or read-only disk only costs speed."""
    from model.intake import validate_case

    probe = [validate_case({"age": age, "numbness": age > 50}) for age in (25, 55, 85)]
    try:
        tables = _tables_bytes(triage)
        for name, data in tables.items():
            (work / f"{name}.shap_tables.npz").write_bytes(data)
        record = {
            "manifest_sha256": found.manifest_sha256,
            "tables": {name: file_sha256(data) for name, data in tables.items()},
        }
        (work / COPY_RECORD).write_text(json.dumps(record, indent=2))
        # the pyfunc stamped its registry version into its meta; the copy is stamped on loading
        copy = dataclasses.replace(_read_copy(work, found), meta=triage.meta)
        if all(copy.predict_case(case) == triage.predict_case(case) for case in probe):
            _install(work, folder)
    except (OSError, DamagedModelError):
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
        with _quiet_mlflow():
            pyfunc = mlflow.pyfunc.load_model(resolved)
    except DamagedModelError as exc:
        raise ModelDamagedError(f"{uri}: not served, {exc}") from None
    except (MlflowException, OSError) as exc:
        unavailable = _store_error(store, exc)
        if unavailable is not None:
            raise unavailable from None
        raise _not_found(f"at {uri!r}", store, exc) from exc
    triage: Any = getattr(pyfunc.unwrap_python_model(), "model", None)
    if not callable(getattr(triage, "predict", None)) or not hasattr(triage, "meta"):
        raise TypeError(f"{uri}: not a sciatica-triage model (no TriageModel inside the pyfunc)")
    return triage


def _download_checked(ref: RegistryRef, found: VersionRecord, store: str, into: Path) -> Path:
    """Download the version's model files into ``into`` and check them against the manifest
    digest recorded at registration, before anything reads them."""
    import mlflow

    what = f"{ref.name} v{found.version} in the MLflow tracking store {store}"
    if not found.manifest_sha256:
        raise ModelDamagedError(
            f"{what}: registered without a manifest of its files, so it cannot be checked; "
            "register it again with `make train`"
        )
    try:
        with _quiet_mlflow():
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{ref.name}/{found.version}", dst_path=str(into)
            )
    except Exception as exc:  # any failure to fetch is one line for the user
        unavailable = _store_error(store, exc)
        if unavailable is not None:
            raise unavailable from None
        raise ModelDamagedError(f"{what}: its files cannot be read ({_first_line(exc)})") from None
    try:
        check_tree(Path(local), found.manifest_sha256, what)
    except DamagedModelError as exc:
        raise ModelDamagedError(f"{exc}: the registry copy is damaged, not served") from None
    return Path(local)


def _load_registry_version(
    ref: RegistryRef, found: VersionRecord, uri: str, store: str, cache_dir: Path | None
) -> TriageModel:
    """Download, check and load a registry version; with ``cache_dir``, keep the checked copy."""
    if cache_dir is None:
        with tempfile.TemporaryDirectory(prefix="sciatica-triage-") as tmp:
            local = _download_checked(ref, found, store, Path(tmp) / "model")
            return _load_pyfunc(str(local), uri, store)
    folder = _cache_folder(cache_dir, store, ref.name, found)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".incoming-", dir=cache_dir))
    except OSError:  # no cache folder can be made: load as if there were no cache
        return _load_registry_version(ref, found, uri, store, None)
    try:
        local = _download_checked(ref, found, store, work / "model")
        triage = _load_pyfunc(str(local), uri, store)
        _store_in_cache(work, folder, found, triage)
        return triage
    finally:
        shutil.rmtree(work, ignore_errors=True)


def load_triage_model(
    model_uri: str | None = None, *, cache_dir: Path | None = None
) -> LoadedModel:
    """Load the triage model behind ``model_uri`` (default: the registered champion).

    A registry version's files are checked against the manifest recorded at registration
    before anything reads them, whether they come from the store or from the cache.

    Parameters
    ----------
    model_uri : str, optional
        Any URI ``mlflow.pyfunc.load_model`` accepts; default :data:`DEFAULT_MODEL_URI`.
    cache_dir : Path, optional
        Keep a verified local copy of each registry version here and load from it when it is
        there; a damaged copy is replaced.

    Returns
    -------
    LoadedModel

    Raises
    ------
    ModelNotFoundError
        If the registry has no such model, alias or version, or the URI holds no model.
    ModelDamagedError
        If the model's files differ from their manifest (it is never served then).
    StoreUnavailableError
        If the local tracking store does not exist or the tracking server does not answer;
        :class:`StoreUnreadableError` if the store cannot be read and no verified copy is
        cached (with one, that copy is served and :class:`StoreFallbackWarning` says so).
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
    if cache_dir is not None:
        _clean_orphans(cache_dir)
    found, cached = _find_version(ref, store, cache_dir)
    resolved = f"models:/{ref.name}/{found.version}"
    if cached is None:
        cached = _load_registry_version(ref, found, uri, store, cache_dir)
    return LoadedModel(cached, uri, resolved, store, ref.name, found.version)
