"""The names by which MLflow knows this project, defined once.

``model`` is the lowest layer that every user of these names may import: the pyfunc and
:class:`~model.triage.TriageModel` (which name the model that answered), ``serve`` (which loads
the champion by default), ``training`` (which logs to the experiment and registers the model) and
the benchmarks. Nothing here imports MLflow.
"""

from __future__ import annotations

MODEL_NAME = "sciatica-triage"
"""The registered model's name in the MLflow model registry."""

CHAMPION_ALIAS = "champion"
"""The registry alias of the served version; it moves only to a better model."""

CHAMPION_URI = f"models:/{MODEL_NAME}@{CHAMPION_ALIAS}"
"""What ``serve.predict`` loads by default and ``mlflow models serve -m`` is given."""

EXPERIMENT = "sciatica-triage"
"""The MLflow experiment that ``make train`` logs its comparison runs to."""

MANIFEST_TAG = "model_manifest_sha256"
"""The model version tag that holds the digest of the manifest of the version's files, set at
registration (:mod:`model.integrity`); a copy whose files do not match it is never loaded."""

__all__ = ["CHAMPION_ALIAS", "CHAMPION_URI", "EXPERIMENT", "MANIFEST_TAG", "MODEL_NAME"]
