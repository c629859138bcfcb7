"""The safety table: where each serious condition lands, under three policies, on the test set.

A clinical-safety review reads the edges, not the averages. For each serious condition the
generator labels (and for patients with none), this module counts the share in each urgency tier
and each timeframe under three policies that share the same rules (``model.rules.triage``):

- ``rules alone``: the answers only, no model alert;
- the champion: its calibrated probability of a serious condition against the served
  thresholds;
- ``bayes``: the exact posterior's probability against the same thresholds (the ceiling).

It also measures each population figure the triage is held to (issue 16's targets) under each
policy: serious conditions caught, screened patients left routine, how often an alert raised
without a reported red-flag sign is right (by the answer-based rules and the model together, and
by the model's share alone), and progressive deficits left routine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from model import rules
from model.serious import SERIOUS_TYPES
from model.triage import red_flag_decision
from training.report import NO_ALERTS, NO_VALUE, cell
from vignettes.article import TIMEFRAMES, URGENCY_TIERS
from vignettes.schema import SERIOUS_CONDITIONS

RULES_ALONE = "rules alone"
NO_TIMEFRAME = "none"
"""The timeframe column of a case given no appointment (routine)."""

TARGETS = {
    "caught": (">=", 0.85, "serious conditions caught (not routine)"),
    "screened_routine": (">=", 0.75, "screened patients (all six flags 'no') routine"),
    "silent_alert_ppv": (">=", 0.03, "alerts without a reported sign that are right"),
}
"""Population targets of the served policy: figure -> (direction, bound, what it is)."""
CAUGHT_GAP_POINTS = 2.0
"""The champion catches within this many points of the Bayes policy (same rules, thresholds)."""
DEFICIT_ROUTINE_RULES = 0.13
"""Progressive deficits left routine by the rules alone: at most this share."""
DEFICIT_GAP_POINTS = 0.5
"""Progressive deficits left routine with the champion: at most this many points above Bayes."""


@dataclass(frozen=True)
class Policy:
    """One way to set the tier: a probability of a serious condition and the thresholds.

    Attributes
    ----------
    name : str
    probability : ndarray or None
        Per case; ``None`` for the rules alone.
    review_threshold : float
        The model alert raises a silent case to review at or above it.
    urgent_threshold : float or None
        The model alert raises a silent case to urgent at or above it, where the rules take it.
    """

    name: str
    probability: np.ndarray | None = None
    review_threshold: float = 1.0
    urgent_threshold: float | None = None

    def decisions(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The model's review and urgent decisions per case (``None``: no such alert)."""
        if self.probability is None:
            return None, None
        review = red_flag_decision(self.probability, self.review_threshold)
        upper = self.urgent_threshold
        return review, None if upper is None else red_flag_decision(self.probability, upper)


def policy_triage(frame: pd.DataFrame, policy: Policy, cause: object = None) -> dict[str, Any]:
    """``model.rules.triage`` of every case under ``policy``: its review and urgent decisions
    (none for the rules alone) and the model's most likely ``cause``."""
    review, urgent = policy.decisions()
    return rules.triage(frame, review, cause, urgent)


