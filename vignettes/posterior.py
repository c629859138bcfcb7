"""The exact Bayes posterior of the generator's own model: the ceiling no classifier can beat.

For each case the posterior enumerates every latent state ``(cause, serious condition, nerve
root)`` (7 x 5 x 6 = 210 states), adds the log-probability of every *observed* answer under that
state, and normalises. Unknown answers are left out, which is exact marginalisation because the
generator hides answers completely at random. Age is always known, so the age band is too.

Answers are scored one unit at a time (:attr:`~vignettes.knowledge.KnowledgeBase.units`): a
field of its own, or a joint group of fields answered together. For a group, every *observation
pattern* (each member known with one of its values, or unknown) has a precomputed table
``log P(pattern | state)``: the log of the summed probability of the joint answers that agree
with the known members. A group of members with ``K_1, K_2, ...`` values has
``(K_1 + 1) (K_2 + 1) ...`` patterns, so scoring it is one gather, exactly as for a single field.

:func:`answer_distribution` gives, for one field, the predictive distribution of its answer given
the other answers: what a next-best-question search needs.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from vignettes.intake import IntakeError, answer_code, validate_case, validate_frame
from vignettes.knowledge import (
    AGE_MIN,
    TABLE_FIELDS,
    FieldGroup,
    KnowledgeBase,
    load_knowledge,
)
from vignettes.schema import (
    CAUSES,
    FIELD_BY_NAME,
    FIELD_NAMES,
    NERVE_ROOTS,
    SERIOUS_CONDITIONS,
    SETTINGS,
    longest_duration,
)

CHUNK_ROWS = 16_384
"""Rows per chunk; bounds memory to about ``CHUNK_ROWS * 210 * 8`` bytes per array."""

OTHER_COLUMNS: frozenset[str] = frozenset(
    {"case_id", "setting", "cause", "red_flag", "nerve_root", "serious_condition", "narrative"}
)
"""Columns that are not intake answers but may accompany them with ``strict=True``: the row id,
the clinical setting (which *is* read), the labels and latent truth of a generated frame, and a
narrative text. Columns starting with one of :data:`OTHER_PREFIXES` are accepted too."""
OTHER_PREFIXES: tuple[str, ...] = ("prob_",)
"""Prefixes of accepted non-intake columns: predicted probabilities (``prob_<cause>``)."""

InputError = IntakeError
"""The posterior's name for :class:`vignettes.intake.IntakeError`: the same class, kept because it
was public. Every bad input, here or at the serving boundary, raises that one type."""


# --------------------------------------------------------------------------------------------
# Reading the input
# --------------------------------------------------------------------------------------------


def _is_extra(column: object) -> bool:
    """Whether a column is a known non-intake companion (:data:`OTHER_COLUMNS`, prefixes)."""
    return column in OTHER_COLUMNS or str(column).startswith(OTHER_PREFIXES)


def _answers(df: pd.DataFrame, strict: bool) -> pd.DataFrame:
    """The intake columns of ``df``, checked by the one intake validator.

    With ``strict``, only intake fields and the known companions of :data:`OTHER_COLUMNS` (or
    :data:`OTHER_PREFIXES`) may be present; anything else is an unknown field. Without it,
    every non-intake column is ignored.
    """
    if not isinstance(df, pd.DataFrame):
        return validate_frame(df)  # raises, naming what a frame must be
    if strict:
        keep = [c for c in df.columns if c in FIELD_BY_NAME or not _is_extra(c)]
    else:
        keep = [c for c in df.columns if c in FIELD_BY_NAME]
    return validate_frame(df[keep] if len(keep) < len(df.columns) else df)


def field_codes(answers: pd.DataFrame, name: str) -> np.ndarray:
    """Integer code of each answer of a validated frame (``-1`` = unknown).

    Parameters
    ----------
    answers : pandas.DataFrame
        Cases as :func:`vignettes.intake.validate_frame` returns them (contract dtypes).
    name : str
        A boolean or categorical intake field.

    Returns
    -------
    ndarray of int16
        The value's index in the field's values (booleans: 0 or 1), ``-1`` where unknown.
    """
    col = answers[name]
    if FIELD_BY_NAME[name].kind == "category":
        return np.asarray(col.cat.codes, dtype=np.int16)  # categories are the field's values
    if FIELD_BY_NAME[name].kind == "bool":
        return col.to_numpy(dtype=np.int16, na_value=-1)
    raise TypeError(f"{name} is numeric; use its value, not a code")


def _settings(df: pd.DataFrame, setting: str | None) -> np.ndarray:
    allowed = "one of " + ", ".join(map(repr, SETTINGS))
    if setting is not None:
        if setting not in SETTINGS:
            message = f"setting: {setting!r} is not allowed; expected {allowed}"
            raise IntakeError("setting", allowed, message)
        return np.full(len(df), SETTINGS.index(setting))
    if "setting" not in df:
        return np.zeros(len(df), dtype=int)  # the documented default: primary_care
    codes = pd.Index(SETTINGS).get_indexer(df["setting"])  # -1 where not a setting
    if (codes < 0).any():
        label = df.index[int(np.argmax(codes < 0))]
        message = f"setting, row {label!r}: expected {allowed} in every row"
        raise IntakeError("setting", allowed, message, row=label)
    return codes


def _inputs(
    df: pd.DataFrame, kb: KnowledgeBase, setting: str | None, strict: bool
) -> dict[str, np.ndarray]:
    """Validated arrays of the answers: codes per table field, age, band, duration, setting."""
    answers = _answers(df, strict)
    age = answers["age"].to_numpy(dtype=np.int64)  # required, whole, 18..100: validated
    duration = answers["duration_weeks"].to_numpy(dtype=float, na_value=np.nan)
    duration_known = ~np.isnan(duration)
    inputs = {
        "age": age,
        "band": kb.band_of(age),
        "setting": _settings(df, setting),
        "sex": field_codes(answers, "sex"),
        # The model's durations are whole weeks: compare in whole weeks.
        "duration": np.floor(np.where(duration_known, duration, 0.0) + 0.5),
        "duration_known": duration_known,
    }
    return inputs | {name: field_codes(answers, name) for name in TABLE_FIELDS}


# --------------------------------------------------------------------------------------------
# Observation-pattern tables
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Patterns:
    """``log P(observation pattern | state)`` of one unit, shape ``(bands, patterns, states)``.

    A pattern gives each member a value code, or its number of values ``K_i`` for unknown; its
    index is ``sum_i code_i * strides[i]`` (first member slowest). ``possible[band, pattern]``
    says whether any state gives the pattern a positive probability.
    """

    unit: FieldGroup
    strides: np.ndarray
    log: np.ndarray
    possible: np.ndarray

    def index(self, codes: list[np.ndarray]) -> np.ndarray:
        """Pattern index of each row from the members' codes (``-1`` = unknown)."""
        out = np.zeros(codes[0].shape, dtype=np.int64)
        for code, k, stride in zip(codes, self.unit.n_values, self.strides, strict=True):
            out += np.where(code < 0, k, code) * stride
        return out


