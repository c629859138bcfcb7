"""Readable English vignettes of generated cases, for people to read (never a model input).

The structured path (sampler, posterior, training, serving) never imports this module: it pulls in
Faker and renders text one row at a time, which is slow next to the vectorised sampler.
:func:`vignettes.narrate` imports it on first call.

Each row has its own random stream derived from ``(seed, case_id)``, so a case reads the same
whichever other rows share its frame. The text only restates intake answers: it never names the
``cause``, the ``red_flag`` label or the latent ``nerve_root`` / ``serious_condition``.
"""

from __future__ import annotations

import numbers
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
from faker import Faker

from vignettes.article import load_article
from vignettes.intake import IntakeError, is_missing
from vignettes.schema import FIELD_BY_NAME, FIELDS

__all__ = ["NarrativeInputError", "duration_in_words", "narrate", "patient_name"]

# Spawn key ("NARR"): keeps the narrative streams apart from the sampler's (setting, block) ones.
_STREAM_KEY = 0x4E415252

Case = Mapping[str, Any]
"""One row: field name -> value, ``None`` where the answer is unknown."""


NarrativeInputError = IntakeError
"""What :func:`narrate` raises for a value it cannot render: the one intake error type
(:class:`vignettes.intake.IntakeError`), under the name it had here before."""


# --------------------------------------------------------------------------------------------
# Seeding and the patient
# --------------------------------------------------------------------------------------------


def _row_seeds(seed: int, case_id: int) -> tuple[int, int]:
    """Two independent 32-bit seeds (name, wording) for one case, stable across platforms.

    ``SeedSequence`` hashes its inputs deterministically, unlike Python's salted ``hash()``.
    """
    state = np.random.SeedSequence(seed, spawn_key=(_STREAM_KEY, case_id)).generate_state(2)
    return int(state[0]), int(state[1])


@cache
def _faker() -> Faker:
    # One instance, reseeded per row: building a Faker costs far more than seeding one.
    # Not thread-safe; rendering is a single-threaded loop.
    return Faker("en_US")


def patient_name(seed: int, case_id: int, sex: str | None) -> str:
    """The fictitious patient's full name for one case.

    Parameters
    ----------
    seed : int
        Narrative seed (>= 0).
    case_id : int
        The case's id (>= 0).
    sex : {"female", "male"} or None
        Picks a female or male first name; ``None`` (unknown) picks any first name.

    Returns
    -------
    str
        ``"First Last"`` from Faker's ``en_US`` lists; the same for the same arguments.

    Examples
    --------
    >>> patient_name(7, 0, "female") == patient_name(7, 0, "female")
    True
    """
    name_seed, _ = _row_seeds(seed, case_id)
    fake = _faker()
    fake.seed_instance(name_seed)
    first = {"female": fake.first_name_female, "male": fake.first_name_male}.get(
        sex or "", fake.first_name
    )()
    return f"{first} {fake.last_name()}"


@dataclass(frozen=True)
class _Patient:
    """How the text refers to the patient."""

    name: str
    noun: str  # "woman", "man" or "patient"
    subject: str  # at the start of a sentence: "She", "He", or the first name if sex is unknown
    subject_mid: str  # the same inside a sentence

    @classmethod
    def of(cls, name: str, sex: str | None) -> _Patient:
        pronoun = {"female": "she", "male": "he"}.get(sex or "")
        if pronoun is None:
            # Unknown sex: repeat the first name rather than guess a pronoun.
            first = name.split(" ")[0]
            return cls(name, "patient", first, first)
        return cls(name, {"she": "woman", "he": "man"}[pronoun], pronoun.capitalize(), pronoun)


# --------------------------------------------------------------------------------------------
# Words
# --------------------------------------------------------------------------------------------

_NUMBER_WORDS = (
    *("zero", "one", "two", "three", "four", "five", "six"),
    *("seven", "eight", "nine", "ten", "eleven", "twelve"),
)


def _number(n: int) -> str:
    return _NUMBER_WORDS[n] if 0 <= n < len(_NUMBER_WORDS) else str(n)


