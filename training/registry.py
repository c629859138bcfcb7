"""Log the pyfunc model from code, register it, move the champion alias only when earned, and
describe the registered model and each version (the registry's description fields).

Each registered version carries the digest of the manifest of every file of the logged model
(tag :data:`MANIFEST_TAG`, see :mod:`model.integrity`), set before the alias may move to it, and
a SQLite store gets the project's registry pointer beside it (:mod:`model.registry_pointer`).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import NamedTuple

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, DataType, Schema
from mlflow.types.schema import Array

import model as model_package
import vignettes as vignettes_package
from model.integrity import manifest_digest, tree_manifest, write_bundle_manifest
from model.mlflow_names import CHAMPION_ALIAS, MANIFEST_TAG
from model.registry_pointer import (
    VersionRecord,
    sqlite_store_file,
    store_identity,
    write_pointer,
)
from model.triage import LIST_COLUMNS, OUTPUT_COLUMNS, TriageModel
from training.candidates import Split
from training.metrics import cause_metrics
from vignettes.schema import FIELDS

ALIAS = CHAMPION_ALIAS
MODEL_CODE = Path(model_package.__file__).with_name("mlflow_model.py")
_MLFLOW_TYPES = {"int": "long", "float": "double", "bool": "boolean", "category": "string"}
_RUNTIME_PACKAGES = (
    "mlflow",
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "lightgbm",
    "shap",
    "skops",
)


def input_schema() -> Schema:
    """Every contract field, typed; only ``age`` is required.

    Documentation only: the logged model declares no input schema (see ``model.pyfunc``), because
    MLflow would coerce the answers to these types before ``model.intake`` could refuse them.
    """
    return Schema(
        [ColSpec(_MLFLOW_TYPES[f.kind], f.name, required=f.name == "age") for f in FIELDS]
    )


def output_schema(sample: pd.DataFrame) -> Schema:
    """The pyfunc's output columns, typed from a sample; list outputs are arrays of strings."""
    kinds = {"b": "boolean", "f": "double", "i": "long"}
    return Schema(
        [
            ColSpec(Array(DataType.string), c)
            if c in LIST_COLUMNS
            else ColSpec(kinds.get(sample[c].dtype.kind, "string"), c)
            for c in OUTPUT_COLUMNS
        ]
    )


def input_example(frame: pd.DataFrame) -> list[dict]:
    """A few cases as JSON-ready dicts, with unknown answers simply left out."""
    records = []
    for _, row in frame[[f.name for f in FIELDS]].iterrows():
        case = {k: v for k, v in row.items() if not pd.isna(v)}
        records.append({k: v.item() if isinstance(v, np.generic) else v for k, v in case.items()})
    return records


def pip_requirements() -> list[str]:
    return [f"{name}=={metadata.version(name)}" for name in _RUNTIME_PACKAGES]


def log_triage_model(triage: TriageModel, card: str, example_frame: pd.DataFrame) -> str:
    """Log ``triage`` as a pyfunc model from code in the active run; return its model URI."""
    with tempfile.TemporaryDirectory() as tmp:
        bundle = triage.save(Path(tmp) / "bundle")
        (bundle / "MODEL_CARD.md").write_text(card)
        write_bundle_manifest(bundle)  # the card too
        example = input_example(example_frame)
        output = triage.predict(pd.DataFrame(example))
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(MODEL_CODE),
            artifacts={"bundle": str(bundle)},
            code_paths=[
                str(Path(model_package.__file__).parent),
                str(Path(vignettes_package.__file__).parent),
            ],
            # outputs only: an input schema would make MLflow coerce answers before validation
            signature=ModelSignature(outputs=output_schema(output)),
            input_example=pd.DataFrame(example),
            pip_requirements=pip_requirements(),
        )
        mlflow.log_text(card, "MODEL_CARD.md")
    return info.model_uri


def _current_champion_log_loss(name: str, test: Split) -> tuple[str | None, float]:
    client = mlflow.MlflowClient()
    try:
        current = client.get_model_version_by_alias(name, ALIAS)
    except MlflowException:
        return None, float("inf")
    try:
        loaded = mlflow.pyfunc.load_model(f"models:/{name}@{ALIAS}")
        triage = loaded.unwrap_python_model().model
        return current.version, cause_metrics(triage.cause.proba(test.X), test.y)["log_loss"]
    except Exception as exc:  # an older, incompatible champion is replaced, and we say why
        print(f"  current champion v{current.version} could not be scored ({exc}); replacing it")
        return current.version, float("inf")


_ALIAS_MOVES: list[tuple[str, str, str | None]] = []
"""Aliases this process moved since :func:`forget_alias_moves`: (name, alias, previous version)."""


def forget_alias_moves() -> None:
    """Start recording alias moves afresh (:func:`training.interrupt.stopped_cleanly` does)."""
    _ALIAS_MOVES.clear()


