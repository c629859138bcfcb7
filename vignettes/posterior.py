"""The exact Bayes posterior of the generator's own model: the ceiling no classifier can beat.

For each case the posterior enumerates every latent state ``(cause, serious condition, nerve
root)`` (7 x 5 x 6 = 210 states), adds the log-probability of every *observed* answer under that
state, and normalises. Unknown answers are left out, which is exact marginalisation because the
generator hides answers completely at random. Age is always known, so the age band is too.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from vignettes.knowledge import AGE_MAX, AGE_MIN, TABLE_FIELDS, KnowledgeBase, load_knowledge
from vignettes.schema import CAUSES, FIELD_BY_NAME, NERVE_ROOTS, SERIOUS_CONDITIONS, SETTINGS

CHUNK_ROWS = 16_384
"""Rows per chunk; bounds memory to about ``CHUNK_ROWS * 210 * 8`` bytes per array."""


def field_codes(df: pd.DataFrame, name: str) -> np.ndarray:
    """Integer code of each answer (``-1`` = unknown), refusing values outside the contract.

    A column that is absent means the question was never asked.
    """
    field = FIELD_BY_NAME[name]
    if name not in df:
        return np.full(len(df), -1, dtype=np.int16)
    col = df[name]
    known = col.notna().to_numpy()
    if field.kind == "category":
        codes = pd.Categorical(col, categories=list(field.values)).codes.astype(np.int16)
        bad = known & (codes < 0)
        if bad.any():
            raise ValueError(
                f"{name}: {col[bad].iloc[0]!r} is not allowed; expected {field.allowed()}"
            )
        return codes
    if field.kind == "bool":
        values = col.astype("boolean").fillna(False).to_numpy(dtype=bool)
        return np.where(known, values.astype(np.int16), -1)
    raise TypeError(f"{name} is numeric; use its value, not a code")


def _numeric(df: pd.DataFrame, name: str, fill: float) -> tuple[np.ndarray, np.ndarray]:
    if name not in df:
        return np.full(len(df), fill), np.zeros(len(df), dtype=bool)
    values = pd.to_numeric(df[name]).astype("Float64")
    known = values.notna().to_numpy()
    return values.fillna(fill).to_numpy(dtype=float), known


def _settings(df: pd.DataFrame, setting: str | None) -> np.ndarray:
    if setting is not None:
        if setting not in SETTINGS:
            raise ValueError(f"setting must be one of {list(SETTINGS)}, got {setting!r}")
        return np.full(len(df), SETTINGS.index(setting))
    if "setting" not in df:
        return np.zeros(len(df), dtype=int)  # the documented default: primary_care
    codes = pd.Categorical(df["setting"], categories=list(SETTINGS)).codes
    if (codes < 0).any():
        raise ValueError(f"setting: expected one of {list(SETTINGS)} in every row")
    return codes


@cache
def _log_tables(kb: KnowledgeBase) -> dict[str, np.ndarray]:
    """Per field, log P(value | state) as ``(band, value, state)``, with a zero row for unknown."""
    out = {}
    for name, table in kb.tables.items():
        n_bands, n_values = table.shape[0], table.shape[-1]
        flat = table.reshape(n_bands, -1, n_values).transpose(0, 2, 1)
        with np.errstate(divide="ignore"):
            logs = np.log(flat)
        unknown = np.zeros((n_bands, 1, flat.shape[-1]))
        out[name] = np.ascontiguousarray(np.concatenate([logs, unknown], axis=1))
    return out


def _log_joint(kb: KnowledgeBase, chunk: dict[str, np.ndarray]) -> np.ndarray:
    """log P(observed answers, state) for every row and state, shape (rows, 7, 5, 6)."""
    n_c, n_s, n_r = len(CAUSES), len(SERIOUS_CONDITIONS), len(NERVE_ROOTS)
    band, setting, age = chunk["band"], chunk["setting"], chunk["age"]
    with np.errstate(divide="ignore"):
        per_cause = np.log(kb.prior[setting]) + np.log(kb.age_pmf[:, age - AGE_MIN].T)
        sex = chunk["sex"]
        p_sex = np.where(sex[:, None] == 0, kb.female, 1 - kb.female)
        per_cause += np.where(sex[:, None] >= 0, np.log(p_sex), 0.0)
        dur, dur_known = chunk["duration"], chunk["duration_known"]
        per_cause += np.where(dur_known[:, None], kb.duration_logpmf(dur), 0.0)
        serious = np.log(kb.serious[setting, band])  # (rows, c, s)
        root = np.log(kb.root)  # (c, r)
    logp = per_cause[:, :, None, None] + serious[:, :, :, None] + root[None, :, None, :]
    logp = logp.reshape(len(band), -1)
    tables = _log_tables(kb)
    for name in TABLE_FIELDS:
        table = tables[name]
        code = np.where(chunk[name] < 0, table.shape[1] - 1, chunk[name])
        logp += table[band, code]
    return logp.reshape(len(band), n_c, n_s, n_r)


def _inputs(df: pd.DataFrame, kb: KnowledgeBase, setting: str | None) -> dict[str, np.ndarray]:
    if "age" not in df:
        raise ValueError("age: required; expected an integer >= 18 and <= 100")
    age = pd.to_numeric(df["age"]).astype("Float64")
    if age.isna().any() or not age.between(AGE_MIN, AGE_MAX).all():
        raise ValueError(
            f"age: required in every row; expected an integer >= {AGE_MIN} and <= {AGE_MAX}"
        )
    age_arr = age.to_numpy(dtype=float).round().astype(np.int64)
    duration, duration_known = _numeric(df, "duration_weeks", 0.0)
    if (duration[duration_known] < 0).any():
        raise ValueError("duration_weeks: expected a number >= 0")
    inputs = {
        "age": age_arr,
        "band": kb.band_of(age_arr),
        "setting": _settings(df, setting),
        "sex": field_codes(df, "sex"),
        # The model's durations are whole weeks: compare in whole weeks.
        "duration": np.floor(duration + 0.5),
        "duration_known": duration_known,
    }
    return inputs | {name: field_codes(df, name) for name in TABLE_FIELDS}


def posterior(
    df: pd.DataFrame,
    setting: str | None = None,
    *,
    latents: bool = False,
    knowledge: KnowledgeBase | None = None,
) -> pd.DataFrame:
    """Exact posterior P(cause | observed answers) and P(red_flag | observed answers).

    Parameters
    ----------
    df : pandas.DataFrame
        Cases with the contract's intake columns; ``<NA>`` or an absent column means unknown.
        Only ``age`` is required.
    setting : {"primary_care", "spine_clinic"}, optional
        Clinical setting whose priors apply. By default each row's ``setting`` column, or
        ``"primary_care"`` when there is none.
    latents : bool, default=False
        Also return the posterior of the latent nerve root (``root_<root>``) and serious
        condition (``serious_<condition>``).
    knowledge : KnowledgeBase, optional
        Another knowledge base (default: the packaged one).

    Returns
    -------
    pandas.DataFrame
        One column per cause (they sum to 1) and ``red_flag``, indexed like ``df``.

    Raises
    ------
    ValueError
        If ``age`` is missing or out of range, or a value is outside the contract.

    Examples
    --------
    >>> import vignettes
    >>> df = vignettes.generate(500, seed=3)
    >>> post = vignettes.posterior(df)
    >>> bool(abs(post[list(vignettes.CAUSES)].sum(axis=1) - 1).max() < 1e-9)
    True
    """
    kb = knowledge or load_knowledge()
    inputs = _inputs(df, kb, setting)
    parts = []
    for lo in range(0, len(df), CHUNK_ROWS):
        chunk = {k: v[lo : lo + CHUNK_ROWS] for k, v in inputs.items()}
        logp = _log_joint(kb, chunk)
        joint = np.exp(logp - logsumexp(logp, axis=(1, 2, 3), keepdims=True))
        cols = [joint.sum(axis=(2, 3)), joint[:, :, 1:, :].sum(axis=(1, 2, 3))[:, None]]
        if latents:
            cols += [joint.sum(axis=(1, 2)), joint.sum(axis=(1, 3))]
        parts.append(np.concatenate(cols, axis=1))
    names = [*CAUSES, "red_flag"]
    if latents:
        names += [f"root_{r}" for r in NERVE_ROOTS] + [f"serious_{s}" for s in SERIOUS_CONDITIONS]
    values = np.concatenate(parts) if parts else np.empty((0, len(names)))
    return pd.DataFrame(values, columns=names, index=df.index)
