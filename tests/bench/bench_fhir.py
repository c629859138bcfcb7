"""Speed of the FHIR Bulk-Data export (:func:`vignettes.fhir.export_ndjson`).

Figures
-------
FHIR ndjson export
    Cases per second of ``export_ndjson`` for 100,000 cases (20,000 with ``--quick``): generating
    them chunk by chunk and writing Patient, Encounter, QuestionnaireResponse and Condition
    ndjson, best of 3. Reference: generating the same cases and writing them to Parquet
    (``vignettes.generate(...).to_parquet``, what ``make data`` does), best of 3, in the same
    run. ``ratio`` = export time / Parquet time; the aim is at most 10. Before each timed call
    the previous output is deleted and the page cache flushed (``os.sync``), so neither side pays
    for the other's write-back.
FHIR ndjson written
    Megabytes of ndjson per second, with the bytes written per case in the note. The ndjson is
    about 25 times the Parquet file's size, and this machine copies memory at well under 1 GB/s,
    so a large share of the export is the write itself.
FHIR ndjson with the posterior
    The same export with ``posterior=True`` (a RiskAssessment of the exact Bayes posterior per
    case). Reference: the plain export; ``ratio`` = the cost of computing and writing the
    posterior.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import vignettes
from tests.bench import result
from vignettes.fhir import export_ndjson

SEED = 5


def _best_of(fn: Callable[[], object], out: Path, repeats: int) -> float:
    """Shortest time of ``repeats`` calls, each after the output is deleted and flushed."""
    times = []
    for _ in range(repeats):
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        os.sync()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir())


def bench_export(n: int, repeats: int = 3) -> list[dict[str, Any]]:
    """The ndjson export of ``n`` cases against writing the same cases to Parquet."""
    with tempfile.TemporaryDirectory(prefix="bench-fhir-") as tmp:
        root = Path(tmp)
        export_ndjson(2_000, root / "warm", SEED, posterior=True)  # imports, Faker, tables
        ndjson, parquet = root / "ndjson", root / "parquet"
        fhir = _best_of(lambda: export_ndjson(n, ndjson, SEED), ndjson, repeats)
        written = _size(ndjson)
        reference = _best_of(
            lambda: vignettes.generate(n, SEED).to_parquet(parquet / "cases.parquet", index=False),
            parquet,
            repeats,
        )
        parquet_bytes = _size(parquet)
        with_posterior = _best_of(
            lambda: export_ndjson(n, ndjson, SEED, posterior=True), ndjson, repeats
        )
    return [
        result(
            f"FHIR ndjson export {n:,} cases",
            n / fhir,
            "cases/s",
            reference=n / reference,
            ratio=fhir / reference,
            note=f"best of {repeats}: {fhir:.2f} s; reference: generate + Parquet "
            f"({reference:.2f} s); ratio = export / Parquet time (aim <= 10)",
        ),
        result(
            "FHIR ndjson written",
            written / fhir / 1e6,
            "MB/s",
            note=f"{written / n:,.0f} bytes per case ({written / 1e6:,.0f} MB; the Parquet file: "
            f"{parquet_bytes / n:,.0f} bytes per case)",
        ),
        result(
            f"FHIR ndjson export {n:,} cases, posterior",
            n / with_posterior,
            "cases/s",
            reference=n / fhir,
            ratio=with_posterior / fhir,
            note=f"best of {repeats}: {with_posterior:.2f} s; reference: the export without the "
            "RiskAssessment; ratio = with / without",
        ),
    ]


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Measure the FHIR ndjson export against Parquet.

    Parameters
    ----------
    quick : bool, default=False
        20,000 cases instead of 100,000: a smoke run in seconds rather than a measurement.

    Returns
    -------
    list of dict
        One result per figure (see :mod:`tests.bench`).
    """
    return bench_export(20_000 if quick else 100_000)
