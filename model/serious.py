"""Which serious condition: one calibrated probability per condition the generator labels.

The red-flag scorer says how likely *some* serious condition is; this model says which. It holds
one calibrated binary tree scorer per condition of :data:`SERIOUS_TYPES` (one condition against
everything else, including the other conditions), fitted in the champion's family at training
time (:mod:`training.serious`), with monotone constraints on the findings that condition raises
in the knowledge base. Each probability is the probability of that condition given the answers,
``P(condition | answers)``: the same quantity as the exact posterior's ``serious_<condition>``
column, so the two are compared directly in the comparison report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.scorers import Scorer
from vignettes.schema import SERIOUS_CONDITIONS

SERIOUS_TYPES: tuple[str, ...] = tuple(c for c in SERIOUS_CONDITIONS if c != "none")
"""The serious conditions a case can be scored for, in the schema's order."""
SERIOUS_PROB_COLUMNS: tuple[str, ...] = tuple(f"prob_serious_{c}" for c in SERIOUS_TYPES)
"""Output columns of the per-condition probabilities (``prob_serious_<condition>``)."""


@dataclass
class SeriousTypeModel:
    """One calibrated binary scorer per serious condition.

    Attributes
    ----------
    scorers : dict of str to Scorer
        Condition name (every name of :data:`SERIOUS_TYPES`) -> its calibrated binary scorer.
    """

    scorers: dict[str, Scorer]

    def __post_init__(self) -> None:
        if set(self.scorers) != set(SERIOUS_TYPES):
            raise ValueError(
                f"scorers: expected one per condition {list(SERIOUS_TYPES)}, "
                f"got {sorted(self.scorers)}"
            )

    def proba(self, X: np.ndarray) -> np.ndarray:
        """Calibrated ``P(condition | answers)``, shape ``(n, len(SERIOUS_TYPES))``."""
        if len(X) == 0:
            return np.zeros((0, len(SERIOUS_TYPES)))
        return np.column_stack([self.scorers[c].proba(X) for c in SERIOUS_TYPES])

    def save(self, directory: Path | str) -> Path:
        """Write one scorer folder per condition and ``serious.json`` listing them."""
        directory = Path(directory)
        for condition, scorer in self.scorers.items():
            scorer.save(directory / condition)
        (directory / "serious.json").write_text(json.dumps({"conditions": list(SERIOUS_TYPES)}))
        return directory

    @classmethod
    def load(cls, directory: Path | str) -> SeriousTypeModel:
        """Read a model written by :meth:`save` (files as they are; :meth:`TriageModel.load
        <model.triage.TriageModel.load>` reads it checked against the bundle's manifest)."""
        directory = Path(directory)
        conditions = json.loads((directory / "serious.json").read_text())["conditions"]
        return cls({c: Scorer.load(directory / c) for c in conditions})


__all__ = ["SERIOUS_PROB_COLUMNS", "SERIOUS_TYPES", "SeriousTypeModel"]
