"""``python -m vignettes``: write a seeded train/validation/test dataset with sample narratives.

This is the command behind ``make data``. The three splits are contiguous row ranges of ONE seeded
dataset (``vignettes.generate(..., start=...)``), so they never share a case and any split can be
rebuilt alone from the manifest's seed, setting and row range.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pandas as pd

import vignettes
from vignettes.croissant import knowledge_sha256, write_card
from vignettes.narrative import narrate
from vignettes.schema import FIELD_NAMES, LABELS, LATENTS, SETTINGS

SPLITS = ("train", "validation", "test")
NARRATIVES_MD = "narratives.md"
NARRATIVES_JSONL = "narratives.jsonl"
MANIFEST = "manifest.json"
DISCLAIMER = (
    "Synthetic research data from the knowledge base in vignettes/knowledge.toml; no real "
    "patients. Not a medical device and not medical advice."
)


@dataclass(frozen=True)
class Split:
    """One split: a contiguous row range ``[start, stop)`` of the dataset."""

    name: str
    start: int
    stop: int

    @property
    def rows(self) -> int:
        return self.stop - self.start

    @property
    def file_name(self) -> str:
        return f"{self.name}.parquet"


def plan_splits(n: int, validation: float, test: float) -> list[Split]:
    """Cut ``n`` rows into train, validation and test ranges, in that order.

    Parameters
    ----------
    n : int
        Rows in the whole dataset.
    validation, test : float
        Fractions of ``n`` for the validation and test splits; train gets the rest.

    Returns
    -------
    list of Split
        Adjacent, non-overlapping ranges that together cover ``0 .. n-1``.

    Raises
    ------
    ValueError
        If a split would be empty (an empty Parquet file loses its categories) or the
        fractions leave nothing for training.

    Examples
    --------
    >>> [(s.name, s.start, s.stop) for s in plan_splits(100, 0.1, 0.1)]
    [('train', 0, 80), ('validation', 80, 90), ('test', 90, 100)]
    """
    n_validation, n_test = round(n * validation), round(n * test)
    sizes = {"train": n - n_validation - n_test, "validation": n_validation, "test": n_test}
    empty = [name for name, size in sizes.items() if size <= 0]
    if empty:
        raise ValueError(
            f"--n {n} with --validation {validation:g} and --test {test:g} leaves the "
            f"{' and '.join(empty)} split{'s' if len(empty) > 1 else ''} empty; "
            "use a larger --n or other fractions"
        )
    splits, start = [], 0
    for name in SPLITS:
        splits.append(Split(name, start, start + sizes[name]))
        start += sizes[name]
    return splits


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a fraction between 0 and 1, got {text}")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (see ``python -m vignettes --help``)."""
    parser = argparse.ArgumentParser(
        prog="python -m vignettes",
        description=(
            "Write a seeded synthetic dataset of lower-back-pain-radiating-to-the-leg cases: "
            "train/validation/test Parquet files (contiguous, non-overlapping row ranges of one "
            "dataset), a sample of readable narratives (Markdown and JSONL), manifest.json, and "
            "a dataset card: croissant.json (Croissant 1.1 with the Responsible-AI fields) and "
            "a datasheet, README.md. " + DISCLAIMER
        ),
        epilog="example: python -m vignettes --n 300000 --seed 7 --out data",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--n", type=_non_negative, default=10_000, help="rows in the dataset")
    parser.add_argument("--seed", type=_non_negative, default=7, help="seed of the dataset")
    parser.add_argument(
        "--setting", choices=SETTINGS, default="primary_care", help="clinical setting (priors)"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("data"), metavar="DIR", help="output directory"
    )
    parser.add_argument(
        "--format",
        choices=("parquet", "fhir"),
        default="parquet",
        help="parquet: one file per split; fhir: FHIR R4 Bulk-Data ndjson per split (one file "
        "per resource type, in DIR/fhir/<split>/)",
    )
    parser.add_argument(
        "--fhir-posterior",
        action="store_true",
        help="with --format fhir, add a RiskAssessment of the exact Bayes posterior to each case",
    )
    parser.add_argument(
        "--validation",
        type=_fraction,
        default=0.1,
        metavar="FRACTION",
        help="fraction of rows for validation",
    )
    parser.add_argument(
        "--test", type=_fraction, default=0.1, metavar="FRACTION", help="fraction of rows for test"
    )
    parser.add_argument(
        "--narratives",
        type=_non_negative,
        default=20,
        metavar="K",
        help="how many sample narratives to write (the dataset's first K cases)",
    )
    return parser


def _package_version() -> str:
    try:
        return metadata.version("sciatica-triage")
    except metadata.PackageNotFoundError:  # running from a checkout that was never installed
        return "unknown"


def write_split(split: Split, seed: int, setting: str, out: Path) -> Path:
    """Generate one split, write it as Parquet and check that it reads back with its dtypes."""
    frame = vignettes.generate(split.rows, seed, setting, start=split.start)
    path = out / split.file_name
    frame.to_parquet(path, index=False)
    # Parquet must give back categoricals and nullable booleans, or <NA> answers and category
    # order would be lost silently downstream; reading back is cheap next to generating.
    read_back = pd.read_parquet(path).dtypes
    if not read_back.equals(frame.dtypes):
        changed = [c for c in frame.columns if read_back[c] != frame.dtypes[c]]
        raise RuntimeError(f"{path}: dtypes changed on the Parquet round trip: {changed}")
    return path


def write_split_fhir(
    split: Split, seed: int, setting: str, out: Path, posterior: bool
) -> list[Path]:
    """Generate one split and write it as FHIR Bulk-Data ndjson in ``out/fhir/<split>/``."""
    from vignettes.fhir import export_ndjson

    folder = out / "fhir" / split.name
    paths = export_ndjson(split.rows, folder, seed, setting, start=split.start, posterior=posterior)
    return list(paths.values())


def _markdown(sample: pd.DataFrame, texts: pd.Series, seed: int, setting: str) -> str:
    lines = [
        "# Sample narratives",
        "",
        f"> {DISCLAIMER}",
        "",
        f"Seed {seed}, setting `{setting}`. Labels are shown for review only; "
        "the narrative never states them.",
        "",
    ]
    for row, text in zip(sample.itertuples(index=False), texts, strict=True):
        red_flag = "yes" if row.red_flag else "no"
        lines += [
            f"## Case {row.case_id}",
            "",
            text,
            "",
            f"*cause:* `{row.cause}`, *red flag:* {red_flag}",
            "",
        ]
    return "\n".join(lines)


def write_narratives(k: int, seed: int, setting: str, out: Path) -> tuple[Path, Path]:
    """Write the first ``k`` cases of the dataset as Markdown and JSONL narratives."""
    sample = vignettes.generate(k, seed, setting)
    texts = narrate(sample, seed=seed)
    md_path, jsonl_path = out / NARRATIVES_MD, out / NARRATIVES_JSONL
    md_path.write_text(_markdown(sample, texts, seed, setting), encoding="utf-8")
    records = (
        {
            "case_id": int(row.case_id),
            "narrative": text,
            "cause": str(row.cause),
            "red_flag": bool(row.red_flag),
        }
        for row, text in zip(sample.itertuples(index=False), texts, strict=True)
    )
    jsonl_path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8"
    )
    return md_path, jsonl_path


