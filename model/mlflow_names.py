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

__all__ = ["CHAMPION_ALIAS", "CHAMPION_URI", "EXPERIMENT", "MODEL_NAME"]
