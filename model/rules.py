"""The article's clinical reasoning as plain rules over validated intakes: a frame, or one case.

Every rule here quotes the article "Lower Back Pain Radiates to the Leg: 7 Key Causes, Diagnosis &
Treatments"; the red flags, urgency tiers and advice are data in ``vignettes/triage.toml`` (each
entry with its source), which this module applies. Where the article gives no operational
threshold, the proxy chosen is stated in the docstring. The functions take either a frame with the
contract's columns and dtypes (as returned by :func:`model.intake.validate_frame` or
:func:`vignettes.generate`) and answer with vectorised pandas objects, or one case as returned by
:func:`model.intake.validate_case` (a dict, ``None`` = unknown) and answer with plain Python
values. Both go through the same rule code: the few primitives below (``_is``, ``_in``,
``_number``, ``_unknown``, ``_count``, ``_choose``) read a frame column as a NumPy array or a
case's answer as a scalar, and the rules combine them with ``&`` and ``|``, which mean the same for
both. One case therefore costs microseconds, not a one-row DataFrame's milliseconds, and
``tests/test_rules.py`` checks that every rule gives each row of a frame what it gives that row as
a case. An unknown answer (``<NA>``, ``None``) or an absent column never makes a rule fire. The
rules do not validate: call :mod:`model.intake` first. :class:`ArticleRulesClassifier` validates
its input.

Public API
----------
DERMATOME_ROOT, dermatome_root
    The article's pain-location -> nerve-root table.
SCIATIC_TERRITORY, nerve_territory
    Which nerve the pain pattern points to: a spinal root, or the sciatic nerve outside the spine.
RED_FLAG_TEXT, red_flag_rules, any_red_flag, fired_red_flags, red_flags_unasked
    "Red Flags That Require Immediate Medical Evaluation".
MECHANISMS, mechanism_scores, pain_mechanism
    "Mechanical Pain vs Neurological Pain".
MRI_REASON_TEXT, mri_indication
    "Imaging: When MRI Helps (And When It Doesn't)".
URGENCY_TIERS, URGENCY_ACTION, RED_FLAG_TIER, urgency
    Emergency and urgent from reported signs (by rule), review from the model, routine.
NEXT_STEPS, ADVICE_TEXT, ADVICE_CODES, CONDITIONS, next_step
    The next step, and the "Evidence-Based Treatment Options" that fit the cause and the course.
triage
    All of the above for the served prediction, in one pass.
CAUSE_RULES, cause_points, ArticleRulesClassifier
    The seven causes scored by the features the article names for each.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import compress
from typing import Any, Literal, TypeAlias

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from model.intake import IntakeError, validate_frame
from vignettes.knowledge import KnowledgeError
from vignettes.schema import CAUSES, FIELD_NAMES, MRI_FINDINGS, RED_FLAG_FIELDS
from vignettes.triage_facts import URGENCY_TIERS, load_triage_facts

FACTS = load_triage_facts()
"""The article's red flags, urgency tiers and advice as data (``vignettes/triage.toml``)."""

__all__ = [
    "ADVICE_CODES",
    "ADVICE_TEXT",
    "CAUSE_RULES",
    "CONDITIONS",
    "DERMATOME_ROOT",
    "MECHANISMS",
    "MRI_REASON_TEXT",
    "NEXT_STEPS",
    "RED_FLAG_TEXT",
    "RED_FLAG_TIER",
    "SCIATIC_TERRITORY",
    "TRIAGE_KEYS",
    "URGENCY_ACTION",
    "URGENCY_TIERS",
    "ArticleRulesClassifier",
    "Rule",
    "any_red_flag",
    "cause_points",
    "dermatome_root",
    "fired_red_flags",
    "mechanism_scores",
    "mri_indication",
    "nerve_territory",
    "next_step",
    "pain_mechanism",
    "red_flag_rules",
    "red_flags_unasked",
    "triage",
    "urgency",
]

Answers: TypeAlias = pd.DataFrame | Mapping[str, Any]
"""Validated intakes: a frame (one case per row) or one case (``validate_case``'s dict)."""


# --------------------------------------------------------------------------------------------
# Reading answers: True only where the answer is known and matches
# --------------------------------------------------------------------------------------------


def _one(df: Answers) -> bool:
    """True for one case (a mapping of plain values), false for a frame."""
    return not isinstance(df, pd.DataFrame)


def _is(df: Answers, name: str, value: object) -> Any:
    """Whether the answer to ``name`` is known and equal to ``value`` (unknown -> False).

    Returns a ``bool`` for one case and a ``bool`` array (one per row) for a frame; so do the
    other primitives.
    """
    if _one(df):
        answer = df.get(name)
        return answer is not None and answer == value
    if name not in df:
        return np.zeros(len(df), dtype=bool)
    # Fast paths on the underlying arrays (a generic ``eq`` costs ~10x more).
    array = df[name].array
    if isinstance(array, pd.Categorical):
        categories = array.categories
        if value not in categories:
            return np.zeros(len(df), dtype=bool)
        return np.asarray(array.codes) == categories.get_loc(value)
    if isinstance(array, pd.arrays.BooleanArray) and isinstance(value, bool):
        return array.to_numpy(dtype=bool, na_value=not value) == value  # unknown -> False
    return df[name].eq(value).fillna(False).to_numpy(dtype=bool)


def _in(df: Answers, name: str, values: tuple[object, ...]) -> Any:
    """Whether the answer to ``name`` is known and one of ``values``."""
    if _one(df):
        answer = df.get(name)
        return answer is not None and answer in values
    if name not in df:
        return np.zeros(len(df), dtype=bool)
    return df[name].isin(list(values)).fillna(False).to_numpy(dtype=bool)


def _number(df: Answers, name: str) -> Any:
    """A numeric answer as float, NaN where unknown (comparisons with NaN are False)."""
    if _one(df):
        answer = df.get(name)
        return math.nan if answer is None else float(answer)
    if name not in df:
        return np.full(len(df), np.nan)
    return pd.to_numeric(df[name]).astype("Float64").to_numpy(dtype=float, na_value=np.nan)


def _unknown(df: Answers, name: str) -> Any:
    if _one(df):
        return df.get(name) is None
    if name not in df:
        return np.ones(len(df), dtype=bool)
    return df[name].isna().to_numpy(dtype=bool)


def _any(conditions: list[Any]) -> Any:
    """Elementwise OR of conditions (bools or bool arrays alike)."""
    return functools.reduce(operator.or_, conditions)


def _all(conditions: list[Any]) -> Any:
    """Elementwise AND of conditions (bools or bool arrays alike)."""
    return functools.reduce(operator.and_, conditions)


def _count(*conditions: Any) -> Any:
    """How many of the conditions hold: an ``int``, or an ``int64`` array per row."""
    return sum(c if isinstance(c, bool) else np.asarray(c, dtype=np.int64) for c in conditions)


def _choose(conditions: list[Any], choices: list[Any], default: Any) -> Any:
    """The choice of the first condition that holds (``numpy.select`` for scalars too)."""
    if isinstance(conditions[0], bool):
        return next((c for cond, c in zip(conditions, choices, strict=True) if cond), default)
    return np.select(conditions, choices, default)


def _decision(decision: Any, n: int | None, name: str = "red_flag") -> Any:
    """An optional decision (bool; None = False): per row by position, or one for a case."""
    if n is None:
        return bool(decision) if decision is not None else False
    if decision is None:
        return np.zeros(n, dtype=bool)
    values = pd.Series(np.asarray(decision)).astype("boolean").fillna(False).to_numpy(dtype=bool)
    if values.shape != (n,):
        raise ValueError(f"{name}: expected {n} values (one per row), got {values.shape[0]}")
    return values


