"""The next best question and the stop rule: what to ask, why, and when the answer is settled.

For a case with answers ``A`` and an unasked field ``f``, the generator's model gives the chance
of each answer ``v``, ``P(f = v | A)``, and what every output would be after it. One call of
:func:`vignettes.posterior` over every hypothetical answer of every unasked field gives both: the
posterior after each answer, and (from its ``log_evidence``) the answer's chance,
``P(f = v | A) = P(A, f = v) / P(A)``, exact because unknown answers are marginalised exactly.
A number (``duration_weeks``) is scored over bins whose edges are the triage's own thresholds
(:data:`NUMBER_BINS`).

From these, for every unasked field:

- ``information_gain``: expected reduction in the entropy of the cause, in bits,
  ``H(cause | A) - sum_v P(v | A) H(cause | A, f = v)``;
- ``change_probability``: the chance that its answer changes the triage (tier, timeframe, next
  step or advice: :data:`TRIAGE_COMPARED`), ``sum_v P(v | A) [triage(A, f = v) != triage(A)]``;
- ``cause_change``: the chance that its answer changes the most likely cause,
  ``sum_v P(v | A) [argmax_c P(c | A, f = v) != argmax_c P(c | A)]``;
- ``triage_information``: the entropy, in bits, of the triage the answer leads to.

The order: unasked red-flag questions first (the article: red flags must be asked before any
reassurance), by what they tell about a serious condition; then the rest by
``information_gain + triage_information``, so questions that settle the triage come before
questions that only refine the cause.

The stop rule (:class:`StopRule`, defaults stated there) stops only when

1. every red-flag question has been asked (a "don't know" counts as asked; it keeps the tier at
   least ``review``: :func:`dont_know_floor`);
2. no single unasked question would change the triage with probability above
   ``change_tolerance``;
3. the top cause is settled: its posterior is at least ``top_cause``, or the chance that the
   answer to one of the unasked questions changes it, summed over them (a union bound on "some
   answer changes it"), is at most ``cause_change``, or no unasked question adds more than
   ``min_bits`` about the cause (off by default).

Clause 3 measures what an answer does to the leading cause rather than bits: with bits alone
(``min_bits`` 0.02, ``cause_change`` 0) a third of the simulated patients, those whose cause stays
ambiguous (top cause below 90% at the stop), went on for 23 to 25 questions that no longer changed
their leading cause, which at the stop equalled the complete intake's for all of them (README,
"The interview").

:func:`next_questions` returns an empty list exactly when the rule says stop. The triage it
compares is the article's rules applied with the exact posterior's cause and red-flag decision
(:func:`bayes_triage`), which the served model approximates; :func:`assess` accepts another
``triage_of`` (the interview passes the served model's).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from dataclasses import field as dataclass_field
from functools import cache
from itertools import compress
from typing import Any

import numpy as np
import pandas as pd

from model import rules
from model.intake import answers_frame, is_missing, validate_case
from model.triage import (
    RED_FLAG_COST_RATIO,
    URGENT_PROBABILITY,
    cost_ratio_threshold,
    red_flag_decision,
)
from serve.api import asked_fields
from vignettes import load_knowledge
from vignettes.posterior import posterior_after_answers
from vignettes.schema import (
    CAUSES,
    EXAMINATION_FIELDS,
    FIELD_BY_NAME,
    FIELDS,
    RED_FLAG_FIELDS,
    pandas_dtype,
)

__all__ = [
    "ASKABLE",
    "ASKABLE_WITHOUT_CLINICIAN",
    "NUMBER_BINS",
    "OPTION_WORDS",
    "STOP_RULE",
    "TRIAGE_COMPARED",
    "Assessment",
    "Question",
    "StopRule",
    "assess",
    "bayes_triage",
    "dont_know_floor",
    "information_gain",
    "next_questions",
    "option_words",
    "questions_for",
    "rank_questions",
]

ASKABLE: tuple[str, ...] = tuple(f.name for f in FIELDS if f.name != "age")
"""Every field the interview can ask: all but age, which is required up front. Numbers
(``duration_weeks``) are asked once, as a number."""
ASKABLE_WITHOUT_CLINICIAN: tuple[str, ...] = tuple(
    f for f in ASKABLE if f not in EXAMINATION_FIELDS
)
"""What can be asked where no clinician examines the patient: no examination signs."""

NUMBER_BINS: dict[str, tuple[tuple[float, float, float], ...]] = {
    "duration_weeks": (
        (0, 2, 1),
        (2, 6, 4),
        (6, 12, 8),
        (12, 26, 18),
        (26, 52, 36),
        (52, np.inf, 78),
    ),
}
"""How a number is scored before it is asked: bins ``(low, high, representative)``, low
inclusive. The edges of ``duration_weeks`` include the triage's thresholds (6 weeks, the article's
"beyond 6-8 weeks"; 12 weeks, chronic: ``model.rules``), so the triage is the same across a bin;
the posterior after an answer in a bin is the posterior at its representative value (whole weeks),
and the bin's chance is ``sum_c P(c | answers) P(bin | c)`` under the generator's log-normal
durations (exact but for the imaging answer's small dependence on duration)."""

TRIAGE_COMPARED: tuple[str, ...] = (
    "urgency",
    "urgency_timeframe",
    "next_step",
    "advice_codes",
)
"""The triage outputs the stop rule compares (those present in the triage; the issue: "the tier,
the timeframe, the next step or the advice")."""

OPTION_WORDS: dict[str, str] = {
    "female": "female",
    "male": "male",
    "left": "left leg",
    "right": "right leg",
    "both": "both legs",
    "back_only": "the back only",
    "buttock_thigh": "buttock or thigh (not along a nerve)",
    "front_of_thigh": "front of the thigh",
    "knee_inner_leg": "knee and inner lower leg",
    "outer_leg_big_toe": "outer leg to the big toe",
    "back_of_leg_heel": "back of the leg to the heel",
    "outer_foot": "outer edge of the foot",
    "sharp_electric": "sharp, shooting or electric",
    "burning": "burning",
    "dull_aching": "dull and aching",
    "heaviness_fatigue": "heaviness or tiredness in the legs",
    "not_done": "no MRI done",
    "normal": "normal",
    "disc_herniation": "a disc herniation",
    "central_stenosis": "central spinal stenosis",
    "foraminal_stenosis": "foraminal stenosis",
    "spondylolisthesis": "spondylolisthesis (a slipped vertebra)",
    "degenerative_changes": "degenerative changes",
}
"""Plain words for every category value (the codes stay in JSON output)."""

CAUSE_WORDS: dict[str, str] = {c: c.replace("_", " ") for c in CAUSES}
_SEVERITY = ("routine", "review", "urgent", "emergency")


@dataclass(frozen=True)
class StopRule:
    """When the interview stops (see the module docstring).

    Attributes
    ----------
    change_tolerance : float, default=0.02
        Largest accepted chance that one unasked question's answer changes the triage.
    top_cause : float, default=0.95
        The top cause's posterior at which the cause counts as settled.
    cause_change : float or None, default=0.05
        Largest accepted chance, summed over the unasked questions, that an answer changes the
        top cause (``None``: off; 0 still stops when no answer to any one question changes it).
    min_bits : float, default=0.0
        Information about the cause below which no question is worth asking (0: off).

    Notes
    -----
    The defaults are the clinician's choice in the trade-off ``make bench`` measures (questions
    asked against final-triage agreement with the complete intake and accuracy; README,
    "The interview"). Measured on 1,000 truthful simulated patients: bits in place of
    ``cause_change`` (``min_bits`` 0.02) asked 18.0 questions, 0.1 bits 16.1 for 0.8 points of
    accuracy; a 5% ``change_tolerance`` saves 0.7 questions for 0.4 points of triage agreement.
    """

    change_tolerance: float = 0.02
    top_cause: float = 0.95
    cause_change: float | None = 0.05
    min_bits: float = 0.0

    def __post_init__(self) -> None:
        for name in ("change_tolerance", "top_cause", "cause_change", "min_bits"):
            value = getattr(self, name)
            if name == "cause_change" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise ValueError(f"StopRule.{name}: expected a number from 0 to 1, got {value!r}")

    def describe(self) -> str:
        moves = (
            f", or at most a {self.cause_change:.0%} chance in all that an answer changes it"
            if self.cause_change is not None
            else ""
        )
        bits = f", or no question worth {self.min_bits:g} bits" if self.min_bits else ""
        return (
            "all six red-flag questions asked; no unasked question changes the triage with "
            f"probability above {self.change_tolerance:.0%}; the top cause at "
            f"{self.top_cause:.0%} or more{moves}{bits}"
        )


STOP_RULE = StopRule()
"""The served stop rule."""


@dataclass(frozen=True)
class Question:
    """One question to ask next.

    Attributes
    ----------
    field : str
        The intake field.
    text : str
        How to ask it.
    allowed : str
        The allowed answers, in words.
    information_gain : float
        Expected reduction in entropy of the cause, in bits (of the red flag for a red-flag
        question: ``target``).
    target : {"red_flag", "cause", "triage"}
        What the answer mainly informs.
    rationale : str
        Why it is asked, in words: which causes or which tier the answer separates, and its
        information gain.
    change_probability : float
        The chance its answer changes the triage (:data:`TRIAGE_COMPARED`).
    options : list of [code, words]
        The allowed answers as codes and plain words (empty for a number).
    kind : {"bool", "category", "float"}
    """

    field: str
    text: str
    allowed: str
    information_gain: float
    target: str
    rationale: str = ""
    change_probability: float = 0.0
    options: list[list[Any]] = dataclass_field(default_factory=list)
    kind: str = "bool"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def option_words(field_name: str) -> list[list[Any]]:
    """``[[code, words], ...]`` for a boolean or categorical field; ``[]`` for a number."""
    spec = FIELD_BY_NAME[field_name]
    if spec.kind == "bool":
        return [[True, "yes"], [False, "no"]]
    if spec.kind == "category":
        return [[v, OPTION_WORDS.get(v, v.replace("_", " "))] for v in spec.values]
    return []


# --------------------------------------------------------------------------------------------
# The triage compared by the stop rule
# --------------------------------------------------------------------------------------------


DONT_KNOW_TIER: str = next(r.tier for r in rules.URGENCY_RULES if r.code == "red_flag_dont_know")
"""The least tier after a red-flag "don't know": the tier of the rule ``red_flag_dont_know`` in
``vignettes/article.toml`` (``review``)."""


def dont_know_floor(urgency: str, red_flag_dont_know: bool) -> str:
    """The tier shown when a red-flag question was asked and answered "don't know": at least
    :data:`DONT_KNOW_TIER` (a sign that may be present cannot be cleared by the model). The
    served model applies the same rule itself when told what was asked
    (``serve.predict(case, asked=...)``); this keeps a predictor that is not told honest."""
    if red_flag_dont_know and _SEVERITY.index(urgency) < _SEVERITY.index(DONT_KNOW_TIER):
        return DONT_KNOW_TIER
    return urgency


def _key(out: Mapping[str, Any], i: int | None) -> tuple[Any, ...]:
    """The compared triage of one row of the rules' output (the don't-know rules are in it)."""
    parts = []
    for name in TRIAGE_COMPARED:
        if name not in out:
            continue
        value = out[name] if i is None else out[name][i]
        parts.append(tuple(value) if isinstance(value, list | np.ndarray) else value)
    return tuple(parts)


def bayes_triage(
    frame: pd.DataFrame | None,
    post: pd.DataFrame,
    floor: np.ndarray,
    cases: list[dict[str, Any]] | None = None,
    threshold: float | None = None,
    origins: Sequence[tuple[int, str] | None] | None = None,
) -> list[tuple[Any, ...]]:
    """The triage of each row (:data:`TRIAGE_COMPARED`), comparable with ``==``: the article's
    rules with the exact posterior's top cause and red-flag decisions at the served thresholds
    (review ``1 / (1 + K)``, K = ``model.triage.RED_FLAG_COST_RATIO``, unless given; urgent
    ``model.triage.URGENT_PROBABILITY``), with the
    don't-know rules: ``floor`` holds, per row, the red-flag questions answered "don't know"
    (field names; a bool: some, which not said), which keep the tier at least review (and a
    bladder, bowel or saddle "don't know" same day). ``cases`` are the rows
    as validated case dicts, when the caller has them (one case's rules cost microseconds, a
    frame's pass milliseconds). ``origins`` says, per row of ``cases``, whether it is a case
    of its own (``None``) or an earlier row with one answer changed (``(row, field)``): its
    triage then reuses every condition that answer cannot change (exact,
    :class:`model.rules.CaseVariants`)."""
    thr = cost_ratio_threshold(RED_FLAG_COST_RATIO) if threshold is None else threshold
    red = red_flag_decision(post["red_flag"].to_numpy(), thr)
    # the upper threshold too, as served: at or above it a silent case is urgent
    urgent = red_flag_decision(post["red_flag"].to_numpy(), URGENT_PROBABILITY)
    cause = np.asarray(CAUSES, dtype=object)[post[list(CAUSES)].to_numpy().argmax(axis=1)]
    if cases is not None:
        variants: dict[int, rules.CaseVariants] = {}
        keys = []
        for i, (case, r, c, f, u) in enumerate(zip(cases, red, cause, floor, urgent, strict=True)):
            origin = origins[i] if origins is not None else None
            if origin is None:
                variant, changes = variants.setdefault(i, rules.CaseVariants(case)), {}
            else:
                variant, changes = variants[origin[0]], {origin[1]: case[origin[1]]}
            out = variant.decisions(changes, bool(r), str(c), bool(u), f)
            keys.append(_key(out, None))
        return keys
    if frame is None:
        raise ValueError("bayes_triage: expected the rows as a frame or as case dicts")
    out = rules.triage(frame, red, cause, urgent, red_flag_dont_know=floor)
    return [_key(out, i) for i in range(len(frame))]


TriageOf = Callable[
    [pd.DataFrame, pd.DataFrame, np.ndarray, list[dict[str, Any]] | None], list[tuple[Any, ...]]
]
"""``(frame, posterior, floor, cases) -> keys``: the triage of the hypothetical rows (a frame,
and their case dicts when there are few). :func:`bayes_triage` is the default."""
SMALL_CASES = 400
"""Up to this many hypothetical rows, the triage runs case by case on dicts (faster)."""


# --------------------------------------------------------------------------------------------
# Scoring every unasked question of every case in one posterior call
# --------------------------------------------------------------------------------------------


def _values(field_name: str) -> tuple[Any, ...]:
    spec = FIELD_BY_NAME[field_name]
    if field_name in NUMBER_BINS:
        return tuple(b[2] for b in NUMBER_BINS[field_name])
    return spec.values if spec.kind == "category" else (False, True)


def _entropy(p: np.ndarray) -> np.ndarray:
    """Entropy in bits along the last axis."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log2(p), 0.0)
    return terms.sum(axis=-1)


@cache
def _bin_mass(field_name: str) -> np.ndarray:
    """P(bin | cause), shape (bins, causes), for a number field."""
    kb = load_knowledge()
    weeks = np.arange(0, 1041)
    pmf = np.exp(kb.duration_logpmf(weeks))  # (weeks, causes)
    mass = []
    for low, high, _ in NUMBER_BINS[field_name]:
        inside = (weeks >= low) & (weeks < high)
        mass.append(pmf[inside].sum(axis=0))
    out = np.array(mass)
    out[-1] = 1 - out[:-1].sum(axis=0)  # the tail beyond 20 years goes in the last bin
    return out


@dataclass
class Assessment:
    """Every unasked question of every case, scored; and the stop rule's verdict.

    Attributes (arrays are cases x fields, NaN where a field is not a candidate)
    ----------
    fields : tuple of str
    cause_bits, red_flag_bits, triage_bits, change : numpy.ndarray
    cause_change : numpy.ndarray
        The chance that the answer changes the top cause.
    posterior : pandas.DataFrame
        The posterior now (causes and red_flag), one row per case.
    triage : list of tuple
        The triage now, per case.
    candidate : numpy.ndarray of bool
        Unasked fields (cases x fields).
    spread : numpy.ndarray
        ``(cases, fields, causes)``: the largest minus the smallest posterior of each cause over
        the answers (for the rationale).
    lowest, highest : numpy.ndarray
        ``(cases, fields, causes)``: each cause's smallest and largest posterior over the answers.
    stop : numpy.ndarray of bool
    reason : list of str
    """

    fields: tuple[str, ...]
    cause_bits: np.ndarray
    red_flag_bits: np.ndarray
    triage_bits: np.ndarray
    change: np.ndarray
    cause_change: np.ndarray
    posterior: pd.DataFrame
    triage: list[tuple[Any, ...]]
    candidate: np.ndarray
    lowest: np.ndarray
    highest: np.ndarray
    stop: np.ndarray
    reason: list[str]
    red_flag_dont_know: np.ndarray


def _hypothetical_frame(
    frame: pd.DataFrame, slots: list[tuple[int, str, int, np.ndarray]], total: int
) -> pd.DataFrame:
    """The cases themselves, then every (case, field, value) of ``slots``, as one frame."""
    n = len(frame)
    source = np.concatenate([np.arange(n), *[rows for *_, rows in slots]]) if slots else None
    if source is None:
        return frame.reset_index(drop=True)
    out = frame.iloc[source].reset_index(drop=True)
    start = n
    by_field: dict[str, list[tuple[int, int, Any]]] = {}
    for _, name, j, rows in slots:
        by_field.setdefault(name, []).append((start, start + rows.size, _values(name)[j]))
        start += rows.size
    for name, spans in by_field.items():
        spec = FIELD_BY_NAME[name]
        column = out[name].astype(object).to_numpy(copy=True)
        for lo, hi, value in spans:
            column[lo:hi] = value
        out[name] = pd.Series(column).astype(pandas_dtype(spec))
    return out


def _case_dicts(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of a validated frame as case dicts (``None`` = unknown)."""
    return [
        {k: (None if is_missing(v) else v) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


def _hypothetical_cases(
    base: list[dict[str, Any]], slots: list[tuple[int, str, int, np.ndarray]]
) -> list[dict[str, Any]]:
    """The rows of :func:`_hypothetical_frame` as case dicts (``None`` = unknown), from the
    cases' own dicts."""
    out = list(base)
    for _, name, j, rows in slots:
        value = _values(name)[j]
        out += [{**base[r], name: value} for r in rows]
    return out


def assess(
    frame: pd.DataFrame | list[dict[str, Any]],
    asked: np.ndarray | None = None,
    fields: Sequence[str] = ASKABLE,
    setting: str = "primary_care",
    rule: StopRule = STOP_RULE,
    triage_of: TriageOf | None = None,
    cases: list[dict[str, Any]] | None = None,
) -> Assessment:
    """Score every unasked field of every case and apply the stop rule.

    Parameters
    ----------
    frame : pandas.DataFrame or list of dict
        Validated intakes (``model.intake.validate_frame``) with every field as a column, or
        validated case dicts (``model.intake.validate_case``; ``None`` = unknown): one
        interview's step then builds no frame at all.
    asked : numpy.ndarray of bool, optional
        (cases x ``fields``): fields already asked (a "don't know" is asked and unknown). By
        default, the known fields.
    fields : sequence of str
        The fields the interview may ask.
    setting : {"primary_care", "spine_clinic"}
    rule : StopRule
    triage_of : callable, optional
        ``(frame, posterior, floor, cases) -> keys``; default :func:`bayes_triage`.
    cases : list of dict, optional
        The rows of ``frame`` as validated case dicts (``None`` = unknown), when the caller has
        them.
    """
    if not isinstance(frame, pd.DataFrame):
        cases, frame = list(frame), None
    fields = tuple(fields)
    n, m = len(frame) if frame is not None else len(cases or ()), len(fields)
    if not m:
        raise ValueError("fields: expected at least one field to ask")
    if cases is not None:
        known = np.array([[c.get(f) is not None for f in fields] for c in cases], dtype=bool)
    else:
        assert frame is not None
        known = np.column_stack([frame[f].notna().to_numpy() for f in fields])
    asked_mask = known.copy() if asked is None else (np.asarray(asked, dtype=bool) | known)
    candidate = ~asked_mask
    red_cols = [fields.index(f) for f in RED_FLAG_FIELDS if f in fields]
    dk_matrix = asked_mask[:, red_cols] & ~known[:, red_cols]
    red_dk = dk_matrix.any(axis=1)
    red_names = [fields[c] for c in red_cols]
    # per case, the red-flag questions answered "don't know" (the engine's dont_know_<field>)
    dk_fields = np.empty(n, dtype=object)
    dk_fields[:] = [tuple(compress(red_names, row)) for row in dk_matrix]
    slots = []
    total = n
    for k, name in enumerate(fields):
        rows = np.flatnonzero(candidate[:, k])
        if rows.size == 0:
            continue
        for j in range(len(_values(name))):
            slots.append((k, name, j, rows))
            total += rows.size
    # Every hypothetical answer's posterior from the cases' encoded answers (raises, naming
    # them, if a case's own answers contradict each other).
    answers = [(name, _values(name)[j], rows) for _, name, j, rows in slots]
    post = posterior_after_answers(frame if cases is None else cases, answers, setting)
    hyp_cases: list[dict[str, Any]] | None = None
    hyp: pd.DataFrame | None = None
    if total <= SMALL_CASES:  # one interview: the rules case by case on dicts (faster)
        base = cases if cases is not None else _case_dicts(frame)  # type: ignore[arg-type]
        hyp_cases = _hypothetical_cases(base, slots)
        if triage_of is not None:  # a model reads a frame
            hyp = answers_frame(hyp_cases)
    else:
        frame = answers_frame(cases or []) if frame is None else frame
        hyp = _hypothetical_frame(frame, slots, total)
    floor = (
        np.concatenate([dk_fields, *[dk_fields[rows] for *_, rows in slots]])
        if slots
        else dk_fields
    )
    if triage_of is not None:
        assert hyp is not None
        keys = triage_of(hyp, post.drop(columns="log_evidence"), floor, hyp_cases)
    else:
        origins: list[tuple[int, str] | None] = [None] * n
        origins += [(int(r), name) for _, name, _, rows in slots for r in rows]
        keys = bayes_triage(hyp, post.drop(columns="log_evidence"), floor, hyp_cases, None, origins)
    cause_p = post[list(CAUSES)].to_numpy()
    red_p = post["red_flag"].to_numpy()
    log_z = post["log_evidence"].to_numpy()
    now_keys = keys[:n]
    h_cause = _entropy(cause_p[:n])
    h_red = _entropy(np.stack([red_p[:n], 1 - red_p[:n]], axis=-1))
    cause_bits = np.full((n, m), np.nan)
    red_bits = np.full((n, m), np.nan)
    triage_bits = np.full((n, m), np.nan)
    change = np.full((n, m), np.nan)
    cause_change = np.full((n, m), np.nan)
    lowest = np.full((n, m, len(CAUSES)), np.nan)
    highest = np.full((n, m, len(CAUSES)), np.nan)
    # Answer chances per field: from the evidence (exact), or bin masses for a number.
    start = n
    per_field: dict[int, list[tuple[np.ndarray, slice]]] = {}
    for k, _name, _j, rows in slots:
        per_field.setdefault(k, []).append((rows, slice(start, start + rows.size)))
        start += rows.size
    for k, parts in per_field.items():
        rows = parts[0][0]
        name = fields[k]
        if name in NUMBER_BINS:
            chance = cause_p[rows] @ _bin_mass(name).T  # (rows, bins)
        else:
            logs = np.column_stack([log_z[s] for _, s in parts])
            chance = np.exp(logs - logs.max(axis=1, keepdims=True))
        chance = chance / chance.sum(axis=1, keepdims=True)
        after_cause = np.stack([cause_p[s] for _, s in parts], axis=1)  # (rows, values, causes)
        after_red = np.stack([red_p[s] for _, s in parts], axis=1)
        cause_bits[rows, k] = h_cause[rows] - (chance * _entropy(after_cause)).sum(axis=1)
        top_now = cause_p[rows].argmax(axis=1)[:, None]
        cause_change[rows, k] = (chance * (after_cause.argmax(axis=2) != top_now)).sum(axis=1)
        h_red_after = _entropy(np.stack([after_red, 1 - after_red], axis=-1))
        red_bits[rows, k] = h_red[rows] - (chance * h_red_after).sum(axis=1)
        differs = np.zeros_like(chance)
        outcome_mass: list[dict[tuple[Any, ...], float]] = [{} for _ in rows]
        for j, (_, s) in enumerate(parts):
            for i, (row, key) in enumerate(zip(rows, keys[s], strict=True)):
                differs[i, j] = key != now_keys[row]
                outcome_mass[i][key] = outcome_mass[i].get(key, 0.0) + chance[i, j]
        change[rows, k] = (chance * differs).sum(axis=1)
        triage_bits[rows, k] = [_entropy(np.array(list(d.values()))) for d in outcome_mass]
        possible = chance > 0
        lowest[rows, k] = np.where(possible[..., None], after_cause, np.inf).min(axis=1)
        highest[rows, k] = np.where(possible[..., None], after_cause, -np.inf).max(axis=1)
    cause_bits = np.clip(cause_bits, 0, None)
    red_bits = np.clip(red_bits, 0, None)
    stop, reason = _verdict(
        candidate, red_cols, cause_p[:n], cause_bits, change, cause_change, rule
    )
    return Assessment(
        fields,
        cause_bits,
        red_bits,
        triage_bits,
        change,
        cause_change,
        post.iloc[:n]
        .drop(columns="log_evidence")
        .set_axis(frame.index if frame is not None else pd.RangeIndex(n)),
        now_keys,
        candidate,
        lowest,
        highest,
        stop,
        reason,
        red_dk,
    )


def _verdict(
    candidate: np.ndarray,
    red_cols: list[int],
    cause_p: np.ndarray,
    cause_bits: np.ndarray,
    change: np.ndarray,
    cause_change: np.ndarray,
    rule: StopRule,
) -> tuple[np.ndarray, list[str]]:
    n = len(candidate)
    red_pending = np.asarray(candidate[:, red_cols].any(axis=1), dtype=bool)
    some_left = candidate.any(axis=1)
    with np.errstate(invalid="ignore"):
        worst_change = np.where(some_left, np.nanmax(_nan_ok(change), axis=1), 0.0)
        best_bits = np.where(some_left, np.nanmax(_nan_ok(cause_bits), axis=1), 0.0)
    cause_moves = np.nansum(cause_change, axis=1)
    top = cause_p.max(axis=1)
    settled_triage = worst_change <= rule.change_tolerance
    high = top >= rule.top_cause
    steady = (
        cause_moves <= rule.cause_change
        if rule.cause_change is not None
        else np.zeros(n, dtype=bool)
    )
    settled_cause = high | steady | (best_bits <= rule.min_bits)
    nothing_left = np.asarray(~some_left, dtype=bool)
    stop = nothing_left | (~red_pending & settled_triage & settled_cause)
    reasons = []
    for i in range(n):
        if nothing_left[i]:
            reasons.append("every question has been asked")
            continue
        if not stop[i]:
            reasons.append("")
            continue
        if high[i]:
            why = f"the top cause is at {top[i]:.1%} (stop at {rule.top_cause:.0%})"
        elif steady[i]:
            why = (
                f"the answers left would change the top cause with a {cause_moves[i]:.1%} chance "
                f"in all (stop at {rule.cause_change:.0%})"
            )
        else:
            why = (
                f"no question adds more than {best_bits[i]:.2f} bits about the cause (stop "
                f"below {rule.min_bits:g})"
            )
        reasons.append(
            "all red-flag questions asked; no question left would change the triage with "
            f"probability above {rule.change_tolerance:.0%} (at most {worst_change[i]:.1%}); " + why
        )
    return stop, reasons


def _nan_ok(a: np.ndarray) -> np.ndarray:
    """``a`` with all-NaN rows set to 0 (so ``nanmax`` does not warn)."""
    out = a.copy()
    out[np.isnan(out).all(axis=1)] = 0.0
    return out


# --------------------------------------------------------------------------------------------
# Ranking and rationale
# --------------------------------------------------------------------------------------------


def _rationale(a: Assessment, i: int, k: int, target: str) -> str:
    name = a.fields[k]
    change = float(a.change[i, k])
    if target == "red_flag":
        tier = rules.RED_FLAG_TIER.get(name, "urgent") if hasattr(rules, "RED_FLAG_TIER") else ""
        text = (
            f"A red-flag screening question: 'yes' makes the urgency {tier}. All six are asked "
            "before any reassurance"
        )
        return f"{text} ({a.red_flag_bits[i, k]:.2f} bits about a serious condition)."
    spread = a.highest[i, k] - a.lowest[i, k]
    order = np.argsort(-spread)
    first, second = order[0], order[1]
    now = a.posterior.iloc[i]
    parts = []
    if spread[first] >= 0.02:
        c1, c2 = CAUSES[first], CAUSES[second]
        parts.append(
            f"separates {CAUSE_WORDS[c1]} (now {now[c1]:.0%}, {a.lowest[i, k, first]:.0%} to "
            f"{a.highest[i, k, first]:.0%} by the answer) from {CAUSES[second].replace('_', ' ')}"
            f" (now {now[c2]:.0%})"
        )
    parts.append(f"expected information gain {a.cause_bits[i, k]:.2f} bits about the cause")
    moves = float(a.cause_change[i, k])
    if moves >= 0.005:
        parts.append(f"a {moves:.0%} chance its answer changes the most likely cause")
    if change > 0:
        parts.append(
            f"a {change:.0%} chance its answer changes the triage (tier, next step or advice)"
        )
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def rank_questions(
    frame: pd.DataFrame | list[dict[str, Any]],
    k: int | None = 3,
    setting: str = "primary_care",
    fields: Sequence[str] = ASKABLE,
    asked: np.ndarray | None = None,
    rule: StopRule = STOP_RULE,
    triage_of: TriageOf | None = None,
    stop: bool = True,
    cases: list[dict[str, Any]] | None = None,
) -> list[list[Question]]:
    """The next ``k`` questions for each case of a validated frame or list of validated case
    dicts (``k=None``: all of them),
    among ``fields``; red-flag questions first. A case where the stop rule says stop gets an
    empty list (unless ``stop`` is false: then the ranking goes on to the last question).
    ``cases``: the frame's rows as validated dicts, if the caller has them (see
    :func:`assess`)."""
    a = assess(frame, asked, fields, setting, rule, triage_of, cases)
    return [questions_for(a, i, k, stop) for i in range(len(a.stop))]


def questions_for(a: Assessment, i: int, k: int | None, stop: bool = True) -> list[Question]:
    """The next ``k`` questions of case ``i`` of an :class:`Assessment` (``[]`` at a stop)."""
    if stop and a.stop[i]:
        return []
    order: list[tuple[int, str]] = []
    red = [a.fields.index(f) for f in RED_FLAG_FIELDS if f in a.fields]
    red = [j for j in red if a.candidate[i, j]]
    red.sort(key=lambda j: -a.red_flag_bits[i, j])
    order += [(j, "red_flag") for j in red]
    rest = [j for j in range(len(a.fields)) if a.candidate[i, j] and j not in red]
    score = {j: a.cause_bits[i, j] + a.triage_bits[i, j] for j in rest}
    rest.sort(key=lambda j: -score[j])
    for j in rest:
        target = "triage" if a.triage_bits[i, j] > a.cause_bits[i, j] else "cause"
        order.append((j, target))
    out = []
    for j, target in order[:k]:
        name = a.fields[j]
        spec = FIELD_BY_NAME[name]
        gain = a.red_flag_bits[i, j] if target == "red_flag" else a.cause_bits[i, j]
        out.append(
            Question(
                name,
                spec.question,
                spec.allowed(),
                float(gain),
                target,
                _rationale(a, i, j, target),
                float(a.change[i, j]),
                option_words(name),
                spec.kind,
            )
        )
    return out


def information_gain(
    frame: pd.DataFrame, fields: Sequence[str] = ASKABLE, setting: str = "primary_care"
) -> dict[str, pd.DataFrame]:
    """Expected information gain of every field for every case, about the cause and the red flag.

    Returns ``{"cause": DataFrame, "red_flag": DataFrame}``, each (cases x fields), in bits;
    NaN for answered fields.
    """
    a = assess(frame, None, fields, setting)
    cols = list(a.fields)
    return {
        "cause": pd.DataFrame(a.cause_bits, index=frame.index, columns=cols),
        "red_flag": pd.DataFrame(a.red_flag_bits, index=frame.index, columns=cols),
    }


def _asked_mask(fields: Sequence[str], asked: Sequence[str] | None) -> np.ndarray:
    chosen = set(asked_fields(asked))  # refuses an unknown name, with a "did you mean"
    return np.array([[f in chosen for f in fields]])


def next_questions(
    case: Mapping[str, Any] | Any,
    k: int = 3,
    setting: str = "primary_care",
    *,
    asked: Sequence[str] | None = None,
    clinician: bool = False,
    rule: StopRule = STOP_RULE,
) -> list[Question]:
    """The next questions for one intake, or ``[]`` exactly when the stop rule says stop.

    Parameters
    ----------
    case : mapping
        An intake (validated here; only ``age`` is required).
    k : int, default=3
        How many questions to return.
    setting : {"primary_care", "spine_clinic"}, default="primary_care"
    asked : sequence of str, optional
        Fields already asked, whatever the answer: a "don't know" (absent or ``None`` in
        ``case``) is not asked again. Answered fields count as asked anyway.
    clinician : bool, default=False
        Also ask the examination signs (a clinician is present).
    rule : StopRule
        The stop rule (:data:`STOP_RULE` by default).

    Returns
    -------
    list of Question
        Unasked red-flag questions first, then the rest by information about the cause and the
        triage; each with a ``rationale``. Empty when the stop rule says stop.

    Examples
    --------
    >>> import serve
    >>> [q.field for q in serve.next_questions({"age": 70}, k=2)][:1]  # doctest: +SKIP
    ['bladder_bowel_dysfunction']
    """
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    fields = ASKABLE if clinician else ASKABLE_WITHOUT_CLINICIAN
    mask = _asked_mask(fields, asked)
    return rank_questions([validate_case(case)], k, setting, fields, mask, rule)[0]
