"""The article's claims about each cause, checked as statistics of generated data.

Every test reads proportions off large seeded samples (200,000 rows per setting, drawn once per
module) and compares them with margins many standard errors wide, so a test fails only when the
knowledge base or the sampler stops saying what the article says. The standard error of a
proportion near 0.5 from 10,000 rows is 0.005; the smallest group a margin rests on is named next
to it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import vignettes
from vignettes.article import load_article
from vignettes.schema import CAUSES, RED_FLAG_FIELDS

N_ROWS = 200_000
SEED = 20_240_601

# The article's table "How to Tell Which Nerve Is Involved" (vignettes/article.toml).
ROOT_REGION = {r.root: r.region for r in load_article().pain_regions if r.root}
NEURO_SIGNS = ("numbness", "tingling", "weakness", "reflex_changes")


@pytest.fixture(scope="module")
def primary() -> pd.DataFrame:
    return vignettes.generate(N_ROWS, seed=SEED, setting="primary_care")


@pytest.fixture(scope="module")
def clinic() -> pd.DataFrame:
    return vignettes.generate(N_ROWS, seed=SEED + 1, setting="spine_clinic")


@pytest.fixture(scope="module")
def both(primary: pd.DataFrame, clinic: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([primary, clinic], ignore_index=True)


def rate(df: pd.DataFrame, column: str, mask: pd.Series | None = None) -> float:
    """Share of ``True`` among the known answers of ``column`` (within ``mask``)."""
    values = df[column] if mask is None else df.loc[mask, column]
    values = values.dropna().astype(bool)
    assert len(values) >= 300, f"too few known answers of {column} to test a proportion"
    return float(values.mean())


def share(df: pd.DataFrame, column: str, value: str, mask: pd.Series | None = None) -> float:
    """Share of ``value`` among the known answers of a categorical ``column`` (within ``mask``)."""
    values = df[column] if mask is None else df.loc[mask, column]
    values = values.dropna()
    assert len(values) >= 300, f"too few known answers of {column} to test a proportion"
    return float((values == value).mean())


def by_cause(df: pd.DataFrame, column: str) -> pd.Series:
    """Share of ``True`` among known answers of ``column``, per cause."""
    return pd.Series({c: rate(df, column, df["cause"] == c) for c in CAUSES})


def mri_done(df: pd.DataFrame) -> pd.Series:
    return df["mri_finding"].notna() & (df["mri_finding"] != "not_done")


def age_band(df: pd.DataFrame) -> pd.Series:
    kb = vignettes.load_knowledge()
    names = np.array(kb.band_names)
    return pd.Series(names[kb.band_of(df["age"].to_numpy(dtype=int))], index=df.index)


# --- 2. Lumbar spinal stenosis ------------------------------------------------------------------


def test_stenosis_is_mostly_over_50(primary: pd.DataFrame) -> None:
    stenosis = primary["cause"] == "spinal_stenosis"
    over_50 = primary["age"] > 50
    assert over_50[stenosis].mean() > 0.85
    # "more common in adults over 50": its share of cases is several times higher above 50
    assert stenosis[over_50].mean() > 3 * stenosis[~over_50].mean()


def test_stenosis_worse_walking_better_sitting_or_bending(primary: pd.DataFrame) -> None:
    stenosis = primary["cause"] == "spinal_stenosis"  # ~20,000 rows
    for column in ("worse_walking", "better_sitting", "better_bending_forward"):
        own, rest = rate(primary, column, stenosis), rate(primary, column, ~stenosis)
        assert own > 0.7, column
        assert own > rest + 0.4, column
    # and sitting does not make it worse, unlike disc herniation
    assert rate(primary, "worse_sitting", stenosis) < 0.2


def test_stenosis_more_often_bilateral_than_disc_herniation(primary: pd.DataFrame) -> None:
    stenosis = primary["cause"] == "spinal_stenosis"
    disc = primary["cause"] == "disc_herniation"
    both_legs = share(primary, "sides", "both", stenosis)
    assert both_legs > 0.45  # "often affects both legs"
    assert both_legs > 5 * share(primary, "sides", "both", disc)


def test_stenosis_feels_heavy_rather_than_sharp(primary: pd.DataFrame) -> None:
    stenosis = primary["cause"] == "spinal_stenosis"
    quality = primary.loc[stenosis, "pain_quality"].value_counts(normalize=True)
    assert quality.idxmax() == "heaviness_fatigue"
    assert quality["heaviness_fatigue"] > 2 * quality["sharp_electric"]


# --- 1. Lumbar disc herniation ------------------------------------------------------------------


def test_disc_herniation_worse_with_cough_sneeze(primary: pd.DataFrame) -> None:
    per_cause = by_cause(primary, "worse_cough_sneeze")  # smallest group: piriformis ~6,000
    disc = per_cause.pop("disc_herniation")
    assert disc > 0.5
    assert disc > per_cause.max() + 0.3


def test_disc_herniation_worse_sitting_and_bending_forward(primary: pd.DataFrame) -> None:
    disc = primary["cause"] == "disc_herniation"  # ~60,000 rows
    for column in ("worse_sitting", "worse_bending_forward"):
        own, rest = rate(primary, column, disc), rate(primary, column, ~disc)
        assert own > 0.55, column
        assert own > rest + 0.2, column
        assert own > rate(primary, column, primary["cause"] == "spinal_stenosis") + 0.4, column


def test_disc_herniation_leg_pain_worse_than_back_pain(primary: pd.DataFrame) -> None:
    disc = primary["cause"] == "disc_herniation"
    own = rate(primary, "leg_pain_worse_than_back", disc)
    assert own > 0.6
    assert own > rate(primary, "leg_pain_worse_than_back", ~disc) + 0.2
    quality = primary.loc[disc, "pain_quality"].value_counts(normalize=True)
    assert quality.idxmax() == "sharp_electric"  # "Sharp leg pain"


def test_disc_herniation_roots_mostly_l5_s1(primary: pd.DataFrame) -> None:
    roots = primary.loc[primary["cause"] == "disc_herniation", "nerve_root"]
    assert roots.isin(["L5", "S1"]).mean() > 0.8
    assert (roots == "none").mean() < 0.02  # a herniation irritates a root


def test_disc_herniation_neurological_signs_may_occur(primary: pd.DataFrame) -> None:
    disc = primary["cause"] == "disc_herniation"
    mechanical = primary["cause"] == "mechanical_pain"
    for column in ("numbness", "tingling", "weakness"):
        own = rate(primary, column, disc)
        assert 0.15 < own < 0.9, column  # "may occur": common, not universal
        assert own > 5 * rate(primary, column, mechanical), column


# --- 3. Foraminal stenosis ----------------------------------------------------------------------


def test_foraminal_stenosis_one_sided(primary: pd.DataFrame) -> None:
    foraminal = primary["cause"] == "foraminal_stenosis"  # ~10,000 rows
    one_side = 1 - share(primary, "sides", "both", foraminal)
    assert one_side > 0.85
    assert one_side > 1 - share(primary, "sides", "both", primary["cause"] == "spinal_stenosis")


def test_foraminal_stenosis_worse_with_extension(primary: pd.DataFrame) -> None:
    foraminal = primary["cause"] == "foraminal_stenosis"
    own = rate(primary, "worse_extension", foraminal)
    assert own > 0.7
    assert own > rate(primary, "worse_extension", ~foraminal) + 0.3
    assert own > rate(primary, "worse_extension", primary["cause"] == "disc_herniation") + 0.5


# --- 4. Piriformis syndrome ---------------------------------------------------------------------


def test_piriformis_prominent_buttock_pain_little_back_pain(primary: pd.DataFrame) -> None:
    buttock = by_cause(primary, "buttock_pain")  # piriformis ~6,000 rows
    back = by_cause(primary, "back_pain")
    assert buttock["piriformis_syndrome"] > 0.8
    assert buttock.idxmax() == "piriformis_syndrome"
    assert buttock["piriformis_syndrome"] > buttock.drop("piriformis_syndrome").max() + 0.2
    assert back["piriformis_syndrome"] < 0.4  # "minimal or absent"
    assert back["piriformis_syndrome"] < back.drop("piriformis_syndrome").min() - 0.2
    # and it worsens with prolonged sitting
    assert rate(primary, "worse_sitting", primary["cause"] == "piriformis_syndrome") > 0.65


@pytest.fixture(scope="module")
def imaging_sample(both: pd.DataFrame) -> pd.DataFrame:
    """Both settings plus 400,000 more spine-clinic rows: primary care images only ~15% of its
    patients (NICE NG59), so imaged piriformis cases come mostly from the clinic."""
    more = vignettes.generate(400_000, seed=SEED + 2, setting="spine_clinic")
    return pd.concat([both, more], ignore_index=True)


def test_piriformis_mri_shows_only_the_age_background(imaging_sample: pd.DataFrame) -> None:
    """No lesion of its own: findings as in mechanical pain, more often normal than in herniation.

    Pooled over both settings and the extra clinic rows: ~26,000 piriformis cases, ~7,000 with
    an MRI; the older band is the smallest (~700 imaged cases).
    """
    both = imaging_sample
    done, band, cause = mri_done(both), age_band(both), both["cause"]
    for name in vignettes.load_knowledge().band_names:
        in_band = done & (band == name)
        piriformis = in_band & (cause == "piriformis_syndrome")
        normal = share(both, "mri_finding", "normal", piriformis)
        disc_normal = share(both, "mri_finding", "normal", in_band & (cause == "disc_herniation"))
        assert normal > 2 * disc_normal + 0.03, name
        # the same findings as another cause without a lesion of its own
        mechanical = in_band & (cause == "mechanical_pain")
        for finding in ("normal", "disc_herniation", "degenerative_changes"):
            gap = share(both, "mri_finding", finding, piriformis) - share(
                both, "mri_finding", finding, mechanical
            )
            assert abs(gap) < 0.07, (name, finding)
    young = done & (band == "young") & (cause == "piriformis_syndrome")
    assert both.loc[young, "mri_finding"].value_counts().idxmax() == "normal"


def test_piriformis_compresses_no_spinal_root(both: pd.DataFrame) -> None:
    """'sciatic nerve irritation without spinal compression'."""
    piriformis = both["cause"] == "piriformis_syndrome"
    assert (both.loc[piriformis, "nerve_root"] == "none").all()


def test_piriformis_pain_follows_the_sciatic_territory(both: pd.DataFrame) -> None:
    """No compressed root, yet the pain runs where the sciatic nerve's L5/S1 fibres run."""
    piriformis = both["cause"] == "piriformis_syndrome"  # ~12,000 rows over both settings
    sciatic = ("outer_leg_big_toe", "back_of_leg_heel", "outer_foot")
    in_territory = sum(share(both, "pain_region", r, piriformis) for r in sciatic)
    assert in_territory > 0.6
    assert share(both, "pain_region", "back_only", piriformis) < 0.05
    assert rate(both, "below_knee", piriformis) > 0.5


