"""The benchmark runner's Markdown page: each figure with its reference and ratio, and where."""

from __future__ import annotations

import re
from pathlib import Path

from tests.bench.__main__ import (
    MEASURED_PAGE,
    discover,
    markdown,
    module_section,
    page_path,
    replace_section,
)


def _report(failures: dict[str, str] | None = None) -> dict:
    modules = discover()
    results = [
        {
            "module": module,
            "name": f"{module} figure {i}",
            "figure": 1234.5 * (i + 1),
            "unit": "rows/s",
            "reference": 100.0,
            "ratio": 12.345 * (i + 1),
            "note": f"note {module} {i}",
        }
        for module in modules
        for i in range(2)
    ]
    return {
        "created": "2026-01-01T00:00:00+00:00",
        "quick": False,
        "modules": modules,
        "machine": {"python": "3.11", "numpy": "2", "pandas": "2", "cpu_count": 2, "machine": "x"},
        "seconds": 61.0,
        "results": results,
        "failures": failures or {},
    }


def test_every_result_is_a_table_row_with_its_note() -> None:
    report = _report()
    page = markdown(report)
    for row in report["results"]:
        assert f"| {row['name']} | {row['figure']:,.0f} | rows/s | 100 | " in page
        assert f"- {row['name']}: {row['note']}" in page
    for module in report["modules"]:
        assert f"## {module.removeprefix('bench_')}" in page
    assert "**Figures" in page  # each module's own explanation, as Markdown
    assert "``" not in page and ":func:" not in page


def test_a_failed_module_is_said_to_have_failed() -> None:
    module = discover()[0]
    report = _report({module: "Traceback ..."})
    report["results"] = [r for r in report["results"] if r["module"] != module]
    assert "This module failed in this run" in markdown(report)


def test_only_a_full_run_replaces_the_measured_page(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    assert page_path(out, discover(), quick=False) == MEASURED_PAGE
    assert page_path(out, discover(), quick=True) == tmp_path / "benchmarks.md"
    assert page_path(out, discover()[:1], quick=False) == tmp_path / "benchmarks.md"


def test_an_only_run_refreshes_its_own_section_and_no_other() -> None:
    report = _report()
    page = markdown(report)
    fresh = {**report, "created": "2026-02-02T00:00:00+00:00"}
    fresh["results"] = [dict(r, figure=9.0) for r in report["results"]]
    name = report["modules"][1]
    updated = replace_section(page, name, module_section(fresh, name), fresh["created"])
    sections = lambda text: re.split(r"(?m)^(?=## )", text)  # noqa: E731
    before, after = sections(page), sections(updated)
    assert before[0] == after[0] and len(before) == len(after)
    changed = [
        i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a.strip() != b.strip()
    ]
    assert changed == [2]  # the head, then one section per module in name order
    assert "_Measured 2026-02-02" in after[2] and "| 9 |" in after[2]
    added = replace_section(page, "bench_zzz_new", "## zzz_new\n\nbody\n", fresh["created"])
    assert sections(added)[-1].startswith("## zzz_new")
