"""The interview measured like DDXPlus, against the exact truth: simulated patients, no exam signs.

Patients are complete vignettes (the generator with no hidden answers). Each interview starts
from the age (required) and asks one question at a time among the fields a patient can answer
(``serve.questions.ASKABLE_WITHOUT_CLINICIAN``); the cause is read from the exact posterior.
Two kinds of patient: ``truthful`` answers every question from the vignette; ``dont_know``
answers "don't know" to each question with probability 0.3 (seeded), and is not asked it again.

Orders compared, each stopped by the same stop rule (``serve.questions.STOP_RULE``):

- ``product``: the served order (red-flag questions first, then information about the triage
  and the cause: :func:`serve.questions.questions_for`);
- ``fixed``: the questionnaire's order (the contract's field order);
- ``random``: a random order per patient (seeded).

Metrics (DDXPlus, Fansi Tchango et al., NeurIPS 2022), at the stop: IL, the number of questions
asked (the six red flags and the duration included; age not); GTPA@1 and @3, the true cause
first or in the top three; DDR, DDP and DDF1, the differential at the stop (smallest set of
causes covering 95% of the posterior) against the exact posterior's differential of the
complete intake at the same coverage; DSR, DSP and DSF1, serious conditions (the tier shown is not
routine) against the vignette's ``red_flag``; PER and PEP, positive evidence (the "yes" answers of
the vignette) recalled by, and the share of "yes" among, the questions asked; the triage
agreement, the share whose final tier, timeframe and next step equal the complete intake's, and
the advice agreement, the share whose advice items are equal too; the share that stopped with a
red-flag question unasked. The accuracy-against-questions curve (no stop) is drawn to
``tests/bench/figures/question_order.png``; the stop rule's trade-off (questions against triage
agreement and accuracy, over the rule's tolerances, :data:`TRADE_OFF`) to
``tests/bench/figures/question_tradeoff.png``.

The plateau of earlier rounds (0.910 against 0.927) was this simulation's: the complete
vignettes leave the examination signs unknown for about half of the patients, and the adaptive
order, whose ranking did not know what had been asked, picked the same unknown field again at
every later step, so nothing more was revealed. The interview and this simulation now track the
fields asked (``asked=``).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import vignettes
from model.intake import validate_frame
from serve.questions import (
    ASKABLE_WITHOUT_CLINICIAN,
    STOP_RULE,
    StopRule,
    assess,
    bayes_triage,
)
from tests.bench import result
from training.metrics import ddxplus_metrics
from vignettes.schema import CAUSES, FIELD_BY_NAME, FIELD_NAMES, RED_FLAG_FIELDS

FIGURE = Path(__file__).with_name("figures") / "question_order.png"
TRADE_OFF_FIGURE = FIGURE.with_name("question_tradeoff.png")
TRADE_OFF: dict[str, dict[str, float | None]] = {
    "served rule": {},
    "triage tolerance 1%": {"change_tolerance": 0.01},
    "triage tolerance 5%": {"change_tolerance": 0.05},
    "triage tolerance 10%": {"change_tolerance": 0.10},
    "top cause 90%": {"top_cause": 0.90},
    "cause change 20%": {"cause_change": 0.20},
    "no answer changes the top cause": {"cause_change": 0.0},
    "bits in place of cause change (0.02, the earlier rule)": {
        "cause_change": None,
        "min_bits": 0.02,
    },
    "bits in place of cause change (0.1)": {"cause_change": None, "min_bits": 0.10},
    "triage tolerance 10%, cause change 20%": {"change_tolerance": 0.10, "cause_change": 0.20},
}
"""The stop rules the trade-off compares: the served one and one knob moved at a time."""
FIELDS = ASKABLE_WITHOUT_CLINICIAN
ORDERS = ("product", "fixed", "random")
DONT_KNOW_RATE = 0.3


def complete_patients(n: int, seed: int) -> pd.DataFrame:
    """Vignettes with every answer known: patients who can answer every question."""
    kb = vignettes.load_knowledge()
    full = dataclasses.replace(kb, missing=dict.fromkeys(kb.missing, 0.0), red_flag_block=0.0)
    return vignettes.generate(n, seed, knowledge=full)


def _pick(a: Any, order: str, permutation: np.ndarray) -> np.ndarray:
    """The next field index of each case of an assessment under an order."""
    cand = a.candidate
    red = np.array([f in RED_FLAG_FIELDS for f in a.fields])
    if order == "fixed":
        return np.argmax(cand, axis=1)
    if order == "random":
        ranks = np.where(cand, permutation, np.inf)
        return np.argmin(ranks, axis=1)
    red_pending = (cand & red).any(axis=1)
    red_score = np.where(cand & red, np.nan_to_num(a.red_flag_bits, nan=0.0) + 1.0, -np.inf)
    score = np.where(
        cand & ~red, np.nan_to_num(a.cause_bits, nan=0.0) + np.nan_to_num(a.triage_bits), -np.inf
    )
    return np.where(red_pending, np.argmax(red_score, axis=1), np.argmax(score, axis=1))


Picker = Callable[[Any, pd.DataFrame, np.ndarray], np.ndarray]
"""``(assessment, known, asked) -> next field index per patient`` (see :func:`simulate`)."""


@dataclasses.dataclass
class Run:
    """The state of every simulated patient at its stop."""

    asked: np.ndarray
    posterior: np.ndarray
    red_flag_shown: np.ndarray
    triage: list[Any]
    red_unasked_at_stop: np.ndarray
    curve: list[float]
    red_flag_dont_know: np.ndarray


def simulate(
    full: pd.DataFrame,
    order: str,
    seed: int,
    rule: StopRule = STOP_RULE,
    dont_know: float = 0.0,
    stop: bool = True,
    pick: Picker | None = None,
) -> Run:
    """Interview every patient under one order, until the stop rule (or every question).

    ``pick`` (optional) chooses the next field of each active patient in place of the order:
    ``(assessment, known, asked) -> field index per patient``, with ``known`` the answers so far
    (validated frame) and ``asked`` the fields asked (patients x fields)."""
    n, m = len(full), len(FIELDS)
    truth = validate_frame(full[list(FIELD_NAMES)])
    known = validate_frame(full[["age"]])
    for name in FIELD_NAMES:
        if name not in known.columns:
            known[name] = pd.Series([None] * n, index=known.index).astype(truth[name].dtype)
    known = known[list(FIELD_NAMES)]
    rng = np.random.default_rng(seed)
    permutation = np.array([rng.permutation(m) for _ in range(n)])
    says_dont_know = rng.random((n, m)) < dont_know
    y = full["cause"].cat.codes.to_numpy()
    asked = np.zeros((n, m), dtype=bool)
    active = np.ones(n, dtype=bool)
    post = np.zeros((n, len(CAUSES)))
    shown = np.zeros(n, dtype=bool)
    triage: list[Any] = [None] * n
    red_cols = [FIELDS.index(f) for f in RED_FLAG_FIELDS]
    red_unasked = np.zeros(n, dtype=bool)
    curve = []
    while active.any():
        idx = np.flatnonzero(active)
        a = assess(known.iloc[idx], asked[idx], FIELDS, rule=rule)
        p_now = a.posterior[list(CAUSES)].to_numpy()
        if not stop:
            curve.append(float((np.argmax(p_now, axis=1) == y[idx]).mean()))
        done = a.stop if stop else ~a.candidate.any(axis=1)
        for i in np.flatnonzero(done):
            row = idx[i]
            post[row] = p_now[i]
            triage[row] = a.triage[i]
            shown[row] = a.triage[i][0] != "routine"
            red_unasked[row] = not asked[row, red_cols].all()
        active[idx[done]] = False
        go = ~done
        if not go.any():
            break
        rows = idx[go]
        chosen = pick(a, known.iloc[idx], asked[idx]) if pick else _pick(a, order, permutation[idx])
        pick_now = chosen[go]
        asked[rows, pick_now] = True
        reveal = ~says_dont_know[rows, pick_now]
        for k in np.unique(pick_now):
            name = FIELDS[k]
            told = rows[(pick_now == k) & reveal]
            known.iloc[told, known.columns.get_loc(name)] = truth[name].iloc[told].to_numpy()
    red_cols_dk = (asked & says_dont_know)[:, red_cols].any(axis=1)
    return Run(asked, post, shown, triage, red_unasked, curve, red_cols_dk)


def metrics(run: Run, full: pd.DataFrame, reference: dict[str, Any]) -> dict[str, float]:
    """DDXPlus's metrics of one run against the complete intake (``reference``).

    ``triage agreement`` is the issue's: the tier, the timeframe and the next step equal the
    complete intake's. ``advice agreement`` also compares the advice items (stricter)."""
    y = full["cause"].cat.codes.to_numpy()
    serious = full["red_flag"].to_numpy(dtype=bool)
    dd = ddxplus_metrics(run.posterior, y, reference["posterior"], run.red_flag_shown, serious)
    positive = reference["positive"]
    asked_positive = (run.asked & positive).sum(axis=1)
    per = float((asked_positive / np.maximum(positive.sum(axis=1), 1)).mean())
    pep = float((asked_positive / np.maximum(run.asked.sum(axis=1), 1)).mean())
    pairs = list(zip(run.triage, reference["triage"], strict=True))
    return {
        "IL": float(run.asked.sum(axis=1).mean()),
        "GTPA@1": dd["gtpa_at_1"],
        "GTPA@3": dd["gtpa_at_3"],
        "DDR": dd["ddr"],
        "DDP": dd["ddp"],
        "DDF1": dd["ddf1"],
        "DSR": dd["dsr"],
        "DSP": dd["dsp"],
        "DSF1": dd["dsf1"],
        "PER": per,
        "PEP": pep,
        "triage agreement": _share_same(pairs, np.ones(len(pairs), dtype=bool)),
        "advice agreement": float(np.mean([a == b for a, b in pairs])),
        # A red-flag "don't know" keeps the tier at least review (the complete intake has none):
        "triage agreement, no red-flag don't know": _share_same(pairs, ~run.red_flag_dont_know),
        "red-flag don't know": float(run.red_flag_dont_know.mean()),
        "red flag unasked at stop": float(run.red_unasked_at_stop.mean()),
    }