def _patterns(unit: FieldGroup) -> _Patterns:
    sizes = [k + 1 for k in unit.n_values]
    strides = np.array([int(np.prod(sizes[i + 1 :])) for i in range(len(sizes))], dtype=np.int64)
    pattern_codes = np.indices(sizes).reshape(len(sizes), -1).T  # (patterns, members)
    unknown = pattern_codes == np.array(unit.n_values)
    agrees = (pattern_codes[:, None, :] == unit.codes[None, :, :]) | unknown[:, None, :]
    consistent = agrees.all(axis=2).astype(float)  # (patterns, answers)
    n_bands, n_answers = unit.table.shape[0], unit.table.shape[-1]
    flat = unit.table.reshape(n_bands, -1, n_answers)  # (bands, states, answers)
    prob = flat @ consistent.T  # (bands, states, patterns)
    prob[..., unknown.all(axis=1)] = 1.0  # nothing observed: exactly 1, not a rounded sum
    with np.errstate(divide="ignore"):
        log = np.ascontiguousarray(np.log(prob).transpose(0, 2, 1))
    return _Patterns(unit, strides, log, np.isfinite(log).any(axis=2))


@cache
def _pattern_tables(kb: KnowledgeBase) -> tuple[_Patterns, ...]:
    """Every unit's patterns but the imaging field's (scored by :func:`_add_imaging_log`)."""
    imaging = kb.imaging.field if kb.imaging is not None else None
    return tuple(_patterns(unit) for unit in kb.units if unit.fields[0] != imaging)


FUSED_PATTERNS = 256
"""Most observation patterns in one fused table (:class:`_Fused`): one age band's slice of it,
which a row's gather reads, is 256 x 210 doubles (430 KB), within a core's 1 MiB L2 cache."""


