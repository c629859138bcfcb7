"""The registry pointer: which version an alias names, kept beside a SQLite tracking store.

A start-up that only needs "which version is ``sciatica-triage@champion``, and what are its
files" should not import MLflow (seconds) nor read MLflow's internal tables (a schema that
MLflow may change at any release). So the project writes a small JSON file of its own beside
the store, ``<store file>.aliases.json``: at registration (:mod:`training.registry`), and again
whenever ``serve.loading`` has asked MLflow itself. It holds, per alias, the version; per
version, what identifies it (run, source, creation time) and the digest of the manifest of its
files recorded at registration (:mod:`model.integrity`).

The pointer also records the store file's identity (inode, size, modification time in ns) when
it was written. Any later write to the store - a new run, a moved alias, a new version - changes
that identity, so a pointer that does not match its store is **stale**: a reader then asks MLflow
(and writes a fresh pointer), and uses the stale one only to find a verified cached copy when
the store cannot be read at all. Nothing here imports MLflow.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

__all__ = [
    "POINTER_SUFFIX",
    "Pointer",
    "VersionRecord",
    "pointer_path",
    "read_pointer",
    "sqlite_store_file",
    "store_identity",
    "write_pointer",
]

POINTER_SUFFIX = ".aliases.json"
"""Appended to the SQLite store's file name: ``mlflow.db`` -> ``mlflow.db.aliases.json``."""
FORMAT = 1


@dataclass(frozen=True)
class VersionRecord:
    """A registry version and what identifies its content.

    Attributes
    ----------
    version, run_id, source, created : str
        The registry's version number, training run, artifact source and creation time.
    manifest_sha256 : str
        The digest of the manifest of the version's files, recorded at registration; empty if
        the version was registered without one.
    """

    version: str
    run_id: str
    source: str
    created: str
    manifest_sha256: str = ""


@dataclass(frozen=True)
class Pointer:
    """A pointer file's content: aliases (``name@alias`` -> version) and versions
    (``name/version`` -> :class:`VersionRecord`), and whether the store has changed since."""

    aliases: dict[str, str]
    versions: dict[str, VersionRecord]
    fresh: bool

    def lookup(self, name: str, alias: str | None, version: str | None) -> VersionRecord | None:
        """The record for ``name@alias`` or ``name/version``; ``None`` if the pointer has none."""
        if alias is not None:
            version = self.aliases.get(f"{name}@{alias}")
        return None if version is None else self.versions.get(f"{name}/{version}")


def sqlite_store_file(store: str) -> Path | None:
    """The file of a ``sqlite:`` tracking URI; ``None`` for other stores and in-memory SQLite.

    ``sqlite:///name.db`` is relative to the working directory, ``sqlite:////abs/name.db``
    absolute (SQLAlchemy's convention).
    """
    if not store.startswith("sqlite:"):
        return None
    path = unquote(store.removeprefix("sqlite:").removeprefix("///").split("?")[0])
    return None if path in ("", ":memory:") else Path(path)


def pointer_path(store_file: Path) -> Path:
    """Where the pointer of the SQLite store ``store_file`` lives."""
    return store_file.with_name(store_file.name + POINTER_SUFFIX)


def store_identity(store_file: Path) -> list[int] | None:
    """The store file's inode, size and modification time (ns); ``None`` if it does not exist."""
    try:
        stat = store_file.stat()
    except OSError:
        return None
    return [stat.st_ino, stat.st_size, stat.st_mtime_ns]


def read_pointer(store_file: Path) -> Pointer | None:
    """The pointer beside ``store_file``; ``None`` if there is none or it cannot be read."""
    try:
        data = json.loads(pointer_path(store_file).read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            return None
        versions = {key: VersionRecord(**value) for key, value in data["versions"].items()}
        aliases = {str(k): str(v) for k, v in data["aliases"].items()}
        fresh = data["store"] == store_identity(store_file)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    return Pointer(aliases, versions, fresh)


def write_pointer(
    store_file: Path,
    aliases: dict[str, str],
    versions: dict[str, VersionRecord],
    identity: list[int] | None = None,
) -> bool:
    """Write the pointer atomically (a temporary file renamed over it); ``False`` if it could not.

    Parameters
    ----------
    store_file : Path
        The SQLite store.
    aliases, versions : dict
        What :class:`Pointer` holds.
    identity : list of int, optional
        The store's identity the content is true for (default: the store's identity now). A
        reader that read the store between two identities passes the first, so a write to the
        store meanwhile leaves the pointer stale rather than wrong.
    """
    identity = store_identity(store_file) if identity is None else identity
    if identity is None:
        return False
    content: dict[str, Any] = {
        "format": FORMAT,
        "about": "written by sciatica-triage: which registry version each alias names",
        "store": identity,
        "aliases": aliases,
        "versions": {key: asdict(record) for key, record in versions.items()},
    }
    target = pointer_path(store_file)
    try:
        handle, temporary = tempfile.mkstemp(prefix=".aliases-", dir=target.parent)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(content, out, indent=2, sort_keys=True)
        os.replace(temporary, target)
    except OSError:  # a read-only folder: the pointer only saves time
        with contextlib.suppress(OSError, UnboundLocalError):
            os.unlink(temporary)
        return False
    return True
