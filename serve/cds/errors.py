"""FHIR OperationOutcome error answers, shared by every route of the CDS service.

A route raises :class:`ServiceError` (or lets FastAPI's request validation fail); the handlers
that :func:`install_error_handlers` adds turn either into a JSON OperationOutcome with the right
HTTP status. The text names the field (a dotted path such as ``context.patientId``) or the
questionnaire ``linkId`` that is wrong, and never carries a traceback or a server path: an
unexpected exception is logged on the server and answered with a generic 500.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from vignettes.readers import InputFormatError, loads_json

__all__ = [
    "FHIR_JSON",
    "Issue",
    "ServiceError",
    "install_error_handlers",
    "operation_outcome",
    "pydantic_issues",
]

log = logging.getLogger("serve.cds")

FHIR_JSON = "application/fhir+json"
"""The media type of an OperationOutcome answer."""


@dataclass(frozen=True)
class Issue:
    """One ``OperationOutcome.issue``.

    Attributes
    ----------
    diagnostics : str
        What is wrong and what is allowed, in words.
    expression : str or None
        Where: a dotted path into the request (``context.patientId``) or ``item[linkId=...]``.
    code : str
        The FHIR issue type (``invalid``, ``required``, ``value``, ``security``, ``not-found``...).
    severity : str
        ``error`` (the request failed) or ``fatal``.
    """

    diagnostics: str
    expression: str | None = None
    code: str = "invalid"
    severity: str = "error"


def operation_outcome(issues: Iterable[Issue]) -> dict[str, Any]:
    """An OperationOutcome resource (plain dict) holding ``issues``."""
    out = []
    for issue in issues:
        item: dict[str, Any] = {
            "severity": issue.severity,
            "code": issue.code,
            "diagnostics": issue.diagnostics,
        }
        if issue.expression:
            item["expression"] = [issue.expression]
        out.append(item)
    return {"resourceType": "OperationOutcome", "issue": out}


class ServiceError(Exception):
    """An error answer: an HTTP status and the OperationOutcome issues that explain it.

    Parameters
    ----------
    status : int
        400 (bad request), 401 (authentication), 412 (prefetch missing, no FHIR server), ...
    issues : sequence of Issue or str
        What went wrong; a plain string becomes an ``invalid`` issue.
    headers : dict, optional
        Extra response headers (``WWW-Authenticate`` for 401).
    """

    def __init__(
        self,
        status: int,
        issues: Sequence[Issue | str],
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.issues = [Issue(i) if isinstance(i, str) else i for i in issues]
        self.headers = headers
        super().__init__("; ".join(i.diagnostics for i in self.issues))


async def request_json(request: Request) -> Any:
    """The request body as JSON, read strictly (:func:`vignettes.readers.loads_json`): a key
    twice in one object, ``NaN`` or text that is not JSON is a 400 naming the key, never a
    silent choice of one of two answers."""
    try:
        return loads_json(await request.body(), "the body")
    except InputFormatError as exc:
        where = f"body.{exc.field}" if exc.field else "body"
        raise ServiceError(400, [Issue(str(exc), where)]) from None


def _path(loc: Sequence[Any]) -> str:
    """A pydantic error location as a dotted path: ``("body", "context", "patientId")``."""
    parts = [p for p in loc if p != "body"]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def pydantic_issues(errors: Iterable[Mapping[str, Any]]) -> list[Issue]:
    """Pydantic (or FastAPI) validation errors as issues, each naming its field."""
    issues = []
    for error in errors:
        where = _path(error.get("loc", ()))
        kind = str(error.get("type", ""))
        if kind == "json_invalid":
            message = "the body is not valid JSON"
            where = "body"
        elif kind == "missing":
            message = f"{where} is required"
        else:
            message = f"{where}: {error.get('msg', 'invalid value')}"
        issues.append(Issue(message, where, "required" if kind == "missing" else "invalid"))
    return issues


def _answer(status: int, issues: Sequence[Issue], headers: dict[str, str] | None = None):
    return JSONResponse(
        operation_outcome(issues), status_code=status, headers=headers, media_type=FHIR_JSON
    )


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` with an OperationOutcome (never a traceback)."""

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return _answer(exc.status, exc.issues, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _answer(400, pydantic_issues(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = "not-found" if exc.status_code == 404 else "processing"
        text = f"{request.method} {request.url.path}: {exc.detail}"
        return _answer(exc.status_code, [Issue(text, code=code)], getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        issue = Issue("internal error; the server log has the details", code="exception")
        return _answer(500, [issue])