def _rows(df: Answers) -> int | None:
    """Rows of a frame; ``None`` for one case."""
    return None if _one(df) else len(df)


# --------------------------------------------------------------------------------------------
# "How to Tell Which Nerve Is Involved"
# --------------------------------------------------------------------------------------------

DERMATOME_ROOT: dict[str, str] = {
    "front_of_thigh": "L2-L3",  # "Front of thigh | L2-L3"
    "knee_inner_leg": "L3-L4",  # "Knee and inner leg | L3-L4"
    "outer_leg_big_toe": "L5",  # "Outer leg to big toe | L5"
    "back_of_leg_heel": "S1",  # "Back of leg to heel | S1"
    "outer_foot": "S1-S2",  # "Outer foot | S1-S2"
}
"""The article's table "How to Tell Which Nerve Is Involved": pain location -> likely nerve root.
``back_only`` and ``buttock_thigh`` are not in the table: pain that stays in the back, or reaches
the buttock or thigh without following a root (somatic referred pain), points to no root."""

ROOT_DTYPE = pd.CategoricalDtype(list(DERMATOME_ROOT.values()))
_ROOT_REGIONS = tuple(DERMATOME_ROOT)


def dermatome_root(pain_region: pd.Series | str | None) -> pd.Series | str | None:
    """Likely nerve root from where the pain reaches.

    Article, "How to Tell Which Nerve Is Involved": "The location of leg pain provides strong
    clues about which nerve root is affected" (table in :data:`DERMATOME_ROOT`).

    Parameters
    ----------
    pain_region : pandas.Series, str or None
        The ``pain_region`` answers (categorical or strings; ``<NA>`` = unknown), or one answer.

    Returns
    -------
    pandas.Series, str or None
        For a series: categorical with categories ``L2-L3, L3-L4, L5, S1, S1-S2``, named
        ``nerve_root``, indexed like the input; ``<NA>`` for ``back_only`` and unknown. For one
        answer: the root, or ``None``.
    """
    if not isinstance(pain_region, pd.Series):
        return DERMATOME_ROOT.get(pain_region) if isinstance(pain_region, str) else None
    return _root_series(pain_region)


SCIATIC_TERRITORY = "sciatic nerve, outside the spine"
"""What a piriformis-like pattern points to: the sciatic nerve's territory, not a spinal root.
Article, "Piriformis Syndrome (Non-Spinal Cause)": the muscle "can irritate the sciatic nerve
outside the spine"; "This represents true sciatic nerve irritation without spinal compression"."""
SCIATIC_REGIONS: tuple[str, ...] = (
    "buttock_thigh",
    "outer_leg_big_toe",
    "back_of_leg_heel",
    "outer_foot",
)
"""Where the sciatic nerve (L4-S3) carries pain: the buttock and back of the thigh, the L5 and S1
territories. The front of the thigh and the inner leg (L2-L4) are the femoral nerve's."""


def _piriformis_pattern(df: Answers) -> Any:
    """The article's piriformis features in the sciatic territory: "Prominent buttock pain",
    "Lower back pain may be minimal or absent", pain where the sciatic nerve runs."""
    return (
        _is(df, "buttock_pain", True)
        & _is(df, "back_pain", False)
        & _in(df, "pain_region", SCIATIC_REGIONS)
    )


def nerve_territory(df: Answers, piriformis_likely: Any = None) -> Any:
    """The nerve the pain pattern points to: a spinal root, or the sciatic nerve off the spine.

    A piriformis-like case (the article's buttock-pain-without-back-pain pattern, or
    ``piriformis_likely``, e.g. the model's most likely cause) whose pain runs in the sciatic
    territory (:data:`SCIATIC_REGIONS`) points to :data:`SCIATIC_TERRITORY`: the pain region
    predicts the sciatic nerve's territory, not a compressed root. Otherwise the root of
    :func:`dermatome_root` as ``"<root> nerve root"``, or ``None`` where it names none.

    Parameters
    ----------
    df : pandas.DataFrame or mapping
        Validated cases, or one validated case.
    piriformis_likely : array-like of bool or bool, optional
        Extra piriformis decision per row (by position), or one bool.

    Returns
    -------
    ndarray of object, or str or None
        One text (or ``None``) per row; for one case, the text or ``None``.
    """
    if piriformis_likely is not None and not _one(df) and np.ndim(piriformis_likely) == 0:
        piriformis_likely = np.full(len(df), bool(piriformis_likely))  # one cause for every row
    sciatic = _in(df, "pain_region", SCIATIC_REGIONS) & (
        _piriformis_pattern(df) | _decision(piriformis_likely, _rows(df), "piriformis_likely")
    )
    roots = _root_names(df)
    if _one(df):
        return SCIATIC_TERRITORY if sciatic else (None if roots is None else f"{roots} nerve root")
    text = np.array([None if r is None else f"{r} nerve root" for r in roots], dtype=object)
    return np.where(sciatic, SCIATIC_TERRITORY, text)


def _root_series(pain_region: pd.Series) -> pd.Series:
    roots = pain_region.astype(object).map(DERMATOME_ROOT)
    return pd.Series(
        pd.Categorical(roots, dtype=ROOT_DTYPE), index=pain_region.index, name="nerve_root"
    )


# --------------------------------------------------------------------------------------------
# "Red Flags That Require Immediate Medical Evaluation"
# --------------------------------------------------------------------------------------------

RED_FLAG_TEXT: dict[str, str] = {flag.field: flag.text for flag in FACTS.red_flags}
"""The article's six red flags ("Seek urgent care if you experience: ..."), verbatim, by field
(from ``vignettes/triage.toml``)."""


def red_flag_rules(df: Answers) -> pd.DataFrame | dict[str, bool]:
    """Which of the article's red flags each case reports.

    Article, "Red Flags That Require Immediate Medical Evaluation": "Seek urgent care if you
    experience" any of the six signs in :data:`RED_FLAG_TEXT`. A sign fires only on a ``True``
    answer; ``False`` and unknown do not fire.

    Returns
    -------
    pandas.DataFrame or dict
        ``bool`` columns, one per red-flag field (schema order), indexed like ``df``; for one
        case, a dict field -> bool in the same order.
    """
    fired = {name: _is(df, name, True) for name in RED_FLAG_FIELDS}
    return pd.DataFrame(fired, index=df.index) if isinstance(df, pd.DataFrame) else fired


def fired_red_flags(df: Answers) -> list[list[str]] | list[str]:
    """Per row, the names of the red-flag fields answered ``True`` (schema order).

    For one case, that case's list.
    """
    if _one(df):
        return [name for name in RED_FLAG_FIELDS if _is(df, name, True)]
    fired = np.column_stack([_is(df, name, True) for name in RED_FLAG_FIELDS])
    return [list(compress(RED_FLAG_FIELDS, row)) for row in fired]


def any_red_flag(df: Answers) -> Any:
    """Whether any red-flag sign is answered ``True``: a bool array per row, or one bool."""
    return _any([_is(df, name, True) for name in RED_FLAG_FIELDS])


def red_flags_unasked(df: Answers) -> pd.Series | bool:
    """Rows where none of the red-flag questions was answered (all unknown).

    Such a case cannot be cleared of the article's red flags; callers should say so rather than
    report "no red flags". Returns a bool series named ``red_flags_unasked`` (a ``bool`` for one
    case).
    """
    unasked = _unasked(df)
    if not isinstance(df, pd.DataFrame):
        return unasked
    return pd.Series(unasked, index=df.index, name="red_flags_unasked")


