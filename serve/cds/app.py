"""The CDS Hooks 2.0 service as a FastAPI application: :func:`create_app`.

Routes (all answers JSON; every error an OperationOutcome, :mod:`serve.cds.errors`):

- ``GET /cds-services`` - discovery (:mod:`serve.cds.hooks`);
- ``POST /cds-services/sciatica-triage`` - ``patient-view``: the triage card of the patient's
  latest intake QuestionnaireResponse (:func:`serve.cds.cards.triage_cards`);
- ``POST /cds-services/lumbar-mri-appropriateness`` - ``order-select``: whether a draft lumbar
  MRI meets a criterion (:func:`serve.cds.cards.mri_cards`);
- ``POST /cds-services/{id}/feedback`` - card outcomes, append-only (:mod:`serve.cds.feedback`);
- ``GET /ping`` - liveness, no authentication; ``GET /about`` - the README's "not a medical
  device" section, which every card's ``source.url`` points to.

Other modules add their routes as a FastAPI ``APIRouter`` listed in :data:`EXTRA_ROUTERS`
(``"module:attribute"``): :func:`create_app` includes each, and the routes share the app's
error handlers, the loaded model (``request.app.state.predict``), the intake Questionnaire's URL
and the settings (``request.app.state.settings``).

Predictions are CPU-bound and short (about a millisecond); they run on the event loop, while a
FHIR read (:mod:`serve.cds.prefetch`) and a JWK Set fetch wait without blocking it.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import ValidationError

from serve.cds.auth import ClientAuth, load_issuers
from serve.cds.cards import CardContext, lumbar_mri_orders, mri_cards, triage_cards
from serve.cds.errors import (
    Issue,
    ServiceError,
    install_error_handlers,
    pydantic_issues,
    request_json,
)
from serve.cds.feedback import FeedbackRequest, FeedbackStore
from serve.cds.hooks import (
    MRI_SERVICE_ID,
    TRIAGE_SERVICE_ID,
    HookRequest,
    ServiceDefinition,
    service_definitions,
)
from serve.cds.prefetch import DEFAULT_FHIR_TIMEOUT, fetch_missing, latest_intake
from vignettes.sdc import asked_in_response

__all__ = ["EXTRA_ROUTERS", "CdsSettings", "create_app", "default_feedback_path"]

log = logging.getLogger("serve.cds")

CHECKOUT = Path(__file__).resolve().parents[2]
README = CHECKOUT / "README.md"
NOT_A_DEVICE_ANCHOR = "research-software-not-a-medical-device"
"""The README section's anchor ("Research software, not a medical device")."""

SANDBOX_ORIGIN = "https://sandbox.cds-hooks.org"
"""The public CDS Hooks sandbox, which calls services from the user's browser."""

EXTRA_ROUTERS: tuple[str, ...] = ("serve.interview_web:router",)
"""``"module:attribute"`` of each ``APIRouter`` that other features add to this server."""

Predict = Callable[..., Any]
"""``(case, asked=None) -> Prediction``: a case (and the fields asked, for the interview)."""
FromResponse = Callable[[Mapping[str, Any]], dict[str, Any]]
"""A function from a QuestionnaireResponse to a case (``vignettes.from_questionnaire_response``)."""


def default_feedback_path() -> Path:
    """``SCIATICA_CDS_FEEDBACK_DB``, else ``data/cds-feedback.sqlite3`` in the checkout."""
    setting = os.environ.get("SCIATICA_CDS_FEEDBACK_DB")
    return Path(setting) if setting else CHECKOUT / "data" / "cds-feedback.sqlite3"