@pytest.mark.parametrize("sign", NEURO_SIGNS)
def test_piriformis_deficits_at_most_half_the_disc_rate(both: pd.DataFrame, sign: str) -> None:
    """Hopayian et al., Eur Spine J 2010: neurological deficits are uncommon in piriformis."""
    disc = rate(both, sign, both["cause"] == "disc_herniation")
    piriformis = rate(both, sign, both["cause"] == "piriformis_syndrome")  # >= 1,500 known
    assert piriformis <= 0.5 * disc + 0.02, (piriformis, disc)


# --- 5. Spondylolisthesis -----------------------------------------------------------------------


def test_spondylolisthesis_worse_standing_and_extension(primary: pd.DataFrame) -> None:
    spondy = primary["cause"] == "spondylolisthesis"  # ~10,000 rows
    for column in ("worse_standing", "worse_extension"):
        own = rate(primary, column, spondy)
        assert own > 0.6, column
        assert own > rate(primary, column, ~spondy) + 0.25, column


def test_spondylolisthesis_more_progressive(primary: pd.DataFrame) -> None:
    per_cause = by_cause(primary, "progressive_symptoms")
    assert per_cause.idxmax() == "spondylolisthesis"
    assert per_cause["spondylolisthesis"] > 2 * rate(
        primary, "progressive_symptoms", primary["cause"] != "spondylolisthesis"
    )


