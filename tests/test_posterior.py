"""The exact posterior: exact, calibrated, unbeaten, marginalises unknowns, refuses bad input.

``vignettes.posterior`` is checked against an independent brute-force implementation written
here in plain Python (one loop over every latent state, reading the knowledge base's arrays; a
joint group's observed members are scored by summing its joint answers that agree with them),
on fresh seeded samples for calibration, and against a gradient-boosted classifier trained on
the generator's own data, which it must beat on held-out log-loss because it is the Bayes
posterior. ``vignettes.answer_distribution`` is checked against the brute force, against
frequencies in generated data and against the posterior through Bayes' rule. What the posterior
refuses is in ``tests/test_intake.py``, the one bad-input suite.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import special
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

import vignettes
from vignettes.knowledge import (
    AGE_MIN,
    TABLE_FIELDS,
    KnowledgeBase,
)
from vignettes.schema import CAUSES, FIELD_BY_NAME, FIELDS, NERVE_ROOTS, SERIOUS_CONDITIONS

CAUSE_COLUMNS = list(CAUSES)


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return vignettes.load_knowledge()


# --- an independent brute-force posterior -------------------------------------------------------


def _known(value: object) -> bool:
    return value is not None and not pd.isna(value)


def _phi_interval(lo: float, hi: float) -> float:
    """P(lo < Z <= hi) for a standard normal, from the tail that keeps precision."""
    if lo > 0:
        return 0.5 * (math.erfc(lo / math.sqrt(2)) - math.erfc(hi / math.sqrt(2)))
    return 0.5 * (math.erfc(-hi / math.sqrt(2)) - math.erfc(-lo / math.sqrt(2)))


def _duration_mass(weeks: float, mu: float, sigma: float) -> float:
    """P(round(exp(mu + sigma Z)) == weeks): log-normal mass of a whole week."""
    k = math.floor(weeks + 0.5)
    lo = -math.inf if k - 0.5 <= 0 else (math.log(k - 0.5) - mu) / sigma
    hi = (math.log(k + 0.5) - mu) / sigma
    return _phi_interval(lo, hi)


def _code(name: str, value: object) -> int:
    field = FIELD_BY_NAME[name]
    return int(bool(value)) if field.kind == "bool" else field.values.index(value)


def _group_likelihood(group, observed: dict[str, int]):
    """P(the observed members of ``group`` | state) as a function of the state indices."""

    agree = []  # the joint answers that agree with the observed members (the same in every state)
    for j, codes in enumerate(group.codes.tolist()):
        members = dict(zip(group.fields, codes, strict=True))
        if all(members[name] == code for name, code in observed.items()):
            agree.append(j)

    def likelihood(band: int, c: int, s: int, r: int) -> float:
        return sum(float(group.table[band, c, s, r, j]) for j in agree)

    return likelihood


_EXPECTED_DURATION_FACTOR: dict[int, float] = {}


def _expected_duration_factor(kb: KnowledgeBase, c: int) -> float:
    """E[imaging duration factor | cause] by summing whole weeks (independent of the engine)."""
    if c not in _EXPECTED_DURATION_FACTOR:
        imaging = kb.imaging
        weeks = np.arange(0, 20_000)
        factor = imaging.duration_factor[(imaging.duration_edges[None, :] <= weeks[:, None]).sum(1)]
        mass = _duration_masses(weeks, *kb.duration[c])
        _EXPECTED_DURATION_FACTOR[c] = float(np.sum(mass * factor))
    return _EXPECTED_DURATION_FACTOR[c]


def _duration_masses(weeks: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    """:func:`_duration_mass` of every whole week in ``weeks`` at once (the same formulas)."""
    with np.errstate(divide="ignore", invalid="ignore"):  # week 0 has no lower edge
        lo = np.where(weeks - 0.5 <= 0, -np.inf, (np.log(weeks - 0.5) - mu) / sigma)
    hi = (np.log(weeks + 0.5) - mu) / sigma
    upper = 0.5 * (special.erfc(lo / math.sqrt(2)) - special.erfc(hi / math.sqrt(2)))
    lower = 0.5 * (special.erfc(-hi / math.sqrt(2)) - special.erfc(-lo / math.sqrt(2)))
    return np.where(lo > 0, upper, lower)


def _imaging_likelihood(row: dict, kb: KnowledgeBase, s_idx: int):
    """P(imaging answer | state, its parents' answers), summing over the parents left unknown."""
    imaging = kb.imaging
    code = _code(imaging.field, row[imaging.field])
    hidden = [name for name in imaging.factors if not _known(row.get(name))]
    seen = {name: _code(name, row[name]) for name in imaging.factors if _known(row.get(name))}

    def likelihood(band: int, c: int, s: int, r: int) -> float:
        if _known(row.get("duration_weeks")):
            weeks = math.floor(float(row["duration_weeks"]) + 0.5)
            duration = imaging.duration_factor[int(np.sum(imaging.duration_edges <= weeks))]
        else:
            duration = _expected_duration_factor(kb, c)
        total = 0.0
        for values in np.ndindex(*(2,) * len(hidden)):
            weight, answers = 1.0, dict(seen)
            for name, value in zip(hidden, values, strict=True):
                weight *= float(kb.tables[name][band, c, s, r, value])
                answers[name] = value
            p_not_done = imaging.base[s_idx] * duration
            for name, value in answers.items():
                p_not_done *= imaging.factors[name][value]
            p = p_not_done if code == 0 else (1 - p_not_done) * imaging.done[band, c, code]
            total += weight * p
        return total

    return likelihood


def brute_force(row: dict, kb: KnowledgeBase, setting: str) -> tuple[dict[str, float], float]:
    """Unnormalised-then-normalised posterior of one case by enumerating every latent state.

    Fields outside a joint group multiply in their own table's probability of the answer; a
    joint group multiplies in the summed probability of its joint answers that agree with the
    members that were answered (nothing, when none was).

    Returns the posterior as ``{cause..., "red_flag", "root_<r>"..., "serious_<s>"...}`` and the
    total probability of the observed answers (the evidence); ``({}, 0.0)`` when that is 0.
    """
    s_idx = vignettes.SETTINGS.index(setting)
    age = int(row["age"])
    band = max(i for i, lo in enumerate(kb.band_edges) if age >= lo)
    grouped = {name for group in kb.groups.values() for name in group.fields}
    likelihoods = []
    imaging = kb.imaging.field if kb.imaging is not None else None
    for name in TABLE_FIELDS:
        value = row.get(name)
        if name == imaging and _known(value):
            likelihoods.append(_imaging_likelihood(row, kb, s_idx))
        elif name not in grouped and _known(value):
            table, code = kb.tables[name], _code(name, value)
            likelihoods.append(lambda b, c, s, r, t=table, k=code: float(t[b, c, s, r, k]))
    for group in kb.groups.values():
        observed = {n: _code(n, row[n]) for n in group.fields if _known(row.get(n))}
        if observed:
            likelihoods.append(_group_likelihood(group, observed))
    weight: dict[tuple[int, int, int], float] = {}
    for c in range(len(CAUSES)):
        base = kb.prior[s_idx, c] * kb.age_pmf[c, age - AGE_MIN]
        if _known(row.get("sex")):
            base *= kb.female[c] if row["sex"] == "female" else 1.0 - kb.female[c]
        if _known(row.get("duration_weeks")):
            base *= _duration_mass(float(row["duration_weeks"]), *kb.duration[c])
        for s in range(len(SERIOUS_CONDITIONS)):
            for r in range(len(NERVE_ROOTS)):
                p = base * kb.serious[s_idx, band, c, s] * kb.root[c, r]
                for likelihood in likelihoods:
                    p *= likelihood(band, c, s, r)
                weight[(c, s, r)] = float(p)
    total = sum(weight.values())
    if total == 0:  # answers that contradict each other: no posterior
        return {}, 0.0
    out = {cause: 0.0 for cause in CAUSES} | {"red_flag": 0.0}
    out |= {f"root_{r}": 0.0 for r in NERVE_ROOTS} | {
        f"serious_{s}": 0.0 for s in SERIOUS_CONDITIONS
    }
    for (c, s, r), w in weight.items():
        out[CAUSES[c]] += w / total
        out[f"root_{NERVE_ROOTS[r]}"] += w / total
        out[f"serious_{SERIOUS_CONDITIONS[s]}"] += w / total
        if s > 0:
            out["red_flag"] += w / total
    return out, total


@pytest.fixture(scope="module")
def exact_cases() -> pd.DataFrame:
    """39 varied cases: ordinary, red-flag and spine-clinic rows, plus hand-made edge cases."""
    primary = vignettes.generate(5_000, seed=31)
    clinic = vignettes.generate(5_000, seed=32, setting="spine_clinic")
    rng = np.random.default_rng(33)
    picks = [
        primary.iloc[rng.choice(len(primary), 10, replace=False)],
        primary[primary["red_flag"]].iloc[:6],
        clinic.iloc[rng.choice(len(clinic), 8, replace=False)],
    ]
    frame = pd.concat(picks, ignore_index=True)
    edge = frame.iloc[:6].copy()
    for field in FIELDS[1:]:
        edge.loc[edge.index[0], field.name] = pd.NA  # only the age is known
    edge.loc[edge.index[1], "age"] = 18
    edge.loc[edge.index[2], ["age", "duration_weeks"]] = [100, 0]
    edge.loc[edge.index[3], "duration_weeks"] = 260  # far in a log-normal tail
    edge.loc[edge.index[4], ["age", "cancer_history", "fever"]] = [39, True, True]
    edge.loc[edge.index[5], ["age", "bladder_bowel_dysfunction", "saddle_numbness"]] = [
        60,
        True,
        True,
    ]
    # joint groups with one member known and the other unknown, or both known
    group = frame.iloc[6:10].copy()
    group.loc[group.index[0], ["worse_sitting", "better_sitting"]] = [True, pd.NA]
    group.loc[group.index[1], ["pain_region", "below_knee"]] = [pd.NA, True]
    group.loc[group.index[2], ["pain_region", "below_knee"]] = ["knee_inner_leg", False]
    group.loc[group.index[3], ["worse_bending_forward", "better_bending_forward"]] = [pd.NA, True]
    # imaging known while what decides it is known, unknown, or partly known
    imaging = frame.iloc[10:15].copy()
    decides = ["duration_weeks", "conservative_care_failed", "weakness"]
    imaging.loc[imaging.index[0], ["mri_finding", *decides]] = ["not_done", pd.NA, pd.NA, pd.NA]
    imaging.loc[imaging.index[1], ["mri_finding", *decides]] = ["normal", 9, True, pd.NA]
    imaging.loc[imaging.index[2], ["mri_finding", *decides]] = [
        "disc_herniation",
        pd.NA,
        pd.NA,
        True,
    ]
    imaging.loc[imaging.index[3], ["mri_finding", *decides]] = ["not_done", 20, False, False]
    imaging.loc[imaging.index[4], ["mri_finding", "duration_weeks"]] = ["central_stenosis", 5]
    cases = pd.concat([frame, edge, group, imaging], ignore_index=True)
    assert len(cases) == 39
    return cases


def test_posterior_matches_brute_force(exact_cases: pd.DataFrame, kb: KnowledgeBase) -> None:
    post = vignettes.posterior(exact_cases, latents=True)
    for i, row in exact_cases.iterrows():
        expected, _ = brute_force(row.to_dict(), kb, str(row["setting"]))
        got = post.loc[i]
        for key, value in expected.items():
            assert got[key] == pytest.approx(value, abs=1e-9, rel=0), (i, key)


def test_posterior_rows_sum_to_one() -> None:
    frame = vignettes.generate(50_000, seed=41, setting="spine_clinic")
    post = vignettes.posterior(frame, latents=True)
    assert post.index.equals(frame.index)
    np.testing.assert_allclose(post[CAUSE_COLUMNS].sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(post.filter(like="root_").sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(post.filter(like="serious_").sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(post["red_flag"], 1 - post["serious_none"], atol=1e-9)
    assert np.isfinite(post.to_numpy()).all()
    assert post.to_numpy().min() >= 0 and post.to_numpy().max() <= 1 + 1e-12
    assert post["red_flag"].between(0, 1).all()


# --- calibration --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def calibration() -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = vignettes.generate(200_000, seed=51)
    return frame, vignettes.posterior(frame)


def _check_bins(p: np.ndarray, y: np.ndarray, edges: np.ndarray, min_rows: int) -> int:
    """Observed frequency within max(0.02, 4 SE) of the mean prediction in every full bin."""
    checked = 0
    which = np.digitize(p, edges[1:-1])
    for b in range(len(edges) - 1):
        in_bin = which == b
        n = int(in_bin.sum())
        if n < min_rows:
            continue
        mean, observed = p[in_bin].mean(), y[in_bin].mean()
        se = math.sqrt(max(mean * (1 - mean), 1e-6) / n)
        assert abs(observed - mean) <= max(0.02, 4 * se), (edges[b], n, mean, observed)
        checked += 1
    return checked


def test_predicted_cause_is_calibrated(calibration: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    frame, post = calibration
    probs = post[CAUSE_COLUMNS].to_numpy()
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == frame["cause"].cat.codes.to_numpy()).astype(float)
    assert _check_bins(confidence, correct, np.linspace(0.2, 1.0, 17), min_rows=2_000) >= 10
    # among cases given ~0.8, about 80% have that cause
    near = (confidence > 0.75) & (confidence < 0.85)
    assert near.sum() > 5_000
    assert abs(correct[near].mean() - 0.8) < 0.02
    assert abs(correct[near].mean() - confidence[near].mean()) < 0.01


def test_every_cause_probability_is_calibrated(
    calibration: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    frame, post = calibration
    codes = frame["cause"].cat.codes.to_numpy()
    for k, cause in enumerate(CAUSES):
        p = post[cause].to_numpy()
        y = (codes == k).astype(float)
        assert _check_bins(p, y, np.linspace(0, 1, 11), min_rows=1_000) >= 2, cause
        # the total is right too: expected count vs observed, within 4 standard errors
        assert abs(p.sum() - y.sum()) <= 4 * math.sqrt((p * (1 - p)).sum()), cause


def test_red_flag_probability_is_calibrated(calibration: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    frame, post = calibration
    p, y = post["red_flag"].to_numpy(), frame["red_flag"].to_numpy().astype(float)
    edges = np.array([0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0])
    assert _check_bins(p, y, edges, min_rows=300) >= 7
    assert abs(p.sum() - y.sum()) <= 4 * math.sqrt((p * (1 - p)).sum())
    # it separates: the few cases it flags are mostly real, the many it clears mostly clear
    high, low = p > 0.5, p < 0.01
    assert high.sum() > 500 and y[high].mean() > 0.5
    assert low.mean() > 0.5 and y[low].mean() < 0.01


# --- no trained model beats it ------------------------------------------------------------------


def encode(frame: pd.DataFrame) -> np.ndarray:
    """Booleans as 0/1, categories as codes, unknown as NaN."""
    columns = []
    for field in FIELDS:
        col = frame[field.name]
        if field.kind == "category":
            codes = col.cat.codes.to_numpy().astype(float)
            codes[codes < 0] = np.nan
            columns.append(codes)
        else:
            columns.append(col.astype("Float64").to_numpy(dtype=float, na_value=np.nan))
    return np.column_stack(columns)


@pytest.fixture(scope="module")
def held_out() -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    frame = vignettes.generate(100_000, seed=62)
    return frame, encode(frame), vignettes.posterior(frame)


def _fit_predict(frame: pd.DataFrame, target: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Fit a gradient-boosted classifier on ``frame`` and predict probabilities for ``x``."""
    categorical = np.array([f.kind == "category" for f in FIELDS])
    model = HistGradientBoostingClassifier(
        max_iter=300, categorical_features=categorical, early_stopping=True, random_state=0
    )
    # One OpenMP thread: under ``pytest -n 2`` each worker has a core, and spinning OpenMP
    # barriers on an oversubscribed machine can slow the fit twenty-fold.
    with threadpool_limits(limits=1, user_api="openmp"):
        model.fit(encode(frame), target)
        assert list(model.classes_) == sorted(set(target.tolist()))
        return model.predict_proba(x)


@pytest.fixture(scope="module")
def training() -> pd.DataFrame:
    return vignettes.generate(100_000, seed=61)


@pytest.mark.slow  # fits a gradient-boosted classifier
def test_posterior_beats_a_trained_cause_model(
    training: pd.DataFrame, held_out: tuple[pd.DataFrame, np.ndarray, pd.DataFrame]
) -> None:
    frame, x, post = held_out
    model_p = _fit_predict(training, training["cause"].cat.codes.to_numpy(), x)
    assert model_p.shape[1] == len(CAUSES)
    y = frame["cause"].cat.codes.to_numpy()
    rows = np.arange(len(y))
    model_loss = -np.log(np.clip(model_p[rows, y], 1e-15, 1))
    bayes_loss = -np.log(post[CAUSE_COLUMNS].to_numpy()[rows, y])
    gap = model_loss - bayes_loss
    assert gap.mean() > 0, (model_loss.mean(), bayes_loss.mean())
    # accuracy: not lower than the model's by more than paired sampling noise
    bayes_hit = post[CAUSE_COLUMNS].to_numpy().argmax(axis=1) == y
    model_hit = model_p.argmax(axis=1) == y
    diff = bayes_hit.astype(float) - model_hit
    assert diff.mean() > -3 * diff.std() / math.sqrt(len(diff))


@pytest.mark.slow  # fits a gradient-boosted classifier
def test_posterior_beats_a_trained_red_flag_model(
    training: pd.DataFrame, held_out: tuple[pd.DataFrame, np.ndarray, pd.DataFrame]
) -> None:
    frame, x, post = held_out
    q = np.clip(_fit_predict(training, training["red_flag"].to_numpy(), x)[:, 1], 1e-15, 1 - 1e-15)
    y = frame["red_flag"].to_numpy()
    p = post["red_flag"].to_numpy()
    model_loss = -np.where(y, np.log(q), np.log1p(-q))
    bayes_loss = -np.where(y, np.log(p), np.log1p(-p))
    assert (model_loss - bayes_loss).mean() > 0, (model_loss.mean(), bayes_loss.mean())


# --- unknown answers are marginalised -----------------------------------------------------------

DROPPED = ("worse_sitting", "pain_region", "sex", "duration_weeks", "mri_finding", "cancer_history")


@pytest.fixture(scope="module")
def small() -> pd.DataFrame:
    return vignettes.generate(3_000, seed=71)


@pytest.mark.parametrize("column", DROPPED)
def test_dropping_a_column_equals_setting_it_unknown(small: pd.DataFrame, column: str) -> None:
    dropped = vignettes.posterior(small.drop(columns=column))
    unknown = small.copy()
    unknown[column] = pd.NA
    pd.testing.assert_frame_equal(dropped, vignettes.posterior(unknown), rtol=0, atol=1e-12)
    # and the answer mattered: knowing it moves the posterior
    known = vignettes.posterior(small)
    assert (known[CAUSE_COLUMNS] - dropped[CAUSE_COLUMNS]).abs().to_numpy().max() > 0.01


def test_dropping_everything_but_age_leaves_prior_times_age(kb: KnowledgeBase) -> None:
    ages = pd.DataFrame({"age": [18, 35, 50, 70, 100]})
    post = vignettes.posterior(ages, setting="primary_care")
    joint = kb.prior[0][None, :] * kb.age_pmf[:, ages["age"] - AGE_MIN].T
    np.testing.assert_allclose(post[CAUSE_COLUMNS], joint / joint.sum(axis=1, keepdims=True))


MIXTURE_COLUMNS = ["pain_region", "below_knee", "better_sitting", "worse_walking", "fever"]


@pytest.mark.parametrize("column", MIXTURE_COLUMNS)
def test_unknown_answer_is_the_mixture_over_its_values(
    exact_cases: pd.DataFrame, kb: KnowledgeBase, column: str
) -> None:
    """P(cause | rest) = sum over v of P(cause | rest, v) P(v | rest).

    P(v | rest) comes from the brute force here, and from ``answer_distribution`` too.
    """
    field = FIELD_BY_NAME[column]
    values = [False, True] if field.kind == "bool" else list(field.values)
    for _, row in exact_cases.iloc[:8].iterrows():
        case = row.to_dict()
        setting = str(case["setting"])
        case[column] = pd.NA
        unknown = vignettes.posterior(pd.DataFrame([case]), setting=setting).iloc[0]
        predictive = vignettes.answer_distribution(pd.DataFrame([case]), column, setting).iloc[0]
        _, evidence = brute_force(case, kb, setting)
        mixture = pd.Series(0.0, index=unknown.index)
        for value in values:
            with_value = case | {column: value}
            _, weight = brute_force(with_value, kb, setting)
            assert predictive[value] == pytest.approx(weight / evidence, abs=1e-12, rel=1e-9)
            frame = pd.DataFrame([with_value]).astype({column: object})
            if weight == 0:  # contradicts another member of its group: refused
                with pytest.raises(vignettes.IntakeError, match=column):
                    vignettes.posterior(frame, setting=setting)
                continue
            mixture += weight / evidence * vignettes.posterior(frame, setting=setting).iloc[0]
        np.testing.assert_allclose(unknown.to_numpy(), mixture.to_numpy(), atol=1e-9)


# --- the setting sets the priors ----------------------------------------------------------------

# Answers that depend on the cause alone ("sides" also depends on cauda equina, whose rate the
# setting changes).
STENOSIS_LIKE = {"age": 62, "worse_walking": True, "worse_standing": True}


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def test_spine_clinic_raises_stenosis_for_the_same_case() -> None:
    case = pd.DataFrame([STENOSIS_LIKE])
    primary = vignettes.posterior(case, setting="primary_care").iloc[0]
    clinic = vignettes.posterior(case, setting="spine_clinic").iloc[0]
    assert clinic["spinal_stenosis"] > primary["spinal_stenosis"] + 0.05
    # Against one other cause the posterior odds move exactly as the prior odds do: these answers
    # depend on the cause alone, and the setting changes only the priors (and the rate of
    # serious conditions, which no answer here bears on).
    prior = vignettes.load_knowledge().prior
    stenosis, disc = CAUSES.index("spinal_stenosis"), CAUSES.index("disc_herniation")
    prior_shift = math.log(
        prior[1, stenosis] / prior[1, disc] / (prior[0, stenosis] / prior[0, disc])
    )
    odds_shift = math.log(clinic["spinal_stenosis"] / clinic["disc_herniation"]) - math.log(
        primary["spinal_stenosis"] / primary["disc_herniation"]
    )
    assert odds_shift == pytest.approx(prior_shift, abs=1e-9)
    # Against all other causes the odds rise less than the prior odds (0.10 -> 0.22, log 0.93):
    # the clinic's extra spondylolisthesis and foraminal stenosis explain such a case too.
    assert 0.4 < _logit(clinic["spinal_stenosis"]) - _logit(primary["spinal_stenosis"]) < 0.93
    assert clinic["mechanical_pain"] < primary["mechanical_pain"]
    assert clinic["red_flag"] > primary["red_flag"]
    # the argument and a per-row setting column say the same thing
    column = vignettes.posterior(case.assign(setting="spine_clinic")).iloc[0]
    pd.testing.assert_series_equal(column, clinic)
    # and the default is primary care
    pd.testing.assert_series_equal(vignettes.posterior(case).iloc[0], primary)


# --- answer_distribution ------------------------------------------------------------------------

PREDICTED = (
    "better_sitting",
    "worse_sitting",
    "below_knee",
    "pain_region",
    "sides",
    "sex",
    "mri_finding",
    "fever",
    "numbness",
)


@pytest.fixture(scope="module")
def clinic_cases() -> pd.DataFrame:
    return vignettes.generate(4_000, seed=81, setting="spine_clinic")


@pytest.mark.parametrize("field", PREDICTED)
def test_answer_distribution_rows_sum_to_one(clinic_cases: pd.DataFrame, field: str) -> None:
    dist = vignettes.answer_distribution(clinic_cases, field)
    spec = FIELD_BY_NAME[field]
    assert list(dist.columns) == ([False, True] if spec.kind == "bool" else list(spec.values))
    assert dist.index.equals(clinic_cases.index)
    np.testing.assert_allclose(dist.sum(axis=1), 1.0, atol=1e-12)
    assert dist.to_numpy().min() >= 0


@pytest.mark.parametrize("field", PREDICTED)
def test_answer_distribution_ignores_the_answer_itself(
    clinic_cases: pd.DataFrame, field: str
) -> None:
    answered = vignettes.answer_distribution(clinic_cases, field)
    unknown = vignettes.answer_distribution(clinic_cases.assign(**{field: pd.NA}), field)
    pd.testing.assert_frame_equal(answered, unknown, rtol=0, atol=1e-15)


@pytest.mark.parametrize("field", ["better_sitting", "below_knee", "pain_region", "fever"])
def test_answer_distribution_satisfies_bayes_rule(clinic_cases: pd.DataFrame, field: str) -> None:
    """sum over v of P(v | x) * posterior(x, v) == posterior(x), with the field unknown in x."""
    cases = clinic_cases.iloc[:1_500].assign(**{field: pd.NA})
    dist = vignettes.answer_distribution(cases, field)
    before = vignettes.posterior(cases, latents=True)
    mixture = np.zeros(before.shape)
    for value in dist.columns:
        possible = dist[value].to_numpy() > 0
        with_value = cases[possible].astype({field: object})
        with_value[field] = value
        after = vignettes.posterior(with_value, latents=True).to_numpy()
        mixture[possible] += dist[value].to_numpy()[possible, None] * after
    np.testing.assert_allclose(mixture, before.to_numpy(), rtol=0, atol=1e-9)


def test_answer_distribution_matches_generated_frequencies() -> None:
    """Among older cases worse when walking: P(better_sitting) as often as predicted."""
    frame = vignettes.generate(300_000, seed=91)
    kb = vignettes.load_knowledge()
    older = kb.band_of(frame["age"].to_numpy(dtype=int)) == kb.band_names.index("older")
    rows = frame[older & frame["worse_walking"].fillna(False).to_numpy(dtype=bool)]
    answered = rows["better_sitting"].notna()
    observed = rows.loc[answered, "better_sitting"].astype(bool).mean()
    predicted = vignettes.answer_distribution(rows[["age", "worse_walking"]], "better_sitting")
    expected = predicted[True].mean()
    se = math.sqrt(expected * (1 - expected) / answered.sum())
    assert answered.sum() > 20_000
    assert abs(observed - expected) < 4 * se, (observed, expected, se)
    # the joint group: given worse sitting, relief when sitting never happens, in data or model
    worse = rows[rows["worse_sitting"].fillna(False).to_numpy(dtype=bool)]
    assert not worse["better_sitting"].fillna(False).to_numpy(dtype=bool).any()
    given = vignettes.answer_distribution(worse[["age", "worse_sitting"]], "better_sitting")
    assert (given[True] == 0).all()


def test_answer_distribution_of_a_group_member_follows_the_other(kb: KnowledgeBase) -> None:
    cases = pd.DataFrame(
        [
            {"age": 40, "pain_region": "back_only"},
            {"age": 40, "pain_region": "outer_foot"},
            {"age": 40, "below_knee": False},
            {"age": 40},
        ]
    )
    below = vignettes.answer_distribution(cases, "below_knee")
    assert below.loc[0, True] == 0 and below.loc[1, True] == 1
    region = vignettes.answer_distribution(cases, "pain_region")
    assert region.loc[2, "outer_foot"] == 0
    # with nothing else known the prediction is the prior predictive, by brute force
    _, evidence = brute_force({"age": 40}, kb, "primary_care")
    for value in ("back_only", "outer_leg_big_toe"):
        _, weight = brute_force({"age": 40, "pain_region": value}, kb, "primary_care")
        assert region.loc[3, value] == pytest.approx(weight / evidence, rel=1e-9)


def test_posterior_after_answers_equals_the_posterior_of_the_changed_cases() -> None:
    from model.intake import validate_case

    frame = vignettes.generate(30, seed=8)[list(vignettes.schema.FIELD_NAMES)]
    frame = frame.mask(np.random.default_rng(0).random(frame.shape) < 0.6).assign(age=frame["age"])
    answers = [
        ("fever", True, np.array([0, 3, 5])),
        ("pain_region", "outer_leg_big_toe", np.arange(10)),
        ("duration_weeks", 30.0, np.array([2, 4])),
        ("worse_sitting", False, np.array([1])),
    ]
    cases = [
        validate_case({k: (None if pd.isna(v) else v) for k, v in r.items()})
        for r in frame.to_dict("records")
    ]
    changed = list(cases)
    for name, value, rows in answers:
        changed += [{**cases[r], name: value} for r in rows]
    expected = vignettes.posterior(
        pd.DataFrame(changed).astype(object), evidence=True, refuse_impossible=False
    ).reset_index(drop=True)
    for given in (
        vignettes.posterior_after_answers(frame, answers),
        vignettes.posterior_after_answers(cases, answers),
    ):
        np.testing.assert_allclose(given.to_numpy(), expected.to_numpy(), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="fever"):
        vignettes.posterior_after_answers(frame, [("fever", "yes", np.array([0]))])


def test_an_impossible_row_gets_nan_and_a_log_evidence_of_minus_infinity_if_not_refused() -> None:
    """``refuse_impossible=False``: the row the model rules out weighs nothing (a hypothetical
    answer in a next-question search); the other rows are as they are alone."""
    cases = pd.DataFrame(
        [
            {"age": 50, "worse_sitting": True},
            {"age": 50, "worse_sitting": True, "better_sitting": True},  # probability 0
        ]
    ).astype(object)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no division or log warnings leak out
        out = vignettes.posterior(cases, evidence=True, refuse_impossible=False)
    assert out.loc[1, [*CAUSES, "red_flag"]].isna().all()
    assert out.loc[1, "log_evidence"] == -np.inf
    alone = vignettes.posterior(cases.head(1), evidence=True)
    np.testing.assert_allclose(out.head(1).to_numpy(), alone.to_numpy(), rtol=1e-15)
    assert np.isfinite(out.loc[0, "log_evidence"]) and out.loc[0, "log_evidence"] < 0
    with pytest.raises(ValueError, match="worse_sitting and better_sitting"):
        vignettes.posterior(cases)
