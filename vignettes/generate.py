"""The vectorised, seeded sampler of labelled vignettes.

Rows are drawn in fixed blocks of :data:`BLOCK_ROWS`; block ``b`` of a dataset has its own random
stream, derived from ``(seed, setting, b)``. Row ``i`` of a dataset is therefore the same whether it
is drawn alone, in one big frame, or in any partition of a larger one (:func:`generate_partition`),
on any machine: a Spark or Dask job that maps partitions builds the same rows as one process.
"""

from __future__ import annotations

import numbers
from functools import cache

import numpy as np
import pandas as pd

from vignettes.knowledge import AGE_MIN, TABLE_FIELDS, KnowledgeBase, load_knowledge
from vignettes.schema import (
    CAUSE_DTYPE,
    FIELDS,
    ROOT_DTYPE,
    SERIOUS_DTYPE,
    SETTING_DTYPE,
    SETTINGS,
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
    """Cumulative tables, flattened over the latent state ``(band, cause, serious, root)``."""
    out = {name: np.cumsum(t, axis=-1).reshape(-1, t.shape[-1]) for name, t in kb.tables.items()}
    out["prior"] = np.cumsum(kb.prior, axis=-1)
    out["age"] = np.cumsum(kb.age_pmf, axis=-1)
    out["serious"] = np.cumsum(kb.serious, axis=-1)
    out["root"] = np.cumsum(kb.root, axis=-1)
    return out


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
    state = ((band * kb.prior.shape[1] + cause) * kb.serious.shape[-1] + serious) * kb.root.shape[
        1
    ] + root
    out = {"cause": cause, "age": age, "sex": np.where(female, 0, 1).astype(np.int8)}
    out |= {"serious_condition": serious, "nerve_root": root, "duration_weeks": duration}
    for name in TABLE_FIELDS:
        out[name] = _draw(cdf[name][state], rng.random(m))
    # Unknown answers, completely at random, plus intakes where no red-flag question was asked.
    red_flag_block = rng.random(m) < kb.red_flag_block
    for field in FIELDS:
        unknown = rng.random(m) < kb.missing[field.name]
        if field.red_flag:
            unknown |= red_flag_block
        out[f"{field.name}__unknown"] = unknown
    return out


def _column(field, values: np.ndarray, unknown: np.ndarray) -> pd.api.extensions.ExtensionArray:
    dtype = pandas_dtype(field)
    if field.kind == "category":
        codes = np.where(unknown, -1, values).astype(np.int8)
        return pd.Categorical.from_codes(codes, dtype=dtype)
    if field.kind == "bool":
        return pd.arrays.BooleanArray(values.astype(bool), unknown.copy())
    if field.kind == "int":
        return pd.arrays.IntegerArray(values.astype(np.int64), unknown.copy())
    return pd.arrays.FloatingArray(values.astype(np.float64), unknown.copy())


def _frame(arrays: dict[str, np.ndarray], start: int, setting: str) -> pd.DataFrame:
    n = arrays["cause"].size
    columns: dict[str, object] = {
        "case_id": np.arange(start, start + n, dtype=np.int64),
        "setting": pd.Categorical.from_codes(
            np.full(n, SETTINGS.index(setting), dtype=np.int8), dtype=SETTING_DTYPE
        ),
    }
    for field in FIELDS:
        columns[field.name] = _column(field, arrays[field.name], arrays[f"{field.name}__unknown"])
    columns["cause"] = pd.Categorical.from_codes(arrays["cause"], dtype=CAUSE_DTYPE)
    columns["red_flag"] = arrays["serious_condition"] > 0
    columns["nerve_root"] = pd.Categorical.from_codes(arrays["nerve_root"], dtype=ROOT_DTYPE)
    columns["serious_condition"] = pd.Categorical.from_codes(
        arrays["serious_condition"], dtype=SERIOUS_DTYPE
    )
    return pd.DataFrame(columns)


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
    first, last = start // BLOCK_ROWS, (start + n - 1) // BLOCK_ROWS
    blocks = [_block(kb, seed, setting_index, b) for b in range(first, last + 1)] if n else []
    if not blocks:
        blocks = [{k: v[:0] for k, v in _block(kb, seed, setting_index, 0).items()}]
    offset = start - first * BLOCK_ROWS
    arrays = {k: np.concatenate([b[k] for b in blocks])[offset : offset + n] for k in blocks[0]}
    return _frame(arrays, start, setting)


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