# --- Mechanical pain vs neurological pain -------------------------------------------------------


def test_mechanical_pain_dull_and_eased_by_rest_or_movement(primary: pd.DataFrame) -> None:
    mechanical = primary["cause"] == "mechanical_pain"
    dull = pd.Series(
        {c: share(primary, "pain_quality", "dull_aching", primary["cause"] == c) for c in CAUSES}
    )
    assert dull["mechanical_pain"] > 0.7
    assert dull.idxmax() == "mechanical_pain"
    eased = by_cause(primary, "better_rest_movement")
    assert eased["mechanical_pain"] > 0.7
    assert eased["mechanical_pain"] > eased.drop("mechanical_pain").max() + 0.2
    # "Localized to the lower back or a specific region of the leg": the back, the buttock or
    # the thigh, rarely past the knee (somatic referred pain)
    localised = share(primary, "pain_region", "back_only", mechanical) + share(
        primary, "pain_region", "buttock_thigh", mechanical
    )
    assert localised > 0.65
    assert rate(primary, "below_knee", mechanical) < 0.1


def test_mechanical_pain_has_no_neurological_signs_or_root(primary: pd.DataFrame) -> None:
    mechanical = primary["cause"] == "mechanical_pain"  # ~70,000 rows
    disc = primary["cause"] == "disc_herniation"
    assert (primary.loc[mechanical, "nerve_root"] == "none").all()
    for column in NEURO_SIGNS:
        own = rate(primary, column, mechanical)
        assert own < 0.05, column
        assert own < rate(primary, column, disc) / 5, column
    no_sign = ~primary.loc[mechanical, list(NEURO_SIGNS)].fillna(False).astype(bool).any(axis=1)
    assert no_sign.mean() > 0.9