def _unasked(df: Answers) -> Any:
    """:func:`red_flags_unasked` as a bool array per row, or one bool."""
    return _all([_unknown(df, name) for name in RED_FLAG_FIELDS])


# --------------------------------------------------------------------------------------------
# "Mechanical Pain vs Neurological Pain"
# --------------------------------------------------------------------------------------------

MECHANISMS: tuple[str, ...] = ("neurological", "mechanical", "mixed", "unclear")
MECHANISM_DTYPE = pd.CategoricalDtype(list(MECHANISMS))
_NEURO_SIGNS = ("numbness", "tingling", "weakness", "reflex_changes")
_LOCALISED = ("back_only", "buttock_thigh")  # "Localized to the lower back or a specific region"


def mechanism_scores(df: Answers) -> pd.DataFrame | dict[str, int]:
    """Points for neurological and for mechanical pain, one per article feature present.

    Neurological (article, "Neurological Pain"), one point each:

    * ``pain_quality`` sharp_electric or burning - "Sharp, electric, burning, or shooting pain";
    * ``below_knee`` - "Radiates along a clear nerve path, often down the leg" (radicular pain
      may "Reach the calf, ankle, or foot");
    * any of numbness, tingling, weakness, reflex changes - "May be accompanied by numbness,
      tingling, or muscle weakness" (sciatica: "Changes in reflexes"); one point for the group;
    * ``worse_at_night`` - "Often worse at night".

    Mechanical (article, "Mechanical Pain"), one point each:

    * ``pain_quality`` dull_aching - "Dull, aching, or stiff sensation";
    * ``better_rest_movement`` - "Improves with rest or gentle movement";
    * ``pain_region`` back_only or buttock_thigh - "Localized to the lower back or a specific
      region of the leg" (pain reaching the buttock or thigh without following a root).

    "Changes with posture" is not scored: the article gives posture-dependence to both kinds
    (e.g. disc herniation worse sitting, stenosis worse standing). ``heaviness_fatigue`` scores
    neither ("heaviness or fatigue rather than sharp pain" is stenosis' claudication).

    Returns
    -------
    pandas.DataFrame or dict
        Integer columns ``neurological`` and ``mechanical``, indexed like ``df``; for one case, a
        dict with those two keys.
    """
    scores = _mechanism_points(df)
    return pd.DataFrame(scores, index=df.index) if isinstance(df, pd.DataFrame) else scores


def _mechanism_points(df: Answers) -> dict[str, Any]:
    neurological = _count(
        _in(df, "pain_quality", ("sharp_electric", "burning")),
        _is(df, "below_knee", True),
        _any([_is(df, name, True) for name in _NEURO_SIGNS]),
        _is(df, "worse_at_night", True),
    )
    mechanical = _count(
        _is(df, "pain_quality", "dull_aching"),
        _is(df, "better_rest_movement", True),
        _in(df, "pain_region", _LOCALISED),
    )
    return {"neurological": neurological, "mechanical": mechanical}


def pain_mechanism(df: Answers) -> pd.Series | str:
    """Mechanical, neurological, mixed or unclear pain, from :func:`mechanism_scores`.

    Article: "Understanding the difference between mechanical pain and neurological pain is
    critical because treatment strategies differ." With N neurological and M mechanical points:

    * ``"unclear"`` - no point either way (N = M = 0);
    * ``"mixed"`` - both kinds well supported (N >= 2 and M >= 2), or a tie (N = M > 0);
    * otherwise the side with more points: ``"neurological"`` (N > M) or ``"mechanical"``.

    Returns
    -------
    pandas.Series or str
        Categorical over :data:`MECHANISMS`, named ``pain_mechanism``, indexed like ``df``; for
        one case, the mechanism's name.
    """
    code = _mechanism_code(df)
    if not isinstance(df, pd.DataFrame):
        return MECHANISMS[code]
    return pd.Series(
        pd.Categorical.from_codes(code, dtype=MECHANISM_DTYPE),
        index=df.index,
        name="pain_mechanism",
    )


def _mechanism_code(df: Answers) -> Any:
    """Index into :data:`MECHANISMS` (see :func:`pain_mechanism`)."""
    scores = _mechanism_points(df)
    n, m = scores["neurological"], scores["mechanical"]
    return _choose(
        [(n == 0) & (m == 0), ((n >= 2) & (m >= 2)) | (n == m), n > m],
        [MECHANISMS.index("unclear"), MECHANISMS.index("mixed"), MECHANISMS.index("neurological")],
        MECHANISMS.index("mechanical"),
    )


def _mechanism_names(df: Answers) -> Any:
    """:func:`pain_mechanism` as a name per row (object array) or one name."""
    code = _mechanism_code(df)
    return MECHANISMS[code] if _one(df) else np.asarray(MECHANISMS, dtype=object)[code]


# --------------------------------------------------------------------------------------------
# "Imaging: When MRI Helps (And When It Doesn't)"
# --------------------------------------------------------------------------------------------

MRI_REASON_TEXT: dict[str, str] = {
    "persistent_beyond_6_8_weeks": "Pain persists beyond 6-8 weeks despite conservative care",
    "progressive_neurological_deficit": "There is progressive weakness or neurological deficits",
    "surgery_considered": "Surgery is being considered",
    "red_flags_present": "Red flags are present, indicating potential serious pathology",
    "already_imaged": (
        "An MRI has already been done; MRI is useful only when interpreted in context with "
        "clinical symptoms - treat the patient, not the scan"
    ),
}
"""Reason codes of :func:`mri_indication`, with the article's words ("MRI is most useful when:").
``already_imaged`` is information only and does not make MRI indicated."""

MRI_CRITERIA: tuple[str, ...] = (
    "persistent_beyond_6_8_weeks",
    "progressive_neurological_deficit",
    "surgery_considered",
    "red_flags_present",
)
PERSISTENT_WEEKS = 6.0
"""The lower end of the article's "beyond 6-8 weeks"."""
_IMAGED = MRI_FINDINGS[1:]  # every finding but "not_done": an MRI was done


def _severe_weakness(df: Answers) -> Any:
    """Proxy for the article's "Severe leg weakness develops": weakness that is getting worse."""
    worsening = _is(df, "progressive_weakness", True) | _is(df, "progressive_symptoms", True)
    return _is(df, "weakness", True) & worsening


def _progressive_deficit(df: Answers) -> Any:
    """The article's "progressive weakness or neurological deficits" (MRI and surgery sections).

    Fires on progressive leg weakness, or progressive nerve symptoms together with a measurable
    deficit (weakness or changed reflexes).
    """
    deficit = _is(df, "weakness", True) | _is(df, "reflex_changes", True)
    return _is(df, "progressive_weakness", True) | (_is(df, "progressive_symptoms", True) & deficit)


def _surgery_considered(df: Answers, mechanism: Any = None, cause: Any = None) -> Any:
    """Proxy for "Surgery is being considered" from the article's "Surgery" section.

    Surgery "is considered only when: There are progressive neurological deficits; Severe leg
    weakness develops; Pain remains disabling despite conservative therapy". The intake does not
    grade severity or disability, so the proxies are: progressive deficit (as in
    :func:`_progressive_deficit`), severe weakness = weakness that is progressing, and disabling
    pain despite conservative therapy as in :func:`_disabling` (at least 6 weeks; ``mechanism``,
    :func:`pain_mechanism`, and ``cause``, the likely cause, are passed in when known).
    """
    if mechanism is None:
        mechanism = _mechanism_names(df)
    return _progressive_deficit(df) | _severe_weakness(df) | _disabling(df, mechanism, cause)


