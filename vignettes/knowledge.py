"""Load and validate the knowledge base (``knowledge.toml``) into probability tables.

The TOML file is the knowledge; this module turns it into NumPy arrays indexed by the latent
state, and refuses a file that is incomplete, unsourced, misspelt or not a probability
distribution, with a :class:`KnowledgeError` naming the table at fault. Both the sampler
(:mod:`vignettes.generate`) and the exact posterior (:mod:`vignettes.posterior`) read the same
:class:`KnowledgeBase`, so they cannot disagree.

The latent state of a case is ``(age band, cause, serious condition, nerve root)``. Every field
table has shape ``(n_bands, n_causes, n_serious, n_roots, n_values)``: a distribution over the
field's values for every state. Boolean fields have two values, ``(False, True)``.

Answers are conditionally independent given the latent state, except within a *joint group*
(``[groups.*]``): several fields answered together, with a distribution over their joint answers
for every state (e.g. sitting worsens, does nothing to, or relieves the pain; never both). The
engine treats every field as a group: :attr:`KnowledgeBase.units` lists the declared groups and
a one-field group for every other field, so the sampler and the posterior have one code path.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

# scipy.special's normal CDFs are what scipy.stats.norm calls; importing scipy.stats would add
# 0.4 s to every start of the command line
from scipy.special import log_ndtr, ndtr

from vignettes.schema import (
    CAUSES,
    FIELD_BY_NAME,
    FIELDS,
    NERVE_ROOTS,
    SERIOUS_CONDITIONS,
    SETTINGS,
)
from vignettes.toml_check import KnowledgeError, did_you_mean, load_toml

KNOWLEDGE_PATH = Path(__file__).with_name("knowledge.toml")
AGE_MIN, AGE_MAX = 18, 100
AGES = np.arange(AGE_MIN, AGE_MAX + 1)
# Fields with their own generative form (demographics); every other field is in [fields.*] or in
# a joint group [groups.*].
SPECIAL_FIELDS = ("age", "sex", "duration_weeks")
TABLE_FIELDS = tuple(f.name for f in FIELDS if f.name not in SPECIAL_FIELDS)
TOP_LEVEL = (
    "age_bands",
    "priors",
    "age",
    "female",
    "duration_weeks",
    "nerve_root",
    "serious",
    "fields",
    "groups",
    "missingness",
    "uncertainty",
)
"""The tables a knowledge document may have; all but ``groups`` and ``uncertainty`` are
required (``uncertainty`` is read by ``vignettes.perturb``)."""
GROUP_PARENTS = ("cause", "nerve_root")
_TOL = 1e-6


@dataclass(frozen=True, eq=False)
class FieldGroup:
    """Fields answered together: a distribution over their joint answers for every state.

    A field outside any declared group is a group of one (its answers are its values), so the
    sampler and the posterior handle every field the same way.

    Attributes
    ----------
    name : str
        The group's name (``[groups.<name>]``), or the field's name for a group of one.
    fields : tuple of str
        Member fields, in schema order.
    answers : tuple of str
        Names of the joint answers, sorted by the members' value codes (first member slowest):
        drawing an answer by inverse CDF then draws the first member from its own marginal.
    codes : ndarray of shape (n_answers, n_fields)
        Value code of each member in each joint answer (booleans: 0 = False, 1 = True).
    n_values : tuple of int
        Number of values of each member.
    table : ndarray of shape (n_bands, n_causes, n_serious, n_roots, n_answers)
        P(joint answer | state).
    """

    name: str
    fields: tuple[str, ...]
    answers: tuple[str, ...]
    codes: np.ndarray
    n_values: tuple[int, ...]
    table: np.ndarray


@dataclass(frozen=True, eq=False)
class ImagingDecision:
    """Whether an MRI was done, from the answers a clinician decides on, and what it shows.

    ``P(not_done) = base[setting] * f(duration) * prod_j g_j(answer_j)``: the setting's base rate
    times one factor per duration bin and per listed boolean answer (failed conservative care,
    weakness, ...), never the hidden cause itself. When an MRI was done its finding depends on
    the latent state (:attr:`done`). The listed answers are conditionally independent given the
    latent state, so where one is unknown its factor's exact expectation given the state
    (:meth:`expected_factor`) stands in for it, and the posterior stays exact.

    Attributes
    ----------
    field : str
        The imaging field (``mri_finding``); its first value is ``not_done``.
    base : ndarray of shape (n_settings,)
        P(not done) before the factors, per clinical setting.
    duration_edges : ndarray of float
        Whole-week bin edges: bin ``i`` holds ``edges[i-1] <= weeks < edges[i]``.
    duration_factor : ndarray of shape (len(duration_edges) + 1,)
        Factor of each duration bin.
    factors : dict of str to ndarray of shape (2,)
        Per boolean answer, the factor for ``False`` and for ``True``.
    done : ndarray of shape (n_bands, n_causes, n_values)
        P(value | an MRI was done, band, cause); the ``not_done`` column is 0.
    """

    field: str
    base: np.ndarray
    duration_edges: np.ndarray
    duration_factor: np.ndarray
    factors: dict[str, np.ndarray]
    done: np.ndarray

    def duration_bin(self, weeks: np.ndarray) -> np.ndarray:
        """Bin index of whole-week durations."""
        return np.searchsorted(self.duration_edges, np.asarray(weeks, dtype=float), side="right")

    def expected_duration_factor(self, duration: np.ndarray) -> np.ndarray:
        """E[f(duration) | cause], shape ``(n_causes,)``, for log-normal ``(log median, sigma)``.

        Durations are rounded to whole weeks, so ``rounded < e`` for a whole ``e`` is
        ``exp(X) < e - 0.5``.
        """
        mu, sigma = duration[:, 0], duration[:, 1]
        below = [
            ndtr((np.log(edge - 0.5) - mu) / sigma) if edge > 0.5 else np.zeros_like(mu)
            for edge in self.duration_edges
        ]
        cdf = np.column_stack([np.zeros_like(mu), *below, np.ones_like(mu)])
        return np.diff(cdf, axis=1) @ self.duration_factor

    def expected_factor(self, name: str, table: np.ndarray) -> np.ndarray:
        """E[g(answer) | state] from the answer's table ``(..., 2)``: shape of the states."""
        return table @ self.factors[name]