def test_neurological_pain_worse_at_night(primary: pd.DataFrame) -> None:
    radicular = primary["nerve_root"] != "none"
    assert rate(primary, "worse_at_night", radicular) > 2.5 * rate(
        primary, "worse_at_night", primary["cause"] == "mechanical_pain"
    )


# --- Nerve roots and pain location --------------------------------------------------------------


@pytest.mark.parametrize(("root", "region"), list(ROOT_REGION.items()))
def test_pain_region_follows_the_root_table(primary: pd.DataFrame, root: str, region: str) -> None:
    at_root = primary["nerve_root"] == root  # smallest: L2-L3 ~2,500 rows, S1-S2 ~2,800
    regions = primary.loc[at_root, "pain_region"].value_counts(normalize=True)
    assert regions.idxmax() == region
    assert regions[region] > 0.6
    assert regions[region] > regions.drop(region).max() + 0.4


def test_without_a_spinal_root_pain_stays_in_the_back_buttock_or_thigh(
    primary: pd.DataFrame,
) -> None:
    no_root = (primary["nerve_root"] == "none") & (primary["cause"] != "piriformis_syndrome")
    regions = primary.loc[no_root, "pain_region"].value_counts(normalize=True)
    assert regions.idxmax() == "buttock_thigh"
    assert regions["buttock_thigh"] + regions["back_only"] > 0.65
    assert rate(primary, "below_knee", no_root) < 0.1


@pytest.mark.parametrize("setting", ["primary", "clinic"])
def test_back_only_pain_is_the_exception(
    primary: pd.DataFrame, clinic: pd.DataFrame, setting: str
) -> None:
    """The population is pain that radiates to the leg: pain in the back only is at most 15%."""
    df = primary if setting == "primary" else clinic
    assert share(df, "pain_region", "back_only") <= 0.15


def test_true_sciatica_mostly_l5_s1_and_reaches_below_knee(primary: pd.DataFrame) -> None:
    root = primary["nerve_root"]
    radicular = root[root != "none"]
    assert radicular.isin(["L5", "S1"]).mean() > 0.65
    assert rate(primary, "below_knee", root.isin(["L5", "S1", "S1-S2"])) > 0.8
    assert rate(primary, "below_knee", root == "L2-L3") < 0.2  # front of the thigh only


def test_below_the_knee_agrees_with_where_the_pain_is(both: pd.DataFrame) -> None:
    """'Reach the calf, ankle, or foot': pain in the back or the front of the thigh never does,
    pain in the outer foot always does, and the L5 and S1 patterns mostly do."""
    region = both["pain_region"]
    for where in ("back_only", "front_of_thigh"):
        assert rate(both, "below_knee", region == where) == 0.0, where
    assert rate(both, "below_knee", region == "outer_foot") == 1.0
    radicular = both["nerve_root"] != "none"  # smallest group: S1 back of leg ~40,000 rows
    for where in ("outer_leg_big_toe", "back_of_leg_heel"):
        assert rate(both, "below_knee", radicular & (region == where)) > 0.9, where
    # referred pain without a root mostly stays above the knee
    assert rate(both, "below_knee", ~radicular & (region != "back_only")) < 0.4