def _share_same(pairs: list[tuple[Any, Any]], among: np.ndarray) -> float:
    """Share of ``among`` whose tier, timeframe and next step equal the reference's."""
    same = np.array([a[:3] == b[:3] for a, b in pairs], dtype=bool)
    return float(same[among].mean()) if among.any() else float("nan")


def complete_reference(full: pd.DataFrame) -> dict[str, Any]:
    """The complete intake without examination signs: accuracy, differential, triage."""
    frame = validate_frame(full[list(FIELD_NAMES)])
    for name in set(FIELD_NAMES) - {"age", *FIELDS}:
        frame[name] = pd.Series([None] * len(frame), index=frame.index).astype(frame[name].dtype)
    post = vignettes.posterior(frame)
    p = post[list(CAUSES)].to_numpy()
    y = full["cause"].cat.codes.to_numpy()
    positive = np.column_stack(
        [
            (frame[f].astype("boolean").fillna(False).to_numpy(dtype=bool))
            if FIELD_BY_NAME[f].kind == "bool"
            else np.zeros(len(frame), dtype=bool)
            for f in FIELDS
        ]
    )
    return {
        "accuracy": float((p.argmax(axis=1) == y).mean()),
        "posterior": p,
        "triage": bayes_triage(frame, post, np.zeros(len(frame), dtype=bool)),
        "positive": positive,
    }