def _red_flags_present(df: Answers, red_flag: Any = None, reported: Any = None) -> Any:
    """A reported red-flag sign (``reported``, when the caller has it) or ``red_flag``."""
    reported = any_red_flag(df) if reported is None else reported
    return reported | _decision(red_flag, _rows(df))


def mri_indication(df: Answers, red_flag: Any = None) -> tuple[Any, list[Any]]:
    """Whether MRI is indicated, and which of the article's criteria apply.

    Article, "Imaging: When MRI Helps": "MRI is most useful when: Pain persists beyond 6-8 weeks
    despite conservative care; There is progressive weakness or neurological deficits; Surgery
    is being considered; Red flags are present". Reason codes (texts in
    :data:`MRI_REASON_TEXT`):

    * ``persistent_beyond_6_8_weeks`` - ``duration_weeks >= 6`` and ``conservative_care_failed``;
    * ``progressive_neurological_deficit`` - ``progressive_weakness``, or
      ``progressive_symptoms`` with ``weakness`` or ``reflex_changes``;
    * ``surgery_considered`` - the proxy of :func:`_surgery_considered`;
    * ``red_flags_present`` - a red flag answered ``True``, or ``red_flag`` (e.g. the model's
      red-flag decision) is true;
    * ``already_imaged`` - ``mri_finding`` is known and not ``not_done``. Information only: it
      does not change ``indicated``, which stays about whether the criteria apply ("An MRI alone
      cannot diagnose the cause of pain").

    Parameters
    ----------
    df : pandas.DataFrame or mapping
        Validated cases, or one validated case.
    red_flag : array-like of bool or bool, optional
        An extra red-flag decision per row, aligned by position (one bool for one case).

    Returns
    -------
    indicated : pandas.Series of bool, or bool
        Named ``mri_indicated``, indexed like ``df``; for one case, a bool.
    reasons : list of list of str, or list of str
        Per row, the reason codes that apply, in the order above; for one case, its list.
    """
    indicated, reasons = _mri_result(_mri_flags(df, red_flag))
    if not isinstance(df, pd.DataFrame):
        return indicated, reasons
    return pd.Series(indicated, index=df.index, name="mri_indicated"), reasons


def _mri_result(flags: dict[str, Any]) -> tuple[Any, list[Any]]:
    """Whether any criterion applies, and the reason codes (per row, or for one case)."""
    if isinstance(flags[MRI_CRITERIA[0]], bool):
        reasons = [code for code, applies in flags.items() if applies]
        return any(flags[c] for c in MRI_CRITERIA), reasons
    matrix = np.column_stack(list(flags.values()))
    indicated = matrix[:, : len(MRI_CRITERIA)].any(axis=1)
    return indicated, [list(compress(flags, row)) for row in matrix]


def _mri_flags(
    df: Answers,
    red_flag: Any = None,
    mechanism: Any = None,
    reported: Any = None,
    cause: Any = None,
) -> dict[str, Any]:
    """Each of :func:`mri_indication`'s reasons: applies or not (per row, or for one case).

    ``mechanism`` (:func:`_mechanism_names`) and ``reported`` (:func:`any_red_flag`) may be
    passed when the caller already has them.
    """
    return {
        "persistent_beyond_6_8_weeks": (
            (_number(df, "duration_weeks") >= PERSISTENT_WEEKS)
            & _is(df, "conservative_care_failed", True)
        ),
        "progressive_neurological_deficit": _progressive_deficit(df),
        "surgery_considered": _surgery_considered(df, mechanism, cause),
        "red_flags_present": _red_flags_present(df, red_flag, reported),
        "already_imaged": _in(df, "mri_finding", _IMAGED),
    }


# --------------------------------------------------------------------------------------------
# Urgency, the next step and advice ("Red Flags", "Imaging", "Evidence-Based Treatment
# Options", "Why Chronic Radiating Pain Persists"): the engine for vignettes/triage.toml
# --------------------------------------------------------------------------------------------

URGENCY_DTYPE = pd.CategoricalDtype(list(URGENCY_TIERS))
URGENCY_ACTION: dict[str, str] = dict(FACTS.urgency_action)
"""What each urgency tier asks for, from ``vignettes/triage.toml``."""
RED_FLAG_TIER: dict[str, str] = {flag.field: flag.tier for flag in FACTS.red_flags}
"""The tier a reported red-flag sign sets: ``"emergency"`` (cauda equina signs) or ``"urgent"``."""
_SIGNS_OF_TIER = {
    tier: tuple(f for f, t in RED_FLAG_TIER.items() if t == tier)
    for tier in ("emergency", "urgent")
}

NEXT_STEPS: tuple[str, ...] = (
    "emergency_assessment",
    "urgent_evaluation",
    "imaging_and_specialist_review",
    "specialist_review",
    "clinician_review",
    "conservative_care",
)
"""Next steps, most urgent first: same-day emergency assessment (a cauda equina sign); prompt
specialist evaluation (another red-flag sign); MRI and specialist review (an MRI criterion holds
and no MRI is on file); specialist review of the MRI on file, read in context (a criterion holds
and an MRI was done); clinician review (the model's alert, tier ``review``); conservative care."""
NEXT_STEP_DTYPE = pd.CategoricalDtype(list(NEXT_STEPS))

CHRONIC_WEEKS = 12.0
"""The article's chronic pain ("Why Chronic Radiating Pain Persists"): 12 weeks or more, the usual
clinical definition (assumption: the article gives no number)."""

CONDITIONS: tuple[str, ...] = (
    "red_flag_questions_unanswered",
    "mri_indicated",
    "already_imaged",
    "mechanical_pain_pattern",
    "neurological_pain_pattern",
    "radicular_pain",
    "conservative_care_failed",
    "progressive_deficit",
    "severe_weakness",
    "disabling_after_conservative_care",
    "chronic",
    *(f"likely_{cause}" for cause in CAUSES),
)
"""The named conditions ``triage.toml``'s advice may use (``when_all``, ``when_any``,
``unless_any``), each computed per case by :func:`_conditions`:

* ``red_flag_questions_unanswered`` - at least one red-flag question is unknown;
* ``mri_indicated`` - one of the article's MRI criteria holds (:func:`mri_indication`);
* ``already_imaged`` - an MRI finding is on file (``mri_finding`` known and not ``not_done``);
* ``mechanical_pain_pattern`` / ``neurological_pain_pattern`` - :func:`pain_mechanism`;
* ``radicular_pain`` - the pain follows a nerve root (a region of the root table) or reaches
  below the knee;
* ``conservative_care_failed`` - answered yes;
* ``progressive_deficit`` - progressive weakness, or progressive symptoms with a deficit;
* ``severe_weakness`` - weakness that is getting worse;
* ``disabling_after_conservative_care`` - neurological leg pain worse than the back pain,
  conservative care failed, for at least 6 weeks, and a spinal cause is likely (not piriformis
  syndrome or mechanical pain);
* ``chronic`` - ``duration_weeks`` >= :data:`CHRONIC_WEEKS`;
* ``likely_<cause>`` - the model's most likely cause (false when no cause is given).
"""

