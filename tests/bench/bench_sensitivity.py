"""Time per world of ``make sensitivity`` (:func:`training.sensitivity.evaluate_world`).

A LightGBM champion is fitted once (20,000 cases; 5,000 with ``--quick``), as ``make
sensitivity`` does on its default world.

Figures
-------
sensitivity: one perturbed world
    Seconds to evaluate the champion on one perturbed world's 20,000 fresh cases (5,000 with
    ``--quick``): drawing the world (:func:`vignettes.perturb`), generating its cases, its exact
    posterior, the champion's predictions and the metrics; median of 3 worlds. Reference: the
    bare work on the default world, in the same run: generating the same number of cases, their
    posterior and the champion's cause and red-flag probabilities. ``ratio`` = world / reference;
    the aim is little more than 1 (no world refits anything).
sensitivity: one swing
    The same for a one-at-a-time swing of one table to the end of its interval
    (:func:`vignettes.swing`), on the 10,000 cases of a swing (2,500 with ``--quick``).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from model.triage import RED_FLAG_COST_RATIO, cost_ratio_threshold
from tests.bench import result
from training.candidates import Split
from training.sensitivity import SensitivityConfig, evaluate_world, fit_champion
from vignettes import generate, posterior
from vignettes.knowledge import load_knowledge
from vignettes.perturb import perturb, swing, uncertainties

SEED = 13


def _bare(fitted: Any, n: int, seed: int) -> None:
    """What a world cannot avoid: its cases, their posterior and the champion's scores."""
    split = Split(generate(n, seed))
    posterior(split.frame)
    fitted.predict_cause(split)
    fitted.predict_red_flag(split)


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Time a perturbed world and a swing against generating and scoring the same cases.

    Parameters
    ----------
    quick : bool, default=False
        A quarter of the cases: a smoke run in seconds rather than a measurement.

    Returns
    -------
    list of dict
        One result per figure (see :mod:`tests.bench`).
    """
    scale = 4 if quick else 1
    cfg = SensitivityConfig(n_train=20_000 // scale, n_val=5_000 // scale, seed=SEED)
    print(f"   fitting the champion once on {cfg.n_train:,} cases", flush=True)
    fitted = fit_champion(cfg)
    threshold = cost_ratio_threshold(RED_FLAG_COST_RATIO)
    default = load_knowledge()
    table = next(iter(uncertainties(default)))
    rows = []
    for name, n, draw in (
        ("one perturbed world", 20_000 // scale, lambda k: perturb(default, seed=1000 + k)),
        ("one swing", 10_000 // scale, lambda k: swing(table, 1 if k % 2 else -1, default)),
    ):
        evaluate_world(fitted, draw(0), 1_000, SEED, threshold)  # warm: tables, caches
        worlds, bare = [], []
        for k in range(3):  # world and reference take turns, so both see the same machine
            start = time.perf_counter()
            evaluate_world(fitted, draw(k), n, SEED, threshold)
            worlds.append(time.perf_counter() - start)
            start = time.perf_counter()
            _bare(fitted, n, SEED)
            bare.append(time.perf_counter() - start)
        median, reference = statistics.median(worlds), statistics.median(bare)
        rows.append(
            result(
                f"sensitivity: {name}, {n:,} cases",
                median,
                "s",
                reference=reference,
                ratio=median / reference,
                note=f"median of 3; reference: generate + posterior + champion scores of {n:,} "
                "default-world cases; ratio = world / reference (aim: little more than 1)",
            )
        )
    return rows
