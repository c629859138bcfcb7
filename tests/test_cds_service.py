"""``make cds`` with a trained model answers as ``serve.predict`` does, over real HTTP.

The service is started the way a user starts it, ``make cds PORT=<free port>``, against the
session's temporary tracking store (the small champion of ``tests/conftest.py``), on 127.0.0.1
only, with its feedback in a temporary file. Polling ``/ping`` is bounded, and the server's
process group (make, python) is always stopped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

import serve
import vignettes
from serve.cds.cards import EXTENSION_KEY, tier_head
from tests.cds_support import (
    bundle,
    call,
    lumbar_mri,
    order_select,
    patient_view,
    schema_validator,
    serve_app,
)
from tests.test_mlflow_serve import free_port, stop, wait_for_ping
from vignettes.schema import FIELD_NAMES, RED_FLAG_FIELDS

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
STARTUP_SECONDS = 180
N_SAME = 300
DISCOVERY = schema_validator("cds-hooks-discovery")
RESPONSE = schema_validator("cds-hooks-response")
OUTCOME = schema_validator("operation-outcome")
TIER_WORD = {"emergency": "EMERGENCY", "urgent": "URGENT", "review": "REVIEW", "routine": "Routine"}
INDICATOR = {"emergency": "critical", "urgent": "warning", "review": "warning", "routine": "info"}


class Service(NamedTuple):
    url: str
    log: Path
    feedback: Path


def make_cds_command(port: int) -> list[str]:
    """``make cds PORT=<port>`` with this interpreter's environment as ``.venv``."""
    bin_dir = Path(sys.executable).parent
    command = ["make", "--no-print-directory", "-C", str(REPO), "-o", ".venv/.installed-stamp"]
    return [*command, "cds", f"PORT={port}", f"BIN={bin_dir}"]