_unknown_conditions = sorted(
    {c for item in FACTS.advice for c in item.conditions} - set(CONDITIONS)
)
if _unknown_conditions:
    raise KnowledgeError(
        f"triage.toml advice: unknown conditions {_unknown_conditions}; known: {list(CONDITIONS)}"
    )


def _advice_text(item: Any) -> str:
    """An advice item's words; ``{return_if}`` becomes the red flags' safety-netting words."""
    if "{return_if}" not in item.text:
        return str(item.text)
    return str(item.text.format(return_if="; or if ".join(f.return_if for f in FACTS.red_flags)))


ADVICE_TEXT: dict[str, str] = {item.code: _advice_text(item) for item in FACTS.advice}
"""Every advice text, by code (the documented vocabulary of ``advice_codes``), in the order
given; from ``vignettes/triage.toml``, which also holds each item's source and conditions."""
ADVICE_CODES: tuple[str, ...] = tuple(ADVICE_TEXT)
_ADVICE_RULES = tuple(
    (item.code, frozenset(URGENCY_TIERS.index(t) for t in item.tiers), item)
    for item in FACTS.advice
)


def _not(condition: Any) -> Any:
    """Logical NOT of a bool or a bool array (``~`` on a Python bool is an integer)."""
    return not condition if isinstance(condition, bool) else ~condition


def _likely(cause: Any, name: str, n: int | None) -> Any:
    """Whether the model's most likely cause is ``name`` (False without a cause)."""
    if cause is None:
        return False if n is None else np.zeros(n, dtype=bool)
    if n is None:
        return cause == name
    return np.asarray(cause, dtype=object) == name


def _disabling(df: Answers, mechanism: Any, cause: Any = None) -> Any:
    """Proxy for "Pain remains disabling despite conservative therapy" (article, "Surgery").

    The intake does not grade disability, so: neurological leg pain worse than the back pain,
    conservative care failed, after at least 6 weeks (never in the first weeks, when most cases
    still improve), and not piriformis syndrome or mechanical pain when the likely cause is known
    (neither has a compressed spinal root for surgery to free).
    """
    n = _rows(df)
    off_spine = _likely(cause, "piriformis_syndrome", n) | _likely(cause, "mechanical_pain", n)
    return (
        _is(df, "conservative_care_failed", True)
        & _is(df, "leg_pain_worse_than_back", True)
        & (mechanism == "neurological")
        & (_number(df, "duration_weeks") >= PERSISTENT_WEEKS)
        & _not(off_spine)
    )


def _conditions(
    df: Answers, mechanism: Any, mri_flags: dict[str, Any], indicated: Any, cause: Any
) -> dict[str, Any]:
    """Every :data:`CONDITIONS` entry, per row (bool arrays) or for one case (bools)."""
    n = _rows(df)
    out = {
        "red_flag_questions_unanswered": _any([_unknown(df, f) for f in RED_FLAG_FIELDS]),
        "mri_indicated": indicated,
        "already_imaged": mri_flags["already_imaged"],
        "mechanical_pain_pattern": mechanism == "mechanical",
        "neurological_pain_pattern": mechanism == "neurological",
        "radicular_pain": _in(df, "pain_region", _ROOT_REGIONS) | _is(df, "below_knee", True),
        "conservative_care_failed": _is(df, "conservative_care_failed", True),
        "progressive_deficit": _progressive_deficit(df),
        "severe_weakness": _severe_weakness(df),
        "disabling_after_conservative_care": _disabling(df, mechanism, cause),
        "chronic": _number(df, "duration_weeks") >= CHRONIC_WEEKS,
    }
    return out | {f"likely_{c}": _likely(cause, c, n) for c in CAUSES}


def _urgency_code(df: Answers, red_flag_model: Any = None) -> Any:
    """Index into :data:`URGENCY_TIERS`: reported signs by rule, then the model, then routine."""
    signs = [_any([_is(df, f, True) for f in _SIGNS_OF_TIER[t]]) for t in ("emergency", "urgent")]
    return _choose([*signs, _decision(red_flag_model, _rows(df))], [0, 1, 2], 3)


def urgency(df: Answers, red_flag_model: Any = None) -> pd.Series | str:
    """The urgency tier of each case.

    * ``"emergency"`` - a cauda equina sign is reported (bladder or bowel dysfunction, saddle
      numbness): same-day emergency assessment;
    * ``"urgent"`` - any other red-flag sign is reported: prompt specialist assessment;
    * ``"review"`` - no sign is reported but ``red_flag_model`` (the model's decision,
      probability at or above the served threshold) is true: clinician review soon;
    * ``"routine"`` - otherwise: conservative care first, with safety-netting.

    Emergency and urgent come from reported signs only (which tier a sign sets is data:
    ``vignettes/triage.toml``); the model can raise a case to review, never lower a tier.

    Parameters
    ----------
    df : pandas.DataFrame or mapping
        Validated cases, or one validated case.
    red_flag_model : array-like of bool or bool, optional
        The model's decision per row, aligned by position (one bool for one case).

    Returns
    -------
    pandas.Series or str
        Categorical over :data:`URGENCY_TIERS`, named ``urgency``; for one case, the tier.

    Examples
    --------
    >>> urgency({"age": 40, "saddle_numbness": True})
    'emergency'
    >>> urgency({"age": 40, "fever": True}, red_flag_model=True)
    'urgent'
    >>> urgency({"age": 40, "fever": False}, red_flag_model=True)
    'review'
    >>> urgency({"age": 40})
    'routine'
    """
    code = _urgency_code(df, red_flag_model)
    if not isinstance(df, pd.DataFrame):
        return URGENCY_TIERS[code]
    return pd.Series(
        pd.Categorical.from_codes(code, dtype=URGENCY_DTYPE), index=df.index, name="urgency"
    )


def _advice_codes(tier: Any, conditions: dict[str, Any]) -> list[Any]:
    """The advice codes that apply (one list, or one list per row), in ``triage.toml`` order."""
    if isinstance(tier, int):
        return [
            code
            for code, tiers, item in _ADVICE_RULES
            if tier in tiers
            and all(conditions[c] for c in item.when_all)
            and (not item.when_any or any(conditions[c] for c in item.when_any))
            and not any(conditions[c] for c in item.unless_any)
        ]
    masks = []
    for _, tiers, item in _ADVICE_RULES:
        mask = np.isin(tier, list(tiers))
        for c in item.when_all:
            mask &= conditions[c]
        if item.when_any:
            mask &= _any([conditions[c] for c in item.when_any])
        for c in item.unless_any:
            mask &= ~conditions[c]
        masks.append(mask)
    return [list(compress(ADVICE_CODES, row)) for row in np.column_stack(masks)]


def _step_code(tier: Any, indicated: Any, imaged: Any) -> Any:
    """Index into :data:`NEXT_STEPS` (per row, or for one case)."""
    return _choose(
        [tier == 0, tier == 1, indicated & _not(imaged), indicated & imaged, tier == 2],
        [0, 1, 2, 3, 4],
        5,
    )


def _unanswered(df: Answers) -> list[Any]:
    """The red-flag questions left unanswered, schema order (one list, or one per row)."""
    if _one(df):
        return [name for name in RED_FLAG_FIELDS if _unknown(df, name)]
    unknown = np.column_stack([_unknown(df, name) for name in RED_FLAG_FIELDS])
    return [list(compress(RED_FLAG_FIELDS, row)) for row in unknown]


