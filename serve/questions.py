"""The next best question: rank unanswered intake fields by expected information gain.

For a case and an unanswered field ``f``, the generator's model gives the chance of each answer
``v`` given what is already known, ``P(f = v | answers)`` (:func:`vignettes.answer_distribution`),
and the posterior after hearing it, ``P(cause | answers, f = v)`` (:func:`vignettes.posterior`).
The expected information gain is the entropy of the cause now minus the expected entropy after
the answer:

    EIG(f) = H(cause | answers) - sum_v P(f = v | answers) * H(cause | answers, f = v)

The article says the red flags must be asked, so while any red-flag question is unanswered those
questions come first, ranked by their information about the red flag; the rest follow by their
information about the cause. Everything is computed for many cases at once (one posterior call
over every hypothetical answer of every case), which is what the benchmark needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from model.intake import validate_case, validate_frame
from vignettes import answer_distribution, posterior
from vignettes.schema import (
    CAUSES,
    EXAMINATION_FIELDS,
    FIELD_BY_NAME,
    FIELDS,
    RED_FLAG_FIELDS,
    pandas_dtype,
)

ASKABLE: tuple[str, ...] = tuple(f.name for f in FIELDS if f.kind in ("bool", "category"))
"""Fields the interview can ask (age is required up front; duration is asked as a number)."""
ASKABLE_WITHOUT_CLINICIAN: tuple[str, ...] = tuple(
    f for f in ASKABLE if f not in EXAMINATION_FIELDS
)
"""What can be asked where no clinician examines the patient: no examination signs."""


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
        Expected reduction in entropy, in bits, of ``target``.
    target : {"red_flag", "cause"}
        What the answer informs: red-flag questions are ranked by what they say about urgency.
    """

    field: str
    text: str
    allowed: str
    information_gain: float
    target: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _values(field: str) -> tuple[Any, ...]:
    spec = FIELD_BY_NAME[field]
    return spec.values if spec.kind == "category" else (False, True)


def _entropy(p: np.ndarray) -> np.ndarray:
    """Entropy in bits along the last axis."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log2(p), 0.0)
    return terms.sum(axis=-1)


def _targets(post: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    red = post["red_flag"].to_numpy()
    return _entropy(post[list(CAUSES)].to_numpy()), _entropy(np.stack([red, 1 - red], axis=-1))


def _with_answer(frame: pd.DataFrame, field: str, value: Any) -> pd.DataFrame:
    out = frame.copy()
    out[field] = pd.Series([value] * len(frame), index=frame.index).astype(
        pandas_dtype(FIELD_BY_NAME[field])
    )
    return out


def information_gain(
    frame: pd.DataFrame, fields: Sequence[str] = ASKABLE, setting: str = "primary_care"
) -> dict[str, pd.DataFrame]:
    """Expected information gain of every field for every case, about the cause and the red flag.

    Parameters
    ----------
    frame : pandas.DataFrame
        Validated intakes (``model.intake.validate_frame``).
    fields : sequence of str
        Fields to score (answered ones get NaN).
    setting : {"primary_care", "spine_clinic"}
        Whose priors the generator's model uses.

    Returns
    -------
    dict
        ``{"cause": DataFrame, "red_flag": DataFrame}``, each (cases x fields), in bits.
    """
    now_cause, now_red = _targets(posterior(frame, setting))
    n = len(frame)
    chance = {f: answer_distribution(frame, f, setting).to_numpy() for f in fields}
    # Every possible answer of every case, in one frame; answers the model rules out (chance 0,
    # e.g. pain in the back only with pain below the knee) are left out: they weigh nothing.
    hypothetical, slots = [], []
    for field in fields:
        for j, value in enumerate(_values(field)):
            rows = np.flatnonzero(chance[field][:, j] > 0)
            hypothetical.append(_with_answer(frame.iloc[rows], field, value))
            slots.append((field, j, rows))
    after = posterior(pd.concat(hypothetical, ignore_index=True), setting)
    after_cause, after_red = _targets(after)
    expected = {f: np.zeros((2, n)) for f in fields}  # expected entropy after: cause, red flag
    start = 0
    for field, j, rows in slots:
        stop = start + rows.size
        weight = chance[field][rows, j]
        expected[field][0, rows] += weight * after_cause[start:stop]
        expected[field][1, rows] += weight * after_red[start:stop]
        start = stop
    gain_cause = pd.DataFrame(np.nan, index=frame.index, columns=list(fields))
    gain_red = gain_cause.copy()
    for field in fields:
        unknown = frame[field].isna().to_numpy()
        gain_cause[field] = np.where(unknown, now_cause - expected[field][0], np.nan)
        gain_red[field] = np.where(unknown, now_red - expected[field][1], np.nan)
    return {"cause": gain_cause.clip(lower=0), "red_flag": gain_red.clip(lower=0)}


def rank_questions(
    frame: pd.DataFrame,
    k: int | None = 3,
    setting: str = "primary_care",
    fields: Sequence[str] = ASKABLE,
) -> list[list[Question]]:
    """The next ``k`` questions for each case of a validated frame (``k=None``: all of them),
    among ``fields`` (e.g. :data:`ASKABLE_WITHOUT_CLINICIAN`); red-flag questions first."""
    gains = information_gain(frame, tuple(fields), setting)
    ranked = []
    for i in range(len(frame)):
        red = [
            (f, gains["red_flag"].iat[i, gains["red_flag"].columns.get_loc(f)])
            for f in RED_FLAG_FIELDS
            if f in gains["red_flag"].columns
        ]
        red = sorted([(f, g) for f, g in red if not np.isnan(g)], key=lambda fg: -fg[1])
        rest = gains["cause"].iloc[i].drop(list(RED_FLAG_FIELDS), errors="ignore").dropna()
        rest = rest.sort_values(ascending=False, kind="stable")
        order = [(f, g, "red_flag") for f, g in red] + [(f, g, "cause") for f, g in rest.items()]
        ranked.append(
            [
                Question(f, FIELD_BY_NAME[f].question, FIELD_BY_NAME[f].allowed(), float(g), t)
                for f, g, t in order[:k]
            ]
        )
    return ranked


def next_questions(
    case: Mapping[str, Any] | Any, k: int = 3, setting: str = "primary_care"
) -> list[Question]:
    """Rank the unanswered questions of one intake by expected information gain.

    Parameters
    ----------
    case : mapping
        An intake (validated here; only ``age`` is required).
    k : int, default=3
        How many questions to return.
    setting : {"primary_care", "spine_clinic"}, default="primary_care"

    Returns
    -------
    list of Question
        Unasked red-flag questions first (the article: red flags must be asked), then the rest by
        expected information gain about the cause, in bits.

    Examples
    --------
    >>> import serve
    >>> [q.field for q in serve.next_questions({"age": 70}, k=2)][:1]  # doctest: +SKIP
    ['bladder_bowel_dysfunction']
    """
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    frame = validate_frame(pd.DataFrame([validate_case(case)]))
    return rank_questions(frame, k, setting)[0]
