"""The article's clinical reasoning, applied: an engine over ``vignettes/article.toml``.

Every clinical fact and rule is data in ``vignettes/article.toml`` (each entry with its source):
the nerve-root table, the red flags, the named predicates (a progressive deficit, the
claudication pattern, the sciatic regions, the 6- and 12-week thresholds, ...), the pain
mechanism's points, the urgency rules (which answers set which tier, in which timeframe, for
which suspected serious condition), the MRI criteria and the advice with its audience. They are
written in the condition language of :mod:`vignettes.conditions` and evaluated by
:class:`model.conditions.Evaluation`, once per call, for a frame of validated intakes (vectorised
NumPy arrays, one value per row) or for one validated case (plain Python values) alike.
``tests/test_rules.py`` checks that every rule gives each row of a frame what it gives that row
as a case. An unknown answer (``<NA>``, ``None``) never makes a rule fire, except the tests of
unknown answers themselves (the red-flag screen). The rules do not validate: call
:mod:`model.intake` first. This module holds no clinical constant.

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
MRI_REASON_TEXT, MRI_CRITERIA, mri_indication
    "Imaging: When MRI Helps (And When It Doesn't)".
URGENCY_TIERS, URGENCY_ACTION, URGENCY_RULES, RED_FLAG_TIER, TIMEFRAMES, urgency
    The tier and timeframe: the urgency rules over the answers and the model's two decisions.
NEXT_STEPS, ADVICE_TEXT, ADVICE_CODES, ADVICE_AUDIENCE, CONDITIONS, next_step
    The next step, and the advice that fits the tier, the cause and the course.
triage
    All of the above for the served prediction, in one pass.

The rules baseline (the seven causes scored by the features the article names for each) is in
``training/article_rules.py``: only training uses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import compress
from typing import Any

import numpy as np
import pandas as pd

from model.answers import (
    Answers,
    answer_is,
    any_of,
    choose,
    decision,
    is_one_case,
    is_unknown,
    rows,
)
from model.conditions import Evaluation
from vignettes.article import MECHANISMS, TIMEFRAMES, URGENCY_TIERS, condition_graph, load_article
from vignettes.conditions import ENGINE_FACTS
from vignettes.schema import CAUSES, RED_FLAG_FIELDS

FACTS = load_article()
"""The article's facts as data (``vignettes/article.toml``), checked at import."""

