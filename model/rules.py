"""The article's clinical reasoning as plain, vectorised rules over a validated intake frame.

Every rule here quotes ``shared/source-article.txt`` ("Lower Back Pain Radiates to the Leg: 7 Key
Causes, Diagnosis & Treatments"); where the article gives no operational threshold, the proxy
chosen is stated in the docstring. The functions take a frame with the contract's columns and
dtypes (as returned by :func:`model.intake.validate_frame` or :func:`vignettes.generate`); an
unknown answer (``<NA>``) or an absent column never makes a rule fire. They do not validate: call
:func:`model.intake.validate_frame` first. :class:`ArticleRulesClassifier` validates its input.

Public API
----------
DERMATOME_ROOT, dermatome_root
    The article's pain-location -> nerve-root table.
RED_FLAG_TEXT, red_flag_rules, fired_red_flags, red_flags_unasked
    "Red Flags That Require Immediate Medical Evaluation".
MECHANISMS, mechanism_scores, pain_mechanism
    "Mechanical Pain vs Neurological Pain".
MRI_REASON_TEXT, mri_indication
    "Imaging: When MRI Helps (And When It Doesn't)".
NEXT_STEPS, ADVICE_TEXT, next_step
    Urgent evaluation, imaging, or the "Evidence-Based Treatment Options".
CAUSE_RULES, cause_points, ArticleRulesClassifier
    The seven causes scored by the features the article names for each.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import compress
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from model.intake import IntakeError, validate_frame
from vignettes.schema import CAUSES, FIELD_NAMES, MRI_FINDINGS, RED_FLAG_FIELDS

__all__ = [
    "ADVICE_TEXT",
    "CAUSE_RULES",
    "DERMATOME_ROOT",
    "MECHANISMS",
    "MRI_REASON_TEXT",
    "NEXT_STEPS",
    "RED_FLAG_TEXT",
    "ArticleRulesClassifier",
    "Rule",
    "cause_points",
    "dermatome_root",
    "fired_red_flags",
    "mechanism_scores",
    "mri_indication",
    "next_step",
    "pain_mechanism",
    "red_flag_rules",
    "red_flags_unasked",
]


# --------------------------------------------------------------------------------------------
# Reading answers: True only where the answer is known and matches
# --------------------------------------------------------------------------------------------


def _is(df: pd.DataFrame, name: str, value: object) -> np.ndarray:
    """Rows whose answer to ``name`` is known and equal to ``value`` (unknown -> False)."""
    if name not in df:
        return np.zeros(len(df), dtype=bool)
    # Fast paths on the underlying arrays: these rules run on every single-case prediction.
    array = df[name].array
    if isinstance(array, pd.Categorical):
        categories = array.categories
        if value not in categories:
            return np.zeros(len(df), dtype=bool)
        return np.asarray(array.codes) == categories.get_loc(value)
    if isinstance(array, pd.arrays.BooleanArray) and isinstance(value, bool):
        return array.to_numpy(dtype=bool, na_value=not value) == value  # unknown -> False
    return df[name].eq(value).fillna(False).to_numpy(dtype=bool)


def _in(df: pd.DataFrame, name: str, values: tuple[object, ...]) -> np.ndarray:
    """Rows whose answer to ``name`` is known and one of ``values``."""
    if name not in df:
        return np.zeros(len(df), dtype=bool)
    return df[name].isin(list(values)).fillna(False).to_numpy(dtype=bool)


def _number(df: pd.DataFrame, name: str) -> np.ndarray:
    """A numeric answer as floats, NaN where unknown (comparisons with NaN are False)."""
    if name not in df:
        return np.full(len(df), np.nan)
    return pd.to_numeric(df[name]).astype("Float64").to_numpy(dtype=float, na_value=np.nan)


def _unknown(df: pd.DataFrame, name: str) -> np.ndarray:
    if name not in df:
        return np.ones(len(df), dtype=bool)
    return df[name].isna().to_numpy(dtype=bool)


def _decision(decision: Any, n: int, name: str = "red_flag") -> np.ndarray:
    """An optional per-row decision (bool; None = all False) as a bool array, by position."""
    if decision is None:
        return np.zeros(n, dtype=bool)
    values = pd.Series(np.asarray(decision)).astype("boolean").fillna(False).to_numpy(dtype=bool)
    if values.shape != (n,):
        raise ValueError(f"{name}: expected {n} values (one per row), got {values.shape[0]}")
    return values


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
``back_only`` is not in the table: pain that stays in the back points to no root."""

