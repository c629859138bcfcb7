"""``serve`` reads FHIR QuestionnaireResponses exactly as it reads cases."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

import serve
import vignettes
from tests.frames import assert_frames_identical
from vignettes.intake import IntakeError


@pytest.fixture(scope="module")
def predictor(trained: Any) -> serve.Predictor:
    return serve.load()


@pytest.fixture(scope="module")
def generated() -> pd.DataFrame:
    return vignettes.generate(40, seed=23)


def test_the_prediction_for_a_response_equals_that_for_the_dict(
    predictor: serve.Predictor, generated: pd.DataFrame
) -> None:
    for _, row in generated.iterrows():
        case = vignettes.validate_case(row)
        qr = vignettes.to_questionnaire_response(row)
        asked = vignettes.asked_in_response(qr)  # a response says what was asked; a dict not
        assert serve.predict(qr).to_dict() == serve.predict(case, asked=asked).to_dict()
        assert predictor.predict(qr).to_dict() == predictor.predict(case, asked=asked).to_dict()
        assert predictor.predict(qr).asked == [f for f in vignettes.FIELD_NAMES if f in asked]
        assert predictor.predict(case).asked == []


def test_predict_batch_takes_a_list_of_responses(
    predictor: serve.Predictor, generated: pd.DataFrame
) -> None:
    responses = [vignettes.to_questionnaire_response(row) for _, row in generated.iterrows()]
    from_responses = serve.predict_batch(responses)
    from_frame = serve.predict_batch(generated.reset_index(drop=True))
    assert list(from_responses.index) == list(range(len(generated)))
    assert_frames_identical(from_responses, from_frame)
    mixed = [responses[0], vignettes.validate_case(generated.iloc[1])]
    np.testing.assert_array_equal(
        predictor.predict_batch(mixed)["cause"], from_frame["cause"].iloc[:2]
    )
    many = predictor.predict_many(responses[:5])
    assert [p.to_dict() for p in many] == [predictor.predict(r).to_dict() for r in responses[:5]]


def test_a_bad_response_is_refused_by_link_id_before_any_model_loads() -> None:
    qr = vignettes.to_questionnaire_response({"age": 50, "fever": True})
    qr["item"][-1]["item"][0]["linkId"] = "feverish"
    with pytest.raises(IntakeError, match=r"^feverish: unknown linkId"):
        serve.predict(qr)
    with pytest.raises(IntakeError, match=r"^feverish: unknown linkId"):
        serve.predict_batch([qr])


def test_predict_batch_refuses_what_is_neither_a_frame_nor_a_list() -> None:
    with pytest.raises(IntakeError, match=r"^cases: expected a pandas DataFrame or a list"):
        serve.predict_batch({"age": 50})  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# The command line: a QuestionnaireResponse, or a Bundle holding one
# --------------------------------------------------------------------------------------------


def _write(tmp_path: Any, value: Any) -> str:
    import json

    path = tmp_path / "input.json"
    path.write_text(json.dumps(value))
    return str(path)


@pytest.fixture
def model_cache(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCIATICA_TRIAGE_CACHE", str(tmp_path / "model-cache"))


def test_the_cli_reads_a_response_and_a_bundle_holding_one(
    predictor: serve.Predictor, tmp_path: Any, capsys: Any, model_cache: None
) -> None:
    import json

    from serve.cli import main

    case = {"age": 70, "worse_walking": True, "better_sitting": True, "sides": "both"}
    qr = vignettes.to_questionnaire_response(case, response_id="qr-7")
    from model.intake import validate_case

    record = predictor.model.predict_records([validate_case(case)])[0]  # one schema with HTTP
    expected = json.loads(json.dumps({"predictions": [record]}))
    assert main(["predict", "--json", _write(tmp_path, qr)]) == 0
    assert json.loads(capsys.readouterr().out) == expected
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": "urn:uuid:qr-7", "resource": qr},
            {"resource": {"resourceType": "Patient"}},
        ],
    }
    assert main(["predict", "--json", _write(tmp_path, bundle)]) == 0
    assert json.loads(capsys.readouterr().out) == expected
    assert main(["predict", "--fhir", _write(tmp_path, bundle)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["resourceType"] == "Bundle" and out["type"] == "collection"
    risk = [
        e["resource"] for e in out["entry"] if e["resource"]["resourceType"] == "RiskAssessment"
    ]
    assert risk[0]["basis"] == [{"reference": "urn:uuid:qr-7"}]
    two = {**bundle, "entry": [bundle["entry"][0], bundle["entry"][0]]}
    assert main(["predict", "--json", _write(tmp_path, two)]) == 0
    assert json.loads(capsys.readouterr().out) == {"predictions": expected["predictions"] * 2}


def test_the_cli_s_fhir_output_keeps_a_question_asked_and_left_unknown(
    predictor: serve.Predictor, tmp_path: Any, capsys: Any, model_cache: None
) -> None:
    import json

    from serve.cli import main

    case = _write(tmp_path, {"age": 52, "sides": "left", "fever": False})
    assert main(["predict", "--fhir", "--asked", "saddle_numbness,fever", case]) == 0
    out = json.loads(capsys.readouterr().out)
    (qr,) = [
        e["resource"]
        for e in out["entry"]
        if e["resource"]["resourceType"] == "QuestionnaireResponse"
    ]
    assert {"linkId": "saddle_numbness"} in qr["item"][-1]["item"]  # "don't know", not dropped
    assert "saddle_numbness" in vignettes.sdc.asked_in_response(qr)


def test_the_cli_refuses_a_bad_response_by_link_id(tmp_path: Any, capsys: Any) -> None:
    from serve.cli import EXIT_BAD_INPUT, main

    qr = vignettes.to_questionnaire_response({"age": 50, "fever": True})
    qr["item"][-1]["item"][0]["linkId"] = "feverish"
    assert main(["predict", _write(tmp_path, qr)]) == EXIT_BAD_INPUT
    assert (
        capsys.readouterr()
        .err.strip()
        .startswith("sciatica-triage predict: error: feverish: unknown linkId")
    )
    empty = {"resourceType": "Bundle", "type": "collection", "entry": []}
    assert main(["predict", _write(tmp_path, empty)]) == EXIT_BAD_INPUT
    assert "holds no QuestionnaireResponse" in capsys.readouterr().err
    assert main(["predict", _write(tmp_path, {"resourceType": "Patient"})]) == EXIT_BAD_INPUT
    assert "resourceType 'Patient'" in capsys.readouterr().err


def test_questions_named_beside_a_response_add_to_the_ones_it_says_were_asked() -> None:
    from serve.api import asked_of, red_flag_dont_knows

    qr = vignettes.to_questionnaire_response({"age": 50}, asked=["fever"])  # fever: "don't know"
    answers = vignettes.from_questionnaire_response(qr)
    assert red_flag_dont_knows(answers, asked_of(qr, None)) == ["fever"]
    both = red_flag_dont_knows(answers, asked_of(qr, ["saddle_numbness"]))
    assert both == ["saddle_numbness", "fever"]  # the response's own "don't know" is kept
    assert asked_of({"age": 50}, ["fever"]) == ["fever"]  # a plain case: as given
