"""The article's clinical reasoning as plain rules over validated intakes: a frame, or one case.

Every rule here quotes the article "Lower Back Pain Radiates to the Leg: 7 Key Causes, Diagnosis &
Treatments"; the nerve-root table, red flags, urgency tiers, MRI criteria and advice are data in
``vignettes/article.toml`` (each entry with its source), which this module applies. Where the
article gives no operational threshold, the proxy chosen is stated in the docstring. The functions
take either a frame with the contract's columns and dtypes (as returned by
:func:`model.intake.validate_frame` or :func:`vignettes.generate`) and answer with vectorised
pandas objects, or one case as returned by :func:`model.intake.validate_case` (a dict, ``None`` =
unknown) and answer with plain Python values. Both go through the same rule code: the primitives of
:mod:`model.answers` read a frame column as a NumPy array or a case's answer as a scalar, and the
rules combine them with ``&`` and ``|``, which mean the same for both. One case therefore costs
microseconds, not a one-row DataFrame's milliseconds, and ``tests/test_rules.py`` checks that every
rule gives each row of a frame what it gives that row as a case. An unknown answer (``<NA>``,
``None``) or an absent column never makes a rule fire. The rules do not validate: call
:mod:`model.intake` first.

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

The rules baseline (the seven causes scored by the features the article names for each) is in
``training/article_rules.py``: only training uses it.
"""

from __future__ import annotations

from itertools import compress
from typing import Any

import numpy as np
import pandas as pd

from model.answers import (
    Answers,
    all_of,
    answer_in,
    answer_is,
    any_of,
    choose,
    count,
    decision,
    is_one_case,
    is_unknown,
    number,
    rows,
)
from vignettes.article import URGENCY_TIERS, load_article
from vignettes.knowledge import KnowledgeError
from vignettes.schema import CAUSES, MRI_FINDINGS, RED_FLAG_FIELDS

FACTS = load_article()
"""The article's facts as data (``vignettes/article.toml``): the nerve-root table, red flags,
urgency tiers, MRI criteria and advice, each with its source."""

__all__ = [
    "ADVICE_CODES",
    "ADVICE_TEXT",
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
    "any_red_flag",
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


# --------------------------------------------------------------------------------------------
# "How to Tell Which Nerve Is Involved"
# --------------------------------------------------------------------------------------------

DERMATOME_ROOT: dict[str, str] = {r.region: r.root for r in FACTS.pain_regions if r.root}
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
        answer_is(df, "buttock_pain", True)
        & answer_is(df, "back_pain", False)
        & answer_in(df, "pain_region", SCIATIC_REGIONS)
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
    if piriformis_likely is not None and not is_one_case(df) and np.ndim(piriformis_likely) == 0:
        piriformis_likely = np.full(len(df), bool(piriformis_likely))  # one cause for every row
    sciatic = answer_in(df, "pain_region", SCIATIC_REGIONS) & (
        _piriformis_pattern(df) | decision(piriformis_likely, rows(df), "piriformis_likely")
    )
    roots = _root_names(df)
    if is_one_case(df):
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
(from ``vignettes/article.toml``)."""


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
    fired = {name: answer_is(df, name, True) for name in RED_FLAG_FIELDS}
    return pd.DataFrame(fired, index=df.index) if isinstance(df, pd.DataFrame) else fired


def fired_red_flags(df: Answers) -> list[list[str]] | list[str]:
    """Per row, the names of the red-flag fields answered ``True`` (schema order).

    For one case, that case's list.
    """
    if is_one_case(df):
        return [name for name in RED_FLAG_FIELDS if answer_is(df, name, True)]
    fired = np.column_stack([answer_is(df, name, True) for name in RED_FLAG_FIELDS])
    return [list(compress(RED_FLAG_FIELDS, row)) for row in fired]


def any_red_flag(df: Answers) -> Any:
    """Whether any red-flag sign is answered ``True``: a bool array per row, or one bool."""
    return any_of([answer_is(df, name, True) for name in RED_FLAG_FIELDS])


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
    return all_of([is_unknown(df, name) for name in RED_FLAG_FIELDS])


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
    neurological = count(
        answer_in(df, "pain_quality", ("sharp_electric", "burning")),
        answer_is(df, "below_knee", True),
        any_of([answer_is(df, name, True) for name in _NEURO_SIGNS]),
        answer_is(df, "worse_at_night", True),
    )
    mechanical = count(
        answer_is(df, "pain_quality", "dull_aching"),
        answer_is(df, "better_rest_movement", True),
        answer_in(df, "pain_region", _LOCALISED),
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
    return choose(
        [(n == 0) & (m == 0), ((n >= 2) & (m >= 2)) | (n == m), n > m],
        [MECHANISMS.index("unclear"), MECHANISMS.index("mixed"), MECHANISMS.index("neurological")],
        MECHANISMS.index("mechanical"),
    )


def _mechanism_names(df: Answers) -> Any:
    """:func:`pain_mechanism` as a name per row (object array) or one name."""
    code = _mechanism_code(df)
    return MECHANISMS[code] if is_one_case(df) else np.asarray(MECHANISMS, dtype=object)[code]


# --------------------------------------------------------------------------------------------
# "Imaging: When MRI Helps (And When It Doesn't)"
# --------------------------------------------------------------------------------------------

MRI_REASON_TEXT: dict[str, str] = dict(FACTS.mri_criteria)
"""Reason codes of :func:`mri_indication`, with the article's words ("MRI is most useful when:"),
from ``vignettes/article.toml``. ``already_imaged`` is information only and does not make MRI
indicated."""

MRI_CRITERIA: tuple[str, ...] = tuple(
    code for code in MRI_REASON_TEXT if code not in FACTS.mri_information
)
PERSISTENT_WEEKS = 6.0
"""The lower end of the article's "beyond 6-8 weeks"."""
_IMAGED = MRI_FINDINGS[1:]  # every finding but "not_done": an MRI was done


def _severe_weakness(df: Answers) -> Any:
    """Proxy for the article's "Severe leg weakness develops": weakness that is getting worse."""
    worsening = answer_is(df, "progressive_weakness", True) | answer_is(
        df, "progressive_symptoms", True
    )
    return answer_is(df, "weakness", True) & worsening


def _progressive_deficit(df: Answers) -> Any:
    """The article's "progressive weakness or neurological deficits" (MRI and surgery sections).

    Fires on progressive leg weakness, or progressive nerve symptoms together with a measurable
    deficit (weakness or changed reflexes).
    """
    deficit = answer_is(df, "weakness", True) | answer_is(df, "reflex_changes", True)
    return answer_is(df, "progressive_weakness", True) | (
        answer_is(df, "progressive_symptoms", True) & deficit
    )


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
    return reported | decision(red_flag, rows(df))


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
            (number(df, "duration_weeks") >= PERSISTENT_WEEKS)
            & answer_is(df, "conservative_care_failed", True)
        ),
        "progressive_neurological_deficit": _progressive_deficit(df),
        "surgery_considered": _surgery_considered(df, mechanism, cause),
        "red_flags_present": _red_flags_present(df, red_flag, reported),
        "already_imaged": answer_in(df, "mri_finding", _IMAGED),
    }


