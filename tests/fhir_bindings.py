"""The FHIR R4 codes our resources use where the standard binds them as *required*.

The ``fhir.resources`` models check structure and types, not value sets: a Patient whose
``gender`` is ``"banana"`` or a QuestionnaireResponse whose ``status`` is ``"nope"`` passes
``model_validate``. :func:`binding_errors` checks each required binding of the resource types
this project writes, through Bundle entries, contained resources and nested items, so the
tests that validate our output against the R4B models catch a wrong code too.

The value sets are R4's (http://hl7.org/fhir/R4/valueset-*.html), and unchanged in R4B.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["REQUIRED", "assert_required_codes", "binding_errors"]

_PUBLICATION = frozenset({"draft", "active", "retired", "unknown"})
_EVENT = frozenset(
    {"registered", "preliminary", "final", "amended", "corrected", "cancelled"}
    | {"entered-in-error", "unknown"}
)
_REQUEST_STATUS = frozenset(
    {"draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"}
)
_REQUEST_INTENT = frozenset(
    {"proposal", "plan", "directive", "order", "original-order", "reflex-order"}
    | {"filler-order", "instance-order", "option"}
)
_PRIORITY = frozenset({"routine", "urgent", "asap", "stat"})

REQUIRED: dict[str, dict[str, frozenset[str]]] = {
    "Bundle": {
        "type": frozenset(
            {"document", "message", "transaction", "transaction-response", "batch"}
            | {"batch-response", "history", "searchset", "collection"}
        ),
        "entry.request.method": frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"}),
    },
    "Patient": {"gender": frozenset({"male", "female", "other", "unknown"})},
    "Encounter": {
        "status": frozenset(
            {"planned", "arrived", "triaged", "in-progress", "onleave", "finished"}
            | {"cancelled", "entered-in-error", "unknown"}
        )
    },
    "Condition": {
        "clinicalStatus.coding.code": frozenset(
            {"active", "recurrence", "relapse", "inactive", "remission", "resolved"}
        ),
        "verificationStatus.coding.code": frozenset(
            {"unconfirmed", "provisional", "differential", "confirmed", "refuted"}
            | {"entered-in-error"}
        ),
    },
    "Questionnaire": {
        "status": _PUBLICATION,
        "item.type": frozenset(
            {"group", "display", "boolean", "decimal", "integer", "date", "dateTime", "time"}
            | {"string", "text", "url", "choice", "open-choice", "attachment", "reference"}
            | {"quantity"}
        ),
        "item.enableWhen.operator": frozenset({"exists", "=", "!=", ">", "<", ">=", "<="}),
        "item.enableBehavior": frozenset({"all", "any"}),
    },
    "QuestionnaireResponse": {
        "status": frozenset({"in-progress", "completed", "amended", "entered-in-error", "stopped"})
    },
    "RiskAssessment": {"status": _EVENT},
    "ServiceRequest": {
        "status": _REQUEST_STATUS,
        "intent": _REQUEST_INTENT,
        "priority": _PRIORITY,
    },
    "Task": {
        "status": frozenset(
            {"draft", "requested", "received", "accepted", "rejected", "ready", "cancelled"}
            | {"in-progress", "on-hold", "failed", "completed", "entered-in-error"}
        ),
        "intent": _REQUEST_INTENT - {"directive"} | {"unknown"},
        "priority": _PRIORITY,
    },
    "OperationOutcome": {
        "issue.severity": frozenset({"fatal", "error", "warning", "information"}),
        "issue.code": frozenset(
            {"invalid", "structure", "required", "value", "invariant", "security", "login"}
            | {"unknown", "expired", "forbidden", "suppressed", "processing", "not-supported"}
            | {"duplicate", "multiple-matches", "not-found", "deleted", "too-long"}
            | {"code-invalid", "extension", "too-costly", "business-rule", "conflict"}
            | {"transient", "lock-error", "no-store", "exception", "timeout", "incomplete"}
            | {"throttled", "informational"}
        ),
    },
}
"""Resource type -> dotted path -> the codes R4 allows there (required bindings only)."""


def _values(node: Any, path: list[str]) -> Iterator[Any]:
    """Every value at ``path`` under ``node``, through lists; ``item`` also through nested
    items (a Questionnaire's groups)."""
    if isinstance(node, list):
        for element in node:
            yield from _values(element, path)
        return
    if not path:
        yield node
        return
    if not isinstance(node, Mapping) or path[0] not in node:
        return
    yield from _values(node[path[0]], path[1:])
    if path[0] == "item":  # the same path inside each item's own items
        yield from _values(node["item"], path)


def _resources(resource: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The resource, its Bundle entries' and its contained resources, recursively."""
    yield resource
    for entry in resource.get("entry") or []:
        if isinstance(entry, Mapping) and isinstance(entry.get("resource"), Mapping):
            yield from _resources(entry["resource"])
    for contained in resource.get("contained") or []:
        if isinstance(contained, Mapping):
            yield from _resources(contained)


def binding_errors(resource: Mapping[str, Any]) -> list[str]:
    """``"<type>.<path>: <value>"`` for each code outside its required value set."""
    errors = []
    for found in _resources(resource):
        kind = str(found.get("resourceType"))
        for path, allowed in REQUIRED.get(kind, {}).items():
            errors += [
                f"{kind}.{path}: {value!r}"
                for value in _values(found, path.split("."))
                if value not in allowed
            ]
    return errors


def assert_required_codes(resource: Mapping[str, Any]) -> None:
    """Assert that every required binding of ``resource`` (and of what it holds) is met."""
    errors = binding_errors(resource)
    assert not errors, errors