def policy_tiers(
    frame: pd.DataFrame,
    policy: Policy,
    cause: object = None,
    triaged: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """The tier and timeframe of every case under ``policy``, from ``model.rules.triage``.

    ``triaged`` is :func:`policy_triage` of the same arguments, when already computed (the
    engine is the costly part on a test split).

    Returns
    -------
    pandas.DataFrame
        ``urgency`` and ``urgency_timeframe`` (:data:`NO_TIMEFRAME` where none is given), one
        row per case, indexed like ``frame``.
    """
    n = len(frame)
    out = policy_triage(frame, policy, cause) if triaged is None else triaged
    timeframe = out.get("urgency_timeframe", np.full(n, None, dtype=object))
    timeframe = pd.Series(np.asarray(timeframe, dtype=object), index=frame.index)
    return pd.DataFrame(
        {
            "urgency": pd.Series(np.asarray(out["urgency"], dtype=object), index=frame.index),
            "urgency_timeframe": timeframe.fillna(NO_TIMEFRAME),
        }
    )


def safety_table(serious: np.ndarray, tiers: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per serious condition (and ``none``) and policy: cases, share per tier and timeframe.

    Parameters
    ----------
    serious : ndarray of int
        The latent ``serious_condition`` codes (``vignettes.schema.SERIOUS_CONDITIONS``).
    tiers : dict of str to pandas.DataFrame
        Policy name -> :func:`policy_tiers`'s frame.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``(condition, policy)``; columns ``cases``, one per tier of
        ``URGENCY_TIERS`` and one ``timeframe: <timeframe>`` per timeframe seen.
    """
    timeframes = sorted(
        {t for frame in tiers.values() for t in frame["urgency_timeframe"].unique()},
        key=_timeframe_order,
    )
    rows = []
    for condition in (*SERIOUS_TYPES, "none"):
        mask = serious == SERIOUS_CONDITIONS.index(condition)
        for name, frame in tiers.items():
            row: dict[str, object] = {"condition": condition, "policy": name}
            row["cases"] = int(mask.sum())
            urgency = frame["urgency"].to_numpy()[mask]
            timeframe = frame["urgency_timeframe"].to_numpy()[mask]
            for tier in URGENCY_TIERS:
                row[tier] = float((urgency == tier).mean()) if mask.any() else float("nan")
            for t in timeframes:
                share = float((timeframe == t).mean()) if mask.any() else float("nan")
                row[f"timeframe: {t}"] = share
            rows.append(row)
    return pd.DataFrame(rows).set_index(["condition", "policy"])


def _timeframe_order(timeframe: str) -> tuple[int, str]:
    if timeframe in TIMEFRAMES:
        return TIMEFRAMES.index(timeframe), timeframe
    return len(TIMEFRAMES) + (timeframe == NO_TIMEFRAME), timeframe


def population_figures(
    policy: pd.DataFrame,
    rules_alone: pd.DataFrame,
    serious: np.ndarray,
    fired: np.ndarray,
    answered_no: np.ndarray,
) -> dict[str, float]:
    """The population figures of one policy.

    Parameters
    ----------
    policy, rules_alone : pandas.DataFrame
        :func:`policy_tiers` of the policy and of the rules alone, for the same cases.
    serious : ndarray of int
        The latent ``serious_condition`` codes.
    fired : ndarray of bool
        Cases with a reported red-flag sign (a flag question answered yes).
    answered_no : ndarray of bool
        Cases that answered all six red-flag questions "no" (screened).

    Returns
    -------
    dict
        ``caught``; ``screened_routine``; ``silent_alert_share`` and ``silent_alert_ppv``
        (cases raised above routine with no reported sign, by the rules or the model, and the
        share of them with a serious condition); ``model_alert_share`` and ``model_alert_ppv``
        (the model's share alone: raised where the rules alone leave the case routine);
        ``progressive_deficit_routine``.
    """
    has = serious > 0
    flagged = policy["urgency"].to_numpy() != "routine"
    by_rules = rules_alone["urgency"].to_numpy() != "routine"
    silent = flagged & ~np.asarray(fired, dtype=bool)
    model_only = flagged & ~by_rules
    deficit = serious == SERIOUS_CONDITIONS.index("progressive_deficit")

    def share(mask: np.ndarray, of: np.ndarray) -> float:
        return float(mask[of].mean()) if of.any() else float("nan")

    return {
        "caught": share(flagged, has),
        "screened_routine": share(~flagged, np.asarray(answered_no, dtype=bool)),
        "silent_alert_share": float(silent.mean()),
        "silent_alert_ppv": share(has, silent),
        "model_alert_share": float(model_only.mean()),
        "model_alert_ppv": share(has, model_only),
        "progressive_deficit_routine": share(~flagged, deficit),
    }


def _met(name: str, value: float) -> str:
    direction, bound, _ = TARGETS[name]
    ok = value >= bound if direction == ">=" else value <= bound
    return "met" if ok else "**not met**"


def policy_gaps(
    figures: dict[str, dict[str, float]], champion: str, bayes: str
) -> dict[str, float]:
    """The champion against the Bayes policy and the rules alone, in points (0-100 scale).

    Returns
    -------
    dict
        ``caught_gap`` (Bayes caught minus champion caught), ``deficit_routine_gap`` (champion
        minus Bayes, progressive deficits left routine) and ``deficit_routine_rules`` (the rules
        alone's share, 0-1).
    """
    ours, ceiling = figures[champion], figures[bayes]
    return {
        "caught_gap": 100 * (ceiling["caught"] - ours["caught"]),
        "deficit_routine_gap": 100
        * (ours["progressive_deficit_routine"] - ceiling["progressive_deficit_routine"]),
        "deficit_routine_rules": figures[RULES_ALONE]["progressive_deficit_routine"],
    }


def safety_markdown(
    table: pd.DataFrame,
    figures: dict[str, dict[str, float]],
    champion: str,
    bayes: str | None = None,
) -> str:
    """The safety table and the population figures as markdown (report and README).

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`safety_table`.
    figures : dict
        Policy name -> :func:`population_figures` (with :data:`RULES_ALONE` among them).
    champion : str
        The champion's name (one of the policies); its figures are judged against the targets.
    bayes : str, optional
        The Bayes policy's name, to judge the champion's gaps against it.
    """
    columns = [c for c in table.columns if c != "cases"]
    header = ["condition", "policy", "cases", *columns]
    lines = [
        "Where each serious condition lands (share of its test cases in each tier and timeframe;"
        " the same rules, with no model alert, with the champion's and with the exact "
        "posterior's probability at the served thresholds)",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for (condition, policy), row in table.iterrows():
        cells = [cell(row[c]) for c in columns]  # no case of the condition: NO_VALUE
        lines.append(f"| {condition} | {policy} | {row['cases']:.0f} | " + " | ".join(cells) + " |")
    names = list(figures)
    lines += [
        "",
        "Population figures (targets of the safety issue):",
        "",
        "| figure | target | " + " | ".join(names) + " |",
        "|" + "---|" * (len(names) + 2),
    ]
    labels = {
        "caught": "serious conditions caught",
        "screened_routine": "screened patients routine",
        "silent_alert_ppv": "alerts without a reported sign right (rules and model)",
        "model_alert_ppv": "the model's alerts alone right",
        "silent_alert_share": "patients alerted without a reported sign",
        "model_alert_share": "patients alerted by the model alone",
        "progressive_deficit_routine": "progressive deficits routine",
    }
    for key, label in labels.items():
        target = ""
        if key in TARGETS:
            direction, bound, _ = TARGETS[key]
            target = f"{direction} {bound:g}"
        cells = []
        for name in names:
            value = figures[name][key]
            mark = f" ({_met(key, value)})" if key in TARGETS and name == champion else ""
            # where there is no one to count: the rules alone raise no model alert
            missing = NO_ALERTS if key.endswith("_ppv") else NO_VALUE
            cells.append(cell(value, ".4f", missing) + ("" if value != value else mark))
        lines.append(f"| {label} | {target} | " + " | ".join(cells) + " |")
    if bayes is not None and RULES_ALONE in figures:
        gaps = policy_gaps(figures, champion, bayes)

        def verdict(ok: bool) -> str:
            return "met" if ok else "**not met**"

        lines += [
            "",
            f"- The champion catches {gaps['caught_gap']:.2f} points fewer serious conditions "
            f"than the Bayes policy (target: within {CAUGHT_GAP_POINTS:g}): "
            f"{verdict(gaps['caught_gap'] <= CAUGHT_GAP_POINTS)}.",
            f"- Progressive deficits left routine: {gaps['deficit_routine_rules']:.1%} by the "
            f"rules alone (target: at most {DEFICIT_ROUTINE_RULES:.0%}): "
            f"{verdict(gaps['deficit_routine_rules'] <= DEFICIT_ROUTINE_RULES)}; with the "
            f"champion {gaps['deficit_routine_gap']:+.2f} points against the Bayes policy "
            f"(target: at most +{DEFICIT_GAP_POINTS:g}): "
            f"{verdict(gaps['deficit_routine_gap'] <= DEFICIT_GAP_POINTS)}.",
        ]
    return "\n".join(lines) + "\n"


__all__ = [
    "NO_TIMEFRAME",
    "RULES_ALONE",
    "TARGETS",
    "Policy",
    "policy_gaps",
    "policy_tiers",
    "policy_triage",
    "population_figures",
    "safety_markdown",
    "safety_table",
]
