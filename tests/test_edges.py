"""Safety at the edges: a golden case per urgency rule, the edge figures, the rule engine.

The cases a clinical-safety reviewer tries first (a worsening deficit with the flag box left
unknown, bilateral radicular pain with a deficit, cancer with a neurological finding, fever,
weight loss alone, a model estimate above the upper threshold), each through ``rules.triage``
with the timeframe and the suspected condition it must give. Then the edge figures on 30,000
fresh vignettes with the exact posterior as the model, against the issue's targets, and the
printout's order: the suspected condition first, the patient's and the clinician's advice apart.
No trained model is needed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import vignettes
from model import rules
from model.conditions import Evaluation
from model.intake import validate_case
from model.triage import URGENT_PROBABILITY, cost_ratio_threshold
from serve.explanation import explain
from tests.test_prediction_fhir import make_prediction
from training.candidates import Split
from training.edges import EDGE_TARGETS, edge_figures, edges_markdown, trigger_yields
from vignettes.schema import RED_FLAG_FIELDS

NO_FLAGS = dict.fromkeys(RED_FLAG_FIELDS, False)
L5_WEAKNESS = {
    "age": 50,
    "pain_region": "outer_leg_big_toe",
    "below_knee": True,
    "pain_quality": "sharp_electric",
    "weakness": True,
    "numbness": True,
}
BILATERAL = {
    "age": 41,
    "sides": "both",
    "below_knee": True,
    "pain_quality": "sharp_electric",
    "weakness": True,
    "reflex_changes": True,
}

GOLDEN: list[tuple[str, dict[str, Any], dict[str, Any], str, str | None, str | None]] = [
    # (why, answers, model decisions, tier, timeframe, suspected)
    (
        "saddle numbness",
        {"age": 45, "saddle_numbness": True},
        {},
        "emergency",
        "now",
        "cauda_equina",
    ),
    (
        "bilateral radicular pain, deficit, getting worse, all six flags no",
        NO_FLAGS | BILATERAL | {"progressive_symptoms": True},
        {},
        "emergency",
        "now",
        "cauda_equina",
    ),
    (
        "cancer with progressive weakness and numbness (NICE NG234)",
        {"age": 68, "cancer_history": True, "progressive_weakness": True, "numbness": True},
        {},
        "emergency",
        "within 24 hours",
        "malignancy",
    ),
    (
        "bilateral radicular pain with a deficit, not getting worse",
        NO_FLAGS | BILATERAL,
        {},
        "urgent",
        "same day",
        "cauda_equina",
    ),
    ("fever", NO_FLAGS | {"age": 60, "fever": True}, {}, "urgent", "same day", "infection"),
    (
        "L5 weakness getting worse, the flag box left unknown",
        L5_WEAKNESS | {"progressive_symptoms": True},
        {},
        "urgent",
        "within days",
        "progressive_deficit",
    ),
    (
        "a history of cancer with new pain, no neurology",
        NO_FLAGS | {"age": 70, "cancer_history": True},
        {},
        "urgent",
        "within days",
        "malignancy",
    ),
    (
        "weight loss at 50 or over with night pain (Deyo 1992)",
        NO_FLAGS | {"age": 66, "unexplained_weight_loss": True, "worse_at_night": True},
        {},
        "urgent",
        "within days",
        "malignancy",
    ),
    (
        "cancer with tingling only (NG234: sensory change)",
        NO_FLAGS | {"age": 65, "cancer_history": True, "tingling": True},
        {},
        "emergency",
        "within 24 hours",
        "malignancy",
    ),
    (
        "bilateral claudication with weakness, getting worse (claudication does not lower it)",
        NO_FLAGS
        | BILATERAL
        | {"progressive_symptoms": True, "worse_walking": True, "better_bending_forward": True},
        {},
        "emergency",
        "now",
        "cauda_equina",
    ),
    (
        "bilateral pain with weakness, the pain's quality unknown",
        NO_FLAGS
        | {"age": 60, "sides": "both", "pain_region": "back_of_leg_heel", "weakness": True},
        {},
        "urgent",
        "same day",
        "cauda_equina",
    ),
    (  # the claudication picture: a dull or heavy pain in both legs with a deficit is not reassured
        "both legs, a dull aching pain below the knee and changed reflexes",
        NO_FLAGS
        | {
            "age": 70,
            "sides": "both",
            "below_knee": True,
            "pain_quality": "dull_aching",
            "reflex_changes": True,
            "worse_walking": True,
        },
        {},
        "urgent",
        "same day",
        "cauda_equina",
    ),
    (
        "both legs, heaviness in the buttocks and thighs, and weakness",
        NO_FLAGS
        | {
            "age": 66,
            "sides": "both",
            "pain_region": "buttock_thigh",
            "pain_quality": "heaviness_fatigue",
            "weakness": True,
        },
        {},
        "urgent",
        "same day",
        "cauda_equina",
    ),
    (
        "a silent case at or above the upper threshold",
        NO_FLAGS | {"age": 55},
        {"red_flag_model": True, "red_flag_urgent": True},
        "urgent",
        "within days",
        "unspecified",
    ),
    (
        "weight loss alone (NICE NG12: bloods, review within 2 weeks)",
        NO_FLAGS | {"age": 58, "unexplained_weight_loss": True},
        {},
        "review",
        "within 2 weeks",
        "malignancy",
    ),
    (
        "a silent case above the review threshold",
        NO_FLAGS | {"age": 55},
        {"red_flag_model": True},
        "review",
        "within 2 weeks",
        "unspecified",
    ),
    (
        'a red-flag question answered "don\'t know" (the caller says it was asked)',
        {k: v for k, v in NO_FLAGS.items() if k != "saddle_numbness"} | {"age": 35},
        {"red_flag_dont_know": True},
        "review",
        "within 2 weeks",
        "unspecified",
    ),
    (
        'the saddle question answered "don\'t know": asked again by a clinician today',
        {k: v for k, v in NO_FLAGS.items() if k != "saddle_numbness"} | {"age": 35},
        {"red_flag_dont_know": ["saddle_numbness"]},
        "urgent",
        "same day",
        "cauda_equina",
    ),
    ("nothing", NO_FLAGS | {"age": 35, "duration_weeks": 2}, {}, "routine", None, None),
]


@pytest.mark.parametrize(
    ("why", "answers", "model", "tier", "timeframe", "suspected"),
    GOLDEN,
    ids=[g[0] for g in GOLDEN],
)
def test_a_golden_case_per_urgency_rule(
    why: str, answers: dict, model: dict, tier: str, timeframe: str | None, suspected: str | None
) -> None:
    out = rules.triage(validate_case(answers), **model)
    assert out["urgency"] == tier, why
    assert out["urgency_timeframe"] == timeframe, why
    assert out["suspected_conditions"][:1] == ([suspected] if suspected else [])
    assert ("safety_net" in out["advice_codes"]) == (tier != "emergency")
    if tier in ("emergency", "urgent"):
        assert not {"conservative_care", "chronic_pain"} & set(out["advice_codes"])


def test_every_urgency_rule_has_a_golden_case() -> None:
    fired = set()
    for _, answers, model, *_ in GOLDEN:
        fired |= set(rules.triage(validate_case(answers), **model)["urgency_triggers"])
    assert fired == {r.code for r in rules.URGENCY_RULES}


def test_the_mscc_pathway_asks_for_an_mri_within_24_hours() -> None:
    case = validate_case({"age": 68, "cancer_history": True, "weakness": True})
    out = rules.triage(case)
    assert out["urgency"] == "emergency" and out["urgency_timeframe"] == "within 24 hours"
    assert {"mscc_pathway", "mscc_now"} <= set(out["advice_codes"])
    assert "24 hours" in rules.ADVICE_TEXT["mscc_pathway"]


def test_an_unscreened_case_is_asked_first_and_not_reassured() -> None:
    out = rules.triage(validate_case({"age": 40, "duration_weeks": 14, "back_pain": True}))
    assert out["red_flag_screen"] == "none"
    assert out["advice_codes"][0] == "ask_red_flag_questions"
    assert "not inherently dangerous" not in out["urgency_action"]
    assert not {"conservative_care", "chronic_pain"} & set(out["advice_codes"])
    screened = rules.triage(validate_case(NO_FLAGS | {"age": 40, "duration_weeks": 14}))
    assert screened["red_flag_screen"] == "complete"
    assert "not inherently dangerous" in screened["urgency_action"]
    assert {"conservative_care", "chronic_pain", "review_now"} <= set(screened["advice_codes"])


def test_an_mri_on_file_is_not_trusted_once_symptoms_progress() -> None:
    imaged = NO_FLAGS | {"age": 50, "mri_finding": "disc_herniation"}
    assert "mri_in_context" in rules.triage(validate_case(imaged))["advice_codes"]
    worse = rules.triage(validate_case(imaged | {"progressive_symptoms": True}))
    assert "mri_in_context" not in worse["advice_codes"]
    assert "mri_on_file_out_of_date" in worse["advice_codes"]


def test_neurogenic_claudication_is_never_read_as_mechanical() -> None:
    case = validate_case(
        {
            "age": 72,
            "worse_walking": True,
            "better_sitting": True,
            "pain_quality": "dull_aching",
            "better_rest_movement": True,
            "pain_region": "buttock_thigh",
        }
    )
    assert rules.pain_mechanism(case) != "mechanical"


def test_nsaid_advice_carries_the_ng59_caution() -> None:
    text = rules.ADVICE_TEXT["anti_inflammatory"].lower()
    assert "older" in text and "kidney" in text and "heart" in text and "stomach" in text


def test_each_named_condition_is_evaluated_once_per_call(monkeypatch) -> None:
    calls: dict[str, int] = {}
    original = Evaluation._compute

    def counting(self: Evaluation, name: str) -> Any:
        calls[name] = calls.get(name, 0) + 1
        return original(self, name)

    monkeypatch.setattr(Evaluation, "_compute", counting)
    rules.triage(vignettes.generate(200, seed=3), cause="disc_herniation")
    assert calls and max(calls.values()) == 1, {k: v for k, v in calls.items() if v > 1}
    assert "motor_or_reflex_deficit" in calls  # used by several rules, computed once


# --------------------------------------------------------------------------------------------
# The edge figures on fresh vignettes (the exact posterior as the model)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def population() -> tuple[Split, np.ndarray, np.ndarray]:
    frame = vignettes.generate(30_000, seed=11)
    p = vignettes.posterior(frame)["red_flag"].to_numpy()
    return Split(frame), p, frame["cause"].astype(str).to_numpy()


def _bayes(p: np.ndarray, cause: np.ndarray) -> dict[str, Any]:
    review = p >= cost_ratio_threshold(100.0) - 1e-12
    return {"red_flag_model": review, "cause": cause, "red_flag_urgent": p >= URGENT_PROBABILITY}


def test_the_edge_targets_hold_under_the_rules_and_the_bayes_policy(population) -> None:
    split, p, cause = population
    alone = edge_figures(split.frame, rules.triage(split.frame, cause=cause), None, None)
    bayes_out = rules.triage(split.frame, **_bayes(p, cause))
    bayes = edge_figures(split.frame, bayes_out, p, URGENT_PROBABILITY)
    for name, (direction, bound, what) in EDGE_TARGETS.items():
        for figures in (alone, bayes):
            value = figures[name]
            assert value >= bound if direction == ">=" else value <= bound, (what, value)


def test_progressive_deficits_and_the_population_targets(population) -> None:
    split, p, cause = population
    deficit = split.serious == list(vignettes.schema.SERIOUS_CONDITIONS).index(
        "progressive_deficit"
    )
    alone = np.asarray(rules.urgency(split.frame), dtype=object)
    assert deficit.sum() > 150
    # the target: at most 13% routine by the rules alone (26% before); measured 10.8%
    # on 200,000 cases, so the bound allows three standard errors on ~400 cases
    assert (alone[deficit] == "routine").mean() <= 0.13 + 0.05
    bayes = np.asarray(rules.triage(split.frame, **_bayes(p, cause))["urgency"], object)
    has = split.serious > 0
    assert (bayes[has] != "routine").mean() >= 0.85
    assert (bayes[split.answered_no] == "routine").mean() >= 0.75
    silent = (bayes != "routine") & ~split.fired
    assert has[silent].mean() >= 0.03


def test_trigger_yields_count_what_each_rule_moves(population) -> None:
    split, p, cause = population
    fired = rules.fired_rules(split.frame, **_bayes(p, cause))
    table = trigger_yields(fired, split.serious, split.fired)
    assert list(table.index) == [r.code for r in rules.URGENCY_RULES]
    assert (table["moves"] <= table["covers"] + 1e-12).all()
    assert (table["covers_no_sign"] <= table["covers"] + 1e-12).all()
    # a sign's own rule fires only on reported signs
    assert table.loc["cauda_equina_sign", "covers_no_sign"] == 0
    # the emergency pathway's yield (GIRFT: 5-20%) for the answer-based emergency rules
    assert table.loc["suspected_mscc", "yield"] >= 0.05
    assert table.loc["progressive_deficit", "yield"] >= 0.10
    out = rules.triage(split.frame, **_bayes(p, cause))
    text = edges_markdown({"bayes": edge_figures(split.frame, out, p, URGENT_PROBABILITY)}, table)
    assert "nan" not in text and "`model_urgent`" in text


def test_a_hand_made_trigger_table() -> None:
    # three rules' worth of columns would need the real rules: use the real rule count
    k = len(rules.URGENCY_RULES)
    fired = np.zeros((4, k), dtype=bool)
    fev = [r.code for r in rules.URGENCY_RULES].index("fever")
    ces = [r.code for r in rules.URGENCY_RULES].index("cauda_equina_sign")
    fired[0, fev] = fired[1, fev] = True
    fired[1, ces] = True  # fever is not what sets this case's tier or timeframe
    table = trigger_yields(fired, np.array([1, 0, 0, 0]), np.array([True, True, False, False]))
    assert table.loc["fever", "covers"] == pytest.approx(0.5)
    assert table.loc["fever", "moves"] == pytest.approx(0.25)
    assert table.loc["fever", "yield"] == pytest.approx(0.5)


# --------------------------------------------------------------------------------------------
# What the output says first
# --------------------------------------------------------------------------------------------


def test_the_suspected_condition_leads_and_the_causes_are_secondary() -> None:
    pred = make_prediction(
        urgency="emergency",
        urgency_timeframe="now",
        urgency_triggers=["cauda_equina_sign"],
        suspected_conditions=["cauda_equina"],
        advice_codes=["emergency_assessment", "ask_red_flag_questions"],
        advice=["Go to an emergency department now.", "Ask the unanswered questions."],
        advice_audiences=["patient", "clinician"],
    )
    text = " ".join(explain(pred).split())  # one line: wrapping does not matter here
    assert text.index("Suspected: cauda equina syndrome") < text.index("spinal stenosis")
    assert "do not cover cauda equina" in text and "(secondary)" in text
    patient, clinician = text.index("For the patient:"), text.index("For the clinician:")
    assert patient < text.index("Go to an emergency") < clinician
    assert clinician < text.index("Ask the unanswered")


def test_bilateral_sensory_symptoms_are_asked_about_and_not_reassured() -> None:
    case = NO_FLAGS | {
        "age": 41,
        "sides": "both",
        "below_knee": True,
        "pain_quality": "sharp_electric",
        "numbness": True,
        "duration_weeks": 14,
    }
    out = rules.triage(validate_case(case))
    assert "ask_cauda_equina_questions" in out["advice_codes"]
    assert "not inherently dangerous" not in out["urgency_action"]
    assert "chronic_pain" not in out["advice_codes"]
    worse = rules.triage(validate_case(case | {"progressive_symptoms": True}))
    assert worse["urgency"] == "emergency"  # bilateral symptoms getting worse


def test_a_deficit_whose_course_was_not_asked_is_asked_about() -> None:
    out = rules.triage(validate_case(NO_FLAGS | {"age": 50, "weakness": True}))
    assert "ask_about_progression" in out["advice_codes"]
    assert "not inherently dangerous" not in out["urgency_action"]


def test_the_safety_net_times_each_flag_as_its_rule_does() -> None:
    net = rules.ADVICE_TEXT["safety_net"]
    fever = rules.FACTS.red_flag("fever").return_if
    assert net.index("See a doctor today") < net.index(fever) < net.index("within days")


def test_the_model_s_unnamed_alert_is_named_only_when_nothing_more_specific_fired() -> None:
    both = make_prediction(
        urgency="urgent",
        urgency_timeframe="within days",
        urgency_triggers=["progressive_deficit", "model_urgent"],
        suspected_conditions=["progressive_deficit", "unspecified"],
    )
    text = " ".join(explain(both).split())
    assert "Suspected: a progressive neurological deficit." in text
    assert "the model's estimate; no sign reported" not in text
    alone = make_prediction(
        urgency="urgent", urgency_triggers=["model_urgent"], suspected_conditions=["unspecified"]
    )
    assert "the model's estimate; no sign reported" in " ".join(explain(alone).split())
