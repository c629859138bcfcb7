"""The intake contract: field names, types and allowed values (``shared/contract.md`` section 1).

This module is the single source of truth for what a case looks like. The knowledge base, the
sampler, the posterior, the feature encoder, the validator and the CLI all read it, so a field
added here is added everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd

FieldKind = Literal["int", "float", "bool", "category"]


@dataclass(frozen=True)
class Field:
    """One intake question.

    Attributes
    ----------
    name : str
        Column name, exactly as in the contract.
    kind : {"int", "float", "bool", "category"}
        Value type.
    question : str
        How the question reads to a patient or clinician (used by the CLI and narratives).
    values : tuple of str
        Allowed values of a ``"category"`` field, in a fixed order (their integer codes).
    low, high : float or None
        Inclusive bounds of a numeric field.
    red_flag : bool
        Whether a ``True`` answer is one of the article's red-flag signs.
    examination : bool
        Whether the answer needs a clinician's examination (unknown at a self-reported intake).
    """

    name: str
    kind: FieldKind
    question: str
    values: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    red_flag: bool = False
    examination: bool = False

    def allowed(self) -> str:
        """Describe the allowed values in words, for error messages and ``--help``."""
        if self.kind == "category":
            return "one of " + ", ".join(repr(v) for v in self.values)
        if self.kind == "bool":
            return "true or false"
        kind = "an integer" if self.kind == "int" else "a number"
        hi = "" if self.high is None else f" and <= {self.high:g}"
        return f"{kind} >= {self.low:g}{hi}"


CAUSES: tuple[str, ...] = (
    "disc_herniation",
    "spinal_stenosis",
    "foraminal_stenosis",
    "piriformis_syndrome",
    "spondylolisthesis",
    "degenerative_disc_disease",
    "mechanical_pain",
)
"""The seven labels of ``cause``: the article's six numbered causes and mechanical pain."""

SETTINGS: tuple[str, ...] = ("primary_care", "spine_clinic")
"""Clinical settings with their own class priors."""

NERVE_ROOTS: tuple[str, ...] = ("none", "L2-L3", "L3-L4", "L5", "S1", "S1-S2")
"""Latent nerve root; ``"none"`` = no radicular involvement. Order follows the article."""

SERIOUS_CONDITIONS: tuple[str, ...] = (
    "none",
    "cauda_equina",
    "infection",
    "malignancy",
    "progressive_deficit",
)
"""Latent serious condition ``red_flag`` is ``serious_condition != "none"``."""

PAIN_REGIONS = (
    "back_only",
    "buttock_thigh",
    "front_of_thigh",
    "knee_inner_leg",
    "outer_leg_big_toe",
    "back_of_leg_heel",
    "outer_foot",
)
MRI_FINDINGS = (
    "not_done",
    "normal",
    "disc_herniation",
    "central_stenosis",
    "foraminal_stenosis",
    "spondylolisthesis",
    "degenerative_changes",
)

FIELDS: tuple[Field, ...] = (
    Field("age", "int", "How old is the patient (years)?", low=18, high=100),
    Field("sex", "category", "Sex", values=("female", "male")),
    Field("duration_weeks", "float", "How many weeks has the pain lasted?", low=0),
    Field("back_pain", "bool", "Is there lower back pain?"),
    Field("leg_pain_worse_than_back", "bool", "Is the leg pain worse than the back pain?"),
    Field("buttock_pain", "bool", "Is there prominent buttock pain?"),
    Field("sides", "category", "Which leg hurts?", values=("left", "right", "both")),
    Field("pain_region", "category", "Where does the pain reach?", values=PAIN_REGIONS),
    Field("below_knee", "bool", "Does the pain reach the calf, ankle or foot?"),
    Field(
        "pain_quality",
        "category",
        "What does the pain feel like?",
        values=("sharp_electric", "burning", "dull_aching", "heaviness_fatigue"),
    ),
    Field("worse_sitting", "bool", "Is it worse when sitting?"),
    Field("worse_bending_forward", "bool", "Is it worse when bending forward?"),
    Field("worse_cough_sneeze", "bool", "Do coughing, sneezing or straining make it worse?"),
    Field("worse_walking", "bool", "Is it worse when walking?"),
    Field("worse_standing", "bool", "Is it worse when standing?"),
    Field("worse_extension", "bool", "Is it worse when leaning backwards (extension)?"),
    Field("better_sitting", "bool", "Does sitting relieve it?"),
    Field("better_bending_forward", "bool", "Does bending forward relieve it?"),
    Field("better_rest_movement", "bool", "Does rest or gentle movement ease it?"),
    Field("worse_at_night", "bool", "Is it worse at night?"),
    Field("numbness", "bool", "Is there numbness in the leg?"),
    Field("tingling", "bool", "Is there tingling in the leg?"),
    Field("weakness", "bool", "Is there weakness in the leg?"),
    Field("reflex_changes", "bool", "Has an examiner found changed reflexes?", examination=True),
    Field("progressive_symptoms", "bool", "Are the nerve symptoms getting steadily worse?"),
    Field("conservative_care_failed", "bool", "Has conservative care been tried without success?"),
    Field(
        "straight_leg_raise",
        "bool",
        "Examination: does raising the straight painful leg reproduce the leg pain?",
        examination=True,
    ),
    Field(
        "crossed_straight_leg_raise",
        "bool",
        "Examination: does raising the other (straight) leg reproduce the pain?",
        examination=True,
    ),
    Field("mri_finding", "category", "What did the MRI show?", values=MRI_FINDINGS),
    Field(
        "bladder_bowel_dysfunction",
        "bool",
        "Any loss of bladder or bowel control?",
        red_flag=True,
    ),
    Field(
        "saddle_numbness",
        "bool",
        "Any numbness around the groin or inner thighs (saddle area)?",
        red_flag=True,
    ),
    Field("progressive_weakness", "bool", "Is leg weakness getting worse?", red_flag=True),
    Field("unexplained_weight_loss", "bool", "Any unexplained weight loss?", red_flag=True),
    Field("fever", "bool", "Fever together with the back pain?", red_flag=True),
    Field(
        "cancer_history",
        "bool",
        "History of cancer (with new or worsening pain)?",
        red_flag=True,
    ),
)

FIELD_BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}
FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)
RED_FLAG_FIELDS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.red_flag)
EXAMINATION_FIELDS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.examination)
"""Answers that need a clinician's examination: often unknown together at intake."""
LABELS: tuple[str, ...] = ("cause", "red_flag")
LATENTS: tuple[str, ...] = ("nerve_root", "serious_condition")


def pandas_dtype(field: Field) -> object:
    """The pandas dtype a field has in generated frames (nullable, categories fixed)."""
    if field.kind == "category":
        return pd.CategoricalDtype(list(field.values))
    return {"int": "Int64", "float": "Float64", "bool": "boolean"}[field.kind]


CAUSE_DTYPE = pd.CategoricalDtype(list(CAUSES))
ROOT_DTYPE = pd.CategoricalDtype(list(NERVE_ROOTS))
SERIOUS_DTYPE = pd.CategoricalDtype(list(SERIOUS_CONDITIONS))
SETTING_DTYPE = pd.CategoricalDtype(list(SETTINGS))