ROOT_DTYPE = pd.CategoricalDtype(list(DERMATOME_ROOT.values()))


def dermatome_root(pain_region: pd.Series) -> pd.Series:
    """Likely nerve root from where the pain reaches.

    Article, "How to Tell Which Nerve Is Involved": "The location of leg pain provides strong
    clues about which nerve root is affected" (table in :data:`DERMATOME_ROOT`).

    Parameters
    ----------
    pain_region : pandas.Series
        The ``pain_region`` answers (categorical or strings; ``<NA>`` = unknown).

    Returns
    -------
    pandas.Series
        Categorical with categories ``L2-L3, L3-L4, L5, S1, S1-S2``, named ``nerve_root``, indexed
        like the input; ``<NA>`` for ``back_only`` and unknown.
    """
    roots = pain_region.astype(object).map(DERMATOME_ROOT)
    return pd.Series(
        pd.Categorical(roots, dtype=ROOT_DTYPE), index=pain_region.index, name="nerve_root"
    )


# --------------------------------------------------------------------------------------------
# "Red Flags That Require Immediate Medical Evaluation"
# --------------------------------------------------------------------------------------------

RED_FLAG_TEXT: dict[str, str] = {
    "bladder_bowel_dysfunction": "Loss of bladder or bowel control",
    "saddle_numbness": "Saddle numbness (numbness around the groin or inner thighs)",
    "progressive_weakness": "Progressive leg weakness",
    "unexplained_weight_loss": "Unexplained weight loss",
    "fever": "Fever with back pain",
    "cancer_history": "History of cancer with new or worsening pain",
}
"""The article's six red flags ("Seek urgent care if you experience: ..."), verbatim, by field."""


def red_flag_rules(df: pd.DataFrame) -> pd.DataFrame:
    """Which of the article's red flags each case reports.

    Article, "Red Flags That Require Immediate Medical Evaluation": "Seek urgent care if you
    experience" any of the six signs in :data:`RED_FLAG_TEXT`. A sign fires only on a ``True``
    answer; ``False`` and unknown do not fire.

    Returns
    -------
    pandas.DataFrame
        ``bool`` columns, one per red-flag field (schema order), indexed like ``df``.
    """
    return pd.DataFrame({name: _is(df, name, True) for name in RED_FLAG_FIELDS}, index=df.index)


def fired_red_flags(df: pd.DataFrame) -> list[list[str]]:
    """Per row, the names of the red-flag fields answered ``True`` (schema order)."""
    fired = red_flag_rules(df).to_numpy()
    return [list(compress(RED_FLAG_FIELDS, row)) for row in fired]


def red_flags_unasked(df: pd.DataFrame) -> pd.Series:
    """Rows where none of the red-flag questions was answered (all unknown).

    Such a case cannot be cleared of the article's red flags; callers should say so rather than
    report "no red flags".
    """
    unasked = np.logical_and.reduce([_unknown(df, name) for name in RED_FLAG_FIELDS])
    return pd.Series(unasked, index=df.index, name="red_flags_unasked")


# --------------------------------------------------------------------------------------------
# "Mechanical Pain vs Neurological Pain"
# --------------------------------------------------------------------------------------------

MECHANISMS: tuple[str, ...] = ("neurological", "mechanical", "mixed", "unclear")
MECHANISM_DTYPE = pd.CategoricalDtype(list(MECHANISMS))
_NEURO_SIGNS = ("numbness", "tingling", "weakness", "reflex_changes")


