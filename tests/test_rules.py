"""The article's rules: nerve roots, red flags, pain mechanism, MRI, next step, cause points."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

import vignettes
from model.intake import IntakeError, validate_case, validate_frame
from model.rules import (
    ADVICE_TEXT,
    DERMATOME_ROOT,
    MECHANISMS,
    MRI_REASON_TEXT,
    NEXT_STEPS,
    RED_FLAG_TEXT,
    SCIATIC_TERRITORY,
    TRIAGE_KEYS,
    any_red_flag,
    dermatome_root,
    fired_red_flags,
    mechanism_scores,
    mri_indication,
    nerve_territory,
    next_step,
    pain_mechanism,
    red_flag_rules,
    red_flags_unasked,
    triage,
)
from training.article_rules import CAUSE_RULES, ArticleRulesClassifier, cause_points
from vignettes.schema import CAUSES, FIELD_BY_NAME, FIELD_NAMES, PAIN_REGIONS, RED_FLAG_FIELDS


def cases(*rows: dict[str, Any]) -> pd.DataFrame:
    """Validated frame of hand-written cases (age 45 unless given)."""
    return validate_frame(pd.DataFrame([{"age": 45} | row for row in rows]))


@pytest.fixture(scope="module")
def generated() -> pd.DataFrame:
    return vignettes.generate(50_000, seed=17)


# --------------------------------------------------------------------------------------------
# Nerve roots
# --------------------------------------------------------------------------------------------


def test_dermatome_table_is_the_articles() -> None:
    assert DERMATOME_ROOT == {
        "front_of_thigh": "L2-L3",
        "knee_inner_leg": "L3-L4",
        "outer_leg_big_toe": "L5",
        "back_of_leg_heel": "S1",
        "outer_foot": "S1-S2",
    }
    assert set(DERMATOME_ROOT) == set(PAIN_REGIONS) - {"back_only", "buttock_thigh"}
    regions = pd.Series([*PAIN_REGIONS, None], index=list("abcdefgh"))
    roots = dermatome_root(
        regions.astype(vignettes.schema.pandas_dtype(FIELD_BY_NAME["pain_region"]))
    )
    assert roots.index.equals(regions.index)
    assert roots.isna().tolist() == [True, True, False, False, False, False, False, True]
    assert roots.dropna().tolist() == ["L2-L3", "L3-L4", "L5", "S1", "S1-S2"]
    assert dermatome_root(pd.Series(["outer_foot"])).tolist() == ["S1-S2"]


# --------------------------------------------------------------------------------------------
# Red flags
# --------------------------------------------------------------------------------------------

red_flag_answers = st.fixed_dictionaries(
    {name: st.none() | st.booleans() for name in RED_FLAG_FIELDS}
)


WEIGHT_LOSS = "unexplained_weight_loss"


@settings(max_examples=40, deadline=None)
@given(st.lists(red_flag_answers, min_size=1, max_size=8))
def test_red_flags_fire_only_on_true(answers: list[dict[str, bool | None]]) -> None:
    df = cases(*answers)
    fired = red_flag_rules(df)
    assert list(fired.columns) == list(RED_FLAG_FIELDS)
    assert all(dtype == np.dtype(bool) for dtype in fired.dtypes)
    names, unasked = fired_red_flags(df), red_flags_unasked(df).tolist()
    tiers = next_step(df)["urgency"].tolist()
    for i, row in enumerate(answers):
        assert fired.iloc[i].tolist() == [row[name] is True for name in RED_FLAG_FIELDS]
        assert names[i] == [name for name in RED_FLAG_FIELDS if row[name] is True]
        assert unasked[i] == all(row[name] is None for name in RED_FLAG_FIELDS)
        emergency = any(row[name] is True for name in RED_FLAG_FIELDS[:2])
        # cancer with a progressive deficit: suspected spinal cord compression (NICE NG234)
        emergency |= row["cancer_history"] is True and row["progressive_weakness"] is True
        # weight loss alone is a review within 2 weeks (NICE NG12), the other flags urgent
        urgent = any(row[name] is True for name in RED_FLAG_FIELDS[2:] if name != WEIGHT_LOSS)
        review = row[WEIGHT_LOSS] is True
        expected = "emergency" if emergency else "urgent" if urgent else "review"
        assert tiers[i] == (expected if emergency or urgent or review else "routine")


def test_red_flags_on_generated_cases(generated: pd.DataFrame) -> None:
    df = generated.iloc[:5_000]
    expected = df[list(RED_FLAG_FIELDS)].fillna(False).astype(bool)
    pd.testing.assert_frame_equal(red_flag_rules(df), expected)
    assert set(RED_FLAG_TEXT) == set(RED_FLAG_FIELDS)
    steps = next_step(df)["next_step"]
    emergency = expected[["bladder_bowel_dysfunction", "saddle_numbness"]].any(axis=1)
    assert (steps[emergency] == "emergency_assessment").all()
    urgent_sign = expected.drop(columns=WEIGHT_LOSS).any(axis=1) & ~emergency
    # an urgent sign is urgent at least (with cancer and a deficit: emergency, NICE NG234)
    assert steps[urgent_sign].isin(["urgent_evaluation", "emergency_assessment"]).all()


# --------------------------------------------------------------------------------------------
# Mechanical vs neurological pain
# --------------------------------------------------------------------------------------------


def test_pain_mechanism_textbook_cases() -> None:
    neuro = {
        "pain_quality": "sharp_electric",
        "below_knee": True,
        "numbness": True,
        "worse_at_night": True,
    }
    mech = {"pain_quality": "dull_aching", "better_rest_movement": True, "pain_region": "back_only"}
    df = cases(
        neuro,
        mech,
        {"pain_quality": "burning", "tingling": True},
        neuro | {"better_rest_movement": True, "pain_region": "back_only"},
        {"pain_quality": "heaviness_fatigue"},
        {"below_knee": True, "better_rest_movement": True},
    )
    assert pain_mechanism(df).tolist() == [
        "neurological",
        "mechanical",
        "neurological",
        "mixed",
        "unclear",
        "mixed",
    ]
    assert mechanism_scores(df).iloc[0].tolist() == [4, 0]
    assert list(pain_mechanism(df).cat.categories) == list(MECHANISMS)


def test_neurological_pain_tracks_a_compressed_root(generated: pd.DataFrame) -> None:
    root = generated["nerve_root"] != "none"
    mechanism = pain_mechanism(generated)
    assert root[mechanism == "neurological"].mean() > 0.85
    assert root[mechanism == "mechanical"].mean() < 0.15


# --------------------------------------------------------------------------------------------
# MRI
# --------------------------------------------------------------------------------------------


def test_mri_criteria_textbook_cases() -> None:
    disabling = {
        "conservative_care_failed": True,
        "leg_pain_worse_than_back": True,
        "pain_quality": "sharp_electric",
        "below_knee": True,
    }
    df = cases(
        {"duration_weeks": 8, "conservative_care_failed": True, "below_knee": True},
        {"duration_weeks": 4, "conservative_care_failed": True},
        {"duration_weeks": 8},
        {"progressive_weakness": True},
        {"progressive_symptoms": True, "reflex_changes": True},
        {"progressive_symptoms": True},
        disabling | {"duration_weeks": 8},
        {"fever": True},
        {"mri_finding": "disc_herniation"},
        {"mri_finding": "not_done"},
        {},
        disabling | {"duration_weeks": 3},  # never surgery in the first weeks without a deficit
    )
    indicated, reasons = mri_indication(df)
    assert indicated.tolist() == [
        True,
        False,
        False,
        True,
        True,
        False,
        True,
        True,
        False,
        False,
        False,
        False,
    ]
    assert reasons[0] == ["persistent_beyond_6_8_weeks"]
    assert reasons[3] == [
        "progressive_neurological_deficit",
        "surgery_considered",
        "red_flags_present",
    ]
    assert reasons[4] == ["progressive_neurological_deficit", "surgery_considered"]
    assert reasons[6] == ["persistent_beyond_6_8_weeks", "surgery_considered"]
    assert reasons[11] == []
    assert reasons[7] == ["red_flags_present"]
    assert reasons[8] == ["already_imaged"]  # information only: not indicated
    assert reasons[9] == reasons[10] == []
    assert all(code in MRI_REASON_TEXT for row in reasons for code in row)
    # NICE NG59 1.1.4: a mechanical pattern is not imaged for persisting, radiating pain is
    mechanical = {"pain_quality": "dull_aching", "better_rest_movement": True}
    persisting = {"duration_weeks": 10, "conservative_care_failed": True}
    indicated, _ = mri_indication(cases(mechanical | persisting, persisting))
    assert indicated.tolist() == [False, False]


def test_external_red_flag_decision_counts() -> None:
    df = cases({}, {})
    indicated, reasons = mri_indication(df, red_flag=pd.Series([True, False]))
    assert indicated.tolist() == [True, False]
    assert reasons[0] == ["red_flags_present"]
    steps = next_step(df, red_flag=pd.Series([True, False]))["next_step"].tolist()
    assert steps == ["clinician_review", "conservative_care"]  # the model alone: review
    with pytest.raises(ValueError, match="red_flag"):
        next_step(df, red_flag=pd.Series([True]))
    given_mri = next_step(df, mri_indicated=pd.Series([False, True], index=[7, 8]))
    assert given_mri["next_step"].tolist() == ["conservative_care", "imaging_and_specialist_review"]


# --------------------------------------------------------------------------------------------
# Next step
# --------------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(RED_FLAG_FIELDS), st.booleans())
def test_any_red_flag_means_urgent_evaluation(flag: str, imaging: bool) -> None:
    other = {"duration_weeks": 10, "conservative_care_failed": True} if imaging else {}
    out = next_step(cases(other | {flag: True}))
    emergency = flag in ("bladder_bowel_dysfunction", "saddle_numbness")
    tier = "emergency" if emergency else "review" if flag == WEIGHT_LOSS else "urgent"
    assert out["urgency"].iloc[0] == tier
    step = {"emergency": "emergency_assessment", "urgent": "urgent_evaluation"}
    assert out["next_step"].iloc[0] == step.get(tier, "clinician_review")
    first = {"emergency": "emergency_assessment", "urgent": "urgent_specialist_assessment"}
    # the other flags were not asked: asking them comes first, then the tier's own advice
    assert out["advice_codes"].iloc[0][:2] == [
        "ask_red_flag_questions",
        first.get(tier, "weight_loss_review"),
    ]


def test_next_step_options_follow_the_article() -> None:
    neuro = {"pain_quality": "burning", "below_knee": True, "tingling": True}
    no_flags = dict.fromkeys(RED_FLAG_FIELDS, False)
    df = cases(
        no_flags | {"pain_quality": "dull_aching", "better_rest_movement": True},
        no_flags | neuro | {"conservative_care_failed": True, "duration_weeks": 3},
        no_flags | neuro | {"conservative_care_failed": True, "duration_weeks": 9},
        no_flags | {"weakness": True, "progressive_symptoms": True},
        no_flags | neuro | {"conservative_care_failed": True, "duration_weeks": 9},
    )
    likely = ["mechanical_pain", "disc_herniation", "disc_herniation", None, "spinal_stenosis"]
    out = next_step(df, cause=likely)
    assert out["next_step"].tolist() == [
        "conservative_care",
        "conservative_care",
        "imaging_and_specialist_review",
        "urgent_evaluation",  # a deficit getting worse is urgent, whatever the flag box says
        "imaging_and_specialist_review",
    ]
    base = ["conservative_care", "activity_modification", "physical_therapy", "anti_inflammatory"]
    net = ["review_if_not_improving", "safety_net"]
    # the course of the tingling was not asked: that question comes first (checked in test_edges)
    codes = [[c for c in row if c != "ask_about_progression"] for row in out["advice_codes"]]
    assert codes[0] == [*base, "mechanical_focus", *net]
    assert codes[1] == [*base, "neurological_focus", "epidural_steroid_injection", *net]
    assert "epidural_steroid_injection" in codes[2] and "mri" in codes[2]
    assert "surgery" in codes[3]
    # NICE NG59: no epidural injection for neurogenic claudication from central stenosis
    assert "epidural_steroid_injection" not in codes[4]
    assert out["advice"].iloc[0] == [ADVICE_TEXT[c] for c in out["advice_codes"].iloc[0]]
    assert list(out["next_step"].cat.categories) == list(NEXT_STEPS)
    assert "surgery" not in codes[0] + codes[1]


# --------------------------------------------------------------------------------------------
# ArticleRulesClassifier
# --------------------------------------------------------------------------------------------

TEXTBOOK = {
    "spinal_stenosis": {
        "age": 72,
        "worse_walking": True,
        "worse_standing": True,
        "better_sitting": True,
        "better_bending_forward": True,
        "sides": "both",
        "pain_quality": "heaviness_fatigue",
    },
    "disc_herniation": {
        "age": 35,
        "pain_quality": "sharp_electric",
        "leg_pain_worse_than_back": True,
        "worse_sitting": True,
        "worse_bending_forward": True,
        "worse_cough_sneeze": True,
        "below_knee": True,
        "sides": "left",
        "pain_region": "back_of_leg_heel",
        "numbness": True,
    },
    "piriformis_syndrome": {
        "age": 44,
        "buttock_pain": True,
        "worse_sitting": True,
        "back_pain": False,
        "mri_finding": "normal",
        "sides": "right",
    },
    "mechanical_pain": {
        "age": 30,
        "pain_quality": "dull_aching",
        "better_rest_movement": True,
        "pain_region": "back_only",
        "below_knee": False,
        "numbness": False,
        "tingling": False,
        "weakness": False,
    },
    "foraminal_stenosis": {
        "age": 58,
        "sides": "left",
        "worse_extension": True,
        "pain_quality": "burning",
        "mri_finding": "foraminal_stenosis",
    },
    "spondylolisthesis": {
        "age": 60,
        "worse_standing": True,
        "worse_extension": True,
        "progressive_symptoms": True,
        "mri_finding": "spondylolisthesis",
    },
    "degenerative_disc_disease": {
        "age": 55,
        "back_pain": True,
        "pain_quality": "dull_aching",
        "mri_finding": "degenerative_changes",
    },
}


def test_textbook_cases_are_classified_right() -> None:
    df = validate_frame(pd.DataFrame(list(TEXTBOOK.values())))
    clf = ArticleRulesClassifier().fit(df)
    assert clf.predict(df).tolist() == list(TEXTBOOK)


def test_every_rule_names_a_cause_and_a_field_and_cites() -> None:
    for rule in CAUSE_RULES:
        assert rule.cause in CAUSES and rule.field in FIELD_NAMES and rule.source
    assert {rule.cause for rule in CAUSE_RULES} == set(CAUSES)


def test_probabilities_and_accuracy_against_the_bayes_ceiling(generated: pd.DataFrame) -> None:
    y = generated["cause"].astype(str).to_numpy()
    clf = ArticleRulesClassifier().fit(generated, y)
    proba = clf.predict_proba(generated)
    assert proba.shape == (len(generated), len(CAUSES))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    assert (proba > 0).all()
    accuracy = float(np.mean(clf.predict(generated) == y))
    majority = float(pd.Series(y).value_counts(normalize=True).iloc[0])
    posterior = vignettes.posterior(generated)[list(CAUSES)].to_numpy()
    bayes = float(np.mean(np.asarray(CAUSES)[posterior.argmax(axis=1)] == y))
    assert accuracy > majority + 0.25, (accuracy, majority)
    assert accuracy < bayes, (accuracy, bayes)


def test_red_flag_proba_follows_the_signs(generated: pd.DataFrame) -> None:
    df = generated.iloc[:3_000]
    clf = ArticleRulesClassifier(red_flag_baseline_proba=0.02).fit(df)
    fired = red_flag_rules(df).any(axis=1).to_numpy()
    np.testing.assert_array_equal(clf.predict_red_flag(df), fired)
    np.testing.assert_array_equal(clf.red_flag_proba(df), np.where(fired, 1.0, 0.02))


def test_fit_predict_round_trip(generated: pd.DataFrame) -> None:
    df = generated.iloc[:2_000]
    y = df["cause"].astype(str)
    with pytest.raises(NotFittedError):
        ArticleRulesClassifier().predict(df)
    clf = ArticleRulesClassifier(scale=0.8)
    assert clf.get_params()["scale"] == 0.8
    fitted = clf.fit(df, y)
    assert fitted is clf
    assert list(clf.classes_) == list(CAUSES)
    assert clf.n_features_in_ == len(FIELD_NAMES)
    assert list(clf.feature_names_in_) == list(FIELD_NAMES)
    twin = clone(clf).fit(df.sample(frac=1.0, random_state=1), y.sample(frac=1.0, random_state=1))
    restored = pickle.loads(pickle.dumps(clf))
    for other in (twin, restored):
        np.testing.assert_array_equal(other.predict_proba(df), clf.predict_proba(df))
    np.testing.assert_array_equal(clf.predict(df), clf.classes_[clf.predict_proba(df).argmax(1)])
    assert clf.score(df, y) == pytest.approx(np.mean(clf.predict(df) == y.to_numpy()))
    points = cause_points(validate_frame(df))
    assert list(points.columns) == list(CAUSES)
    with pytest.raises(IntakeError, match="cause"):
        ArticleRulesClassifier().fit(df, ["sciatica"] * len(df))
    with pytest.raises(IntakeError, match="fever"):
        clf.predict(df.assign(fever="yes"))


def test_unknown_answers_contribute_nothing() -> None:
    only_age = cases({"age": 40})
    assert (cause_points(only_age).to_numpy() == 0).all()
    proba = ArticleRulesClassifier().fit(only_age).predict_proba(only_age)
    np.testing.assert_allclose(proba, 1 / len(CAUSES))


# --------------------------------------------------------------------------------------------
# One case and a frame go through the same rules
# --------------------------------------------------------------------------------------------


def as_case(row: pd.Series) -> dict[str, Any]:
    """A generated row as ``validate_case`` returns it (plain values, ``None`` = unknown)."""
    return validate_case(row)


def test_every_rule_gives_a_case_what_it_gives_its_row(generated: pd.DataFrame) -> None:
    """Each public rule on one case (a dict) equals the same rule on a frame, row by row."""
    frame = validate_frame(generated.head(2_000))
    rng = np.random.default_rng(5)
    model_flag = rng.random(len(frame)) < 0.1
    indicated, reasons = mri_indication(frame, model_flag)
    on_frame = {
        "red_flag_rules": red_flag_rules(frame).to_dict("records"),
        "any_red_flag": any_red_flag(frame).tolist(),
        "fired_red_flags": fired_red_flags(frame),
        "red_flags_unasked": red_flags_unasked(frame).tolist(),
        "mechanism_scores": mechanism_scores(frame).to_dict("records"),
        "pain_mechanism": pain_mechanism(frame).astype(str).tolist(),
        "dermatome_root": dermatome_root(frame["pain_region"]).astype(object).tolist(),
        "mri_indication": list(zip(indicated.tolist(), reasons, strict=True)),
        "next_step": next_step(frame, red_flag=model_flag)
        .astype({"next_step": str, "urgency": str})
        .to_dict("records"),
    }
    batch = triage(frame, model_flag)
    assert set(batch) == set(TRIAGE_KEYS)
    for i, (_, row) in enumerate(frame.iterrows()):
        case = as_case(row)
        root = on_frame["dermatome_root"][i]
        assert red_flag_rules(case) == on_frame["red_flag_rules"][i]
        assert any_red_flag(case) == on_frame["any_red_flag"][i]
        assert fired_red_flags(case) == on_frame["fired_red_flags"][i]
        assert red_flags_unasked(case) == on_frame["red_flags_unasked"][i]
        assert mechanism_scores(case) == on_frame["mechanism_scores"][i]
        assert pain_mechanism(case) == on_frame["pain_mechanism"][i]
        assert dermatome_root(case["pain_region"]) == (None if pd.isna(root) else root)
        assert mri_indication(case, bool(model_flag[i])) == on_frame["mri_indication"][i]
        assert next_step(case, red_flag=bool(model_flag[i])) == on_frame["next_step"][i]
        one = triage(case, bool(model_flag[i]))
        for key in TRIAGE_KEYS:
            expected = batch[key][i]
            assert one[key] == (expected.item() if isinstance(expected, np.generic) else expected)


def test_case_rules_return_plain_python_values(generated: pd.DataFrame) -> None:
    case = as_case(validate_frame(generated.head(1)).iloc[0])
    out = triage(case, np.bool_(True))
    assert type(out["red_flag"]) is bool and out["red_flag"] is True  # the model's flag counts
    assert type(out["mri_indicated"]) is bool and type(out["red_flags_unasked"]) is bool
    assert type(out["pain_mechanism"]) is str and type(out["next_step"]) is str
    assert out["urgency"] in ("emergency", "urgent", "review")
    assert all(type(text) is str for text in out["advice"])


def test_one_case_with_a_sign_is_urgent_whatever_the_model_says() -> None:
    case = validate_case({"age": 70, "fever": True, "pain_region": "outer_foot"})
    out = triage(case, False)
    assert out["red_flag"] is True and out["red_flags_fired"] == ["fever"]
    assert out["urgency"] == "urgent" and out["nerve_root"] == "S1-S2"
    assert out["next_step"] == "urgent_evaluation"
    assert out["mri_reasons"] == ["red_flags_present"] and out["mri_indicated"] is True


# --------------------------------------------------------------------------------------------
# "Treat the patient, not the scan"; the straight-leg raise; the sciatic territory
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("finding", "cause"),
    [
        ("degenerative_changes", "degenerative_disc_disease"),
        ("disc_herniation", "disc_herniation"),
        ("spondylolisthesis", "spondylolisthesis"),
    ],
)
def test_an_mri_finding_counts_for_less_as_age_rises(finding: str, cause: str) -> None:
    """Brinjikji 2015: the finding grows common without pain, so it weighs less with age."""
    ages = [25, 35, 45, 55, 65, 75, 85]
    with_finding = validate_frame(pd.DataFrame({"age": ages, "mri_finding": [finding] * 7}))
    without = validate_frame(pd.DataFrame({"age": ages}))
    earned = (cause_points(with_finding) - cause_points(without))[cause].to_numpy()
    assert (earned > 0).all()
    assert (np.diff(earned) < 0).all(), earned
    assert earned[-1] < earned[0] - 0.1


def test_a_normal_scan_is_not_discounted() -> None:
    young, old = (validate_case({"age": a, "mri_finding": "normal"}) for a in (25, 80))
    frame = validate_frame(pd.DataFrame([young, old]))
    no_scan = validate_frame(pd.DataFrame([{"age": 25}, {"age": 80}]))
    earned = (cause_points(frame) - cause_points(no_scan))["piriformis_syndrome"]
    assert earned.iloc[0] == earned.iloc[1] > 0


def test_straight_leg_raise_moves_disc_herniation() -> None:
    rows = [{"age": 40}, *({"age": 40, "straight_leg_raise": v} for v in (True, False))]
    rows.append({"age": 40, "crossed_straight_leg_raise": True})
    points = cause_points(validate_frame(pd.DataFrame(rows)))["disc_herniation"].to_numpy()
    assert points[1] > points[0] > points[2]  # sensitive: a negative test counts most
    assert points[3] > points[1]  # crossed: specific


def test_piriformis_pattern_points_to_the_sciatic_nerve_not_a_root() -> None:
    piriformis = validate_case(
        {"age": 40, "buttock_pain": True, "back_pain": False, "pain_region": "back_of_leg_heel"}
    )
    spinal = validate_case({"age": 40, "back_pain": True, "pain_region": "back_of_leg_heel"})
    femoral = validate_case(
        {"age": 40, "buttock_pain": True, "back_pain": False, "pain_region": "front_of_thigh"}
    )
    back = validate_case({"age": 40, "pain_region": "back_only"})
    assert nerve_territory(piriformis) == SCIATIC_TERRITORY
    assert triage(piriformis)["nerve_territory"] == SCIATIC_TERRITORY
    assert triage(piriformis)["nerve_root"] == "S1"  # kept: the table's root for the region
    assert nerve_territory(spinal) == "S1 nerve root"
    assert nerve_territory(spinal, piriformis_likely=True) == SCIATIC_TERRITORY
    assert nerve_territory(femoral) == "L2-L3 nerve root"  # not the sciatic nerve's territory
    assert nerve_territory(back) is None
    frame = validate_frame(pd.DataFrame([piriformis, spinal, femoral, back]))
    assert nerve_territory(frame).tolist() == [
        SCIATIC_TERRITORY,
        "S1 nerve root",
        "L2-L3 nerve root",
        None,
    ]


# --------------------------------------------------------------------------------------------
# CaseVariants: one case and its one-answer variants, reusing the unchanged conditions
# --------------------------------------------------------------------------------------------


def test_case_variants_give_the_triage_of_every_changed_case() -> None:
    """Every answer of every field, on generated cases, under every cause and both decisions:
    the variant's triage (and its decisions) equal the plain triage of the changed case."""
    from model import rules as model_rules
    from model.intake import validate_case as check
    from vignettes.schema import FIELDS as ALL_FIELDS

    frame = vignettes.generate(40, seed=21)
    checked = 0
    for i, record in enumerate(frame[[f.name for f in ALL_FIELDS]].to_dict("records")):
        case = check({k: (None if pd.isna(v) else v) for k, v in record.items()})
        variants = model_rules.CaseVariants(case)
        cause = CAUSES[i % len(CAUSES)]
        dont_know = i % 4 == 1  # some cases with a red-flag "don't know", given by the caller
        variants.decisions({}, False, cause, False, dont_know)
        for field in ALL_FIELDS:
            values = (True, False) if field.kind == "bool" else field.values
            if field.kind == "float":
                values = (1.0, 8.0, 30.0)
            if field.kind == "int":
                continue
            for value in values:
                model = bool((i + len(str(value))) % 3 == 0)
                other = CAUSES[(i + 2) % len(CAUSES)] if value is True else cause
                changed = {**case, field.name: value}
                expected = model_rules.triage(changed, model, other, False, dont_know)
                got_all = variants.triage({field.name: value}, model, other, False, dont_know)
                assert got_all == expected
                got = variants.decisions({field.name: value}, model, other, False, dont_know)
                assert got == {k: expected[k] for k in got}, (field.name, value)
                checked += 1
    assert checked > 2_000