@dataclass(frozen=True, eq=False)  # identity hash: tables are cached per instance
class KnowledgeBase:
    """The generative model as arrays.

    Attributes
    ----------
    band_names : tuple of str
        Age band names, in order.
    band_edges : ndarray of int
        Lower age of each band.
    prior : ndarray of shape (n_settings, n_causes)
        P(cause | setting).
    age_pmf : ndarray of shape (n_causes, n_ages)
        P(age | cause) over whole years 18..100.
    female : ndarray of shape (n_causes,)
        P(sex = female | cause).
    duration : ndarray of shape (n_causes, 2)
        Log-normal ``(log median, sigma)`` of the duration in weeks, per cause.
    root : ndarray of shape (n_causes, n_roots)
        P(nerve root | cause).
    serious : ndarray of shape (n_settings, n_bands, n_causes, n_serious)
        P(serious condition | cause, age band, setting).
    tables : dict of str to ndarray
        Per field, P(value | band, cause, serious, root), shape (n_bands, 7, 5, 6, n_values). For
        a member of a joint group this is its marginal; answers within a group are *not*
        independent, so a model must use :attr:`groups` (or :attr:`units`) for them.
    groups : dict of str to FieldGroup
        The declared joint groups (``[groups.*]``).
    units : tuple of FieldGroup
        Every field of :data:`TABLE_FIELDS` exactly once: the declared groups and a group of one
        for each other field, in the schema order of their first member. The sampler draws, and
        the posterior scores, one unit at a time.
    missing : dict of str to float
        Per field, the probability the answer is unknown (completely at random).
    red_flag_block : float
        Probability that no red-flag question was asked at all.
    examination_block : float
        Probability that no clinician examined the patient: every examination answer
        (``vignettes.schema.EXAMINATION_FIELDS``) is unknown.
    imaging : ImagingDecision or None
        Whether an MRI was done and what it showed; its field's entry in :attr:`tables` is the
        finding given that an MRI was done (``not_done`` 0), and the sampler and posterior
        score it through this object, not through its unit's table.
    sources : dict of str to str
        Where each table's numbers come from.
    document : dict or None
        The parsed document the tables were built from (``vignettes.perturb`` redraws its
        numbers within their stated uncertainty, ``[uncertainty.tables]``).
    """

    band_names: tuple[str, ...]
    band_edges: np.ndarray
    prior: np.ndarray
    age_pmf: np.ndarray
    female: np.ndarray
    duration: np.ndarray
    root: np.ndarray
    serious: np.ndarray
    tables: dict[str, np.ndarray]
    groups: dict[str, FieldGroup]
    units: tuple[FieldGroup, ...]
    missing: dict[str, float]
    red_flag_block: float
    examination_block: float
    imaging: ImagingDecision | None
    sources: dict[str, str]
    document: dict[str, Any] | None = field(default=None, repr=False)

    def band_of(self, age: np.ndarray) -> np.ndarray:
        """Age band index of each age."""
        return np.searchsorted(self.band_edges, np.asarray(age), side="right") - 1

    def unit_of(self, field: str) -> FieldGroup:
        """The unit (joint group or group of one) a table field belongs to."""
        for unit in self.units:
            if field in unit.fields:
                return unit
        raise KeyError(field)

    def duration_logpmf(self, weeks: np.ndarray, longest: np.ndarray | None = None) -> np.ndarray:
        """log P(duration = weeks | cause) for whole weeks, shape ``(len(weeks), n_causes)``.

        Durations are a log-normal rounded to the nearest week, so the mass of week ``k`` is
        ``F(k + 0.5) - F(k - 0.5)`` (week 0 takes everything below 0.5). With ``longest`` (per
        row, :func:`vignettes.schema.longest_duration` of the age), durations are capped there,
        as the generator caps them: that week takes the whole upper tail.
        """
        k = np.asarray(weeks, dtype=float)[:, None]
        capped = np.zeros(k.shape, dtype=bool)
        if longest is not None:
            cap = np.asarray(longest, dtype=float)[:, None]
            capped = k >= cap
            k = np.minimum(k, cap)
        mu, sigma = self.duration[:, 0], self.duration[:, 1]
        with np.errstate(divide="ignore"):
            z_lo = (np.log(np.maximum(k - 0.5, 0.0)) - mu) / sigma
        z_hi = (np.log(k + 0.5) - mu) / sigma
        # log(Phi(z_hi) - Phi(z_lo)) without cancellation: use the lower tail below the median
        # and the upper tail above it.
        upper_tail = z_lo > 0
        big = np.where(upper_tail, log_ndtr(-z_lo), log_ndtr(z_hi))
        small = np.where(upper_tail, log_ndtr(-z_hi), log_ndtr(z_lo))
        with np.errstate(divide="ignore"):
            mass = big + np.log1p(-np.exp(small - big))
        return np.where(capped, log_ndtr(-z_lo), mass)


