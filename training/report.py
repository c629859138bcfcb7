"""What a researcher reads: the comparison page, the descriptions MLflow shows, the model card.

The comparison page is one self-contained HTML file (inline CSS, figures embedded as base64 PNG,
no external URL), built from :class:`Section` s::

    sections = comparison_sections(summary, table, champion, CEILING, differential, alpha, ...)
    sections.append(Section("Urgency tiers", "Markdown or <p>HTML</p>", [figure]))
    html = build_html("sciatica-triage: candidates", sections)

A section's text is HTML when it starts with ``<``, else a small Markdown subset (paragraphs,
``-`` lists, pipe tables, ``**bold**``, ```code```); its figures are matplotlib figures or
:class:`Image` s. The descriptions (``mlflow.note.content`` on the experiment and runs, the
registry's description fields) are built here from the same figures, so the UI and the page agree.
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from training.metrics import RELIABILITY_BINS
from vignettes.schema import CAUSES, FIELD_NAMES

DISPLAY_COLUMNS = {
    "accuracy": "accuracy",
    "gap_accuracy_pp": "gap to Bayes (pp)",
    "log_loss": "log-loss",
    "log_loss_ratio": "log-loss / Bayes",
    "balanced_accuracy": "balanced acc.",
    "macro_f1": "macro F1",
    "top2_accuracy": "top-2 acc.",
    "gtpa_at_3": "GTPA@3",
    "ddf1": "DDF1",
    "dsf1": "DSF1",
    "ece": "ECE",
    "red_flag_auroc": "red-flag AUROC",
    "red_flag_recall": "red-flag recall",
    "red_flag_specificity": "red-flag specificity",
    "val_log_loss": "val log-loss",
    "fit_seconds": "fit s",
    "predict_ms_per_1000": "predict ms / 1000",
}
DECIMALS = {
    "gap to Bayes (pp)": 2,
    "ECE": 4,
    "Bayes ECE": 4,
    "fit s": 1,
    "predict ms / 1000": 1,
}
"""Decimals per displayed column; every other column shows 3, so a column reads down evenly."""
NO_VALUE = "—"
"""A cell with nothing to count (no case, no alert): the page never shows ``nan``."""
NO_ALERTS = "no alerts"
"""A PPV cell where the policy raised no alert (the article's rules raise no review alert)."""

CANDIDATE_TEXT = {
    "article_rules": "the article's own rules, no learning",
    "logistic_regression": (
        "a logistic regression on one-hot answers with missing-answer indicators, "
        "temperature-calibrated on validation"
    ),
    "hist_gradient_boosting": (
        "scikit-learn's HistGradientBoosting trees, calibrated on validation, exact TreeSHAP"
    ),
    "lightgbm": "LightGBM gradient-boosted trees, calibrated on validation, exact TreeSHAP",
    "bayes_posterior": (
        "the generator's exact Bayes posterior: the ceiling no classifier can beat "
        "(not deployable, it knows the generator)"
    ),
}
UNTRAINED = ("article_rules", "bayes_posterior")
"""Candidates that learn nothing from the training split (their descriptions say so)."""
DISCLAIMER = (
    "Research software trained on synthetic data: not a medical device, not medical advice."
)
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
"""Opens the experiment in MLflow's model-training view rather than its GenAI view."""
NOTE_TAG = "mlflow.note.content"
"""The tag MLflow's UI shows (and edits) as the description of an experiment or a run."""


# --------------------------------------------------------------------------------------------
# The comparison table
# --------------------------------------------------------------------------------------------


def comparison_table(results: dict[str, dict[str, float]], ceiling: str) -> pd.DataFrame:
    """One row per candidate with its test metrics and the gap to the Bayes ceiling."""
    table = pd.DataFrame(results).T
    if ceiling in table.index:
        bayes = table.loc[ceiling]
        table["gap_accuracy_pp"] = 100 * (bayes["accuracy"] - table["accuracy"])
        table["log_loss_ratio"] = table["log_loss"] / bayes["log_loss"]
    columns = [c for c in DISPLAY_COLUMNS if c in table]
    table = table[columns].rename(columns=DISPLAY_COLUMNS)
    table.index.name = "candidate"
    return table


def cell(value: Any, spec: str = ".3f", missing: str = NO_VALUE) -> str:
    """A table cell: ``value`` in the format ``spec``, or ``missing`` where it has none.

    Parameters
    ----------
    value : float or None
        NaN or ``None`` is a figure with no one to count (a PPV without alerts, a share of no
        case).
    spec : str, default=".3f"
        A format specification, as in ``format(value, spec)``.
    missing : str, default=NO_VALUE
        What the cell says instead: :data:`NO_VALUE`, :data:`NO_ALERTS` or another phrase.
    """
    if value is None or pd.isna(value):
        return missing
    return format(float(value), spec)


def format_value(column: str, value: Any) -> str:
    """A table cell with its column's fixed number of decimals (:data:`NO_VALUE` if missing)."""
    return cell(value, f".{DECIMALS.get(column, 3)}f")


def to_markdown(table: pd.DataFrame, champion: str | None) -> str:
    """A GitHub-style Markdown table; the champion is marked."""
    header = "| " + " | ".join([table.index.name, *table.columns]) + " |"
    rule = "|" + "---|" * (len(table.columns) + 1)
    rows = []
    for name, row in table.iterrows():
        label = f"**{name}** (champion)" if name == champion else str(name)
        cells = [format_value(column, value) for column, value in row.items()]
        rows.append("| " + " | ".join([label, *cells]) + " |")
    return "\n".join([header, rule, *rows]) + "\n"


# --------------------------------------------------------------------------------------------
# The page: sections of text and embedded figures
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    """A PNG to embed, with a caption."""

    png: bytes
    caption: str = ""

    @classmethod
    def from_figure(cls, figure: Figure, caption: str = "", dpi: int = 110) -> Image:
        """Render a matplotlib figure to PNG (the figure stays open; the caller closes it)."""
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
        return cls(buffer.getvalue(), caption)

    def to_html(self, alt: str) -> str:
        data = base64.b64encode(self.png).decode("ascii")
        caption = f"<figcaption>{_inline(self.caption)}</figcaption>" if self.caption else ""
        return (
            f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
            f"{caption}</figure>"
        )


@dataclass(frozen=True)
class Section:
    """One part of the page: a title, text (HTML if it starts with ``<``, else Markdown), figures.

    Parameters
    ----------
    title : str
        The heading; also the section's anchor in the page's contents.
    text : str, optional
        HTML (starting with ``<``) or the Markdown subset of :func:`markdown_to_html`.
    figures : sequence of matplotlib Figure or Image, optional
        Embedded as base64 PNG after the text, in order.
    """

    title: str
    text: str = ""
    figures: Sequence[Figure | Image] = field(default_factory=tuple)

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-") or "section"

    def to_html(self) -> str:
        body = self.text if self.text.lstrip().startswith("<") else markdown_to_html(self.text)
        images = [f if isinstance(f, Image) else Image.from_figure(f) for f in self.figures]
        figures = "".join(image.to_html(image.caption or self.title) for image in images)
        title = html.escape(self.title)
        return f'<section id="{self.anchor}"><h2>{title}</h2>{body}{figures}</section>'


_STYLE = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2430;
margin:0 auto;max-width:1100px;padding:24px 32px 64px;background:#fff}
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;margin:32px 0 8px;
border-bottom:1px solid #dde3ea;padding-bottom:4px}
.meta{color:#5b6675;margin:0 0 12px}.disclaimer{background:#fff6e0;border:1px solid #f0d28c;
padding:8px 12px;border-radius:4px}
nav ol{margin:4px 0;padding-left:22px;columns:2}
.table-box{max-width:100%;overflow-x:auto;margin:8px 0 12px}
table{border-collapse:collapse;font-variant-numeric:tabular-nums;font-size:13px}
th,td{padding:3px 6px;border-bottom:1px solid #e3e8ee;text-align:right;white-space:nowrap}
th{background:#f3f6f9;font-weight:600;vertical-align:bottom;white-space:normal;min-width:3.5em}
th:first-child,td:first-child{text-align:left;position:sticky;left:0;background:#fff;
white-space:normal;min-width:8em;max-width:22em}
th:first-child{background:#f3f6f9}
tr.champion td{background:#e7f4ea;font-weight:600}tr.ceiling td{color:#5b6675;font-style:italic}
.badge{display:inline-block;background:#2e7d32;color:#fff;border-radius:3px;padding:0 6px;
font-size:12px;margin-left:6px;font-style:normal}
figure{margin:12px 0}figure img{max-width:100%;height:auto;border:1px solid #e3e8ee}
figcaption{color:#5b6675;font-size:13px}code{background:#f3f6f9;padding:0 3px;border-radius:3px}
@media print{.table-box{overflow:visible}table{font-size:10px}body{max-width:none}}
"""


def build_html(
    title: str, sections: Sequence[Section], *, meta: str = "", disclaimer: str = DISCLAIMER
) -> str:
    """One self-contained HTML page: the title, a contents list, then each section in order.

    Parameters
    ----------
    title : str
    sections : sequence of Section
    meta : str, optional
        A line under the title (e.g. run, date, code version), as plain text.
    disclaimer : str, optional

    Returns
    -------
    str
        An HTML5 document with inline CSS and every image embedded; no external URL.
    """
    contents = "".join(
        f'<li><a href="#{s.anchor}">{html.escape(s.title)}</a></li>' for s in sections
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<header><h1>{html.escape(title)}</h1>",
        f'<p class="meta">{html.escape(meta)}</p>' if meta else "",
        f'<p class="disclaimer">{html.escape(disclaimer)}</p></header>',
        f"<nav><ol>{contents}</ol></nav>" if sections else "",
        *(s.to_html() for s in sections),
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


def with_section(page: str, section: Section) -> str:
    """A page of :func:`build_html` with ``section`` added at its end, or put in place of the
    section of the same title (so a section can be refreshed without rebuilding the page)."""
    body = section.to_html()
    same = re.compile(rf'<section id="{re.escape(section.anchor)}">.*?</section>', re.S)
    if same.search(page):
        return same.sub(lambda _: body, page, count=1)
    item = f'<li><a href="#{section.anchor}">{html.escape(section.title)}</a></li>'
    page = page.replace("</ol></nav>", item + "</ol></nav>", 1)
    return page.replace("</body></html>", body + "\n</body></html>", 1)


def _table_box(head: str, body: str) -> str:
    """A table in its own box, which scrolls sideways when the table is wider than the page."""
    return (
        f'<div class="table-box"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def _inline(text: str) -> str:
    """Escape, then ``**bold**`` and ```code```."""
    out = html.escape(text, quote=False)
    out = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", out)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", out)


def markdown_to_html(text: str) -> str:
    """The Markdown the sections use: paragraphs, ``-`` lists, pipe tables, bold and code.

    Blocks are separated by blank lines. In a pipe table the first row is the header and a
    ``|---|`` rule is skipped.
    """
    blocks = [b for b in re.split(r"\n\s*\n", text.strip()) if b.strip()]
    html_blocks = []
    for block in blocks:
        lines = [line.strip() for line in block.splitlines()]
        if all(line.startswith("|") for line in lines):
            rows = [
                [_inline(c.strip()) for c in line.strip("|").split("|")]
                for line in lines
                if not re.fullmatch(r"\|[\s:|-]+\|?", line)
            ]
            head = "".join(f"<th>{c}</th>" for c in rows[0])
            body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows[1:])
            html_blocks.append(_table_box(head, body))
        elif lines[0].startswith("- "):  # a list; lines not starting "- " continue an item
            items: list[str] = []
            for line in lines:
                if line.startswith("- "):
                    items.append(line[2:])
                else:
                    items[-1] += " " + line
            html_blocks.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + "</ul>")
        else:
            html_blocks.append(f"<p>{_inline(' '.join(lines))}</p>")
    return "".join(html_blocks)


# --------------------------------------------------------------------------------------------
# The standard sections of the comparison page
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataSummary:
    """What the candidates were trained and tested on.

    Attributes
    ----------
    sizes : dict
        Cases per split (train, validation, test, calibration).
    setting : str
    seed : int
    cause_share : dict
        Share of each cause in the training split.
    serious_share : float
        Share of training cases with a serious condition (``red_flag``).
    serious_condition_share : dict
        Share of each serious condition among training cases (``none`` left out).
    missing_share : float
        Share of unknown answers over every intake field but ``age`` (training split).
    missing_by_field : dict
        The same per field.
    """

    sizes: dict[str, int]
    setting: str
    seed: int
    cause_share: dict[str, float]
    serious_share: float
    serious_condition_share: dict[str, float]
    missing_share: float
    missing_by_field: dict[str, float]


def summarize_data(frames: Mapping[str, pd.DataFrame], setting: str, seed: int) -> DataSummary:
    """A :class:`DataSummary` of generated splits (``frames["train"]`` for the shares)."""
    train = frames["train"]
    fields = [f for f in FIELD_NAMES if f != "age" and f in train]
    missing = train[fields].isna().mean()
    causes = train["cause"].astype(str).value_counts(normalize=True)
    conditions: dict[str, float] = {}
    if "serious_condition" in train:
        counts = train["serious_condition"].astype(str).value_counts(normalize=True)
        conditions = {k: float(v) for k, v in counts.items() if k != "none"}
    return DataSummary(
        sizes={name: len(frame) for name, frame in frames.items()},
        setting=setting,
        seed=seed,
        cause_share={c: float(causes.get(c, 0.0)) for c in CAUSES},
        serious_share=float(train["red_flag"].astype(bool).mean()),
        serious_condition_share=conditions,
        missing_share=float(missing.mean()) if fields else 0.0,
        missing_by_field={k: float(v) for k, v in missing.items()},
    )


def _sizes_text(summary: DataSummary) -> str:
    return ", ".join(f"{n:,} {name}" for name, n in summary.sizes.items())


def data_section(summary: DataSummary) -> Section:
    """Sizes, setting, seed, the cause mix, serious conditions and unknown answers."""
    causes = "\n".join(f"| {c} | {share:.1%} |" for c, share in summary.cause_share.items())
    conditions = ", ".join(
        f"{name} {share:.2%}"
        for name, share in sorted(summary.serious_condition_share.items(), key=lambda kv: -kv[1])
    )
    most = sorted(summary.missing_by_field.items(), key=lambda kv: -kv[1])[:5]
    text = f"""
Synthetic vignettes from `vignettes.generate` (setting **{summary.setting}**, seed
**{summary.seed}**): {_sizes_text(summary)} cases, disjoint row ranges of one seeded dataset.
The shares below are of the training split.

- Serious condition (the red-flag label): **{summary.serious_share:.2%}** of cases
  {f"({conditions})" if conditions else ""}
- Unknown answers: **{summary.missing_share:.1%}** of all answers but age; most often unknown:
  {", ".join(f"{name} {share:.0%}" for name, share in most)}

| cause | share |
|---|---|
{causes}
"""
    return Section("Data", text)


def _table_html(table: pd.DataFrame, champion: str | None, ceiling: str) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in [table.index.name, *table.columns])
    rows = []
    for name, row in table.iterrows():
        label = html.escape(str(name))
        css = ""
        if name == champion:
            label += '<span class="badge">champion</span>'
            css = ' class="champion"'
        elif name == ceiling:
            label += " (ceiling)"
            css = ' class="ceiling"'
        cells = "".join(f"<td>{format_value(column, value)}</td>" for column, value in row.items())
        rows.append(f"<tr{css}><td>{label}</td>{cells}</tr>")
    return _table_box(head, "".join(rows))


def candidates_section(table: pd.DataFrame, champion: str | None, ceiling: str) -> Section:
    """The comparison table, the champion's row marked, with what each candidate is."""
    what = "".join(
        f"<li><b>{html.escape(str(name))}</b>: {html.escape(CANDIDATE_TEXT.get(str(name), ''))}"
        "</li>"
        for name in table.index
    )
    rule = (
        "<p>Test-set metrics of every candidate. The champion has the lowest validation "
        "log-loss among the tree models (the ones with exact TreeSHAP attributions, which "
        "serving promises). Red-flag recall and specificity are of the served decision: any "
        "reported red-flag sign, or the model at its review threshold 1/(1+K). GTPA@3, DDF1 "
        "and DSF1 are DDXPlus's interview metrics (Fansi Tchango et al., NeurIPS 2022) on the "
        "complete test intake, the interview benchmark's reference: the true cause in the top "
        "three; the F1 of the 95% differential (the fewest causes summing to 95%) against the "
        "exact posterior's; the F1 of a tier above routine for a serious condition.</p>"
    )
    return Section("Candidates", rule + _table_html(table, champion, ceiling) + f"<ul>{what}</ul>")


def gap_section(
    table: pd.DataFrame, champion: str | None, ceiling: str, figure: Figure | Image | None = None
) -> Section:
    """How far each candidate is from the Bayes ceiling, the champion first."""
    if ceiling not in table.index or "gap to Bayes (pp)" not in table:
        return Section("Gap to the Bayes ceiling", "The Bayes ceiling was not part of this run.")
    bayes = table.loc[ceiling]
    lines = []
    if champion is not None:
        row = table.loc[champion]
        lines.append(
            f"The champion, **{champion}**, reaches test accuracy {row['accuracy']:.3f}: "
            f"**{row['gap to Bayes (pp)']:.2f} points** below the Bayes posterior "
            f"({bayes['accuracy']:.3f}); its log-loss {row['log-loss']:.3f} is "
            f"**{row['log-loss / Bayes']:.3f}x** the Bayes log-loss ({bayes['log-loss']:.3f})."
        )
    lines.append(
        "The Bayes posterior of the generator is the best any classifier can do on these "
        "answers; a gap near zero means the model has learnt what the answers can tell."
    )
    others = [
        f"- {name}: {r['gap to Bayes (pp)']:.2f} pp, log-loss {r['log-loss / Bayes']:.3f}x"
        for name, r in table.iterrows()
        if name != ceiling
    ]
    text = "\n\n".join([" ".join(lines), "\n".join(others)])
    return Section("Gap to the Bayes ceiling", text, [figure] if figure is not None else [])


def differential_section(coverage: pd.DataFrame, alpha: float) -> Section:
    """Coverage and mean size of the conformal differential per cause, per model.

    ``coverage`` has the columns ``model``, ``cause``, ``coverage``, ``mean_set_size`` (one row
    per model and cause, plus ``cause == "all"``).
    """
    models = list(dict.fromkeys(coverage["model"]))
    head = "| cause | " + " | ".join(f"{m} coverage | {m} mean size" for m in models) + " |"
    rule = "|" + "---|" * (1 + 2 * len(models))
    rows = []
    for cause in dict.fromkeys(coverage["cause"]):
        cells = []
        for m in models:
            r = coverage[(coverage["model"] == m) & (coverage["cause"] == cause)]
            cells += (
                [cell(r["coverage"].iloc[0]), cell(r["mean_set_size"].iloc[0], ".2f")]
                if len(r)
                else [NO_VALUE, NO_VALUE]
            )
        label = "**all causes**" if cause == "all" else str(cause)
        rows.append("| " + " | ".join([label, *cells]) + " |")
    intro = (
        f"The served differential is the smallest set of causes that holds the true cause with "
        f"probability at least {1 - alpha:.0%}, by class-conditional conformal prediction "
        "calibrated on the held-out calibration split. Test-set coverage per true cause and the "
        "mean number of causes in the set:"
    )
    return Section("Differential coverage", "\n\n".join([intro, "\n".join([head, rule, *rows])]))


def _model_label(name: str, champion: str | None, ceiling: str) -> str:
    """A model's name as a column header, the champion and the ceiling said so."""
    if name == champion:
        return f"{name} (champion)"
    return f"{name} (ceiling)" if name == ceiling else name


def calibration_section(
    table: pd.DataFrame, champion: str | None, ceiling: str, figure: Figure | Image | None
) -> Section:
    """The reliability diagrams of every candidate, the Bayes posterior's drawn on each."""
    eces = [
        f"{_model_label(str(name), champion, ceiling)} {format_value('ECE', row['ECE'])}"
        for name, row in table.iterrows()
    ]
    text = (
        f"Top-label reliability on the test set. Each candidate's test cases are put in "
        f"{RELIABILITY_BINS} equal-width bins of the probability it gives its top cause; a point "
        "is a bin's mean probability against the share of its cases whose top cause is the true "
        "one, and the strip under each panel counts the cases per bin (log scale; the Bayes "
        "posterior's counts as a black outline). The Bayes posterior is drawn dashed on every "
        "panel: it is calibrated by construction, so where it leaves the diagonal the bin holds "
        "too few cases to tell. ECE, over the same bins weighted by cases: " + ", ".join(eces) + "."
    )
    return Section("Calibration", text, [figure] if figure is not None else [])


def per_cause_markdown(
    rates: Mapping[str, Mapping[str, np.ndarray]], champion: str | None, ceiling: str
) -> str:
    """Recall and precision per cause of every model, as two Markdown tables.

    Parameters
    ----------
    rates : mapping of str to dict
        Model name -> :func:`training.metrics.per_cause_rates` on the test set, in column order.
    champion : str or None
    ceiling : str
    """
    names = list(rates)
    cases = next(iter(rates.values()))["cases"]
    header = ["cause", "cases", *(_model_label(n, champion, ceiling) for n in names)]
    blocks = []
    for rate, intro, missing in (
        ("recall", "Recall: the share of each cause's test cases given it as top cause.", NO_VALUE),
        (
            "precision",
            "Precision: the share of the cases given a cause as top cause that have it.",
            "never predicted",
        ),
    ):
        rows = [
            "| "
            + " | ".join(
                [cause, f"{cases[k]:,}", *(cell(rates[n][rate][k], missing=missing) for n in names)]
            )
            + " |"
            for k, cause in enumerate(CAUSES)
        ]
        table = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *rows]
        blocks += [intro, "\n".join(table)]
    return "\n\n".join(blocks) + "\n"


def _recall_gaps(
    rates: Mapping[str, Mapping[str, np.ndarray]], champion: str, ceiling: str, top: int = 3
) -> str:
    """The causes where the champion's recall falls furthest below the ceiling's, in words."""
    ours, best = rates[champion]["recall"], rates[ceiling]["recall"]
    gap = np.nan_to_num(best - ours, nan=-np.inf)
    order = [k for k in np.argsort(-gap, kind="stable")[:top] if gap[k] > 0]
    if not order:
        return f"{champion}'s recall is nowhere below the Bayes posterior's."
    listed = ", ".join(
        f"{CAUSES[k]} {ours[k]:.3f} against {best[k]:.3f} ({100 * gap[k]:.1f} points)"
        for k in order
    )
    return f"Where {champion}'s recall falls furthest below the Bayes posterior's: {listed}."


def per_cause_section(
    rates: Mapping[str, Mapping[str, np.ndarray]],
    champion: str | None,
    ceiling: str,
    figures: Sequence[Figure | Image] = (),
) -> Section:
    """Recall and precision per cause of every candidate, and the confusion matrices."""
    parts = []
    if champion is not None and champion in rates and ceiling in rates:
        parts.append(_recall_gaps(rates, champion, ceiling))
    parts.append(per_cause_markdown(rates, champion, ceiling))
    if figures:
        parts.append(
            "Below, the champion's and the Bayes posterior's confusion matrices (each row: where "
            "the test cases of that true cause went), and their difference (champion minus Bayes; "
            "blue on the diagonal is recall the champion loses)."
        )
    return Section("Per-cause recall and precision", "\n\n".join(parts), figures)


SHIFT_COLUMNS = {
    "accuracy": "accuracy",
    "bayes_accuracy": "Bayes accuracy",
    "gap_accuracy_pp": "gap to Bayes (pp)",
    "log_loss": "log-loss",
    "bayes_log_loss": "Bayes log-loss",
    "log_loss_ratio": "log-loss / Bayes",
    "ece": "ECE",
    "bayes_ece": "Bayes ECE",
}
"""The columns of the change-of-setting table: the champion's figures beside the Bayes'."""
IN_SETTING, WITHOUT, WITH = "not needed", "without", "with"
"""The change-of-setting table's ``prior adjustment`` column: the training setting's own test
cases, and the other setting's cases without and with the prior adjustment."""


def setting_shift_table(
    rows: Mapping[tuple[str, str], tuple[Mapping[str, float], Mapping[str, float]]],
) -> pd.DataFrame:
    """The champion and the Bayes posterior on each setting's cases, with the gap between.

    Parameters
    ----------
    rows : mapping of (cases, prior adjustment) to (champion metrics, Bayes metrics)
        :func:`training.metrics.cause_metrics` of each, in row order; ``cases`` names the
        setting the cases come from, the adjustment is :data:`IN_SETTING`, :data:`WITHOUT` or
        :data:`WITH`.

    Returns
    -------
    pandas.DataFrame
        Columns ``cases``, ``prior adjustment``, then :data:`SHIFT_COLUMNS`' display names.
    """
    records = []
    for (cases, adjustment), (model, bayes) in rows.items():
        record: dict[str, Any] = {"cases": cases, "prior adjustment": adjustment}
        record |= {k: model[k] for k in ("accuracy", "log_loss", "ece")}
        record |= {f"bayes_{k}": bayes[k] for k in ("accuracy", "log_loss", "ece")}
        record["gap_accuracy_pp"] = 100 * (bayes["accuracy"] - model["accuracy"])
        record["log_loss_ratio"] = model["log_loss"] / bayes["log_loss"]
        records.append(record)
    columns = ["cases", "prior adjustment", *SHIFT_COLUMNS]
    return pd.DataFrame(records, columns=columns).rename(columns=SHIFT_COLUMNS)


def setting_shift_markdown(table: pd.DataFrame) -> str:
    """:func:`setting_shift_table` as a Markdown table."""
    header = "| " + " | ".join(map(str, table.columns)) + " |"
    rows = [
        "| "
        + " | ".join(
            [str(row["cases"]), str(row["prior adjustment"])]
            + [format_value(column, row[column]) for column in SHIFT_COLUMNS.values()]
        )
        + " |"
        for _, row in table.iterrows()
    ]
    return "\n".join([header, "|" + "---|" * len(table.columns), *rows]) + "\n"


def setting_shift_section(
    table: pd.DataFrame, champion: str, trained_on: str, shifted_to: str, n_cases: int
) -> Section:
    """The champion and the Bayes posterior on another setting's cases, with and without the
    prior adjustment, below the training setting's own figures."""
    by_adjustment = table.set_index("prior adjustment")
    without, with_ = by_adjustment.loc[WITHOUT], by_adjustment.loc[WITH]
    text = f"""
{champion} was trained on **{trained_on}** cases; here it meets {n_cases:,} fresh
**{shifted_to}** cases, where the causes are mixed differently. Without adjustment it keeps the
training setting's priors; with the prior adjustment its probabilities are reweighted by the
ratio of the two settings' cause priors (no refit). The Bayes posterior is scored the same two
ways: with the {trained_on} priors, and with every prior of {shifted_to} (its exact ceiling
there). The first row is the training setting's own test set, for reference.

{setting_shift_markdown(table)}
With the prior adjustment the champion's accuracy goes from {without["accuracy"]:.3f} to
**{with_["accuracy"]:.3f}** ({with_["gap to Bayes (pp)"]:.2f} points below the Bayes posterior's
{with_["Bayes accuracy"]:.3f}), its log-loss from {without["log-loss"]:.3f} to
**{with_["log-loss"]:.3f}** ({with_["log-loss / Bayes"]:.3f}x Bayes).
"""
    return Section(f"Change of setting: {shifted_to}", text)


def comparison_sections(
    summary: DataSummary,
    table: pd.DataFrame,
    champion: str | None,
    ceiling: str,
    *,
    differential: pd.DataFrame | None = None,
    alpha: float = 0.05,
    gap_figure: Figure | Image | None = None,
    views: Sequence[Section] = (),
    extra: Sequence[Section] = (),
    learning_curve: Figure | Image | None = None,
    robustness: Figure | Image | None = None,
    setting_shift: Section | None = None,
    curve_cases: int | None = None,
) -> list[Section]:
    """The comparison page's sections, in reading order.

    ``views`` (calibration, per cause) follow the gap to the Bayes ceiling; ``extra`` sections
    (the urgency tiers, for one) come next, before the differential and the plots of the
    champion; ``setting_shift`` closes the page, after the robustness to missing answers.
    ``curve_cases`` is how many test cases the learning curve was scored on.
    """
    sections = [
        data_section(summary),
        candidates_section(table, champion, ceiling),
        gap_section(table, champion, ceiling, gap_figure),
        *views,
        *extra,
    ]
    if differential is not None and len(differential):
        sections.append(differential_section(differential, alpha))
    if learning_curve is not None:
        text = (
            f"Test accuracy and log-loss of {champion} against the number of training cases, "
            "with the Bayes ceiling drawn"
            + (
                f", on the first {curve_cases:,} test cases (every point on the same cases)."
                if curve_cases
                else "."
            )
        )
        sections.append(Section("Learning curve", text, [learning_curve]))
    if robustness is not None:
        text = (
            f"Test accuracy of {champion} and of the Bayes posterior as more answers are made "
            "unknown, completely at random."
        )
        sections.append(Section("Robustness to missing answers", text, [robustness]))
    if setting_shift is not None:
        sections.append(setting_shift)
    return sections


# --------------------------------------------------------------------------------------------
# Descriptions shown by MLflow (Markdown)
# --------------------------------------------------------------------------------------------


def _figures(name: str, table: pd.DataFrame, ceiling: str) -> str:
    """One candidate's headline figures, with the gap to the ceiling when there is one."""
    row = table.loc[name]
    text = f"test accuracy {row['accuracy']:.3f}"
    has_gap = ceiling in table.index and name != ceiling and "gap to Bayes (pp)" in table
    if has_gap:
        text += f" ({row['gap to Bayes (pp)']:.2f} pp below the Bayes ceiling)"
    text += f", log-loss {row['log-loss']:.3f}"
    if has_gap:
        text += f" ({row['log-loss / Bayes']:.3f}x Bayes)"
    if "ECE" in table and pd.notna(row["ECE"]):
        text += f", ECE {row['ECE']:.4f}"
    if "red-flag AUROC" in table and pd.notna(row["red-flag AUROC"]):
        text += f", red-flag AUROC {row['red-flag AUROC']:.3f}"
    return text


def champion_summary(table: pd.DataFrame, champion: str | None, ceiling: str) -> str:
    """One sentence: the champion and its figures, with the gap to the Bayes ceiling."""
    if champion is None:
        return "No tree candidate was trained, so there is no champion."
    return f"Champion **{champion}**: {_figures(champion, table, ceiling)}."


def comparison_description(
    summary: DataSummary,
    table: pd.DataFrame,
    champion: str | None,
    ceiling: str,
    registered: str | None = None,
) -> str:
    """The comparison run's note: what was trained, on what, and the champion's figures."""
    lines = [
        f"Compares {len(table)} candidates ({', '.join(map(str, table.index))}) for the cause "
        f"of lower back pain radiating to the leg (7 classes) and the red flag, on synthetic "
        f"vignettes (setting {summary.setting}, seed {summary.seed}): {_sizes_text(summary)} "
        "cases.",
        "",
    ]
    lines.append(champion_summary(table, champion, ceiling))
    if registered:
        lines.append(registered)
    lines += ["", "The full report is `comparison.html` in this run's artifacts.", "", DISCLAIMER]
    return "\n".join(lines)


def candidate_description(
    name: str, summary: DataSummary, table: pd.DataFrame, champion: str | None, ceiling: str
) -> str:
    """A candidate run's note: what it is, what it was trained on, and how it compares."""
    what = CANDIDATE_TEXT.get(name, name)
    data = f"synthetic vignettes (setting {summary.setting}, seed {summary.seed})"
    tested = f"tested on {summary.sizes.get('test', 0):,}"
    if name in UNTRAINED:
        source = f"Learns nothing from data; {tested} {data}."
    else:
        source = f"Trained on {summary.sizes.get('train', 0):,} {data}, {tested}."
    figures = _figures(name, table, ceiling)
    lines = [f"**{name}**: {what}. {source}", "", f"{figures[0].upper()}{figures[1:]}."]
    if name == champion:
        lines += ["", "Champion of this comparison (lowest validation log-loss among tree models)."]
    elif champion is not None and name != ceiling:
        lines += [
            "",
            f"Not the champion; that is {champion}: {_figures(champion, table, ceiling)}.",
        ]
    return "\n".join(lines)


def experiment_description(latest: str) -> str:
    """The experiment's note: what it holds, and the latest comparison's summary."""
    return "\n".join(
        [
            "Gradient-boosted classifiers of the cause of lower back pain radiating to the leg "
            "(7 classes) and of a serious condition (red flag), trained on synthetic vignettes "
            "generated from one patient-education article, compared with the article's own rules, "
            "a linear baseline and the exact Bayes posterior (the ceiling). Each comparison run "
            "(tag `role=comparison`) holds one nested run per candidate and the report "
            "`comparison.html`; the best tree model is registered as `sciatica-triage`.",
            "",
            f"Latest comparison: {latest}",
            "",
            DISCLAIMER,
        ]
    )


def registered_model_description(
    name: str, version: str, candidate: str, summary: DataSummary, table: pd.DataFrame, ceiling: str
) -> str:
    """The registered model's description, written when ``@champion`` moves."""
    return "\n".join(
        [
            "Triage of lower back pain radiating to the leg: probabilities of 7 causes, an "
            "urgency tier (emergency or urgent from reported red-flag signs by rule, review when "
            "the calibrated probability of a serious condition reaches 1/(1+K), else routine), "
            "exact TreeSHAP attributions, nerve root, MRI indication and next step. Load it with "
            f"`mlflow.pyfunc.load_model('models:/{name}@champion')`.",
            "",
            f"@champion is v{version}: {candidate} trained on {summary.sizes.get('train', 0):,} "
            f"synthetic vignettes ({summary.setting}, seed {summary.seed}); "
            f"{_figures(candidate, table, ceiling)}.",
            "",
            DISCLAIMER,
        ]
    )


def model_version_description(
    candidate: str,
    summary: DataSummary,
    table: pd.DataFrame,
    ceiling: str,
    run_id: str,
    decision: str,
) -> str:
    """A registered version's description: what it is, its data, figures and the alias decision."""
    return "\n".join(
        [
            f"{candidate} ({CANDIDATE_TEXT.get(candidate, candidate)}), trained on "
            f"{summary.sizes.get('train', 0):,} synthetic vignettes (setting {summary.setting}, "
            f"seed {summary.seed}) in comparison run {run_id}.",
            "",
            f"{_figures(candidate, table, ceiling)[0].upper()}"
            f"{_figures(candidate, table, ceiling)[1:]}.",
            "",
            decision,
        ]
    )


# --------------------------------------------------------------------------------------------
# The model card
# --------------------------------------------------------------------------------------------


def model_card(name: str, candidate: str, metrics: dict[str, float], config: dict) -> str:
    """Intended use, training data, limitations and metrics, in Markdown."""
    lines = [
        f"# Model card: {name} ({candidate})",
        "",
        "> Research software trained on synthetic data. Not a medical device, not medical advice.",
        "",
        "## Intended use",
        "Research on triage models for lower back pain radiating to the leg: how well a learned",
        "model recovers the reasoning of a patient-education article, how it compares with the",
        "article's own rules and with the Bayes ceiling of the generator. Not for patient care.",
        "",
        "## Training data",
        f"Synthetic vignettes from `vignettes.generate` (setting `{config['setting']}`, seed",
        f"{config['seed']}, {config['n_train']:,} training cases). The generator encodes one",
        "article plus stated assumptions (`vignettes/knowledge.toml`); it is not patient data.",
        "",
        "## Outputs",
        "Probabilities of seven causes, a calibrated probability of a serious condition, an",
        "urgency tier (emergency or urgent from reported red-flag signs by rule; review when no",
        "sign is reported but the probability reaches 1/(1+K); routine otherwise), exact",
        "TreeSHAP attributions per intake field, the likely nerve root, MRI indication, the",
        "next step and advice codes.",
        "",
        "## Limitations",
        "- Everything it knows comes from a synthetic model of one article; real patients differ.",
        "- Class priors are assumptions for the training setting; other settings shift them.",
        "- Serious conditions are rare and about a third of them show no reported sign. The",
        f"  review threshold follows the declared cost ratio K = {config.get('cost_ratio', '?')}",
        "  (one missed serious condition costs K false alarms); most review alerts are still",
        "  false alarms, as with any screening of a rare condition.",
        "",
        "## Test metrics",
        "| metric | value |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v:.4g} |" for k, v in sorted(metrics.items())]
    return "\n".join(lines) + "\n"