@pytest.fixture(scope="module")
def service(
    trained: Any, tracking_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    port = free_port()
    folder = tmp_path_factory.mktemp("cds")
    log, feedback = folder / "make-cds.log", folder / "feedback.sqlite3"
    env = os.environ | {
        "MLFLOW_TRACKING_URI": tracking_uri,
        "SCIATICA_CDS_FEEDBACK_DB": str(feedback),
    }
    env.pop("SCIATICA_CDS_ISSUERS", None)
    with log.open("w") as out:
        process = subprocess.Popen(
            make_cds_command(port),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_ping(f"http://127.0.0.1:{port}/ping", process, log, STARTUP_SECONDS)
        yield Service(f"http://127.0.0.1:{port}", log, feedback)
    finally:
        stop(process)


@pytest.fixture(scope="module")
def predictor(trained: Any, tracking_uri: str) -> serve.Predictor:
    return serve.load()  # the same registered champion the service loaded


def _response(case: dict[str, Any], patient: str = "p1") -> dict[str, Any]:
    response = vignettes.to_questionnaire_response(case)
    response["subject"] = {"reference": f"Patient/{patient}"}
    return response


def _triage(service: Service, case: dict[str, Any], patient: str = "p1") -> dict[str, Any]:
    body = patient_view(patient, {"intake": bundle(_response(case, patient))})
    answer = call("POST", f"{service.url}/cds-services/sciatica-triage", body)
    assert answer.status == 200, answer.text
    RESPONSE.validate(answer.body)
    (card,) = answer.body["cards"]
    return card


def _assert_card_is_the_prediction(card: dict[str, Any], p: serve.Prediction) -> None:
    data = card["extension"][EXTENSION_KEY]
    # exactly serve.predict's tier and timeframe (none for routine)
    assert (data["urgency"], data["urgency_timeframe"]) == (p.urgency, p.urgency_timeframe)
    assert card["summary"].startswith(f"{tier_head(p)}: ")
    assert card["summary"].startswith(TIER_WORD[p.urgency])
    assert len(card["summary"]) < 140
    assert card["indicator"] == INDICATOR[p.urgency]
    assert data["cause"] == p.cause and data["probabilities"] == p.probabilities
    assert data["differential"] == p.differential
    assert data["advice_codes"] == p.advice_codes
    for text in p.advice:
        assert text in card["detail"]
    for cause, probability in p.top_causes(3):
        assert f"| {cause.replace('_', ' ')} | {probability:.1%} |" in card["detail"]
    assert data["model_version"] == p.model_version
    assert f"v{p.model_version}" in card["source"]["label"]


def test_it_says_it_is_open_on_loopback(service: Service) -> None:
    assert "OPEN: no trusted issuer configured" in service.log.read_text()


def test_discovery(service: Service) -> None:
    answer = call("GET", f"{service.url}/cds-services")
    assert answer.status == 200
    DISCOVERY.validate(answer.body)
    ids = {s["id"]: s["hook"] for s in answer.body["services"]}
    assert ids == {"sciatica-triage": "patient-view", "lumbar-mri-appropriateness": "order-select"}
    url = vignettes.questionnaire()["url"]
    for entry in answer.body["services"]:
        assert f"questionnaire={url}&_sort=-authored&_count=1" in entry["prefetch"]["intake"]


def _no_flags(**case: Any) -> dict[str, Any]:
    return {name: False for name in RED_FLAG_FIELDS} | case


def _golden(predictor: serve.Predictor) -> dict[str, dict[str, Any]]:
    """Per tier, the first case of a fixed generated sample that the model puts there."""
    cases: dict[str, dict[str, Any]] = {}
    frame = vignettes.generate(3_000, seed=5)[list(FIELD_NAMES)]
    for record in json.loads(frame.to_json(orient="records")):
        cases.setdefault(predictor.predict(record).urgency, record)
        if len(cases) == len(TIER_WORD):
            break
    return cases


def _items(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for item in items:
        yield item
        yield from _items(item.get("item", []))


def test_golden_cases_per_tier(service: Service, predictor: serve.Predictor) -> None:
    golden = _golden(predictor)
    assert set(golden) == set(TIER_WORD), set(golden)
    for tier, case in golden.items():
        p = serve.predict(_response(case))
        assert p.urgency == tier, (tier, case)
        card = _triage(service, case)
        _assert_card_is_the_prediction(card, p)
        assert ("overrideReasons" in card) == (tier != "routine")


def test_mri_appropriateness_on_golden_cases(service: Service) -> None:
    target = f"{service.url}/cds-services/lumbar-mri-appropriateness"
    flagged = {"age": 52, "bladder_bowel_dysfunction": True}
    answer = call(
        "POST", target, order_select([lumbar_mri()], prefetch={"intake": _response(flagged)})
    )
    assert answer.status == 200, answer.text
    RESPONSE.validate(answer.body)
    (card,) = answer.body["cards"]
    assert card["indicator"] == "info" and "red flags present" in card["summary"]
    quiet = _no_flags(
        age=30, duration_weeks=1.0, worse_sitting=True, conservative_care_failed=False
    )
    assert not serve.predict(quiet).mri_indicated
    body = order_select([lumbar_mri("mri-2")], prefetch={"intake": bundle(_response(quiet))})
    answer = call("POST", target, body)
    (card,) = answer.body["cards"]
    assert card["indicator"] == "warning"
    assert card["suggestions"][0]["actions"] == [
        {
            "type": "delete",
            "description": "Remove the draft lumbar MRI order",
            "resourceId": "ServiceRequest/mri-2",
        }
    ]


def test_same_answer_as_serve_predict_on_generated_cases(
    service: Service, predictor: serve.Predictor
) -> None:
    frame = vignettes.generate(N_SAME, seed=21)[list(FIELD_NAMES)]
    records = json.loads(frame.to_json(orient="records"))
    assert sum(v is None for r in records for v in r.values()) > N_SAME  # the cases have gaps
    tiers = set()
    for i, case in enumerate(records):
        response = _response(case, f"p{i}")
        card = _triage(service, case, f"p{i}")
        p = serve.predict(response)
        _assert_card_is_the_prediction(card, p)
        tiers.add(p.urgency)
    assert len(tiers) >= 3, tiers


def test_412_and_400(service: Service) -> None:
    target = f"{service.url}/cds-services/sciatica-triage"
    answer = call("POST", target, patient_view("p1"))
    assert answer.status == 412 and answer.body["resourceType"] == "OperationOutcome"
    OUTCOME.validate(answer.body)
    response = _response({"age": 50})
    (age,) = [i for i in _items(response["item"]) if i["linkId"] == "age"]
    age["answer"] = [{"valueString": "fifty"}]
    answer = call("POST", target, patient_view("p1", {"intake": response}))
    assert answer.status == 400, answer.text
    OUTCOME.validate(answer.body)
    assert "age" in answer.body["issue"][0]["diagnostics"]
    assert "Traceback" not in answer.text and str(REPO) not in answer.text
    body = patient_view("p1", {"intake": response})
    del body["context"]["userId"]
    answer = call("POST", target, body)
    assert answer.status == 400 and "context.userId" in answer.text


def test_fhir_server_path(service: Service) -> None:
    seen: list[str | None] = []
    stub = FastAPI()
    intake = bundle(_response({"age": 61, "fever": True}, "p7"))

    @stub.get("/fhir/QuestionnaireResponse")
    async def search(request: Request) -> JSONResponse:
        seen.append(request.headers.get("authorization"))
        return JSONResponse(intake)

    @stub.get("/fhir/Patient/p7")
    async def patient(request: Request) -> JSONResponse:
        return JSONResponse({"resourceType": "Patient", "id": "p7"})

    with serve_app(stub) as fhir:
        body = patient_view(
            "p7",
            fhirServer=f"{fhir}/fhir",
            fhirAuthorization={
                "access_token": "tok-7",
                "token_type": "Bearer",
                "expires_in": 60,
                "scope": "patient/*.read",
                "subject": "cds",
            },
        )
        answer = call("POST", f"{service.url}/cds-services/sciatica-triage", body)
    assert answer.status == 200, answer.text
    assert answer.body["cards"][0]["extension"][EXTENSION_KEY]["urgency"] == "urgent"
    assert seen == ["Bearer tok-7"]


def test_eight_concurrent_clients_answers_unchanged(service: Service) -> None:
    frame = vignettes.generate(64, seed=33)[list(FIELD_NAMES)]
    records = json.loads(frame.to_json(orient="records"))

    def answer(case: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
        card = _triage(service, case)
        return card["summary"], card["detail"], card["extension"]

    sequential = [answer(c) for c in records]
    with ThreadPoolExecutor(max_workers=8) as pool:
        concurrent = list(pool.map(answer, records))
    assert concurrent == sequential


def test_feedback_is_stored(service: Service) -> None:
    card = _triage(service, {"age": 40, "fever": True})
    item = {
        "card": card["uuid"],
        "outcome": "overridden",
        "overrideReason": {"reason": card["overrideReasons"][0], "userComment": "seen"},
        "outcomeTimestamp": "2026-01-01T10:00:00Z",
    }
    answer = call(
        "POST", f"{service.url}/cds-services/sciatica-triage/feedback", {"feedback": [item]}
    )
    assert answer.status == 200
    from serve.cds.feedback import FeedbackStore

    stored = FeedbackStore(service.feedback).items()
    assert [s["card"] for s in stored] == [card["uuid"]]
    assert uuid.UUID(stored[0]["card"])


def test_the_readme_curl_session_works_as_written(service: Service) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    readme = (REPO / "README.md").read_text()
    section = readme.split("### In an EHR: CDS Hooks", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.DOTALL)
    assert block is not None and "make cds" in block.group(1)
    curls = [line for line in block.group(1).splitlines() if line.startswith("curl ")]
    assert len(curls) == 2 and all("127.0.0.1:5002" in c for c in curls)
    port = service.url.rsplit(":", 1)[1]
    answers = []
    for command in curls:
        command = command.replace("127.0.0.1:5002", f"127.0.0.1:{port}")
        done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        answers.append(json.loads(done.stdout))
    discovery, response = answers
    DISCOVERY.validate(discovery)
    RESPONSE.validate(response)
    (card,) = response["cards"]
    example = re.search(r"```json\n(.*?)```", section, flags=re.DOTALL)
    assert example is not None
    shown = json.loads(example.group(1))
    assert set(shown["cards"][0]) <= set(card)  # the README shows a card of this shape