# --------------------------------------------------------------------------------------------
# Small validators: every one raises KnowledgeError naming ``where``
# --------------------------------------------------------------------------------------------


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise KnowledgeError(f"{where}: must be a table, got {type(value).__name__} {value!r}")
    return value


def _require(table: dict[str, Any], key: str, where: str) -> Any:
    """``table[key]``; ``where`` names the table holding it, or the missing table itself."""
    if key not in _table(table, where):
        if where.endswith((f"[{key}]", f".{key}]")):
            raise KnowledgeError(f"{where}: the table is missing")
        raise KnowledgeError(f"{where}: missing '{key}'")
    return table[key]


def _check_keys(table: dict[str, Any], allowed: Iterable[str], where: str) -> None:
    """Refuse keys outside ``allowed``, suggesting the closest allowed name."""
    allowed = list(allowed)
    unknown = sorted(set(_table(table, where)) - set(allowed))
    if unknown:
        hint = did_you_mean(unknown[0], allowed)
        raise KnowledgeError(f"{where}: unknown keys {unknown}{hint}; allowed: {allowed}")


def _number(
    value: Any,
    where: str,
    low: float | None = None,
    high: float | None = None,
    *,
    above: float | None = None,
) -> float:
    """A finite real number within ``[low, high]`` (or strictly above ``above``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise KnowledgeError(f"{where}: expected a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise KnowledgeError(f"{where}: expected a finite number, got {value!r}")
    if above is not None and number <= above:
        raise KnowledgeError(f"{where}: must be > {above:g}, got {number:g}")
    if (low is not None and number < low) or (high is not None and number > high):
        span = f"[{low:g}, {high:g}]" if high is not None else f">= {low:g}"
        kind = "probabilities must lie in" if (low, high) == (0, 1) else "must be"
        raise KnowledgeError(f"{where}: {kind} {span}, got {number:g}")
    return number


def _source(table: dict[str, Any], where: str, key: str = "source") -> str:
    text = _require(table, key, where)
    if not isinstance(text, str) or len(text.strip()) < 10:
        raise KnowledgeError(f"{where}: '{key}' must say where the numbers come from")
    return text.strip()


def _vector(
    table: dict[str, Any],
    names: tuple[str, ...],
    where: str,
    fill: float | None,
    high: float | None = 1.0,
) -> np.ndarray:
    """Read ``{name: number}`` into a vector in ``names`` order; absent names take the default.

    Numbers must lie in ``[0, high]`` (probabilities by default; ``high=None``: any rate >= 0).
    """
    _check_keys(table, (*names, "default", "source"), where)
    default = table.get("default", fill)
    if "default" in table:
        _number(default, f"{where}.default", 0.0, high)
    values = []
    for name in names:
        value = table.get(name, default)
        if value is None:
            raise KnowledgeError(f"{where}: no value for '{name}' and no default")
        values.append(_number(value, f"{where}.{name}", 0.0, high))
    return np.array(values)


def _distribution(table: dict[str, Any], names: tuple[str, ...], where: str) -> np.ndarray:
    out = _vector(table, names, where, fill=0.0)
    if abs(out.sum() - 1.0) > _TOL:
        raise KnowledgeError(f"{where}: probabilities must sum to 1, they sum to {out.sum():.6f}")
    return out


def _distributions(
    table: dict[str, Any],
    rows: tuple[str, ...],
    values: tuple[str, ...],
    where: str,
    meta: tuple[str, ...] = ("source",),
) -> np.ndarray:
    """One distribution over ``values`` per row name; every row required, no other rows."""
    _check_keys(table, (*rows, *meta), where)
    return np.stack(
        [
            _distribution(_table(_require(table, r, where), f"{where}.{r}"), values, f"{where}.{r}")
            for r in rows
        ]
    )


# --------------------------------------------------------------------------------------------
# Demographics, latent variables
# --------------------------------------------------------------------------------------------


def _bands(doc: dict[str, Any]) -> tuple[tuple[str, ...], np.ndarray]:
    where = "age_bands"
    spec = _table(_require(doc, "age_bands", where), where)
    if not spec:
        raise KnowledgeError(f"{where}: needs at least one band")
    bounds = []
    for name, pair in spec.items():
        ok = isinstance(pair, list) and len(pair) == 2
        if not ok or any(isinstance(a, bool) or not isinstance(a, int) for a in pair):
            raise KnowledgeError(f"{where}.{name}: expected [first age, last age], got {pair!r}")
        bounds.append(pair)
    lows, highs = np.array([b[0] for b in bounds]), np.array([b[1] for b in bounds])
    if lows[0] != AGE_MIN or highs[-1] != AGE_MAX or np.any(highs < lows):
        raise KnowledgeError(f"{where}: must start at {AGE_MIN}, end at {AGE_MAX} and increase")
    if np.any(lows[1:] != highs[:-1] + 1):
        raise KnowledgeError(f"{where}: must start at {AGE_MIN} and increase without gaps")
    return tuple(spec), lows


def _age_pmf(doc: dict[str, Any], sources: dict[str, str]) -> np.ndarray:
    table = _table(_require(doc, "age", "[age]"), "[age]")
    _check_keys(table, CAUSES, "[age]")
    pmf = np.empty((len(CAUSES), AGES.size))
    for i, cause in enumerate(CAUSES):
        where = f"[age].{cause}"
        spec = _table(_require(table, cause, "[age]"), where)
        _check_keys(spec, ("mean", "sd", "source"), where)
        sources[f"age.{cause}"] = _source(spec, where)
        mean = _number(_require(spec, "mean", where), f"{where}.mean")
        sd = _number(_require(spec, "sd", where), f"{where}.sd", above=0.0)
        density = np.exp(-0.5 * ((AGES - mean) / sd) ** 2)
        if not density.sum() > 0:
            raise KnowledgeError(f"{where}: no probability between {AGE_MIN} and {AGE_MAX}")
        pmf[i] = density / density.sum()
    return pmf


def _duration(doc: dict[str, Any], sources: dict[str, str]) -> np.ndarray:
    where = "[duration_weeks]"
    table = _table(_require(doc, "duration_weeks", where), where)
    _check_keys(table, (*CAUSES, "source"), where)
    sources["duration_weeks"] = _source(table, where)
    out = np.empty((len(CAUSES), 2))
    for i, cause in enumerate(CAUSES):
        spec = _table(_require(table, cause, where), f"{where}.{cause}")
        _check_keys(spec, ("median", "sigma"), f"{where}.{cause}")
        median = _number(_require(spec, "median", f"{where}.{cause}"), f"{where}.{cause}.median")
        sigma = _number(_require(spec, "sigma", f"{where}.{cause}"), f"{where}.{cause}.sigma")
        if median <= 0:
            raise KnowledgeError(f"{where}.{cause}.median: must be > 0 weeks, got {median:g}")
        if sigma <= 0:
            raise KnowledgeError(f"{where}.{cause}.sigma: must be > 0, got {sigma:g}")
        out[i] = np.log(median), sigma
    return out


def _serious(doc: dict[str, Any], bands: tuple[str, ...], sources: dict[str, str]) -> np.ndarray:
    """P(s | cause, band, setting) = base * setting multiplier * rr_cause * rr_age."""
    table = _table(_require(doc, "serious", "[serious]"), "[serious]")
    _check_keys(
        table, ("setting_multiplier", "setting_source", *SERIOUS_CONDITIONS[1:]), "[serious]"
    )
    sources["serious.setting_multiplier"] = _source(table, "[serious]", "setting_source")
    where = "[serious].setting_multiplier"
    mult = _table(_require(table, "setting_multiplier", "[serious]"), where)
    _check_keys(mult, SETTINGS, where)
    multiplier = np.array(
        [_number(_require(mult, s, where), f"{where}.{s}", 0.0) for s in SETTINGS]
    )
    out = np.zeros((len(SETTINGS), len(bands), len(CAUSES), len(SERIOUS_CONDITIONS)))
    for k, condition in enumerate(SERIOUS_CONDITIONS[1:], start=1):
        where = f"[serious.{condition}]"
        spec = _table(_require(table, condition, where), where)
        _check_keys(spec, ("base", "source", "rr_cause", "rr_age"), where)
        sources[f"serious.{condition}"] = _source(spec, where)
        base = _number(_require(spec, "base", where), f"{where}.base", 0.0, 1.0)
        rr_cause = _vector(
            _require(spec, "rr_cause", where), CAUSES, f"{where}.rr_cause", 1.0, high=None
        )
        rr_age = _vector(_require(spec, "rr_age", where), bands, f"{where}.rr_age", 1.0, high=None)
        out[:, :, :, k] = (
            base * multiplier[:, None, None] * rr_age[None, :, None] * rr_cause[None, None, :]
        )
    out[..., 0] = 1.0 - out[..., 1:].sum(axis=-1)
    if np.any(out[..., 0] < 0):
        raise KnowledgeError("[serious]: serious conditions add up to more than 1")
    return out


def _parent_names(bands: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    return {
        "age_band": bands,
        "cause": CAUSES,
        "serious": SERIOUS_CONDITIONS,
        "nerve_root": NERVE_ROOTS,
    }


def _state_shape(bands: tuple[str, ...]) -> tuple[int, int, int, int]:
    return len(bands), len(CAUSES), len(SERIOUS_CONDITIONS), len(NERVE_ROOTS)


def _by_parent(dist: np.ndarray, parent: str, bands: tuple[str, ...]) -> np.ndarray:
    """Broadcast ``(n_parent, n_values)`` rows of ``cause`` or ``nerve_root`` to every state."""
    shape = (*_state_shape(bands), dist.shape[-1])
    if parent == "cause":
        return np.broadcast_to(dist[None, :, None, None, :], shape).copy()
    return np.broadcast_to(dist[None, None, None, :, :], shape).copy()


# --------------------------------------------------------------------------------------------
# Field tables
# --------------------------------------------------------------------------------------------


def _bernoulli(spec: dict[str, Any], bands: tuple[str, ...], where: str) -> np.ndarray:
    """Noisy-OR over the listed parents: P(true) = 1 - prod (1 - p_parent)."""
    names = _parent_names(bands)
    _check_keys(spec, ("kind", "source", *names), where)
    p_false = np.ones(_state_shape(bands))
    for axis, parent in enumerate(names):
        if parent not in spec:
            continue
        p = _vector(
            _table(spec[parent], f"{where}.{parent}"), names[parent], f"{where}.{parent}", 0.0
        )
        shape = [1, 1, 1, 1]
        shape[axis] = p.size
        p_false = p_false * (1.0 - p.reshape(shape))
    return np.stack([p_false, 1.0 - p_false], axis=-1)


def _parent(spec: dict[str, Any], where: str) -> str:
    parent = _require(spec, "by", where)
    if parent not in GROUP_PARENTS:
        raise KnowledgeError(f"{where}: 'by' must be 'cause' or 'nerve_root', got {parent!r}")
    return parent


def _categorical(spec: dict[str, Any], values: tuple[str, ...], bands: tuple[str, ...], where: str):
    """One distribution per value of the parent (``by``); ``by_serious`` rows replace them.

    A serious condition whose answer follows the condition rather than the cause (cauda equina
    is often bilateral, whatever disc or canal causes it) has its own row in ``by_serious``,
    used for every cause, band and root in that condition.
    """
    parent = _parent(spec, where)
    names = _parent_names(bands)[parent]
    meta = ("kind", "by", "source", "by_serious")
    dist = _distributions(spec, names, values, where, meta=meta)
    table = _by_parent(dist, parent, bands)
    if "by_serious" in spec:
        at = f"{where}.by_serious"
        conditions = _table(spec["by_serious"], at)
        _check_keys(conditions, SERIOUS_CONDITIONS[1:], at)
        for condition, row in conditions.items():
            own = _distribution(_table(row, f"{at}.{condition}"), values, f"{at}.{condition}")
            table[:, :, SERIOUS_CONDITIONS.index(condition)] = own
    return table


IMAGING_KEYS = (
    "kind",
    "source",
    "not_done",
    "not_done_source",
    "finding",
    "finding_source",
    "sensitivity",
    "background",
    "background_source",
)


def _imaging(
    spec: dict[str, Any],
    values: tuple[str, ...],
    bands: tuple[str, ...],
    where: str,
    sources: dict[str, str],
    name: str,
) -> tuple[np.ndarray, ImagingDecision]:
    """Whether an MRI was done (:class:`ImagingDecision`); if so the cause's own finding w.p.
    ``sensitivity``, else one from the age background of people without pain."""
    if values[0] != "not_done":
        raise KnowledgeError(
            f"{where}: kind 'imaging' needs 'not_done' as the field's first value, "
            f"the field's values are {list(values)}"
        )
    _check_keys(spec, IMAGING_KEYS, where)
    for key in ("not_done_source", "finding_source", "background_source"):
        if key in spec:
            sources[f"{name}.{key.removesuffix('_source')}"] = _source(spec, where, key)
    done_values = values[1:]
    background = _distributions(
        _table(_require(spec, "background", where), f"{where}.background"),
        bands,
        done_values,
        f"{where}.background",
        meta=(),
    )
    sensitivity = _vector(
        _table(_require(spec, "sensitivity", where), f"{where}.sensitivity"),
        CAUSES,
        f"{where}.sensitivity",
        fill=0.0,
    )
    finding = _table(_require(spec, "finding", where), f"{where}.finding")
    _check_keys(finding, CAUSES, f"{where}.finding")
    own = np.zeros((len(CAUSES), len(done_values)))
    for i, cause in enumerate(CAUSES):
        value = finding.get(cause)
        if value is not None:
            if value not in done_values:
                raise KnowledgeError(f"{where}.finding.{cause}: {value!r} not in {done_values}")
            own[i, done_values.index(value)] = 1.0
        elif sensitivity[i] > 0:
            raise KnowledgeError(f"{where}: sensitivity for {cause} but no finding")
    done = (
        sensitivity[None, :, None] * own[None]
        + (1 - sensitivity[None, :, None]) * background[:, None, :]
    )  # (bands, causes, done values)
    done = np.concatenate([np.zeros((*done.shape[:2], 1)), done], axis=-1)
    decision = _not_done(
        _table(_require(spec, "not_done", where), f"{where}.not_done"), name, done, where
    )
    shape = (*_state_shape(bands), len(values))
    return np.broadcast_to(done[:, :, None, None, :], shape).copy(), decision


def _not_done(spec: dict[str, Any], name: str, done: np.ndarray, where: str) -> ImagingDecision:
    """``not_done``: a base rate per setting times a factor per duration bin and per answer."""
    where = f"{where}.not_done"
    parents = [f.name for f in FIELDS if f.kind == "bool" and f.name in TABLE_FIELDS]
    _check_keys(spec, ("setting", "duration_weeks", *parents), where)
    setting = _table(_require(spec, "setting", where), f"{where}.setting")
    base = _vector(setting, SETTINGS, f"{where}.setting", fill=None)
    edges, duration_factor = np.array([]), np.ones(1)
    if "duration_weeks" in spec:
        at = f"{where}.duration_weeks"
        bins = _table(spec["duration_weeks"], at)
        _check_keys(bins, ("edges", "factor"), at)
        raw_edges, raw_factor = _require(bins, "edges", at), _require(bins, "factor", at)
        if not isinstance(raw_edges, list) or not isinstance(raw_factor, list):
            raise KnowledgeError(f"{at}: 'edges' and 'factor' must be lists of numbers")
        edges = np.array([_number(e, f"{at}.edges", 1.0) for e in raw_edges])
        if np.any(edges != np.floor(edges)) or np.any(np.diff(edges) <= 0):
            raise KnowledgeError(f"{at}.edges: must be increasing whole weeks, got {raw_edges}")
        if len(raw_factor) != len(raw_edges) + 1:
            raise KnowledgeError(
                f"{at}.factor: needs one factor per bin ({len(raw_edges) + 1}), "
                f"got {len(raw_factor)}"
            )
        duration_factor = np.array([_number(f, f"{at}.factor", 0.0, 1.0) for f in raw_factor])
    factors = {}
    for parent in (p for p in parents if p in spec):
        at = f"{where}.{parent}"
        pair = _table(spec[parent], at)
        _check_keys(pair, ("false", "true"), at)
        factors[parent] = np.array(
            [_number(_require(pair, k, at), f"{at}.{k}", 0.0, 1.0) for k in ("false", "true")]
        )
    return ImagingDecision(name, base, edges, duration_factor, factors, done)


def _field_tables(
    doc: dict[str, Any],
    bands: tuple[str, ...],
    grouped: set[str],
    sources: dict[str, str],
    imaging: list[ImagingDecision],
) -> dict[str, np.ndarray]:
    """Every table of ``[fields.*]``; an imaging field also appends its decision to ``imaging``."""
    fields = _table(_require(doc, "fields", "[fields]"), "[fields]")
    expected = [name for name in TABLE_FIELDS if name not in grouped]
    twice = sorted(set(fields) & grouped)
    if twice:
        raise KnowledgeError(f"[fields]: {twice} are defined by a joint group in [groups]")
    missing = set(expected) - set(fields)
    extra = set(fields) - set(expected)
    if missing or extra:
        raise KnowledgeError(f"[fields]: missing {sorted(missing)}, unknown {sorted(extra)}")
    tables = {}
    for name in expected:
        where = f"[fields.{name}]"
        spec = _table(fields[name], where)
        sources[name] = _source(spec, where)
        kind = _require(spec, "kind", where)
        field = FIELD_BY_NAME[name]
        if kind == "bernoulli" and field.kind == "bool":
            tables[name] = _bernoulli(spec, bands, where)
        elif kind == "categorical" and field.kind == "category":
            tables[name] = _categorical(spec, field.values, bands, where)
        elif kind == "imaging" and field.kind == "category" and not imaging:
            tables[name], decision = _imaging(spec, field.values, bands, where, sources, name)
            imaging.append(decision)
        else:
            raise KnowledgeError(f"{where}: kind {kind!r} does not fit a {field.kind} field")
    return tables


# --------------------------------------------------------------------------------------------
# Joint groups
# --------------------------------------------------------------------------------------------


def _values(name: str) -> tuple[Any, ...]:
    """The values of a table field as written in TOML: booleans or strings."""
    field = FIELD_BY_NAME[name]
    return (False, True) if field.kind == "bool" else field.values


def _group_members(spec: dict[str, Any], where: str, taken: dict[str, str]) -> tuple[str, ...]:
    members = _require(spec, "fields", where)
    if not isinstance(members, list) or len(members) < 2:
        raise KnowledgeError(f"{where}.fields: expected a list of at least two fields")
    for name in members:
        if name not in TABLE_FIELDS:
            hint = did_you_mean(name, TABLE_FIELDS)
            raise KnowledgeError(
                f"{where}.fields: {name!r} is not a boolean or categorical intake field{hint}"
            )
        if name in taken:
            raise KnowledgeError(f"{where}.fields: {name!r} is already in [groups.{taken[name]}]")
        if FIELD_BY_NAME[name].kind not in ("bool", "category"):
            raise KnowledgeError(f"{where}.fields: {name!r} is not boolean or categorical")
    if len(set(members)) != len(members):
        raise KnowledgeError(f"{where}.fields: a field is listed twice")
    return tuple(sorted(members, key=TABLE_FIELDS.index))  # schema order


def _group_answers(
    spec: dict[str, Any], members: tuple[str, ...], where: str
) -> tuple[tuple[str, ...], np.ndarray]:
    """Joint answer names and their member value codes, as written (unsorted)."""
    answers = _table(_require(spec, "answers", where), f"{where}.answers")
    if not answers:
        raise KnowledgeError(f"{where}.answers: needs at least one joint answer")
    names, codes = [], []
    for answer, given in answers.items():
        at = f"{where}.answers.{answer}"
        given = _table(given, at)
        _check_keys(given, members, at)
        row = []
        for member in members:
            value = _require(given, member, at)
            allowed = _values(member)
            # `True in (False, True)` would also accept 1, and `1 == True`: compare types too.
            if not any(value == v and type(value) is type(v) for v in allowed):
                raise KnowledgeError(f"{at}.{member}: {value!r} is not one of {list(allowed)}")
            row.append(allowed.index(value))
        names.append(answer)
        codes.append(row)
    codes_arr = np.array(codes, dtype=np.int64)
    unique = {tuple(r) for r in codes_arr.tolist()}
    if len(unique) != len(names):
        raise KnowledgeError(f"{where}.answers: two joint answers give the same values")
    return tuple(names), codes_arr


def _group(
    name: str, spec: dict[str, Any], bands: tuple[str, ...], taken: dict[str, str]
) -> FieldGroup:
    where = f"[groups.{name}]"
    spec = _table(spec, where)
    members = _group_members(spec, where, taken)
    parent = _parent(spec, where)
    answers, codes = _group_answers(spec, members, where)
    rows = _parent_names(bands)[parent]
    meta = ("by", "fields", "answers", "source", "by_cause")
    dist = _distributions(spec, rows, answers, where, meta=meta)
    # Sort the joint answers by the members' codes, first member slowest: an inverse-CDF draw
    # of the joint answer then draws the first member exactly as from its own marginal.
    order = np.lexsort(codes.T[::-1])
    table = _by_parent(dist[:, order], parent, bands)
    if "by_cause" in spec:
        # A cause whose answers follow something other than the group's parent (piriformis
        # pain follows the sciatic nerve's territory without a compressed spinal root): its
        # own rows replace the parent's, whatever the parent's value.
        at = f"{where}.by_cause"
        if parent != "nerve_root":
            raise KnowledgeError(f"{at}: only a group by 'nerve_root' can have rows by cause")
        causes = _table(spec["by_cause"], at)
        _check_keys(causes, CAUSES, at)
        for cause, row in causes.items():
            own = _distribution(_table(row, f"{at}.{cause}"), answers, f"{at}.{cause}")
            table[:, CAUSES.index(cause)] = own[order]
    return FieldGroup(
        name=name,
        fields=members,
        answers=tuple(answers[i] for i in order),
        codes=codes[order],
        n_values=tuple(len(_values(m)) for m in members),
        table=table,
    )


def _groups(
    doc: dict[str, Any], bands: tuple[str, ...], sources: dict[str, str]
) -> dict[str, FieldGroup]:
    table = _table(doc.get("groups", {}), "[groups]")
    taken: dict[str, str] = {}
    groups = {}
    for name, spec in table.items():
        group = _group(name, spec, bands, taken)
        source = _source(spec, f"[groups.{name}]")
        sources[f"groups.{name}"] = source
        for member in group.fields:
            taken[member] = name
            sources[member] = source
        groups[name] = group
    return groups


def _marginal(group: FieldGroup, i: int) -> np.ndarray:
    """P(member i = value | state) from the group's joint table."""
    onehot = np.eye(group.n_values[i])[group.codes[:, i]]  # (answers, values)
    return group.table @ onehot


