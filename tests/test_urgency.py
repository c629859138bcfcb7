"""Urgency tiers and advice: the rules' properties, the triage facts, and the tiers' figures.

No trained model is needed here: the model enters the tiers only through its decision
(``red_flag_model``) and its most likely cause, which the properties draw at random. The trained
model's tiers are checked in tests/test_serve.py (golden cases) and tests/test_training.py.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vignettes
from model import rules
from model.intake import validate_case, validate_frame
from model.triage import RED_FLAG_COST_RATIO, cost_ratio_threshold
from training.metrics import served_tiers, urgency_metrics, urgency_tradeoff
from vignettes.article import TIMEFRAMES, URGENCY_TIERS, load_article, parse_article
from vignettes.knowledge import KnowledgeError
from vignettes.schema import CAUSES, FIELD_NAMES, FIELDS, RED_FLAG_FIELDS

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CONSERVATIVE = ("conservative_care", "activity_modification", "physical_therapy", "safety_net")
REASSURANCE = ("conservative_care", "chronic_pain", "activity_modification", "physical_therapy")
EMERGENCY_SIGNS = ("bladder_bowel_dysfunction", "saddle_numbness")
URGENT_SIGNS = ("progressive_weakness", "fever", "cancer_history")
TIMES = (*TIMEFRAMES, None)


def _value(field: Any) -> st.SearchStrategy[Any]:
    if field.kind == "bool":
        return st.booleans()
    if field.kind == "category":
        return st.sampled_from(field.values)
    if field.name == "age":
        return st.integers(18, 100)
    return st.integers(0, 200)  # duration_weeks


def cases() -> st.SearchStrategy[dict[str, Any]]:
    """Valid intakes: age, and any subset of the other fields with valid values.

    ``fixed_dictionaries`` with optional keys: a property that does nothing with its case ran
    its 300 examples in 0.7 s (2.3 ms each), against 1.1 s (3.7 ms) with a composite strategy
    drawing a presence flag and then a value per field. It reaches the same cases and shrinks
    towards fewer fields.
    """
    optional = {f.name: _value(f) for f in FIELDS if f.name != "age"}
    return st.fixed_dictionaries({"age": st.integers(18, 100)}, optional=optional).map(
        validate_case
    )


model_flags = st.booleans()
likely_causes = st.sampled_from(CAUSES) | st.none()


def _tier(name: str) -> int:
    return URGENCY_TIERS.index(name)


# --------------------------------------------------------------------------------------------
# Properties of the tiers
# --------------------------------------------------------------------------------------------


@SETTINGS
@given(case=cases(), model=model_flags, cause=likely_causes)
def test_any_reported_sign_is_emergency_or_urgent(case: dict, model: bool, cause: Any) -> None:
    out = rules.triage(case, model, cause)
    reported = [f for f in RED_FLAG_FIELDS if case.get(f) is True]
    tier = _tier(out["urgency"])
    if any(case.get(f) is True for f in EMERGENCY_SIGNS):
        assert out["urgency"] == "emergency"
        assert out["next_step"] == "emergency_assessment"
    elif any(case.get(f) is True for f in URGENT_SIGNS):
        assert tier <= _tier("urgent")
        assert out["next_step"] in ("emergency_assessment", "urgent_evaluation")
    elif model or case.get("unexplained_weight_loss") is True:
        assert tier <= _tier("review")  # weight loss alone: review within 2 weeks (NG12)
    if out["urgency"] == "routine":
        assert out["urgency_triggers"] == [] and out["urgency_timeframe"] is None
    else:
        assert out["urgency_triggers"] and out["urgency_timeframe"] in TIMEFRAMES
        assert out["urgency_timeframe_source"]
    assert out["red_flags_fired"] == reported
    assert out["red_flag"] == (out["urgency"] != "routine")


@SETTINGS
@given(case=cases(), cause=likely_causes)
def test_the_model_never_lowers_a_tier(case: dict, cause: Any) -> None:
    without = rules.triage(case, False, cause)
    review = rules.triage(case, True, cause)
    urgent = rules.triage(case, True, cause, red_flag_urgent=True)
    assert _tier(urgent["urgency"]) <= _tier(review["urgency"]) <= _tier(without["urgency"])
    assert _tier(review["urgency"]) <= _tier("review")
    assert _tier(urgent["urgency"]) <= _tier("urgent")
    times = [TIMES.index(o["urgency_timeframe"]) for o in (without, review, urgent)]
    assert times[2] <= times[1] <= times[0]
    if without["urgency"] in ("emergency", "urgent"):
        assert review["urgency"] == without["urgency"]  # the review alert adds nothing on top


POSITIVE_FINDINGS = (
    {"weakness": True},
    {"reflex_changes": True},
    {"progressive_symptoms": True},
    {"sides": "both"},
    *({flag: True} for flag in RED_FLAG_FIELDS),
)


@SETTINGS
@given(
    case=cases(),
    finding=st.sampled_from(POSITIVE_FINDINGS),
    model=model_flags,
    cause=likely_causes,
)
def test_a_positive_finding_never_lowers_the_tier_or_lengthens_the_timeframe(
    case: dict, finding: dict, model: bool, cause: Any
) -> None:
    before = rules.triage(case, model, cause)
    after = rules.triage(validate_case(case | finding), model, cause)
    assert _tier(after["urgency"]) <= _tier(before["urgency"]), finding
    assert TIMES.index(after["urgency_timeframe"]) <= TIMES.index(before["urgency_timeframe"])


@SETTINGS
@given(case=cases(), model=model_flags, cause=likely_causes)
def test_review_and_routine_carry_conservative_care_and_safety_netting(
    case: dict, model: bool, cause: Any
) -> None:
    out = rules.triage(case, model, cause)
    codes = out["advice_codes"]
    unanswered = [f for f in RED_FLAG_FIELDS if case.get(f) is None]
    if out["urgency"] in ("review", "routine") and not unanswered:
        assert set(CONSERVATIVE) <= set(codes)
        assert not any("immediate" in text.lower() for text in out["advice"])
        assert "immediate" not in out["urgency_action"].lower()
    elif out["urgency"] in ("emergency", "urgent"):
        # evaluation first: no treatment advice before a red flag is assessed
        assert "conservative_care" not in codes and "epidural_steroid_injection" not in codes
    # every tier below emergency carries safety-netting, urgent included
    assert ("safety_net" in codes) == (out["urgency"] != "emergency")
    model_review = "model_review" in out["urgency_triggers"] and out["urgency"] == "review"
    assert ("clinician_review" in codes) == model_review
    assert out["red_flag_questions_unanswered"] == unanswered
    assert ("ask_red_flag_questions" in codes) == bool(unanswered)
    assert out["advice"] == [rules.ADVICE_TEXT[c] for c in codes]
    assert out["advice_audiences"] == [rules.ADVICE_AUDIENCE[c] for c in codes]


@SETTINGS
@given(case=cases(), model=model_flags, cause=likely_causes)
def test_no_reassurance_before_the_screen_is_complete(case: dict, model: bool, cause: Any) -> None:
    out = rules.triage(case, model, cause)
    answered = [case.get(f) is not None for f in RED_FLAG_FIELDS]
    screen = "complete" if all(answered) else "partial" if any(answered) else "none"
    assert out["red_flag_screen"] == screen
    if screen != "complete":
        assert out["advice_codes"][0] == "ask_red_flag_questions"
        assert not set(REASSURANCE) & set(out["advice_codes"])
        assert "not inherently dangerous" not in out["urgency_action"]


@SETTINGS
@given(case=cases(), model=model_flags, cause=likely_causes)
def test_epidural_injection_only_for_radicular_pain_that_failed_conservative_care(
    case: dict, model: bool, cause: Any
) -> None:
    out = rules.triage(case, model, cause)
    if "epidural_steroid_injection" in out["advice_codes"]:
        assert out["pain_mechanism"] == "neurological"
        assert case.get("conservative_care_failed") is True
        # NICE NG59: not for neurogenic claudication from central canal stenosis (the pattern,
        # whatever the top cause); nothing to inject outside the spine (piriformis) or without
        # a nerve (mechanical pain)
        assert cause not in ("spinal_stenosis", "piriformis_syndrome", "mechanical_pain")
        claudication = case.get("worse_walking") is True and (
            case.get("better_sitting") is True or case.get("better_bending_forward") is True
        )
        assert not claudication
        # never before infection and malignancy are excluded: every red-flag question answered
        # no, and no model alert of a serious condition
        assert all(case.get(f) is False for f in RED_FLAG_FIELDS), case
        assert not model


@SETTINGS
@given(case=cases(), model=model_flags, cause=likely_causes)
def test_surgery_only_on_the_article_conditions_and_never_early_without_a_deficit(
    case: dict, model: bool, cause: Any
) -> None:
    out = rules.triage(case, model, cause)
    if "surgery" not in out["advice_codes"]:
        return
    deficit = case.get("progressive_weakness") is True or (
        case.get("progressive_symptoms") is True
        and (case.get("weakness") is True or case.get("reflex_changes") is True)
    )
    if not deficit:
        assert case.get("conservative_care_failed") is True
        assert case.get("duration_weeks") is not None and case["duration_weeks"] >= 6
        assert cause not in ("piriformis_syndrome", "mechanical_pain")


@SETTINGS
@given(case=cases(), model=model_flags, cause=likely_causes)
def test_mri_on_file_is_read_in_context_never_repeated(case: dict, model: bool, cause: Any) -> None:
    out = rules.triage(case, model, cause)
    imaged = case.get("mri_finding") not in (None, "not_done")
    codes = out["advice_codes"]
    worse = any(case.get(f) is True for f in ("progressive_symptoms", "progressive_weakness"))
    reported = any(case.get(f) is True for f in RED_FLAG_FIELDS)
    if out["urgency"] in ("review", "routine"):
        # "do not repeat it" only when nothing has changed since: no progression, no red flag
        assert ("mri_in_context" in codes) == (imaged and not worse and not reported)
        if imaged:
            assert "mri" not in codes
            assert out["next_step"] != "imaging_and_specialist_review"
    else:  # an old scan rules out neither cauda equina, infection nor a new deficit
        assert "mri_in_context" not in codes


@SETTINGS
@given(case=cases(), model=model_flags, cause=likely_causes)
def test_chronic_pain_advice_follows_the_course(case: dict, model: bool, cause: Any) -> None:
    out = rules.triage(case, model, cause)
    weeks = case.get("duration_weeks")
    chronic = weeks is not None and weeks >= 12
    worse = any(case.get(f) is True for f in ("progressive_symptoms", "progressive_weakness"))
    flagged = any(case.get(f) is not False for f in RED_FLAG_FIELDS)  # reported or unasked
    # structural damage not ruled out: getting worse, a red flag reported or unasked, a motor or
    # reflex deficit, or the model's alert (article.toml's advice.chronic_pain, unless_any)
    deficit = any(case.get(f) is True for f in ("weakness", "reflex_changes"))
    withheld = worse or flagged or deficit or model
    if out["urgency"] in ("review", "routine"):
        given = "chronic_pain" in out["advice_codes"]
        if withheld or not chronic:
            assert not given
        elif case.get("sides") != "both":  # pain in both legs may withhold it too (bilateral)
            assert given
        if weeks is not None and weeks >= 6:
            assert "review_if_not_improving" not in out["advice_codes"]
            assert "review_now" in out["advice_codes"]  # no one past 6 weeks left without it
    if out["urgency"] == "review":  # reviewed within 2 weeks: never "a review by 6-8 weeks"
        assert not any("6-8 weeks" in text for text in out["advice"]), out["advice_codes"]


@SETTINGS
@given(case=cases(), model=model_flags, data=st.data())
def test_a_review_tells_the_patient_when_in_one_line_of_their_own(
    case: dict, model: bool, data: st.DataObject
) -> None:
    """Every review-tier case gives the patient its 2 weeks in one line addressed to them (not
    only in the safety net's list of signs): a "don't know" and the model's alert as well as
    weight loss, and never in a tier that is not review. A fever "don't know" also tells them
    to take their temperature."""
    unknown = [f for f in RED_FLAG_FIELDS if case.get(f) is None]
    dont_know = data.draw(st.lists(st.sampled_from(unknown), unique=True)) if unknown else []
    out = rules.triage(case, model, None, red_flag_dont_know=dont_know)
    own = [
        text
        for code, text, audience in zip(
            out["advice_codes"], out["advice"], out["advice_audiences"], strict=True
        )
        if audience == "patient" and code != "safety_net" and "within 2 weeks" in text
    ]
    assert len(own) == (out["urgency"] == "review"), (out["urgency_triggers"], own)
    # not sure about a fever: told to take their temperature, below an emergency
    checks = "check_temperature" in out["advice_codes"]
    assert checks == ("fever" in dont_know and out["urgency"] in ("urgent", "review"))


def test_the_frame_gives_each_row_what_the_case_gives() -> None:
    frame = validate_frame(vignettes.generate(1_500, seed=5))
    rng = np.random.default_rng(0)
    model = rng.random(len(frame)) < 0.3
    urgent = model & (rng.random(len(frame)) < 0.3)
    cause = np.asarray(CAUSES, dtype=object)[rng.integers(0, len(CAUSES), len(frame))]
    batch = rules.triage(frame, model, cause, urgent)
    for i, (_, row) in enumerate(frame.iterrows()):
        one = rules.triage(validate_case(row), bool(model[i]), str(cause[i]), bool(urgent[i]))
        for key in rules.TRIAGE_KEYS:
            expected = batch[key][i]
            expected = expected.item() if hasattr(expected, "item") else expected
            assert one[key] == expected, (key, i)


# --------------------------------------------------------------------------------------------
# The facts file
# --------------------------------------------------------------------------------------------


def test_every_fact_is_sourced_and_every_condition_known() -> None:
    facts = load_article()
    assert [f.field for f in facts.red_flags] == list(RED_FLAG_FIELDS)
    tiers = rules.RED_FLAG_TIER
    assert {f for f, t in tiers.items() if t == "emergency"} == set(EMERGENCY_SIGNS)
    assert {f for f, t in tiers.items() if t == "urgent"} == set(URGENT_SIGNS)
    for item in facts.advice:
        assert item.source.strip() and item.text.strip()
        assert item.audience in ("patient", "clinician")
        assert set(item.conditions) <= set(rules.CONDITIONS) | set(FIELD_NAMES), item.code
    for rule in facts.urgency_rules:
        assert rule.source.strip() and rule.action.strip() and rule.timeframe in TIMEFRAMES
    assert set(facts.sources) >= set(facts.predicates)
    assert {"epidural_steroid_injection", "surgery", "safety_net"} <= set(rules.ADVICE_CODES)
    net = rules.ADVICE_TEXT["safety_net"]
    emergency, rest = net.split("See a doctor today")
    today, later = rest.split("See a doctor promptly, within days,")
    days, two_weeks = later.split("See a doctor within 2 weeks")
    for flag in facts.red_flags:  # safety-netting names every red flag, in its own timeframe
        when = rules.RED_FLAG_TIMEFRAME[flag.field]
        part = {"now": emergency, "same day": today, "within days": days}.get(when, two_weeks)
        assert flag.return_if in part, flag.field
        assert net.count(flag.return_if) == 1, flag.field  # once: never two timeframes
    assert rules.RED_FLAG_TIMEFRAME["unexplained_weight_loss"] == "within 2 weeks"
    assert "cancer" in emergency  # NICE NG234: new neurology after cancer, at once
    # the early cauda equina signs of the GIRFT/BASS card, not only the late ones
    for words in ("weak stream", "wipe", "sexual", "both legs", "cannot pass urine"):
        assert words in emergency, words


def _doc() -> dict[str, Any]:
    import tomllib

    from vignettes.article import ARTICLE_PATH

    return tomllib.loads(ARTICLE_PATH.read_text())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["red_flags"]["fever"].pop("source"), "red_flags.fever: missing"),
        (lambda d: d["red_flags"]["fever"].update(tier="urgent"), "red_flags.fever: unknown"),
        (
            lambda d: d["urgency_rules"][4].update(timeframe="soonish"),
            "urgency_rules[4].timeframe: 'soonish'",
        ),
        (
            lambda d: d["urgency_rules"][4].update(when="feverr"),
            "urgency_rules[4] (fever).when: unknown condition 'feverr' (did you mean 'fever'?)",
        ),
        (
            lambda d: d["predicates"]["chronic"].update(
                when={"field": "duration_week", "op": "ge", "value": 12}
            ),
            "predicates.chronic.when.field: 'duration_week' is not an intake field",
        ),
        (
            lambda d: d["predicates"]["chronic"].update(
                when={"field": "duration_weeks", "op": "atleast", "value": 12}
            ),
            "predicates.chronic.when.op: 'atleast'",
        ),
        (
            lambda d: d["predicates"]["chronic"].update(
                when={"field": "sides", "op": "is", "value": "three"}
            ),
            "predicates.chronic.when: value 'three' is not allowed",
        ),
        (
            lambda d: d["predicates"]["motor_or_reflex_deficit"].update(
                when={"any": ["weakness", "progressive_deficit"]}
            ),
            "the conditions form a cycle",
        ),
        (
            lambda d: d["predicates"]["chronic"].update(when={"every": ["fever"]}),
            "predicates.chronic.when: unknown condition keys ['every']",
        ),
        (
            lambda d: d["advice"]["surgery"].update(when_any=["progresive_deficit"]),
            "advice.surgery: unknown condition 'progresive_deficit'",
        ),
        (lambda d: d["advice"]["surgery"].update(audience="family"), "advice.surgery.audience"),
        (lambda d: d["advice"]["surgery"].update(tiers=["soon"]), "advice.surgery.tiers"),
        (lambda d: d["advice"]["surgery"].update(whenall=[]), "unknown keys"),
        (lambda d: d["red_flags"].pop("fever"), "one entry per red-flag field"),
        (lambda d: d["urgency"].pop("review"), "urgency: expected the tiers"),
        (
            lambda d: d["pain_regions"]["front_of_thigh"].update(root="L9"),
            "pain_regions.front_of_thigh.root",
        ),
        (
            lambda d: d["rules_baseline"]["rules"][0].update(field="worse_coughing"),
            "rules_baseline.rules[0].field",
        ),
        (
            lambda d: d["rules_baseline"]["rules"][0].update(value="very"),
            "rules_baseline.rules[0].value",
        ),
        (
            lambda d: d["rules_baseline"]["rules"][0].update(cause="sciatica"),
            "rules_baseline.rules[0].cause",
        ),
        (
            lambda d: d["rules_baseline"]["mri_background"].update(degenerative_changes=[0.5]),
            "rules_baseline.mri_background.degenerative_changes",
        ),
        (lambda d: d["mri_criteria"]["surgery_considered"].pop("source"), "mri_criteria"),
    ],
)
def test_a_malformed_facts_file_is_refused_naming_the_table(change: Any, message: str) -> None:
    doc = _doc()
    change(doc)
    with pytest.raises(KnowledgeError, match=re.escape(message)):
        parse_article(doc)


# --------------------------------------------------------------------------------------------
# The tiers' figures: metrics code, and the Bayes policy on fresh vignettes
# --------------------------------------------------------------------------------------------


def test_urgency_metrics_count_by_hand() -> None:
    #                 emergency urgent routine-by-rule x4
    sign_tier = np.array([0, 1, 3, 3, 3, 3])
    p = np.array([0.0, 0.0, 0.5, 0.02, 0.001, 0.02])
    serious = np.array([1, 0, 2, 0, 3, 0])
    answered_no = np.array([False, False, True, True, True, False])
    m = urgency_metrics(p, 0.01, sign_tier, serious, answered_no)
    # the upper threshold (0.10) raises the silent case at p = 0.5 to urgent
    assert served_tiers(p, 0.01, sign_tier).tolist() == [0, 1, 1, 2, 3, 2]
    assert served_tiers(p, 0.01, sign_tier, urgent_threshold=None).tolist() == [0, 1, 2, 2, 3, 2]
    m = urgency_metrics(p, 0.01, sign_tier, serious, answered_no, urgent_threshold=None)
    assert m["tier_share_review"] == pytest.approx(3 / 6)
    assert m["caught"] == pytest.approx(2 / 3)  # the one at p=0.001 is missed
    assert m["ppv_review"] == pytest.approx(1 / 3)
    assert m["answered_no_routine"] == pytest.approx(1 / 3)
    assert m["answered_no_urgent"] == 0.0
    curve = urgency_tradeoff(p, sign_tier, serious, np.array([1.0, 99.0, 10_000.0]))
    assert curve["flagged"].tolist() == pytest.approx([3 / 6, 5 / 6, 1.0])
    assert curve["caught"].tolist() == pytest.approx([2 / 3, 2 / 3, 1.0])


def test_cost_ratio_threshold() -> None:
    assert cost_ratio_threshold(RED_FLAG_COST_RATIO) == pytest.approx(1 / 101)
    with pytest.raises(ValueError, match="cost_ratio"):
        cost_ratio_threshold(0)


@pytest.fixture(scope="module")
def population() -> tuple[pd.DataFrame, np.ndarray]:
    df = vignettes.generate(100_000, seed=21)
    return df, vignettes.posterior(df)["red_flag"].to_numpy()


def test_the_bayes_policy_meets_the_targets_at_the_default_cost_ratio(population) -> None:
    """The generator's own ceiling must allow the issue's targets (100,000 fresh cases)."""
    df, p = population
    from training.candidates import Split

    s = Split(df)
    m = urgency_metrics(
        p, cost_ratio_threshold(RED_FLAG_COST_RATIO), s.sign_tier, s.serious, s.answered_no
    )
    assert m["answered_no_routine"] >= 0.75
    # the answer-based rules (a deficit getting worse, bilateral radicular pain with a deficit)
    # send some screened patients to urgent on purpose: 4.7% measured on these cases
    assert m["answered_no_urgent"] <= 0.06
    assert m["caught"] >= 0.85
    assert m["tier_share_routine"] >= 0.6  # the article: red-flag cases "are rare"
    # alerts raised without a reported sign, by the answer-based rules and the model together,
    # are right at least 3% of the time (NICE NG12's bar); the model's share alone is lower.
    # Both legs with a measurable deficit are suspected cauda equina whatever the pain is like
    # (a clinician's choice: never reassure a bilateral deficit), at a lower yield of their own
    # (2.4% measured on 200,000 vignettes): they are held to 2%, the rest to NG12's 3%.
    tier = served_tiers(p, cost_ratio_threshold(RED_FLAG_COST_RATIO), s.sign_tier)
    codes = [r.code for r in rules.URGENCY_RULES]
    bilateral = rules.fired_rules(validate_frame(df))[:, codes.index("suspected_cauda_equina")]
    silent_alert = (tier < URGENCY_TIERS.index("routine")) & ~s.fired
    assert (s.serious[silent_alert & ~bilateral] > 0).mean() >= 0.03
    assert (s.serious[silent_alert & bilateral] > 0).mean() >= 0.02


def test_every_cauda_equina_case_with_a_reported_sign_is_an_emergency(population) -> None:
    df, _ = population
    tier = rules.urgency(df)
    cauda = df["serious_condition"].eq("cauda_equina").to_numpy()
    sign = np.column_stack([df[f].eq(True).fillna(False) for f in EMERGENCY_SIGNS]).any(axis=1)
    assert (cauda & sign).sum() > 100
    assert (tier[cauda & sign] == "emergency").all()


def test_sign_rates_follow_deyo_1992(population) -> None:
    """Sensitivities and likelihood ratios near Deyo, Rainville & Kent, JAMA 1992."""
    df, _ = population
    sc = df["serious_condition"]

    def rate(field: str, mask: pd.Series) -> float:
        answered = df[field].notna() & mask
        return float(df.loc[answered, field].astype(bool).mean())

    malignancy, none = sc.eq("malignancy"), sc.eq("none")
    assert rate("cancer_history", malignancy) == pytest.approx(0.31, abs=0.06)
    lr = rate("unexplained_weight_loss", malignancy) / rate("unexplained_weight_loss", none)
    # The knowledge base's value is 0.154 / 0.06 = 2.6 (Deyo: ~2.5); ~450 answered malignancy
    # cases in 100,000 rows give a standard error of ~0.3: the bounds allow 3 of them.
    assert 1.6 <= lr <= 3.5
    assert rate("bladder_bowel_dysfunction", sc.eq("cauda_equina")) == pytest.approx(0.9, abs=0.05)
