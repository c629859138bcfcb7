"""The safety table: tiers and timeframes per serious condition, and the population figures."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import vignettes
from model.serious import SERIOUS_TYPES
from training.candidates import Split
from training.safety import (
    NO_TIMEFRAME,
    RULES_ALONE,
    Policy,
    policy_gaps,
    policy_tiers,
    population_figures,
    safety_markdown,
    safety_table,
)
from vignettes.article import URGENCY_TIERS
from vignettes.schema import SERIOUS_CONDITIONS

TIER_RANK = {t: i for i, t in enumerate(URGENCY_TIERS)}  # 0 = emergency, most urgent


@pytest.fixture(scope="module")
def cases() -> Split:
    return Split(vignettes.generate(6_000, seed=41))


@pytest.fixture(scope="module")
def bayes(cases: Split) -> np.ndarray:
    return vignettes.posterior(cases.frame)["red_flag"].to_numpy()


@pytest.fixture(scope="module")
def tiers(cases: Split, bayes: np.ndarray) -> dict[str, pd.DataFrame]:
    return {
        RULES_ALONE: policy_tiers(cases.frame, Policy(RULES_ALONE)),
        "bayes": policy_tiers(cases.frame, Policy("bayes", bayes, 0.01)),
    }


def test_rules_alone_are_the_rules_without_a_model(cases: Split, tiers) -> None:
    from model.rules import urgency

    expected = np.asarray(urgency(cases.frame), dtype=object)
    assert (tiers[RULES_ALONE]["urgency"].to_numpy() == expected).all()
    assert list(tiers[RULES_ALONE].index) == list(cases.frame.index)


def test_a_model_policy_never_lowers_a_tier(tiers) -> None:
    rules = tiers[RULES_ALONE]["urgency"].map(TIER_RANK)
    bayes = tiers["bayes"]["urgency"].map(TIER_RANK)
    assert (bayes <= rules).all()
    assert (bayes < rules).any()  # and it does raise some silent cases


def test_a_certain_alert_raises_every_silent_case(cases: Split) -> None:
    always = policy_tiers(cases.frame, Policy("always", np.ones(len(cases.y)), 0.5))
    assert (always["urgency"] != "routine").all()


def test_each_row_of_the_table_is_a_distribution(cases: Split, tiers) -> None:
    table = safety_table(cases.serious, tiers)
    assert set(table.index.get_level_values("condition")) == {*SERIOUS_TYPES, "none"}
    assert set(table.index.get_level_values("policy")) == set(tiers)
    shown = table[table["cases"] > 0]
    np.testing.assert_allclose(shown[list(URGENCY_TIERS)].sum(axis=1), 1.0)
    timeframes = [c for c in table.columns if c.startswith("timeframe: ")]
    assert f"timeframe: {NO_TIMEFRAME}" in timeframes
    np.testing.assert_allclose(shown[timeframes].sum(axis=1), 1.0)
    # cases per condition are the generator's counts
    for condition in SERIOUS_TYPES:
        code = SERIOUS_CONDITIONS.index(condition)
        assert table.loc[(condition, RULES_ALONE), "cases"] == (cases.serious == code).sum()


def test_routine_cases_have_no_timeframe(tiers) -> None:
    for frame in tiers.values():
        routine = frame["urgency"] == "routine"
        assert (frame.loc[routine, "urgency_timeframe"] == NO_TIMEFRAME).all()


def test_population_figures_on_a_hand_made_population() -> None:
    # six patients: 0-1 serious; 0 and 2 reported a sign (urgent by rule); 3 raised by the model
    urgency = ["urgent", "routine", "urgent", "review", "routine", "routine"]
    rules = ["urgent", "routine", "urgent", "routine", "routine", "routine"]
    policy = pd.DataFrame({"urgency": urgency})
    alone = pd.DataFrame({"urgency": rules})
    serious = np.array([1, 4, 0, 0, 0, 0])
    fired = np.array([True, False, True, False, False, False])
    answered_no = np.array([False, False, False, True, True, True])
    figures = population_figures(policy, alone, serious, fired, answered_no)
    assert figures["caught"] == 0.5
    assert figures["screened_routine"] == pytest.approx(2 / 3)
    assert figures["silent_alert_share"] == pytest.approx(1 / 6)
    assert figures["silent_alert_ppv"] == 0.0
    assert figures["model_alert_share"] == pytest.approx(1 / 6)
    assert figures["progressive_deficit_routine"] == 1.0  # patient 1 (code 4) left routine


def test_markdown_names_every_condition_policy_and_target(cases: Split, tiers) -> None:
    table = safety_table(cases.serious, tiers)
    figures = {
        name: population_figures(
            frame, tiers[RULES_ALONE], cases.serious, cases.fired, cases.answered_no
        )
        for name, frame in tiers.items()
    }
    text = safety_markdown(table, figures, "bayes", "bayes")
    for condition in SERIOUS_TYPES:
        assert f"| {condition} | bayes |" in text
    assert "serious conditions caught" in text and ">= 0.85" in text
    assert "the model's alerts alone right" in text
    assert "catches 0.00 points fewer serious conditions than the Bayes policy" in text


def test_markdown_says_no_alerts_and_no_case_instead_of_nan(cases: Split, tiers) -> None:
    serious = cases.serious.copy()
    serious[serious == SERIOUS_CONDITIONS.index("infection")] = 0  # no infection left
    figures = {
        name: population_figures(frame, tiers[RULES_ALONE], serious, cases.fired, cases.answered_no)
        for name, frame in tiers.items()
    }
    text = safety_markdown(safety_table(serious, tiers), figures, "bayes", "bayes")
    assert not re.search(r"\bnan\b", text, re.IGNORECASE)  # ("malignancy" holds "nan")
    assert "| infection | bayes | 0 | — |" in text
    rules_alone = figures[RULES_ALONE]["model_alert_ppv"]
    assert rules_alone != rules_alone  # the rules alone raise no model alert ...
    assert "| the model's alerts alone right |  | no alerts |" in text  # ... and say so


def test_the_champion_s_gaps_to_the_bayes_policy() -> None:
    figures = {
        RULES_ALONE: {"caught": 0.6, "progressive_deficit_routine": 0.20},
        "champion": {"caught": 0.88, "progressive_deficit_routine": 0.050},
        "bayes": {"caught": 0.90, "progressive_deficit_routine": 0.045},
    }
    gaps = policy_gaps(figures, "champion", "bayes")
    assert gaps["caught_gap"] == pytest.approx(2.0)
    assert gaps["deficit_routine_gap"] == pytest.approx(0.5)
    assert gaps["deficit_routine_rules"] == 0.20
