"""Validate a dataset card with ``mlcroissant`` and read every record it describes.

Usage::

    python vignettes/croissant_validate.py data/croissant.json [--record-set cases]

It runs in its own environment (``make`` creates ``.venv-croissant`` with ``mlcroissant[parquet]``)
because mlcroissant brings pandas-stubs, under which mypy reports hundreds of errors in this
code base. So it imports nothing from this project, only mlcroissant, and reads no network: the
card's files are local.

Prints one JSON object: the validator's warnings, the number of records read, the records per
``split``, and the count, minimum and maximum of ``case_id`` (``records`` is null when the card
declares no such record set, as the FHIR export's does). Exits 1 when the card does not
validate, the validator warns, or the record set is empty.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from typing import Any


def check(card: str, record_set: str = "cases") -> dict[str, Any]:
    """Validate ``card`` and read all of ``record_set``'s records (raises on an invalid card)."""
    import mlcroissant as mlc  # only in the validator's environment

    dataset = mlc.Dataset(jsonld=card)  # raises ValidationError on any error
    warnings = sorted(str(w) for w in dataset.metadata.ctx.issues.warnings)
    if record_set not in {rs.name for rs in dataset.metadata.record_sets}:
        # the FHIR export's card lists its ndjson files but declares no record set to read
        return {"warnings": warnings, "records": None, "splits": {}, "case_ids": {}}
    splits: Counter[str] = Counter()
    ids: set[int] = set()
    n = 0
    for record in dataset.records(record_set):
        n += 1
        split = record[f"{record_set}/split"]
        splits[split.decode() if isinstance(split, bytes) else str(split)] += 1
        ids.add(int(record[f"{record_set}/case_id"]))
    return {
        "warnings": warnings,
        "records": n,
        "splits": dict(sorted(splits.items())),
        "case_ids": {
            "distinct": len(ids),
            "min": min(ids, default=None),
            "max": max(ids, default=None),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("card", help="path of the Croissant JSON-LD, e.g. data/croissant.json")
    parser.add_argument("--record-set", default="cases", help="record set to read (default: cases)")
    args = parser.parse_args(argv)
    try:
        summary = check(args.card, args.record_set)
    except Exception as error:  # the validator's own error types; report, do not trace back
        print(json.dumps({"error": f"{type(error).__name__}: {error}"}))
        return 1
    print(json.dumps(summary))
    return 0 if summary["records"] != 0 and not summary["warnings"] else 1


if __name__ == "__main__":
    sys.exit(main())
