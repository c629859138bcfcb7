"""The trained model at run time: features, calibrated scorers with exact TreeSHAP tables, the
article's rules, the pyfunc.

``model`` reads the contract from ``vignettes.schema`` and never imports ``training`` or ``serve``.
"""

from model.features import FEATURE_NAMES, FIELD_ORDER, encode, to_fields
from model.intake import IntakeError, validate_case, validate_frame
from model.scorers import Calibration, Scorer
from model.triage import DISCLAIMER, OUTPUT_COLUMNS, TriageModel

__all__ = [
    "DISCLAIMER",
    "FEATURE_NAMES",
    "FIELD_ORDER",
    "OUTPUT_COLUMNS",
    "Calibration",
    "IntakeError",
    "Scorer",
    "TriageModel",
    "encode",
    "to_fields",
    "validate_case",
    "validate_frame",
]