def test_a_posture_worsens_or_relieves_never_both(primary: pd.DataFrame) -> None:
    """Disc herniation worse sitting and bending forward, stenosis better: one answer each."""
    for posture in ("sitting", "bending_forward"):
        worse, better = primary[f"worse_{posture}"], primary[f"better_{posture}"]
        answered = worse.notna() & better.notna()
        assert answered.sum() > 100_000
        assert not (worse[answered].astype(bool) & better[answered].astype(bool)).any(), posture
        disc = answered & (primary["cause"] == "disc_herniation")
        stenosis = answered & (primary["cause"] == "spinal_stenosis")
        assert worse[disc].astype(bool).mean() > 0.6 > better[disc].astype(bool).mean(), posture
        assert better[stenosis].astype(bool).mean() > 0.7 > worse[stenosis].astype(bool).mean()


# --- Imaging ------------------------------------------------------------------------------------


def test_mri_incidental_findings_grow_with_age(both: pd.DataFrame) -> None:
    mechanical = mri_done(both) & (both["cause"] == "mechanical_pain")  # older band ~2,000 rows
    band = age_band(both)
    abnormal = {
        name: 1 - share(both, "mri_finding", "normal", mechanical & (band == name))
        for name in ("young", "middle", "older")
    }
    assert abnormal["young"] + 0.1 < abnormal["middle"] < abnormal["older"] - 0.1
    assert abnormal["young"] > 0.3  # common even in the young: findings without a lesion


def test_whether_an_mri_was_done_ignores_the_cause(both: pd.DataFrame) -> None:
    """At the same setting, duration band, failed care and weakness, every cause is imaged
    equally often: imaging follows what a clinician decides on, never the hidden cause."""
    known = both[["duration_weeks", "conservative_care_failed", "weakness", "mri_finding"]]
    rows = both[known.notna().all(axis=1)]
    weeks = rows["duration_weeks"].to_numpy(dtype=float)
    strata = pd.DataFrame(
        {
            "setting": rows["setting"].astype(str),
            "duration": np.digitize(weeks, [6, 12]),
            "care": rows["conservative_care_failed"].astype(bool),
            "weakness": rows["weakness"].astype(bool),
            "cause": rows["cause"].astype(str),
            "done": mri_done(rows).to_numpy(),
        }
    )
    checked = 0
    for _, stratum in strata.groupby(["setting", "duration", "care", "weakness"]):
        per_cause = stratum.groupby("cause")["done"].agg(["mean", "size"])
        per_cause = per_cause[per_cause["size"] >= 400]
        if len(per_cause) < 2:
            continue
        overall = stratum["done"].mean()
        se = np.sqrt(overall * (1 - overall) / per_cause["size"])
        assert (np.abs(per_cause["mean"] - overall) < 5 * se + 0.01).all(), per_cause
        checked += len(per_cause)
    assert checked >= 20


def test_mri_more_often_done_when_persistent_failed_or_weak(primary: pd.DataFrame) -> None:
    """The article's indications: 'beyond 6-8 weeks despite conservative care', deficits."""
    done = mri_done(primary)
    known = primary["mri_finding"].notna()
    long = primary["duration_weeks"] >= 12
    short = primary["duration_weeks"] < 6
    # Each indication makes imaging about twice as likely (knowledge.toml; measured one by one,
    # the others absent, in tests/test_primary_care.py); here, with the others as they come.
    assert done[known & long].mean() > 1.5 * done[known & short].mean()
    for column in ("conservative_care_failed", "weakness"):
        yes, no = primary[column].eq(True), primary[column].eq(False)
        assert done[known & yes].mean() > 1.4 * done[known & no].mean(), column


def test_an_mri_finding_alone_does_not_diagnose(primary: pd.DataFrame) -> None:
    done = mri_done(primary)
    for finding, cause in (
        ("disc_herniation", "disc_herniation"),
        ("degenerative_changes", "degenerative_disc_disease"),
        ("central_stenosis", "spinal_stenosis"),
    ):
        shows = done & (primary["mri_finding"] == finding)
        other = (primary.loc[shows, "cause"] != cause).mean()
        assert other > 0.05, finding  # the finding also turns up with other causes


# --- Red flags ----------------------------------------------------------------------------------


# Unexplained weight loss is a weak flag: Deyo, Rainville & Kent, JAMA 1992 give it a likelihood
# ratio of about 2.5 for malignancy, and it says little about a progressive deficit or cauda equina.
MIN_RATIO = {"unexplained_weight_loss": 1.3}


