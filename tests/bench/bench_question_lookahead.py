"""Does looking ahead shorten the interview? The product order against a one-step look-ahead.

The interview's length is set by its stop rule (``serve.questions.STOP_RULE``): after the six
red-flag questions it stops once no single question left would change the triage with
probability above 2% and the top cause is settled. The product order asks, after the red flags,
the question with the most information about the cause and the triage
(:func:`serve.questions.questions_for`). The look-ahead here asks instead the question most likely
to let the rule stop right after its answer: for each of the product order's ``K`` best
questions, every answer is scored by the stop rule, and weighted by its probability given the
answers so far (the evidence of :func:`vignettes.posterior_after_answers`); the product order's
score, times ``WEIGHT``, breaks ties. It costs ``K`` times the answers' count of assessments per
question, against one.

Figures (the simulated patients of ``bench_questions``: truthful, no examination signs, the
exact posterior): per order, IL (questions asked, the six red flags included), with the
complete-intake accuracy as reference and GTPA@1 minus it as ratio; the note gives the triage
agreement (tier, timeframe and next step equal the complete intake's) and the seconds per
patient.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from serve.questions import STOP_RULE, _values, assess
from tests.bench.bench_questions import (
    Picker,
    _pick,
    complete_patients,
    complete_reference,
    metrics,
    questions_result,
    simulate,
)
from vignettes.posterior import posterior_after_answers
from vignettes.schema import RED_FLAG_FIELDS

K = 4
"""How many of the product order's best questions the look-ahead scores."""
WEIGHT = 0.05
"""The product order's score (bits) added to the chance of stopping, to break ties."""


def lookahead_picker(k: int = K, weight: float = WEIGHT) -> Picker:
    """The look-ahead order (see the module docstring), as a ``simulate`` picker."""

    def pick(a: Any, known: pd.DataFrame, asked: np.ndarray) -> np.ndarray:
        chosen = _pick(a, "product", np.zeros_like(asked, dtype=int))
        red = np.array([f in RED_FLAG_FIELDS for f in a.fields])
        free = a.candidate & ~red
        score = np.where(free, np.nan_to_num(a.cause_bits) + np.nan_to_num(a.triage_bits), -np.inf)
        ready = ~(a.candidate & red).any(axis=1)  # the red flags are asked first, whatever
        slots = [
            (i, j, value)
            for i in np.flatnonzero(ready)
            for j in np.argsort(-score[i])[:k]
            if np.isfinite(score[i, j])
            for value in _values(a.fields[j])
        ]
        if not slots:
            return chosen
        frame = known.reset_index(drop=True)
        rows = np.array([i for i, _, _ in slots])
        cols = np.array([j for _, j, _ in slots])
        answers = [(a.fields[j], v, np.array([i])) for i, j, v in slots]
        evidence = posterior_after_answers(frame, answers, "primary_care")["log_evidence"]
        log_z = evidence.to_numpy()[len(frame) :]
        possible = np.isfinite(log_z)  # an answer the other answers rule out is not scored
        rows, cols, log_z = rows[possible], cols[possible], log_z[possible]
        values = [v for (_, _, v), ok in zip(slots, possible, strict=True) if ok]
        then = frame.iloc[rows].reset_index(drop=True)
        for j in np.unique(cols):
            name = a.fields[j]
            column = then[name].astype(object).to_numpy(copy=True)
            for s in np.flatnonzero(cols == j):
                column[s] = values[s]
            then[name] = pd.Series(column).astype(frame[name].dtype)
        then_asked = asked[rows].copy()
        then_asked[np.arange(len(rows)), cols] = True
        stops = assess(then, then_asked, a.fields, rule=STOP_RULE).stop
        table = pd.DataFrame({"i": rows, "j": cols, "log_z": log_z, "stop": stops.astype(float)})
        by = table.groupby(["i", "j"])
        weight_of_answer = np.exp(table["log_z"] - by["log_z"].transform("max"))
        table["w"] = weight_of_answer / weight_of_answer.groupby([rows, cols]).transform("sum")
        table["p_stop"] = table["w"] * table["stop"]
        scored = table.groupby(["i", "j"], as_index=False)["p_stop"].sum()
        scored["score"] = scored["p_stop"] + weight * score[scored["i"], scored["j"]]
        best = scored.loc[scored.groupby("i")["score"].idxmax()]
        chosen[best["i"].to_numpy()] = best["j"].to_numpy()
        return chosen

    return pick


def run(quick: bool = False) -> list[dict[str, Any]]:
    """IL, accuracy and triage agreement of the product order and the look-ahead."""
    n = 60 if quick else 400
    full = complete_patients(n, seed=2024)
    reference = complete_reference(full)
    complete = reference["accuracy"]
    out = []
    for label, pick in (("product", None), (f"look-ahead (top {K})", lookahead_picker())):
        start = time.perf_counter()
        values = metrics(simulate(full, "product", 5, pick=pick), full, reference)
        seconds = (time.perf_counter() - start) / n
        note = (
            f"{n} truthful simulated patients, no examination signs; reference: complete-intake "
            f"accuracy; ratio: GTPA@1 at the stop minus it; triage agreement "
            f"{values['triage agreement']:.3f}; {seconds * 1000:.0f} ms per patient"
        )
        out.append(questions_result(f"interview order {label}: IL", values, complete, note))
    return out
