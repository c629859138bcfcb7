"""The comparison report's safety sections: which serious condition, and where each one lands.

Run once per ``make train`` on the test split, after the champion is chosen:

- "Which serious condition": the champion's serious-type model (:mod:`training.serious`) against
  the exact posterior's per-condition probabilities;
- "Safety table": :mod:`training.safety` under the rules alone, the champion and the Bayes
  policy, with the population figures;
- "Safety at the edges": :mod:`training.edges` under the same three policies, and each urgency
  rule's coverage and yield.

Both are logged to MLflow (metrics ``serious_*`` and ``safety_*``, ``serious_types.md`` and
``safety.md``) and returned as report sections.
"""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd

from model import rules
from model.triage import TriageModel, cost_ratio_threshold
from training import report
from training.candidates import Split
from training.edges import edge_figures, edges_markdown, trigger_yields
from training.safety import (
    RULES_ALONE,
    Policy,
    policy_gaps,
    policy_tiers,
    policy_triage,
    population_figures,
    safety_markdown,
    safety_table,
)
from training.serious import compare_with_posterior, comparison_markdown
from vignettes import posterior
from vignettes.schema import CAUSES

BAYES = "bayes"


def urgent_threshold(triage: TriageModel) -> float | None:
    """The served upper threshold (a silent case goes to urgent at or above it), if any."""
    value = getattr(triage, "urgent_threshold", None)
    return None if value is None else float(value)


def safety_sections(
    champion: str,
    triage: TriageModel,
    test: Split,
    cost_ratio: float,
    cause_proba: np.ndarray | None = None,
    red_flag_proba: np.ndarray | None = None,
) -> tuple[list[report.Section], str, pd.DataFrame, dict[str, dict[str, float]]]:
    """Compute, log and render both sections.

    ``cause_proba`` and ``red_flag_proba`` are the champion's probabilities on ``test``, when
    already computed.

    Returns
    -------
    sections : list of report.Section
    markdown : str
        Both sections' markdown, for ``comparison.md``.
    table : pandas.DataFrame
        The safety table (:func:`training.safety.safety_table`).
    figures : dict
        Policy -> population figures.
    """
    bayes = posterior(test.frame, latents=True)
    sections, parts = [], []
    if triage.serious is not None:
        serious_table = compare_with_posterior(triage.serious.proba(test.X), bayes, test.serious)
        text = comparison_markdown(serious_table, champion)
        mlflow.log_text(text, "serious_types.md")
        mlflow.log_table(serious_table.reset_index(), "serious_types.json")
        for condition, row in serious_table.iterrows():
            mlflow.log_metrics(
                {
                    f"serious_{condition}_log_loss_ratio": float(row["log_loss_ratio"]),
                    f"serious_{condition}_mean_abs_gap": float(row["mean_abs_gap"]),
                }
            )
        sections.append(report.Section("Which serious condition", text, []))
        parts.append(text)
    review = cost_ratio_threshold(cost_ratio)
    upper = urgent_threshold(triage)
    if cause_proba is None:
        cause_proba = triage.cause.proba(test.X)
    if red_flag_proba is None:
        red_flag_proba = triage.red_flag.proba(test.X)
    cause = np.asarray(CAUSES, dtype=object)[cause_proba.argmax(axis=1)]
    policies = {
        RULES_ALONE: Policy(RULES_ALONE),
        champion: Policy(champion, red_flag_proba, review, upper),
        BAYES: Policy(BAYES, bayes["red_flag"].to_numpy(), review, upper),
    }
    triaged = {
        name: policy_triage(test.frame, p, None if name == RULES_ALONE else cause)
        for name, p in policies.items()
    }
    tiers = {
        name: policy_tiers(test.frame, p, triaged=triaged[name]) for name, p in policies.items()
    }
    table = safety_table(test.serious, tiers)
    figures = {
        name: population_figures(
            frame, tiers[RULES_ALONE], test.serious, test.fired, test.answered_no
        )
        for name, frame in tiers.items()
    }
    for name, values in figures.items():
        key = {RULES_ALONE: "rules", BAYES: "bayes"}.get(name, "champion")
        mlflow.log_metrics({f"safety_{key}_{k}": v for k, v in values.items()})
    text = safety_markdown(table, figures, champion, BAYES)
    gaps = policy_gaps(figures, champion, BAYES)
    mlflow.log_metrics({f"safety_champion_{k}": v for k, v in gaps.items()})
    mlflow.log_text(text, "safety.md")
    mlflow.log_table(table.reset_index(), "safety_table.json")
    sections.append(report.Section("Safety table", text, []))
    parts.append(text)
    edges = _edges(test, policies, triaged, cause)
    mlflow.log_text(edges, "edges.md")
    sections.append(report.Section("Safety at the edges", edges, []))
    parts.append(edges)
    return sections, "\n".join(parts), table, figures


def _edges(
    test: Split, policies: dict[str, Policy], triaged: dict[str, dict], cause: np.ndarray
) -> str:
    """The edge figures per policy (logged as ``edges_<policy>_<figure>``) and the yields of
    the urgency rules under the champion, as markdown."""
    figures, fired = {}, None
    for name, policy in policies.items():
        figures[name] = edge_figures(
            test.frame, triaged[name], policy.probability, policy.urgent_threshold
        )
        key = {RULES_ALONE: "rules", BAYES: "bayes"}.get(name, "champion")
        mlflow.log_metrics({f"edges_{key}_{k}": v for k, v in figures[name].items()})
        if key == "champion":
            review, urgent = policy.decisions()
            fired = rules.fired_rules(test.frame, review, cause, urgent)
    if fired is None:
        fired = rules.fired_rules(test.frame)
    return edges_markdown(figures, trigger_yields(fired, test.serious, test.fired))


__all__ = ["BAYES", "safety_sections", "urgent_threshold"]