def _single(name: str, table: np.ndarray) -> FieldGroup:
    n_values = table.shape[-1]
    return FieldGroup(
        name=name,
        fields=(name,),
        answers=tuple(str(v).lower() if isinstance(v, bool) else v for v in _values(name)),
        codes=np.arange(n_values)[:, None],
        n_values=(n_values,),
        table=table,
    )


# --------------------------------------------------------------------------------------------
# Missingness, the whole document
# --------------------------------------------------------------------------------------------


def _missingness(
    doc: dict[str, Any], sources: dict[str, str]
) -> tuple[dict[str, float], float, float]:
    """Per-field rates, the red-flag block and the (optional, default 0) examination block."""
    where = "[missingness]"
    table = _table(_require(doc, "missingness", where), where)
    sources["missingness"] = _source(table, where)
    names = tuple(f.name for f in FIELDS if f.name != "age")
    block = _number(_require(table, "red_flag_block", where), f"{where}.red_flag_block", 0.0, 1.0)
    exam = _number(table.get("examination_block", 0.0), f"{where}.examination_block", 0.0, 1.0)
    blocks = ("red_flag_block", "examination_block")
    rates = _vector({k: v for k, v in table.items() if k not in blocks}, names, where, None)
    return dict(zip(names, rates, strict=True)) | {"age": 0.0}, block, exam


