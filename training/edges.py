"""The edges a clinical-safety review tests first, measured on a population.

The safety table (:mod:`training.safety`) reads each serious condition's tiers. This module
measures what the reviewer tries next, from the served triage itself (``model.rules.triage``
under a policy: the rules alone, the champion or the Bayes posterior):

- :func:`edge_figures`: under-triage and advice at the edges (a worsening deficit left routine,
  a silent case above the upper threshold left below urgent, urgent cases without
  safety-netting, "do not repeat the MRI" with a progressive deficit, mechanical pain imaged for
  persisting, claudication read as mechanical, routine patients past 6 weeks with no follow-up,
  the chronic-pain text with a progressive deficit), each against its target
  (:data:`EDGE_TARGETS`);
- :func:`trigger_yields`: for each urgency rule, how many patients it covers and moves (their
  tier or timeframe would be less urgent without it) and its yield (the share with a serious
  condition), overall and among patients who reported no red-flag sign.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from model import rules
from model.answers import answer_is
from training.report import cell
from vignettes.article import TIMEFRAMES, URGENCY_TIERS

__all__ = ["EDGE_TARGETS", "edge_figures", "edges_markdown", "trigger_yields"]

EDGE_TARGETS: dict[str, tuple[str, float, str]] = {
    "worsening_deficit_routine": (
        "<=",
        0.0,
        "routine patients with weakness or a reflex change plus progressive symptoms",
    ),
    "silent_above_upper_below_urgent": (
        "<=",
        0.0,
        "cases with P(serious) at or above the upper threshold left at review or routine",
    ),
    "urgent_with_safety_net": (">=", 1.0, "urgent patients given safety-netting"),
    "do_not_repeat_mri_with_progressive_deficit": (
        "<=",
        0.0,
        "'do not repeat the MRI' given with a progressive deficit",
    ),
    "mechanical_6_weeks_told_mri": (
        "<=",
        0.01,
        "mechanical-pattern patients at 6 weeks or more told to have an MRI",
    ),
    "claudication_read_as_mechanical": (
        "<=",
        0.02,
        "neurogenic claudication patterns labelled mechanical",
    ),
    "routine_6_weeks_no_follow_up": (
        "<=",
        0.0,
        "routine patients past 6 weeks with no follow-up advice",
    ),
    "chronic_text_with_progressive_deficit": (
        "<=",
        0.0,
        "the chronic-pain text given with a progressive deficit",
    ),
}
"""Edge figure -> (direction, bound, what it is). Counts are shares of the patients named."""

_FOLLOW_UP = frozenset({"review_now", "mri", "clinician_review", "review_if_not_improving"})


def _has(codes: list[list[str]], code: str) -> np.ndarray:
    return np.fromiter((code in row for row in codes), dtype=bool, count=len(codes))


def _share(mask: np.ndarray, of: np.ndarray, empty: float = 0.0) -> float:
    """The share of ``of`` where ``mask`` holds (``empty`` when there is no one to count)."""
    return float(mask[of].mean()) if of.any() else empty


def edge_figures(
    frame: pd.DataFrame, out: dict, probability: np.ndarray | None, upper: float | None
) -> dict[str, float]:
    """The edge figures of one served triage.

    Parameters
    ----------
    frame : pandas.DataFrame
        Validated cases.
    out : dict
        ``model.rules.triage`` of ``frame`` under the policy.
    probability : ndarray or None
        The policy's P(serious) per case (``None`` for the rules alone).
    upper : float or None
        The upper threshold the policy served.

    Returns
    -------
    dict
        :data:`EDGE_TARGETS`' figures: each a share (0-1) of the patients it names.
    """
    tier = np.asarray(out["urgency"], dtype=object)
    codes = out["advice_codes"]
    routine, urgent = tier == "routine", tier == "urgent"
    deficit = answer_is(frame, "weakness", True) | answer_is(frame, "reflex_changes", True)
    worsening = deficit & answer_is(frame, "progressive_symptoms", True)
    progressive = worsening | answer_is(frame, "progressive_weakness", True)
    weeks = (
        pd.to_numeric(frame["duration_weeks"])
        .astype("Float64")
        .to_numpy(dtype=float, na_value=np.nan)
    )
    beyond = weeks >= 6
    mechanism = np.asarray(out["pain_mechanism"], dtype=object)
    claudication = answer_is(frame, "worse_walking", True) & (
        answer_is(frame, "better_sitting", True) | answer_is(frame, "better_bending_forward", True)
    )
    follow_up = np.fromiter((bool(_FOLLOW_UP & set(r)) for r in codes), bool, len(codes))
    above = np.zeros(len(frame), dtype=bool)
    if probability is not None and upper is not None:
        above = np.asarray(probability) >= upper - 1e-12
    return {
        "worsening_deficit_routine": _share(routine, worsening),
        "silent_above_upper_below_urgent": _share(tier_rank(tier) > 1, above),
        "urgent_with_safety_net": _share(_has(codes, "safety_net"), urgent)
        if urgent.any()
        else 1.0,
        "do_not_repeat_mri_with_progressive_deficit": _share(
            _has(codes, "mri_in_context"), progressive
        ),
        "mechanical_6_weeks_told_mri": _share(
            _has(codes, "mri"), (mechanism == "mechanical") & beyond
        ),
        "claudication_read_as_mechanical": _share(mechanism == "mechanical", claudication),
        "routine_6_weeks_no_follow_up": _share(~follow_up, routine & beyond),
        "chronic_text_with_progressive_deficit": _share(_has(codes, "chronic_pain"), progressive),
    }


def tier_rank(tier: np.ndarray) -> np.ndarray:
    """Index into ``URGENCY_TIERS`` per case (0 = emergency)."""
    rank = {name: k for k, name in enumerate(URGENCY_TIERS)}
    return np.fromiter((rank[t] for t in tier), dtype=np.int64, count=len(tier))


def trigger_yields(fired: np.ndarray, serious: np.ndarray, reported: np.ndarray) -> pd.DataFrame:
    """Per urgency rule: patients covered and moved, and the yield, overall and without a sign.

    Parameters
    ----------
    fired : ndarray of bool
        ``model.rules.fired_rules`` of the cases, ``(n, rules)``.
    serious : ndarray of int
        The latent ``serious_condition`` codes (0 = none).
    reported : ndarray of bool
        Cases that reported a red-flag sign.

    Returns
    -------
    pandas.DataFrame
        Indexed by rule code: ``tier``, ``timeframe``, ``covers`` (share of patients it fires
        on), ``moves`` (share whose tier or timeframe it alone sets), ``yield`` (share of those
        it fires on with a serious condition), ``covers_no_sign`` and ``yield_no_sign`` (the
        same among patients who reported no red-flag sign).
    """
    tiers = np.array([URGENCY_TIERS.index(r.tier) for r in rules.URGENCY_RULES])
    times = np.array([TIMEFRAMES.index(r.timeframe) for r in rules.URGENCY_RULES])
    has = serious > 0
    rows = []
    for k, rule in enumerate(rules.URGENCY_RULES):
        others = np.delete(fired, k, axis=1)
        best_tier = np.where(others, np.delete(tiers, k), len(URGENCY_TIERS) - 1).min(axis=1)
        best_time = np.where(others, np.delete(times, k), len(TIMEFRAMES)).min(axis=1)
        on = fired[:, k]
        moves = on & ((tiers[k] < best_tier) | (times[k] < best_time))
        silent = on & ~reported
        rows.append(
            {
                "rule": rule.code,
                "tier": rule.tier,
                "timeframe": rule.timeframe,
                "covers": float(on.mean()),
                "moves": float(moves.mean()),
                "yield": float(has[on].mean()) if on.any() else float("nan"),
                "covers_no_sign": float(silent.mean()),
                "yield_no_sign": float(has[silent].mean()) if silent.any() else float("nan"),
            }
        )
    return pd.DataFrame(rows).set_index("rule")


def _met(name: str, value: float) -> str:
    direction, bound, _ = EDGE_TARGETS[name]
    ok = value >= bound - 1e-12 if direction == ">=" else value <= bound + 1e-12
    return "met" if ok else "**not met**"


def _pct(value: float) -> str:
    """A yield in words: a percentage, or "fires on none" where the rule fired on no one."""
    return cell(value, ".1%", missing="fires on none")


def edges_markdown(figures: dict[str, dict[str, float]], yields: pd.DataFrame) -> str:
    """The edge figures per policy and the trigger yields, as markdown (report and README)."""
    names = list(figures)
    lines = [
        "| edge | target | " + " | ".join(names) + " |",
        "|" + "---|" * (len(names) + 2),
    ]
    for key, (direction, bound, what) in EDGE_TARGETS.items():
        cells = [f"{figures[n][key]:.2%} ({_met(key, figures[n][key])})" for n in names]
        lines.append(f"| {what} | {direction} {bound:.0%} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Each urgency rule: the patients it fires on, those whose tier or timeframe it alone "
        "sets, and its yield (share with a serious condition), overall and without a reported "
        "red-flag sign",
        "",
        "| rule | tier | timeframe | covers | moves | yield | covers, no sign | yield, no sign |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for code, row in yields.iterrows():
        lines.append(
            f"| `{code}` | {row['tier']} | {row['timeframe']} | {row['covers']:.2%} | "
            f"{row['moves']:.2%} | {_pct(row['yield'])} | {row['covers_no_sign']:.2%} | "
            f"{_pct(row['yield_no_sign'])} |"
        )
    return "\n".join(lines)
