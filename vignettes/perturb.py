"""Plausible alternative worlds: the knowledge base redrawn within its stated uncertainties.

Every number of ``knowledge.toml`` is a published figure or a stated assumption, and each table's
``[uncertainty.tables]`` entry says how far it may plausibly be off (a standard deviation on the
number's natural scale, with its reason). :func:`perturb` draws a whole alternative world from
those widths; :func:`swing` moves one table to either end of its 95% interval, for one-at-a-time
sensitivity analysis (``make sensitivity``). Both return a :class:`KnowledgeBase` that
:func:`vignettes.generate` and :func:`vignettes.posterior` accept, built by the same validator as
the packaged one, so every table of a perturbed world is still valid.

Scales (the number's natural scale, so a draw never leaves the allowed range):

* a probability of a yes/no answer, a missing-answer rate, a sensitivity, P(female): the logit,
  ``logit(p') = logit(p) + sd * z``; 0 and 1 are structural ("never", "always") and stay;
* a distribution (priors, nerve roots, joint answers, categorical answers, MRI background): the
  log of each non-zero share, ``log p' = log p + sd * z``, renormalised (a logistic-normal draw);
  a swing moves the commonest share on the logit scale instead and rescales the others in
  proportion (the same shift of every share would change nothing);
* a rate or a multiplier (serious-condition base rates, relative risks, MRI factors, duration
  medians and spreads, the age spread): the log; MRI factors stay at most 1;
* a mean age: years, ``mean' = mean + sd * z``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from vignettes.knowledge import KnowledgeBase, KnowledgeError, load_knowledge, parse_knowledge

__all__ = ["Z95", "Uncertainty", "perturb", "swing", "uncertainties"]

Z95 = 1.959963984540054
"""The standard normal's 97.5% quantile: a swing goes to the end of the 95% interval."""

_SKIP = {"source", "kind", "by", "fields", "answers", "finding", "edges"}


@dataclass(frozen=True)
class Uncertainty:
    """How far one table of the knowledge base may plausibly be off.

    Attributes
    ----------
    table : str
        The table's path in ``knowledge.toml``, e.g. ``"fields.straight_leg_raise"``.
    sd : float
        Standard deviation on the numbers' natural scale (see the module docstring).
    source : str
        Why this width: a published interval, or the assumption's stated width.
    """

    table: str
    sd: float
    source: str


def _document(knowledge: KnowledgeBase | None) -> dict[str, Any]:
    kb = knowledge if knowledge is not None else load_knowledge()
    if kb.document is None:
        raise KnowledgeError("perturb: this knowledge base was built without its document")
    return kb.document