__all__ = [
    "ADVICE_AUDIENCE",
    "ADVICE_CODES",
    "ADVICE_TEXT",
    "CONDITIONS",
    "DERMATOME_ROOT",
    "MECHANISMS",
    "MRI_CRITERIA",
    "MRI_REASON_TEXT",
    "NEXT_STEPS",
    "RED_FLAG_TEXT",
    "RED_FLAG_TIER",
    "SCIATIC_TERRITORY",
    "TIMEFRAMES",
    "TRIAGE_KEYS",
    "URGENCY_ACTION",
    "URGENCY_RULES",
    "URGENCY_TIERS",
    "CaseVariants",
    "any_red_flag",
    "dermatome_root",
    "fired_red_flags",
    "fired_rules",
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


def _evaluation(
    df: Answers,
    red_flag_model: Any = None,
    red_flag_urgent: Any = None,
    cause: Any = None,
    red_flag_dont_know: Any = None,
) -> Evaluation:
    """One call's :class:`~model.conditions.Evaluation`, with the model's decisions and cause."""
    facts = _engine_facts(rows(df), red_flag_model, red_flag_urgent, cause, red_flag_dont_know)
    return Evaluation(df, FACTS, facts)


def _dont_know_fields(value: Any) -> frozenset[str]:
    """One case's red-flag "don't know" answers: a collection of red-flag field names."""
    fields = frozenset(value)
    unknown = fields - set(RED_FLAG_FIELDS)
    if unknown:
        raise ValueError(
            f"red_flag_dont_know: {sorted(unknown)} are not red-flag fields; expected some of "
            f"{list(RED_FLAG_FIELDS)}"
        )
    return fields


def _dont_know_row(value: Any) -> tuple[bool, frozenset[str]]:
    """One case's ``red_flag_dont_know``: (some red-flag question not known, which ones)."""
    if value is None or isinstance(value, bool | np.bool_):
        return bool(value), frozenset()
    fields = _dont_know_fields(value)
    return bool(fields), fields


def dont_know_facts(value: Any, n: int | None) -> dict[str, Any]:
    """The engine facts of the red-flag questions answered "don't know".

    ``value`` is, for one case, a bool (some red-flag question, which one not said) or the
    red-flag field names; for a frame, one of those per row (``None``: none). Gives
    ``red_flag_dont_know`` (any of them) and ``dont_know_<field>`` for each red-flag field.
    """
    names = [f"dont_know_{f}" for f in RED_FLAG_FIELDS]
    if value is None:  # the usual call: nothing to read per row
        return {name: decision(None, n) for name in ["red_flag_dont_know", *names]}
    if n is None:
        some, fields = _dont_know_row(value)
        return {"red_flag_dont_know": some} | {
            f"dont_know_{f}": f in fields for f in RED_FLAG_FIELDS
        }
    given = [_dont_know_row(v) for v in value]
    if len(given) != n:
        raise ValueError(f"red_flag_dont_know: expected {n} values (one per row), got {len(given)}")
    each = {
        f"dont_know_{f}": np.array([f in fields for _, fields in given], dtype=bool)
        for f in RED_FLAG_FIELDS
    }
    return {"red_flag_dont_know": np.array([some for some, _ in given], dtype=bool)} | each


def _engine_facts(
    n: int | None,
    red_flag_model: Any,
    red_flag_urgent: Any,
    cause: Any,
    red_flag_dont_know: Any = None,
) -> dict[str, Any]:
    """The facts the engine supplies: the model's decisions and its likely cause, and whether
    a red-flag question was answered "don't know" (the caller knows what was asked)."""
    inputs: dict[str, Any] = {
        "model_review": decision(red_flag_model, n, "red_flag_model"),
        "model_urgent": decision(red_flag_urgent, n, "red_flag_urgent"),
        **dont_know_facts(red_flag_dont_know, n),
    }
    if cause is not None:
        if n is not None and np.ndim(cause) == 0:
            cause = np.full(n, cause, dtype=object)  # one cause for every row
        names = cause if n is None else np.asarray(cause, dtype=object)
        inputs |= {f"likely_{c}": names == c for c in CAUSES}
    return inputs


# --------------------------------------------------------------------------------------------
# "How to Tell Which Nerve Is Involved"
# --------------------------------------------------------------------------------------------

DERMATOME_ROOT: dict[str, str] = {r.region: r.root for r in FACTS.pain_regions if r.root}
"""The article's table "How to Tell Which Nerve Is Involved": pain location -> likely nerve root.
``back_only`` and ``buttock_thigh`` are not in the table: pain that stays in the back, or reaches
the buttock or thigh without following a root (somatic referred pain), points to no root."""

ROOT_DTYPE = pd.CategoricalDtype(list(DERMATOME_ROOT.values()))


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
"""What a piriformis-like pattern points to: the sciatic nerve's territory, not a spinal root
(``sciatic_nerve_territory`` in ``article.toml``)."""


def nerve_territory(df: Answers, piriformis_likely: Any = None) -> Any:
    """The nerve the pain pattern points to: a spinal root, or the sciatic nerve off the spine.

    Where ``article.toml``'s ``sciatic_nerve_territory`` holds (a piriformis-like pattern, or
    ``piriformis_likely``, e.g. the model's most likely cause, with the pain in the sciatic
    regions), :data:`SCIATIC_TERRITORY`; otherwise the root of :func:`dermatome_root` as
    ``"<root> nerve root"``, or ``None`` where it names none.

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
    n = rows(df)
    if piriformis_likely is not None and n is not None and np.ndim(piriformis_likely) == 0:
        piriformis_likely = np.full(n, bool(piriformis_likely))
    likely = decision(piriformis_likely, n, "piriformis_likely")
    return _territory(Evaluation(df, FACTS, {"likely_piriformis_syndrome": likely}), df)


def _territory(ev: Evaluation, df: Answers) -> Any:
    sciatic = ev["sciatic_nerve_territory"]
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

    A sign fires only on a ``True`` answer; ``False`` and unknown do not fire.

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
    return _screen_code(df) == SCREENS.index("none")


SCREENS: tuple[str, ...] = ("complete", "partial", "none")
"""``red_flag_screen``: all six red-flag questions answered, some, or none."""


def _screen_code(df: Answers) -> Any:
    """Index into :data:`SCREENS` per row, or for one case."""
    unknown = [is_unknown(df, name) for name in RED_FLAG_FIELDS]
    if is_one_case(df):
        return 2 if all(unknown) else (1 if any(unknown) else 0)
    u = np.column_stack(unknown)
    return np.select([u.all(axis=1), u.any(axis=1)], [2, 1], 0)


# --------------------------------------------------------------------------------------------
# "Mechanical Pain vs Neurological Pain"
# --------------------------------------------------------------------------------------------

MECHANISM_DTYPE = pd.CategoricalDtype(list(MECHANISMS))


def mechanism_scores(df: Answers) -> pd.DataFrame | dict[str, int]:
    """Points for neurological and for mechanical pain, one per feature of ``[mechanism]``.

    ``article.toml`` lists the features (article, "Neurological Pain" and "Mechanical Pain"):
    sharp or burning quality, pain below the knee, any nerve sign, worse at night and the
    neurogenic claudication pattern for neurological pain; dull aching, better with rest or
    gentle movement, and pain localised to the back or one region for mechanical pain.

    Returns
    -------
    pandas.DataFrame or dict
        Integer columns ``neurological`` and ``mechanical``, indexed like ``df``; for one case, a
        dict with those two keys.
    """
    scores = Evaluation(df, FACTS).mechanism_points()
    return pd.DataFrame(scores, index=df.index) if isinstance(df, pd.DataFrame) else scores


def pain_mechanism(df: Answers) -> pd.Series | str:
    """Mechanical, neurological, mixed or unclear pain, from :func:`mechanism_scores`.

    With N neurological and M mechanical points: ``"unclear"`` if N = M = 0; ``"mixed"`` if both
    reach ``mixed_at_least`` (2) or they tie; otherwise the side with more points. The
    neurogenic claudication pattern is never read as mechanical (``"mixed"`` instead).

    Returns
    -------
    pandas.Series or str
        Categorical over :data:`MECHANISMS`, named ``pain_mechanism``, indexed like ``df``; for
        one case, the mechanism's name.
    """
    code = Evaluation(df, FACTS).mechanism_code()
    if not isinstance(df, pd.DataFrame):
        return MECHANISMS[code]
    return pd.Series(
        pd.Categorical.from_codes(code, dtype=MECHANISM_DTYPE),
        index=df.index,
        name="pain_mechanism",
    )


# --------------------------------------------------------------------------------------------
# "Imaging: When MRI Helps (And When It Doesn't)"
# --------------------------------------------------------------------------------------------

MRI_REASON_TEXT: dict[str, str] = dict(FACTS.mri_criteria)
"""Reason codes of :func:`mri_indication`, with the article's words ("MRI is most useful when:"),
from ``vignettes/article.toml``. ``already_imaged`` is information only and does not make MRI
indicated."""
MRI_CRITERIA: tuple[str, ...] = tuple(c.code for c in FACTS.mri if c.indicates)
"""The reason codes that make MRI indicated."""


def mri_indication(df: Answers, red_flag: Any = None) -> tuple[Any, list[Any]]:
    """Whether MRI is indicated, and which of the article's criteria apply.

    Article, "Imaging: When MRI Helps": "MRI is most useful when: Pain persists beyond 6-8 weeks
    despite conservative care; There is progressive weakness or neurological deficits; Surgery
    is being considered; Red flags are present". How each criterion reads the answers is its
    ``when`` in ``article.toml`` (the persistence criterion is for radiating pain only, not a
    mechanical pattern; unexplained weight loss alone starts with blood tests). ``already_imaged``
    is information only.

    Parameters
    ----------
    df : pandas.DataFrame or mapping
        Validated cases, or one validated case.
    red_flag : array-like of bool or bool, optional
        An extra red-flag decision per row (e.g. the model's), aligned by position: it adds the
        ``red_flags_present`` reason.

    Returns
    -------
    indicated : pandas.Series of bool, or bool
        Named ``mri_indicated``, indexed like ``df``; for one case, a bool.
    reasons : list of list of str, or list of str
        Per row, the reason codes that apply, in ``article.toml``'s order; for one case, its list.
    """
    ev = Evaluation(df, FACTS)
    extra = decision(red_flag, rows(df))
    flags = _mri_flags(ev)
    flags["red_flags_present"] = flags["red_flags_present"] | extra
    indicated, reasons = _mri_result(flags)
    if not isinstance(df, pd.DataFrame):
        return indicated, reasons
    return pd.Series(indicated, index=df.index, name="mri_indicated"), reasons


def _mri_flags(ev: Evaluation) -> dict[str, Any]:
    return {c.code: ev[f"mri_{c.code}"] for c in FACTS.mri}


def _mri_result(flags: dict[str, Any]) -> tuple[Any, list[Any]]:
    """Whether any indicating criterion applies, and the reason codes."""
    first = flags[MRI_CRITERIA[0]]
    if isinstance(first, bool):
        return any(flags[c] for c in MRI_CRITERIA), [c for c, on in flags.items() if on]
    indicated = np.logical_or.reduce([flags[c] for c in MRI_CRITERIA])
    matrix = np.column_stack(list(flags.values()))
    return indicated, [list(compress(flags, row)) for row in matrix]


# --------------------------------------------------------------------------------------------
# Urgency: the urgency rules of article.toml
# --------------------------------------------------------------------------------------------

URGENCY_DTYPE = pd.CategoricalDtype(list(URGENCY_TIERS))
URGENCY_ACTION: dict[str, str] = dict(FACTS.urgency_action)
"""What each urgency tier asks for in general, from ``vignettes/article.toml``."""
URGENCY_RULES = FACTS.urgency_rules
"""Which answers (and which model decision) set which tier and timeframe, most urgent first."""
_RULE_TIER = np.array([URGENCY_TIERS.index(r.tier) for r in URGENCY_RULES])
_RULE_TIME = np.array([TIMEFRAMES.index(r.timeframe) for r in URGENCY_RULES])
_ROUTINE = URGENCY_TIERS.index("routine")
_NO_TIME = len(TIMEFRAMES)


def _rule_matrix(ev: Evaluation) -> Any:
    """Which rules fire: a list of bools for one case, an (n, rules) array for a frame."""
    fired = [ev[f"trigger_{r.code}"] for r in URGENCY_RULES]
    return fired if ev.n is None else np.column_stack(fired)


def fired_rules(
    df: Answers, red_flag_model: Any = None, cause: Any = None, red_flag_urgent: Any = None
) -> Any:
    """Which urgency rules (:data:`URGENCY_RULES`, in order) fire on each case.

    Returns
    -------
    ndarray of bool or list of bool
        ``(n, rules)`` for a frame; one bool per rule for one case.
    """
    return _rule_matrix(_evaluation(df, red_flag_model, red_flag_urgent, cause))


def _tier_and_time(fired: Any) -> tuple[Any, Any]:
    """The most urgent tier and the shortest timeframe among the rules that fired."""
    if isinstance(fired, list):
        tiers = [t for t, on in zip(_RULE_TIER.tolist(), fired, strict=True) if on]
        times = [t for t, on in zip(_RULE_TIME.tolist(), fired, strict=True) if on]
        return min(tiers, default=_ROUTINE), min(times, default=_NO_TIME)
    tier = np.where(fired, _RULE_TIER, _ROUTINE).min(axis=1)
    time = np.where(fired, _RULE_TIME, _NO_TIME).min(axis=1)
    return tier, time


_ALONE = {f: _tier_and_time(_rule_matrix(Evaluation({f: True}, FACTS))) for f in RED_FLAG_FIELDS}
"""What the urgency rules give a case that reports only this red flag: (tier, timeframe) codes."""
RED_FLAG_TIMEFRAME: dict[str, str | None] = {
    f: (*TIMEFRAMES, None)[time] for f, (_, time) in _ALONE.items()
}
"""The timeframe a reported red-flag sign sets on its own (``now`` for the cauda equina signs,
``same day`` for fever, ...)."""
RED_FLAG_TIER: dict[str, str] = {f: URGENCY_TIERS[tier] for f, (tier, _) in _ALONE.items()}
"""The tier a reported red-flag sign sets on its own (from the urgency rules): ``emergency`` for
the cauda equina signs, ``urgent`` for most others, ``review`` for unexplained weight loss."""


def urgency(df: Answers, red_flag_model: Any = None, red_flag_urgent: Any = None) -> Any:
    """The urgency tier of each case, from ``article.toml``'s urgency rules.

    Every rule whose condition holds fires; the case takes the most urgent tier among them
    (``routine`` when none fires). The model's decisions are two of the rules' facts:
    ``red_flag_model`` (probability at or above the review threshold) sets ``review``, and
    ``red_flag_urgent`` (at or above the upper threshold) sets ``urgent``; they can raise a
    tier, never lower one.

    Parameters
    ----------
    df : pandas.DataFrame or mapping
        Validated cases, or one validated case.
    red_flag_model, red_flag_urgent : array-like of bool or bool, optional
        The model's two decisions per row, aligned by position (one bool for one case).

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
    >>> urgency({"age": 50, "weakness": True, "progressive_symptoms": True})
    'urgent'
    >>> urgency({"age": 40})
    'routine'
    """
    ev = _evaluation(df, red_flag_model, red_flag_urgent)
    tier, _ = _tier_and_time(_rule_matrix(ev))
    if not isinstance(df, pd.DataFrame):
        return URGENCY_TIERS[tier]
    return pd.Series(
        pd.Categorical.from_codes(tier, dtype=URGENCY_DTYPE), index=df.index, name="urgency"
    )


# --------------------------------------------------------------------------------------------
# The next step and the advice
# --------------------------------------------------------------------------------------------

NEXT_STEPS: tuple[str, ...] = (
    "emergency_assessment",
    "urgent_evaluation",
    "imaging_and_specialist_review",
    "specialist_review",
    "clinician_review",
    "conservative_care",
)
"""Next steps, most urgent first: emergency assessment (tier ``emergency``); prompt evaluation
(tier ``urgent``); MRI and specialist review (an MRI criterion holds and no MRI is on file);
specialist review of the MRI on file, read in context (a criterion holds and an MRI was done);
clinician review (tier ``review``); conservative care."""
NEXT_STEP_DTYPE = pd.CategoricalDtype(list(NEXT_STEPS))

CONDITIONS: tuple[str, ...] = tuple(sorted(set(condition_graph(FACTS)) | set(ENGINE_FACTS)))
"""Every named condition an advice item (or another rule) can use: the predicates, the
``mechanism_<name>``, ``trigger_<rule>`` and ``mri_<criterion>`` readings, and the engine's facts
(see ``article.toml``'s header); the yes/no fields can be used too."""


def _advice_text(item: Any) -> str:
    """An advice item's words. ``{return_if_<timeframe>}`` (``{return_if_now}``,
    ``{return_if_same_day}``, ``{return_if_within_days}``, ``{return_if_within_2_weeks}``, ...)
    becomes the safety-netting words of the red flags whose own rule sets that timeframe,
    joined by ``"; or if "``: each sign is told once, in its own timeframe (a patient told
    "within 2 weeks" for weight loss is not told "within days" for it too)."""
    if "{return_if_" not in item.text:
        return str(item.text)
    groups: dict[str, list[str]] = {t.replace(" ", "_"): [] for t in TIMEFRAMES}
    for flag in FACTS.red_flags:
        groups[str(RED_FLAG_TIMEFRAME[flag.field]).replace(" ", "_")].append(flag.return_if)
    for key, words in groups.items():  # a sign the text has no place for would go unsaid
        if words and f"{{return_if_{key}}}" not in item.text:
            raise ValueError(f"advice.{item.code}.text: no {{return_if_{key}}} for {words[0]!r}")
    return str(
        item.text.format(**{f"return_if_{k}": "; or if ".join(v) for k, v in groups.items()})
    )


ADVICE_TEXT: dict[str, str] = {item.code: _advice_text(item) for item in FACTS.advice}
"""Every advice text, by code (the documented vocabulary of ``advice_codes``), in the order
given; from ``vignettes/article.toml``, which also holds each item's source and conditions."""
ADVICE_CODES: tuple[str, ...] = tuple(ADVICE_TEXT)
ADVICE_AUDIENCE: dict[str, str] = {item.code: item.audience for item in FACTS.advice}
"""Whom each advice item speaks to: ``patient`` or ``clinician``."""
_ADVICE_RULES = tuple(
    (item.code, frozenset(URGENCY_TIERS.index(t) for t in item.tiers), item)
    for item in FACTS.advice
)


def _advice_codes(tier: Any, ev: Evaluation) -> list[Any]:
    """The advice codes that apply (one list, or one list per row), in ``article.toml`` order."""
    if isinstance(tier, int):
        return [
            code
            for code, tiers, item in _ADVICE_RULES
            if tier in tiers
            and all(ev[c] for c in item.when_all)
            and (not item.when_any or any(ev[c] for c in item.when_any))
            and not any(ev[c] for c in item.unless_any)
        ]
    masks = []
    for _, tiers, item in _ADVICE_RULES:
        mask = np.isin(tier, list(tiers))
        for c in item.when_all:
            mask &= ev[c]
        if item.when_any:
            mask &= np.logical_or.reduce([ev[c] for c in item.when_any])
        for c in item.unless_any:
            mask &= ~ev[c]
        masks.append(mask)
    return [list(compress(ADVICE_CODES, row)) for row in np.column_stack(masks)]


def _step_code(tier: Any, indicated: Any, imaged: Any) -> Any:
    """Index into :data:`NEXT_STEPS` (per row, or for one case)."""
    not_imaged = (not imaged) if isinstance(imaged, bool) else ~imaged
    return choose(
        [tier == 0, tier == 1, indicated & not_imaged, indicated & imaged, tier == 2],
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
    df: Answers,
    red_flag: Any = None,
    mri_indicated: Any = None,
    cause: Any = None,
    red_flag_urgent: Any = None,
) -> Any:
    """The urgency, the next step and the advice that goes with it.

    The next step (:data:`NEXT_STEPS`) follows the urgency (:func:`urgency`), then the article's
    MRI criteria (:func:`mri_indication`; an MRI already on file is read in context, not
    repeated), then the review tier, then conservative care. The advice is every item of
    ``vignettes/article.toml`` whose tier and conditions hold.

    Parameters
    ----------
    df : pandas.DataFrame or mapping
        Validated cases, or one validated case.
    red_flag : array-like of bool or bool, optional
        The model's review decision per row, aligned by position (one bool for one case).
    mri_indicated : array-like of bool or bool, optional
        The ``indicated`` result of :func:`mri_indication` when the caller already has it
        (aligned by position); computed here otherwise.
    cause : array-like of str or str, optional
        The most likely cause per row (the model's), for advice that depends on it.
    red_flag_urgent : array-like of bool or bool, optional
        The model's urgent decision per row.

    Returns
    -------
    pandas.DataFrame or dict
        Indexed like ``df``, with columns ``urgency`` and ``next_step`` (categorical), ``advice``
        (list of texts from :data:`ADVICE_TEXT`) and ``advice_codes`` (their codes). For one
        case, a dict with the same keys and plain values.
    """
    parts = _triage_parts(df, red_flag, cause, mri_indicated, red_flag_urgent)
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
    "urgency_timeframe",
    "urgency_timeframe_source",
    "urgency_action",
    "urgency_triggers",
    "suspected_conditions",
    "red_flag",
    "red_flag_screen",
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
    "advice_audiences",
    "advice",
)
"""The keys of :func:`triage`, in order."""


def triage(
    df: Answers,
    red_flag_model: Any = None,
    cause: Any = None,
    red_flag_urgent: Any = None,
    red_flag_dont_know: Any = None,
) -> dict[str, Any]:
    """The article's triage of validated intakes, with the model's decisions and cause.

    Every rule is evaluated once: the urgency rules (tier: the most urgent that fired;
    timeframe: the shortest), the red-flag screen, the nerve root and territory, the pain
    mechanism, the MRI criteria, the next step and the advice. ``red_flag`` is
    ``urgency != "routine"``.

    Parameters
    ----------
    df : pandas.DataFrame or mapping
        Validated cases, or one validated case.
    red_flag_model : array-like of bool or bool, optional
        The model's review decision (per row by position, or one bool): can raise a case to
        ``review``, never lower it.
    cause : array-like of str or str, optional
        The model's most likely cause (per row by position, or one name).
    red_flag_urgent : array-like of bool or bool, optional
        The model's urgent decision (P(serious) at or above the upper threshold): can raise a
        case to ``urgent``.
    red_flag_dont_know : bool, collection of str, or a sequence of them, optional
        The red-flag questions asked and answered "don't know": their field names, or a bool
        (some, which not said); per row for a frame (:func:`dont_know_facts`). The rule
        ``red_flag_dont_know`` of ``article.toml`` keeps the case at least ``review``, and
        ``cauda_equina_dont_know`` assesses a bladder, bowel or saddle "don't know" the same
        day. The answers cannot say it (an unknown answer may be a question never asked), so
        the caller does.

    Returns
    -------
    dict
        :data:`TRIAGE_KEYS`. For a frame each value has one entry per row (a NumPy array or a
        list of lists); for one case, plain Python values. ``urgency_timeframe`` and its source
        are ``None`` for a routine case no rule fired on; ``suspected_conditions`` names the
        serious conditions the fired rules look for (none of the seven causes covers them);
        ``red_flag_screen`` is ``complete``, ``partial`` or ``none``; ``advice_audiences`` gives
        ``patient`` or ``clinician`` per advice code.

    Examples
    --------
    >>> out = triage({"age": 35, "duration_weeks": 3, "fever": False}, cause="disc_herniation")
    >>> out["urgency"], out["next_step"], out["red_flag_screen"]
    ('routine', 'conservative_care', 'partial')
    >>> out["advice_codes"][0], out["red_flag_questions_unanswered"][:2]
    ('ask_red_flag_questions', ['bladder_bowel_dysfunction', 'saddle_numbness'])
    """
    ev = _evaluation(df, red_flag_model, red_flag_urgent, cause, red_flag_dont_know)
    parts = _triage_parts(df, red_flag_model, cause, None, red_flag_urgent, ev)
    return {key: parts[key] for key in TRIAGE_KEYS}


class CaseVariants:
    """The triage of one case, and of the same case with a few answers changed.

    Each variant's triage equals :func:`triage` of the changed case: the conditions that read
    none of the changed answers, and none of the engine facts that differ, are carried over
    from the case's own evaluation (their dependencies come from ``article.toml``, see
    :func:`model.conditions.dependencies`); the rest are evaluated again. An adaptive
    interview scores every answer of every unasked question this way.

    Parameters
    ----------
    case : mapping
        One validated case (``validate_case``).

    Examples
    --------
    >>> variants = CaseVariants({"age": 35, "fever": False})
    >>> variants.triage({}, cause="disc_herniation")["urgency"]
    'routine'
    >>> variants.triage({"fever": True}, cause="disc_herniation")["urgency"]
    'urgent'
    """

    def __init__(self, case: Mapping[str, Any]) -> None:
        self.case = case
        self._evaluations: dict[tuple[Any, ...], Evaluation] = {}

    def _evaluation(
        self,
        changes: Mapping[str, Any],
        red_flag_model: Any,
        cause: Any,
        red_flag_urgent: Any,
        red_flag_dont_know: Any = None,
    ) -> tuple[Mapping[str, Any], Evaluation]:
        """The changed case and its evaluation, carried over from the case's own (kept, per
        set of engine facts, for the next variant)."""
        case = {**self.case, **changes} if changes else self.case
        facts = _engine_facts(None, red_flag_model, red_flag_urgent, cause, red_flag_dont_know)
        key = (
            bool(red_flag_model),
            cause,
            bool(red_flag_urgent),
            _dont_know_row(red_flag_dont_know),
        )
        base = self._evaluations.get(key) or next(iter(self._evaluations.values()), None)
        if base is None:
            ev = Evaluation(case, FACTS, facts)
        else:
            ev = base.carried_over(case, facts, frozenset(changes))
        if not changes:  # only the case's own evaluation may be carried over from
            self._evaluations.setdefault(key, ev)
        return case, ev

    def triage(
        self,
        changes: Mapping[str, Any],
        red_flag_model: Any = None,
        cause: Any = None,
        red_flag_urgent: Any = None,
        red_flag_dont_know: Any = None,
    ) -> dict[str, Any]:
        """:func:`triage` of the case with ``changes`` (field -> answer) applied."""
        case, ev = self._evaluation(
            changes, red_flag_model, cause, red_flag_urgent, red_flag_dont_know
        )
        parts = _triage_parts(case, red_flag_model, cause, None, red_flag_urgent, ev)
        return {name: parts[name] for name in TRIAGE_KEYS}

    def decisions(
        self,
        changes: Mapping[str, Any],
        red_flag_model: Any = None,
        cause: Any = None,
        red_flag_urgent: Any = None,
        red_flag_dont_know: Any = None,
    ) -> dict[str, Any]:
        """What the patient is told, of :meth:`triage`: ``urgency``, ``urgency_timeframe``,
        ``next_step`` and ``advice_codes``, computed from the conditions alone (faster)."""
        _, ev = self._evaluation(
            changes, red_flag_model, cause, red_flag_urgent, red_flag_dont_know
        )
        fired = _rule_matrix(ev)
        tier, time = _tier_and_time(fired)
        flags = _mri_flags(ev)
        indicated, _ = _mri_result(flags)
        step = _step_code(tier, indicated, flags["already_imaged"])
        return {
            "urgency": URGENCY_TIERS[tier],
            "urgency_timeframe": _TIME_NAMES[time],
            "next_step": NEXT_STEPS[step],
            "advice_codes": _advice_codes(tier, ev),
        }


_RULE_CODES = np.asarray([r.code for r in URGENCY_RULES], dtype=object)
_RULE_SUSPECTED = tuple(r.suspected for r in URGENCY_RULES)
_RULE_SOURCES = np.asarray([r.source for r in URGENCY_RULES] + [None], dtype=object)
_TIME_NAMES = (*TIMEFRAMES, None)


def _first_fired(fired: Any, column: np.ndarray, value: Any) -> Any:
    """Per case, the first fired rule whose ``column`` (``_RULE_TIER`` or ``_RULE_TIME``) equals
    the case's ``value``, or -1 for none."""
    if isinstance(fired, list):
        hits = [i for i, on in enumerate(fired) if on and column[i] == value]
        return hits[0] if hits else -1
    match = fired & (column[None, :] == np.asarray(value)[:, None])
    return np.where(match.any(axis=1), match.argmax(axis=1), -1)


def _actions(first: Any, screen: Any, withhold: Any) -> Any:
    """The first fired rule's action; for routine, reassurance only once the screen is complete
    and no finding withholds it."""
    routine = FACTS.urgency_action["routine"]
    until, findings = FACTS.action_until_screened, FACTS.action_with_findings
    if isinstance(first, int):
        if first >= 0:
            return URGENCY_RULES[first].action
        return until if screen != 0 else findings if withhold else routine
    table = np.asarray([r.action for r in URGENCY_RULES] + [routine], dtype=object)
    out = table[np.where(first >= 0, first, len(URGENCY_RULES))]
    out = np.where((first < 0) & withhold, findings, out)
    return np.where((first < 0) & (screen != 0), until, out)


def _time_sources(fired: Any, time: Any) -> Any:
    """The source of the timeframe: the first fired rule giving that timeframe."""
    first = _first_fired(fired, _RULE_TIME, time)
    if isinstance(first, int):
        return URGENCY_RULES[first].source if first >= 0 else None
    return _RULE_SOURCES[first]  # index -1 is the trailing None


def _suspected(fired: Any) -> Any:
    if isinstance(fired, list):
        return list(dict.fromkeys(s for s, on in zip(_RULE_SUSPECTED, fired, strict=True) if on))
    return [list(dict.fromkeys(compress(_RULE_SUSPECTED, row))) for row in fired]


def _triage_parts(
    df: Answers,
    red_flag_model: Any = None,
    cause: Any = None,
    mri_indicated: Any = None,
    red_flag_urgent: Any = None,
    ev: Evaluation | None = None,
) -> dict[str, Any]:
    """Everything :func:`triage` and :func:`next_step` return, each computed once (``ev``: the
    evaluation to use, if the caller has one)."""
    one = is_one_case(df)
    ev = ev or _evaluation(df, red_flag_model, red_flag_urgent, cause)
    fired = _rule_matrix(ev)
    tier, time = _tier_and_time(fired)
    flags = _mri_flags(ev)
    indicated, reasons = _mri_result(flags)
    if mri_indicated is not None:
        indicated = decision(mri_indicated, rows(df), "mri_indicated")
        ev._memo["mri_indicated"] = indicated  # the caller's decision drives the advice too
    codes = _advice_codes(tier, ev)
    step = _step_code(tier, indicated, flags["already_imaged"])
    screen = _screen_code(df)
    first = _first_fired(fired, _RULE_TIER, tier)
    return {
        "urgency": _names(URGENCY_TIERS, tier),
        "urgency_timeframe": _names(_TIME_NAMES, time),
        "urgency_timeframe_source": _time_sources(fired, time),
        "urgency_action": _actions(first, screen, ev["withhold_reassurance"]),
        "urgency_triggers": [c for c, on in zip(_RULE_CODES, fired, strict=True) if on]
        if one
        else [_RULE_CODES[row].tolist() for row in fired],
        "suspected_conditions": _suspected(fired),
        "red_flag": tier != _ROUTINE,
        "red_flag_screen": _names(SCREENS, screen),
        "red_flags_fired": fired_red_flags(df),
        "red_flags_unasked": screen == SCREENS.index("none"),
        "red_flag_questions_unanswered": _unanswered(df),
        "nerve_root": _root_names(df),
        "nerve_territory": _territory(ev, df),
        "pain_mechanism": _names(MECHANISMS, ev.mechanism_code()),
        "mri_indicated": indicated,
        "mri_reasons": reasons,
        "next_step": _names(NEXT_STEPS, step),
        "advice_codes": codes,
        "advice_audiences": [ADVICE_AUDIENCE[c] for c in codes]
        if one
        else [[ADVICE_AUDIENCE[c] for c in row] for row in codes],
        "advice": [ADVICE_TEXT[c] for c in codes]
        if one
        else [[ADVICE_TEXT[c] for c in row] for row in codes],
    }


def _names(names: tuple[Any, ...], code: Any) -> Any:
    """``names[code]`` for one code, or an object array of names for an array of codes."""
    if isinstance(code, int | np.integer):
        return names[int(code)]
    return np.asarray(names, dtype=object)[code]


def _root_names(df: Answers) -> Any:
    """Nerve root per row (object array, ``None`` for no root) or for one case."""
    if is_one_case(df):
        return dermatome_root(df.get("pain_region"))
    if "pain_region" not in df:
        return np.full(len(df), None, dtype=object)
    roots = _root_series(df["pain_region"]).astype(object).to_numpy()
    return np.where(pd.isna(roots), None, roots)
