"""Load and validate the knowledge base (``knowledge.toml``) into probability tables.

The TOML file is the knowledge; this module turns it into NumPy arrays indexed by the latent
state, and refuses a file that is incomplete, unsourced or not a probability distribution. Both
the sampler (:mod:`vignettes.generate`) and the exact posterior (:mod:`vignettes.posterior`) read
the same :class:`KnowledgeBase`, so they cannot disagree.

The latent state of a case is ``(age band, cause, serious condition, nerve root)``. Every field
table has shape ``(n_bands, n_causes, n_serious, n_roots, n_values)``: a distribution over the
field's values for every state. Boolean fields have two values, ``(False, True)``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from vignettes.schema import (
    CAUSES,
    FIELD_BY_NAME,
    FIELDS,
    NERVE_ROOTS,
    SERIOUS_CONDITIONS,
    SETTINGS,
)

KNOWLEDGE_PATH = Path(__file__).with_name("knowledge.toml")
AGE_MIN, AGE_MAX = 18, 100
AGES = np.arange(AGE_MIN, AGE_MAX + 1)
# Fields with their own generative form (demographics); every other field is in [fields.*].
SPECIAL_FIELDS = ("age", "sex", "duration_weeks")
TABLE_FIELDS = tuple(f.name for f in FIELDS if f.name not in SPECIAL_FIELDS)
_TOL = 1e-6


class KnowledgeError(ValueError):
    """The knowledge base is malformed: names the table and what is wrong."""


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
        Per field, P(value | band, cause, serious, root), shape (n_bands, 7, 5, 6, n_values).
    missing : dict of str to float
        Per field, the probability the answer is unknown (completely at random).
    red_flag_block : float
        Probability that no red-flag question was asked at all.
    sources : dict of str to str
        Where each table's numbers come from.
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
    missing: dict[str, float]
    red_flag_block: float
    sources: dict[str, str]

    def band_of(self, age: np.ndarray) -> np.ndarray:
        """Age band index of each age."""
        return np.searchsorted(self.band_edges, np.asarray(age), side="right") - 1

    def duration_logpmf(self, weeks: np.ndarray) -> np.ndarray:
        """log P(duration = weeks | cause) for whole weeks, shape ``(len(weeks), n_causes)``.

        Durations are a log-normal rounded to the nearest week, so the mass of week ``k`` is
        ``F(k + 0.5) - F(k - 0.5)`` (week 0 takes everything below 0.5).
        """
        k = np.asarray(weeks, dtype=float)[:, None]
        mu, sigma = self.duration[:, 0], self.duration[:, 1]
        with np.errstate(divide="ignore"):
            z_lo = (np.log(np.maximum(k - 0.5, 0.0)) - mu) / sigma
        z_hi = (np.log(k + 0.5) - mu) / sigma
        # log(Phi(z_hi) - Phi(z_lo)) without cancellation: use the lower tail below the median
        # and the upper tail above it.
        upper_tail = z_lo > 0
        big = np.where(upper_tail, stats.norm.logsf(z_lo), stats.norm.logcdf(z_hi))
        small = np.where(upper_tail, stats.norm.logsf(z_hi), stats.norm.logcdf(z_lo))
        return big + np.log1p(-np.exp(small - big))


def _require(table: dict[str, Any], key: str, where: str) -> Any:
    if key not in table:
        raise KnowledgeError(f"{where}: missing '{key}'")
    return table[key]


def _source(table: dict[str, Any], where: str, key: str = "source") -> str:
    text = _require(table, key, where)
    if not isinstance(text, str) or len(text.strip()) < 10:
        raise KnowledgeError(f"{where}: '{key}' must say where the numbers come from")
    return text.strip()


def _vector(
    table: dict[str, Any], names: tuple[str, ...], where: str, fill: float | None
) -> np.ndarray:
    """Read ``{name: p}`` into a vector in ``names`` order; absent names take the default."""
    unknown = set(table) - set(names) - {"default", "source"}
    if unknown:
        raise KnowledgeError(f"{where}: unknown keys {sorted(unknown)}; allowed: {list(names)}")
    default = table.get("default", fill)
    values = []
    for name in names:
        value = table.get(name, default)
        if value is None:
            raise KnowledgeError(f"{where}: no value for '{name}' and no default")
        values.append(float(value))
    out = np.array(values)
    if np.any(out < 0) or np.any(out > 1):
        raise KnowledgeError(f"{where}: probabilities must lie in [0, 1], got {out}")
    return out


def _distribution(table: dict[str, Any], names: tuple[str, ...], where: str) -> np.ndarray:
    out = _vector(table, names, where, fill=0.0)
    if abs(out.sum() - 1.0) > _TOL:
        raise KnowledgeError(f"{where}: probabilities must sum to 1, they sum to {out.sum():.6f}")
    return out


def _distributions(
    table: dict[str, Any], rows: tuple[str, ...], values: tuple[str, ...], where: str
) -> np.ndarray:
    return np.stack(
        [_distribution(_require(table, r, where), values, f"{where}.{r}") for r in rows]
    )


def _age_pmf(doc: dict[str, Any], sources: dict[str, str]) -> np.ndarray:
    table = _require(doc, "age", "[age]")
    pmf = np.empty((len(CAUSES), AGES.size))
    for i, cause in enumerate(CAUSES):
        spec = _require(table, cause, "[age]")
        sources[f"age.{cause}"] = _source(spec, f"[age].{cause}")
        z = (AGES - spec["mean"]) / spec["sd"]
        density = np.exp(-0.5 * z**2)
        pmf[i] = density / density.sum()
    return pmf


def _serious(doc: dict[str, Any], bands: tuple[str, ...], sources: dict[str, str]) -> np.ndarray:
    table = _require(doc, "serious", "[serious]")
    mult = _require(table, "setting_multiplier", "[serious]")
    sources["serious.setting_multiplier"] = _source(table, "[serious]", "setting_source")
    out = np.zeros((len(SETTINGS), len(bands), len(CAUSES), len(SERIOUS_CONDITIONS)))
    for k, condition in enumerate(SERIOUS_CONDITIONS[1:], start=1):
        where = f"[serious.{condition}]"
        spec = _require(table, condition, where)
        sources[f"serious.{condition}"] = _source(spec, where)
        base = float(_require(spec, "base", where))
        rr_cause = np.array([float(spec["rr_cause"].get(c, 1.0)) for c in CAUSES])
        rr_age = np.array([float(spec["rr_age"].get(b, 1.0)) for b in bands])
        for s, setting in enumerate(SETTINGS):
            scale = base * float(_require(mult, setting, f"{where} setting_multiplier"))
            out[s, :, :, k] = scale * rr_age[:, None] * rr_cause[None, :]
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


def _bernoulli(spec: dict[str, Any], bands: tuple[str, ...], where: str) -> np.ndarray:
    """Noisy-OR over the listed parents: P(true) = 1 - prod (1 - p_parent)."""
    names = _parent_names(bands)
    known = set(names) | {"kind", "source"}
    if set(spec) - known:
        raise KnowledgeError(f"{where}: unknown keys {sorted(set(spec) - known)}")
    p_false = np.ones((len(bands), len(CAUSES), len(SERIOUS_CONDITIONS), len(NERVE_ROOTS)))
    for axis, parent in enumerate(names):
        if parent not in spec:
            continue
        p = _vector(spec[parent], names[parent], f"{where}.{parent}", fill=0.0)
        shape = [1, 1, 1, 1]
        shape[axis] = p.size
        p_false = p_false * (1.0 - p.reshape(shape))
    return np.stack([p_false, 1.0 - p_false], axis=-1)


def _categorical(spec: dict[str, Any], values: tuple[str, ...], bands: tuple[str, ...], where: str):
    parent = _require(spec, "by", where)
    names = _parent_names(bands)
    if parent not in ("cause", "nerve_root"):
        raise KnowledgeError(f"{where}: 'by' must be 'cause' or 'nerve_root', got {parent!r}")
    dist = _distributions(spec, names[parent], values, where)
    shape = (len(bands), len(CAUSES), len(SERIOUS_CONDITIONS), len(NERVE_ROOTS), len(values))
    if parent == "cause":
        return np.broadcast_to(dist[None, :, None, None, :], shape).copy()
    return np.broadcast_to(dist[None, None, None, :, :], shape).copy()


def _imaging(spec: dict[str, Any], values: tuple[str, ...], bands: tuple[str, ...], where: str):
    """P(not_done | cause); else the own finding w.p. sensitivity, else the age background."""
    not_done = _vector(spec["not_done"], CAUSES, f"{where}.not_done", fill=None)
    done_values = values[1:]
    background = _distributions(spec["background"], bands, done_values, f"{where}.background")
    sensitivity = _vector(spec["sensitivity"], CAUSES, f"{where}.sensitivity", fill=0.0)
    own = np.zeros((len(CAUSES), len(done_values)))
    for i, cause in enumerate(CAUSES):
        finding = spec["finding"].get(cause)
        if finding is not None:
            if finding not in done_values:
                raise KnowledgeError(f"{where}.finding.{cause}: {finding!r} not in {done_values}")
            own[i, done_values.index(finding)] = 1.0
        elif sensitivity[i] > 0:
            raise KnowledgeError(f"{where}: sensitivity for {cause} but no finding")
    done = (
        sensitivity[None, :, None] * own[None]
        + (1 - sensitivity[None, :, None]) * background[:, None, :]
    )  # (bands, causes, values)
    table = np.concatenate(
        [
            np.broadcast_to(not_done[None, :, None], (len(bands), len(CAUSES), 1)),
            (1 - not_done)[None, :, None] * done,
        ],
        axis=-1,
    )
    shape = (len(bands), len(CAUSES), len(SERIOUS_CONDITIONS), len(NERVE_ROOTS), len(values))
    return np.broadcast_to(table[:, :, None, None, :], shape).copy()


def _field_tables(doc: dict[str, Any], bands: tuple[str, ...], sources: dict[str, str]):
    fields = _require(doc, "fields", "[fields]")
    missing = set(TABLE_FIELDS) - set(fields)
    extra = set(fields) - set(TABLE_FIELDS)
    if missing or extra:
        raise KnowledgeError(f"[fields]: missing {sorted(missing)}, unknown {sorted(extra)}")
    tables = {}
    for name in TABLE_FIELDS:
        spec, where = fields[name], f"[fields.{name}]"
        sources[name] = _source(spec, where)
        kind = _require(spec, "kind", where)
        field = FIELD_BY_NAME[name]
        if kind == "bernoulli" and field.kind == "bool":
            tables[name] = _bernoulli(spec, bands, where)
        elif kind == "categorical" and field.kind == "category":
            tables[name] = _categorical(spec, field.values, bands, where)
        elif kind == "imaging" and field.kind == "category":
            tables[name] = _imaging(spec, field.values, bands, where)
        else:
            raise KnowledgeError(f"{where}: kind {kind!r} does not fit a {field.kind} field")
    return tables


def _missingness(doc: dict[str, Any], sources: dict[str, str]) -> tuple[dict[str, float], float]:
    table = _require(doc, "missingness", "[missingness]")
    sources["missingness"] = _source(table, "[missingness]")
    names = tuple(f.name for f in FIELDS if f.name != "age")
    rates = _vector(
        {k: v for k, v in table.items() if k != "red_flag_block"}, names, "[missingness]", None
    )
    return dict(zip(names, rates, strict=True)) | {"age": 0.0}, float(table["red_flag_block"])


def parse_knowledge(doc: dict[str, Any]) -> KnowledgeBase:
    """Validate a parsed knowledge document and build its tables.

    Raises
    ------
    KnowledgeError
        If a table is missing, unsourced, names an unknown cause or value, or is not a
        probability distribution.
    """
    sources: dict[str, str] = {}
    bands_spec = _require(doc, "age_bands", "age_bands")
    bands = tuple(bands_spec)
    edges = np.array([bands_spec[b][0] for b in bands])
    if edges[0] != AGE_MIN or np.any(np.diff(edges) <= 0):
        raise KnowledgeError("age_bands: must start at 18 and increase")
    priors = _require(doc, "priors", "[priors]")
    prior = np.stack(
        [_distribution(_require(priors, s, "[priors]"), CAUSES, f"[priors.{s}]") for s in SETTINGS]
    )
    for s in SETTINGS:
        sources[f"priors.{s}"] = _source(priors[s], f"[priors.{s}]")
    female = _vector(_require(doc, "female", "[female]"), CAUSES, "[female]", fill=None)
    sources["female"] = _source(doc["female"], "[female]")
    dur = _require(doc, "duration_weeks", "[duration_weeks]")
    sources["duration_weeks"] = _source(dur, "[duration_weeks]")
    duration = np.array([[np.log(dur[c]["median"]), dur[c]["sigma"]] for c in CAUSES])
    roots = _require(doc, "nerve_root", "[nerve_root]")
    sources["nerve_root"] = _source(roots, "[nerve_root]")
    missing, block = _missingness(doc, sources)
    return KnowledgeBase(
        band_names=bands,
        band_edges=edges,
        prior=prior,
        age_pmf=_age_pmf(doc, sources),
        female=female,
        duration=duration,
        root=_distributions(roots, CAUSES, NERVE_ROOTS, "[nerve_root]"),
        serious=_serious(doc, bands, sources),
        tables=_field_tables(doc, bands, sources),
        missing=missing,
        red_flag_block=block,
        sources=sources,
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
    """
    with open(path, "rb") as fh:
        return parse_knowledge(tomllib.load(fh))
