"""Serving: predictions with attributions, a red-flag safety net, and the article's next steps.

Research software trained on synthetic data; not a medical device and not medical advice.

Example::

    import serve

    pred = serve.predict({"age": 67, "worse_walking": True, "better_sitting": True})
    pred.cause, pred.probabilities, pred.red_flag, pred.attributions, pred.to_dict()
    print(pred)                          # a readable explanation
    table = serve.predict_batch(frame)   # one row per case, same content as predict

``serve.load(model_uri)`` picks a model (default ``models:/sciatica-triage@champion``);
``sciatica-triage predict case.json`` is the command line (:mod:`serve.cli`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from model.intake import IntakeError
    from serve.api import Predictor, clear_cache, load, predict, predict_batch
    from serve.loading import DEFAULT_MODEL_URI, ModelNotFoundError
    from serve.prediction import Prediction
    from serve.questions import Question, next_questions

_HOME = {
    "DEFAULT_MODEL_URI": "serve.loading",
    "IntakeError": "model.intake",
    "ModelNotFoundError": "serve.loading",
    "Prediction": "serve.prediction",
    "Predictor": "serve.api",
    "Question": "serve.questions",
    "clear_cache": "serve.api",
    "load": "serve.api",
    "next_questions": "serve.questions",
    "predict": "serve.api",
    "predict_batch": "serve.api",
}
"""Where each public name lives. They are imported on first use, so that ``sciatica-triage``
(``serve.cli``) starts without NumPy, pandas or the models, and a Ctrl-C while they load is
handled by the command rather than shown as a traceback."""

__all__ = [  # the names of _HOME, written out for readers and linters
    "DEFAULT_MODEL_URI",
    "IntakeError",
    "ModelNotFoundError",
    "Prediction",
    "Predictor",
    "Question",
    "clear_cache",
    "load",
    "next_questions",
    "predict",
    "predict_batch",
]


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'serve' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOME[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOME])