@pytest.mark.parametrize("sign", RED_FLAG_FIELDS)
def test_red_flag_signs_much_more_common_with_red_flag(both: pd.DataFrame, sign: str) -> None:
    red = both["red_flag"]  # ~9,000 red-flag cases over both settings
    assert rate(both, sign, red) > MIN_RATIO.get(sign, 3) * rate(both, sign, ~red)


def test_reported_red_flag_signs_are_mostly_false_alarms(primary: pd.DataFrame) -> None:
    signs = primary[list(RED_FLAG_FIELDS)].fillna(False).astype(bool).any(axis=1)
    red = primary["red_flag"]
    assert red.mean() < 0.05  # "These cases are rare"
    assert signs[red].mean() > 0.6  # a serious condition usually shows a sign
    assert signs[~red].mean() < 0.15
    assert signs.sum() > 5_000
    assert (~red[signs]).mean() > 0.7  # most reported signs are false alarms


def test_cancer_history_most_informative_flag_for_malignancy(both: pd.DataFrame) -> None:
    malignancy = both["serious_condition"] == "malignancy"
    ppv = pd.Series(
        {sign: malignancy[both[sign].fillna(False).astype(bool)].mean() for sign in RED_FLAG_FIELDS}
    )
    assert ppv.idxmax() == "cancer_history"


# --- Settings -----------------------------------------------------------------------------------


def test_spine_clinic_sees_more_stenosis_less_mechanical(
    primary: pd.DataFrame, clinic: pd.DataFrame
) -> None:
    p = primary["cause"].value_counts(normalize=True)
    c = clinic["cause"].value_counts(normalize=True)
    assert c["spinal_stenosis"] > p["spinal_stenosis"] + 0.05
    assert c["spondylolisthesis"] > p["spondylolisthesis"] + 0.03
    assert c["mechanical_pain"] < p["mechanical_pain"] / 2
    assert clinic["red_flag"].mean() > 1.5 * primary["red_flag"].mean()


# --- How common each cause is ------------------------------------------------------------------


def disc_share_of_compressed_roots_under_60(df: pd.DataFrame) -> float:
    compressed = (df["age"] < 60) & (df["nerve_root"] != "none")
    return float((df.loc[compressed, "cause"] == "disc_herniation").mean())


def test_disc_herniation_dominates_compressed_roots_under_60(
    primary: pd.DataFrame, clinic: pd.DataFrame
) -> None:
    """Koes et al., BMJ 2007; Jensen et al., BMJ 2019: a disc causes ~90% of sciatica. At least
    80% in primary care; at least 70% in a spine clinic, where referral selects stenosis and
    spondylolisthesis (the knowledge base's stated assumption). ~60,000 rows under 60 each."""
    assert disc_share_of_compressed_roots_under_60(primary) >= 0.80
    assert disc_share_of_compressed_roots_under_60(clinic) >= 0.70


def test_priors_follow_their_sources() -> None:
    """Deyo & Weinstein 2001 and the settings' stated assumptions, read off the priors."""
    kb = vignettes.load_knowledge()
    primary, clinic = (dict(zip(CAUSES, row, strict=True)) for row in kb.prior)
    radicular = [c for c in CAUSES if c != "mechanical_pain"]
    # primary care: mechanical pain the largest group, disc herniation the largest radicular one
    assert max(primary, key=primary.__getitem__) in ("mechanical_pain", "disc_herniation")
    assert max(radicular, key=primary.__getitem__) == "disc_herniation"
    assert primary["mechanical_pain"] >= 0.3
    # piriformis: Hopayian 2010, under 1% to about 6% of sciatica (here: of the radicular causes)
    for prior in (primary, clinic):
        share = prior["piriformis_syndrome"] / sum(prior[c] for c in radicular)
        assert 0.01 <= share <= 0.06
    # a spine clinic: more stenosis and spondylolisthesis, far less mechanical pain
    assert clinic["spinal_stenosis"] >= 2 * primary["spinal_stenosis"]
    assert clinic["spondylolisthesis"] >= 2 * primary["spondylolisthesis"]
    assert clinic["mechanical_pain"] <= primary["mechanical_pain"] / 3
    assert max(clinic, key=clinic.__getitem__) == "disc_herniation"


# --- Suri et al., JAMA 2010 ---------------------------------------------------------------------


