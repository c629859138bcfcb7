"""The FHIR Bulk-Data ndjson export as a Spark job (``python -m vignettes.fhir_spark``).

:func:`spark_ndjson` makes a DataFrame of partition indices ``0 .. partitions-1``, one per Spark
partition, and ``mapInPandas`` turns each index into the ndjson lines of that partition's rows
(:func:`vignettes.generate_partition`, rendered by :func:`vignettes.fhir.resource_lines`, in
chunks of :data:`~vignettes.generate.BLOCK_ROWS` rows so a worker's memory stays flat). The
lines are written partitioned by resource type::

    out/resourceType=Patient/part-*.txt
    out/resourceType=Encounter/part-*.txt
    out/resourceType=QuestionnaireResponse/part-*.txt
    out/resourceType=Condition/part-*.txt
    out/resourceType=RiskAssessment/part-*.txt   (with posterior=True)

Each file is ndjson (one resource per line; Spark's text writer names them ``.txt``). Rows do
not depend on the partitioning and ids are uuid5s of the seed, setting, case id and resource
type, so the union of the lines of one type is the same for any number of partitions and equals
the ``<Type>.ndjson`` that ``python -m vignettes --format fhir``
(:func:`vignettes.fhir.export_ndjson`) writes for the same rows; only the order of the lines and
their split into files differ.

PySpark is imported only inside the functions: importing :mod:`vignettes` never needs it. The
Python workers must import this package: install it on the cluster, or put the checkout on the
workers' ``PYTHONPATH`` (``spark.executorEnv.PYTHONPATH``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from vignettes.generate import BLOCK_ROWS, generate, partition_bounds
from vignettes.schema import SETTINGS

__all__ = ["SCHEMA", "main", "partition_lines", "spark_ndjson"]

SCHEMA = "resourceType string, value string"
"""The DataFrame the job writes: one ndjson line (``value``) per row, with its resource type."""


def partition_lines(
    indices: Iterator[pd.DataFrame],
    *,
    n: int,
    partitions: int,
    seed: int,
    setting: str,
    posterior: bool = False,
    chunk_rows: int = BLOCK_ROWS,
) -> Iterator[pd.DataFrame]:
    """The ``mapInPandas`` function: partition indices in, ``(resourceType, value)`` lines out.

    For each index ``k`` in the batches (column ``id``), the rows of
    ``generate_partition(k, partitions, n, seed, setting)`` are drawn ``chunk_rows`` at a time
    (``generate(..., start=...)``, the same rows) and each chunk's ndjson lines are yielded as
    one frame per resource type.
    """
    from vignettes.fhir import resource_lines

    for batch in indices:
        for k in batch["id"].tolist():
            start, stop = partition_bounds(n, partitions, int(k))
            for lo in range(start, stop, chunk_rows):
                frame = generate(min(chunk_rows, stop - lo), seed, setting, start=lo)
                for kind, lines in resource_lines(frame, seed, posterior=posterior).items():
                    if lines:
                        yield pd.DataFrame({"resourceType": kind, "value": lines})


def spark_ndjson(
    spark: Any,
    n: int,
    out: Path | str,
    seed: int = 0,
    setting: str = "primary_care",
    *,
    partitions: int | None = None,
    posterior: bool = False,
    chunk_rows: int | None = None,
    mode: str = "error",
) -> str:
    """Generate ``n`` cases on Spark and write them as FHIR Bulk-Data ndjson by resource type.

    Parameters
    ----------
    spark : pyspark.sql.SparkSession
        The session to run on.
    n : int
        Cases (rows ``0 .. n-1`` of the dataset of ``seed`` and ``setting``).
    out : path or str
        Output directory (any URI Spark can write: a local path, ``hdfs://``, ``s3a://``); the
        lines go to ``out/resourceType=<Type>/part-*.txt``.
    seed : int, default=0
        Seed of the dataset (and of the resource ids).
    setting : {"primary_care", "spine_clinic"}, default="primary_care"
        Clinical setting.
    partitions : int, optional
        Partitions of the dataset, one Spark task each (default: the session's default
        parallelism). The lines written do not depend on it.
    posterior : bool, default=False
        Add a RiskAssessment of the exact Bayes posterior to each case.
    chunk_rows : int, optional
        Rows rendered at a time inside a partition (default :data:`BLOCK_ROWS`).
    mode : str, default="error"
        Spark's save mode: ``"error"`` refuses an existing ``out``, ``"overwrite"`` replaces it.

    Returns
    -------
    str
        ``out``, as written.
    """
    if setting not in SETTINGS:
        raise ValueError(f"setting must be one of {list(SETTINGS)}, got {setting!r}")
    if partitions is None:
        partitions = int(spark.sparkContext.defaultParallelism)
    partition_bounds(n, partitions, 0)  # checks n and partitions
    step = chunk_rows or BLOCK_ROWS
    if step < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows!r}")
    render = partial(
        partition_lines,
        n=n,
        partitions=partitions,
        seed=seed,
        setting=setting,
        posterior=posterior,
        chunk_rows=step,
    )
    indices = spark.range(0, partitions, 1, numPartitions=partitions)
    lines = indices.mapInPandas(render, schema=SCHEMA)
    path = str(out)
    lines.write.mode(mode).partitionBy("resourceType").text(path)
    return path


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (see ``python -m vignettes.fhir_spark --help``)."""
    parser = argparse.ArgumentParser(
        prog="python -m vignettes.fhir_spark",
        description=(
            "Write n synthetic cases as FHIR R4 Bulk-Data ndjson with a Spark job, one folder "
            "per resource type (OUT/resourceType=<Type>/part-*.txt). The lines do not depend on "
            "--partitions and equal those of python -m vignettes --format fhir."
        ),
        epilog="example: python -m vignettes.fhir_spark --n 1000000 --partitions 64 --out fhir",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--n", type=int, default=10_000, help="cases")
    parser.add_argument("--seed", type=int, default=7, help="seed of the dataset")
    parser.add_argument("--setting", choices=SETTINGS, default="primary_care")
    parser.add_argument("--out", required=True, help="output directory or URI")
    parser.add_argument(
        "--partitions", type=int, default=None, help="partitions (default: Spark's parallelism)"
    )
    parser.add_argument(
        "--posterior", action="store_true", help="add a RiskAssessment of the exact posterior"
    )
    parser.add_argument(
        "--master",
        default=None,
        help="Spark master when no session is running (default: spark-submit's, or local[*])",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI on the active Spark session, or on a new one (stopped at the end)."""
    from pyspark.sql import SparkSession

    args = build_parser().parse_args(argv)
    spark = SparkSession.getActiveSession()
    own = spark is None
    if spark is None:
        builder = SparkSession.builder.appName("sciatica-triage-fhir")
        if args.master:
            builder = builder.master(args.master)
        spark = builder.getOrCreate()
    try:
        path = spark_ndjson(
            spark,
            args.n,
            args.out,
            args.seed,
            args.setting,
            partitions=args.partitions,
            posterior=args.posterior,
            mode="overwrite" if args.overwrite else "error",
        )
    finally:
        if own:
            spark.stop()
    print(f"wrote {args.n:,} cases as ndjson to {path}/resourceType=<Type>/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
