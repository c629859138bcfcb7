"""``serve`` reads FHIR QuestionnaireResponses exactly as it reads cases."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

import serve
import vignettes
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
        assert serve.predict(qr).to_dict() == serve.predict(case).to_dict()
        assert predictor.predict(qr).to_dict() == predictor.predict(case).to_dict()


def test_predict_batch_takes_a_list_of_responses(
    predictor: serve.Predictor, generated: pd.DataFrame
) -> None:
    responses = [vignettes.to_questionnaire_response(row) for _, row in generated.iterrows()]
    from_responses = serve.predict_batch(responses)
    from_frame = serve.predict_batch(generated.reset_index(drop=True))
    assert list(from_responses.index) == list(range(len(generated)))
    pd.testing.assert_frame_equal(from_responses, from_frame)
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
