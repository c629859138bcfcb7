"""Run the benchmarks: ``python -m tests.bench [--only NAME] [--quick] [--out PATH]``.

Imports every ``tests/bench/bench_*.py`` module in name order, calls its ``run()`` (with
``quick=`` when the module accepts it), prints each result as it is measured, and writes all of
them with a description of the machine to ``bench-results/bench.json`` at the project root, and
as a Markdown page: ``docs/benchmarks.md``, which the README links, after a full run of every
module; ``bench-results/benchmarks.md`` after a ``--quick`` or ``--only`` run, so a smoke run
never replaces the measured page. A module that fails is reported and the others still run;
the exit status is then 1 (and ``docs/benchmarks.md`` is left as it was).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import inspect
import json
import os
import platform
import re
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from tests.bench import RESULT_KEYS, emit, header, number

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parents[1]
DEFAULT_OUT = PROJECT_ROOT / "bench-results" / "bench.json"
MEASURED_PAGE = PROJECT_ROOT / "docs" / "benchmarks.md"


def discover() -> list[str]:
    """Names of the benchmark modules, e.g. ``["bench_serve", "bench_vignettes"]``."""
    return sorted(p.stem for p in PACKAGE_DIR.glob("bench_*.py"))


def select(modules: list[str], only: str | None) -> list[str]:
    """The modules ``--only`` picks (``vignettes`` or ``bench_vignettes``), or all of them."""
    if only is None:
        return modules
    wanted = only.removesuffix(".py")
    wanted = wanted if wanted.startswith("bench_") else f"bench_{wanted}"
    if wanted not in modules:
        names = ", ".join(m.removeprefix("bench_") for m in modules)
        raise SystemExit(f"--only: no benchmark {only!r}; available: {names}")
    return [wanted]


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import numpy as np
    import pandas as pd

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
    }


def run_module(name: str, quick: bool) -> list[dict[str, Any]]:
    """Import ``tests.bench.<name>``, call its ``run`` and check the rows it returns."""
    module = importlib.import_module(f"tests.bench.{name}")
    run = module.run
    kwargs = {"quick": quick} if "quick" in inspect.signature(run).parameters else {}
    rows = list(run(**kwargs))
    for row in rows:
        emit(row)  # rows a module built without tests.bench.result are printed now
        missing = [k for k in RESULT_KEYS if k not in row]
        if missing:
            raise ValueError(f"{name}: result {row.get('name')!r} lacks {missing}")
    return [{"module": name, **row} for row in rows]


def _module_notes(name: str) -> str:
    """How to read a module's figures: its docstring, with numpydoc's section titles and
    definition lists turned into Markdown (a bold title, a bold term before its text)."""
    lines = (inspect.getdoc(importlib.import_module(f"tests.bench.{name}")) or "").splitlines()
    out: list[str] = []
    for i, line in enumerate(lines):
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if set(line) == {"-"}:
            continue  # a section title's underline
        if set(following) == {"-"} and line:
            out += [f"**{line}**", ""]
        elif line and not line.startswith(" ") and following.startswith("    "):
            out += ["", f"**{line}**:"] if out and out[-1] else [f"**{line}**:"]
        else:
            out.append(line.strip())
    return re.sub(r":[a-z]+:`~?([^`]+)`", r"`\1`", "\n".join(out)).replace("``", "`")


def markdown(report: dict[str, Any]) -> str:
    """The benchmark page: every figure with its reference and ratio, then how to read them.

    Parameters
    ----------
    report : dict
        As written to ``bench.json``: ``created``, ``quick``, ``modules``, ``machine``,
        ``seconds``, ``results`` (with ``module`` and :data:`RESULT_KEYS`) and ``failures``.

    Returns
    -------
    str
        The page, ending in a newline.
    """
    info = report["machine"]
    lines = [
        "# Benchmarks",
        "",
        "<!-- Written by `make bench` (python -m tests.bench); do not edit by hand. -->",
        "",
        f"Measured {report['created']} in {report['seconds']:,.0f} s"
        f"{' (quick sizes: a smoke run)' if report['quick'] else ''}: Python {info['python']}, "
        f"NumPy {info['numpy']}, pandas {info['pandas']}, {info['cpu_count']} CPUs "
        f"({info['machine']}). Each figure comes with a reference measured in the same run on "
        "the same machine, and their ratio, which carries across machines better than the "
        "figure itself.",
        "",
    ]
    for name in report["modules"]:
        lines += module_section(report, name).splitlines()
    return "\n".join(lines).rstrip() + "\n"


def module_section(report: dict[str, Any], name: str) -> str:
    """One module's part of the page: ``## name``, its table and notes, how to read them."""
    rows = [r for r in report["results"] if r["module"] == name]
    lines = [f"## {name.removeprefix('bench_')}", ""]
    if name in report["failures"]:
        lines += ["This module failed in this run; see the runner's output.", ""]
    if rows:
        lines += ["| benchmark | figure | unit | reference | ratio |", "|---|---|---|---|---|"]
        lines += [
            f"| {r['name']} | {number(r['figure'])} | {r['unit']} | "
            f"{number(r['reference'])} | {number(r['ratio'])} |"
            for r in rows
        ]
        lines += ["", "Notes:", ""]
        lines += [f"- {r['name']}: {r['note']}" for r in rows if r["note"]]
        lines.append("")
    lines += ["<details><summary>How to read these figures</summary>", ""]
    lines += [_module_notes(name), "", "</details>", ""]
    return "\n".join(lines)


