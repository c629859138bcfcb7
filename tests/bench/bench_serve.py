"""Speed and memory of serving (:mod:`serve`): one case with attributions, and a large batch.

Each tree kind that can be champion (LightGBM, attributions from its own ``pred_contrib``; and
scikit-learn's HistGradientBoosting, attributions from ``shap.TreeExplainer``) is fitted here on
50,000 generated cases (10,000 with ``--quick``) with the training code's own fitter and
calibration, and wrapped in a :class:`serve.Predictor` without MLflow.

Figures (per tree kind)
-----------------------
single case p50, p99
    Latency of ``Predictor.predict(case)`` (what ``serve.predict`` runs: validation, both
    calibrated scorers with exact TreeSHAP for the cause and the red flag from the lookup
    tables of :mod:`model.shap_tables`, the article's rules, and the :class:`serve.Prediction`)
    over 300 distinct generated cases (60 with ``--quick``). Reference: the bare
    ``predict_proba`` of the same model on the same rows, ``TriageModel.cause.proba`` (the
    calibrated probabilities) on the already encoded row, timed in the same run, taking turns
    with the figure over three rounds so both see the same machine. ``ratio`` = predict time /
    reference time (same percentile); the aim is <= 2.
single case p50 vs the raw library call
    The same p50 against a stricter reference: the library's own call without calibration
    (LightGBM ``Booster.predict(raw_score=True)``, scikit-learn ``predict_proba``).
single case p50, 1 thread
    The same p50s with OpenMP limited to one thread (``threadpoolctl``): for one row, starting
    OpenMP threads can cost more than the trees themselves, above all on a busy machine.
exact TreeSHAP 1 case, tables
    p50 of both scorers' scores and attributions from the tables; reference: the libraries' own
    TreeSHAP on the same rows (what serving used before the tables).
batch throughput
    Rows per second of ``Predictor.predict_batch`` (what ``serve.predict_batch`` runs, with
    attributions) on 100,000 generated cases (10,000 with ``--quick``), one run. Reference: the
    bare ``cause.proba`` on the encoded matrix of the same rows; ``ratio`` = batch time /
    reference time.
batch peak memory
    Peak resident memory above the level just before the batch call, sampled every 5 ms from a
    background thread (so allocations in LightGBM's and SHAP's C++ code count too; pages the
    allocator reuses from earlier work do not). Reference: the bytes of the returned frame;
    ``ratio`` = peak / output.

Machine load changes these figures a lot on a small machine (OpenMP threads that wait for a busy
core); the notes give the 1-minute load average at the start of each measurement.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

import vignettes
from model.features import encode
from model.intake import validate_frame
from model.triage import TriageModel
from serve import Predictor
from tests.bench import PeakRSS, load_note, result, take_turns, timed
from training.candidates import Split, fit_hgb, fit_lightgbm
from training.metrics import threshold_for_recall
from vignettes.schema import FIELD_NAMES

SEED = 7
FITTERS: dict[str, Callable[[Split, Split, int], Any]] = {
    "lightgbm": fit_lightgbm,
    "hist_gradient_boosting": fit_hgb,
}
FULL = {"n_train": 50_000, "n_val": 20_000, "n_latency": 300, "n_batch": 100_000}
QUICK = {"n_train": 10_000, "n_val": 5_000, "n_latency": 60, "n_batch": 10_000}


def build_predictor(kind: str, n_train: int, n_val: int) -> tuple[Predictor, float]:
    """Fit one tree kind as training does (calibrated, with a red-flag threshold); wrap it.

    Returns
    -------
    predictor : Predictor
    seconds : float
        Fitting time, for the notes.
    """
    train = Split(vignettes.generate(n_train, SEED))
    val = Split(vignettes.generate(n_val, SEED, start=n_train))
    fitted = FITTERS[kind](train, val, SEED)
    triage = fitted.triage
    threshold = threshold_for_recall(triage.red_flag.proba(val.X), val.red)
    triage.meta |= {"red_flag_threshold": threshold, "version": f"bench-{kind}"}
    predictor = Predictor(triage, f"bench:{kind}", f"bench:{kind}", "")
    predictor.predict({"age": 50})  # as serve.load does: build lazy state before timing
    return predictor, fitted.fit_seconds


def as_cases(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Generated rows as plain cases (intake fields; ``None`` = unknown)."""
    answers = frame[list(FIELD_NAMES)].astype(object)
    return answers.where(answers.notna(), None).to_dict("records")


def _library_predict(model: TriageModel) -> Callable[[np.ndarray], object]:
    """The cause model's own library call on an encoded row: no calibration, no wrapper."""
    estimator = model.cause.estimator
    if model.cause.kind == "lightgbm":
        return lambda X: estimator.predict(X, raw_score=True, num_threads=1)
    return estimator.predict_proba


def _library_tree_shap(model: TriageModel) -> Callable[[np.ndarray], object]:
    """Both scorers' exact TreeSHAP from the libraries (``pred_contrib``, a cached ``shap``
    explainer), calibrated: what serving ran before the tables."""
    return lambda X: (model.cause.contributions(X), model.red_flag.contributions(X))