# --------------------------------------------------------------------------------------------
# Urgency, the next step and advice ("Red Flags", "Imaging", "Evidence-Based Treatment
# Options", "Why Chronic Radiating Pain Persists"): the engine for vignettes/article.toml
# --------------------------------------------------------------------------------------------

URGENCY_DTYPE = pd.CategoricalDtype(list(URGENCY_TIERS))
URGENCY_ACTION: dict[str, str] = dict(FACTS.urgency_action)
"""What each urgency tier asks for, from ``vignettes/article.toml``."""
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
    "beyond_6_weeks",
    "neurogenic_claudication",
    *(f"likely_{cause}" for cause in CAUSES),
)
"""The named conditions ``article.toml``'s advice may use (``when_all``, ``when_any``,
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
* ``beyond_6_weeks`` - ``duration_weeks`` >= :data:`PERSISTENT_WEEKS` (past the article's
  "6-8 weeks", so "review if not improving by then" no longer fits);
* ``neurogenic_claudication`` - leg pain worse walking and eased by sitting or bending forward
  (Suri 2010's neurogenic claudication, the pattern of central canal stenosis whatever the
  model's top cause: NICE NG59 advises against epidural injections for it);
* ``likely_<cause>`` - the model's most likely cause (false when no cause is given).
"""

_unknown_conditions = sorted(
    {c for item in FACTS.advice for c in item.conditions} - set(CONDITIONS)
)
if _unknown_conditions:
    raise KnowledgeError(
        f"article.toml advice: unknown conditions {_unknown_conditions}; known: {list(CONDITIONS)}"
    )


def _advice_text(item: Any) -> str:
    """An advice item's words; ``{return_if_<tier>}`` becomes the safety-netting words of the
    red flags of that tier (emergency or urgent)."""
    if "{return_if_" not in item.text:
        return str(item.text)
    words = {
        f"return_if_{tier}": "; or if ".join(f.return_if for f in FACTS.red_flags if f.tier == tier)
        for tier in ("emergency", "urgent")
    }
    return str(item.text.format(**words))


ADVICE_TEXT: dict[str, str] = {item.code: _advice_text(item) for item in FACTS.advice}
"""Every advice text, by code (the documented vocabulary of ``advice_codes``), in the order
given; from ``vignettes/article.toml``, which also holds each item's source and conditions."""
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
    n = rows(df)
    off_spine = _likely(cause, "piriformis_syndrome", n) | _likely(cause, "mechanical_pain", n)
    return (
        answer_is(df, "conservative_care_failed", True)
        & answer_is(df, "leg_pain_worse_than_back", True)
        & (mechanism == "neurological")
        & (number(df, "duration_weeks") >= PERSISTENT_WEEKS)
        & _not(off_spine)
    )