def _count(n: int, unit: str) -> str:
    return f"{_number(n)} {unit}" + ("" if n == 1 else "s")


def duration_in_words(weeks: float) -> str:
    """A duration in weeks as a patient would say it.

    Parameters
    ----------
    weeks : float
        Duration in weeks (>= 0).

    Returns
    -------
    str
        Days below one week, weeks below nine weeks, months below a year, years after that.

    Examples
    --------
    >>> duration_in_words(0), duration_in_words(3), duration_in_words(26), duration_in_words(104)
    ('a few days', 'three weeks', 'six months', 'two years')
    """
    if weeks < 1:
        days = round(weeks * 7)
        # The sampler rounds to whole weeks, so 0 means "under half a week", not "no time".
        return "a few days" if days < 2 else _count(days, "day")
    if weeks < 9:
        return _count(round(weeks), "week")
    if weeks < 52:
        return _count(max(2, round(weeks / (52 / 12))), "month")
    years = round(weeks / 52.18)
    return "about a year" if years <= 1 else _count(years, "year")


def _series(items: Sequence[str], conjunction: str = "and") -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


def _sentence(text: str) -> str:
    return text[0].upper() + text[1:] + "."


def _article(age: int) -> str:
    """``a`` or ``an`` before a spoken number: an 18-, an 80-, a 67-year-old."""
    return "an" if age in (8, 11, 18) or 80 <= age <= 89 else "a"


# Lay wording of category values and yes/no answers. None of it names a cause: the diagnoses'
# names only appear when an MRI finding reports them (see _MRI_FINDING).
_QUALITY = {
    "sharp_electric": "sharp, electric pain",
    "burning": "burning pain",
    "dull_aching": "dull, aching pain",
    "heaviness_fatigue": "heaviness and fatigue",
}
_SIDES = {"left": "the left leg", "right": "the right leg", "both": "both legs"}
_BACK_SIDES = {"left": "on the left", "right": "on the right", "both": "on both sides"}
_REGION = {r.region: r.narrated for r in load_article().pain_regions if r.region != "back_only"}
_AGGRAVATORS = {
    "worse_sitting": "sitting",
    "worse_bending_forward": "bending forward",
    "worse_walking": "walking",
    "worse_standing": "standing",
    "worse_extension": "leaning backwards",
}
_RELIEVERS = {
    "better_sitting": "sitting down",
    "better_bending_forward": "bending forward",
    "better_rest_movement": "rest or gentle movement",
}
_NERVE_SYMPTOMS = {"numbness": "numbness", "tingling": "tingling", "weakness": "weakness"}
_MRI_FINDING = {
    "disc_herniation": "a disc herniation",
    "central_stenosis": "central stenosis, a narrowing of the spinal canal",
    "foraminal_stenosis": "foraminal stenosis, a narrowing where the nerve leaves the spine",
    "spondylolisthesis": "a spondylolisthesis, one vertebra slipped forward on the next",
    "degenerative_changes": "degenerative changes",
}
# Red-flag signs: (wording when reported, wording when denied).
_WARNING_SIGNS = {
    "bladder_bowel_dysfunction": ("loss of bladder or bowel control", "bladder or bowel problems"),
    "saddle_numbness": ("numbness around the groin and inner thighs", "saddle numbness"),
    "progressive_weakness": ("leg weakness that keeps getting worse", "worsening leg weakness"),
    "unexplained_weight_loss": ("unexplained weight loss", "weight loss"),
    "fever": ("a fever", "fever"),
    "cancer_history": ("a history of cancer", "any history of cancer"),
}


