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
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Any

RESULT_KEYS: tuple[str, ...] = ("name", "figure", "unit", "reference", "ratio", "note")

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


def _number(value: Any) -> str:
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
        _number(row.get("figure")),
        str(row.get("unit", "")),
        _number(row.get("reference")),
        _number(row.get("ratio")),
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
