"""``python -m training``: the command behind ``make train``."""

from __future__ import annotations

import argparse
import os
import sys

from model.mlflow_names import CHAMPION_ALIAS, MODEL_NAME
from training.candidates import CANDIDATES
from training.interrupt import stopped_cleanly
from training.pipeline import TrainConfig, train
from vignettes.schema import SETTINGS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, whose defaults are :class:`TrainConfig`'s (defined there, once)."""
    default = TrainConfig()
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description=(
            "Generate synthetic vignettes, train every candidate, compare them in MLflow against "
            "the article's rules and the Bayes ceiling, and register the best as "
            f"'{MODEL_NAME}@{CHAMPION_ALIAS}'. Tracks to $MLFLOW_TRACKING_URI (make train: "
            "sqlite:///mlflow.db in the checkout)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--n-train", type=int, default=default.n_train, help="training cases")
    parser.add_argument("--n-val", type=int, default=default.n_val, help="validation cases")
    parser.add_argument("--n-test", type=int, default=default.n_test, help="test cases")
    parser.add_argument(
        "--n-cal", type=int, default=default.n_cal, help="conformal calibration cases"
    )
    parser.add_argument(
        "--alpha", type=float, default=default.alpha, help="differential miscoverage (1 - coverage)"
    )
    parser.add_argument(
        "--cost-ratio",
        type=float,
        default=default.cost_ratio,
        help="K: one missed serious condition costs as much as K false alarms; the model's "
        "review threshold is 1/(1+K)",
    )
    parser.add_argument("--seed", type=int, default=default.seed, help="dataset and model seed")
    parser.add_argument("--setting", choices=SETTINGS, default=default.setting)
    parser.add_argument(
        "--candidates",
        nargs="+",
        choices=list(CANDIDATES),
        default=list(default.candidates),
        help="candidates to train",
    )
    parser.add_argument("--experiment", default=default.experiment, help="MLflow experiment name")
    parser.add_argument("--no-learning-curve", action="store_true", help="skip the learning curve")
    parser.add_argument("--no-robustness", action="store_true", help="skip robustness checks")
    parser.add_argument("--no-register", action="store_true", help="do not register a model")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = TrainConfig(
        n_train=args.n_train,
        n_val=args.n_val,
        n_test=args.n_test,
        n_cal=args.n_cal,
        alpha=args.alpha,
        cost_ratio=args.cost_ratio,
        seed=args.seed,
        setting=args.setting,
        candidates=tuple(args.candidates),
        experiment=args.experiment,
        learning_curve=not args.no_learning_curve,
        robustness=not args.no_robustness,
        register=not args.no_register,
    )
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