def test_a_red_flag_dont_know_keeps_the_tier_at_least_review(generated: pd.DataFrame) -> None:
    """The rule ``red_flag_dont_know`` (given by the caller, who knows what was asked): a routine
    case becomes a two-week review with the rule's words and the clinician-review step; a case
    already at review or above keeps its tier, and only gains the trigger; a frame gives each row
    what the case gives."""
    from model import rules as model_rules

    frame = validate_frame(generated.head(400))
    cause = np.asarray(CAUSES, dtype=object)[np.arange(len(frame)) % len(CAUSES)]
    plain = model_rules.triage(frame, None, cause)
    raised = model_rules.triage(frame, None, cause, None, np.ones(len(frame), dtype=bool))
    order = ["routine", "review", "urgent", "emergency"]
    routine = 0
    for i in range(len(frame)):
        before, after = plain["urgency"][i], raised["urgency"][i]
        assert after == ("review" if before == "routine" else before)
        assert raised["urgency_triggers"][i] == sorted(
            [*plain["urgency_triggers"][i], "red_flag_dont_know"],
            key=[r.code for r in model_rules.URGENCY_RULES].index,
        )
        if before == "routine":
            routine += 1
            assert raised["urgency_timeframe"][i] == "within 2 weeks"
            assert raised["urgency_action"][i].startswith("Clinician review within 2 weeks: a red")
            assert raised["next_step"][i] in (
                "clinician_review",
                "imaging_and_specialist_review",
                "specialist_review",
            )
        else:
            assert order.index(after) >= order.index("review")
            assert raised["urgency_timeframe"][i] == plain["urgency_timeframe"][i]
        case = {k: (None if pd.isna(v) else v) for k, v in frame.iloc[i].items()}
        one = model_rules.triage(validate_case(case), False, cause[i], False, True)
        assert one["urgency"] == after and one["next_step"] == raised["next_step"][i]
    assert routine > 100  # the rule was exercised where it matters


