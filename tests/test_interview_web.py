"""The interview over FHIR SDC (``POST /Questionnaire/$next-question``) and in a browser
(``GET /interview``), on the CDS Hooks app, with a predictor made of the exact posterior."""

from __future__ import annotations

import html
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

import vignettes
from model.intake import IntakeError
from serve.cds import CdsSettings, create_app
from serve.interview_web import EXTENSIONS
from tests.fhir_bindings import assert_required_codes
from tests.test_questions import DISC_PATIENT, NO_RED_FLAGS, BayesPredictor
from vignettes.schema import RED_FLAG_FIELDS

QUESTIONNAIRE = "http://sciatica-triage.example.org/fhir/Questionnaire/sciatica-intake"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    settings = CdsSettings(feedback_db=tmp_path_factory.mktemp("cds") / "feedback.sqlite3")
    app = create_app(
        settings,
        predict=BayesPredictor().predict,
        from_response=lambda qr: {},
        questionnaire_url=QUESTIONNAIRE,
    )
    return TestClient(app)


def _extension(resource: dict[str, Any], name: str) -> list[Any]:
    return [
        next(v for k, v in e.items() if k.startswith("value"))
        for e in resource.get("extension", [])
        if e["url"] == EXTENSIONS[name]
    ]


def _answer(item: dict[str, Any], value: Any) -> dict[str, Any]:
    if item["type"] == "boolean":
        return {"valueBoolean": value}
    if item["type"] == "choice":
        return {"valueCoding": {"code": value}}
    return {"valueDecimal": value}


def _start(age: int) -> dict[str, Any]:
    return {
        "resourceType": "QuestionnaireResponse",
        "status": "in-progress",
        "contained": [{"resourceType": "Questionnaire", "id": "q", "status": "active"}],
        "item": [{"linkId": "age", "answer": [{"valueInteger": age}]}],
    }


def test_next_question_adds_one_item_until_completed(client: TestClient) -> None:
    qr = _start(38)
    for _ in range(40):
        answer = client.post("/Questionnaire/$next-question", json=qr)
        assert answer.status_code == 200, answer.text
        qr = answer.json()
        assert _extension(qr, "tier")[0] in ("routine", "review", "urgent", "emergency")
        assert "review threshold" in _extension(qr, "tier_text")[0]
        if qr["status"] == "completed":
            break
        new = qr["contained"][0]["item"][-1]
        assert _extension(new, "rationale"), new
        value = DISC_PATIENT[new["linkId"]]
        qr["item"].append({"linkId": new["linkId"], "answer": [_answer(new, value)]})
    assert qr["status"] == "completed"
    asked = [i["linkId"] for i in qr["contained"][0]["item"]]
    assert set(RED_FLAG_FIELDS) <= set(asked)
    assert len(asked) == len(set(asked))
    assert _extension(qr, "stop_reason") and _extension(qr, "advice")
    expected = BayesPredictor().predict(
        {i["linkId"]: DISC_PATIENT[i["linkId"]] for i in qr["item"]}
    )
    assert _extension(qr, "tier")[0] == expected.urgency
    assert _extension(qr, "advice") == expected.advice


def test_a_completed_interview_reads_as_an_intake_with_the_intake_s_codes(
    client: TestClient,
) -> None:
    """A client that answers with the offered codings ends with a response that the intake's
    reader (and so ``serve.predict`` and the CDS service) takes: the same linkIds, the intake
    Questionnaire's answer codes, a contained Questionnaire derived from it; a "don't know"
    stays an item without an answer."""
    intake = {i["linkId"]: i for g in vignettes.questionnaire()["item"] for i in g["item"]}
    qr, given = _start(38), {"age": 38}
    for _ in range(40):
        qr = client.post("/Questionnaire/$next-question", json=qr).json()
        if qr["status"] == "completed":
            break
        new = qr["contained"][0]["item"][-1]
        name = new["linkId"]
        if name == "fever":  # a "don't know": asked, no answer
            qr["item"].append({"linkId": name})
            continue
        if new["type"] == "choice":
            assert new["answerOption"] == [
                {"valueCoding": o["valueCoding"] | {"display": d["valueCoding"]["display"]}}
                for o, d in zip(intake[name]["answerOption"], new["answerOption"], strict=True)
            ]
            (answer,) = [
                o for o in new["answerOption"] if o["valueCoding"]["code"] == DISC_PATIENT[name]
            ]
        else:
            answer = _answer(new, DISC_PATIENT[name])
        qr["item"].append({"linkId": name, "answer": [answer]})
        given[name] = DISC_PATIENT[name]
    assert qr["status"] == "completed"
    assert qr["contained"][0]["derivedFrom"] == [vignettes.QUESTIONNAIRE_URL]
    assert_required_codes(qr)  # the response and its contained Questionnaire
    assert vignettes.from_questionnaire_response(qr) == vignettes.validate_case(given)
    assert "fever" in vignettes.asked_in_response(qr)
    other = qr | {"contained": [qr["contained"][0] | {"derivedFrom": ["http://x.org/Q/other"]}]}
    with pytest.raises(IntakeError, match=r"^questionnaire: the response answers another"):
        vignettes.from_questionnaire_response(other)


