"""The CDS Hooks service over real HTTP, with a stand-in model (no training: not slow).

The app is served by uvicorn on a free loopback port; the tests talk to it with httpx, and a
small FHIR server stub, also on loopback, answers the service's reads. ``tests/test_cds_service.py``
runs the same service as ``make cds`` does, with a trained model.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from serve.cds import CdsSettings, create_app
from serve.cds.cards import tier_head
from serve.cds.feedback import FeedbackStore
from tests.cds_support import (
    bundle,
    call,
    lumbar_mri,
    order_select,
    patient_view,
    schema_validator,
    serve_app,
    simple_from_response,
    simple_response,
    stand_in_predict,
)
from tests.fhir_bindings import assert_required_codes

QUESTIONNAIRE = "http://sciatica-triage.example.org/fhir/Questionnaire/sciatica-intake"
DISCOVERY = schema_validator("cds-hooks-discovery")
RESPONSE = schema_validator("cds-hooks-response")
OUTCOME = schema_validator("operation-outcome")
SECRET = "a shared key of the test EHR, long enough for HS256"


def _app(tmp_path: Path, **settings: Any) -> FastAPI:
    config = CdsSettings(**({"feedback_db": tmp_path / "feedback.sqlite3"} | settings))
    return create_app(
        config,
        predict=stand_in_predict,
        from_response=simple_from_response,
        questionnaire_url=QUESTIONNAIRE,
    )


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # a 0.5 s limit on reads from a client's FHIR server (a local stub answers in milliseconds)
    with serve_app(_app(tmp_path_factory.mktemp("cds"), fhir_timeout=0.5)) as url:
        yield url


def _intake(patient: str = "p1", **case: Any) -> dict[str, Any]:
    return {"intake": bundle(simple_response({"age": 45} | case, patient=patient))}


def _assert_outcome(answer: Any, status: int, *names: str) -> str:
    assert answer.status == status, answer.text
    assert answer.headers["content-type"].startswith("application/fhir+json")
    OUTCOME.validate(answer.body)
    assert_required_codes(answer.body)
    text = json.dumps(answer.body)
    for name in names:
        assert name in text, (name, text)
    assert "Traceback" not in text and 'File "' not in text and "/tests/" not in text
    return text


# --------------------------------------------------------------------------------------------
# Discovery
# --------------------------------------------------------------------------------------------


def test_discovery_lists_both_services_with_prefetch(service: str) -> None:
    answer = call("GET", f"{service}/cds-services")
    assert answer.status == 200
    DISCOVERY.validate(answer.body)
    services = {s["id"]: s for s in answer.body["services"]}
    assert services["sciatica-triage"]["hook"] == "patient-view"
    assert services["lumbar-mri-appropriateness"]["hook"] == "order-select"
    for entry in services.values():
        assert entry["prefetch"]["patient"] == "Patient/{{context.patientId}}"
        assert entry["prefetch"]["intake"] == (
            "QuestionnaireResponse?subject={{context.patientId}}"
            f"&questionnaire={QUESTIONNAIRE}&_sort=-authored&_count=1"
        )


# --------------------------------------------------------------------------------------------
# patient-view: one card per tier
# --------------------------------------------------------------------------------------------

TIER_CASES = {
    "emergency": ({"saddle_numbness": True}, "critical", "EMERGENCY"),
    "urgent": ({"fever": True}, "warning", "URGENT"),
    "review": ({"age": 93}, "warning", "REVIEW"),
    "routine": ({}, "info", "Routine"),
}


@pytest.mark.parametrize("tier", list(TIER_CASES))
def test_triage_card_per_tier(service: str, tier: str) -> None:
    case, indicator, word = TIER_CASES[tier]
    lead = f"{tier_head(stand_in_predict({'age': 45} | case))}: "
    assert lead.startswith(word)
    answer = call(
        "POST", f"{service}/cds-services/sciatica-triage", patient_view("p1", _intake(**case))
    )
    assert answer.status == 200, answer.text
    RESPONSE.validate(answer.body)
    (card,) = answer.body["cards"]
    assert card["indicator"] == indicator
    assert card["summary"].startswith(lead) and len(card["summary"]) < 140
    uuid.UUID(card["uuid"])
    assert ("overrideReasons" in card) == (indicator != "info")
    assert "not a medical device" in card["detail"]
    assert card["source"]["url"].endswith("/about#research-software-not-a-medical-device")
    assert "sciatica-triage v7" in card["source"]["label"]


def test_routine_card_suggests_asking_the_unanswered_red_flags(service: str) -> None:
    answer = call("POST", f"{service}/cds-services/sciatica-triage", patient_view("p1", _intake()))
    (card,) = answer.body["cards"]
    (suggestion,) = card["suggestions"]
    task = suggestion["actions"][0]["resource"]
    assert task["resourceType"] == "Task" and task["for"] == {"reference": "Patient/p1"}
    assert_required_codes(task)
    asked = [i["valueString"] for i in task["input"] if i["type"]["text"] == "linkId"]
    assert asked == ["fever", "cancer_history"]
    assert "Fever together with the back pain?" in card["detail"]


def test_mri_indicated_suggests_an_order(service: str) -> None:
    intake = _intake("p9", duration_weeks=10.0, conservative_care_failed=True)
    answer = call("POST", f"{service}/cds-services/sciatica-triage", patient_view("p9", intake))
    RESPONSE.validate(answer.body)
    (card,) = answer.body["cards"]
    orders = [
        a["resource"]
        for s in card["suggestions"]
        for a in s["actions"]
        if a["resource"]["resourceType"] == "ServiceRequest"
    ]
    (order,) = orders
    assert_required_codes(order)
    assert order["subject"] == {"reference": "Patient/p9"}
    assert order["code"]["coding"][0]["code"] == "72148"


def test_no_intake_on_file_is_said_not_guessed(service: str) -> None:
    answer = call(
        "POST", f"{service}/cds-services/sciatica-triage", patient_view("p1", {"intake": bundle()})
    )
    assert answer.status == 200
    RESPONSE.validate(answer.body)
    assert answer.body["cards"][0]["summary"].startswith("No sciatica intake on file")


def test_about_page_is_the_readme_section(service: str) -> None:
    answer = call("GET", f"{service}/about")
    assert answer.status == 200 and "not a medical device" in answer.text


# --------------------------------------------------------------------------------------------
# order-select: lumbar MRI appropriateness
# --------------------------------------------------------------------------------------------


def test_mri_order_without_a_criterion_is_a_warning_with_removal(service: str) -> None:
    body = order_select([lumbar_mri("mri-7")], prefetch=_intake())
    answer = call("POST", f"{service}/cds-services/lumbar-mri-appropriateness", body)
    assert answer.status == 200, answer.text
    RESPONSE.validate(answer.body)
    (card,) = answer.body["cards"]
    assert card["indicator"] == "warning" and "overrideReasons" in card
    (action,) = card["suggestions"][0]["actions"]
    assert action == {
        "type": "delete",
        "description": "Remove the draft lumbar MRI order",
        "resourceId": "ServiceRequest/mri-7",
    }
    assert "NICE NG59" in card["detail"]


def test_mri_order_with_a_criterion_names_it(service: str) -> None:
    intake = _intake(saddle_numbness=True)
    answer = call(
        "POST",
        f"{service}/cds-services/lumbar-mri-appropriateness",
        order_select([lumbar_mri()], prefetch=intake),
    )
    (card,) = answer.body["cards"]
    assert card["indicator"] == "info"
    assert "red flags present" in card["summary"]
    assert "suggestions" not in card


def test_other_orders_get_no_card_and_need_no_prefetch(service: str) -> None:
    ct = lumbar_mri() | {"code": {"text": "CT lumbar spine"}}
    answer = call("POST", f"{service}/cds-services/lumbar-mri-appropriateness", order_select([ct]))
    assert answer.status == 200 and answer.body == {"cards": []}


# --------------------------------------------------------------------------------------------
# 412 and 400
# --------------------------------------------------------------------------------------------


def test_missing_prefetch_without_fhir_server_is_412(service: str) -> None:
    answer = call("POST", f"{service}/cds-services/sciatica-triage", patient_view("p1"))
    _assert_outcome(answer, 412, "prefetch.intake", "fhirServer")
    answer = call(
        "POST", f"{service}/cds-services/sciatica-triage", patient_view("p1", {"intake": None})
    )
    _assert_outcome(answer, 412, "prefetch.intake")


BAD_REQUESTS = {
    "no hookInstance": (lambda b: b.pop("hookInstance"), "hookInstance"),
    "hookInstance not a uuid": (lambda b: b.update(hookInstance="nope"), "hookInstance"),
    "wrong hook": (lambda b: b.update(hook="order-select"), "hook"),
    "no patientId": (lambda b: b["context"].pop("patientId"), "context.patientId"),
    "no userId": (lambda b: b["context"].pop("userId"), "context.userId"),
    "context not an object": (lambda b: b.update(context=[1]), "context"),
    "token without server": (
        lambda b: b.update(
            fhirAuthorization={
                "access_token": "t",
                "token_type": "Bearer",
                "expires_in": 300,
                "scope": "patient/*.read",
                "subject": "cds",
            }
        ),
        "fhirServer",
    ),
    "bad fhirServer": (lambda b: b.update(fhirServer="file:///etc"), "fhirServer"),
    "prefetch of another patient": (
        lambda b: b.update(prefetch={"intake": simple_response({"age": 50}, patient="p2")}),
        "prefetch.intake.subject",
    ),
    "prefetch of another type": (
        lambda b: b.update(prefetch={"intake": {"resourceType": "Observation"}}),
        "prefetch.intake.resourceType",
    ),
}


@pytest.mark.parametrize("name", list(BAD_REQUESTS))
def test_bad_request_is_400_naming_the_field(service: str, name: str) -> None:
    change, field = BAD_REQUESTS[name]
    body = patient_view("p1", _intake())
    change(body)
    answer = call("POST", f"{service}/cds-services/sciatica-triage", body)
    _assert_outcome(answer, 400, field)


def test_bad_answer_is_400_naming_the_link_id(service: str) -> None:
    response = simple_response({"age": 50})
    response["item"].append({"linkId": "shoe_size", "answer": [{"valueInteger": 44}]})
    body = patient_view("p1", {"intake": bundle(response)})
    answer = call("POST", f"{service}/cds-services/sciatica-triage", body)
    _assert_outcome(answer, 400, "linkId=shoe_size")


def test_a_key_given_twice_is_refused_naming_it(service: str) -> None:
    """A JSON object with one key twice is never resolved to one of its values (the second
    fever answer would otherwise lose a reported red flag)."""
    body = json.dumps(patient_view("p1", _intake(fever=True)))
    doubled = body.replace('"valueBoolean": true', '"valueBoolean": true, "valueBoolean": false')
    assert doubled != body
    answer = call("POST", f"{service}/cds-services/sciatica-triage", raw=doubled.encode())
    _assert_outcome(answer, 400, "valueBoolean: appears more than once")


def test_an_ehr_item_without_an_answer_is_asked(tmp_path: Path) -> None:
    """A red-flag item the EHR holds without an answer reaches the model as asked (a "don't
    know", which keeps the tier at least review); an item left out does not."""
    seen: list[Any] = []

    def recording(case: dict[str, Any], asked: Any = None) -> Any:
        seen.append(list(asked or ()))
        return stand_in_predict(case, asked)

    from vignettes import from_questionnaire_response, to_questionnaire_response

    app = create_app(
        CdsSettings(feedback_db=tmp_path / "f.sqlite3"),
        predict=recording,
        from_response=from_questionnaire_response,
        questionnaire_url=QUESTIONNAIRE,
    )
    response = to_questionnaire_response({"age": 50, "fever": False}, subject="Patient/p1")
    response["item"].append({"linkId": "saddle_numbness"})
    with serve_app(app) as url:
        answer = call(
            "POST",
            f"{url}/cds-services/sciatica-triage",
            patient_view("p1", {"intake": bundle(response)}),
        )
    assert answer.status == 200, answer.text
    assert seen == [["age", "saddle_numbness", "fever"]]


def test_invalid_json_and_unknown_routes(service: str) -> None:
    answer = call("POST", f"{service}/cds-services/sciatica-triage", raw=b"{not json")
    _assert_outcome(answer, 400, "not valid JSON")
    _assert_outcome(call("GET", f"{service}/cds-services/nothing-here"), 404)
    _assert_outcome(call("POST", f"{service}/cds-services/nothing-here/feedback", {}), 404)


# --------------------------------------------------------------------------------------------
# fhirServer: the service fetches what the client did not prefetch
# --------------------------------------------------------------------------------------------


def _fhir_stub(responses: list[dict[str, Any]], seen: list[dict[str, Any]]) -> FastAPI:
    stub = FastAPI()

    @stub.get("/fhir/{path:path}")
    async def read(path: str, request: Request) -> JSONResponse:
        seen.append(
            {
                "path": path,
                "query": dict(request.query_params),
                "authorization": request.headers.get("authorization"),
            }
        )
        if request.headers.get("authorization") != "Bearer token-123":
            return JSONResponse({"resourceType": "OperationOutcome"}, status_code=401)
        if request.query_params.get("subject") == "slow":
            # past the service's 0.5 s limit; uvicorn lets it finish when the stub stops, so no
            # longer than that
            await asyncio.sleep(0.8)
        if path == "Patient/p5":
            return JSONResponse({"resourceType": "Patient", "id": "p5"})
        return JSONResponse(responses[0])

    return stub


def _authorization(token: str = "token-123") -> dict[str, Any]:
    return {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/QuestionnaireResponse.read patient/Patient.read",
        "subject": "cds-service",
    }


def test_missing_prefetch_is_fetched_from_the_fhir_server(service: str) -> None:
    seen: list[dict[str, Any]] = []
    intake = bundle(simple_response({"age": 45, "fever": True}, patient="p5"))
    with serve_app(_fhir_stub([intake], seen)) as fhir:
        body = patient_view("p5", fhirServer=f"{fhir}/fhir", fhirAuthorization=_authorization())
        answer = call("POST", f"{service}/cds-services/sciatica-triage", body)
        assert answer.status == 200, answer.text
        assert answer.body["cards"][0]["summary"].startswith("URGENT")
        reads = {r["path"]: r for r in seen}
        search = reads["QuestionnaireResponse"]
        assert search["query"] == {
            "subject": "p5",
            "questionnaire": QUESTIONNAIRE,
            "_sort": "-authored",
            "_count": "1",
        }
        assert {r["authorization"] for r in seen} == {"Bearer token-123"}

        # a token the server refuses, a server that is too slow, one that is not there: 412
        body["fhirAuthorization"] = _authorization("wrong")
        answer = call("POST", f"{service}/cds-services/sciatica-triage", body)
        _assert_outcome(answer, 412, "prefetch 'intake'", "HTTP 401")
        body["fhirAuthorization"] = _authorization()
        slow = body | {"context": body["context"] | {"patientId": "slow"}}
        answer = call("POST", f"{service}/cds-services/sciatica-triage", slow)
        _assert_outcome(answer, 412, "did not answer within 0.5 s")
    answer = call("POST", f"{service}/cds-services/sciatica-triage", body)  # stub stopped
    _assert_outcome(answer, 412, "could not be reached")


def test_prefetch_given_is_used_without_reading_the_server(service: str) -> None:
    seen: list[dict[str, Any]] = []
    with serve_app(_fhir_stub([bundle()], seen)) as fhir:
        body = patient_view("p1", _intake(fever=True), fhirServer=f"{fhir}/fhir")
        body["prefetch"]["patient"] = {"resourceType": "Patient", "id": "p1"}
        answer = call("POST", f"{service}/cds-services/sciatica-triage", body)
    assert answer.status == 200 and answer.body["cards"][0]["summary"].startswith("URGENT")
    assert seen == []


# --------------------------------------------------------------------------------------------
# Feedback
# --------------------------------------------------------------------------------------------


def _feedback(card: str, outcome: str = "overridden") -> dict[str, Any]:
    item: dict[str, Any] = {
        "card": card,
        "outcome": outcome,
        "outcomeTimestamp": "2026-01-01T10:00:00Z",
    }
    if outcome == "overridden":
        item["overrideReason"] = {
            "reason": {"system": "urn:x", "code": "clinical-judgement"},
            "userComment": "seen today",
        }
    else:
        item["acceptedSuggestions"] = [{"id": str(uuid.uuid4())}]
    return {"feedback": [item]}


def test_feedback_is_never_lost_under_concurrent_posts(tmp_path: Path) -> None:
    db = tmp_path / "fb.sqlite3"
    app = _app(tmp_path, feedback_db=db)
    cards = [str(uuid.uuid4()) for _ in range(160)]
    with serve_app(app) as url:

        def post(i: int) -> int:
            outcome = "accepted" if i % 2 else "overridden"
            target = f"{url}/cds-services/sciatica-triage/feedback"
            return call("POST", target, _feedback(cards[i], outcome)).status

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(post, range(len(cards))))
    assert statuses == [200] * len(cards)
    stored = FeedbackStore(db).items()
    assert sorted(s["card"] for s in stored) == sorted(cards)
    assert {s["service"] for s in stored} == {"sciatica-triage"}
    with sqlite3.connect(db) as connection, pytest.raises(sqlite3.DatabaseError, match="append"):
        connection.execute("DELETE FROM feedback")