def next_step(
    df: Answers, red_flag: Any = None, mri_indicated: Any = None, cause: Any = None
) -> Any:
    """The urgency, the next step and the advice that goes with it.

    The next step (:data:`NEXT_STEPS`) follows the urgency (:func:`urgency`), then the article's
    MRI criteria (:func:`mri_indication`; an MRI already on file is read in context, not
    repeated), then the model's review alert, then conservative care. The advice is every item
    of ``vignettes/triage.toml`` whose tier and conditions (:data:`CONDITIONS`) hold: evaluation
    first for emergency and urgent cases; conservative care, the article's treatment options
    that fit the cause and the course, and safety-netting for review and routine ones.

    Parameters
    ----------
    df : pandas.DataFrame or mapping
        Validated cases, or one validated case.
    red_flag : array-like of bool or bool, optional
        The model's red-flag decision per row, aligned by position (one bool for one case).
    mri_indicated : array-like of bool or bool, optional
        The ``indicated`` result of :func:`mri_indication` when the caller already has it
        (aligned by position); computed here otherwise.
    cause : array-like of str or str, optional
        The most likely cause per row (the model's), for advice that depends on it (e.g. no
        epidural injection for central canal stenosis).

    Returns
    -------
    pandas.DataFrame or dict
        Indexed like ``df``, with columns ``urgency`` and ``next_step`` (categorical), ``advice``
        (list of texts from :data:`ADVICE_TEXT`) and ``advice_codes`` (their codes). For one
        case, a dict with the same keys and plain values.
    """
    parts = _triage_parts(df, red_flag, cause, mri_indicated)
    keys = ("urgency", "next_step", "advice", "advice_codes")
    if not isinstance(df, pd.DataFrame):
        return {k: parts[k] for k in keys}
    out = pd.DataFrame({k: parts[k] for k in keys}, index=df.index)
    out["urgency"] = pd.Categorical(out["urgency"], dtype=URGENCY_DTYPE)
    out["next_step"] = pd.Categorical(out["next_step"], dtype=NEXT_STEP_DTYPE)
    return out


# --------------------------------------------------------------------------------------------
# Everything a served prediction needs, in one pass
# --------------------------------------------------------------------------------------------

TRIAGE_KEYS: tuple[str, ...] = (
    "urgency",
    "urgency_action",
    "red_flag",
    "red_flags_fired",
    "red_flags_unasked",
    "red_flag_questions_unanswered",
    "nerve_root",
    "nerve_territory",
    "pain_mechanism",
    "mri_indicated",
    "mri_reasons",
    "next_step",
    "advice_codes",
    "advice",
)
"""The keys of :func:`triage`, in order."""


def triage(df: Answers, red_flag_model: Any = None, cause: Any = None) -> dict[str, Any]:
    """The article's triage of validated intakes, with the model's red-flag decision and cause.

    Computes each piece once: the red flags reported and unanswered, the urgency tier
    (:func:`urgency`: reported signs by rule, the model's decision only adds ``review``), the
    nerve root (:func:`dermatome_root`), the pain mechanism (:func:`pain_mechanism`), MRI
    (:func:`mri_indication`, whose red-flag criterion counts reported signs only: the article's
    "red flags are present"), the next step and the advice (:func:`next_step`).
    ``red_flag`` is ``urgency != "routine"``.

    Parameters
    ----------
    df : pandas.DataFrame or mapping
        Validated cases, or one validated case.
    red_flag_model : array-like of bool or bool, optional
        The model's red-flag decision (per row by position, or one bool); it can only add
        urgency, never remove it.
    cause : array-like of str or str, optional
        The model's most likely cause (per row by position, or one name).

    Returns
    -------
    dict
        :data:`TRIAGE_KEYS`. For a frame each value has one entry per row (a NumPy array of bool
        or object, or a list of lists); for one case, plain Python values. ``nerve_root`` is
        ``None`` where the table points to no root; ``mri_reasons`` are reason codes
        (:data:`MRI_REASON_TEXT`), ``advice_codes`` codes and ``advice`` texts
        (:data:`ADVICE_TEXT`).

    Examples
    --------
    >>> out = triage({"age": 35, "duration_weeks": 3, "fever": False}, cause="disc_herniation")
    >>> out["urgency"], out["next_step"]
    ('routine', 'conservative_care')
    >>> "safety_net" in out["advice_codes"], out["red_flag_questions_unanswered"][:2]
    (True, ['bladder_bowel_dysfunction', 'saddle_numbness'])
    """
    parts = _triage_parts(df, red_flag_model, cause)
    return {key: parts[key] for key in TRIAGE_KEYS}


def _triage_parts(
    df: Answers, red_flag_model: Any = None, cause: Any = None, mri_indicated: Any = None
) -> dict[str, Any]:
    """Everything :func:`triage` and :func:`next_step` return, each computed once."""
    one = _one(df)
    tier = _urgency_code(df, red_flag_model)
    mechanism = _mechanism_names(df)
    flags = _mri_flags(df, None, mechanism, None, cause)
    indicated, reasons = _mri_result(flags)
    if mri_indicated is not None:
        indicated = _decision(mri_indicated, _rows(df), "mri_indicated")
    codes = _advice_codes(tier, _conditions(df, mechanism, flags, indicated, cause))
    step = _step_code(tier, indicated, flags["already_imaged"])
    return {
        "urgency": _names(URGENCY_TIERS, tier),
        "urgency_action": _names(_ACTIONS, tier),
        "red_flag": tier != URGENCY_TIERS.index("routine"),
        "red_flags_fired": fired_red_flags(df),
        "red_flags_unasked": _unasked(df),
        "red_flag_questions_unanswered": _unanswered(df),
        "nerve_root": _root_names(df),
        "nerve_territory": nerve_territory(df, _is_piriformis(cause)),
        "pain_mechanism": mechanism,
        "mri_indicated": indicated,
        "mri_reasons": reasons,
        "next_step": _names(NEXT_STEPS, step),
        "advice_codes": codes,
        "advice": [ADVICE_TEXT[c] for c in codes]
        if one
        else [[ADVICE_TEXT[c] for c in row] for row in codes],
    }


_ACTIONS = tuple(URGENCY_ACTION[t] for t in URGENCY_TIERS)


def _is_piriformis(cause: Any) -> Any:
    """Whether the model's most likely cause is piriformis syndrome (``None``: no model)."""
    if cause is None:
        return None
    if isinstance(cause, str):
        return cause == "piriformis_syndrome"
    return np.asarray(cause, dtype=object) == "piriformis_syndrome"


def _names(names: tuple[str, ...], code: Any) -> Any:
    """``names[code]`` for one code, or an object array of names for an array of codes."""
    return names[code] if isinstance(code, int) else np.asarray(names, dtype=object)[code]


def _root_names(df: Answers) -> Any:
    """Nerve root per row (object array, ``None`` for no root) or for one case."""
    if _one(df):
        return dermatome_root(df.get("pain_region"))
    if "pain_region" not in df:
        return np.full(len(df), None, dtype=object)
    roots = _root_series(df["pain_region"]).astype(object).to_numpy()
    return np.where(pd.isna(roots), None, roots)


# --------------------------------------------------------------------------------------------
# The causes: a careful reader's points system
# --------------------------------------------------------------------------------------------


