"""The next best question and the interview."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import serve
from model.intake import IntakeError, validate_frame
from serve.interview import (
    TRIAGE_OUTPUTS,
    Quit,
    parse_answer,
    run_interview,
    triage_open_questions,
)
from serve.questions import (
    ASKABLE,
    ASKABLE_WITHOUT_CLINICIAN,
    information_gain,
    next_questions,
    rank_questions,
)
from vignettes.schema import EXAMINATION_FIELDS, RED_FLAG_FIELDS

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


class BayesPredictor:
    """A predictor without training: the exact posterior, a 10% differential closed upward,
    and the article's triage (the same rules the served model runs)."""

    def predict(self, answers: dict):
        import vignettes
        from model import rules
        from model.intake import validate_case
        from vignettes.schema import CAUSES

        case = validate_case(answers)
        post = vignettes.posterior(validate_frame(pd.DataFrame([case])))
        probabilities = {c: float(post[c].iloc[0]) for c in CAUSES}
        least = (
            min(p for p in probabilities.values() if p >= 0.1)
            if max(probabilities.values()) >= 0.1
            else max(probabilities.values())
        )
        differential = sorted(
            (c for c, p in probabilities.items() if p >= least), key=lambda c: -probabilities[c]
        )
        triage = rules.triage(case)
        return SimpleNamespace(
            probabilities=probabilities,
            differential=differential,
            differential_coverage=0.9,
            red_flags_fired=triage["red_flags_fired"],
            **{k: triage[k] for k in TRIAGE_OUTPUTS},
        )


DISC_PATIENT = {
    "age": 38, "sex": "male", "duration_weeks": 3, "back_pain": True,
    "leg_pain_worse_than_back": True, "buttock_pain": False, "sides": "left",
    "pain_region": "outer_leg_big_toe", "below_knee": True, "pain_quality": "sharp_electric",
    "worse_sitting": True, "better_sitting": False, "worse_bending_forward": True,
    "better_bending_forward": False, "worse_cough_sneeze": True, "worse_walking": False,
    "worse_standing": False, "worse_extension": False, "better_rest_movement": False,
    "worse_at_night": True, "numbness": True, "tingling": True, "weakness": False,
    "reflex_changes": False, "progressive_symptoms": False, "conservative_care_failed": False,
    "straight_leg_raise": True, "crossed_straight_leg_raise": True, "mri_finding": "not_done",
    **NO_RED_FLAGS,
}  # fmt: skip


@pytest.mark.parametrize("clinician", [False, True])
def test_interview_stops_only_when_the_triage_is_settled(clinician: bool) -> None:
    predictor = BayesPredictor()
    script = Script({f: DISC_PATIENT.get(f) for f in ASKABLE})
    shown: list[str] = []
    answers, prediction = run_interview(
        predictor, {"age": 38}, ask=script, show=shown.append, clinician=clinician
    )
    assert "settled" in shown[-1], shown[-3:]
    assert len(prediction.differential) == 1
    assert "pain_region" in script.asked  # where the pain reaches: the nerve root is an output
    assert prediction.nerve_root == "L5"
    fields = ASKABLE if clinician else ASKABLE_WITHOUT_CLINICIAN
    assert triage_open_questions(predictor, answers, fields) == []
    if not clinician:
        assert not set(script.asked) & set(EXAMINATION_FIELDS)


def test_open_questions_are_those_that_change_the_triage() -> None:
    predictor = BayesPredictor()
    case = {"age": 38, **NO_RED_FLAGS}
    open_fields = triage_open_questions(predictor, case, ASKABLE)
    assert "pain_region" in open_fields  # changes the nerve root
    assert "pain_quality" in open_fields  # changes the pain mechanism and its advice
    assert "sex" not in open_fields and "straight_leg_raise" not in open_fields


def test_examination_signs_are_asked_only_with_a_clinician() -> None:
    frame = validate_frame(pd.DataFrame([{"age": 38, "below_knee": True, **NO_RED_FLAGS}]))
    with_clinician = {q.field for q in rank_questions(frame, None, fields=ASKABLE)[0]}
    without = {q.field for q in rank_questions(frame, None, fields=ASKABLE_WITHOUT_CLINICIAN)[0]}
    assert set(EXAMINATION_FIELDS) <= with_clinician
    assert not set(EXAMINATION_FIELDS) & without