def _conditions(
    df: Answers, mechanism: Any, mri_flags: dict[str, Any], indicated: Any, cause: Any
) -> dict[str, Any]:
    """Every :data:`CONDITIONS` entry, per row (bool arrays) or for one case (bools)."""
    n = rows(df)
    out = {
        "red_flag_questions_unanswered": any_of([is_unknown(df, f) for f in RED_FLAG_FIELDS]),
        "mri_indicated": indicated,
        "already_imaged": mri_flags["already_imaged"],
        "mechanical_pain_pattern": mechanism == "mechanical",
        "neurological_pain_pattern": mechanism == "neurological",
        "radicular_pain": answer_in(df, "pain_region", _ROOT_REGIONS)
        | answer_is(df, "below_knee", True),
        "conservative_care_failed": answer_is(df, "conservative_care_failed", True),
        "progressive_deficit": _progressive_deficit(df),
        "severe_weakness": _severe_weakness(df),
        "disabling_after_conservative_care": _disabling(df, mechanism, cause),
        "chronic": number(df, "duration_weeks") >= CHRONIC_WEEKS,
        "beyond_6_weeks": number(df, "duration_weeks") >= PERSISTENT_WEEKS,
        "neurogenic_claudication": answer_is(df, "worse_walking", True)
        & (answer_is(df, "better_sitting", True) | answer_is(df, "better_bending_forward", True)),
    }
    return out | {f"likely_{c}": _likely(cause, c, n) for c in CAUSES}


def _urgency_code(df: Answers, red_flag_model: Any = None) -> Any:
    """Index into :data:`URGENCY_TIERS`: reported signs by rule, then the model, then routine."""
    signs = [
        any_of([answer_is(df, f, True) for f in _SIGNS_OF_TIER[t]]) for t in ("emergency", "urgent")
    ]
    return choose([*signs, decision(red_flag_model, rows(df))], [0, 1, 2], 3)


def urgency(df: Answers, red_flag_model: Any = None) -> pd.Series | str:
    """The urgency tier of each case.

    * ``"emergency"`` - a cauda equina sign is reported (bladder or bowel dysfunction, saddle
      numbness): same-day emergency assessment;
    * ``"urgent"`` - any other red-flag sign is reported: prompt specialist assessment;
    * ``"review"`` - no sign is reported but ``red_flag_model`` (the model's decision,
      probability at or above the served threshold) is true: clinician review soon;
    * ``"routine"`` - otherwise: conservative care first, with safety-netting.

    Emergency and urgent come from reported signs only (which tier a sign sets is data:
    ``vignettes/article.toml``); the model can raise a case to review, never lower a tier.

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
    """The advice codes that apply (one list, or one list per row), in ``article.toml`` order."""
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
            mask &= any_of([conditions[c] for c in item.when_any])
        for c in item.unless_any:
            mask &= ~conditions[c]
        masks.append(mask)
    return [list(compress(ADVICE_CODES, row)) for row in np.column_stack(masks)]


def _step_code(tier: Any, indicated: Any, imaged: Any) -> Any:
    """Index into :data:`NEXT_STEPS` (per row, or for one case)."""
    return choose(
        [tier == 0, tier == 1, indicated & _not(imaged), indicated & imaged, tier == 2],
        [0, 1, 2, 3, 4],
        5,
    )


def _unanswered(df: Answers) -> list[Any]:
    """The red-flag questions left unanswered, schema order (one list, or one per row)."""
    if is_one_case(df):
        return [name for name in RED_FLAG_FIELDS if is_unknown(df, name)]
    unknown = np.column_stack([is_unknown(df, name) for name in RED_FLAG_FIELDS])
    return [list(compress(RED_FLAG_FIELDS, row)) for row in unknown]


def next_step(
    df: Answers, red_flag: Any = None, mri_indicated: Any = None, cause: Any = None
) -> Any:
    """The urgency, the next step and the advice that goes with it.

    The next step (:data:`NEXT_STEPS`) follows the urgency (:func:`urgency`), then the article's
    MRI criteria (:func:`mri_indication`; an MRI already on file is read in context, not
    repeated), then the model's review alert, then conservative care. The advice is every item
    of ``vignettes/article.toml`` whose tier and conditions (:data:`CONDITIONS`) hold: evaluation
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
    one = is_one_case(df)
    tier = _urgency_code(df, red_flag_model)
    mechanism = _mechanism_names(df)
    flags = _mri_flags(df, None, mechanism, None, cause)
    indicated, reasons = _mri_result(flags)
    if mri_indicated is not None:
        indicated = decision(mri_indicated, rows(df), "mri_indicated")
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
        "nerve_territory": nerve_territory(df, _likely(cause, "piriformis_syndrome", rows(df))),
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


def _names(names: tuple[str, ...], code: Any) -> Any:
    """``names[code]`` for one code, or an object array of names for an array of codes."""
    return names[code] if isinstance(code, int) else np.asarray(names, dtype=object)[code]


def _root_names(df: Answers) -> Any:
    """Nerve root per row (object array, ``None`` for no root) or for one case."""
    if is_one_case(df):
        return dermatome_root(df.get("pain_region"))
    if "pain_region" not in df:
        return np.full(len(df), None, dtype=object)
    roots = _root_series(df["pain_region"]).astype(object).to_numpy()
    return np.where(pd.isna(roots), None, roots)