def _priors(doc: dict[str, Any], sources: dict[str, str]) -> np.ndarray:
    priors = _table(_require(doc, "priors", "[priors]"), "[priors]")
    _check_keys(priors, SETTINGS, "[priors]")
    rows = []
    for s in SETTINGS:
        where = f"[priors.{s}]"
        spec = _table(_require(priors, s, "[priors]"), where)
        rows.append(_distribution(spec, CAUSES, where))
        sources[f"priors.{s}"] = _source(spec, where)
    return np.stack(rows)


def parse_knowledge(doc: dict[str, Any]) -> KnowledgeBase:
    """Validate a parsed knowledge document and build its tables.

    Parameters
    ----------
    doc : dict
        The document as :func:`tomllib.load` returns it.

    Returns
    -------
    KnowledgeBase

    Raises
    ------
    KnowledgeError
        If a table is missing, unsourced, names an unknown cause, root, band, field or value,
        holds a number outside its range, or is not a probability distribution. The message
        starts with the table at fault, e.g. ``[serious.malignancy].rr_age``.
    """
    _check_keys(doc, TOP_LEVEL, "knowledge document (top-level tables)")
    sources: dict[str, str] = {}
    bands, edges = _bands(doc)
    prior = _priors(doc, sources)
    female_table = _table(_require(doc, "female", "[female]"), "[female]")
    female = _vector(female_table, CAUSES, "[female]", fill=None)
    sources["female"] = _source(female_table, "[female]")
    roots = _table(_require(doc, "nerve_root", "[nerve_root]"), "[nerve_root]")
    sources["nerve_root"] = _source(roots, "[nerve_root]")
    missing, block, exam_block = _missingness(doc, sources)
    groups = _groups(doc, bands, sources)
    grouped = {m: g for g in groups.values() for m in g.fields}
    imaging: list[ImagingDecision] = []
    tables = _field_tables(doc, bands, set(grouped), sources, imaging)
    for parent in imaging[0].factors if imaging else ():
        if parent in grouped:  # its factor's expectation would not factorise given the state
            raise KnowledgeError(
                f"[fields.{imaging[0].field}].not_done.{parent}: an answer in "
                f"[groups.{grouped[parent].name}] cannot decide imaging"
            )
    for name, group in grouped.items():
        tables[name] = _marginal(group, group.fields.index(name))
    tables = {name: tables[name] for name in TABLE_FIELDS}
    units: list[FieldGroup] = []
    for name in TABLE_FIELDS:
        if name not in grouped:
            units.append(_single(name, tables[name]))
        elif grouped[name].fields[0] == name:
            units.append(grouped[name])
    return KnowledgeBase(
        band_names=bands,
        band_edges=edges,
        prior=prior,
        age_pmf=_age_pmf(doc, sources),
        female=female,
        duration=_duration(doc, sources),
        root=_distributions(roots, CAUSES, NERVE_ROOTS, "[nerve_root]"),
        serious=_serious(doc, bands, sources),
        tables=tables,
        groups=groups,
        units=tuple(units),
        missing=missing,
        red_flag_block=block,
        examination_block=exam_block,
        imaging=imaging[0] if imaging else None,
        sources=sources,
        document=copy.deepcopy(doc),
    )


@cache
def load_knowledge(path: Path | str = KNOWLEDGE_PATH) -> KnowledgeBase:
    """Read, validate and cache the knowledge base.

    Parameters
    ----------
    path : path-like, default: the packaged ``knowledge.toml``
        A knowledge file with the same layout (to study other assumptions).

    Returns
    -------
    KnowledgeBase

    Raises
    ------
    KnowledgeError
        If the file cannot be read, is not valid TOML or the document is malformed (see
        :func:`parse_knowledge`); the message starts with the file, then the table and key
        (:func:`vignettes.toml_check.load_toml`).
    """
    return load_toml(path, parse_knowledge)