def _split_answers(case: Case, wording: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """Wording of the fields answered yes and of those answered no; unknown ones are dropped."""
    yes = [words for name, words in wording.items() if case[name] is True]
    no = [words for name, words in wording.items() if case[name] is False]
    return yes, no


# --------------------------------------------------------------------------------------------
# Sentences: each returns the sentences it has something to say about (possibly none)
# --------------------------------------------------------------------------------------------

Renderer = Callable[[Case, _Patient, random.Random], list[str]]


def _intro(case: Case, who: _Patient, rng: random.Random) -> list[str]:
    age = case["age"]
    person = f"a {who.noun}" if age is None else f"{_article(age)} {age}-year-old {who.noun}"
    weeks = case["duration_weeks"]
    complaint = _QUALITY.get(case["pain_quality"], "pain")
    if weeks is not None:
        complaint = f"{duration_in_words(weeks)} of {complaint}"
    if case["pain_region"] == "back_only":
        where = " in the lower back"
        if case["sides"] is not None:
            where += f", {_BACK_SIDES[case['sides']]}"
    else:
        where = f" in {_SIDES[case['sides']]}" if case["sides"] is not None else ""
    template = rng.choice(
        (
            "{name}, {person}, has had {complaint}{where}",
            "{name} is {person} with {complaint}{where}",
            "{name}, {person}, reports {complaint}{where}",
        )
    )
    return [
        _sentence(template.format(name=who.name, person=person, complaint=complaint, where=where))
    ]


def _spread(case: Case, who: _Patient, rng: random.Random) -> list[str]:
    region, below_knee = case["pain_region"], case["below_knee"]
    if region == "back_only":
        text = "it stays mainly in the lower back rather than following a path down the leg"
        if below_knee:
            text += ", although some of it reaches below the knee"
    elif region is not None:
        text = f"it {rng.choice(('runs', 'travels', 'spreads'))} {_REGION[region]}"
        if below_knee is not None:
            text += " and reaches below the knee" if below_knee else " but stays above the knee"
    elif below_knee is not None:
        text = "it reaches the calf, ankle or foot" if below_knee else "it stays above the knee"
    else:
        return []
    return [_sentence(text)]


def _back_and_buttock(case: Case, who: _Patient, rng: random.Random) -> list[str]:
    clauses = []
    if case["back_pain"] is not None:
        # "As well" only when the pain was introduced as leg pain.
        also = "" if case["pain_region"] == "back_only" else " as well"
        clauses.append(
            f"there is lower back pain{also}"
            if case["back_pain"]
            else "lower back pain is minimal or absent"
        )
    if case["leg_pain_worse_than_back"] is not None:
        clauses.append(
            "the leg hurts more than the back"
            if case["leg_pain_worse_than_back"]
            else "the leg hurts no more than the back"
        )
    if case["buttock_pain"] is not None:
        clauses.append(
            "pain deep in the buttock is prominent"
            if case["buttock_pain"]
            else "the buttock is not painful"
        )
    return [_sentence(_series(clauses))] if clauses else []


def _verb(items: Sequence[str], singular: str, plural: str) -> str:
    return singular if len(items) == 1 else plural


def _aggravators(case: Case, who: _Patient, rng: random.Random) -> list[str]:
    yes, no = _split_answers(case, _AGGRAVATORS)
    out = []
    if yes and no:
        out.append(f"It is worse with {_series(yes)}, but not with {_series(no, 'or')}.")
    elif yes:
        template = rng.choice(
            (
                "it is worse with {items}",
                "{items} {verb} it worse",
                "{subject} notices it is worse with {items}",
            )
        )
        verb = _verb(yes, "makes", "make")
        out.append(
            _sentence(template.format(items=_series(yes), verb=verb, subject=who.subject_mid))
        )
    elif no:
        out.append(f"It is no worse with {_series(no, 'or')}.")
    # Coughing gets its own sentence: "coughing, sneezing or straining" inside a list is garbled.
    if case["worse_cough_sneeze"] is not None:
        out.append(
            "Coughing, sneezing or straining make it worse."
            if case["worse_cough_sneeze"]
            else "Coughing and sneezing do not affect it."
        )
    if case["worse_at_night"] is not None:
        at_night = rng.choice(("It is worse at night.", "Nights are the worst."))
        out.append(at_night if case["worse_at_night"] else "Nights are no worse.")
    return out


def _relievers(case: Case, who: _Patient, rng: random.Random) -> list[str]:
    # Lists join with "and" only: "rest or gentle movement" already contains an "or".
    yes, no = _split_answers(case, _RELIEVERS)
    if yes and no:
        relieve, do = _verb(yes, "relieves", "relieve"), _verb(no, "does", "do")
        return [_sentence(f"{_series(yes)} {relieve} it, but {_series(no)} {do} not")]
    if yes:
        template = rng.choice(("{items} {verb} it", "it eases with {items}"))
        return [
            _sentence(template.format(items=_series(yes), verb=_verb(yes, "relieves", "relieve")))
        ]
    if no:
        return [_sentence(f"{_series(no)} {_verb(no, 'does', 'do')} not relieve it")]
    return []


def _nerve_signs(case: Case, who: _Patient, rng: random.Random) -> list[str]:
    yes, no = _split_answers(case, _NERVE_SYMPTOMS)
    leg = "legs" if case["sides"] == "both" else "leg"
    out = []
    if yes and no:
        out.append(f"{who.subject} has {_series(yes)} in the {leg} but no {_series(no, 'or')}.")
    elif yes:
        template = rng.choice(("{subject} describes {items}", "there is {items}"))
        items = f"{_series(yes)} in the {leg}"
        out.append(_sentence(template.format(subject=who.subject, items=items)))
    elif no:
        out.append(f"There is no {_series(no, 'or')} in the {leg}.")
    if case["reflex_changes"] is not None:
        out.append(
            rng.choice(("An examiner has found changed reflexes.", "Reflexes are altered."))
            if case["reflex_changes"]
            else "Reflexes were normal on examination."
        )
    if case["straight_leg_raise"] is not None:
        out.append(
            "Raising the straight leg reproduces the leg pain."
            if case["straight_leg_raise"]
            else "Raising the straight leg does not reproduce the leg pain."
        )
    if case["crossed_straight_leg_raise"] is not None:
        out.append(
            "Raising the other leg brings on the pain as well."
            if case["crossed_straight_leg_raise"]
            else "Raising the other leg does not bring on the pain."
        )
    if case["progressive_symptoms"] is not None:
        out.append(
            "The nerve symptoms have been getting steadily worse."
            if case["progressive_symptoms"]
            else "The symptoms are not getting steadily worse."
        )
    return out


def _care_and_imaging(case: Case, who: _Patient, rng: random.Random) -> list[str]:
    out = []
    if case["conservative_care_failed"] is not None:
        out.append(
            rng.choice(
                (
                    "A course of conservative care has not helped.",
                    "Exercise, physiotherapy and pain relief have brought no lasting improvement.",
                )
            )
            if case["conservative_care_failed"]
            else "No course of conservative care has failed so far."
        )
    finding = case["mri_finding"]
    if finding == "not_done":
        out.append(rng.choice(("No MRI has been done.", f"{who.subject} has not had an MRI.")))
    elif finding == "normal":
        out.append("An MRI of the lower back was normal.")
    elif finding is not None:
        verb = rng.choice(("showed", "found", "revealed"))
        out.append(f"An MRI {verb} {_MRI_FINDING[finding]}.")
    return out


def _warning_signs(case: Case, who: _Patient, rng: random.Random) -> list[str]:
    reported = [_WARNING_SIGNS[n][0] for n in _WARNING_SIGNS if case[n] is True]
    denied = [_WARNING_SIGNS[n][1] for n in _WARNING_SIGNS if case[n] is False]
    out = []
    if reported:
        template = rng.choice(("{subject} also reports {items}", "notably, {mid} reports {items}"))
        text = template.format(subject=who.subject, mid=who.subject_mid, items=_series(reported))
        out.append(_sentence(text))
    if denied:
        out.append(f"{who.subject} denies {_series(denied, 'or')}.")
    return out


_RENDERERS: tuple[Renderer, ...] = (
    _intro,
    _spread,
    _back_and_buttock,
    _aggravators,
    _relievers,
    _nerve_signs,
    _care_and_imaging,
    _warning_signs,
)


def _not_asked(case: Case) -> list[str]:
    # Age is never unknown, and sex only changes the wording, so neither is listed.
    questions = [
        f.question for f in FIELDS if f.name not in ("age", "sex") and case[f.name] is None
    ]
    return ["Not asked: " + " ".join(questions)] if questions else []


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def _clean_value(field_name: str, value: Any) -> Any:
    """A cell as a plain Python value, ``None`` if unknown; refuse what cannot be rendered."""
    if is_missing(value):
        return None
    field = FIELD_BY_NAME[field_name]
    if field.kind == "bool" and isinstance(value, bool | np.bool_):
        return bool(value)
    if field.kind == "category" and isinstance(value, str) and value in field.values:
        return value
    if field.kind in ("int", "float") and _in_range(value, field.low, field.high):
        if field.kind == "float":
            return float(value)
        if float(value).is_integer():
            return int(value)
    message = f"{field_name}: got {value!r}; expected {field.allowed()}"
    raise IntakeError(field_name, field.allowed(), message)


def _in_range(value: Any, low: float | None, high: float | None) -> bool:
    # bool is an int subclass, but True is not an age or a duration.
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        return False
    number = float(value)
    return (low is None or number >= low) and (high is None or number <= high)


def _case_ids(df: pd.DataFrame) -> list[int]:
    ids = df["case_id"] if "case_id" in df else pd.Series(df.index, index=df.index)
    if not pd.api.types.is_integer_dtype(ids) or ids.isna().any() or (ids < 0).any():
        allowed = "integers >= 0"
        message = f"case_id: expected {allowed} (in the case_id column or, without it, the index)"
        raise IntakeError("case_id", allowed, message)
    return [int(i) for i in ids]


def _check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        allowed = "an integer >= 0"
        raise IntakeError("seed", allowed, f"seed: got {seed!r}; expected {allowed}")
    return int(seed)


# --------------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------------


def _render(case: Case, case_id: int, seed: int, list_unknown: bool) -> str:
    who = _Patient.of(patient_name(seed, case_id, case["sex"]), case["sex"])
    rng = random.Random(_row_seeds(seed, case_id)[1])
    sentences = [s for render in _RENDERERS for s in render(case, who, rng)]
    if list_unknown:
        sentences += _not_asked(case)
    return " ".join(sentences)


def narrate(df: pd.DataFrame, seed: int = 0, *, list_unknown: bool = False) -> pd.Series:
    """Render each case as a short English clinical vignette.

    Only answered questions are mentioned: a "yes" as a finding, a "no" briefly (e.g. "denies
    fever"); unknown answers (``<NA>``, or a missing column) are left out. The text never names
    the labels (``cause``, ``red_flag``) or the latent variables; a diagnosis's name appears only
    when the MRI finding itself reports it.

    Parameters
    ----------
    df : pandas.DataFrame
        Cases as from :func:`vignettes.generate`. Intake columns that are absent count as
        unknown; other columns are ignored. Rows are identified by ``case_id`` (or, without that
        column, by the index), which must be integers >= 0.
    seed : int, default=0
        Narrative seed. The same ``(seed, case_id)`` gives the same name and wording, whatever
        other rows are in ``df``; another seed gives other names and wording.
    list_unknown : bool, default=False
        End each vignette with the intake questions that were not asked.

    Returns
    -------
    pandas.Series
        One string per row, indexed like ``df``, named ``"narrative"``.

    Raises
    ------
    IntakeError
        A ``ValueError`` naming the field, if a value is outside what the contract allows.

    Examples
    --------
    >>> import vignettes
    >>> df = vignettes.generate(3, seed=7)
    >>> text = vignettes.narrate(df, seed=7)
    >>> len(text), f"{df['age'].iloc[0]}-year-old" in text.iloc[0]
    (3, True)
    >>> text.equals(vignettes.narrate(df.iloc[::-1], seed=7).sort_index())
    True
    """
    seed = _check_seed(seed)
    case_ids = _case_ids(df)
    names = [f.name for f in FIELDS]
    raw = df.reindex(columns=names).to_dict("records")
    texts = [
        _render({k: _clean_value(k, v) for k, v in row.items()}, case_id, seed, list_unknown)
        for row, case_id in zip(raw, case_ids, strict=True)
    ]
    return pd.Series(texts, index=df.index, name="narrative", dtype=str)