@dataclass(frozen=True, eq=False)
class _Fused:
    """Several units' pattern tables added into one, ``(bands, patterns, states)``.

    ``log[band, sum_j index_j * strides[j]]`` is the sum of the members'
    ``log[band, index_j]``: one gather and add over the ``(rows, states)`` joint does the work
    of several (the packaged knowledge base's 28 tables take 28 passes over it one by one, 7
    fused). The table is read-only: it is cached, and shared by every call.
    """

    members: tuple[_Patterns, ...]
    strides: np.ndarray
    log: np.ndarray

    def index(self, chunk: dict[str, np.ndarray], skip: FieldGroup | None) -> np.ndarray:
        """Each row's fused pattern; ``skip``'s answers count as unknown (log 1 = 0 exactly)."""
        out = np.zeros(chunk["band"].shape, dtype=np.int64)
        for patterns, stride in zip(self.members, self.strides, strict=True):
            unit = patterns.unit
            if unit is skip:  # every member unknown: the highest pattern index, the last
                out += (patterns.log.shape[1] - 1) * stride
            else:
                out += patterns.index([chunk[name] for name in unit.fields]) * stride
        return out


def _fuse(members: list[_Patterns]) -> _Fused:
    """One table for ``members``: every combination of their patterns, first member slowest."""
    sizes = [p.log.shape[1] for p in members]
    strides = np.array([int(np.prod(sizes[j + 1 :])) for j in range(len(sizes))], dtype=np.int64)
    log = members[0].log
    for patterns in members[1:]:  # first member slowest, as in the strides
        log = (log[:, :, None, :] + patterns.log[:, None, :, :]).reshape(
            log.shape[0], -1, log.shape[2]
        )
    log = np.array(log, order="C")  # a copy even for one member: its own table stays writable
    log.flags.writeable = False
    return _Fused(tuple(members), strides, log)


@lru_cache(maxsize=4)  # 6.5 MB each; make sensitivity makes a knowledge base per world
def _fused_tables(kb: KnowledgeBase) -> tuple[_Fused, ...]:
    """:func:`_pattern_tables` packed in order into groups of at most :data:`FUSED_PATTERNS`
    patterns; a unit with more than that is a group of its own."""
    groups: list[list[_Patterns]] = []
    for patterns in _pattern_tables(kb):
        size = patterns.log.shape[1]
        if groups and np.prod([p.log.shape[1] for p in groups[-1]]) * size <= FUSED_PATTERNS:
            groups[-1].append(patterns)
        else:
            groups.append([patterns])
    return tuple(_fuse(group) for group in groups)


@cache
def _imaging_expectations(kb: KnowledgeBase) -> dict[str, np.ndarray]:
    """Exact expectations of the imaging factors given the latent state, for hidden answers.

    ``duration_weeks``: E[f(duration) | cause] repeated over the states, shape ``(states,)``;
    each listed answer: E[g(answer) | state], shape ``(bands, states)``.
    """
    imaging = kb.imaging
    assert imaging is not None
    per_state = len(SERIOUS_CONDITIONS) * len(NERVE_ROOTS)
    out: dict[str, np.ndarray] = {
        "duration_weeks": np.repeat(imaging.expected_duration_factor(kb.duration), per_state)
    }
    for name in imaging.factors:
        expected = imaging.expected_factor(name, kb.tables[name])  # (bands, c, s, r)
        out[name] = expected.reshape(expected.shape[0], -1)
    return out


def _unknown_products(kb: KnowledgeBase, masks: np.ndarray) -> np.ndarray:
    """The product of the imaging factors' exact expectations over the answers a row lacks.

    Shape ``(bands, len(masks), states)``: bit 0 of a mask is set when ``duration_weeks`` is
    unknown, bit ``j + 1`` when the ``j``-th answer of ``imaging.factors`` is; a known answer's
    factor is 1 here (the row's own value is applied by :func:`_add_imaging_log`). Built for the
    masks a chunk has, not all ``2 ** (1 + factors)`` of them: a knowledge base may list many.
    """
    imaging = kb.imaging
    assert imaging is not None
    expected = _imaging_expectations(kb)
    out = np.ones((imaging.done.shape[0], len(masks), len(expected["duration_weeks"])))
    for i, mask in enumerate(masks.tolist()):
        if mask & 1:
            out[:, i] *= expected["duration_weeks"][None]
        for j, name in enumerate(imaging.factors):
            if mask >> (j + 1) & 1:
                out[:, i] *= expected[name]
    return out


