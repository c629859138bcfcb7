"""The vectorised, seeded sampler of labelled vignettes.

Rows are drawn in fixed blocks of :data:`BLOCK_ROWS`; block ``b`` of a dataset has its own random
stream, derived from ``(seed, setting, b)``. Row ``i`` of a dataset is therefore the same whether it
is drawn alone, in one big frame, or in any partition of a larger one (:func:`generate_partition`),
on any machine: a Spark or Dask job that maps partitions builds the same rows as one process.

Within a block the draws follow a fixed order: cause, age, sex, serious condition, nerve root,
duration; then one uniform per table field in schema order; then the missingness draws (the
red-flag block, the examination block, then one per field). The
fields are drawn unit by unit (:attr:`~vignettes.knowledge.KnowledgeBase.units`): a joint group
draws its joint answer with its first member's uniform and maps it to all its members, whose own
uniforms stay unused, so adding or removing a group changes its members' answers only. Because a
group's joint answers are sorted by the members' codes, its first member is drawn exactly as from
its own marginal. The imaging field (:class:`~vignettes.knowledge.ImagingDecision`) is drawn
last, with its own uniform, because whether an MRI was done depends on other answers.

The output is preallocated in the frame's own layout and filled block by block, so the peak
memory is about the size of the returned frame plus one block.
"""

from __future__ import annotations

import numbers
from functools import cache

import numpy as np
import pandas as pd

from vignettes.knowledge import (
    AGE_MIN,
    TABLE_FIELDS,
    FieldGroup,
    KnowledgeBase,
    load_knowledge,
)
from vignettes.schema import (
    CAUSE_DTYPE,
    FIELDS,
    ROOT_DTYPE,
    SERIOUS_DTYPE,
    SETTING_DTYPE,
    SETTINGS,
    longest_duration,
    pandas_dtype,
)

BLOCK_ROWS = 8192
"""Rows per random block; part of the dataset's definition (changing it changes the rows)."""


