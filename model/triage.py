"""The champion at run time: calibrated probabilities, exact attributions and the article's triage.

:class:`TriageModel` holds the two calibrated scorers (cause and red flag) and the metadata written
at training time, and turns a frame of intakes into one output row per case. The pyfunc model
that MLflow serves (:mod:`model.pyfunc`) and the Python API (``serve``) both call it, so every way
in gives the same answer.

Safety net: the final ``red_flag`` decision is the model's decision OR any reported red-flag sign.
The model can add urgency; it can never remove it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from model import rules
from model.conformal import ConformalSets
from model.features import FIELD_ORDER, encode, to_fields
from model.intake import validate_frame
from model.scorers import Scorer
from vignettes.schema import CAUSES

DISCLAIMER = (
    "Research software trained on synthetic data; not a medical device and not medical advice."
)
ATTRIBUTION_UNITS = (
    "additive contributions to the calibrated score (softmax logit for the cause, log-odds for "
    "the red flag); they add up to the score minus the base value"
)
OUTPUT_SCALARS = (
    "cause",
    *(f"prob_{c}" for c in CAUSES),
    "differential",
    "differential_coverage",
    "red_flag",
    "red_flag_probability",
    "red_flag_model",
    "red_flag_threshold",
    "red_flags_fired",
    "red_flags_unasked",
    "nerve_root",
    "pain_mechanism",
    "mri_indicated",
    "mri_reasons",
    "next_step",
    "advice",
    "attribution_base",
    "red_flag_attribution_base",
    "model_name",
    "model_version",
    "disclaimer",
)
OUTPUT_COLUMNS = (
    *OUTPUT_SCALARS,
    *(f"attr_{f}" for f in FIELD_ORDER),
    *(f"red_flag_attr_{f}" for f in FIELD_ORDER),
)
"""Columns of :meth:`TriageModel.predict`, in order (the pyfunc's output schema)."""


@dataclass
class TriageModel:
    """Calibrated cause and red-flag scorers plus their training-time metadata.

    Attributes
    ----------
    cause : Scorer
    red_flag : Scorer
    meta : dict
        ``name``, ``version``, ``red_flag_threshold`` and whatever training recorded.
    """

    cause: Scorer
    red_flag: Scorer
    meta: dict[str, Any]

    @property
    def threshold(self) -> float:
        return float(self.meta["red_flag_threshold"])

    def save(self, directory: Path | str) -> Path:
        """Write the bundle: two scorer folders and ``meta.json``."""
        directory = Path(directory)
        self.cause.save(directory / "cause")
        self.red_flag.save(directory / "red_flag")
        (directory / "meta.json").write_text(json.dumps(self.meta, indent=2, default=str))
        return directory

    @classmethod
    def load(cls, directory: Path | str) -> TriageModel:
        directory = Path(directory)
        meta = json.loads((directory / "meta.json").read_text())
        return cls(Scorer.load(directory / "cause"), Scorer.load(directory / "red_flag"), meta)

    def predict(self, cases: pd.DataFrame, *, validated: bool = False) -> pd.DataFrame:
        """Predict, explain and triage every case.

        Parameters
        ----------
        cases : pandas.DataFrame
            Intakes; validated here unless ``validated`` is true.
        validated : bool, default=False
            Skip validation for frames that already passed ``model.intake.validate_frame``.

        Returns
        -------
        pandas.DataFrame
            :data:`OUTPUT_COLUMNS`, one row per case, in the input's order and index.
        """
        frame = cases if validated else validate_frame(cases)
        X = encode(frame)
        out = self._probabilities(X, frame.index)
        out = pd.concat([out, self._attributions(X, out["cause"].to_numpy(), frame.index)], axis=1)
        return self._triage(frame, out)[list(OUTPUT_COLUMNS)]

    def _probabilities(self, X: np.ndarray, index: pd.Index) -> pd.DataFrame:
        proba = self.cause.proba(X)
        red = self.red_flag.proba(X)
        out = pd.DataFrame({f"prob_{c}": proba[:, i] for i, c in enumerate(CAUSES)}, index=index)
        out.insert(0, "cause", np.asarray(CAUSES, dtype=object)[proba.argmax(axis=1)])
        out["differential"], out["differential_coverage"] = self._differential(proba)
        out["red_flag_probability"] = red
        out["red_flag_model"] = red >= self.threshold
        out["red_flag_threshold"] = self.threshold
        return out

    def _differential(self, proba: np.ndarray) -> tuple[list[str], float]:
        """Causes in the conformal set, most probable first, as JSON lists (all if uncalibrated)."""
        if "conformal" not in self.meta:
            member, coverage = np.ones_like(proba, dtype=bool), 1.0
        else:
            sets = ConformalSets.from_dict(self.meta["conformal"])
            member, coverage = sets.sets(proba), 1.0 - sets.alpha
        order = np.argsort(-proba, axis=1)
        names = np.asarray(CAUSES, dtype=object)
        keep = np.take_along_axis(member, order, axis=1)
        lists = [json.dumps(list(names[o[m]])) for o, m in zip(order, keep, strict=True)]
        return lists, coverage

    def _attributions(self, X: np.ndarray, cause: np.ndarray, index: pd.Index) -> pd.DataFrame:
        values, base = self.cause.contributions(X)
        k = pd.Index(CAUSES).get_indexer(cause)
        rows = np.arange(len(X))
        cause_attr = to_fields(values[rows, :, k]) if len(X) else np.zeros((0, len(FIELD_ORDER)))
        red_values, red_base = self.red_flag.contributions(X)
        red_attr = to_fields(red_values[:, :, 0])
        data = {f"attr_{f}": cause_attr[:, j] for j, f in enumerate(FIELD_ORDER)}
        data |= {f"red_flag_attr_{f}": red_attr[:, j] for j, f in enumerate(FIELD_ORDER)}
        data["attribution_base"] = base[k] if len(X) else np.zeros(0)
        data["red_flag_attribution_base"] = np.full(len(X), red_base[0])
        return pd.DataFrame(data, index=index)

    def _triage(self, frame: pd.DataFrame, out: pd.DataFrame) -> pd.DataFrame:
        fired = rules.fired_red_flags(frame)
        out["red_flags_fired"] = [json.dumps(names) for names in fired]
        out["red_flags_unasked"] = rules.red_flags_unasked(frame).to_numpy()
        reported = np.array([bool(f) for f in fired], dtype=bool)
        # The safety net: any reported red-flag sign means urgent evaluation, whatever the model.
        out["red_flag"] = out["red_flag_model"].to_numpy() | reported
        out["nerve_root"] = rules.dermatome_root(frame["pain_region"]).astype(object).to_numpy()
        out["nerve_root"] = out["nerve_root"].where(out["nerve_root"].notna(), None)
        out["pain_mechanism"] = rules.pain_mechanism(frame).to_numpy()
        # The article's MRI criterion is red flags *present*: reported signs, not the model's
        # probability (which still makes the next step urgent).
        indicated, reasons = rules.mri_indication(frame, reported)
        out["mri_indicated"] = indicated.to_numpy()
        out["mri_reasons"] = [json.dumps(r) for r in reasons]
        steps = rules.next_step(frame, red_flag=out["red_flag"], mri_indicated=indicated)
        out["next_step"] = steps["next_step"].to_numpy()
        out["advice"] = [json.dumps(a) for a in steps["advice"]]
        out["model_name"] = self.meta.get("name", "sciatica-triage")
        out["model_version"] = str(self.meta.get("version", "unregistered"))
        out["disclaimer"] = DISCLAIMER
        return out
