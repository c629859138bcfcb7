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
from sklearn.metrics import precision_score, recall_score

import vignettes
from training import metrics, plots, report
from training.config import Seeds
from training.evaluation import SHIFT_CASES
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
    shot = tmp_path / "page.png"
    # one start of the browser gives both, after the page's load event (a start is ~0.5 s)
    dom = subprocess.run(
        [
            CHROMIUM,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            f"--screenshot={shot}",
            "--window-size=1200,2400",
            html_file.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
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
# The views a researcher expects: calibration, per cause, the trade-off, a change of setting
# --------------------------------------------------------------------------------------------

NAN = re.compile(r"\bnan\b", re.IGNORECASE)
SERVED_K = 100.0


def visible(page: str) -> str:
    """The page without its embedded PNGs (base64 can spell anything, "nan" included)."""
    return re.sub(r'src="data:image/png;base64,[^"]*"', 'src=""', page)


def markdown_tables(text: str) -> list[pd.DataFrame]:
    """Every pipe table in ``text``, cells as strings, the first row as the columns."""
    tables, block = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            block.append(line)
            continue
        if block:
            rows = [
                [c.strip() for c in row.strip().strip("|").split("|")]
                for row in block
                if not re.fullmatch(r"\|[\s:|-]+\|?", row)
            ]
            tables.append(pd.DataFrame(rows[1:], columns=rows[0]))
            block = []
    return tables


def made_up_proba(n: int = 20_000, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities of the causes and true causes drawn from them (so: calibrated)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, len(CAUSES))) * 2.0
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = (rng.random(n)[:, None] > np.cumsum(proba, axis=1)).sum(axis=1)
    return proba, np.minimum(y, len(CAUSES) - 1)


def test_reliability_bins_count_every_case_and_give_the_ece() -> None:
    proba, y = made_up_proba()
    bins = metrics.reliability_bins(proba, y)
    assert bins["cases"].sum() == len(y)
    top, right = proba.max(axis=1), proba.argmax(axis=1) == y
    which = np.minimum((top * metrics.RELIABILITY_BINS).astype(int), metrics.RELIABILITY_BINS - 1)
    for k in np.flatnonzero(bins["cases"]):
        assert bins["confidence"][k] == pytest.approx(top[which == k].mean())
        assert bins["accuracy"][k] == pytest.approx(right[which == k].mean())
        assert bins["lower"][k] <= bins["confidence"][k] <= bins["upper"][k]
    assert np.isnan(bins["accuracy"][bins["cases"] == 0]).all()  # 1/7 is the least top share
    by_hand = sum(
        abs(right[which == k].sum() - top[which == k].sum())
        for k in range(metrics.RELIABILITY_BINS)
    )
    assert metrics.calibration_error(bins) == pytest.approx(by_hand / len(y))
    assert metrics.calibration_error(bins) == metrics.expected_calibration_error(proba, y)


def test_per_cause_rates_are_sklearn_s_and_a_cause_never_predicted_says_so() -> None:
    proba, y = made_up_proba()
    pred = proba.argmax(axis=1)
    pred[pred == 3] = 2  # piriformis syndrome is never predicted
    rates = metrics.per_cause_rates(pred, y)
    labels = list(range(len(CAUSES)))
    np.testing.assert_allclose(rates["recall"], recall_score(y, pred, labels=labels, average=None))
    precision = precision_score(y, pred, labels=labels, average=None, zero_division=0)
    assert np.isnan(rates["precision"][3])
    np.testing.assert_allclose(np.delete(rates["precision"], 3), np.delete(precision, 3))
    assert rates["cases"].tolist() == np.bincount(y, minlength=len(CAUSES)).tolist()
    exact = metrics.per_cause_rates(proba.argmax(axis=1), y)
    text = report.per_cause_markdown(
        {"lightgbm": rates, "bayes_posterior": exact}, "lightgbm", "bayes_posterior"
    )
    recall, precision_table = markdown_tables(text)
    assert list(recall.columns) == [
        "cause",
        "cases",
        "lightgbm (champion)",
        "bayes_posterior (ceiling)",
    ]
    assert recall["lightgbm (champion)"].tolist() == [f"{r:.3f}" for r in rates["recall"]]
    assert precision_table.loc[3, "lightgbm (champion)"] == "never predicted"
    assert not NAN.search(text)
    gaps = report.per_cause_section(
        {"lightgbm": rates, "bayes_posterior": exact}, "lightgbm", "bayes_posterior"
    ).text
    assert gaps.startswith("Where lightgbm's recall falls furthest below") and "piriformis" in gaps


def test_the_confusion_figures_are_the_row_normalised_matrices_and_their_difference() -> None:
    proba, y = made_up_proba()
    exact, worse = proba.argmax(axis=1), proba.argmax(axis=1)
    worse[::3] = 0  # a third of the cases put on disc herniation
    fig = plots.confusion_comparison_figure(y, {"lightgbm": worse, "bayes_posterior": exact})
    panels = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in panels] == ["lightgbm", "bayes_posterior"]
    for ax, pred in zip(panels, (worse, exact), strict=True):
        shown = np.asarray(ax.images[0].get_array())
        np.testing.assert_allclose(shown, metrics.confusion_shares(y, pred))
        np.testing.assert_allclose(shown.sum(axis=1), 1.0)
    fig = plots.confusion_difference_figure(y, worse, exact, "lightgbm", "bayes_posterior")
    shown = np.asarray(fig.axes[0].images[0].get_array())
    difference = metrics.confusion_shares(y, worse) - metrics.confusion_shares(y, exact)
    np.testing.assert_allclose(shown, difference)
    assert shown[1:, 0].min() > 0.2  # the cases sent to disc herniation: red, in the first column
    assert not [t.get_text() for t in fig.axes[0].texts if t.get_text() == "-0.00"]
    plt.close("all")