def bench_latency(kind: str, predictor: Predictor, n: int) -> list[dict[str, Any]]:
    """p50 and p99 of one-case predictions, against the bare probability call."""
    frame = vignettes.generate(n, SEED + 1, start=10_000_000)
    cases = as_cases(frame)
    rows = [encode(validate_frame(frame.iloc[[i]])) for i in range(n)]
    model = predictor.model
    load = load_note()
    full, bare, library = take_turns(
        (predictor.predict, cases), (model.cause.proba, rows), (_library_predict(model), rows)
    )
    tables, shap = take_turns(
        (lambda X: (model.cause.score_and_explain(X), model.red_flag.score_and_explain(X)), rows),
        (_library_tree_shap(model), rows),
    )
    p50, p99 = np.percentile(full, [50, 99]) * 1e3
    ref50, ref99 = np.percentile(bare, [50, 99]) * 1e3
    lib50 = float(np.percentile(library, 50) * 1e3)
    tables50, shap50 = (float(np.percentile(t, 50) * 1e3) for t in (tables, shap))
    with threadpool_limits(1):  # OpenMP (LightGBM and scikit-learn) on one thread
        one, one_ref = take_turns((predictor.predict, cases), (model.cause.proba, rows))
        one50, one_ref50 = (float(np.percentile(t, 50) * 1e3) for t in (one, one_ref))
    where = f"{n} distinct cases; {load}"
    uses = "tables" if model.cause.shap_tables() is not None else "the library (no tables)"
    return [
        result(
            f"serve.predict 1 case p50 ({kind})",
            p50,
            "ms",
            reference=ref50,
            ratio=p50 / ref50,
            note=f"validation, both scorers, exact TreeSHAP from {uses}, the article's triage "
            f"and the Prediction; reference: bare calibrated cause.proba (predict_proba) on the "
            f"encoded row; ratio = predict / reference (aim <= 2); {where}",
        ),
        result(
            f"serve.predict 1 case p99 ({kind})",
            p99,
            "ms",
            reference=ref99,
            ratio=p99 / ref99,
            note=f"as p50, 99th percentiles; {where}",
        ),
        result(
            f"serve.predict 1 case p50 vs the raw library call ({kind})",
            p50,
            "ms",
            reference=lib50,
            ratio=p50 / lib50,
            note="reference: the library's own call on the encoded row, without the calibration "
            "and softmax of cause.proba (LightGBM Booster.predict raw_score; scikit-learn "
            "predict_proba)",
        ),
        result(
            f"serve.predict 1 case p50, 1 thread ({kind})",
            one50,
            "ms",
            reference=one_ref50,
            ratio=one50 / one_ref50,
            note="as p50 with OpenMP limited to one thread (threadpoolctl) for both; shows "
            "what thread start-up costs a single row",
        ),
        result(
            f"exact TreeSHAP 1 case, tables ({kind})",
            tables50,
            "ms",
            reference=shap50,
            ratio=tables50 / shap50,
            note="p50 of both scorers' calibrated scores and TreeSHAP of the top score from the "
            "lookup tables (model.shap_tables); reference: the library's TreeSHAP alone "
            "(LightGBM pred_contrib / shap.TreeExplainer), same rows",
        ),
    ]


def bench_batch(kind: str, predictor: Predictor, n: int) -> list[dict[str, Any]]:
    """Rows per second and peak memory of one large ``predict_batch``."""
    frame = vignettes.generate(n, SEED + 2, start=20_000_000)
    load = load_note()
    with PeakRSS() as memory:
        out, seconds = timed(lambda: predictor.predict_batch(frame))
    X = encode(validate_frame(frame))
    _, reference = timed(lambda: predictor.model.cause.proba(X))
    assert isinstance(out, pd.DataFrame)
    output = int(out.memory_usage(deep=True).sum())
    return [
        result(
            f"serve.predict_batch {n:,} rows ({kind})",
            n / seconds,
            "rows/s",
            reference=n / reference,
            ratio=seconds / reference,
            note=f"with attributions, one run: {seconds:.1f} s; reference: bare cause.proba on "
            f"the encoded rows ({reference:.2f} s); ratio = batch / reference time; {load}",
        ),
        result(
            f"serve.predict_batch peak memory ({kind})",
            memory.delta / 2**20,
            "MiB",
            reference=output / 2**20,
            ratio=memory.delta / output,
            note=f"peak RSS above the start of the call ({memory.delta / n:,.0f} B/row); "
            f"reference: the returned frame ({output / n:,.0f} B/row); ratio = peak / output",
        ),
    ]


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Measure single-case latency, batch throughput and batch memory for both tree kinds.

    Parameters
    ----------
    quick : bool, default=False
        Smaller models and sizes: a smoke run rather than a measurement.

    Returns
    -------
    list of dict
        One result per figure (see :mod:`tests.bench`).
    """
    sizes = QUICK if quick else FULL
    rows: list[dict[str, Any]] = []
    for kind in FITTERS:
        predictor, fit_seconds = build_predictor(kind, sizes["n_train"], sizes["n_val"])
        print(f"   {kind}: fitted on {sizes['n_train']:,} cases in {fit_seconds:.0f} s", flush=True)
        rows += bench_latency(kind, predictor, sizes["n_latency"])
        rows += bench_batch(kind, predictor, sizes["n_batch"])
    return rows