def _tables(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every table that holds uncertain numbers, with its path."""
    for setting, table in doc["priors"].items():
        yield f"priors.{setting}", table
    for name in ("age", "female", "duration_weeks", "nerve_root", "missingness"):
        yield name, doc[name]
    for name, table in doc["serious"].items():
        if isinstance(table, dict) and "base" in table:  # not the settings' multiplier
            yield f"serious.{name}", table
    for name, table in doc.get("groups", {}).items():
        yield f"groups.{name}", table
    for name, table in doc["fields"].items():
        yield f"fields.{name}", table


def uncertainties(knowledge: KnowledgeBase | None = None) -> dict[str, Uncertainty]:
    """The width of every uncertain table, from ``[uncertainty.tables]``.

    Returns
    -------
    dict of str to Uncertainty
        By table path, in the file's order of the tables.

    Raises
    ------
    KnowledgeError
        If a table has no width, a width names no table, or a width is not a number > 0.

    Examples
    --------
    >>> widths = uncertainties()
    >>> widths["fields.straight_leg_raise"].sd > 0
    True
    """
    doc = _document(knowledge)
    spec = doc.get("uncertainty", {}).get("tables", {})
    paths = [path for path, _ in _tables(doc)]
    missing = [p for p in paths if p not in spec]
    unknown = sorted(set(spec) - set(paths))
    if missing or unknown:
        raise KnowledgeError(
            f"[uncertainty.tables]: every uncertain table needs a width; missing {missing}, "
            f"unknown {unknown}"
        )
    out = {}
    for path in paths:
        entry = spec[path]
        where = f"[uncertainty.tables].{path}"
        sd, source = entry.get("sd"), entry.get("source")
        if not isinstance(sd, int | float) or isinstance(sd, bool) or not sd > 0:
            raise KnowledgeError(f"{where}.sd: expected a number > 0, got {sd!r}")
        if not isinstance(source, str) or not source.strip():
            raise KnowledgeError(f"{where}.source: say where the width comes from")
        out[path] = Uncertainty(path, float(sd), source)
    return out


# -- the draws, number by number -------------------------------------------------------------

Draw = Callable[[int], np.ndarray]
"""``draw(k)``: k standard-normal deviates (random for a world, constant for a swing)."""


def _logit_move(p: float, step: float) -> float:
    if p <= 0.0 or p >= 1.0:
        return p
    return 1.0 / (1.0 + math.exp(-(math.log(p / (1.0 - p)) + step)))


def _probabilities(table: dict[str, Any], sd: float, draw: Draw) -> None:
    """Each probability on its own, on the logit scale (in place)."""
    keys = [k for k, v in table.items() if k not in _SKIP and _is_number(v)]
    for key, z in zip(keys, draw(len(keys)), strict=True):
        table[key] = _logit_move(float(table[key]), sd * z)


def _distribution(row: dict[str, Any], sd: float, draw: Draw, sharpen: bool) -> None:
    """A distribution's shares (in place): logistic-normal, or a change of sharpness."""
    keys = [k for k, v in row.items() if k not in _SKIP and _is_number(v) and v > 0]
    if len(keys) < 2:
        return
    p = np.array([float(row[k]) for k in keys])
    z = draw(len(keys))
    if sharpen:  # the commonest share moves on the logit scale, the others in proportion
        top = int(p.argmax())
        moved = _logit_move(float(p[top]), sd * z[0])
        q = p * (1.0 - moved) / (1.0 - p[top])
        q[top] = moved
    else:
        logp = np.log(p) + sd * z
        q = np.exp(logp - logp.max())
    q /= q.sum()
    for key, value in zip(keys, q, strict=True):
        row[key] = float(value)


def _log_scale(table: dict[str, Any], sd: float, draw: Draw, cap: float | None = None) -> None:
    """Rates and multipliers on the log scale (in place); at most ``cap`` when given."""
    keys = [k for k, v in table.items() if k not in _SKIP and _is_number(v) and v > 0]
    for key, z in zip(keys, draw(len(keys)), strict=True):
        value = float(table[key]) * math.exp(sd * z)
        table[key] = min(value, cap) if cap is not None else value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _rows(table: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The distribution rows of a group or categorical table (``by_cause`` and ``by_serious``
    included)."""
    for key, row in table.items():
        if key in _SKIP or not isinstance(row, dict):
            continue
        if key in ("by_cause", "by_serious"):
            yield from (r for r in row.values() if isinstance(r, dict))
        else:
            yield row


def _move_table(path: str, table: dict[str, Any], sd: float, draw: Draw, sharpen: bool) -> None:
    """Move one table's numbers (in place) on their natural scales."""
    top = path.split(".")[0]
    if top == "priors":
        _distribution(table, sd, draw, sharpen)
    elif top in ("female", "missingness"):
        _probabilities(table, sd, draw)
    elif top == "age":
        for spec in (v for v in table.values() if isinstance(v, dict)):
            (z_mean,) = draw(1)
            spec["mean"] = float(spec["mean"]) + sd * z_mean
            spec["sd"] = float(spec["sd"]) * math.exp(0.1 * draw(1)[0])
    elif top == "duration_weeks":
        for spec in (v for v in table.values() if isinstance(v, dict)):
            _log_scale(spec, sd, draw)
    elif top == "nerve_root":
        for row in (v for v in table.values() if isinstance(v, dict)):
            _distribution(row, sd, draw, sharpen)
    elif top == "serious":
        _log_scale(table, sd, draw)  # the base rate
        if not sharpen:  # a swing moves the rate once, not the base and every risk with it
            for key in ("rr_cause", "rr_age"):  # half the width: the risks share the base's
                _log_scale(table.get(key, {}), sd / 2, draw)
    elif top == "groups" or table.get("kind") == "categorical":
        for row in _rows(table):
            _distribution(row, sd, draw, sharpen)
    elif table.get("kind") == "imaging":
        not_done = table["not_done"]
        _probabilities(not_done["setting"], sd, draw)
        for key, spec in not_done.items():
            if key == "setting":
                continue
            if "factor" in spec:
                steps = draw(len(spec["factor"]))
                spec["factor"] = [
                    min(f * math.exp(sd * z), 1.0)
                    for f, z in zip(spec["factor"], steps, strict=True)
                ]
            else:
                _log_scale(spec, sd, draw, cap=1.0)
        _probabilities(table["sensitivity"], sd, draw)
        for row in table["background"].values():
            _distribution(row, sd, draw, sharpen)
    else:  # a yes/no answer: noisy-OR probabilities per parent
        for key in ("cause", "nerve_root", "serious", "age_band"):
            _probabilities(table.get(key, {}), sd, draw)


def _world(
    knowledge: KnowledgeBase | None, moves: dict[str, tuple[float, Draw]], sharpen: bool
) -> KnowledgeBase:
    doc = copy.deepcopy(_document(knowledge))
    for path, table in _tables(doc):
        if path in moves:
            sd, draw = moves[path]
            _move_table(path, table, sd, draw, sharpen)
    return parse_knowledge(doc)


def perturb(
    knowledge: KnowledgeBase | None = None,
    seed: int = 0,
    *,
    tables: list[str] | None = None,
    scale: float = 1.0,
) -> KnowledgeBase:
    """Draw a plausible alternative world from the knowledge base's stated uncertainties.

    Parameters
    ----------
    knowledge : KnowledgeBase, optional
        The world to start from (default: the packaged one).
    seed : int, default=0
        Seed of the draw: the same seed gives the same world.
    tables : list of str, optional
        Only these tables move (paths as in :func:`uncertainties`); default every one.
    scale : float, default=1.0
        Multiplies every width (0 gives the starting world back).

    Returns
    -------
    KnowledgeBase
        Validated like the packaged one; :func:`vignettes.generate` and
        :func:`vignettes.posterior` accept it as ``knowledge=``.

    Examples
    --------
    >>> import vignettes
    >>> world = perturb(seed=1)
    >>> float(world.prior.sum(axis=1).min()) > 0.999999
    True
    >>> bool((world.prior != vignettes.load_knowledge().prior).any())
    True
    """
    widths = uncertainties(knowledge)
    chosen = list(widths) if tables is None else tables
    unknown = [t for t in chosen if t not in widths]
    if unknown:
        raise KnowledgeError(f"perturb: unknown tables {unknown}; known: {list(widths)}")
    streams = np.random.SeedSequence(seed).spawn(len(widths))
    moves = {}
    for (path, width), stream in zip(widths.items(), streams, strict=True):
        if path in chosen:
            moves[path] = (width.sd * scale, _truncated_normal(np.random.default_rng(stream)))
    return _world(knowledge, moves, sharpen=False)


TRUNCATE = 2.5
"""A world's deviates are standard normals cut at +-2.5: a plausible world, not a 1-in-10,000
one (a cut of 2.5 keeps 98.8% of the normal's mass)."""


def _truncated_normal(rng: np.random.Generator) -> Draw:
    def draw(k: int) -> np.ndarray:
        z = rng.standard_normal(k)
        while np.any(bad := np.abs(z) > TRUNCATE):
            z[bad] = rng.standard_normal(int(bad.sum()))
        return z

    return draw


def swing(
    table: str, direction: int, knowledge: KnowledgeBase | None = None, z: float = Z95
) -> KnowledgeBase:
    """One table moved to one end of its interval, everything else as it is.

    Probabilities, rates and multipliers all move up (``direction = +1``) or all down (``-1``)
    by ``z`` widths; in a distribution the commonest share moves up (+1) or down (-1), the
    others in proportion; a mean age moves up or down. For one-at-a-time sensitivity analysis.

    Parameters
    ----------
    table : str
        A table path from :func:`uncertainties`.
    direction : {+1, -1}
    knowledge : KnowledgeBase, optional
    z : float, default=:data:`Z95`
        How many widths to move (the 95% interval's end by default).

    Returns
    -------
    KnowledgeBase
    """
    widths = uncertainties(knowledge)
    if table not in widths:
        raise KnowledgeError(f"swing: unknown table {table!r}; known: {list(widths)}")
    if direction not in (1, -1):
        raise ValueError(f"direction: expected +1 or -1, got {direction!r}")

    def constant(k: int) -> np.ndarray:
        return np.full(k, direction * z)

    return _world(knowledge, {table: (widths[table].sd, constant)}, sharpen=True)