def test_the_reliability_figure_has_a_panel_per_candidate_with_bayes_on_each() -> None:
    proba, y = made_up_proba()
    sharp = proba**3 / (proba**3).sum(axis=1, keepdims=True)  # overconfident
    names = ["article_rules", "hist_gradient_boosting", "lightgbm", "logistic_regression"]
    curves = {
        name: metrics.reliability_bins(sharp if i % 2 else proba, y) for i, name in enumerate(names)
    }
    fig = plots.reliability_grid_figure(curves, metrics.reliability_bins(proba, y))
    panels = {ax.get_title(): ax for ax in fig.axes if ax.get_title()}
    assert sorted(panels) == sorted(names)
    for name, ax in panels.items():
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert {"Bayes posterior", name, "perfect calibration"} <= set(lines)
        shown = np.asarray(lines[name].get_ydata(), dtype=float)
        np.testing.assert_allclose(shown, curves[name]["accuracy"])
    strips = [ax for ax in fig.axes if ax.get_ylabel() == "cases"]
    assert len(strips) == len(names)
    for strip in strips:  # every case is counted in a bin
        assert sum(bar.get_height() for bar in strip.patches) == len(y)
    plt.close("all")


def test_the_trade_off_draws_the_rules_as_one_point_and_labels_each_k() -> None:
    from training.evaluation import TRADEOFF_COST_RATIOS, TRADEOFF_MARKED_COST_RATIOS

    rng = np.random.default_rng(8)
    serious = (rng.random(20_000) < 0.02).astype(int)
    sign_tier = np.where(rng.random(20_000) < 0.1, 1, 3)  # urgent by a sign, or routine
    curves = {
        name: metrics.urgency_tradeoff(
            np.clip(serious * shift + rng.random(20_000) * 0.05, 0, 1),
            sign_tier,
            serious,
            np.union1d(TRADEOFF_COST_RATIOS, [SERVED_K]),
        )
        for name, shift in (("lightgbm", 0.02), ("bayes_posterior", 0.05))
    }
    fig = plots.urgency_tradeoff_figure(
        curves,
        SERVED_K,
        "trade-off",
        marked_cost_ratios=TRADEOFF_MARKED_COST_RATIOS,
        operating_points={"article_rules": (0.1, 0.3)},
        labelled="lightgbm",
        reference="bayes_posterior",
    )
    ax = fig.axes[0]
    rules = [line for line in ax.get_lines() if "article_rules" in line.get_label()]
    assert len(rules) == 1  # a marker, no line to (100, 100)
    assert list(rules[0].get_xdata()) == [10.0] and list(rules[0].get_ydata()) == [30.0]
    assert rules[0].get_linestyle() == "None"
    labels = {text.get_text() for text in ax.texts}
    assert {"K = 3", "K = 9", "K = 19", "K = 49", "K = 100"} <= labels  # 99 is the served dot
    legend = {text.get_text() for text in ax.get_legend().get_texts()}
    assert {"K = 3", "K = 49", "K = 100", "article_rules (one operating point)"} <= legend
    # each mark sits on its curve, at its K
    marks = [line for line in ax.get_lines() if line.get_marker() == "^"]  # K = 3
    curve = curves["lightgbm"]
    at_3 = int(np.flatnonzero(curve["cost_ratio"] == 3.0)[0])
    assert [100 * curve["flagged"][at_3], 100 * curve["caught"][at_3]] in [
        [float(m.get_xdata()[0]), float(m.get_ydata()[0])] for m in marks
    ]
    plt.close("all")


