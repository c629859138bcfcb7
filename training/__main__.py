"""``python -m training``: the command behind ``make train``."""

from __future__ import annotations

import argparse
import os
import sys

from model.mlflow_names import CHAMPION_ALIAS, MODEL_NAME
from training.config import TrainConfig, add_arguments, from_arguments
from training.interrupt import stopped_cleanly
from training.pipeline import train


def build_parser() -> argparse.ArgumentParser:
    """The command line: one option per :class:`TrainConfig` field, generated from its fields."""
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description=(
            "Generate synthetic vignettes, train every candidate, compare them in MLflow against "
            "the article's rules and the Bayes ceiling, and register the best as "
            f"'{MODEL_NAME}@{CHAMPION_ALIAS}'. Tracks to $MLFLOW_TRACKING_URI (make train: "
            "sqlite:///mlflow.db in the checkout)."
        ),
    )
    add_arguments(parser)
    return parser


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    """The :class:`TrainConfig` a command line asks for."""
    return from_arguments(build_parser().parse_args(argv))


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    with stopped_cleanly() as stop:  # SIGINT / SIGTERM: one line, runs KILLED, alias put back
        outcome = train(cfg)
    if stop.interrupted:
        return stop.exit_code
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    print(f"Comparison run: {outcome.parent_run_id}")
    if outcome.model_version:
        state = "now" if outcome.alias_moved else "not (the current champion is better)"
        print(
            f"Registered {MODEL_NAME} v{outcome.model_version}; "
            f"@{CHAMPION_ALIAS} {state} points to it."
        )
    if uri.startswith("sqlite"):
        print("Browse the runs: `make ui`, then open http://127.0.0.1:5000")
    print("Research software trained on synthetic data: not a medical device, not medical advice.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