def replace_section(page: str, name: str, section: str, created: str) -> str:
    """``page`` with module ``name``'s section replaced by ``section`` (or added, in name order),
    saying when that section was measured, for ``--only`` runs that refresh one module."""
    title = name.removeprefix("bench_")
    dated = section.replace("\n\n", f"\n\n_Measured {created} (`--only {title}`)._\n\n", 1)
    parts = re.split(r"(?m)^(?=## )", page)
    head, sections = parts[0], parts[1:]
    by_title = {re.match(r"## (\S+)", p).group(1): p for p in sections}  # type: ignore[union-attr]
    by_title[title] = dated.rstrip() + "\n\n"
    return head + "".join(by_title[t] for t in sorted(by_title)).rstrip() + "\n"


def page_path(out: Path, modules: list[str], quick: bool) -> Path:
    """Where the Markdown page goes: the measured page only for a full run of every module."""
    if quick or modules != discover():
        return out.with_name("benchmarks.md")
    return MEASURED_PAGE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument("--only", metavar="NAME", help="run one module, e.g. vignettes")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON file to write")
    args = parser.parse_args(argv)

    modules = select(discover(), args.only)
    info = machine()
    print(
        f"benchmarks: {', '.join(modules)}{' (quick)' if args.quick else ''} | "
        f"Python {info['python']}, NumPy {info['numpy']}, {info['cpu_count']} CPUs, "
        f"{info['machine']}",
        flush=True,
    )
    print(header(), flush=True)
    results: list[dict[str, Any]] = []
    failures: dict[str, str] = {}
    started = time.perf_counter()
    for name in modules:
        print(f"-- {name}", flush=True)
        t0 = time.perf_counter()
        try:
            results += run_module(name, args.quick)
        except Exception:
            failures[name] = traceback.format_exc()
            print(f"!! {name} failed:\n{failures[name]}", file=sys.stderr, flush=True)
        print(f"   ({time.perf_counter() - t0:.1f} s)", flush=True)

    report = {
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "modules": modules,
        "machine": info,
        "seconds": round(time.perf_counter() - started, 2),
        "results": results,
        "failures": failures,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{len(results)} results written to {args.out}", flush=True)
    page = page_path(args.out, modules, args.quick)
    if not (failures and page == MEASURED_PAGE):
        page.write_text(markdown(report), encoding="utf-8")
        print(f"and as Markdown to {page}", flush=True)
    if args.only and not args.quick and not failures and MEASURED_PAGE.exists():
        (name,) = modules
        text = MEASURED_PAGE.read_text(encoding="utf-8")
        section = module_section(report, name)
        MEASURED_PAGE.write_text(
            replace_section(text, name, section, report["created"]), encoding="utf-8"
        )
        print(f"and its section of {MEASURED_PAGE} refreshed", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