MRI_BACKGROUND_AGES: tuple[float, ...] = (20, 30, 40, 50, 60, 70, 80)
MRI_BACKGROUND_PREVALENCE: dict[str, tuple[float, ...]] = {
    # disc degeneration: 37% at 20 -> 96% at 80
    "degenerative_changes": (0.37, 0.52, 0.68, 0.80, 0.88, 0.93, 0.96),
    # disc protrusion: 29% at 20 -> 43% at 80
    "disc_herniation": (0.29, 0.31, 0.33, 0.36, 0.38, 0.40, 0.43),
    # spondylolisthesis: rare when young, about half at 80
    "spondylolisthesis": (0.03, 0.05, 0.08, 0.14, 0.23, 0.25, 0.50),
}
"""Share of people WITHOUT back pain whose MRI shows the finding, by age (Brinjikji et al., AJNR
2015;36:811-816, systematic review of 3,110 asymptomatic people; linear between the decades).
"Treat the patient, not the scan": such a finding is evidence only in proportion to how rare it
is without pain at that age. The review gives no stenosis figures; stenosis findings are not
discounted (assumption)."""


def background_prevalence(finding: str, age: Any) -> Any:
    """:data:`MRI_BACKGROUND_PREVALENCE` of ``finding`` at ``age`` (0 for other findings)."""
    curve = MRI_BACKGROUND_PREVALENCE.get(finding)
    if curve is None:
        return 0.0 if isinstance(age, float) else np.zeros(np.shape(age))
    out = np.interp(age, MRI_BACKGROUND_AGES, curve)
    return float(out) if np.ndim(out) == 0 else out


@dataclass(frozen=True)
class Rule:
    """``points`` for ``cause`` when the answer to ``field`` satisfies ``op value``.

    ``op`` is ``"is"`` (equal), ``"in"`` (one of a tuple) or ``"gt"`` (numeric, greater than).
    Unknown answers never satisfy a rule. A rule on an MRI finding (``field`` is
    ``mri_finding``) counts ``1 - prevalence`` of its points, the prevalence of the finding in
    people without pain at the patient's age (:func:`background_prevalence`).
    """

    cause: str
    field: str
    op: Literal["is", "in", "gt"]
    value: object
    points: float
    source: str

    def matches(self, df: pd.DataFrame) -> np.ndarray:
        """Rows of ``df`` where the rule applies."""
        if self.op == "is":
            return _is(df, self.field, self.value)
        if self.op == "in":
            return _in(df, self.field, tuple(self.value))  # type: ignore[arg-type]
        return _number(df, self.field) > float(self.value)  # type: ignore[arg-type]

    def weight(self, df: pd.DataFrame) -> np.ndarray:
        """Share of :attr:`points` each row earns: 0 where the rule does not apply, else 1, or
        less for an MRI finding that is common without pain at the row's age."""
        applies = np.asarray(self.matches(df), dtype=float)
        if self.field != "mri_finding" or self.op != "is":
            return applies
        age = _number(df, "age")
        discount = 1.0 - background_prevalence(str(self.value), np.nan_to_num(age, nan=50.0))
        return applies * discount


_ONE_SIDE = ("left", "right")
_SHARP = ("sharp_electric", "burning")

CAUSE_RULES: tuple[Rule, ...] = (
    # 1. Lumbar Disc Herniation - "Typical symptoms"
    Rule("disc_herniation", "pain_quality", "is", "sharp_electric", 1.0, "Sharp leg pain"),
    Rule(
        "disc_herniation",
        "leg_pain_worse_than_back",
        "is",
        True,
        1.0,
        "Sharp leg pain that may be worse than back pain",
    ),
    Rule("disc_herniation", "worse_sitting", "is", True, 1.0, "Pain worsens with sitting"),
    Rule("disc_herniation", "worse_bending_forward", "is", True, 1.0, "or bending forward"),
    Rule(
        "disc_herniation",
        "worse_cough_sneeze",
        "is",
        True,
        1.5,
        "Coughing, sneezing, or straining can intensify symptoms",
    ),
    Rule(
        "disc_herniation",
        "below_knee",
        "is",
        True,
        0.5,
        "True sciatica most often involves the L5 or S1 nerve roots (down to the foot)",
    ),
    Rule("disc_herniation", "sides", "in", _ONE_SIDE, 0.5, "[sciatica] usually affects one leg"),
    # The straight-leg raise (not in the article): points ~ the natural log of the published
    # likelihood ratios, van der Windt et al., Cochrane 2010 (sensitivity 0.92, specificity 0.28;
    # crossed 0.28 / 0.90): positive LR 1.3, negative LR 0.29, crossed positive LR 2.8.
    Rule("disc_herniation", "straight_leg_raise", "is", True, 0.25, "SLR: sensitive"),
    Rule("disc_herniation", "straight_leg_raise", "is", False, -1.25, "negative SLR: unlikely"),
    Rule("disc_herniation", "crossed_straight_leg_raise", "is", True, 1.0, "crossed SLR: specific"),
    Rule("disc_herniation", "mri_finding", "is", "disc_herniation", 1.0, "MRI, in context"),
    Rule("disc_herniation", "better_sitting", "is", True, -1.0, "contrast: stenosis eased sitting"),
    Rule(
        "disc_herniation",
        "better_bending_forward",
        "is",
        True,
        -1.0,
        "contrast: stenosis eased bending forward, disc herniation worse bending forward",
    ),
    # 2. Lumbar Spinal Stenosis - "Key features"
    Rule("spinal_stenosis", "age", "gt", 50, 1.0, "It is more common in adults over 50"),
    Rule("spinal_stenosis", "worse_walking", "is", True, 1.0, "Leg pain worsens with walking"),
    Rule("spinal_stenosis", "worse_standing", "is", True, 0.5, "or standing"),
    Rule("spinal_stenosis", "better_sitting", "is", True, 1.5, "Pain improves with sitting"),
    Rule("spinal_stenosis", "better_bending_forward", "is", True, 1.5, "or bending forward"),
    Rule("spinal_stenosis", "sides", "is", "both", 1.5, "Often affects both legs"),
    Rule(
        "spinal_stenosis",
        "pain_quality",
        "is",
        "heaviness_fatigue",
        1.5,
        "Pain may feel like heaviness or fatigue rather than sharp pain",
    ),
    Rule("spinal_stenosis", "mri_finding", "is", "central_stenosis", 1.0, "MRI, in context"),
    Rule("spinal_stenosis", "worse_sitting", "is", True, -1.0, "contrast: improves with sitting"),
    Rule("spinal_stenosis", "worse_bending_forward", "is", True, -1.0, "contrast: improves"),
    # 3. Foraminal Stenosis - "Symptoms"
    Rule("foraminal_stenosis", "sides", "in", _ONE_SIDE, 0.5, "Pain usually affects one side"),
    Rule("foraminal_stenosis", "worse_extension", "is", True, 1.5, "Pain worsens with extension"),
    Rule("foraminal_stenosis", "pain_quality", "in", _SHARP, 0.5, "Can mimic sciatica"),
    Rule("foraminal_stenosis", "mri_finding", "is", "foraminal_stenosis", 1.0, "MRI, in context"),
    # 4. Piriformis Syndrome - "Features"
    Rule("piriformis_syndrome", "buttock_pain", "is", True, 1.5, "Prominent buttock pain"),
    Rule(
        "piriformis_syndrome",
        "worse_sitting",
        "is",
        True,
        1.0,
        "Pain worsens with prolonged sitting",
    ),
    Rule(
        "piriformis_syndrome",
        "back_pain",
        "is",
        False,
        1.5,
        "Lower back pain may be minimal or absent",
    ),
    Rule("piriformis_syndrome", "mri_finding", "is", "normal", 1.0, "Spine imaging may be normal"),
    # 5. Spondylolisthesis - "Consequences"
    Rule("spondylolisthesis", "worse_standing", "is", True, 1.0, "worsens with standing"),
    Rule("spondylolisthesis", "worse_extension", "is", True, 1.0, "or spinal extension"),
    Rule(
        "spondylolisthesis",
        "progressive_symptoms",
        "is",
        True,
        1.5,
        "Can cause progressive nerve symptoms",
    ),
    Rule(
        "spondylolisthesis",
        "mri_finding",
        "is",
        "spondylolisthesis",
        1.5,
        "one vertebra slips forward relative to another (seen on imaging)",
    ),
    # 6. Degenerative Disc Disease - "usually an age-related structural change"
    Rule("degenerative_disc_disease", "age", "gt", 40, 0.5, "an age-related structural change"),
    Rule(
        "degenerative_disc_disease",
        "mri_finding",
        "is",
        "degenerative_changes",
        1.5,
        "Disc height loss narrows nerve space (degenerative changes on MRI, in context)",
    ),
    Rule("degenerative_disc_disease", "pain_quality", "is", "dull_aching", 0.5, "not sharp"),
    Rule(
        "degenerative_disc_disease",
        "back_pain",
        "is",
        True,
        0.5,
        "Movement patterns overload specific spinal segments",
    ),
    # Mechanical pain - "Mechanical Pain vs Neurological Pain"
    Rule("mechanical_pain", "pain_quality", "is", "dull_aching", 1.0, "Dull, aching, or stiff"),
    Rule(
        "mechanical_pain",
        "better_rest_movement",
        "is",
        True,
        1.5,
        "Improves with rest or gentle movement",
    ),
    Rule(
        "mechanical_pain",
        "pain_region",
        "in",
        _LOCALISED,
        1.5,
        "Localized to the lower back or a specific region of the leg",
    ),
    Rule("mechanical_pain", "below_knee", "is", False, 0.5, "or a specific region of the leg"),
    *(
        Rule(
            "mechanical_pain",
            sign,
            "is",
            value,
            points,
            "arises from muscles, joints, ligaments, or discs rather than the nerves themselves",
        )
        for sign in ("numbness", "tingling", "weakness")
        for value, points in ((False, 0.5), (True, -1.0))
    ),
    Rule("mechanical_pain", "pain_quality", "in", _SHARP, -1.0, "contrast: neurological pain"),
)
"""The points system of :class:`ArticleRulesClassifier`: for each cause, the features the
article names for it (``source`` quotes it), with a few negative points where the article
contrasts two causes. Weights are a careful reader's judgement (1 = a named feature, 1.5 = a
distinctive one, 0.5 = a shared or weak one), fixed, never fitted."""


