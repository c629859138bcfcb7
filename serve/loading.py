"""Find and load a triage model through MLflow, and say which registry version it is.

``models:/<name>@<alias>``, ``models:/<name>/<version>`` and ``models:/<name>/latest`` URIs are
resolved to a concrete registry version with :class:`mlflow.MlflowClient` first, and that exact
version is loaded, so the name and version a prediction reports are the ones that answered even
if an alias moves meanwhile. Any other URI (``runs:/...``, a local path) is loaded as is, and the
name and version come from the model's own metadata.

mlflow is imported inside the functions: ``import serve`` and ``sciatica-triage --help`` stay fast.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from model.triage import TriageModel

__all__ = [
    "DEFAULT_MODEL_URI",
    "LoadedModel",
    "ModelNotFoundError",
    "RegistryRef",
    "load_triage_model",
    "parse_registry_uri",
    "tracking_uri",
]

DEFAULT_MODEL_URI = "models:/sciatica-triage@champion"
"""The registered champion (``make train`` registers it)."""

_REGISTRY_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>[^/@]+))$")


class ModelNotFoundError(LookupError):
    """No model is registered (or logged) under the URI asked for."""


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
    checkout).
    """
    import mlflow

    return mlflow.get_tracking_uri()


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


def _resolve_version(ref: RegistryRef, store: str) -> str:
    """The concrete registry version ``ref`` points to, or :class:`ModelNotFoundError`."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=store)
    try:
        if ref.alias is not None:
            return str(client.get_model_version_by_alias(ref.name, ref.alias).version)
        if ref.version == "latest":
            versions = client.search_model_versions(f"name = '{ref.name}'")
            if not versions:
                raise _not_found(f"registered as {ref.name!r}", store)
            return str(max(int(v.version) for v in versions))
        return str(client.get_model_version(ref.name, str(ref.version)).version)
    except MlflowException as exc:
        where = f"@{ref.alias}" if ref.alias is not None else f" version {ref.version}"
        raise _not_found(f"registered as {ref.name}{where}", store, exc) from exc


def load_triage_model(model_uri: str | None = None) -> LoadedModel:
    """Load the triage model behind ``model_uri`` (default: the registered champion).

    Parameters
    ----------
    model_uri : str, optional
        Any URI ``mlflow.pyfunc.load_model`` accepts; default :data:`DEFAULT_MODEL_URI`.

    Returns
    -------
    LoadedModel

    Raises
    ------
    ModelNotFoundError
        If the registry has no such model, alias or version, or the URI holds no model.
    TypeError
        If the URI holds a pyfunc that is not a sciatica-triage model.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    uri = model_uri or DEFAULT_MODEL_URI
    store = tracking_uri()
    ref = parse_registry_uri(uri)
    resolved, name, version = uri, None, None
    if ref is not None:
        name, version = ref.name, _resolve_version(ref, store)
        resolved = f"models:/{ref.name}/{version}"
    try:
        pyfunc = mlflow.pyfunc.load_model(resolved)
    except (MlflowException, OSError) as exc:
        raise _not_found(f"at {uri!r}", store, exc) from exc
    triage: Any = getattr(pyfunc.unwrap_python_model(), "model", None)
    if not callable(getattr(triage, "predict", None)) or not hasattr(triage, "meta"):
        raise TypeError(f"{uri}: not a sciatica-triage model (no TriageModel inside the pyfunc)")
    name = name or str(triage.meta.get("name", "sciatica-triage"))
    version = version or str(triage.meta.get("version", "unregistered"))
    return LoadedModel(triage, uri, resolved, store, name, version)
