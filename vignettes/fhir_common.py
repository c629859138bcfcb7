"""FHIR R4 building blocks shared by the data export (:mod:`vignettes.fhir`) and ``serve``.

Plain JSON-ready dicts, built without the ``fhir.resources`` models (the tests validate every
resource with the R4B models): deterministic ids, the project's coded concepts (from
``vignettes/codes.toml``, :mod:`vignettes.codes`) and the Condition resource for a cause or a
serious condition.
"""

from __future__ import annotations

import uuid
from typing import Any

from vignettes.codes import concept
from vignettes.sdc import CANONICAL_BASE

__all__ = [
    "CONDITION_CATEGORY",
    "ID_NAMESPACE",
    "VERIFICATION_SYSTEM",
    "condition",
    "deterministic_uuid",
    "laterality",
    "urn",
]

ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, CANONICAL_BASE)
"""The uuid5 namespace of every id the project writes: the same inputs give the same ids."""
VERIFICATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
"""FHIR R4 ``Condition.verificationStatus`` codes (``confirmed``, ``provisional``,
``differential``, ...)."""
CONDITION_CATEGORY = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/condition-category",
            "code": "encounter-diagnosis",
            "display": "Encounter Diagnosis",
        }
    ]
}
_CLINICAL_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-clinical"
_SIDES_TEXT = {"left": "left leg", "right": "right leg", "both": "both legs"}


def deterministic_uuid(*parts: object) -> str:
    """A uuid5 of the parts, in :data:`ID_NAMESPACE` (``"|"``-joined ``str`` of each part)."""
    return str(uuid.uuid5(ID_NAMESPACE, "|".join(str(p) for p in parts)))


def urn(resource_id: str) -> str:
    """The ``fullUrl`` / reference of a resource inside a Bundle: ``urn:uuid:<id>``."""
    return f"urn:uuid:{resource_id}"


def laterality(sides: object) -> list[dict[str, Any]] | None:
    """``bodySite`` for the leg(s) that hurt, from the ``sides`` answer (``None`` if unknown)."""
    if not isinstance(sides, str) or sides not in _SIDES_TEXT:
        return None
    return [concept("laterality", sides, fallback_text=_SIDES_TEXT[sides])]


def condition(
    resource_id: str,
    kind: str,
    name: str,
    subject: str,
    verification: str,
    *,
    sides: object = None,
    evidence: str | None = None,
    encounter: str | None = None,
    note: str | None = None,
    active: bool = True,
) -> dict[str, Any]:
    """A Condition resource for a cause (``kind="cause"``) or a serious condition.

    Parameters
    ----------
    resource_id : str
        The resource's id.
    kind : {"cause", "serious_condition"}
        Which table of ``vignettes/codes.toml`` codes ``name``.
    name : str
        The cause or serious condition.
    subject, evidence, encounter : str
        References (``urn:uuid:...`` inside a Bundle, or ``Patient/123``) to the patient, the
        QuestionnaireResponse the condition rests on, and the encounter.
    verification : str
        ``confirmed`` (the generator's ground truth), ``provisional`` or ``differential``.
    sides : str, optional
        The ``sides`` answer: the laterality (``bodySite``) of the leg pain.
    note : str, optional
        A note (e.g. the model's probability).
    active : bool, default=True
        Whether to state ``clinicalStatus`` active.
    """
    resource: dict[str, Any] = {"resourceType": "Condition", "id": resource_id}
    if active:
        resource["clinicalStatus"] = {
            "coding": [{"system": _CLINICAL_SYSTEM, "code": "active", "display": "Active"}]
        }
    resource["verificationStatus"] = {
        "coding": [
            {
                "system": VERIFICATION_SYSTEM,
                "code": verification,
                "display": verification.capitalize(),
            }
        ]
    }
    resource["category"] = [CONDITION_CATEGORY]
    resource["code"] = concept(kind, name)
    site = laterality(sides) if kind == "cause" else None
    if site:
        resource["bodySite"] = site
    resource["subject"] = {"reference": subject}
    if encounter is not None:
        resource["encounter"] = {"reference": encounter}
    if evidence is not None:
        resource["evidence"] = [{"detail": [{"reference": evidence}]}]
    if note is not None:
        resource["note"] = [{"text": note}]
    return resource
