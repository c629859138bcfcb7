"""Labelled synthetic vignettes of lower back pain radiating to the leg.

A declarative knowledge base (``knowledge.toml``) encodes the source article; a vectorised,
seeded sampler draws cases from it; the exact posterior of the same model is the Bayes ceiling,
and :func:`answer_distribution` is the same model's prediction of a question's answer.
"""

from vignettes.generate import BLOCK_ROWS, generate, generate_partition, partition_bounds
from vignettes.intake import IntakeError, validate_case, validate_frame
from vignettes.knowledge import FieldGroup, KnowledgeBase, KnowledgeError, load_knowledge
from vignettes.perturb import perturb, swing, uncertainties
from vignettes.posterior import InputError, answer_distribution, posterior, posterior_after_answers
from vignettes.schema import (
    CAUSES,
    FIELD_BY_NAME,
    FIELD_NAMES,
    FIELDS,
    NERVE_ROOTS,
    RED_FLAG_FIELDS,
    SERIOUS_CONDITIONS,
    SETTINGS,
    Field,
)
from vignettes.sdc import (
    QUESTIONNAIRE_URL,
    asked_in_response,
    from_questionnaire_response,
    questionnaire,
    to_questionnaire_response,
)


def to_fhir(frame, seed=0, *, posterior=False):
    """One FHIR R4 transaction Bundle per row; see :func:`vignettes.fhir.to_fhir`."""
    from vignettes.fhir import to_fhir as _to_fhir

    return _to_fhir(frame, seed, posterior=posterior)


def narrate(df, seed=0):
    """Readable vignettes for ``df``'s rows; see :func:`vignettes.narrative.narrate`."""
    from vignettes.narrative import narrate as _narrate

    return _narrate(df, seed=seed)


__all__ = [
    "BLOCK_ROWS",
    "CAUSES",
    "FIELDS",
    "FIELD_BY_NAME",
    "FIELD_NAMES",
    "NERVE_ROOTS",
    "QUESTIONNAIRE_URL",
    "RED_FLAG_FIELDS",
    "SERIOUS_CONDITIONS",
    "SETTINGS",
    "Field",
    "FieldGroup",
    "InputError",
    "IntakeError",
    "KnowledgeBase",
    "KnowledgeError",
    "answer_distribution",
    "asked_in_response",
    "from_questionnaire_response",
    "generate",
    "generate_partition",
    "load_knowledge",
    "narrate",
    "partition_bounds",
    "perturb",
    "posterior",
    "posterior_after_answers",
    "questionnaire",
    "swing",
    "to_fhir",
    "to_questionnaire_response",
    "uncertainties",
    "validate_case",
    "validate_frame",
]