def test_bad_feedback_is_400_naming_the_field(service: str) -> None:
    body = _feedback(str(uuid.uuid4()))
    body["feedback"][0]["outcome"] = "ignored"
    answer = call("POST", f"{service}/cds-services/sciatica-triage/feedback", body)
    _assert_outcome(answer, 400, "feedback[0].outcome")
    body = _feedback("not-a-uuid")
    answer = call("POST", f"{service}/cds-services/sciatica-triage/feedback", body)
    _assert_outcome(answer, 400, "feedback[0].card")
    body = _feedback(str(uuid.uuid4()), "accepted")
    del body["feedback"][0]["acceptedSuggestions"]
    answer = call("POST", f"{service}/cds-services/sciatica-triage/feedback", body)
    _assert_outcome(answer, 400, "feedback[0]", "acceptedSuggestions is required")


# --------------------------------------------------------------------------------------------
# Client authentication (JWT from trusted issuers)
# --------------------------------------------------------------------------------------------


def _es384_issuer() -> tuple[Any, dict[str, Any]]:
    key = ec.generate_private_key(ec.SECP384R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    return key, {"keys": [jwk | {"kid": "k1", "alg": "ES384", "use": "sig"}]}


def _token(key: Any, algorithm: str, aud: str, **claims: Any) -> str:
    now = int(time.time())
    payload = {
        "iss": "https://ehr.test",
        "aud": aud,
        "exp": now + 300,
        "iat": now,
        "jti": str(uuid.uuid4()),
    } | claims
    payload = {k: v for k, v in payload.items() if v is not None}
    headers = {"kid": "k1"} if algorithm == "ES384" else None
    return jwt.encode(payload, key, algorithm=algorithm, headers=headers)


def test_jwt_client_authentication(tmp_path: Path) -> None:
    key, jwks = _es384_issuer()
    issuers = {"https://ehr.test": {"jwks": jwks}, "https://other.test": {"secret": SECRET}}
    app = _app(tmp_path, issuers=json.dumps(issuers), public_url="https://cds.test")
    aud = "https://cds.test/cds-services/sciatica-triage"
    with serve_app(app) as url:
        target = f"{url}/cds-services/sciatica-triage"
        body = patient_view("p1", _intake())

        def with_token(token: str | None) -> Any:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return call("POST", target, body, headers=headers)

        assert call("GET", f"{url}/ping").status == 200  # liveness stays open
        _assert_outcome(call("GET", f"{url}/cds-services"), 401, "Bearer")
        _assert_outcome(with_token(None), 401, "signed JWT is required")
        good = _token(key, "ES384", aud)
        assert with_token(good).status == 200
        _assert_outcome(with_token(good), 401, "replayed")
        hs = _token(SECRET, "HS256", aud, iss="https://other.test")
        assert with_token(hs).status == 200
        _assert_outcome(with_token(_token(key, "ES384", aud + "x")), 401, "aud")
        _assert_outcome(with_token(_token(key, "ES384", aud, exp=int(time.time()) - 120)), 401)
        _assert_outcome(with_token(_token(key, "ES384", aud, jti=None)), 401, "jti")
        _assert_outcome(with_token(_token(key, "ES384", aud, iss="https://evil.test")), 401)
        forged = _token(ec.generate_private_key(ec.SECP384R1()), "ES384", aud)
        _assert_outcome(with_token(forged), 401, "invalid token")
        discovery = _token(key, "ES384", "https://cds.test/cds-services")
        answer = call(
            "GET", f"{url}/cds-services", headers={"Authorization": f"Bearer {discovery}"}
        )
        assert answer.status == 200
        feedback_aud = _token(key, "ES384", aud)
        answer = call(
            "POST",
            f"{target}/feedback",
            _feedback(str(uuid.uuid4())),
            headers={"Authorization": f"Bearer {feedback_aud}"},
        )
        assert answer.status == 200


def test_bad_issuer_setting_names_the_issuer(tmp_path: Path) -> None:
    from serve.cds.auth import ConfigError

    with pytest.raises(ConfigError, match=r"https://ehr\.test"):
        _app(tmp_path, issuers=json.dumps({"https://ehr.test": {}}))


# --------------------------------------------------------------------------------------------
# Concurrency: answers do not depend on what else is in flight
# --------------------------------------------------------------------------------------------


def test_eight_concurrent_clients_get_the_sequential_answers(service: str) -> None:
    cases = [{"fever": i % 3 == 0, "age": 30 + i, "saddle_numbness": i % 7 == 0} for i in range(48)]
    target = f"{service}/cds-services/sciatica-triage"

    def summary(case: dict[str, Any]) -> tuple[str, str]:
        card = call("POST", target, patient_view("p1", _intake(**case))).body["cards"][0]
        return card["summary"], card["indicator"]

    sequential = [summary(c) for c in cases]
    with ThreadPoolExecutor(max_workers=8) as pool:
        concurrent = list(pool.map(summary, cases))
    assert concurrent == sequential


def test_the_sandbox_may_call_from_the_browser(service: str) -> None:
    preflight = {
        "Origin": "https://sandbox.cds-hooks.org",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
        "Access-Control-Request-Private-Network": "true",
    }
    answer = call("OPTIONS", f"{service}/cds-services/sciatica-triage", headers=preflight)
    assert answer.status == 200
    assert answer.headers["access-control-allow-origin"] == "https://sandbox.cds-hooks.org"
    assert answer.headers["access-control-allow-private-network"] == "true"
    other = preflight | {"Origin": "https://elsewhere.example"}
    answer = call("OPTIONS", f"{service}/cds-services/sciatica-triage", headers=other)
    assert "access-control-allow-origin" not in answer.headers


def test_an_intake_without_age_takes_it_from_the_patient(service: str) -> None:
    response = simple_response({"fever": True})  # no age
    target = f"{service}/cds-services/sciatica-triage"
    answer = call("POST", target, patient_view("p1", {"intake": response}))
    _assert_outcome(answer, 400, "age")
    patient = {"resourceType": "Patient", "id": "p1", "birthDate": "1936-03-02"}
    answer = call("POST", target, patient_view("p1", {"intake": response, "patient": patient}))
    assert answer.status == 200, answer.text
    # 89 on 2026-01-01 (the response's authored date): not yet 90, so the stand-in says urgent
    assert answer.body["cards"][0]["extension"]["triage"]["urgency"] == "urgent"
    older = patient | {"birthDate": "1935-12-31"}
    answer = call(
        "POST", target, patient_view("p1", {"intake": simple_response({}), "patient": older})
    )
    assert answer.body["cards"][0]["extension"]["triage"]["urgency"] == "review"


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_cds_listens_on_5002_unless_port_is_given() -> None:
    def dry_run(*assignments: str) -> str:
        command = ["make", "-n", "-o", ".venv/.installed-stamp", "cds", *assignments]
        root = Path(__file__).resolve().parents[1]
        return subprocess.run(command, cwd=root, capture_output=True, text=True, check=True).stdout

    assert "-m serve.cds --port 5002" in dry_run()
    assert "-m serve.cds --port 6001" in dry_run("PORT=6001")
