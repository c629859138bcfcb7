"""Speed and memory of the sampler (:func:`vignettes.generate`) and the exact posterior.

Figures
-------
generate throughput
    Rows per second of ``vignettes.generate`` for 1,000,000 rows (200,000 with ``--quick``), best
    of 3. Reference: NumPy's default generator drawing the same number of raw uniforms, ``n x
    40``, into a reused block buffer, in the same run. ``ratio`` = generate time / reference time:
    how many "raw uniform draws" of work one generated row costs, which travels across machines
    better than rows/s does.
generate peak memory
    Peak traced allocation (``tracemalloc``, NumPy and pandas buffers included) while generating
    250k, 500k, 1M and 2M rows, each in a fresh subprocess so earlier runs leave nothing behind;
    reported per row. Reference: the bytes per row of the returned frame itself, so ``ratio`` is
    the transient overhead. The sampler preallocates the frame's arrays and fills them block by
    block, so the peak is the frame plus about one block's temporaries (a few MiB, whatever
    ``n``). A last line gives largest / smallest bytes per row: 1 when memory grows linearly with
    ``n``, below 1 when a fixed overhead is spread over more rows.
posterior throughput
    Rows per second of ``vignettes.posterior`` on 200,000 generated rows (50,000 with
    ``--quick``), best of 3. Reference: NumPy computing ``exp`` of the ``n x 210`` joint table (the
    210 latent states every row is normalised over) chunk by chunk, as the posterior does;
    ``ratio`` = posterior time / reference time.
answer distribution throughput
    Rows per second of ``vignettes.answer_distribution`` for ``pain_region`` (six values, in a
    joint group with ``below_knee``) on the same rows, best of 3. Reference: the posterior on the
    same rows; ``ratio`` = answer_distribution time / posterior time (one pass over the states
    per value, so about the number of values is expected).
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import numpy as np

import vignettes
from tests.bench import best_of, result
from vignettes.posterior import CHUNK_ROWS

UNIFORMS_PER_ROW = 40
N_STATES = 210  # 7 causes x 5 serious conditions x 6 nerve roots

_MEMORY_PROBE = """
import gc, json, sys, tracemalloc
import psutil
import vignettes

