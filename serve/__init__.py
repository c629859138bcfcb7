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

from model.intake import IntakeError
from serve.api import Predictor, clear_cache, load, predict, predict_batch
from serve.loading import DEFAULT_MODEL_URI, ModelNotFoundError
from serve.prediction import Prediction
from serve.questions import Question, next_questions

__all__ = [
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
