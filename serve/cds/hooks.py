"""The two CDS services: their discovery entries, prefetch templates and request models.

Written from CDS Hooks 2.0 (HL7, 2022): the discovery response's ``services`` table ("CDS
Service" fields ``hook``, ``title``, ``description``, ``id``, ``prefetch``), the request's table
(``hook``, ``hookInstance``, ``fhirServer``, ``fhirAuthorization``, ``context``, ``prefetch``) and
the hook definitions ``patient-view`` 1.0 (context ``userId``, ``patientId``, ``encounterId``)
and ``order-select`` 1.0 (context ``userId``, ``patientId``, ``encounterId``, ``selections``,
``draftOrders``). Unknown request members are kept (the spec lets a client add extensions);
missing or mistyped required ones are refused, naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "MRI_SERVICE_ID",
    "TRIAGE_SERVICE_ID",
    "FhirAuthorization",
    "HookRequest",
    "OrderSelectContext",
    "OrderSelectRequest",
    "PatientViewContext",
    "PatientViewRequest",
    "ServiceDefinition",
    "service_definitions",
]

TRIAGE_SERVICE_ID = "sciatica-triage"
MRI_SERVICE_ID = "lumbar-mri-appropriateness"


class _Open(BaseModel):
    """A JSON object that may carry members the spec does not name (extensions)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class FhirAuthorization(_Open):
    """``fhirAuthorization``: the OAuth 2.0 access token for ``fhirServer``."""

    access_token: str = Field(min_length=1)
    token_type: Literal["Bearer"]
    expires_in: int = Field(ge=0)
    scope: str
    subject: str
    patient: str | None = None


class PatientViewContext(_Open):
    """``patient-view`` context: who is looking at which patient's chart."""

    userId: str = Field(min_length=1)
    patientId: str = Field(min_length=1)
    encounterId: str | None = None


class OrderSelectContext(_Open):
    """``order-select`` context: the draft orders and which of them were just selected."""

    userId: str = Field(min_length=1)
    patientId: str = Field(min_length=1)
    encounterId: str | None = None
    selections: list[str] = Field(min_length=1)
    draftOrders: dict[str, Any]

    @field_validator("draftOrders")
    @classmethod
    def _a_bundle(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("resourceType") != "Bundle":
            raise ValueError("must be a FHIR Bundle of the draft orders")
        if not isinstance(value.get("entry", []), list):
            raise ValueError("Bundle.entry must be a list")
        return value


class HookRequest(_Open):
    """The fields every CDS Hooks call carries (CDS Hooks 2.0, "HTTP Request")."""

    hook: str
    hookInstance: UUID
    fhirServer: str | None = None
    fhirAuthorization: FhirAuthorization | None = None
    prefetch: dict[str, dict[str, Any] | None] | None = None

    @field_validator("fhirServer")
    @classmethod
    def _a_base_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be the FHIR server's base URL (http:// or https://)")
        return value

    @model_validator(mode="after")
    def _server_for_token(self) -> HookRequest:
        if self.fhirAuthorization is not None and self.fhirServer is None:
            raise ValueError("fhirServer is required when fhirAuthorization is given")
        return self


class PatientViewRequest(HookRequest):
    """A call of the triage service (``patient-view``)."""

    hook: Literal["patient-view"]
    context: PatientViewContext


class OrderSelectRequest(HookRequest):
    """A call of the MRI appropriateness service (``order-select``)."""

    hook: Literal["order-select"]
    context: OrderSelectContext


@dataclass(frozen=True)
class ServiceDefinition:
    """One entry of the discovery document, and the request model its calls are checked with."""

    id: str
    hook: str
    title: str
    description: str
    prefetch: dict[str, str]
    request_model: type[HookRequest]

    def discovery(self) -> dict[str, Any]:
        """The entry as the discovery response lists it."""
        return {
            "hook": self.hook,
            "title": self.title,
            "description": self.description,
            "id": self.id,
            "prefetch": dict(self.prefetch),
            "usageRequirements": (
                "Research software trained on synthetic data; not a medical device. The "
                "patient's intake must be recorded as a QuestionnaireResponse to the "
                "sciatica-triage intake Questionnaire."
            ),
        }


def intake_prefetch(questionnaire_url: str) -> dict[str, str]:
    """The prefetch templates: the Patient and the latest intake QuestionnaireResponse."""
    return {
        "patient": "Patient/{{context.patientId}}",
        "intake": (
            "QuestionnaireResponse?subject={{context.patientId}}"
            f"&questionnaire={questionnaire_url}&_sort=-authored&_count=1"
        ),
    }


def service_definitions(questionnaire_url: str) -> dict[str, ServiceDefinition]:
    """The two services by id, with prefetch templates for the given intake Questionnaire."""
    prefetch = intake_prefetch(questionnaire_url)
    triage = ServiceDefinition(
        id=TRIAGE_SERVICE_ID,
        hook="patient-view",
        title="Sciatica triage (research software)",
        description=(
            "Triage of lower back pain radiating to the leg from the patient's latest intake "
            "questionnaire: urgency tier and timeframe, likely causes with probabilities, red "
            "flags fired and unanswered, MRI indication, next step and advice. Trained on "
            "synthetic data; not a medical device."
        ),
        prefetch=prefetch,
        request_model=PatientViewRequest,
    )
    mri = ServiceDefinition(
        id=MRI_SERVICE_ID,
        hook="order-select",
        title="Lumbar MRI appropriateness (research software)",
        description=(
            "When a lumbar-spine MRI is among the draft orders, says whether the patient's "
            "intake meets an MRI criterion of the source article (pain beyond 6-8 weeks despite "
            "conservative care, a progressive neurological deficit, surgery considered, red "
            "flags) and NICE NG59 (no routine imaging in a non-specialist setting). Not a "
            "medical device."
        ),
        prefetch=prefetch,
        request_model=OrderSelectRequest,
    )
    return {triage.id: triage, mri.id: mri}