@dataclass(frozen=True)
class CdsSettings:
    """How the service runs; :meth:`from_env` reads the documented environment variables.

    Attributes
    ----------
    host, port : str, int
        Where it listens (``127.0.0.1:5002``).
    model_uri : str or None
        The model (default: the registered champion).
    feedback_db : pathlib.Path
        The feedback database (``SCIATICA_CDS_FEEDBACK_DB``).
    issuers : str or None
        The trusted issuers, a JSON file or JSON text (``SCIATICA_CDS_ISSUERS``; see
        :mod:`serve.cds.auth`). Unset: open on loopback.
    public_url : str or None
        The URL clients call the service at (``SCIATICA_CDS_PUBLIC_URL``), the base of a
        token's ``aud``; default ``http://127.0.0.1:<port>`` and ``http://localhost:<port>``.
    fhir_timeout : float
        Seconds for each read from a client's FHIR server (``SCIATICA_CDS_FHIR_TIMEOUT``).
    cors_origins : tuple of str
        Browser origins allowed to call the service (``SCIATICA_CDS_CORS_ORIGINS``, comma
        separated): CDS Hooks 2.0 asks services to support CORS, and the public CDS Hooks
        sandbox calls them from the browser. Default: the sandbox's origin.
    """

    host: str = "127.0.0.1"
    port: int = 5002
    model_uri: str | None = None
    feedback_db: Path = field(default_factory=default_feedback_path)
    issuers: str | None = None
    public_url: str | None = None
    fhir_timeout: float = DEFAULT_FHIR_TIMEOUT
    cors_origins: tuple[str, ...] = (SANDBOX_ORIGIN,)

    @classmethod
    def from_env(cls, **overrides: Any) -> CdsSettings:
        """Settings from ``SCIATICA_CDS_*``, then ``overrides`` (``None`` values ignored)."""
        env = os.environ
        origins = env.get("SCIATICA_CDS_CORS_ORIGINS")
        base = cls(
            cors_origins=(
                tuple(o.strip() for o in origins.split(",") if o.strip())
                if origins is not None
                else (SANDBOX_ORIGIN,)
            ),
            issuers=env.get("SCIATICA_CDS_ISSUERS") or None,
            public_url=env.get("SCIATICA_CDS_PUBLIC_URL") or None,
            fhir_timeout=float(env.get("SCIATICA_CDS_FHIR_TIMEOUT", DEFAULT_FHIR_TIMEOUT)),
        )
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})

    def base_urls(self) -> tuple[str, ...]:
        """The public base URLs (no trailing slash)."""
        if self.public_url:
            return (self.public_url.rstrip("/"),)
        return (f"http://127.0.0.1:{self.port}", f"http://localhost:{self.port}")


def _default_predict(model_uri: str | None) -> Predict:
    import serve

    predictor = serve.load(model_uri)
    return predictor.predict


def _default_from_response() -> FromResponse:
    from vignettes import from_questionnaire_response

    return from_questionnaire_response


def _questionnaire_url() -> str:
    from vignettes import questionnaire

    return str(questionnaire()["url"])


def _not_a_device_section() -> str:
    """The README's "not a medical device" section, as Markdown."""
    text = README.read_text(encoding="utf-8") if README.is_file() else ""
    start = text.find("## Research software, not a medical device")
    if start < 0:
        return "Research software trained on synthetic data; not a medical device.\n"
    end = text.find("\n## ", start + 3)
    return text[start:] if end < 0 else text[start : end + 1]


def _context(request: Request, hook: HookRequest) -> CardContext:
    state = request.app.state
    ctx = hook.context  # type: ignore[attr-defined]
    return CardContext(
        patient_id=ctx.patientId,
        encounter_id=ctx.encounterId,
        source_url=f"{state.base_url}/about#{NOT_A_DEVICE_ANCHOR}",
        questionnaire_url=state.questionnaire_url,
        interview_url=state.interview_url,
    )


async def _hook_request(request: Request, definition: ServiceDefinition) -> HookRequest:
    body = await request_json(request)
    if not isinstance(body, dict):
        raise ServiceError(400, [Issue("the body must be a JSON object", "body")])
    try:
        return definition.request_model.model_validate(body)
    except ValidationError as error:
        raise ServiceError(400, pydantic_issues(error.errors())) from None


_RESPONSE_MEMBERS = frozenset({"resourceType", "questionnaire", "status", "subject", "item"})


def _where(field_name: str | None) -> str:
    """Where an intake error is: a member of the response, or an item by ``linkId``."""
    if not field_name:
        return "prefetch.intake"
    if field_name in _RESPONSE_MEMBERS:
        return f"prefetch.intake.{field_name}"
    return f"prefetch.intake.item[linkId={field_name}]"


