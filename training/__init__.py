"""Train every candidate, compare them in MLflow, register the champion (``make train``)."""

from training.pipeline import CEILING, EXPERIMENT, MODEL_NAME, Outcome, TrainConfig, train

__all__ = ["CEILING", "EXPERIMENT", "MODEL_NAME", "Outcome", "TrainConfig", "train"]
