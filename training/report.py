"""The comparison table (Markdown and HTML) and the model card."""

from __future__ import annotations

import pandas as pd

DISPLAY_COLUMNS = {
    "accuracy": "accuracy",
    "gap_accuracy_pp": "gap to Bayes (pp)",
    "log_loss": "log-loss",
    "log_loss_ratio": "log-loss / Bayes",
    "balanced_accuracy": "balanced acc.",
    "macro_f1": "macro F1",
    "top2_accuracy": "top-2 acc.",
    "ece": "ECE",
    "red_flag_auroc": "red-flag AUROC",
    "red_flag_recall": "red-flag recall",
    "red_flag_specificity": "red-flag specificity",
    "val_log_loss": "val log-loss",
    "fit_seconds": "fit s",
    "predict_ms_per_1000": "predict ms / 1000",
}


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


def to_markdown(table: pd.DataFrame, champion: str | None) -> str:
    """A GitHub-style Markdown table; the champion is marked."""
    header = "| " + " | ".join([table.index.name, *table.columns]) + " |"
    rule = "|" + "---|" * (len(table.columns) + 1)
    rows = []
    for name, row in table.iterrows():
        label = f"**{name}** (champion)" if name == champion else str(name)
        cells = ["" if pd.isna(v) else f"{v:.4g}" for v in row]
        rows.append("| " + " | ".join([label, *cells]) + " |")
    return "\n".join([header, rule, *rows]) + "\n"


def to_html(table: pd.DataFrame, champion: str | None, title: str, extra_markdown: str = "") -> str:
    """The comparison as a page; ``extra_markdown`` (a note and one Markdown table) is appended."""
    body = table.to_html(float_format=lambda v: f"{v:.4g}", na_rep="") + _markdown_table_html(
        extra_markdown
    )
    note = f"<p>Champion: <b>{champion}</b> (lowest validation log-loss among tree models).</p>"
    style = (
        "<style>table{border-collapse:collapse}td,th{padding:4px 8px;border:1px solid #ccc}</style>"
    )
    head = f"<head><title>{title}</title>{style}</head>"
    return f"<html>{head}<body><h1>{title}</h1>{note}{body}</body></html>"


def _markdown_table_html(text: str) -> str:
    """Small Markdown blocks (heading lines and pipe tables, separated by blank lines) as HTML."""
    html = []
    for block in text.strip().split("\n\n"):
        lines = [line for line in block.splitlines() if line.strip()]
        rows = [line for line in lines if line.startswith("|") and "---" not in line]
        html += [f"<h2>{line}</h2>" for line in lines if not line.startswith("|")]
        if rows:
            cells = [[c.strip() for c in r.strip("|").split("|")] for r in rows]
            head = "".join(f"<th>{c}</th>" for c in cells[0])
            body = "".join(
                "<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in cells[1:]
            )
            html.append(f"<table><tr>{head}</tr>{body}</table>")
    return "".join(html)


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
