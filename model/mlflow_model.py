"""Entry point of the pyfunc model logged "from code" (MLflow models-from-code)."""

from mlflow.models import set_model

from model.pyfunc import TriagePyfunc

set_model(TriagePyfunc())