def cause_points(cases: pd.DataFrame) -> pd.DataFrame:
    """Total points of each cause under :data:`CAUSE_RULES` (unknown answers add nothing).

    An MRI finding earns its points times ``1 - `` its prevalence without pain at the case's age
    (:meth:`Rule.weight`): "Treat the patient, not the scan".

    Returns
    -------
    pandas.DataFrame
        One float column per cause (order of ``vignettes.schema.CAUSES``), indexed like ``X``.
    """
    points = np.zeros((len(cases), len(CAUSES)))
    for rule in CAUSE_RULES:
        points[:, CAUSES.index(rule.cause)] += rule.points * rule.weight(cases)
    return pd.DataFrame(points, columns=list(CAUSES), index=cases.index)


class ArticleRulesClassifier(ClassifierMixin, BaseEstimator):
    """The article read as a points system: a transparent, untrained baseline.

    Each cause scores the points of :data:`CAUSE_RULES` that apply; points become probabilities
    with a fixed softmax, ``p = floor + (1 - 7 * floor) * softmax(scale * points)``, so every
    probability is at least ``floor`` and log-loss stays finite. Nothing is learned from data:
    :meth:`fit` only checks its input and records the (fixed) class list.

    The red flag follows the article's "Seek urgent care if you experience" list: probability
    ``red_flag_fired_proba`` when any red-flag sign is answered ``True``, else
    ``red_flag_baseline_proba``.

    Parameters
    ----------
    scale : float, default=1.0
        Softmax scale: probability ratio ``exp(scale)`` per point of difference.
    floor : float, default=1e-3
        Smallest probability of any cause.
    red_flag_fired_proba : float, default=1.0
        Red-flag probability when a sign fired.
    red_flag_baseline_proba : float, default=0.01
        Red-flag probability otherwise.

    Attributes
    ----------
    classes_ : numpy.ndarray of str
        ``vignettes.schema.CAUSES``, in that order.
    n_features_in_ : int
        Number of contract fields.
    feature_names_in_ : numpy.ndarray of str
        The contract fields, in schema order.
    """

    def __init__(
        self,
        scale: float = 1.0,
        floor: float = 1e-3,
        red_flag_fired_proba: float = 1.0,
        red_flag_baseline_proba: float = 0.01,
    ) -> None:
        self.scale = scale
        self.floor = floor
        self.red_flag_fired_proba = red_flag_fired_proba
        self.red_flag_baseline_proba = red_flag_baseline_proba

    def fit(self, X: pd.DataFrame, y: Any = None) -> ArticleRulesClassifier:
        """Check ``X`` (and ``y`` if given: labels among the causes); record the class list.

        Parameters
        ----------
        X : pandas.DataFrame
            Cases, as accepted by :func:`model.intake.validate_frame`.
        y : array-like of str, optional
            Causes; only checked (length and values), never learned from.

        Returns
        -------
        ArticleRulesClassifier
            ``self``.
        """
        n_rows = len(validate_frame(X))
        if not 0 <= self.floor * len(CAUSES) < 1:
            raise ValueError(f"floor: expected 0 <= floor < {1 / len(CAUSES):.3g}")
        if y is not None:
            labels = pd.Series(np.asarray(y, dtype=object))
            if len(labels) != n_rows:
                raise ValueError(f"y: expected {n_rows} labels, got {len(labels)}")
            unknown = ~labels.isin(list(CAUSES))
            if unknown.any():
                raise IntakeError(
                    "cause",
                    "one of " + ", ".join(map(repr, CAUSES)),
                    f"cause: {labels[unknown].iloc[0]!r} is not allowed; expected one of "
                    + ", ".join(map(repr, CAUSES)),
                )
        self.classes_ = np.asarray(CAUSES, dtype=object)
        self.n_features_in_ = len(FIELD_NAMES)
        self.feature_names_in_ = np.asarray(FIELD_NAMES, dtype=object)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Probability of each cause (columns in ``classes_`` order; rows sum to 1)."""
        check_is_fitted(self, "classes_")
        logits = self.scale * cause_points(validate_frame(X)).to_numpy()
        logits -= logits.max(axis=1, keepdims=True)
        soft = np.exp(logits)
        soft /= soft.sum(axis=1, keepdims=True)
        return self.floor + (1.0 - len(CAUSES) * self.floor) * soft

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """The most likely cause of each case (ties go to the earlier cause in ``classes_``)."""
        check_is_fitted(self, "classes_")
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def red_flag_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Probability that the case needs urgent evaluation, from the article's red flags."""
        check_is_fitted(self, "classes_")
        fired = any_red_flag(validate_frame(X))
        return np.where(fired, self.red_flag_fired_proba, self.red_flag_baseline_proba)

    def predict_red_flag(self, X: pd.DataFrame) -> np.ndarray:
        """The red-flag decision: any red-flag sign answered ``True``."""
        check_is_fitted(self, "classes_")
        return any_red_flag(validate_frame(X))