def undo_alias_moves() -> list[str]:
    """Put every alias moved since :func:`forget_alias_moves` back where it was, newest first.

    Returns
    -------
    list of str
        What was done, e.g. ``"@champion back on v3"``, for the interrupted run's message.
    """
    client = mlflow.MlflowClient()
    done = []
    names = set()
    while _ALIAS_MOVES:
        name, alias, previous = _ALIAS_MOVES.pop()
        names.add(name)
        if previous is None:
            with contextlib.suppress(MlflowException):  # never set: nothing to remove
                client.delete_registered_model_alias(name, alias)
            done.append(f"@{alias} removed (no version had it before)")
        else:
            client.set_registered_model_alias(name, alias, previous)
            done.append(f"@{alias} back on v{previous}")
    for name in names:
        write_registry_pointer(name)
    return done


class Registration(NamedTuple):
    """A registered version and whether ``@champion`` moved to it, with the reason in words."""

    version: str
    moved: bool
    decision: str


def register_champion(
    name: str,
    model_uri: str,
    triage: TriageModel,
    test: Split,
    say: Callable[[str], None],
    test_proba: np.ndarray | None = None,
) -> Registration:
    """Register a new version; move ``@champion`` only if it beats the current one on ``test``.

    Both models are scored on the same test set, so the comparison is fair even when the
    current champion was trained on other data. ``test_proba``, the new model's cause
    probabilities on ``test`` when they are already computed, spares predicting them again.
    """
    current_version, current_loss = _current_champion_log_loss(name, test)
    if test_proba is None:
        test_proba = triage.cause.proba(test.X)
    new_loss = cause_metrics(test_proba, test.y)["log_loss"]
    registered = mlflow.register_model(model_uri, name)
    client = mlflow.MlflowClient()
    record_manifest(name, registered.version)  # before the alias can point at the version
    client.set_model_version_tag(name, registered.version, "test_log_loss", f"{new_loss:.5f}")
    moved = new_loss < current_loss
    if current_version is None:
        decision = f"@{ALIAS} points to it: the first champion."
    elif moved:
        decision = (
            f"@{ALIAS} moved to it from v{current_version}: test log-loss {new_loss:.4f} "
            f"against {current_loss:.4f} on the same test set."
        )
    else:
        decision = (
            f"Not promoted: @{ALIAS} stays on v{current_version} (test log-loss "
            f"{current_loss:.4f} against this version's {new_loss:.4f} on the same test set)."
        )
    if moved:
        _ALIAS_MOVES.append((name, ALIAS, current_version))  # before the move: undo is idempotent
        client.set_registered_model_alias(name, ALIAS, registered.version)
    say(f"registered {name} v{registered.version}. {decision}")
    client.set_model_version_tag(
        name,
        registered.version,
        "champion_decision",
        "promoted" if moved else "kept previous champion",
    )
    write_registry_pointer(name)
    return Registration(registered.version, moved, decision)  # as MLflow types it, like before


def record_manifest(name: str, version: str) -> str:
    """Tag ``version`` with the digest of the manifest of every file of its model; return it.

    The files are those a download of ``models:/<name>/<version>`` gives: ``MLmodel``, the code
    MLflow runs to load it, the environment files and the bundle (:mod:`model.integrity`).
    """
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/{version}", dst_path=tmp
        )
        digest = manifest_digest(tree_manifest(Path(local)))
    mlflow.MlflowClient().set_model_version_tag(name, version, MANIFEST_TAG, digest)
    return digest


def write_registry_pointer(name: str, store: str | None = None) -> bool:
    """Write the registry pointer of a SQLite store: ``name``'s aliases and versions now.

    Nothing is written for other stores, or if the store changed while it was read (a reader
    will ask MLflow and write a fresh one). Returns whether a pointer was written.

    Parameters
    ----------
    name : str
        The registered model.
    store : str, optional
        The tracking URI; default MLflow's current one.
    """
    store = store or mlflow.get_tracking_uri()
    store_file = sqlite_store_file(store)
    if store_file is None:
        return False
    before = store_identity(store_file)
    client = mlflow.MlflowClient(tracking_uri=store)
    aliases = {f"{name}@{a}": str(v) for a, v in client.get_registered_model(name).aliases.items()}
    versions = {
        f"{name}/{v.version}": VersionRecord(
            str(v.version),
            str(v.run_id),
            str(v.source),
            str(v.creation_timestamp),
            str((v.tags or {}).get(MANIFEST_TAG, "")),
        )
        for v in client.search_model_versions(f"name = '{name}'")
    }
    if before is None or store_identity(store_file) != before:
        return False
    return write_pointer(store_file, aliases, versions, before)


def describe(name: str, version: str, version_text: str, model_text: str | None = None) -> None:
    """Write the registry's description of ``version`` and, if given, of the registered model."""
    client = mlflow.MlflowClient()
    client.update_model_version(name, version, description=version_text)
    if model_text is not None:
        client.update_registered_model(name, description=model_text)
