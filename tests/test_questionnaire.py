"""The intake as an SDC Questionnaire, and a case as a QuestionnaireResponse and back."""

from __future__ import annotations

import copy
import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

import vignettes
from tests.fhir_bindings import assert_required_codes
from vignettes.intake import IntakeError
from vignettes.schema import FIELD_BY_NAME, FIELD_NAMES, FIELDS, Field
from vignettes.sdc import (
    CLINICIAN_ONLY,
    QUESTIONNAIRE_URL,
    _item,
    asked_in_response,
    group_of,
    package_version,
)

ITEM_TYPE = {"int": "integer", "float": "decimal", "bool": "boolean", "category": "choice"}


def _items(questionnaire: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every field item of the Questionnaire by linkId, with the group it sits in."""
    out = {}
    for group in questionnaire["item"]:
        for item in group["item"]:
            out[item["linkId"]] = {**item, "_group": group["linkId"]}
    return out


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """1,000 generated cases with their gaps (both settings)."""
    return pd.concat(
        [
            vignettes.generate(500, seed=19),
            vignettes.generate(500, seed=20, setting="spine_clinic", start=500),
        ],
        ignore_index=True,
    )


# --------------------------------------------------------------------------------------------
# The Questionnaire
# --------------------------------------------------------------------------------------------


def test_the_questionnaire_validates_with_the_r4b_models() -> None:
    q = vignettes.questionnaire()
    parsed = Questionnaire.model_validate(q)
    assert_required_codes(q)
    assert parsed.url == QUESTIONNAIRE_URL and parsed.version == package_version()
    assert json.loads(json.dumps(q)) == q  # JSON-ready


def test_the_questionnaire_matches_the_schema_field_for_field() -> None:
    items = _items(vignettes.questionnaire())
    assert list(items) == [f.name for g in ("history", "examination", "red_flags")
                           for f in FIELDS if group_of(f) == g]  # fmt: skip
    assert set(items) == set(FIELD_NAMES)
    for field in FIELDS:
        item = items[field.name]
        assert item["text"] == field.question
        assert item["type"] == ITEM_TYPE[field.kind]
        assert item["required"] is (field.name == "age")
        codes = [o["valueCoding"]["code"] for o in item.get("answerOption", [])]
        assert codes == list(field.values)
        extensions = {e["url"]: e for e in item.get("extension", [])}
        assert (CLINICIAN_ONLY in extensions) is field.examination
        assert (item["_group"] == "red_flags") is field.red_flag
        if field.kind in ("int", "float"):
            bounds = [
                e.get("valueInteger", e.get("valueDecimal"))
                for url, e in extensions.items()
                if url.endswith(("/minValue", "/maxValue"))
            ]
            assert bounds == [b for b in (field.low, field.high) if b is not None]
        assert "enableWhen" not in item  # no contract field declares a dependency


def test_a_declared_dependency_becomes_enable_when() -> None:
    field = Field("mri_level", "category", "Which level?", values=("L4", "L5"))
    dependent = Field(
        field.name, field.kind, field.question, field.values, enable_when=(("sex", "male"),)
    )
    assert "enableWhen" not in _item(field)
    item = _item(dependent)
    Questionnaire.model_validate(
        {"resourceType": "Questionnaire", "status": "draft", "item": [item]}
    )
    assert item["enableWhen"] == [
        {
            "question": "sex",
            "operator": "=",
            "answerCoding": {
                "system": "http://sciatica-triage.example.org/fhir/CodeSystem/sex",
                "code": "male",
                "display": "male",
            },
        }
    ]


def test_the_questionnaire_is_a_fresh_copy_each_call() -> None:
    q = vignettes.questionnaire()
    q["item"].clear()
    assert vignettes.questionnaire()["item"]


# --------------------------------------------------------------------------------------------
# Responses: round trip
# --------------------------------------------------------------------------------------------


def test_case_to_response_to_case_is_the_identity(frame: pd.DataFrame) -> None:
    for _, row in frame.iterrows():
        qr = vignettes.to_questionnaire_response(row)
        text = json.dumps(qr)  # through JSON, as a client would send it
        assert vignettes.from_questionnaire_response(json.loads(text)) == vignettes.validate_case(
            row
        )


def test_every_response_validates_with_the_r4b_models(frame: pd.DataFrame) -> None:
    for _, row in frame.head(300).iterrows():
        qr = vignettes.to_questionnaire_response(row, response_id="r1", subject="Patient/p1")
        parsed = QuestionnaireResponse.model_validate(qr)
        assert_required_codes(qr)
        assert parsed.questionnaire == f"{QUESTIONNAIRE_URL}|{package_version()}"


def test_an_unknown_answer_is_simply_absent() -> None:
    qr = vignettes.to_questionnaire_response({"age": 40, "fever": None, "sides": "left"})
    linked = [i["linkId"] for g in qr["item"] for i in g["item"]]
    assert linked == ["age", "sides"]


def test_an_asked_question_left_unknown_stays_as_an_item_without_an_answer(
    frame: pd.DataFrame,
) -> None:
    """Nothing the patient was asked is lost: a "don't know" is an item with no answer, read
    back as asked and unknown; a question never asked is left out."""
    rng = np.random.default_rng(8)
    for _, row in frame.head(200).iterrows():
        case = vignettes.validate_case(row)
        asked = [f for f in FIELD_NAMES if rng.random() < 0.5]
        qr = json.loads(json.dumps(vignettes.to_questionnaire_response(case, asked=asked)))
        known = {f for f, v in case.items() if v is not None}
        assert asked_in_response(qr) == [f for f in FIELD_NAMES if f in known | set(asked)]
        assert vignettes.from_questionnaire_response(qr) == case
        items = {i["linkId"]: i for g in qr["item"] for i in g["item"]}
        assert all("answer" not in items[f] for f in set(asked) - known)
        QuestionnaireResponse.model_validate(qr)
    with pytest.raises(IntakeError, match=r"asked: 'fevr' is not an intake field.*'fever'"):
        vignettes.to_questionnaire_response({"age": 40}, asked=["fevr"])


# --------------------------------------------------------------------------------------------
# Responses: refused by linkId
# --------------------------------------------------------------------------------------------


def _response(*items: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": QUESTIONNAIRE_URL,
        "status": "completed",
        "item": [{"linkId": "age", "answer": [{"valueInteger": 50}]}, *items],
    }


@pytest.mark.parametrize(
    ("item", "link_id", "says"),
    [
        ({"linkId": "fevr", "answer": [{"valueBoolean": True}]}, "fevr", "did you mean 'fever'"),
        ({"linkId": "fever", "answer": [{"valueString": "yes"}]}, "fever", "valueBoolean"),
        ({"linkId": "fever", "answer": [{"valueInteger": 1}]}, "fever", "wrong answer type"),
        ({"linkId": "duration_weeks", "answer": [{"valueBoolean": True}]}, "duration_weeks", ""),
        ({"linkId": "sides", "answer": [{"valueString": "left"}]}, "sides", "valueCoding"),
        (
            {"linkId": "fever", "answer": [{"valueBoolean": True}, {"valueBoolean": False}]},
            "fever",
            "2 answers",
        ),
        (
            {"linkId": "sides", "answer": [{"valueCoding": {"code": "up"}}]},
            "sides",
            "'left', 'right', 'both'",
        ),
        (
            {
                "linkId": "sides",
                "answer": [{"valueCoding": {"system": "http://snomed.info/sct", "code": "left"}}],
            },
            "sides",
            "code system",
        ),
        ({"linkId": "age", "answer": [{"valueInteger": 51}]}, "age", "answered twice"),
        ({"linkId": "red_flags", "item": [{"linkId": "nope"}]}, "nope", "unknown linkId"),
    ],
)
def test_a_bad_response_is_refused_by_link_id(item: dict, link_id: str, says: str) -> None:
    with pytest.raises(IntakeError) as caught:
        vignettes.from_questionnaire_response(_response(item))
    assert caught.value.field == link_id
    assert str(caught.value).startswith(f"{link_id}: ")
    assert says in str(caught.value)
    assert "expected" in str(caught.value)


def test_an_out_of_range_answer_is_refused_by_the_contract() -> None:
    qr = _response()
    qr["item"][0]["answer"] = [{"valueInteger": 12}]
    with pytest.raises(IntakeError, match=r"^age: 12 is out of range"):
        vignettes.from_questionnaire_response(qr)


def test_a_response_to_another_questionnaire_is_refused() -> None:
    qr = _response()
    qr["questionnaire"] = "http://example.org/Questionnaire/phq-9"
    with pytest.raises(IntakeError, match=r"^questionnaire: the response answers another") as e:
        vignettes.from_questionnaire_response(qr)
    assert e.value.field == "questionnaire"
    del qr["questionnaire"]
    with pytest.raises(IntakeError, match=r"^questionnaire: "):
        vignettes.from_questionnaire_response(qr)


def test_another_resource_is_refused() -> None:
    with pytest.raises(IntakeError, match=r"^resourceType: got 'Patient'"):
        vignettes.from_questionnaire_response({"resourceType": "Patient"})


def test_any_version_of_the_questionnaire_is_read() -> None:
    qr = _response()
    qr["questionnaire"] = f"{QUESTIONNAIRE_URL}|0.0.1"
    assert vignettes.from_questionnaire_response(qr)["age"] == 50


def test_top_level_items_and_groups_both_read_and_an_integral_decimal_is_accepted() -> None:
    qr = _response(
        {"linkId": "red_flags", "item": [{"linkId": "fever", "answer": [{"valueBoolean": False}]}]},
        {"linkId": "duration_weeks", "answer": [{"valueDecimal": 3}]},
        {"linkId": "numbness"},  # no answer: unknown
    )
    case = vignettes.from_questionnaire_response(copy.deepcopy(qr))
    assert case["fever"] is False and case["duration_weeks"] == 3.0
    assert isinstance(case["duration_weeks"], float) and case["numbness"] is None
    assert FIELD_BY_NAME["duration_weeks"].kind == "float"


def test_the_committed_questionnaire_copy_is_current() -> None:
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("docs_interface", root / "docs" / "interface.py")
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    committed = generator.QUESTIONNAIRE.read_text(encoding="utf-8")
    assert committed == generator.render_questionnaire(), "stale: run `make docs`"
    assert json.loads(committed) == vignettes.questionnaire()


def test_check_mode_reports_a_stale_questionnaire(tmp_path, monkeypatch) -> None:
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("docs_interface", root / "docs" / "interface.py")
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    stale = tmp_path / "q.json"
    stale.write_text(generator.render_questionnaire().replace("History", "Histories"), "utf-8")
    monkeypatch.setattr(generator, "QUESTIONNAIRE", stale)
    assert generator.main(["--check"]) == 1
    stale.write_text(generator.render_questionnaire(), encoding="utf-8")
    assert generator.main(["--check"]) == 0