def manifest(args: argparse.Namespace, splits: Sequence[Split], n_narratives: int) -> dict:
    """What was written and how to rebuild it.

    There is deliberately no timestamp: the same arguments give a byte-identical manifest.
    """
    return {
        "description": "sciatica-triage synthetic vignettes",
        "note": DISCLAIMER,
        "package_version": _package_version(),
        "knowledge_sha256": knowledge_sha256(),
        "seed": args.seed,
        "setting": args.setting,
        "n_total": args.n,
        "block_rows": vignettes.BLOCK_ROWS,
        "format": getattr(args, "format", "parquet"),
        "fhir_posterior": bool(getattr(args, "fhir_posterior", False)),
        "splits": {
            s.name: {
                "file": s.file_name
                if getattr(args, "format", "parquet") == "parquet"
                else f"fhir/{s.name}/",
                "rows": s.rows,
                "case_id_start": s.start,
                "case_id_stop": s.stop,
            }
            for s in splits
        },
        "columns": {
            "id": ["case_id", "setting"],
            "features": list(FIELD_NAMES),
            "labels": list(LABELS),
            "latent": list(LATENTS),
        },
        "narratives": (
            {"markdown": NARRATIVES_MD, "jsonl": NARRATIVES_JSONL, "count": n_narratives}
            if n_narratives
            else None
        ),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        splits = plan_splits(args.n, args.validation, args.test)
    except ValueError as error:
        parser.error(str(error))
    args.out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for split in splits:
        print(
            f"generating {split.name}: {split.rows:,} rows "
            f"(case_id {split.start}..{split.stop - 1}, seed {args.seed}, {args.setting})",
            flush=True,
        )
        if args.format == "fhir":
            written += write_split_fhir(
                split, args.seed, args.setting, args.out, args.fhir_posterior
            )
        else:
            written.append(write_split(split, args.seed, args.setting, args.out))
    n_narratives = min(args.narratives, args.n)
    if n_narratives:
        print(f"rendering {n_narratives} sample narratives", flush=True)
        written += write_narratives(n_narratives, args.seed, args.setting, args.out)
    manifest_path = args.out / MANIFEST
    content = manifest(args, splits, n_narratives)
    manifest_path.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    written.append(manifest_path)
    # The dataset card last: it records the SHA-256 of every file above.
    written += write_card(args.out, written, content)
    print("wrote:")
    for path in written:
        print(f"  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