def test_the_article_s_rules_have_one_operating_point() -> None:
    """What ONE_OPERATING_POINT rests on: the rules score every silent patient alike."""
    from training.candidates import Split, fit_article_rules
    from training.evaluation import ONE_OPERATING_POINT

    split = Split(vignettes.generate(3_000, seed=12))
    rules = fit_article_rules(split, split, seed=0)
    silent = split.sign_tier == split.sign_tier.max()  # routine by the reported signs
    assert "article_rules" in ONE_OPERATING_POINT
    assert np.ptp(rules.predict_red_flag(split)[silent]) == 0


def made_up_metrics(accuracy: float, log_loss: float, ece: float) -> dict[str, float]:
    return {"accuracy": accuracy, "log_loss": log_loss, "ece": ece}


def test_the_setting_shift_table_has_both_adjustments_beside_bayes() -> None:
    table = report.setting_shift_table(
        {
            ("primary_care (training setting)", report.IN_SETTING): (
                made_up_metrics(0.88, 0.33, 0.004),
                made_up_metrics(0.89, 0.30, 0.003),
            ),
            ("spine_clinic", report.WITHOUT): (
                made_up_metrics(0.80, 0.50, 0.03),
                made_up_metrics(0.84, 0.40, 0.02),
            ),
            ("spine_clinic", report.WITH): (
                made_up_metrics(0.83, 0.44, 0.01),
                made_up_metrics(0.86, 0.35, 0.002),
            ),
        }
    )
    assert table["prior adjustment"].tolist() == ["not needed", "without", "with"]
    assert table["gap to Bayes (pp)"].tolist() == pytest.approx([1.0, 4.0, 3.0])
    assert table["log-loss / Bayes"].tolist() == pytest.approx([1.1, 1.25, 0.44 / 0.35])
    section = report.setting_shift_section(table, "lightgbm", "primary_care", "spine_clinic", 2_000)
    (shown,) = markdown_tables(section.text)
    assert {"Bayes accuracy", "Bayes log-loss", "Bayes ECE"} <= set(shown.columns)
    assert shown["Bayes accuracy"].tolist() == ["0.890", "0.840", "0.860"]
    assert "accuracy goes from 0.800 to <b>0.830</b> (3.00 points below" in section.to_html()


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


# --------------------------------------------------------------------------------------------
# The views, as training logged them (the session's small model)
# --------------------------------------------------------------------------------------------


def parent_artifact(trained: Any, name: str) -> str:
    path = mlflow.artifacts.download_artifacts(run_id=trained.parent_run_id, artifact_path=name)
    return Path(path).read_text(encoding="utf-8")


def section_html(page: str, title: str) -> str:
    """One section of the page, by its title."""
    match = re.search(rf"<section[^>]*><h2>{re.escape(title)}</h2>(.*?)</section>", page, re.S)
    assert match, f"no section {title!r}"
    return match.group(1)


@pytest.fixture(scope="module")
def test_split(trained: Any) -> Any:
    """The fixture's test split again, from the comparison run's logged settings alone."""
    from training.config import TrainConfig
    from training.pipeline import make_splits

    params = MlflowClient().get_run(trained.parent_run_id).data.params
    sizes = {k: int(params[k]) for k in ("n_train", "n_val", "n_test", "n_cal")}
    cfg = TrainConfig(**sizes, seed=int(params["seed"]), setting=params["setting"])
    return make_splits(cfg)["test"]


@pytest.mark.slow
def test_logged_page_has_the_calibration_and_per_cause_views(
    trained: Any, comparison_page: str
) -> None:
    calibration = section_html(comparison_page, "Calibration")
    assert calibration.count("<img") == 1  # one figure, a panel per candidate
    for name in trained.results:
        assert name in calibration  # each candidate's ECE is named beside the figure
    per_cause = section_html(comparison_page, "Per-cause recall and precision")
    assert per_cause.count("<img") == 2  # champion and Bayes side by side, and the difference
    assert (
        f"{trained.champion} (champion)" in per_cause and "bayes_posterior (ceiling)" in per_cause
    )
    titles = re.findall(r"<h2>(.*?)</h2>", comparison_page)
    assert titles.index("Calibration") == titles.index("Gap to the Bayes ceiling") + 1
    assert titles[-1] == "Change of setting: spine_clinic"
    logged = {a.path for a in MlflowClient().list_artifacts(trained.parent_run_id)}
    assert {
        "reliability_diagrams.png",
        "reliability_bins.json",
        "per_cause.md",
        "per_cause.json",
        "confusion_champion_vs_bayes.png",
        "confusion_champion_minus_bayes.png",
        "setting_shift.md",
        "setting_shift.json",
    } <= logged