def _add_imaging_log(kb: KnowledgeBase, chunk: dict[str, np.ndarray], logp: np.ndarray) -> None:
    """Add log P(imaging answer | state, the answers imaging depends on) to ``logp`` in place.

    P(not_done) = base[setting] * f(duration) * prod g(answer): each factor at the observed
    answer, or its exact expectation given the state where the answer is unknown. Those answers
    are conditionally independent given the state, so the expectation of the product is the
    product of the expectations, and the posterior stays exact. The observed factors make one
    number per row, the expectations one of :func:`_unknown_products`' rows, so only
    the rows with an imaging answer are touched, in a few passes over their states.
    """
    imaging = kb.imaging
    assert imaging is not None
    code = chunk[imaging.field]
    rows = np.flatnonzero(code >= 0)
    if not len(rows):
        return
    used = (imaging.field, "band", "setting", "duration", "duration_known", *imaging.factors)
    pick = {name: chunk[name][rows] for name in used}
    known = pick["duration_known"]
    dur_factor = imaging.duration_factor[imaging.duration_bin(pick["duration"])]
    scalar = imaging.base[pick["setting"]] * np.where(known, dur_factor, 1.0)
    mask = np.where(known, 0, 1)
    for j, (name, factor) in enumerate(imaging.factors.items()):
        answer = pick[name]
        scalar = scalar * np.where(answer >= 0, factor[np.maximum(answer, 0)], 1.0)
        mask = mask + ((answer < 0) << (j + 1))
    band, code = pick["band"], code[rows]
    masks, which = np.unique(mask, return_inverse=True)
    p_not_done = _unknown_products(kb, masks)[band, which]  # (rows, states)
    p_not_done *= scalar[:, None]
    done = imaging.done[band, :, code]  # (rows, causes): every code here is an answer
    p_done = ((1.0 - p_not_done).reshape(len(rows), done.shape[1], -1) * done[:, :, None]).reshape(
        len(rows), -1
    )
    p = np.where((code == 0)[:, None], p_not_done, p_done)
    with np.errstate(divide="ignore"):
        np.log(p, out=p)
    if len(rows) == len(logp):
        logp += p
    else:
        logp[rows] += p


def _base(kb: KnowledgeBase, chunk: dict[str, np.ndarray]) -> np.ndarray:
    """log P(cause, serious, root, age, sex, duration) per row and state, shape (rows, 210)."""
    band, setting, age = chunk["band"], chunk["setting"], chunk["age"]
    with np.errstate(divide="ignore"):
        per_cause = np.log(kb.prior[setting]) + np.log(kb.age_pmf[:, age - AGE_MIN].T)
        sex = chunk["sex"]
        p_sex = np.where(sex[:, None] == 0, kb.female, 1 - kb.female)
        per_cause += np.where(sex[:, None] >= 0, np.log(p_sex), 0.0)
        dur, dur_known = chunk["duration"], chunk["duration_known"]
        longest = longest_duration(age)
        per_cause += np.where(dur_known[:, None], kb.duration_logpmf(dur, longest), 0.0)
        serious = np.log(kb.serious[setting, band])  # (rows, c, s)
        root = np.log(kb.root)  # (c, r)
    logp = per_cause[:, :, None, None] + serious[:, :, :, None] + root[None, :, None, :]
    return logp.reshape(len(band), -1)


def _log_joint(
    kb: KnowledgeBase, chunk: dict[str, np.ndarray], skip: FieldGroup | None = None
) -> np.ndarray:
    """log P(observed answers, state) for every row and state, shape (rows, 210).

    ``skip`` leaves one unit out (its answers count as unknown).
    """
    logp = _base(kb, chunk)
    band = chunk["band"]
    for fused in _fused_tables(kb):
        logp += fused.log[band, fused.index(chunk, skip)]
    if kb.imaging is not None and (skip is None or skip.fields[0] != kb.imaging.field):
        _add_imaging_log(kb, chunk, logp)
    return logp


def _show(names: tuple[str, ...], codes: list[int]) -> str:
    """``name=value`` for each field and value code."""
    shown = []
    for name, code in zip(names, codes, strict=True):
        field = FIELD_BY_NAME[name]
        value = (False, True)[code] if field.kind == "bool" else field.values[code]
        shown.append(f"{name}={value}")
    return ", ".join(shown)


