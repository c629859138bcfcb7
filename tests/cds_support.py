"""Helpers for the CDS Hooks tests: a server on a free loopback port, requests, schemas.

:func:`serve_app` runs a FastAPI app under uvicorn in a thread on a port the OS picks, for the
tests that check the service's HTTP behaviour with a stand-in model; ``tests/test_cds_service.py``
starts the real thing with ``make cds``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import jsonschema
import uvicorn

from serve.prediction import Prediction
from vignettes.schema import CAUSES, FIELD_NAMES

HOST = "127.0.0.1"
SCHEMAS = Path(__file__).resolve().parent / "schemas"
_CLIENT = httpx.Client(trust_env=False)


class Answer(NamedTuple):
    status: int
    body: Any
    text: str
    headers: dict[str, str]


def schema_validator(name: str) -> jsonschema.Draft202012Validator:
    """A validator for ``tests/schemas/<name>.schema.json`` (formats such as uuid checked)."""
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def free_socket() -> socket.socket:
    """A TCP socket bound to a port the OS picked on 127.0.0.1.

    Made with ``IPPROTO_TCP`` rather than protocol 0: asyncio sets ``TCP_NODELAY`` only on
    connections accepted from a socket that says it is TCP. Without it, a response sent as
    headers then body waited for the client's delayed ACK: 45 ms for every request on a
    kept-alive connection (measured: 1.7 ms with it), as a server started with ``host`` and
    ``port`` (``make cds``) never does.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    return sock


@contextlib.contextmanager
def serve_app(app: Any) -> Iterator[str]:
    """Serve ``app`` on a free loopback port in a thread; yield its base URL; always stop."""
    sock = free_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://{HOST}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def call(
    method: str,
    url: str,
    payload: Any = None,
    *,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 60,
) -> Answer:
    """One HTTP request with httpx; the status, decoded JSON body (or None), text, headers.

    One client serves every call (thread-safe; a new client per call would build a TLS
    context each time)."""
    content = raw if raw is not None else (None if payload is None else json.dumps(payload))
    sent = {"Content-Type": "application/json", **(headers or {})}
    response = _CLIENT.request(method, url, content=content, headers=sent, timeout=timeout)
    try:
        body = response.json()
    except ValueError:
        body = None
    return Answer(response.status_code, body, response.text, dict(response.headers))


def patient_view(patient: str = "p1", prefetch: Any = None, **extra: Any) -> dict[str, Any]:
    """A ``patient-view`` request; ``prefetch`` None leaves the member out."""
    body: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/dr1", "patientId": patient},
    }
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body | extra


def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    """A searchset Bundle of ``resources``."""
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"resource": r} for r in resources],
    }


def lumbar_mri(order_id: str = "mri-1", patient: str = "p1") -> dict[str, Any]:
    """A draft ServiceRequest for a lumbar spine MRI (CPT 72148)."""
    return {
        "resourceType": "ServiceRequest",
        "id": order_id,
        "status": "draft",
        "intent": "order",
        "code": {
            "coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "72148"}],
            "text": "MRI lumbar spine without contrast",
        },
        "subject": {"reference": f"Patient/{patient}"},
    }


def order_select(
    orders: list[dict[str, Any]], patient: str = "p1", prefetch: Any = None
) -> dict[str, Any]:
    """An ``order-select`` request for draft ``orders`` (all selected)."""
    body: dict[str, Any] = {
        "hook": "order-select",
        "hookInstance": str(uuid.uuid4()),
        "context": {
            "userId": "Practitioner/dr1",
            "patientId": patient,
            "selections": [f"{o['resourceType']}/{o.get('id', 'x')}" for o in orders] or ["x/x"],
            "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": o} for o in orders]},
        },
    }
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body


_DEFAULTS: dict[str, Any] = {
    "cause": "disc_herniation",
    "probabilities": {c: (0.64 if c == "disc_herniation" else 0.06) for c in CAUSES},
    "differential": ["disc_herniation", "foraminal_stenosis"],
    "differential_coverage": 0.95,
    "urgency": "routine",
    "urgency_action": "Conservative care first.",
    "urgency_timeframe": None,  # routine: no timeframe, as the model says
    "red_flag_screen": "complete",
    "red_flag_probability": 0.002,
    "red_flag_threshold": 0.0099,
    "red_flag_cost_ratio": 100.0,
    "attributions": {f: 0.0 for f in FIELD_NAMES} | {"worse_sitting": 0.8, "age": -0.3},
    "attribution_base": -1.0,
    "red_flag_attributions": {f: 0.0 for f in FIELD_NAMES},
    "red_flag_attribution_base": -5.0,
    "attribution_units": "logit",
    "pain_mechanism": "neurological",
    "next_step": "conservative_care",
    "advice_codes": ["keep_active"],
    "advice": ["Keep active."],
    "model_name": "sciatica-triage",
    "model_version": "7",
    "disclaimer": "Research software trained on synthetic data; not a medical device.",
    "answers": {f: None for f in FIELD_NAMES} | {"age": 40, "worse_sitting": True},
}