@pytest.mark.slow
def test_per_cause_recall_and_precision_are_sklearn_s_on_the_test_split(
    trained: Any, test_split: Any
) -> None:
    text = parent_artifact(trained, "per_cause.md")
    assert text in parent_artifact(trained, "comparison.md")
    recall, precision = markdown_tables(text)
    bayes = vignettes.posterior(test_split.frame)[list(CAUSES)].to_numpy().argmax(axis=1)
    labels = list(range(len(CAUSES)))
    expected = recall_score(test_split.y, bayes, labels=labels, average=None)
    assert recall["bayes_posterior (ceiling)"].tolist() == [f"{r:.3f}" for r in expected]
    expected = precision_score(test_split.y, bayes, labels=labels, average=None)
    assert precision["bayes_posterior (ceiling)"].tolist() == [f"{p:.3f}" for p in expected]
    assert recall["cases"].tolist() == [f"{n:,}" for n in np.bincount(test_split.y, minlength=7)]
    champion = trained.results[trained.champion]  # as logged on the champion's run
    assert recall[f"{trained.champion} (champion)"].tolist() == [
        f"{champion[f'recall_{c}']:.3f}" for c in CAUSES
    ]


@pytest.mark.slow
def test_the_setting_shift_table_has_both_adjustments_and_the_bayes_figures(
    trained: Any,
) -> None:
    (table,) = markdown_tables(parent_artifact(trained, "setting_shift.md"))
    assert table["prior adjustment"].tolist() == ["not needed", "without", "with"]
    assert table["cases"].tolist()[1:] == ["spine_clinic", "spine_clinic"]
    metrics_logged = MlflowClient().get_run(trained.parent_run_id).data.metrics
    rows = table.set_index("prior adjustment")
    for adjustment, model, bayes in (
        ("without", "unadjusted", "bayes_unadjusted"),
        ("with", "prior_adjusted", "bayes"),
    ):
        row = rows.loc[adjustment]
        assert row["accuracy"] == f"{metrics_logged[f'shift_spine_clinic_{model}_accuracy']:.3f}"
        assert row["Bayes accuracy"] == (
            f"{metrics_logged[f'shift_spine_clinic_{bayes}_accuracy']:.3f}"
        )
    assert (
        rows.loc["not needed", "accuracy"] == f"{trained.results[trained.champion]['accuracy']:.3f}"
    )
    # the Bayes posterior told the new setting is its ceiling there: recomputed from the
    # settings logged (the shifted cases are fresh ones, from the seed tree's shift seed)
    params = MlflowClient().get_run(trained.parent_run_id).data.params
    assert int(params["seed_shift"]) == Seeds.spawn(int(params["seed"])).shift
    n_shifted = min(int(params["n_test"]), SHIFT_CASES)
    shifted = vignettes.generate(n_shifted, int(params["seed_shift"]), "spine_clinic")
    exact = vignettes.posterior(shifted)[list(CAUSES)].to_numpy().argmax(axis=1)
    truth = shifted["cause"].cat.codes.to_numpy()
    assert rows.loc["with", "Bayes accuracy"] == f"{(exact == truth).mean():.3f}"


@pytest.mark.slow
def test_nothing_in_the_report_reads_nan(trained: Any, comparison_page: str) -> None:
    logged = [a.path for a in MlflowClient().list_artifacts(trained.parent_run_id)]
    pages = {name: parent_artifact(trained, name) for name in logged if name.endswith(".md")}
    pages["comparison.html"] = visible(comparison_page)
    found = {name: NAN.findall(text) for name, text in pages.items() if NAN.search(text)}
    assert not found
    urgency = next(
        t for t in markdown_tables(pages["comparison.md"]) if "review PPV" in t.columns
    ).set_index("model")
    assert urgency.loc["article_rules", "review PPV"] == "no alerts"  # the rules raise none


def test_a_section_is_added_once_and_replaced_in_place() -> None:
    from training.report import Section, build_html, with_section

    page = build_html("t", [Section("First", "one"), Section("Last", "two")])
    added = with_section(page, Section("Added later", "three"))
    assert added.index('id="last"') < added.index('id="added-later"') < added.index("</body>")
    assert '<li><a href="#added-later">Added later</a></li></ol></nav>' in added
    replaced = with_section(added, Section("Added later", "four"))
    assert replaced.count('id="added-later"') == 1 and replaced.count('href="#added-later"') == 1
    assert "four" in replaced and "three" not in replaced and "two" in replaced