def _age_from_patient(patient: Any, response: Mapping[str, Any]) -> int | None:
    """The patient's age in whole years when the response was authored (today if undated)."""
    if not isinstance(patient, Mapping) or patient.get("resourceType") != "Patient":
        return None
    try:
        born = date.fromisoformat(str(patient.get("birthDate", "")))
    except ValueError:  # absent, or only a year or year-month: too coarse for an age
        return None
    authored = str(response.get("authored") or "")[:10]
    try:
        when = date.fromisoformat(authored)
    except ValueError:
        when = datetime.now(UTC).date()
    return when.year - born.year - ((when.month, when.day) < (born.month, born.day))


def _has_answer(items: Any, link_id: str) -> bool:
    return isinstance(items, list) and any(
        isinstance(i, Mapping)
        and (
            (i.get("linkId") == link_id and i.get("answer")) or _has_answer(i.get("item"), link_id)
        )
        for i in items
    )


def _predict_intake(request: Request, prefetch: dict[str, Any], patient_id: str) -> Any | None:
    """The prediction for the patient's latest intake, or ``None`` when none is on file.

    An intake that leaves ``age`` unanswered takes it from the prefetched Patient's
    ``birthDate`` (at the response's ``authored`` date); nothing else is taken from the chart,
    so every response ``serve.predict`` accepts gets exactly its answer.
    """
    state = request.app.state
    response = latest_intake(prefetch.get("intake"), patient_id)
    if response is None:
        return None
    if not _has_answer(response.get("item"), "age"):
        age = _age_from_patient(prefetch.get("patient"), response)
        if age is not None:
            item = {"linkId": "age", "answer": [{"valueInteger": age}]}
            response = {**response, "item": [*(response.get("item") or []), item]}
    try:
        case = state.from_response(response)
        # an item the EHR holds without an answer was asked: a red-flag "don't know" keeps
        # the tier at least review, as in the interview
        return state.predict(case, asked=asked_in_response(response))
    except ValueError as error:  # IntakeError names the field / linkId and what is allowed
        where = _where(getattr(error, "field", None))
        raise ServiceError(400, [Issue(str(error), where)]) from None


def _no_intake_card(ctx: CardContext, service_title: str) -> dict[str, Any]:
    return {
        "uuid": ctx.new_uuid(),
        "summary": "No sciatica intake on file for this patient: nothing to assess",
        "indicator": "info",
        "detail": (
            f"{service_title}: the patient has no QuestionnaireResponse to the intake "
            f"Questionnaire ({ctx.questionnaire_url}). Record one to get an assessment.\n\n"
            "*Research software trained on synthetic data; not a medical device.*"
        ),
        "source": {"label": "sciatica-triage research software", "url": ctx.source_url},
    }


async def _authenticate(request: Request) -> None:
    auth: ClientAuth = request.app.state.auth
    client = request.client.host if request.client else None
    header = request.headers.get("authorization")
    if auth.open:
        auth.check(header, request.url.path, client)
    else:  # may read a JWK Set over the network
        await anyio.to_thread.run_sync(auth.check, header, request.url.path, client)


