"""How many questions does the adaptive order need? Simulated patients answer truthfully.

Patients are complete vignettes (the generator with no hidden answers). Every order starts from
the presenting history (age and duration) and asks one question at a time; after each answer the
cause is predicted by the exact posterior. Orders compared:

- ``adaptive``: the product's order (:func:`serve.questions.rank_questions`): unasked red-flag
  questions first, then expected information gain about the cause;
- ``adaptive_information_only``: expected information gain about the cause, red flags included
  only when they inform it (what the order would be without the safety rule);
- ``fixed``: the questionnaire's order (the contract's field order);
- ``random``: a random order per patient (seeded).

The figure for each order is the number of questions needed to come within one percentage point
of the complete intake's accuracy; the reference is the fixed questionnaire's number. The curve
(accuracy against questions asked) is logged to MLflow and drawn to
``tests/bench/figures/question_order.png`` for the README.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import vignettes
from model.intake import validate_frame
from serve.questions import ASKABLE, information_gain, rank_questions
from tests.bench import result
from vignettes.schema import CAUSES, FIELD_NAMES

FIGURE = Path(__file__).with_name("figures") / "question_order.png"
START = ("age", "duration_weeks")


def complete_patients(n: int, seed: int) -> pd.DataFrame:
    """Vignettes with every answer known: patients who can answer every question."""
    kb = vignettes.load_knowledge()
    full = dataclasses.replace(kb, missing=dict.fromkeys(kb.missing, 0.0), red_flag_block=0.0)
    return vignettes.generate(n, seed, knowledge=full)


def _accuracy(frame: pd.DataFrame, y: np.ndarray) -> float:
    post = vignettes.posterior(frame)[list(CAUSES)].to_numpy()
    return float((post.argmax(axis=1) == y).mean())


def _reveal(known: pd.DataFrame, full: pd.DataFrame, chosen: list[str | None]) -> None:
    picks = pd.Series(chosen, index=known.index)
    for field, rows in picks.dropna().groupby(picks.dropna()).groups.items():
        known.loc[rows, field] = full.loc[rows, field]


def _next_adaptive(known: pd.DataFrame, red_first: bool) -> list[str | None]:
    if red_first:
        return [q[0].field if q else None for q in rank_questions(known, 1)]
    gain = information_gain(known, ASKABLE)["cause"]
    return [None if row.isna().all() else row.idxmax() for _, row in gain.iterrows()]


def simulate(full: pd.DataFrame, order: str, seed: int) -> list[float]:
    """Accuracy after 0, 1, 2, ... questions under one order."""
    y = full["cause"].cat.codes.to_numpy()
    fields = full[list(FIELD_NAMES)]
    known = validate_frame(fields[list(START)])
    rng = np.random.default_rng(seed)
    random_orders = [list(rng.permutation(ASKABLE)) for _ in range(len(full))]
    curve = [_accuracy(known, y)]
    for step in range(len(ASKABLE)):
        if order == "fixed":
            chosen = [ASKABLE[step]] * len(full)
        elif order == "random":
            chosen = [o[step] for o in random_orders]
        else:
            chosen = _next_adaptive(known, red_first=order == "adaptive")
        _reveal(known, fields, chosen)
        curve.append(_accuracy(known, y))
    return curve


def questions_needed(curve: list[float], target: float) -> float:
    """First number of questions whose accuracy is within one point of ``target``; NaN when
    the order never gets there (the interview leaves the examination signs to a clinician, so
    its curve can stop short of the complete intake's accuracy)."""
    return next((float(i) for i, acc in enumerate(curve) if acc >= target - 0.01), math.nan)


def _plot(curves: dict[str, list[float]], complete: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for name, curve in curves.items():
        ax.plot(range(len(curve)), curve, marker=".", label=name)
    ax.axhline(complete, color="black", ls="--", label="complete intake")
    ax.axhline(complete - 0.01, color="grey", ls=":", label="within 1 point")
    ax.set_xlabel("questions asked (after age and duration)")
    ax.set_ylabel("accuracy of the Bayes posterior")
    ax.set_title("Next best question vs fixed and random orders (simulated patients)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    FIGURE.parent.mkdir(exist_ok=True)
    fig.savefig(FIGURE, dpi=110)
    _log_to_mlflow(curves, complete, fig)
    plt.close(fig)


def _log_to_mlflow(curves: dict[str, list[float]], complete: float, fig: Any) -> None:
    import mlflow

    from model.mlflow_names import EXPERIMENT

    mlflow.set_experiment(EXPERIMENT)
    with mlflow.start_run(run_name="question-order-benchmark"):
        mlflow.set_tag("role", "benchmark")
        mlflow.log_metric("complete_intake_accuracy", complete)
        for name, curve in curves.items():
            for step, acc in enumerate(curve):
                mlflow.log_metric(f"accuracy_{name}", acc, step=step)
        mlflow.log_figure(fig, "question_order.png")


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Questions needed per order; logs the curves to MLflow and writes the README figure."""
    n = 150 if quick else 600
    full = complete_patients(n, seed=2024)
    complete = _accuracy(
        validate_frame(full[list(FIELD_NAMES)]), full["cause"].cat.codes.to_numpy()
    )
    orders = ("adaptive", "adaptive_information_only", "fixed", "random")
    curves = {order: simulate(full, order, seed=5) for order in orders}
    needed = {order: questions_needed(curve, complete) for order, curve in curves.items()}
    if not quick:
        _plot(curves, complete)
    out = []
    for order in orders:
        out.append(
            result(
                f"questions to reach complete accuracy: {order}",
                needed[order],
                "questions",
                reference=needed["fixed"],
                ratio=needed[order] / needed["fixed"],
                note=f"{n} simulated patients; within 1 point of {complete:.3f}; ratio to fixed; "
                f"accuracy after {len(curves[order]) - 1} questions {curves[order][-1]:.3f}",
            )
        )
    return out