def mechanism_scores(df: pd.DataFrame) -> pd.DataFrame:
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
    * ``pain_region`` back_only - "Localized to the lower back or a specific region of the leg".

    "Changes with posture" is not scored: the article gives posture-dependence to both kinds
    (e.g. disc herniation worse sitting, stenosis worse standing). ``heaviness_fatigue`` scores
    neither ("heaviness or fatigue rather than sharp pain" is stenosis' claudication).

    Returns
    -------
    pandas.DataFrame
        Integer columns ``neurological`` and ``mechanical``, indexed like ``df``.
    """
    neuro_sign = np.logical_or.reduce([_is(df, name, True) for name in _NEURO_SIGNS])
    neurological = (
        _in(df, "pain_quality", ("sharp_electric", "burning")).astype(np.int64)
        + _is(df, "below_knee", True)
        + neuro_sign
        + _is(df, "worse_at_night", True)
    )
    mechanical = (
        _is(df, "pain_quality", "dull_aching").astype(np.int64)
        + _is(df, "better_rest_movement", True)
        + _is(df, "pain_region", "back_only")
    )
    return pd.DataFrame({"neurological": neurological, "mechanical": mechanical}, index=df.index)


def pain_mechanism(df: pd.DataFrame) -> pd.Series:
    """Mechanical, neurological, mixed or unclear pain, from :func:`mechanism_scores`.

    Article: "Understanding the difference between mechanical pain and neurological pain is
    critical because treatment strategies differ." With N neurological and M mechanical points:

    * ``"unclear"`` - no point either way (N = M = 0);
    * ``"mixed"`` - both kinds well supported (N >= 2 and M >= 2), or a tie (N = M > 0);
    * otherwise the side with more points: ``"neurological"`` (N > M) or ``"mechanical"``.

    Returns
    -------
    pandas.Series
        Categorical over :data:`MECHANISMS`, named ``pain_mechanism``, indexed like ``df``.
    """
    scores = mechanism_scores(df)
    n = scores["neurological"].to_numpy()
    m = scores["mechanical"].to_numpy()
    code = np.select(
        [(n == 0) & (m == 0), ((n >= 2) & (m >= 2)) | (n == m), n > m],
        [MECHANISMS.index("unclear"), MECHANISMS.index("mixed"), MECHANISMS.index("neurological")],
        MECHANISMS.index("mechanical"),
    )
    return pd.Series(
        pd.Categorical.from_codes(code, dtype=MECHANISM_DTYPE),
        index=df.index,
        name="pain_mechanism",
    )


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


def _severe_weakness(df: pd.DataFrame) -> np.ndarray:
    """Proxy for the article's "Severe leg weakness develops": weakness that is getting worse."""
    worsening = _is(df, "progressive_weakness", True) | _is(df, "progressive_symptoms", True)
    return _is(df, "weakness", True) & worsening


def _progressive_deficit(df: pd.DataFrame) -> np.ndarray:
    """The article's "progressive weakness or neurological deficits" (MRI and surgery sections).

    Fires on progressive leg weakness, or progressive nerve symptoms together with a measurable
    deficit (weakness or changed reflexes).
    """
    deficit = _is(df, "weakness", True) | _is(df, "reflex_changes", True)
    return _is(df, "progressive_weakness", True) | (_is(df, "progressive_symptoms", True) & deficit)


def _surgery_considered(df: pd.DataFrame, mechanism: np.ndarray | None = None) -> np.ndarray:
    """Proxy for "Surgery is being considered" from the article's "Surgery" section.

    Surgery "is considered only when: There are progressive neurological deficits; Severe leg
    weakness develops; Pain remains disabling despite conservative therapy". The intake does not
    grade severity or disability, so the proxies are: progressive deficit (as in
    :func:`_progressive_deficit`), severe weakness = weakness that is progressing, and disabling
    pain despite conservative therapy = conservative care failed while the pain is neurological
    (:func:`pain_mechanism`, passed in when the caller already has it) and the leg pain is worse
    than the back pain.
    """
    if mechanism is None:
        mechanism = pain_mechanism(df).to_numpy()
    disabling = (
        _is(df, "conservative_care_failed", True)
        & _is(df, "leg_pain_worse_than_back", True)
        & (mechanism == "neurological")
    )
    return _progressive_deficit(df) | _severe_weakness(df) | disabling


def _red_flags_present(df: pd.DataFrame, red_flag: Any = None) -> np.ndarray:
    return red_flag_rules(df).to_numpy().any(axis=1) | _decision(red_flag, len(df))


def mri_indication(
    df: pd.DataFrame, red_flag: pd.Series | None = None
) -> tuple[pd.Series, list[list[str]]]:
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
    df : pandas.DataFrame
        Validated cases.
    red_flag : pandas.Series of bool, optional
        An extra red-flag decision per row, aligned by position.

    Returns
    -------
    indicated : pandas.Series of bool
        Named ``mri_indicated``, indexed like ``df``.
    reasons : list of list of str
        Per row, the reason codes that apply, in the order above.
    """
    flags = {
        "persistent_beyond_6_8_weeks": (
            (_number(df, "duration_weeks") >= PERSISTENT_WEEKS)
            & _is(df, "conservative_care_failed", True)
        ),
        "progressive_neurological_deficit": _progressive_deficit(df),
        "surgery_considered": _surgery_considered(df),
        "red_flags_present": _red_flags_present(df, red_flag),
        "already_imaged": _in(df, "mri_finding", _IMAGED),
    }
    matrix = np.column_stack(list(flags.values()))
    indicated = matrix[:, : len(MRI_CRITERIA)].any(axis=1)
    reasons = [list(compress(flags, row)) for row in matrix]
    return pd.Series(indicated, index=df.index, name="mri_indicated"), reasons


# --------------------------------------------------------------------------------------------
# The next step: "Red Flags", "Imaging", "Evidence-Based Treatment Options"
# --------------------------------------------------------------------------------------------

NEXT_STEPS: tuple[str, ...] = (
    "urgent_evaluation",
    "imaging_and_specialist_review",
    "conservative_care",
)
NEXT_STEP_DTYPE = pd.CategoricalDtype(list(NEXT_STEPS))

ADVICE_TEXT: dict[str, str] = {
    "urgent_evaluation": (
        "Seek urgent care: red flags require immediate medical evaluation. These cases are rare "
        "but indicate potentially serious underlying conditions that require prompt evaluation."
    ),
    "imaging_and_specialist_review": (
        "MRI is most useful now, interpreted in context with clinical symptoms: treat the "
        "patient, not the scan. Clinical evaluation and symptom patterns are far more "
        "informative than imaging alone."
    ),
    "conservative_care": (
        "Most cases of radiating leg pain do not require surgery; conservative management "
        "remains the first-line approach."
    ),
    "activity_modification": (
        "Activity modification: prolonged rest can slow recovery and increase stiffness. Avoid "
        "positions that worsen pain, maintain gentle movement to keep muscles and joints active, "
        "and gradually reintroduce loading to rebuild strength and endurance."
    ),
    "physical_therapy": (
        "Physical therapy focused on spinal stability and core strength, hip and lower "
        "extremity mobility, nerve glide techniques to reduce irritation, and load tolerance "
        "training to improve functional capacity. Random or generic exercises are rarely "
        "effective for radiating leg pain."
    ),
    "anti_inflammatory": (
        "Anti-inflammatory strategies for short-term symptom relief: NSAIDs under medical "
        "supervision, heat or cold therapy depending on comfort, and activity pacing to avoid "
        "aggravating structures. These manage symptoms but do not address the underlying cause."
    ),
    "epidural_steroid_injection": (
        "Epidural steroid injections may help when inflammation is a dominant contributor to "
        "nerve irritation and pain limits participation in rehabilitation. They do not fix discs "
        "and are intended to facilitate recovery, not replace conservative care."
    ),
    "surgery": (
        "Surgical intervention is considered only when there are progressive neurological "
        "deficits, severe leg weakness develops, or pain remains disabling despite conservative "
        "therapy."
    ),
    "mechanical_focus": ("Mechanical pain: treatment focuses on restoring mobility and strength."),
    "neurological_focus": ("Neurological pain may require targeted nerve-focused interventions."),
}
"""Every advice text of :func:`next_step`, by code, in the article's words ("Red Flags",
"Imaging", "Evidence-Based Treatment Options", "Mechanical Pain vs Neurological Pain")."""


def _advice_codes(
    step: np.ndarray, mechanism: np.ndarray, injection: np.ndarray, surgery: np.ndarray
) -> list[list[str]]:
    """Advice codes per row: the step, then the treatment options that apply."""
    urgent = NEXT_STEPS.index("urgent_evaluation")
    out: list[list[str]] = []
    for s, mech, inj, surg in zip(step, mechanism, injection, surgery, strict=True):
        codes = [NEXT_STEPS[s]]
        if s != urgent:
            codes += ["activity_modification", "physical_therapy", "anti_inflammatory"]
            codes += ["epidural_steroid_injection"] * bool(inj) + ["surgery"] * bool(surg)
            if mech in ("mechanical", "neurological"):
                codes.append(f"{mech}_focus")
        out.append(codes)
    return out


def next_step(
    df: pd.DataFrame,
    red_flag: pd.Series | None = None,
    mri_indicated: pd.Series | None = None,
) -> pd.DataFrame:
    """The next step for each case and the article's options that go with it.

    * ``urgent_evaluation`` - any red flag answered ``True``, or ``red_flag`` (the model's
      red-flag decision) is true: "Seek urgent care if you experience ...". No treatment options
      are listed: evaluation comes first.
    * ``imaging_and_specialist_review`` - MRI is indicated (:func:`mri_indication`).
    * ``conservative_care`` - otherwise: "conservative management remains the first-line
      approach".

    Outside urgent evaluation the advice lists activity modification, physical therapy and
    anti-inflammatory strategies; an epidural steroid injection when "inflammation is a dominant
    contributor" and "pain limits participation in rehabilitation" (proxy: neurological pain,
    :func:`pain_mechanism`, with ``conservative_care_failed``); surgery only when the article's
    conditions hold (proxy: ``surgery_considered`` of :func:`mri_indication`); and the
    mechanical or neurological treatment focus.

    Parameters
    ----------
    df : pandas.DataFrame
        Validated cases.
    red_flag : pandas.Series of bool, optional
        The model's red-flag decision per row, aligned by position.
    mri_indicated : pandas.Series of bool, optional
        The ``indicated`` result of :func:`mri_indication` when the caller already has it
        (aligned by position); computed here otherwise.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``df``, with columns ``next_step`` (categorical over :data:`NEXT_STEPS`),
        ``advice`` (list of texts from :data:`ADVICE_TEXT`) and ``advice_codes`` (their keys).
    """
    urgent = _red_flags_present(df, red_flag)
    if mri_indicated is None:
        mri_indicated, _ = mri_indication(df, red_flag)
    indicated = _decision(mri_indicated, len(df), "mri_indicated")
    step = np.where(urgent, 0, np.where(indicated, 1, 2))
    mechanism = pain_mechanism(df).to_numpy()
    injection = (mechanism == "neurological") & _is(df, "conservative_care_failed", True)
    codes = _advice_codes(step, mechanism, injection, _surgery_considered(df, mechanism))
    return pd.DataFrame(
        {
            "next_step": pd.Categorical.from_codes(step, dtype=NEXT_STEP_DTYPE),
            "advice": [[ADVICE_TEXT[c] for c in row] for row in codes],
            "advice_codes": codes,
        },
        index=df.index,
    )


# --------------------------------------------------------------------------------------------
# The causes: a careful reader's points system
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """``points`` for ``cause`` when the answer to ``field`` satisfies ``op value``.

    ``op`` is ``"is"`` (equal), ``"in"`` (one of a tuple) or ``"gt"`` (numeric, greater than).
    Unknown answers never satisfy a rule.
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
    Rule("mechanical_pain", "pain_region", "is", "back_only", 1.5, "Localized to the lower back"),
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

    Returns
    -------
    pandas.DataFrame
        One float column per cause (order of ``vignettes.schema.CAUSES``), indexed like ``X``.
    """
    points = np.zeros((len(cases), len(CAUSES)))
    for rule in CAUSE_RULES:
        points[:, CAUSES.index(rule.cause)] += rule.points * rule.matches(cases)
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
        fired = red_flag_rules(validate_frame(X)).to_numpy().any(axis=1)
        return np.where(fired, self.red_flag_fired_proba, self.red_flag_baseline_proba)

    def predict_red_flag(self, X: pd.DataFrame) -> np.ndarray:
        """The red-flag decision: any red-flag sign answered ``True``."""
        check_is_fitted(self, "classes_")
        return red_flag_rules(validate_frame(X)).to_numpy().any(axis=1)
