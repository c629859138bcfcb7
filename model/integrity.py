"""SHA-256 manifests of model files, checked before any library parses a byte of them.

Two manifests guard a served model:

- the **bundle manifest** (``manifest.json`` inside the bundle folder, written when the bundle
  is saved) lists every file :class:`model.triage.TriageModel` reads: the estimators, the
  scorers' calibration and the metadata. :func:`read_verified` reads each file once, checks its
  size and SHA-256 against it, and hands the checked bytes to the parsers (LightGBM, skops,
  JSON), so a truncated or changed file is refused with :class:`DamagedModelError` instead of
  reaching native code (a truncated LightGBM model file makes the library crash the process);
- the **model manifest** (:func:`tree_manifest`) lists every file of the logged MLflow model
  (``MLmodel``, the code it runs, the bundle); its digest is recorded in the registry when a
  version is registered, and ``serve.loading`` checks a downloaded or cached copy against it
  before loading it.

A manifest's digest (:func:`manifest_digest`) is the SHA-256 of its canonical JSON, so two
manifests are equal exactly when their digests are.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "BUNDLE_MANIFEST",
    "IGNORED_NAMES",
    "DamagedModelError",
    "check_tree",
    "file_sha256",
    "manifest_digest",
    "read_verified",
    "tree_manifest",
    "write_bundle_manifest",
]

BUNDLE_MANIFEST = "manifest.json"
"""The bundle manifest's file name, inside the bundle folder."""
IGNORED_NAMES = frozenset({"__pycache__", "registered_model_meta"})
"""Names left out of a model manifest: Python's byte-code caches, and the file MLflow adds to a
model it downloads by registry version (its name and version, not part of the model)."""

Manifest = dict[str, dict[str, int | str]]
"""Relative POSIX path -> ``{"size": bytes, "sha256": hex digest}``."""


class DamagedModelError(ValueError):
    """A model file is missing, or differs from its manifest; the message names the file."""


def file_sha256(data: bytes) -> str:
    """The SHA-256 of ``data``, in hex."""
    return hashlib.sha256(data).hexdigest()


def _entry(data: bytes) -> dict[str, int | str]:
    return {"size": len(data), "sha256": file_sha256(data)}


def manifest_digest(files: Mapping[str, Mapping[str, int | str]]) -> str:
    """The SHA-256 of a manifest's canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(dict(files), sort_keys=True, separators=(",", ":"))
    return file_sha256(text.encode())


def _files_under(root: Path) -> list[Path]:
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and not IGNORED_NAMES.intersection(p.relative_to(root).parts)
    )


def tree_manifest(root: Path) -> Manifest:
    """Size and SHA-256 of every file under ``root`` (but :data:`IGNORED_NAMES`)."""
    return {p.relative_to(root).as_posix(): _entry(p.read_bytes()) for p in _files_under(root)}


def check_tree(root: Path, expected_digest: str, what: str) -> None:
    """Refuse the files under ``root`` unless their manifest's digest is ``expected_digest``.

    Raises
    ------
    DamagedModelError
        Naming ``what`` and the digests; use :func:`tree_manifest` to find the file.
    """
    found = manifest_digest(tree_manifest(root))
    if found != expected_digest:
        raise DamagedModelError(
            f"{what}: its files differ from the manifest recorded at registration "
            f"(SHA-256 {found[:12]}... where {expected_digest[:12]}... was recorded)"
        )


def write_bundle_manifest(bundle: Path) -> str:
    """Write ``bundle/manifest.json`` listing every other file of the bundle; return its digest."""
    files = {
        name: entry for name, entry in tree_manifest(bundle).items() if name != BUNDLE_MANIFEST
    }
    (bundle / BUNDLE_MANIFEST).write_text(json.dumps({"files": files}, indent=2, sort_keys=True))
    return manifest_digest(files)


def read_verified(bundle: Path) -> dict[str, bytes]:
    """Every file the bundle manifest lists, read once and checked against it.

    Returns
    -------
    dict
        Relative POSIX path -> the file's bytes, each matching its recorded size and SHA-256.

    Raises
    ------
    DamagedModelError
        If the manifest is missing or unreadable, or a file is missing, of another size or of
        another digest; the message names the file.
    """
    bundle = Path(bundle)
    where = bundle / BUNDLE_MANIFEST
    try:
        files = json.loads(where.read_bytes())["files"]
        if not isinstance(files, dict) or not files:
            raise TypeError("no files listed")
    except FileNotFoundError:
        raise DamagedModelError(
            f"{where}: no manifest (the model was saved before manifests were recorded, or the "
            "copy is incomplete); register the model again with `make train`"
        ) from None
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise DamagedModelError(f"{where}: unreadable manifest ({exc})") from None
    out: dict[str, bytes] = {}
    for name, entry in sorted(files.items()):
        path = bundle / name
        if ".." in Path(name).parts or Path(name).is_absolute():
            raise DamagedModelError(f"{where}: a listed file lies outside the bundle: {name!r}")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DamagedModelError(
                f"{path}: listed in the manifest but unreadable ({exc})"
            ) from None
        if len(data) != entry.get("size") or file_sha256(data) != entry.get("sha256"):
            raise DamagedModelError(
                f"{path}: damaged or changed ({len(data):,} bytes, SHA-256 "
                f"{file_sha256(data)[:12]}...; the manifest records {entry.get('size')} bytes, "
                f"{str(entry.get('sha256'))[:12]}...)"
            )
        out[name] = data
    return out
