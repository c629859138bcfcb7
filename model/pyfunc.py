"""The MLflow pyfunc wrapper around :class:`model.triage.TriageModel`.

MLflow logs this model "from code" (``model/mlflow_model.py``), so the registered model holds no
pickled Python object: the code is a file and the fitted trees are skops / LightGBM text files.
"""

from __future__ import annotations

import mlflow.pyfunc
import pandas as pd

from model.triage import TriageModel


class TriagePyfunc(mlflow.pyfunc.PythonModel):  # type: ignore[name-defined]
    """Serves :meth:`TriageModel.predict` through MLflow (``models serve``, ``spark_udf``)."""

    def load_context(self, context):
        self.model = TriageModel.load(context.artifacts["bundle"]).warm_up()

    def predict(self, context, model_input, params=None):
        if isinstance(model_input, dict):
            model_input = pd.DataFrame([model_input])
        elif isinstance(model_input, list):
            model_input = pd.DataFrame(model_input)
        return self.model.predict(model_input)