def _cds_router(services: dict[str, ServiceDefinition]) -> APIRouter:
    router = APIRouter(prefix="/cds-services", dependencies=[Depends(_authenticate)])
    discovery = {"services": [s.discovery() for s in services.values()]}

    @router.get("", summary="CDS Hooks discovery")
    async def discover() -> dict[str, Any]:
        return discovery

    async def _prefetched(
        request: Request, definition: ServiceDefinition, hook: HookRequest
    ) -> Any:
        return await fetch_missing(
            hook,
            definition.prefetch,
            needed=("intake",),
            client=request.app.state.http,
            timeout=request.app.state.settings.fhir_timeout,
        )

    @router.post(f"/{TRIAGE_SERVICE_ID}", summary="patient-view: the triage card")
    async def triage(request: Request) -> JSONResponse:
        definition = services[TRIAGE_SERVICE_ID]
        hook = await _hook_request(request, definition)
        prefetch = await _prefetched(request, definition, hook)
        ctx = _context(request, hook)
        prediction = _predict_intake(request, prefetch, ctx.patient_id)
        if prediction is None:
            return JSONResponse({"cards": [_no_intake_card(ctx, definition.title)]})
        return JSONResponse({"cards": triage_cards(prediction, ctx)})

    @router.post(f"/{MRI_SERVICE_ID}", summary="order-select: lumbar MRI appropriateness")
    async def mri(request: Request) -> JSONResponse:
        definition = services[MRI_SERVICE_ID]
        hook = await _hook_request(request, definition)
        orders = lumbar_mri_orders(hook.context.draftOrders)  # type: ignore[attr-defined]
        if not orders:  # nothing to say, and no need to read the intake
            return JSONResponse({"cards": []})
        prefetch = await _prefetched(request, definition, hook)
        ctx = _context(request, hook)
        prediction = _predict_intake(request, prefetch, ctx.patient_id)
        if prediction is None:
            return JSONResponse({"cards": [_no_intake_card(ctx, definition.title)]})
        return JSONResponse({"cards": mri_cards(prediction, orders, ctx)})

    @router.post("/{service_id}/feedback", summary="card feedback (append-only)")
    async def feedback(service_id: str, request: Request) -> JSONResponse:
        if service_id not in services:
            raise ServiceError(
                404, [Issue(f"no CDS service {service_id!r}", "id", code="not-found")]
            )
        try:
            body = FeedbackRequest.model_validate(await request_json(request))
        except ValueError as error:
            issues = (
                pydantic_issues(error.errors())
                if isinstance(error, ValidationError)
                else [Issue("the body is not valid JSON", "body")]
            )
            raise ServiceError(400, issues) from None
        store: FeedbackStore = request.app.state.feedback
        await anyio.to_thread.run_sync(store.append, service_id, body.feedback)
        return JSONResponse({})

    return router


def create_app(
    settings: CdsSettings | None = None,
    *,
    predict: Predict | None = None,
    from_response: FromResponse | None = None,
    questionnaire_url: str | None = None,
) -> FastAPI:
    """The CDS Hooks service, ready for uvicorn.

    Parameters
    ----------
    settings : CdsSettings, optional
        Default: :meth:`CdsSettings.from_env`.
    predict : callable, optional
        Case -> :class:`serve.Prediction`; default the model of ``settings.model_uri`` (the
        champion), loaded now, so that the server answers as soon as it listens.
    from_response : callable, optional
        QuestionnaireResponse -> case; default ``vignettes.from_questionnaire_response``.
    questionnaire_url : str, optional
        The intake Questionnaire's canonical URL; default ``vignettes.questionnaire()``'s.

    Raises
    ------
    serve.cds.auth.ConfigError
        For a malformed trusted-issuer setting.
    """
    settings = settings or CdsSettings.from_env()
    http = httpx.AsyncClient(follow_redirects=False)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await http.aclose()

    app = FastAPI(
        title="sciatica-triage CDS Hooks service",
        description="CDS Hooks 2.0 services. Research software; not a medical device.",
        version="2.0",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
            allow_private_network=True,  # a public page (the sandbox) calling loopback
        )
    url = questionnaire_url or _questionnaire_url()
    services = service_definitions(url)
    state = app.state
    state.settings = settings
    state.base_url = settings.base_urls()[0]
    state.questionnaire_url = url
    state.interview_url = None
    state.predict = predict or _default_predict(settings.model_uri)
    state.from_response = from_response or _default_from_response()
    state.auth = ClientAuth(load_issuers(settings.issuers), settings.base_urls())
    state.feedback = FeedbackStore(settings.feedback_db)
    state.http = http
    state.services = services

    @app.get("/ping", summary="liveness", response_class=PlainTextResponse)
    async def ping() -> str:
        return "ok\n"

    @app.get("/about", summary="not a medical device", response_class=PlainTextResponse)
    async def about() -> PlainTextResponse:
        return PlainTextResponse(_not_a_device_section(), media_type="text/markdown")

    app.include_router(_cds_router(services))
    for spec in EXTRA_ROUTERS:
        module, _, name = spec.partition(":")
        app.include_router(getattr(importlib.import_module(module), name))

    return app
