"""Validation at the boundary, as ``model`` and ``serve`` import it.

The validator itself lives in :mod:`vignettes.intake`, the lowest layer, so that the exact
posterior (which may not import ``model``) refuses bad input with the same checks, the same
messages and the same error type. This module re-exports its public names unchanged:
``model.intake.IntakeError is vignettes.intake.IntakeError``.
"""

from __future__ import annotations

from vignettes.intake import (
    IGNORED_COLUMNS,
    IntakeError,
    answers_frame,
    asked_fields,
    is_missing,
    red_flag_dont_knows,
    validate_case,
    validate_frame,
)

__all__ = [
    "IGNORED_COLUMNS",
    "IntakeError",
    "answers_frame",
    "asked_fields",
    "is_missing",
    "red_flag_dont_knows",
    "validate_case",
    "validate_frame",
]
