"""The next best question and the interview."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import serve
from model.intake import IntakeError, validate_frame
from serve.interview import Quit, parse_answer, run_interview
from serve.questions import ASKABLE, information_gain, next_questions
from vignettes.schema import RED_FLAG_FIELDS

NO_RED_FLAGS = dict.fromkeys(RED_FLAG_FIELDS, False)


def test_unasked_red_flags_come_first() -> None:
    questions = next_questions({"age": 70, "worse_walking": True}, k=8)
    assert len(questions) == 8
    red = [q.field for q in questions[: len(RED_FLAG_FIELDS)]]
    assert set(red) == set(RED_FLAG_FIELDS)
    assert all(q.target == "red_flag" for q in questions[: len(RED_FLAG_FIELDS)])
    assert all(q.target == "cause" for q in questions[len(RED_FLAG_FIELDS) :])


def test_once_red_flags_are_asked_the_rest_is_ranked_by_information() -> None:
    case = {"age": 45, **NO_RED_FLAGS}
    questions = next_questions(case, k=5)
    assert not {q.field for q in questions} & set(RED_FLAG_FIELDS)
    gains = [q.information_gain for q in questions]
    assert gains == sorted(gains, reverse=True)
    assert gains[0] > 0.1


def test_information_gain_is_a_mutual_information() -> None:
    cases = validate_frame(
        pd.DataFrame([{"age": 70, "worse_walking": True}, {"age": 30, "worse_cough_sneeze": True}])
    )
    gains = information_gain(cases, ASKABLE)
    values = gains["cause"].to_numpy()
    values = values[~np.isnan(values)]
    assert (values >= 0).all()
    # It never exceeds the entropy of the cause (log2 7 bits at most).
    assert (values <= np.log2(7) + 1e-9).all()
    # Already-answered questions are not candidates.
    assert np.isnan(gains["cause"].loc[0, "worse_walking"])
    # A question the article ties to stenosis tells more about an older walker's cause than fever.
    assert gains["cause"].loc[0, "better_sitting"] > 5 * gains["cause"].loc[0, "fever"]


def test_only_unanswered_fields_are_ranked() -> None:
    case = {"age": 60, "numbness": True, "sides": "left", **NO_RED_FLAGS}
    fields = {q.field for q in next_questions(case, k=len(ASKABLE))}
    assert not fields & {"numbness", "sides", *RED_FLAG_FIELDS}


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="k must be"):
        next_questions({"age": 50}, k=0)
    with pytest.raises(IntakeError, match="worse_walkin"):
        next_questions({"age": 50, "worse_walkin": True})


def test_parse_answer() -> None:
    assert parse_answer("fever", "y") is True
    assert parse_answer("fever", " No ") is False
    assert parse_answer("fever", "") is None
    assert parse_answer("sides", "3") == "both"
    assert parse_answer("sides", "left") == "left"
    assert parse_answer("duration_weeks", "6") == 6.0
    with pytest.raises(ValueError, match="yes or no"):
        parse_answer("fever", "maybe")
    with pytest.raises(ValueError, match="number 1-3"):
        parse_answer("sides", "7")
    with pytest.raises(Quit):
        parse_answer("fever", "q")


class Script:
    """Answers prompts from a patient's own answers, recording what was asked."""

    def __init__(self, patient: dict, extra: list[str] | None = None) -> None:
        self.patient, self.extra, self.asked = patient, list(extra or []), []

    def __call__(self, prompt: str) -> str:
        if self.extra:
            return self.extra.pop(0)
        field = next(f for f in self.patient if prompt.startswith(_question(f)))
        self.asked.append(field)
        value = self.patient[field]
        if value is None:
            return ""
        return {True: "y", False: "n"}.get(value, str(value))


def _question(field: str) -> str:
    from vignettes.schema import FIELD_BY_NAME

    return FIELD_BY_NAME[field].question


def test_interview_asks_until_the_differential_is_one_cause(trained) -> None:
    predictor = serve.load("models:/sciatica-triage@champion")
    patient = {
        "age": 72, "sides": "both", "worse_walking": True, "worse_standing": True,
        "better_sitting": True, "better_bending_forward": True, "pain_quality": "heaviness_fatigue",
        "worse_sitting": False, "worse_bending_forward": False, "worse_cough_sneeze": False,
        **NO_RED_FLAGS,
    }  # fmt: skip
    full = {f: patient.get(f) for f in ASKABLE}
    shown: list[str] = []
    script = Script(full)
    answers, prediction = run_interview(predictor, {"age": 72}, ask=script, show=shown.append)
    assert script.asked[: len(RED_FLAG_FIELDS)] and set(
        script.asked[: len(RED_FLAG_FIELDS)]
    ) == set(RED_FLAG_FIELDS)
    assert len(script.asked) == len(set(script.asked))  # never the same question twice
    assert any("differential" in line for line in shown)
    assert prediction.red_flags_fired == []  # every red-flag question answered "no"
    done = len(prediction.differential) == 1 or any("No questions" in s for s in shown)
    assert done
    assert answers["age"] == 72


def test_interview_skips_dont_know_and_quits_on_q(trained) -> None:
    predictor = serve.load("models:/sciatica-triage@champion")
    shown: list[str] = []
    answers_given = iter(["", "", "q"])
    answers, _ = run_interview(
        predictor, {"age": 50}, ask=lambda _: next(answers_given), show=shown.append
    )
    assert "Stopped." in " ".join(shown)
    assert set(answers) == {"age"}


def test_interview_reprompts_on_a_bad_answer(trained) -> None:
    predictor = serve.load("models:/sciatica-triage@champion")
    shown: list[str] = []
    replies = iter(["perhaps", "n", "q"])
    answers, _ = run_interview(
        predictor, {"age": 50}, ask=lambda _: next(replies), show=shown.append
    )
    assert any("yes or no" in line for line in shown)
    assert list(answers.values()).count(False) == 1