def _impossible(
    kb: KnowledgeBase, chunk: dict[str, np.ndarray], logp: np.ndarray, index: pd.Index
) -> None:
    """Refuse rows whose answers have probability 0 under every latent state."""
    dead = ~np.isfinite(logp).any(axis=1)
    if not dead.any():
        return
    row = int(np.argmax(dead))
    label = index[row]
    where = f", row {label!r}"
    possible = "answers the knowledge base gives a positive probability"
    band = chunk["band"][row]
    for patterns in _pattern_tables(kb):
        unit = patterns.unit
        codes = [int(chunk[name][row]) for name in unit.fields]
        pattern = patterns.index([np.array([c]) for c in codes])[0]
        if patterns.possible[band, pattern]:
            continue
        observed = [(n, c) for n, c in zip(unit.fields, codes, strict=True) if c >= 0]
        names = " and ".join(n for n, _ in observed)
        if len(unit.fields) == 1:
            message = (
                f"{names}{where}: the answer {_show(unit.fields, codes)} has probability 0 "
                "under every latent state of the knowledge base"
            )
            raise IntakeError(names, possible, message, row=label)
        answers = "; ".join(
            f"{a} ({_show(unit.fields, c)})"
            for a, c in zip(unit.answers, unit.codes.tolist(), strict=True)
        )
        shown = _show(tuple(n for n, _ in observed), [c for _, c in observed])
        message = (
            f"{names}{where}: the answers {shown} contradict each other (the knowledge base "
            f"gives them probability 0); the joint answers of [groups.{unit.name}] are: "
            f"{answers}"
        )
        raise IntakeError(names, possible, message, row=label)
    message = (
        f"case{where}: the answers have probability 0 under every latent state of the "
        "knowledge base"
    )
    raise IntakeError("case", possible, message, row=label)


def _chunks(n: int, size: int = CHUNK_ROWS):
    return (slice(lo, lo + size) for lo in range(0, n, size))


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def posterior(
    df: pd.DataFrame,
    setting: str | None = None,
    *,
    latents: bool = False,
    strict: bool = True,
    knowledge: KnowledgeBase | None = None,
    evidence: bool = False,
    refuse_impossible: bool = True,
) -> pd.DataFrame:
    """Exact posterior P(cause | observed answers) and P(red_flag | observed answers).

    Parameters
    ----------
    df : pandas.DataFrame
        Cases with the contract's intake columns; ``<NA>`` or an absent column means unknown.
        Only ``age`` is required (a whole number of years, 18..100). Booleans must be booleans.
    setting : {"primary_care", "spine_clinic"}, optional
        Clinical setting whose priors apply. By default each row's ``setting`` column, or
        ``"primary_care"`` when there is none.
    latents : bool, default=False
        Also return the posterior of the latent nerve root (``root_<root>``) and serious
        condition (``serious_<condition>``).
    strict : bool, default=True
        Refuse columns that are neither intake fields nor in :data:`OTHER_COLUMNS` (or start
        with one of :data:`OTHER_PREFIXES`), naming the closest field: a misspelt field would
        otherwise silently count as unknown. ``False`` ignores such columns.
    knowledge : KnowledgeBase, optional
        Another knowledge base (default: the packaged one).
    evidence : bool, default=False
        Also return ``log_evidence``, the natural log of the probability of the row's observed
        answers, ``log P(answers)``. Unknown answers are marginalised exactly, so for a field
        ``f`` unknown in a row, ``exp(log_evidence(row + f=v) - log_evidence(row))`` is
        ``P(f = v | answers)``: a next-best-question search gets every answer's chance from one
        posterior call over the hypothetical answers.
    refuse_impossible : bool, default=True
        Refuse a row whose answers have probability 0 (see Raises). ``False`` gives such a row
        NaN probabilities and a ``log_evidence`` of ``-inf`` instead (a hypothetical answer the
        model rules out weighs nothing).

    Returns
    -------
    pandas.DataFrame
        One column per cause (they sum to 1) and ``red_flag``, indexed like ``df``.

    Raises
    ------
    IntakeError
        A ``ValueError`` naming the field (and the first offending row) and what is allowed: if
        ``age`` is missing, out of range or not a whole number, a value is of the wrong type or
        outside the contract, a column is unknown (with ``strict``), or answers contradict each
        other (e.g. both worse and better when sitting: the model gives them probability 0).

    Examples
    --------
    >>> import vignettes
    >>> df = vignettes.generate(500, seed=3)
    >>> post = vignettes.posterior(df)
    >>> bool(abs(post[list(vignettes.CAUSES)].sum(axis=1) - 1).max() < 1e-9)
    True
    """
    kb = knowledge or load_knowledge()
    inputs = _inputs(df, kb, setting, strict)
    refuse = len(df) if refuse_impossible else 0
    values, names = _posterior_values(kb, inputs, df.index, latents, evidence, refuse)
    return pd.DataFrame(values, columns=names, index=df.index)


