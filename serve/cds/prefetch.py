"""Prefetched data: read it from the request, or fetch what is missing from the FHIR server.

CDS Hooks 2.0, "Prefetch": a client may send each prefetch template's result under its key; a
key it could not fill is absent or ``null``. The service then fetches the data itself from
``fhirServer`` with the bearer token of ``fhirAuthorization``, or, without a FHIR server,
answers ``412 Precondition Failed`` ("Prefetch" and "FHIR Resource Access"). A FHIR server that
fails, times out or refuses the token also ends in 412: the data the service needs could not be
had. The templates' tokens (``{{context.patientId}}`` ...) are filled from the call's context.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import httpx

from serve.cds.errors import Issue, ServiceError
from serve.cds.hooks import HookRequest

__all__ = [
    "DEFAULT_FHIR_TIMEOUT",
    "fetch_missing",
    "latest_intake",
    "render_template",
]

DEFAULT_FHIR_TIMEOUT = 5.0
"""Seconds allowed for each FHIR read (connect, read and write each)."""

_TOKEN = re.compile(r"\{\{\s*context\.([A-Za-z0-9_]+)\s*\}\}")


def render_template(template: str, context: Mapping[str, Any]) -> str:
    """Fill a prefetch template's ``{{context.<name>}}`` tokens from the call's context.

    >>> render_template("Patient/{{context.patientId}}", {"patientId": "p1"})
    'Patient/p1'
    """

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if not isinstance(context.get(name), str):
            raise ServiceError(
                400, [Issue(f"context.{name} is needed by a prefetch template", f"context.{name}")]
            )
        return str(context[name])

    return _TOKEN.sub(value, template)


async def fetch_missing(
    request: HookRequest,
    templates: Mapping[str, str],
    needed: tuple[str, ...],
    client: httpx.AsyncClient,
    timeout: float = DEFAULT_FHIR_TIMEOUT,
) -> dict[str, Any]:
    """Every prefetch key of ``templates``: the request's value, or fetched from ``fhirServer``.

    Parameters
    ----------
    request : HookRequest
        The validated call.
    templates : mapping
        The service's prefetch templates (key -> FHIR query relative to the server's base).
    needed : tuple of str
        The keys the service cannot answer without; a key not in it is fetched when a FHIR
        server is given, and left ``None`` otherwise.
    client : httpx.AsyncClient
        Used for the FHIR reads.
    timeout : float
        Seconds for each read.

    Returns
    -------
    dict
        Key -> the resource (a Bundle for a search), or ``None`` when it could not be had.

    Raises
    ------
    ServiceError
        412 (OperationOutcome naming the keys) when a needed key is missing and there is no
        FHIR server, or the server does not deliver it.
    """
    given = dict(request.prefetch or {})
    out: dict[str, Any] = {key: given.get(key) for key in templates}
    missing = [key for key in templates if out[key] is None]
    if not missing:
        return out
    server = request.fhirServer
    if server is None:
        absent = [key for key in missing if key in needed]
        if absent:
            raise ServiceError(412, [_no_prefetch(key, templates[key]) for key in absent])
        return out
    context = request.context.model_dump() if hasattr(request, "context") else {}
    headers = {"Accept": "application/fhir+json"}
    if request.fhirAuthorization is not None:
        headers["Authorization"] = f"Bearer {request.fhirAuthorization.access_token}"
    base = str(server).rstrip("/")
    for key in missing:
        query = render_template(templates[key], context)
        try:
            response = await client.get(f"{base}/{query}", headers=headers, timeout=timeout)
        except httpx.TimeoutException:
            problem = f"the FHIR server did not answer within {timeout:g} s"
        except httpx.HTTPError as error:
            problem = f"the FHIR server could not be reached ({type(error).__name__})"
        else:
            if response.status_code == 200:
                try:
                    out[key] = response.json()
                    continue
                except ValueError:
                    problem = "the FHIR server's answer is not JSON"
            elif response.status_code == 404 and key not in needed:
                continue
            else:
                problem = f"the FHIR server answered HTTP {response.status_code}"
        if key in needed:
            raise ServiceError(412, [Issue(f"prefetch {key!r}: {problem}", f"prefetch.{key}")])
    return out


def _no_prefetch(key: str, template: str) -> Issue:
    return Issue(
        f"prefetch {key!r} ({template}) is missing and the request names no fhirServer to "
        "fetch it from",
        f"prefetch.{key}",
        code="required",
    )


def latest_intake(value: Any, patient_id: str) -> dict[str, Any] | None:
    """The intake QuestionnaireResponse in a prefetch value, or ``None`` when there is none.

    Parameters
    ----------
    value : dict or None
        A searchset Bundle (the prefetch template's result; the latest ``authored`` is taken
        when it holds several) or a bare QuestionnaireResponse.
    patient_id : str
        ``context.patientId``; a response about another patient is refused.

    Raises
    ------
    ServiceError
        400 naming ``prefetch.intake`` for anything else, or a response about another patient.
    """
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ServiceError(400, [Issue("prefetch.intake must be a JSON object", "prefetch.intake")])
    kind = value.get("resourceType")
    if kind == "Bundle":
        entries = value.get("entry") or []
        if not isinstance(entries, list):
            raise ServiceError(
                400, [Issue("prefetch.intake.entry must be a list", "prefetch.intake.entry")]
            )
        found = [
            e["resource"]
            for e in entries
            if isinstance(e, Mapping)
            and isinstance(e.get("resource"), Mapping)
            and e["resource"].get("resourceType") == "QuestionnaireResponse"
        ]
        if not found:
            return None
        response = max(found, key=lambda r: str(r.get("authored", "")))
    elif kind == "QuestionnaireResponse":
        response = value
    else:
        raise ServiceError(
            400,
            [
                Issue(
                    "prefetch.intake must be a Bundle of QuestionnaireResponse or a "
                    f"QuestionnaireResponse, not {kind!r}",
                    "prefetch.intake.resourceType",
                )
            ],
        )
    subject = response.get("subject")
    reference = subject.get("reference") if isinstance(subject, Mapping) else None
    about_patient = isinstance(reference, str) and "Patient/" in reference
    if about_patient and str(reference).rsplit("Patient/", 1)[-1] != patient_id:
        raise ServiceError(
            400,
            [
                Issue(
                    f"prefetch.intake is about {reference}, not Patient/{patient_id} "
                    "(context.patientId)",
                    "prefetch.intake.subject",
                )
            ],
        )
    return dict(response)
