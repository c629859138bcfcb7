"""The comparison page and the descriptions MLflow shows.

The page must be one self-contained, well-formed HTML file whose embedded images decode; a
headless Chromium (Debian's ``chromium``; ``.ci/run`` installs it) must render it with every image
loaded. The MLflow descriptions must say what was trained and how it compares.
"""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import matplotlib.image
import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

import vignettes
from training import report
from vignettes.schema import CAUSES, FIELD_NAMES

CHROMIUM = next(
    (shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None
)
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (.ci/run installs Debian's `chromium`)"
)
VOID = {"meta", "img", "br", "hr", "link", "input", "source", "col", "area", "base", "wbr"}
PROBE = (
    "<script>window.addEventListener('load', () => { document.body.dataset.images = "
    "[...document.images].map(i => i.complete ? i.naturalWidth : 0).join(','); });</script>"
)


class _Checker(HTMLParser):
    """Collects tags, images and links, and checks that every element is closed in order."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.images: list[str] = []
        self.urls: list[str] = []
        self.counts: dict[str, int] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.counts[tag] = self.counts.get(tag, 0) + 1
        values = dict(attrs)
        if tag == "img":
            self.images.append(values.get("src") or "")
        self.urls += [v or "" for k, v in attrs if k in ("href", "src", "action")]
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()


def check_page(page: str) -> _Checker:
    """Assert that ``page`` is well-formed, self-contained HTML with decodable PNGs."""
    assert page.startswith("<!DOCTYPE html>")
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert not checker.errors, checker.errors[:5]
    assert not checker.stack, f"unclosed: {checker.stack}"
    assert not re.search(r"https?://|url\(", page), "the page must not load anything"
    assert all(u.startswith(("#", "data:image/png;base64,")) for u in checker.urls), checker.urls
    for src in checker.images:
        png = base64.b64decode(src.removeprefix("data:image/png;base64,"), validate=True)
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        pixels = matplotlib.image.imread(io.BytesIO(png), format="png")
        assert pixels.shape[0] > 50 and pixels.shape[1] > 50
        assert pixels.std() > 0.01  # not a blank image
    return checker


def render(page: str, tmp_path: Path) -> tuple[str, np.ndarray]:
    """Open ``page`` in headless Chromium: the DOM after load (image widths) and a screenshot."""
    assert CHROMIUM is not None
    html_file = tmp_path / "page.html"
    html_file.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    run = [CHROMIUM, *CHROMIUM_FLAGS]
    dom = subprocess.run(
        [*run, f"--user-data-dir={tmp_path / 'profile-dom'}", "--dump-dom", html_file.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    shot = tmp_path / "page.png"
    subprocess.run(
        [
            *run,
            f"--user-data-dir={tmp_path / 'profile-shot'}",
            f"--screenshot={shot}",
            "--window-size=1200,2400",
            html_file.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    return dom, matplotlib.image.imread(shot)


def image_widths(dom: str) -> list[int]:
    match = re.search(r'<body[^>]*data-images="([0-9,]*)"', dom)
    assert match, "the page's load event never ran"
    return [int(w) for w in match.group(1).split(",") if w]


# --------------------------------------------------------------------------------------------
# Building blocks, on made-up results
# --------------------------------------------------------------------------------------------


def made_up_results() -> dict[str, dict[str, float]]:
    rng = np.random.default_rng(0)
    names = ["article_rules", "logistic_regression", "lightgbm", "bayes_posterior"]
    accuracy = [0.7443, 0.88421, 0.8871, 0.88912]
    return {
        name: {
            "accuracy": acc,
            "log_loss": 0.3 + (0.9 - acc),
            "ece": float(rng.uniform(0.001, 0.04)),
            "red_flag_auroc": float(rng.uniform(0.8, 0.95)),
            "fit_seconds": float(rng.uniform(0, 400)),
        }
        for name, acc in zip(names, accuracy, strict=True)
    }


def a_figure() -> Any:
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1, 2], [0.2, 0.8, 0.5])
    return fig


def test_table_has_one_header_row_fixed_decimals_and_the_champion_marked() -> None:
    table = report.comparison_table(made_up_results(), "bayes_posterior")
    section = report.candidates_section(table, "lightgbm", "bayes_posterior")
    page = report.build_html("t", [section])
    check_page(page)
    body = page[page.index("<tbody>") : page.index("</tbody>")]
    assert page.count("<thead><tr><th>candidate</th>") == 1
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body)
    assert len(rows) == 4
    cells = [re.findall(r"<td>(.*?)</td>", row)[1:] for row in rows]  # after the name
    for column, values in zip(table.columns, zip(*cells, strict=True), strict=True):
        decimals = {len(v.split(".")[1]) if "." in v else 0 for v in values if v}
        assert decimals == {report.DECIMALS.get(column, 3)}, (column, values)
    champion_rows = re.findall(r'<tr class="champion"><td>([^<]*)<', body)
    assert champion_rows == ["lightgbm"]


def test_page_is_self_contained_with_sections_in_order_and_extra_after_the_gap() -> None:
    summary = report.summarize_data({"train": vignettes.generate(3_000, seed=1)}, "primary_care", 1)
    table = report.comparison_table(made_up_results(), "bayes_posterior")
    coverage = pd.DataFrame(
        [
            {"model": m, "cause": c, "coverage": 0.95, "mean_set_size": 1.4}
            for m in ("lightgbm", "bayes_posterior")
            for c in [*CAUSES, "all"]
        ]
    )
    extra = report.Section("Urgency tiers", "<p>tiers</p>", [a_figure()])
    sections = report.comparison_sections(
        summary,
        table,
        "lightgbm",
        "bayes_posterior",
        differential=coverage,
        learning_curve=report.Image.from_figure(a_figure(), "curve"),
        robustness=a_figure(),
        extra=[extra],
    )
    plt.close("all")
    titles = [s.title for s in sections]
    assert titles == [
        "Data",
        "Candidates",
        "Gap to the Bayes ceiling",
        "Urgency tiers",
        "Differential coverage",
        "Learning curve",
        "Robustness to missing answers",
    ]
    checker = check_page(report.build_html("sciatica-triage: candidates", sections))
    assert len(checker.images) == 3
    assert checker.counts["section"] == len(sections)


def test_data_summary_matches_the_frame() -> None:
    frame = vignettes.generate(5_000, seed=2)
    summary = report.summarize_data({"train": frame, "test": frame.head(100)}, "spine_clinic", 2)
    assert summary.sizes == {"train": 5_000, "test": 100}
    assert sum(summary.cause_share.values()) == pytest.approx(1.0)
    assert summary.cause_share["disc_herniation"] == pytest.approx(
        (frame["cause"] == "disc_herniation").mean()
    )
    assert summary.serious_share == pytest.approx(frame["red_flag"].mean())
    fields = [f for f in FIELD_NAMES if f != "age"]
    assert summary.missing_share == pytest.approx(frame[fields].isna().to_numpy().mean())
    text = report.data_section(summary).to_html()
    assert (
        "5,000 train" in text and "spine_clinic" in text and f"{summary.serious_share:.2%}" in text
    )


def test_markdown_subset() -> None:
    out = report.markdown_to_html(
        "A **b** `c`\nd\n\n- x\n  more\n- y\n\n| h | i |\n|---|---|\n| 1 | <2> |"
    )
    assert out == (
        "<p>A <b>b</b> <code>c</code> d</p><ul><li>x more</li><li>y</li></ul>"
        '<div class="table-box"><table><thead><tr><th>h</th><th>i</th></tr></thead>'
        "<tbody><tr><td>1</td><td>&lt;2&gt;</td></tr></tbody></table></div>"
    )


def test_descriptions_give_the_champion_figures_and_the_gap() -> None:
    summary = report.summarize_data({"train": vignettes.generate(1_000, seed=1)}, "primary_care", 1)
    table = report.comparison_table(made_up_results(), "bayes_posterior")
    note = report.comparison_description(summary, table, "lightgbm", "bayes_posterior")
    assert "**lightgbm**" in note and "0.887" in note and "0.20 pp below the Bayes" in note
    rules = report.candidate_description(
        "article_rules", summary, table, "lightgbm", "bayes_posterior"
    )
    assert (
        "article's own rules" in rules and "14.48 pp below" in rules and "Not the champion" in rules
    )


@needs_chromium
def test_chromium_renders_the_page_with_every_image(tmp_path: Path) -> None:
    sections = [
        report.Section("Text", "Some **text**.\n\n| a | b |\n|---|---|\n| 1 | 2 |"),
        report.Section("Plots", "", [a_figure(), a_figure()]),
    ]
    plt.close("all")
    dom, shot = render(report.build_html("Rendering check", sections), tmp_path)
    widths = image_widths(dom)
    assert len(widths) == 2 and min(widths) > 50
    assert "Rendering check" in dom and "<b>text</b>" in dom
    assert shot.std() > 0.02  # something was drawn, not a blank page


# --------------------------------------------------------------------------------------------
# What training logged (the session's small model)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def comparison_page(trained: Any) -> str:
    path = mlflow.artifacts.download_artifacts(
        run_id=trained.parent_run_id, artifact_path="comparison.html"
    )
    return Path(path).read_text(encoding="utf-8")


@pytest.mark.slow
def test_logged_page_has_data_table_gap_differential_and_plots(
    trained: Any, comparison_page: str
) -> None:
    checker = check_page(comparison_page)
    for title in ("Data", "Candidates", "Gap to the Bayes ceiling", "Differential coverage"):
        assert f"<h2>{title}</h2>" in comparison_page
    assert "Robustness to missing answers" in comparison_page  # the fixture skips the curve
    assert len(checker.images) >= 2  # the gap and robustness plots
    assert f'<tr class="champion"><td>{trained.champion}<' in comparison_page
    assert "4,000 train" in comparison_page and "seed <b>3</b>" in comparison_page


@pytest.mark.slow
@needs_chromium
def test_chromium_renders_the_logged_page(comparison_page: str, tmp_path: Path) -> None:
    dom, shot = render(comparison_page, tmp_path)
    widths = image_widths(dom)
    assert len(widths) >= 2 and min(widths) > 50
    assert shot.std() > 0.02


@pytest.mark.slow
def test_experiment_runs_and_registry_are_described(trained: Any) -> None:
    client = MlflowClient()
    parent = client.get_run(trained.parent_run_id)
    experiment = client.get_experiment(parent.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert trained.champion in experiment.tags[report.NOTE_TAG]
    note = parent.data.tags[report.NOTE_TAG]
    assert f"**{trained.champion}**" in note and "below the Bayes ceiling" in note
    assert "4,000 train" in note and "comparison.html" in note
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{trained.parent_run_id}'"
    )
    assert len(children) == len(trained.results)
    for child in children:
        name = child.data.tags["candidate"]
        text = child.data.tags[report.NOTE_TAG]
        assert text.startswith(f"**{name}**") and "synthetic vignettes" in text
        assert ("Learns nothing" if name in report.UNTRAINED else "Trained on 4,000") in text
        assert "test accuracy" in text.lower()
    version = client.get_model_version("sciatica-triage", trained.model_version)
    assert trained.champion in version.description and "below the Bayes" in version.description
    model = client.get_registered_model("sciatica-triage")
    assert f"v{trained.model_version}" in model.description or not trained.alias_moved


# --------------------------------------------------------------------------------------------
# Tables: no nan, and wide ones scroll in their own box
# --------------------------------------------------------------------------------------------

NAN = re.compile(r"\bnan\b", re.IGNORECASE)


def visible(page: str) -> str:
    """The page without its embedded PNGs (base64 can spell anything, "nan" included)."""
    return re.sub(r'src="data:image/png;base64,[^"]*"', 'src=""', page)


def test_missing_figures_read_as_words_not_nan() -> None:
    assert report.cell(float("nan")) == report.NO_VALUE
    assert report.cell(None, missing=report.NO_ALERTS) == "no alerts"
    assert report.cell(0.12345, ".2%") == "12.35%"
    results = made_up_results()
    results["article_rules"]["red_flag_auroc"] = float("nan")
    table = report.comparison_table(results, "bayes_posterior")
    page = report.build_html("t", [report.candidates_section(table, "lightgbm", "bayes_posterior")])
    assert not NAN.search(visible(page)) and report.NO_VALUE in page


@needs_chromium
def test_a_wide_table_scrolls_in_its_own_box_and_the_page_does_not(tmp_path: Path) -> None:
    wide = "| " + " | ".join(f"a long column name {i}" for i in range(30)) + " |\n"
    wide += "|" + "---|" * 30 + "\n| " + " | ".join(["0.123"] * 30) + " |"
    page = report.build_html("Wide", [report.Section("Wide table", wide)])
    probe = (
        "<script>window.addEventListener('load', () => { const box = "
        "document.querySelector('.table-box'); document.body.dataset.fits = ["
        "document.documentElement.scrollWidth <= window.innerWidth, "
        "box.scrollWidth > box.clientWidth].join(','); });</script>"
    )
    dom, _ = render(page.replace("</body>", probe + "</body>"), tmp_path)
    match = re.search(r'data-fits="([a-z,]*)"', dom)
    assert match and match.group(1) == "true,true"  # the page fits; the table scrolls inside