def test_an_unanswered_item_is_a_dont_know_and_is_not_asked_again(client: TestClient) -> None:
    qr = client.post("/Questionnaire/$next-question", json=_start(50)).json()
    first = qr["contained"][0]["item"][-1]["linkId"]
    assert first in RED_FLAG_FIELDS
    qr = client.post("/Questionnaire/$next-question", json=qr).json()  # no answer: don't know
    asked = [i["linkId"] for i in qr["contained"][0]["item"]]
    assert asked.count(first) == 1 and len(asked) == 3
    assert _extension(qr, "tier")[0] == "review"  # a red-flag don't-know: at least review
    assert "don't know" in _extension(qr, "tier_text")[0]


def test_bad_input_names_the_link_id(client: TestClient) -> None:
    qr = _start(50)
    qr["item"].append({"linkId": "fever", "answer": [{"valueString": "maybe"}]})
    answer = client.post("/Questionnaire/$next-question", json=qr)
    assert answer.status_code == 400
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "fever" in outcome["issue"][0]["expression"][0]
    qr = _start(50)
    qr["item"].append({"linkId": "feverish", "answer": [{"valueBoolean": True}]})
    outcome = client.post("/Questionnaire/$next-question", json=qr).json()
    assert "feverish" in outcome["issue"][0]["diagnostics"]
    qr = _start(50)
    qr["item"] = []
    outcome = client.post("/Questionnaire/$next-question", json=qr).json()
    assert "age" in outcome["issue"][0]["expression"][0]
    answer = client.post("/Questionnaire/$next-question", json={"resourceType": "Patient"})
    assert answer.status_code == 400


def test_malformed_answers_are_a_400_naming_the_item(client: TestClient) -> None:
    """Every way a response can be malformed gets an OperationOutcome, never a 500 or a silent
    choice between two answers."""
    url = "/Questionnaire/$next-question"
    cases = {
        "answer is an object": {"linkId": "fever", "answer": {"valueBoolean": True}},
        "answer is a number": {"linkId": "fever", "answer": [40]},
    }
    for why, item in cases.items():
        qr = _start(50)
        qr["item"].append(item)
        answer = client.post(url, json=qr)
        assert answer.status_code == 400, why
        assert "linkId='fever'" in answer.json()["issue"][0]["expression"][0], why
    qr = _start(50)
    qr["item"] += [
        {"linkId": "saddle_numbness", "answer": [{"valueBoolean": True}]},
        {"linkId": "saddle_numbness", "answer": [{"valueBoolean": False}]},
    ]
    answer = client.post(url, json=qr)
    assert answer.status_code == 400 and "answered twice" in answer.text
    qr = _start(50) | {"extension": ["x"]}
    assert client.post(url, json=qr).status_code == 200  # a stray extension is kept out
    doubled = json.dumps(_start(50)).replace(
        '"valueInteger": 50', '"valueInteger": 50, "valueInteger": 90'
    )
    answer = client.post(url, content=doubled, headers={"content-type": "application/json"})
    assert answer.status_code == 400 and "valueInteger: appears more than once" in answer.text


def test_the_page_refuses_a_bad_state_by_name(client: TestClient) -> None:
    def page(state: str, **params: str) -> Any:
        return client.get("/interview", params={"state": state, **params})

    twice = '{"answers": {"age": 40, "fever": true, "fever": false}, "asked": ["fever"]}'
    assert page(twice).status_code == 400 and "fever: appears more than once" in page(twice).text
    for state, named in (
        ('{"answers": {"age": 40, "fever": "yes"}, "asked": []}', "fever"),
        ('{"answers": {"age": 12}, "asked": []}', "age"),
        ('{"answers": {"age": 40, "feverish": true}, "asked": []}', "feverish"),
        ('{"answers": {"age": 40}, "asked": ["sadle_numbness"]}', "sadle_numbness"),
    ):
        answer = page(state)
        assert answer.status_code == 400 and named in answer.text, state
    young = '{"answers": {"age": 18}, "asked": []}'
    long = page(young, field="duration_weeks", answer="number", value="2000")
    assert long.status_code == 200 and "role='alert'" in long.text  # said on the page, asked again
    assert "age" in html.unescape(long.text).split("role='alert'")[1][:300]
    odd = page(young, field="fever", answer="yes")
    assert odd.status_code == 200 and "is not one of the page's answers" in html.unescape(odd.text)


def test_the_page_has_no_scripts_and_fits_a_phone(client: TestClient) -> None:
    page = client.get("/interview").text
    assert "Age is required" in page
    assert "<script" not in page and "http" not in page.split("<body>")[0].replace("http-equiv", "")
    assert "width=device-width" in page


def test_the_page_walks_one_question_at_a_time(client: TestClient) -> None:
    page = client.get("/interview", params={"field": "age", "answer": "number", "value": "38"})
    assert page.status_code == 200
    assert "data-tier=" in page.text and "Most likely" in page.text
    state = page.text.split("name='state' value='")[1].split("'")[0]
    decoded = json.loads(html.unescape(state))
    assert decoded["answers"]["age"] == 38
    bad = client.get("/interview", params={"field": "age", "answer": "number", "value": "7"})
    assert "role='alert'" in bad.text


def test_a_red_flag_case_ends_in_an_emergency(client: TestClient) -> None:
    answers = {"age": 50, **NO_RED_FLAGS, "saddle_numbness": True}
    state = json.dumps({"answers": answers, "asked": list(answers)})
    page = client.get("/interview", params={"state": state}).text
    assert "data-tier='emergency'" in page
