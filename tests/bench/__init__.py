"""Benchmarks, not tests: ``python -m tests.bench`` (``make bench``) runs them.

Every ``bench_*.py`` module in this package is a benchmark. It defines::

    def run(quick: bool = False) -> list[dict]: ...

and returns one dict per measured figure, built with :func:`result` so that it is printed the
moment it is measured. Each dict has the keys of :data:`RESULT_KEYS`:

``name``
    What was measured, e.g. ``"generate 1,000,000 rows"``.
``figure``, ``unit``
    The measurement and its unit, e.g. ``2.1e6`` and ``"rows/s"``.
``reference``
    The same kind of figure for a baseline measured in the same run on the same machine (so
    results from different machines compare through ``ratio``), or ``None``.
``ratio``
    ``figure`` (or its time) relative to ``reference``, as the note explains, or ``None``.
``note``
    How to read the figure and what the reference is.

The runner writes them to ``bench-results/bench.json`` and, as a Markdown page with each module's
own explanation of its figures, to ``docs/benchmarks.md`` (a full run of every module) or
``bench-results/benchmarks.md`` (``--quick`` or ``--only``). The measuring helpers every module
shares live here too: :func:`best_of`, :func:`take_turns`, :func:`timed`, :class:`PeakRSS` and
:func:`load_note`.
"""

from __future__ import annotations

import gc
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

RESULT_KEYS: tuple[str, ...] = ("name", "figure", "unit", "reference", "ratio", "note")
WARM_UP_CALLS = 20
"""Calls of each function before :func:`take_turns` times it (caches, lazy state, threads)."""
ROUNDS = 3
"""Turns each function gets in :func:`take_turns`."""

_PRINTED: set[int] = set()
_WIDTHS = (44, 14, 10, 14, 9)


def header() -> str:
    """Column titles of the table the runner prints."""
    titles = ("benchmark", "figure", "unit", "reference", "ratio")
    return (
        "  ".join(
            t.ljust(w) if i == 0 else t.rjust(w)
            for i, (t, w) in enumerate(zip(titles, _WIDTHS, strict=True))
        )
        + "  note"
    )


def number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int | float):
        if value == 0 or 0.01 <= abs(value) < 1e6:
            return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
        return f"{value:.3e}"
    return str(value)


def format_row(row: dict[str, Any]) -> str:
    """One result as a line of the table."""
    cells = (
        str(row.get("name", "?")),
        number(row.get("figure")),
        str(row.get("unit", "")),
        number(row.get("reference")),
        number(row.get("ratio")),
    )
    line = "  ".join(
        c.ljust(w) if i == 0 else c.rjust(w)
        for i, (c, w) in enumerate(zip(cells, _WIDTHS, strict=True))
    )
    return f"{line}  {row.get('note', '')}"


def emit(row: dict[str, Any]) -> None:
    """Print a result now (progress output) unless it was printed already."""
    if id(row) in _PRINTED:
        return
    _PRINTED.add(id(row))
    print(format_row(row), flush=True)
    sys.stdout.flush()


def result(
    name: str,
    figure: float,
    unit: str,
    reference: float | None = None,
    ratio: float | None = None,
    note: str = "",
) -> dict[str, Any]:
    """Build a result dict and print it at once.

    Parameters
    ----------
    name : str
        What was measured.
    figure : float
        The measurement.
    unit : str
        Its unit.
    reference : float, optional
        The baseline's figure, measured in the same run.
    ratio : float, optional
        The figure relative to the reference (the note says which way round).
    note : str, optional
        How to read it.

    Returns
    -------
    dict
        With the keys of :data:`RESULT_KEYS`.
    """
    row = {
        "name": name,
        "figure": float(figure),
        "unit": unit,
        "reference": None if reference is None else float(reference),
        "ratio": None if ratio is None else float(ratio),
        "note": note,
    }
    emit(row)
    return row


def best_of(fn: Callable[[], object], repeats: int) -> float:
    """Shortest wall-clock time of ``repeats`` calls of ``fn``, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    """One call of ``fn``: its return value and its wall-clock time in seconds."""
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def take_turns(*pairs: tuple[Callable[[Any], object], list[Any]]) -> list[np.ndarray]:
    """Wall-clock seconds of ``fn(item)`` for each item, for every ``(fn, items)`` pair.

    The pairs take turns over :data:`ROUNDS` rounds (all items of the first pair, then of the
    second, ..., then again), each turn after :data:`WARM_UP_CALLS` warm-up calls, so that a
    figure and its reference see the same machine: on a shared host the speed drifts over
    seconds, and timing one function after the other would put the drift into their ratio.
    (Alternating single calls would be worse: a multi-threaded library call leaves OpenMP
    threads spinning into the next call.)
    """
    seconds: list[list[float]] = [[] for _ in pairs]
    for _ in range(ROUNDS):
        for (fn, items), out in zip(pairs, seconds, strict=True):
            for item in items[:WARM_UP_CALLS]:
                fn(item)
            for item in items:
                start = time.perf_counter()
                fn(item)
                out.append(time.perf_counter() - start)
    return [np.asarray(out) for out in seconds]


def load_note() -> str:
    """The machine's 1-minute load average, for a result's note."""
    return f"load avg {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"


class PeakRSS:
    """Peak resident memory above the starting level while the block runs (sampled).

    A background thread samples every ``interval`` seconds, so allocations in C and C++ code
    (LightGBM, SHAP) count too; pages the allocator reuses from earlier work do not.
    """

    def __init__(self, interval: float = 0.005) -> None:
        import psutil

        self.interval = interval
        self.process = psutil.Process()
        self.start = 0
        self.peak = 0
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.interval)

    def __enter__(self) -> PeakRSS:
        gc.collect()
        self.start = self.process.memory_info().rss
        self.peak = self.start
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)

    @property
    def delta(self) -> int:
        """Bytes of peak resident memory above the level at the start of the block."""
        return self.peak - self.start
