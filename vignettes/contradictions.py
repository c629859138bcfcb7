"""Contradictory answers: find them, report them by their fields, and read them the safer way.

The table is data, ``vignettes/contradictions.toml``: each entry names the answers that cannot
both be true (``when``), the reading the triage uses instead (``reading``), why, and its source.
:func:`read_safely` (one case) and :func:`read_frame_safely` (a frame, vectorised) return the
answers the model and the article's rules should see, and one warning per contradiction found,
``"<field>, <field>: <reason>"``. The patient's answers themselves are never changed.

A reading never turns a red-flag answer off (checked when the table loads): a reported red flag
always counts.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vignettes.knowledge import KnowledgeError
from vignettes.schema import FIELD_BY_NAME, RED_FLAG_FIELDS

__all__ = [
    "CONTRADICTIONS",
    "CONTRADICTIONS_PATH",
    "Contradiction",
    "load_contradictions",
    "read_frame_safely",
    "read_safely",
]

CONTRADICTIONS_PATH = Path(__file__).with_name("contradictions.toml")
UNKNOWN = "unknown"
"""The reading that means "read as not answered"."""


@dataclass(frozen=True)
class Contradiction:
    """Answers that cannot both be true, and the safer reading of them.

    Attributes
    ----------
    name : str
    when : tuple of (field, answers)
        It holds when every field's answer is one of its answers.
    reading : tuple of (field, answer)
        What the triage reads instead (``None``: not answered).
    reason, source : str
    """

    name: str
    when: tuple[tuple[str, tuple[Any, ...]], ...]
    reading: tuple[tuple[str, Any], ...]
    reason: str
    source: str

    @property
    def fields(self) -> tuple[str, ...]:
        """The answers that contradict each other, in the table's order."""
        return tuple(name for name, _ in self.when)

    @property
    def warning(self) -> str:
        """The warning reported for it: its fields, then the reason."""
        return f"{', '.join(self.fields)}: {self.reason}"

    def holds(self, answers: Mapping[str, Any]) -> bool:
        """Does it hold for one case's validated answers?"""
        return all(answers.get(name) in values for name, values in self.when)

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        """Where it holds in a validated frame (unknown answers never match)."""
        hit = np.ones(len(frame), dtype=bool)
        for name, values in self.when:
            column = frame[name]
            hit &= column.isin(list(values)).to_numpy(dtype=bool) & column.notna().to_numpy()
        return hit


def _answer(field: str, value: Any, where: str) -> Any:
    spec = FIELD_BY_NAME.get(field)
    if spec is None:
        raise KnowledgeError(f"{where}: unknown field {field!r}")
    if spec.kind == "bool" and isinstance(value, bool):
        return value
    if spec.kind == "category" and value in spec.values:
        return value
    raise KnowledgeError(f"{where}.{field}: {value!r} is not an answer; expected {spec.allowed()}")


def _parse(entry: Any, index: int, path: Path) -> Contradiction:
    where = f"{path.name}: contradiction[{index}]"
    if not isinstance(entry, dict):
        raise KnowledgeError(f"{where}: expected a table")
    missing = [k for k in ("name", "when", "reading", "reason", "source") if k not in entry]
    unknown = sorted(set(entry) - {"name", "when", "reading", "reason", "source"})
    if missing or unknown:
        raise KnowledgeError(f"{where}: missing keys {missing}, unknown keys {unknown}")
    where = f"{path.name}: contradiction {entry['name']!r}"
    if not isinstance(entry["when"], dict) or len(entry["when"]) < 2:
        raise KnowledgeError(f"{where}.when: expected a table of at least two fields")
    when = []
    for field, value in entry["when"].items():
        values = value if isinstance(value, list) else [value]
        when.append((field, tuple(_answer(field, v, f"{where}.when") for v in values)))
    reading = []
    for field, value in entry["reading"].items():
        answer = None if value == UNKNOWN else _answer(field, value, f"{where}.reading")
        if field in RED_FLAG_FIELDS and answer is not True:
            raise KnowledgeError(
                f"{where}.reading.{field}: a reading may not turn a red flag off "
                "(a reported red flag always counts)"
            )
        reading.append((field, answer))
    return Contradiction(
        str(entry["name"]), tuple(when), tuple(reading), entry["reason"], entry["source"]
    )


def load_contradictions(path: Path | str = CONTRADICTIONS_PATH) -> tuple[Contradiction, ...]:
    """Read and check the table.

    Raises
    ------
    vignettes.knowledge.KnowledgeError
        Naming the file, the entry and the key: an unknown field, a value that is not an answer
        to its field, a reading that would turn a red flag off, a missing or unknown key, or a
        TOML syntax error.
    """
    path = Path(path)
    try:
        with path.open("rb") as handle:
            doc = tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise KnowledgeError(f"{path.name}: not valid TOML ({error})") from None
    entries = doc.get("contradiction", [])
    return tuple(_parse(entry, i, path) for i, entry in enumerate(entries))


CONTRADICTIONS: tuple[Contradiction, ...] = load_contradictions()
"""The packaged table."""


def read_safely(
    answers: Mapping[str, Any], table: tuple[Contradiction, ...] = CONTRADICTIONS
) -> tuple[dict[str, Any], list[str]]:
    """The answers the triage reads for one validated case, and the warnings.

    Every contradiction is judged on the answers as given; the readings are then applied.

    Examples
    --------
    >>> case = {"age": 50, "progressive_weakness": True, "weakness": False}
    >>> reading, warnings = read_safely(case)
    >>> reading["weakness"], warnings[0].split(":")[0]
    (True, 'progressive_weakness, weakness')
    """
    found = [c for c in table if c.holds(answers)]
    if not found:
        return dict(answers), []
    reading = dict(answers)
    for contradiction in found:
        reading |= dict(contradiction.reading)
    return reading, [c.warning for c in found]


def read_frame_safely(
    frame: pd.DataFrame, table: tuple[Contradiction, ...] = CONTRADICTIONS
) -> tuple[pd.DataFrame, list[list[str]]]:
    """:func:`read_safely` for every row of a validated frame (the contract's dtypes)."""
    warnings: list[list[str]] = [[] for _ in range(len(frame))]
    masks = [(c, c.mask(frame)) for c in table]
    masks = [(c, m) for c, m in masks if m.any()]
    if not masks:
        return frame, warnings
    out = frame.copy()
    for contradiction, hit in masks:
        for position in np.flatnonzero(hit):
            warnings[position].append(contradiction.warning)
        for field, answer in contradiction.reading:
            column = out[field].copy()
            column[hit] = pd.NA if answer is None else answer
            out[field] = column
    return out, warnings