def suri_lr(df: pd.DataFrame, column: str) -> float:
    """Likelihood ratio of a ``True`` answer for stenosis against other causes, age >= 50."""
    older = df["age"] >= 50
    stenosis = df["cause"] == "spinal_stenosis"
    return rate(df, column, older & stenosis) / rate(df, column, older & ~stenosis)


def test_better_sitting_likelihood_ratio_near_suri(primary: pd.DataFrame) -> None:
    # Suri 2010: "no pain when seated" LR 7.4. Measured 7.9 (seeds 1-3 and 20240601: 7.9-8.0,
    # standard error ~0.1): P(better_sitting) is 0.85 in stenosis and ~0.11 in the other causes
    # over 50. Accept 25% either way.
    lr = suri_lr(primary, "better_sitting")
    assert 7.4 / 1.25 <= lr <= 7.4 * 1.25, lr


def test_other_suri_signs_likelihood_ratios(primary: pd.DataFrame) -> None:
    # Suri 2010: improvement bending forward LR 6.4 (measured 7.1-7.3, se ~0.1), neurogenic
    # claudication LR 3.7 (worse walking, measured 2.8, se ~0.02).
    lr = suri_lr(primary, "better_bending_forward")
    assert 6.4 / 1.25 <= lr <= 6.4 * 1.25, lr
    lr = suri_lr(primary, "worse_walking")
    assert 3.7 / 1.5 <= lr <= 3.7 * 1.5, lr


@pytest.mark.parametrize(("setting", "older_70", "under_60"), [("primary", 2.0, 0.40)])
def test_age_likelihood_ratios_near_suri(
    primary: pd.DataFrame, setting: str, older_70: float, under_60: float
) -> None:
    # Suri 2010: among older adults with leg pain, age > 70 LR 2.0, age < 60 LR 0.40. Measured
    # 2.1 and 0.40 (200,000 rows; se ~0.05 and ~0.01). Accept 40% either way.
    older = primary["age"] >= 50
    stenosis = primary["cause"] == "spinal_stenosis"
    for mask, expected in ((primary["age"] > 70, older_70), (primary["age"] < 60, under_60)):
        lr = mask[older & stenosis].mean() / mask[older & ~stenosis].mean()
        assert expected / 1.4 <= lr <= expected * 1.4, (lr, expected)


def test_age_likelihood_ratios_in_a_spine_clinic(clinic: pd.DataFrame) -> None:
    # The same ratios against a spine clinic's other causes (more spondylolisthesis and
    # foraminal stenosis among its older patients): measured 1.65 and 0.43.
    older = clinic["age"] >= 50
    stenosis = clinic["cause"] == "spinal_stenosis"
    for mask, expected in ((clinic["age"] > 70, 2.0), (clinic["age"] < 60, 0.40)):
        lr = mask[older & stenosis].mean() / mask[older & ~stenosis].mean()
        assert expected / 1.4 <= lr <= expected * 1.4, (lr, expected)


# --- The straight-leg raise (van der Windt et al., Cochrane 2010; outpatient specificity) --------


# Sensitivity for disc herniation from the pooled review; the straight-leg raise's specificity
# from outpatient studies against MRI (Capra 2011: 0.74; Majlesi 2008: about 0.85), not from the
# review's surgical cohorts (0.28). Measured 0.80 against every other cause over both settings.
@pytest.mark.parametrize(
    ("sign", "sensitivity", "specificity"),
    [("straight_leg_raise", 0.92, 0.80), ("crossed_straight_leg_raise", 0.28, 0.90)],
)
def test_straight_leg_raise_at_the_published_accuracy(
    both: pd.DataFrame, sign: str, sensitivity: float, specificity: float
) -> None:
    disc = both["cause"] == "disc_herniation"  # ~65,000 examined disc cases over both settings
    assert rate(both, sign, disc) == pytest.approx(sensitivity, abs=0.02)
    assert 1 - rate(both, sign, ~disc) == pytest.approx(specificity, abs=0.03)


def test_examination_answers_are_missing_together(primary: pd.DataFrame) -> None:
    """No clinician, no examination: the signs are unknown together far more often than apart."""
    reflex = primary["reflex_changes"].isna()
    slr = primary["straight_leg_raise"].isna()
    assert slr.mean() > 0.4
    assert (reflex & slr).mean() > reflex.mean() * slr.mean() + 0.1
    assert slr[reflex].mean() > slr[~reflex].mean() + 0.4