n = int(sys.argv[1])
vignettes.generate(2 * vignettes.BLOCK_ROWS, seed=1)  # load the knowledge base, fill caches
gc.collect()
process = psutil.Process()
rss_before = process.memory_info().rss
tracemalloc.start()
frame = vignettes.generate(n, seed=1)
_, peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
print(json.dumps({
    "peak": peak,
    "frame": int(frame.memory_usage(deep=True).sum()),
    "rss_delta": process.memory_info().rss - rss_before,
}))
"""


def _uniforms(n: int) -> None:
    """Draw ``n x UNIFORMS_PER_ROW`` uniforms block by block into one reused buffer."""
    rng = np.random.default_rng(0)
    block = np.empty((vignettes.BLOCK_ROWS, UNIFORMS_PER_ROW))
    for _ in range(0, n, vignettes.BLOCK_ROWS):
        rng.random(out=block)


def _exp_joint(n: int) -> None:
    """``exp`` of an ``n x 210`` table, chunk by chunk (the posterior's normalisation pass)."""
    table = np.random.default_rng(0).standard_normal((CHUNK_ROWS, N_STATES))
    for lo in range(0, n, CHUNK_ROWS):
        np.exp(table[: min(CHUNK_ROWS, n - lo)])


def bench_generate(n: int, repeats: int = 3) -> list[dict[str, Any]]:
    """Rows per second of ``vignettes.generate(n)`` against raw uniform draws."""
    vignettes.generate(10_000, seed=1)  # warm: knowledge base and cumulative tables
    seconds = best_of(lambda: vignettes.generate(n, seed=7), repeats)
    reference = best_of(lambda: _uniforms(n), repeats)
    return [
        result(
            f"generate {n:,} rows",
            n / seconds,
            "rows/s",
            reference=n / reference,
            ratio=seconds / reference,
            note=f"best of {repeats}: {seconds:.2f} s; reference: NumPy drawing n x "
            f"{UNIFORMS_PER_ROW} uniforms ({reference:.2f} s); ratio = generate / reference time",
        )
    ]


def _probe(n: int) -> dict[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(n)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_memory(sizes: tuple[int, ...]) -> list[dict[str, Any]]:
    """Peak bytes per row while generating each size, in a fresh subprocess."""
    rows, per_row = [], []
    for n in sizes:
        probe = _probe(n)
        peak, frame = probe["peak"] / n, probe["frame"] / n
        per_row.append(peak)
        rows.append(
            result(
                f"generate peak memory, {n:,} rows",
                peak,
                "B/row",
                reference=frame,
                ratio=peak / frame,
                note=f"peak {probe['peak'] / 2**20:,.0f} MiB traced (RSS +"
                f"{probe['rss_delta'] / 2**20:,.0f} MiB); reference: the frame's own bytes/row; "
                "ratio = peak / frame",
            )
        )
    growth = per_row[-1] / per_row[0]
    rows.append(
        result(
            f"generate memory linearity {sizes[0]:,} -> {sizes[-1]:,}",
            growth,
            "x",
            reference=1.0,
            ratio=growth,
            note="peak bytes/row at the largest size / at the smallest; 1.0 = linear in n, "
            "< 1: a fixed overhead spread over more rows",
        )
    )
    return rows


def bench_posterior(n: int, repeats: int = 3) -> list[dict[str, Any]]:
    """Rows per second of ``vignettes.posterior`` against a pass of ``exp`` over the joint."""
    frame = vignettes.generate(n, seed=8)
    vignettes.posterior(frame.iloc[:1_000])  # warm: log tables
    seconds = best_of(lambda: vignettes.posterior(frame), repeats)
    reference = best_of(lambda: _exp_joint(n), repeats)
    return [
        result(
            f"posterior {n:,} rows",
            n / seconds,
            "rows/s",
            reference=n / reference,
            ratio=seconds / reference,
            note=f"best of {repeats}: {seconds:.2f} s; reference: NumPy exp over n x {N_STATES}"
            f" states ({reference:.3f} s); ratio = posterior / reference time",
        )
    ]


def bench_answer_distribution(n: int, repeats: int = 3) -> list[dict[str, Any]]:
    """Rows per second of ``vignettes.answer_distribution`` against the posterior."""
    frame = vignettes.generate(n, seed=8)
    vignettes.answer_distribution(frame.iloc[:1_000], "pain_region")  # warm: pattern tables
    seconds = best_of(lambda: vignettes.answer_distribution(frame, "pain_region"), repeats)
    reference = best_of(lambda: vignettes.posterior(frame), repeats)
    return [
        result(
            f"answer_distribution pain_region {n:,} rows",
            n / seconds,
            "rows/s",
            reference=n / reference,
            ratio=seconds / reference,
            note=f"best of {repeats}: {seconds:.2f} s; reference: posterior on the same rows "
            f"({reference:.2f} s); ratio = answer_distribution / posterior time (6 values)",
        )
    ]


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Measure generator throughput, its memory growth, and posterior throughput.

    Parameters
    ----------
    quick : bool, default=False
        Smaller sizes: a smoke run in seconds rather than a measurement.

    Returns
    -------
    list of dict
        One result per figure (see :mod:`tests.bench`).
    """
    if quick:
        return [
            *bench_generate(200_000),
            *bench_memory((50_000, 100_000, 200_000, 400_000)),
            *bench_posterior(50_000),
            *bench_answer_distribution(50_000),
        ]
    return [
        *bench_generate(1_000_000),
        *bench_memory((250_000, 500_000, 1_000_000, 2_000_000)),
        *bench_posterior(200_000),
        *bench_answer_distribution(200_000),
    ]