def _normalise(logp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``exp(logp)`` divided by its sum, and the log of that sum (``(rows, 1)``).

    One exponential per entry where ``exp(logp - logsumexp(logp))`` takes two. A row that is
    ``-inf`` throughout (impossible answers) gets NaN and a log sum of ``-inf``.
    """
    top = logp.max(axis=1, keepdims=True)
    top[~np.isfinite(top)] = 0.0
    joint = np.exp(logp - top)
    total = joint.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        joint /= total
        return joint, np.log(total) + top


def _posterior_values(
    kb: KnowledgeBase,
    inputs: dict[str, np.ndarray],
    index: pd.Index,
    latents: bool,
    evidence: bool,
    refuse: int,
) -> tuple[np.ndarray, list[str]]:
    """The posterior's columns for encoded answers (:func:`_inputs`), and their names; rows
    before ``refuse`` whose answers are impossible are refused, naming ``index``'s label."""
    parts = []
    for rows in _chunks(len(inputs["age"])):
        chunk = {k: v[rows] for k, v in inputs.items()}
        logp = _log_joint(kb, chunk)
        if rows.start < refuse:
            head = slice(0, min(refuse, rows.stop) - rows.start)
            _impossible(kb, {k: v[head] for k, v in chunk.items()}, logp[head], index[rows][head])
        joint, log_z = _normalise(logp)
        joint = joint.reshape(len(logp), len(CAUSES), len(SERIOUS_CONDITIONS), len(NERVE_ROOTS))
        cols = [joint.sum(axis=(2, 3)), joint[:, :, 1:, :].sum(axis=(1, 2, 3))[:, None]]
        if latents:
            cols += [joint.sum(axis=(1, 2)), joint.sum(axis=(1, 3))]
        if evidence:
            cols.append(log_z)
        parts.append(np.concatenate(cols, axis=1))
    names = [*CAUSES, "red_flag"]
    if latents:
        names += [f"root_{r}" for r in NERVE_ROOTS] + [f"serious_{s}" for s in SERIOUS_CONDITIONS]
    if evidence:
        names.append("log_evidence")
    values = np.concatenate(parts) if parts else np.empty((0, len(names)))
    return values, names


def _encode_answer(inputs: dict[str, np.ndarray], name: str, value: Any, span: slice) -> None:
    """Set ``name`` to ``value`` in the rows ``span`` of encoded answers, in place."""
    spec = FIELD_BY_NAME.get(name)
    if name == "duration_weeks":
        weeks = float(value)
        if not np.isfinite(weeks) or weeks < 0:
            raise IntakeError(name, "a number of weeks, 0 or more", f"{name}: got {value!r}")
        inputs["duration"][span] = np.floor(weeks + 0.5)  # whole weeks, as _inputs reads them
        inputs["duration_known"][span] = True
    elif spec is not None and spec.kind == "bool" and isinstance(value, bool | np.bool_):
        inputs[name][span] = int(value)
    elif spec is not None and spec.kind == "category" and value in spec.values:
        inputs[name][span] = spec.values.index(value)
    else:
        allowed = "a yes/no or category field and one of its values, or duration_weeks"
        raise IntakeError(name, allowed, f"{name}: cannot set it to {value!r}; expected {allowed}")


def _inputs_of_cases(
    cases: Sequence[Mapping[str, Any]], kb: KnowledgeBase, setting: str | None
) -> dict[str, np.ndarray]:
    """:func:`_inputs` for a few cases given as mappings, each checked by the one validator:
    no frame is built (for one interview's step, a frame costs more than the arithmetic)."""
    valid = [validate_case(case) for case in cases]
    age = np.array([c["age"] for c in valid], dtype=np.int64)
    weeks = [c["duration_weeks"] for c in valid]
    duration = np.array([np.nan if w is None else w for w in weeks], dtype=float)
    duration_known = ~np.isnan(duration)
    inputs = {
        "age": age,
        "band": kb.band_of(age),
        "setting": _settings(pd.DataFrame(index=range(len(valid))), setting),
        "duration": np.floor(np.where(duration_known, duration, 0.0) + 0.5),
        "duration_known": duration_known,
    }
    for name in ("sex", *TABLE_FIELDS):
        code = answer_code(name)
        inputs[name] = np.array([code[c[name]] for c in valid], dtype=np.int16)
    return inputs


def posterior_after_answers(
    df: pd.DataFrame | Sequence[Mapping[str, Any]],
    answers: Sequence[tuple[str, Any, np.ndarray]],
    setting: str | None = None,
    *,
    strict: bool = True,
    knowledge: KnowledgeBase | None = None,
) -> pd.DataFrame:
    """The exact posterior of each case, then of chosen cases with one more answer, in one call.

    What a next-best-question search needs: every answer of every unasked question scored
    without building a frame per hypothetical case. The answers are encoded once and copied.

    Parameters
    ----------
    df : pandas.DataFrame or sequence of mapping
        Cases, as for :func:`posterior`, or a few cases as mappings (each checked by
        :func:`vignettes.intake.validate_case`; no frame is built). Their answers are refused
        if impossible.
    answers : sequence of (field, value, rows)
        Each a hypothetical answer: the cases at the positions ``rows`` of ``df`` with ``field``
        set to ``value`` (a yes/no or category field, or ``duration_weeks`` in weeks).
    setting, strict, knowledge
        As for :func:`posterior`.

    Returns
    -------
    pandas.DataFrame
        ``len(df) + sum(len(rows))`` rows, positionally indexed: the cases, then each answer's
        rows in order; the causes, ``red_flag`` and ``log_evidence`` (as ``evidence=True``).
        A hypothetical answer the model rules out gets NaN probabilities and ``-inf``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> df = pd.DataFrame({"age": [40]})
    >>> out = posterior_after_answers(df, [("fever", True, np.array([0]))])
    >>> bool(out["red_flag"].iloc[1] > out["red_flag"].iloc[0])
    True
    """
    kb = knowledge or load_knowledge()
    if isinstance(df, pd.DataFrame):
        base, index = _inputs(df, kb, setting, strict), df.index
    else:
        base, index = _inputs_of_cases(df, kb, setting), pd.RangeIndex(len(df))
    spans = []
    source = [np.arange(len(df))]
    start = len(df)
    for name, value, rows in answers:
        positions = np.asarray(rows, dtype=np.int64)
        source.append(positions)
        spans.append((name, value, slice(start, start + positions.size)))
        start += positions.size
    picked = np.concatenate(source)
    inputs = {k: v[picked] for k, v in base.items()}  # fancy indexing copies
    for name, value, span in spans:
        _encode_answer(inputs, name, value, span)
    values, names = _posterior_values(kb, inputs, index, False, True, len(df))
    return pd.DataFrame(values, columns=names)


def answer_distribution(
    df: pd.DataFrame,
    field: str,
    setting: str | None = None,
    *,
    strict: bool = True,
    knowledge: KnowledgeBase | None = None,
) -> pd.DataFrame:
    """Exact predictive distribution of one answer given the other answers of each case.

    For each row, P(field = value | the row's other observed answers) under the generator's
    model: the posterior over the latent states times each state's chance of the value, summed
    over states. Within a joint group the other members' answers count (e.g. with
    ``worse_sitting`` True, ``better_sitting`` True has probability 0).

    The row's own answer to ``field``, if any, is ignored: the result is what the answer was
    expected to be before it was given, the same as for a row where the field is unknown. (For
    a next-best-question search, ask it of the fields still unknown.)

    Parameters
    ----------
    df : pandas.DataFrame
        Cases, as for :func:`posterior`.
    field : str
        A boolean or categorical intake field.
    setting : {"primary_care", "spine_clinic"}, optional
        As for :func:`posterior`.
    strict : bool, default=True
        As for :func:`posterior`.
    knowledge : KnowledgeBase, optional
        Another knowledge base (default: the packaged one).

    Returns
    -------
    pandas.DataFrame
        One column per value, in schema order (``False``, ``True`` for a boolean field); rows
        sum to 1; indexed like ``df``.

    Raises
    ------
    IntakeError
        If ``field`` is not a boolean or categorical intake field, or as for :func:`posterior`.

    Examples
    --------
    >>> import pandas as pd, vignettes
    >>> case = pd.DataFrame([{"age": 70, "worse_walking": True}])
    >>> p = vignettes.answer_distribution(case, "better_sitting")
    >>> list(p.columns), bool(abs(p.sum(axis=1) - 1).max() < 1e-12)
    ([False, True], True)
    """
    if field not in FIELD_BY_NAME:
        close = difflib.get_close_matches(str(field), FIELD_NAMES, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        message = f"{field}: unknown field; {hint}expected an intake field"
        raise IntakeError(str(field), "an intake field", message)
    kind = FIELD_BY_NAME[field].kind
    if kind not in ("bool", "category"):
        message = (
            f"{field}: answer_distribution covers boolean and categorical fields; {field} is "
            f"{'an integer' if kind == 'int' else 'a number'}"
        )
        raise IntakeError(field, "a boolean or categorical intake field", message)
    if field not in TABLE_FIELDS:  # sex: a demographic with its own table
        return _sex_distribution(df, setting, strict, knowledge or load_knowledge())
    kb = knowledge or load_knowledge()
    inputs = _inputs(df, kb, setting, strict)
    if kb.imaging is not None and field in (kb.imaging.field, *kb.imaging.factors):
        return _enumerated_distribution(df, field, inputs, kb)
    unit = kb.unit_of(field)
    patterns = next(p for p in _pattern_tables(kb) if p.unit is unit)
    member = unit.fields.index(field)
    n_values, stride = unit.n_values[member], patterns.strides[member]
    parts = []
    for rows in _chunks(len(df)):
        chunk = {k: v[rows] for k, v in inputs.items()}
        chunk[field] = np.full(len(chunk["age"]), -1, dtype=np.int16)  # ignore its own answer
        rest = _log_joint(kb, chunk, skip=unit)
        base = patterns.index([chunk[name] for name in unit.fields]) - n_values * stride
        log_m = np.empty((len(rest), n_values))
        for value in range(n_values):
            table = patterns.log[chunk["band"], base + value * stride]
            log_m[:, value] = logsumexp(rest + table, axis=1)
        if not np.isfinite(log_m).any(axis=1).all():
            _impossible(
                kb,
                chunk,
                rest + patterns.log[chunk["band"], base + n_values * stride],
                df.index[rows],
            )
        parts.append(np.exp(log_m - logsumexp(log_m, axis=1, keepdims=True)))
    labels = [False, True] if kind == "bool" else list(FIELD_BY_NAME[field].values)
    values = np.concatenate(parts) if parts else np.empty((0, len(labels)))
    return pd.DataFrame(values, columns=pd.Index(labels, dtype=object), index=df.index)


def _enumerated_distribution(
    df: pd.DataFrame, field: str, inputs: dict[str, np.ndarray], kb: KnowledgeBase
) -> pd.DataFrame:
    """answer_distribution by trying each value: P(value, other answers) for every value.

    For the imaging field and the answers it depends on, where one unit's probability depends
    on another's answer, so leaving a unit out is not enough.
    """
    field_def = FIELD_BY_NAME[field]
    labels = [False, True] if field_def.kind == "bool" else list(field_def.values)
    parts = []
    for rows in _chunks(len(df)):
        chunk = {k: v[rows] for k, v in inputs.items()}
        n = len(chunk["age"])
        chunk[field] = np.full(n, -1, dtype=np.int16)
        _impossible(kb, chunk, _log_joint(kb, chunk), df.index[rows])
        log_m = np.empty((n, len(labels)))
        for value in range(len(labels)):
            chunk[field] = np.full(n, value, dtype=np.int16)
            log_m[:, value] = logsumexp(_log_joint(kb, chunk), axis=1)
        parts.append(np.exp(log_m - logsumexp(log_m, axis=1, keepdims=True)))
    values = np.concatenate(parts) if parts else np.empty((0, len(labels)))
    return pd.DataFrame(values, columns=pd.Index(labels, dtype=object), index=df.index)


def _sex_distribution(
    df: pd.DataFrame, setting: str | None, strict: bool, kb: KnowledgeBase
) -> pd.DataFrame:
    """answer_distribution for ``sex``: it depends on the cause only."""
    inputs = _inputs(df, kb, setting, strict)
    parts = []
    for rows in _chunks(len(df)):
        chunk = {k: v[rows] for k, v in inputs.items()}
        chunk["sex"] = np.full(len(chunk["age"]), -1, dtype=np.int16)
        logp = _log_joint(kb, chunk)
        _impossible(kb, chunk, logp, df.index[rows])
        joint, _ = _normalise(logp)
        cause = joint.reshape(len(logp), len(CAUSES), -1).sum(axis=2)
        female = cause @ kb.female
        parts.append(np.column_stack([female, 1 - female]))
    labels = list(FIELD_BY_NAME["sex"].values)
    values = np.concatenate(parts) if parts else np.empty((0, len(labels)))
    return pd.DataFrame(values, columns=pd.Index(labels, dtype=object), index=df.index)