def test_the_dont_know_facts_name_each_red_flag_question() -> None:
    """Which red-flag question was not known decides how soon: a bladder, bowel or saddle
    "don't know" is seen the same day, any other at review; a frame takes one list per row."""
    from model import rules as model_rules

    calm = {"age": 40, "pain_region": "back_only"}
    frame = validate_frame(pd.DataFrame([calm] * 4))
    out = model_rules.triage(
        frame,
        red_flag_dont_know=[[], ["fever"], ["saddle_numbness"], ["bladder_bowel_dysfunction"]],
    )
    assert list(out["urgency"]) == ["routine", "review", "urgent", "urgent"]
    assert list(out["urgency_timeframe"]) == [None, "within 2 weeks", "same day", "same day"]
    one = model_rules.triage(validate_case(calm), red_flag_dont_know=["saddle_numbness"])
    assert one["urgency_triggers"] == ["cauda_equina_dont_know", "red_flag_dont_know"]
    assert model_rules.triage(validate_case(calm), red_flag_dont_know=True)["urgency"] == "review"
    with pytest.raises(ValueError, match=r"red_flag_dont_know: \['age'\] are not red-flag fields"):
        model_rules.triage(validate_case(calm), red_flag_dont_know=["age"])
    with pytest.raises(ValueError, match="expected 4 values"):
        model_rules.triage(frame, red_flag_dont_know=[["fever"]])