def _check_int(name: str, value: object, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_setting(setting: str) -> int:
    if setting not in SETTINGS:
        raise ValueError(f"setting must be one of {list(SETTINGS)}, got {setting!r}")
    return SETTINGS.index(setting)


def _draw(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw: for each row, the first index whose cumulative probability exceeds u."""
    if cdf.ndim == 1:
        return np.searchsorted(cdf[:-1], u, side="right").astype(np.int8)
    return (u[:, None] >= cdf[:, :-1]).sum(axis=1, dtype=np.int8)


@cache
def _cdfs(kb: KnowledgeBase) -> dict[str, np.ndarray]:
    """Cumulative tables of the demographics and latent variables."""
    return {
        "prior": np.cumsum(kb.prior, axis=-1),
        "age": np.cumsum(kb.age_pmf, axis=-1),
        "serious": np.cumsum(kb.serious, axis=-1),
        "root": np.cumsum(kb.root, axis=-1),
    }


@cache
def _unit_cdfs(kb: KnowledgeBase) -> dict[str, tuple[FieldGroup, np.ndarray]]:
    """Every unit with its cumulative table over its joint answers, keyed by its first member.

    The tables are flattened over the latent state ``(band, cause, serious, root)``.
    """
    return {
        unit.fields[0]: (unit, np.cumsum(unit.table, axis=-1).reshape(-1, unit.table.shape[-1]))
        for unit in kb.units
    }


def _block(kb: KnowledgeBase, seed: int, setting: int, block: int) -> dict[str, np.ndarray]:
    """Draw one full block. The order of draws is part of the dataset's definition."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(setting, block)))
    cdf, m = _cdfs(kb), BLOCK_ROWS
    cause = _draw(cdf["prior"][setting], rng.random(m))
    age = _draw(cdf["age"][cause], rng.random(m)).astype(np.int16) + AGE_MIN
    band = kb.band_of(age)
    female = rng.random(m) < kb.female[cause]
    serious = _draw(cdf["serious"][setting, band, cause], rng.random(m))
    root = _draw(cdf["root"][cause], rng.random(m))
    mu, sigma = kb.duration[cause, 0], kb.duration[cause, 1]
    duration = np.floor(np.exp(mu + sigma * rng.standard_normal(m)) + 0.5)
    duration = np.minimum(duration, longest_duration(age))  # no longer than a life
    state = ((band * kb.prior.shape[1] + cause) * kb.serious.shape[-1] + serious) * kb.root.shape[
        1
    ] + root
    out = {"cause": cause, "age": age, "sex": np.where(female, 0, 1).astype(np.int8)}
    out |= {"serious_condition": serious, "nerve_root": root, "duration_weeks": duration}
    units = _unit_cdfs(kb)
    uniforms = {}
    for name in TABLE_FIELDS:
        u = rng.random(m)  # every field has its uniform; a group uses its first member's
        if name not in units:
            continue
        if kb.imaging is not None and name == kb.imaging.field:
            uniforms[name] = u
            continue
        unit, unit_cdf = units[name]
        answer = _draw(unit_cdf[state], u)
        for i, member in enumerate(unit.fields):
            out[member] = unit.codes[answer, i].astype(np.int8)
    if kb.imaging is not None:
        out[kb.imaging.field] = _imaging(kb, out, setting, band, uniforms[kb.imaging.field])
    # Unknown answers, completely at random, plus intakes where no red-flag question was asked
    # and intakes without a clinician's examination.
    red_flag_block = rng.random(m) < kb.red_flag_block
    examination_block = rng.random(m) < kb.examination_block
    for field in FIELDS:
        unknown = rng.random(m) < kb.missing[field.name]
        if field.red_flag:
            unknown |= red_flag_block
        if field.examination:
            unknown |= examination_block
        out[f"{field.name}__unknown"] = unknown
    return out


def _imaging(
    kb: KnowledgeBase, out: dict[str, np.ndarray], setting: int, band: np.ndarray, u: np.ndarray
) -> np.ndarray:
    """Draw the imaging field from the answers already drawn (before any is hidden).

    ``u < P(not_done)`` means no MRI; otherwise ``u`` rescaled to [0, 1) draws the finding, so
    one uniform does both.
    """
    imaging = kb.imaging
    assert imaging is not None
    p_not_done = (
        imaging.base[setting] * imaging.duration_factor[imaging.duration_bin(out["duration_weeks"])]
    )
    for name, factor in imaging.factors.items():
        p_not_done = p_not_done * factor[out[name]]
    done_cdf = np.cumsum(imaging.done[band, out["cause"]], axis=-1)
    rescaled = (u - p_not_done) / np.maximum(1.0 - p_not_done, 1e-300)
    finding = _draw(done_cdf, np.clip(rescaled, 0.0, np.nextafter(1.0, 0.0)))
    return np.where(u < p_not_done, 0, finding).astype(np.int8)


def _allocate(n: int) -> dict[str, np.ndarray]:
    """Empty output arrays for ``n`` rows, already in the frame's own layout.

    Category codes use ``-1`` for unknown; booleans and numbers have a separate ``__unknown``
    mask. Blocks are written straight into these arrays and the frame wraps them without a copy,
    so the frame is the only full-size allocation.
    """
    out = {
        "cause": np.empty(n, dtype=np.int8),
        "nerve_root": np.empty(n, dtype=np.int8),
        "serious_condition": np.empty(n, dtype=np.int8),
    }
    for field in FIELDS:
        if field.kind == "category":
            out[field.name] = np.empty(n, dtype=np.int8)
            continue
        dtype = {"bool": bool, "int": np.int64, "float": np.float64}[field.kind]
        out[field.name] = np.empty(n, dtype=dtype)
        out[f"{field.name}__unknown"] = np.empty(n, dtype=bool)
    return out


def _fill(out: dict[str, np.ndarray], block: dict[str, np.ndarray], src: slice, dst: slice) -> None:
    """Copy rows ``src`` of a drawn block into rows ``dst`` of the output arrays."""
    for name in ("cause", "nerve_root", "serious_condition"):
        out[name][dst] = block[name][src]
    for field in FIELDS:
        values, unknown = block[field.name][src], block[f"{field.name}__unknown"][src]
        if field.kind == "category":
            out[field.name][dst] = np.where(unknown, -1, values)
        else:
            out[field.name][dst] = values
            out[f"{field.name}__unknown"][dst] = unknown


def _column(field, arrays: dict[str, np.ndarray]) -> pd.api.extensions.ExtensionArray:
    """Wrap a field's output arrays as a pandas extension array, without copying them."""
    values = arrays[field.name]
    if field.kind == "category":
        return pd.Categorical.from_codes(values, dtype=pandas_dtype(field))
    unknown = arrays[f"{field.name}__unknown"]
    if field.kind == "bool":
        return pd.arrays.BooleanArray(values, unknown)
    if field.kind == "int":
        return pd.arrays.IntegerArray(values, unknown)
    return pd.arrays.FloatingArray(values, unknown)


def _frame(arrays: dict[str, np.ndarray], start: int, setting: str) -> pd.DataFrame:
    n = arrays["cause"].size
    columns: dict[str, object] = {
        "case_id": np.arange(start, start + n, dtype=np.int64),
        "setting": pd.Categorical.from_codes(
            np.full(n, SETTINGS.index(setting), dtype=np.int8), dtype=SETTING_DTYPE
        ),
    }
    for field in FIELDS:
        columns[field.name] = _column(field, arrays)
    columns["cause"] = pd.Categorical.from_codes(arrays["cause"], dtype=CAUSE_DTYPE)
    columns["red_flag"] = arrays["serious_condition"] > 0
    columns["nerve_root"] = pd.Categorical.from_codes(arrays["nerve_root"], dtype=ROOT_DTYPE)
    columns["serious_condition"] = pd.Categorical.from_codes(
        arrays["serious_condition"], dtype=SERIOUS_DTYPE
    )
    # copy=False: pandas would otherwise copy every column of a dict (doubling the peak).
    return pd.DataFrame(columns, copy=False)


def generate(
    n: int,
    seed: int = 0,
    setting: str = "primary_care",
    *,
    start: int = 0,
    knowledge: KnowledgeBase | None = None,
) -> pd.DataFrame:
    """Draw labelled synthetic vignettes from the knowledge base.

    Parameters
    ----------
    n : int
        Number of cases (rows).
    seed : int, default=0
        Seed of the dataset. Same ``(seed, setting)``, same rows, on any machine.
    setting : {"primary_care", "spine_clinic"}, default="primary_care"
        Clinical setting, which sets the class priors and the rate of serious conditions.
    start : int, default=0
        Index of the first row: ``generate(n, seed, start=k)`` equals rows ``k .. k+n-1`` of any
        larger frame with the same seed, so datasets can be built in pieces.
    knowledge : KnowledgeBase, optional
        Another knowledge base (default: the packaged one).

    Returns
    -------
    pandas.DataFrame
        One row per case: ``case_id``, ``setting``, the contract's intake fields (nullable
        ``boolean``, ``Int64``, ``Float64`` and categorical dtypes; ``<NA>`` means unknown), the
        labels ``cause`` and ``red_flag``, and the latent ``nerve_root`` and ``serious_condition``.

    See Also
    --------
    posterior : the exact Bayes posterior of these cases under the same model.
    generate_partition : one partition of a larger dataset.

    Examples
    --------
    >>> import vignettes
    >>> df = vignettes.generate(1_000, seed=7)
    >>> df.shape[0], df["age"].between(18, 100).all()
    (1000, np.True_)
    """
    n, seed, start = _check_int("n", n), _check_int("seed", seed), _check_int("start", start)
    setting_index = _check_setting(setting)
    kb = knowledge or load_knowledge()
    out = _allocate(n)
    stop = start + n
    for b in range(start // BLOCK_ROWS, -(-stop // BLOCK_ROWS)):
        lo, hi = max(start, b * BLOCK_ROWS), min(stop, (b + 1) * BLOCK_ROWS)
        block = _block(kb, seed, setting_index, b)
        _fill(
            out,
            block,
            slice(lo - b * BLOCK_ROWS, hi - b * BLOCK_ROWS),
            slice(lo - start, hi - start),
        )
    return _frame(out, start, setting)


def partition_bounds(n_total: int, n_partitions: int, partition: int) -> tuple[int, int]:
    """Row range ``[start, stop)`` of one of ``n_partitions`` near-equal partitions."""
    n_total = _check_int("n_total", n_total)
    n_partitions = _check_int("n_partitions", n_partitions, low=1)
    partition = _check_int("partition", partition)
    if partition >= n_partitions:
        raise ValueError(f"partition must be < n_partitions={n_partitions}, got {partition}")
    edges = np.linspace(0, n_total, n_partitions + 1).astype(np.int64)
    return int(edges[partition]), int(edges[partition + 1])


def generate_partition(
    partition: int,
    n_partitions: int,
    n_total: int,
    seed: int = 0,
    setting: str = "primary_care",
) -> pd.DataFrame:
    """Partition ``partition`` of a dataset of ``n_total`` rows split ``n_partitions`` ways.

    The union of all partitions equals ``generate(n_total, seed, setting)`` row for row,
    whatever ``n_partitions`` is, so an engine that maps partitions (Spark, Dask) builds a
    reproducible dataset of any size.

    Examples
    --------
    >>> import pandas as pd, vignettes
    >>> parts = [vignettes.generate_partition(k, 3, 100, seed=1) for k in range(3)]
    >>> pd.concat(parts, ignore_index=True).equals(vignettes.generate(100, seed=1))
    True
    """
    start, stop = partition_bounds(n_total, n_partitions, partition)
    return generate(stop - start, seed, setting, start=start)