def make_prediction(**overrides: Any) -> Prediction:
    """A :class:`serve.Prediction` with plausible values, for card tests without a model.

    Fields not named here get an empty value of their type, so the helper keeps working when
    ``Prediction`` gains outputs.
    """
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Prediction):
        if f.name in overrides:
            values[f.name] = overrides[f.name]
        elif f.name in _DEFAULTS:
            values[f.name] = _DEFAULTS[f.name]
        else:
            kind = str(f.type)
            values[f.name] = (
                []
                if kind.startswith("list")
                else {}
                if kind.startswith("dict")
                else False
                if kind == "bool"
                else 0.0
                if kind == "float"
                else None
                if "None" in kind
                else ""
            )
    values["red_flag"] = overrides.get("red_flag", values["urgency"] != "routine")
    return Prediction(**values)


TIERS = {
    "emergency": {
        "urgency": "emergency",
        "urgency_timeframe": "now",
        "red_flags_fired": ["saddle_numbness"],
        "next_step": "emergency_assessment",
        "mri_indicated": True,
        "mri_reasons": [{"code": "red_flags_present", "text": "Red flags are present"}],
    },
    "urgent": {
        "urgency": "urgent",
        "urgency_timeframe": "within days",
        "red_flags_fired": ["fever"],
        "next_step": "urgent_evaluation",
        "mri_indicated": True,
        "mri_reasons": [{"code": "red_flags_present", "text": "Red flags are present"}],
    },
    "review": {
        "urgency": "review",
        "urgency_timeframe": "within 2 weeks",
        "red_flag_probability": 0.04,
        "red_flag_model": True,
        "next_step": "clinician_review",
    },
    "routine": {
        "urgency": "routine",
        "red_flag_questions_unanswered": ["fever", "cancer_history"],
        "red_flag_screen": "partial",
    },
}
"""Overrides that make a stand-in prediction of each tier."""


# --------------------------------------------------------------------------------------------
# A stand-in model: a case's tier from its answers, without training anything
# --------------------------------------------------------------------------------------------


def simple_response(case: dict[str, Any], patient: str = "p1") -> dict[str, Any]:
    """A flat QuestionnaireResponse of ``case`` (one item per answered field), for stand-ins."""

    def answer(value: Any) -> dict[str, Any]:
        if isinstance(value, bool):
            return {"valueBoolean": value}
        if isinstance(value, int):
            return {"valueInteger": value}
        if isinstance(value, float):
            return {"valueDecimal": value}
        return {"valueCoding": {"code": value}}

    return {
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
        "subject": {"reference": f"Patient/{patient}"},
        "authored": "2026-01-01T10:00:00Z",
        "item": [{"linkId": k, "answer": [answer(v)]} for k, v in case.items() if v is not None],
    }


def simple_from_response(response: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`simple_response`; an unknown linkId is an ``IntakeError``."""
    from vignettes.intake import IntakeError

    case: dict[str, Any] = {}
    for item in response.get("item", []):
        link = item["linkId"]
        if link not in FIELD_NAMES:
            raise IntakeError(link, "a field of the intake", f"{link}: unknown linkId")
        (value,) = item["answer"][0].values()
        case[link] = value["code"] if isinstance(value, dict) else value
    return case


def stand_in_predict(case: dict[str, Any], asked: Any = None) -> Prediction:
    """A prediction whose tier follows the answers: saddle numbness -> emergency, fever ->
    urgent, age >= 90 -> review, else routine; persistent failed care makes MRI indicated."""
    from model.intake import validate_case

    answers = validate_case(case)
    if answers.get("saddle_numbness"):
        tier = "emergency"
    elif answers.get("fever"):
        tier = "urgent"
    elif answers["age"] >= 90:
        tier = "review"
    else:
        tier = "routine"
    values = dict(TIERS[tier])
    if tier == "routine" and answers.get("conservative_care_failed"):
        values |= {
            "mri_indicated": True,
            "next_step": "imaging_and_specialist_review",
            "mri_reasons": [
                {
                    "code": "persistent_beyond_6_8_weeks",
                    "text": "Pain persists beyond 6-8 weeks despite conservative care",
                }
            ],
        }
    return make_prediction(answers=answers, **values)