def _plot(curves: dict[str, list[float]], complete: float) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for name, curve in curves.items():
        ax.plot(range(len(curve)), curve, marker=".", label=name)
    ax.axhline(complete, color="black", ls="--", label="complete intake (no exam signs)")
    ax.axhline(complete - 0.01, color="grey", ls=":", label="within 1 point")
    ax.set_xlabel("questions asked (after the age)")
    ax.set_ylabel("accuracy of the Bayes posterior")
    ax.set_title("Question orders, truthful simulated patients (no stop)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    FIGURE.parent.mkdir(exist_ok=True)
    fig.savefig(FIGURE, dpi=110)
    return fig


def _plot_tradeoff(points: dict[str, dict[str, float]], complete: float) -> None:
    """Questions asked against triage agreement and against accuracy, one marker per rule."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 5.5))
    markers = "o*sDv^<>phX"
    for ax, key, target, label in (
        (axes[0], "triage agreement", 0.99, "99% target"),
        (axes[1], "GTPA@1", complete - 0.01, "within 1 point of the complete intake"),
    ):
        for i, (name, values) in enumerate(points.items()):
            served = name == "served rule"
            ax.scatter(
                values["IL"],
                values[key],
                marker=markers[i % len(markers)],
                s=140 if served else 50,
                color="black" if served else f"C{i % 10}",
                label=name,
                zorder=3 if served else 2,
            )
        ax.axhline(target, color="grey", ls=":")
        ax.axvline(14, color="black", ls="--", lw=0.8)
        ax.set_title(f"{key} (dotted: {label}; dashed: 14 questions)", fontsize=9)
        ax.set_xlabel("questions asked on average (the six red flags included)")
        ax.set_ylabel(key)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle("The stop rule's trade-off (truthful simulated patients, exact posterior)")
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    TRADE_OFF_FIGURE.parent.mkdir(exist_ok=True)
    fig.savefig(TRADE_OFF_FIGURE, dpi=110)
    plt.close(fig)


def _log_to_mlflow(table: dict[str, dict[str, float]], complete: float, fig: Any) -> None:
    import mlflow

    from model.mlflow_names import EXPERIMENT

    mlflow.set_experiment(EXPERIMENT)
    with mlflow.start_run(run_name="question-order-benchmark"):
        mlflow.set_tag("role", "benchmark")
        mlflow.log_metric("complete_intake_accuracy", complete)
        for name, values in table.items():
            for metric, value in values.items():
                key = re.sub(r"[^\w.-]+", "_", f"{name}.{metric}".replace("@", "_at_"))
                mlflow.log_metric(key, value)
        if fig is not None:
            mlflow.log_figure(fig, "question_order.png")


def questions_result(
    name: str, values: dict[str, float], complete: float, note: str
) -> dict[str, Any]:
    """One interview figure: questions asked (IL), the complete intake's accuracy as reference,
    GTPA@1 at the stop minus it as ratio."""
    ratio = values["GTPA@1"] - complete
    return result(name, values["IL"], "questions", reference=complete, ratio=ratio, note=note)


def questions_needed(curve: list[float], target: float) -> float:
    """First number of questions whose accuracy is within one point of ``target``; NaN when
    the order never gets there."""
    return next((float(i) for i, acc in enumerate(curve) if acc >= target - 0.01), math.nan)


def run(quick: bool = False) -> list[dict[str, Any]]:
    """DDXPlus's metrics per order and patient kind, the curve, the trade-off and the speed."""
    n = 150 if quick else 1000
    full = complete_patients(n, seed=2024)
    reference = complete_reference(full)
    complete = reference["accuracy"]
    out = []
    table: dict[str, dict[str, float]] = {}
    for kind, rate in (("truthful", 0.0), ("dont_know", DONT_KNOW_RATE)):
        for order in ORDERS if kind == "truthful" else ("product",):
            values = metrics(simulate(full, order, 5, dont_know=rate), full, reference)
            table[f"{kind}.{order}"] = values
            shown = ", ".join(f"{k} {v:.3f}" for k, v in values.items() if k != "IL")
            note = (
                f"{n} simulated patients; reference: complete-intake accuracy; ratio: GTPA@1 at "
                f"the stop minus it; {shown}"
            )
            out.append(
                questions_result(f"interview {kind}, {order} order: IL", values, complete, note)
            )
    if not quick:
        points = {}
        for label, change in TRADE_OFF.items():
            rule = dataclasses.replace(STOP_RULE, **change)
            values = metrics(simulate(full, "product", 5, rule=rule), full, reference)
            points[label] = values
            note = (
                f"truthful, product order; GTPA@1 {values['GTPA@1']:.3f}, triage agreement "
                f"{values['triage agreement']:.3f}, advice agreement "
                f"{values['advice agreement']:.3f}, DDF1 {values['DDF1']:.3f}"
            )
            out.append(questions_result(f"trade-off: {label}", values, complete, note))
        _plot_tradeoff(points, complete)
        curves = {o: simulate(full, o, 5, stop=False).curve for o in ORDERS}
        for order, curve in curves.items():
            out.append(
                result(
                    f"questions to reach complete accuracy: {order}",
                    questions_needed(curve, complete),
                    "questions",
                    reference=complete,
                    ratio=None,
                    note=f"no stop; within 1 point of {complete:.3f}; accuracy after "
                    f"{len(curve) - 1} questions {curve[-1]:.3f}",
                )
            )
        fig = _plot(curves, complete)
        try:
            _log_to_mlflow(table, complete, fig)
        except Exception as exc:  # the benchmark's figures stand without a tracking store
            print(f"  (not logged to MLflow: {exc})")
    return out
