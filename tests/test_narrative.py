"""Narratives: names fit the sex, text is seeded per case, only answered fields are mentioned and
neither the labels nor the latent variables ever leak into the text."""

import re
import subprocess
import sys

import pandas as pd
import pytest
from faker.providers.person.en_US import Provider as EnUsPerson

import vignettes
from vignettes.narrative import NarrativeInputError, duration_in_words, narrate, patient_name
from vignettes.schema import FIELD_NAMES

SEED = 3
FEMALE_NAMES = frozenset(EnUsPerson.first_names_female)
MALE_NAMES = frozenset(EnUsPerson.first_names_male)


@pytest.fixture(scope="module")
def cases() -> pd.DataFrame:
    return vignettes.generate(600, seed=SEED)


@pytest.fixture(scope="module")
def texts(cases: pd.DataFrame) -> pd.Series:
    return narrate(cases, seed=SEED)


def one_case(**answers: object) -> pd.DataFrame:
    """Case 0 of a fixed dataset with some answers replaced (``None`` = unknown)."""
    df = vignettes.generate(1, seed=1)
    for name, value in answers.items():
        df[name] = pd.array([value], dtype=df[name].dtype)
    return df


def mentions(text: str, phrase: str) -> bool:
    return re.search(rf"\b{re.escape(phrase)}\b", text, flags=re.IGNORECASE) is not None


def first_name(text: str) -> str:
    return text.split(" ")[0].rstrip(",")


# --------------------------------------------------------------------------------------------
# The patient
# --------------------------------------------------------------------------------------------


def test_first_name_fits_sex(cases: pd.DataFrame, texts: pd.Series) -> None:
    for sex, names, noun in (("female", FEMALE_NAMES, "woman"), ("male", MALE_NAMES, "man")):
        rows = cases["sex"] == sex
        assert rows.sum() > 100
        for case_id, text in zip(cases.loc[rows, "case_id"], texts[rows], strict=True):
            assert first_name(text) in names, text
            assert text.startswith(patient_name(SEED, case_id, sex))
            assert f"-year-old {noun}" in text


def test_unknown_sex_gets_neutral_wording() -> None:
    text = narrate(one_case(sex=None, numbness=True, fever=False)).iloc[0]
    assert "-year-old patient" in text
    assert not re.search(r"\b(she|he|her|his|woman|man)\b", text, flags=re.IGNORECASE), text


def test_age_appears_with_the_right_article(cases: pd.DataFrame, texts: pd.Series) -> None:
    for age, text in zip(cases["age"], texts, strict=True):
        assert f"{age}-year-old" in text
    assert "an 18-year-old" in narrate(one_case(age=18)).iloc[0]
    assert "an 83-year-old" in narrate(one_case(age=83)).iloc[0]
    assert "a 67-year-old" in narrate(one_case(age=67)).iloc[0]


# --------------------------------------------------------------------------------------------
# Seeding
# --------------------------------------------------------------------------------------------


def test_returns_a_series_indexed_like_the_frame(cases: pd.DataFrame) -> None:
    shuffled = cases.sample(frac=0.1, random_state=0)
    out = narrate(shuffled, seed=SEED)
    assert out.index.equals(shuffled.index)
    assert out.name == "narrative"
    assert all(isinstance(t, str) and t for t in out)


def test_same_case_same_text_whatever_else_is_in_the_frame(
    cases: pd.DataFrame, texts: pd.Series
) -> None:
    reversed_texts = narrate(cases.iloc[::-1], seed=SEED)
    pd.testing.assert_series_equal(reversed_texts.sort_index(), texts)
    assert narrate(cases.iloc[[10]], seed=SEED).iloc[0] == texts.iloc[10]
    # The same cases built as a separate piece of the dataset read the same.
    piece = vignettes.generate(50, seed=SEED, start=100)
    assert list(narrate(piece, seed=SEED)) == list(texts.iloc[100:150])


def test_another_seed_gives_other_names(cases: pd.DataFrame, texts: pd.Series) -> None:
    other = narrate(cases, seed=SEED + 1)
    names = texts.str.split(",| is ", regex=True).str[0]
    other_names = other.str.split(",| is ", regex=True).str[0]
    assert (names != other_names).mean() > 0.9


def test_wording_varies_between_identical_cases() -> None:
    # Answers chosen so that most sentences have more than one template.
    case = one_case(
        sex="female",
        worse_sitting=True,
        worse_bending_forward=None,
        worse_walking=None,
        worse_standing=None,
        worse_extension=None,
        worse_at_night=True,
        better_rest_movement=True,
        better_sitting=None,
        better_bending_forward=None,
        reflex_changes=True,
        conservative_care_failed=True,
        mri_finding="disc_herniation",
        fever=True,
    )
    df = pd.concat([case] * 60, ignore_index=True)
    df["case_id"] = range(60)
    texts = narrate(df, seed=SEED)
    names = [patient_name(SEED, i, "female") for i in range(60)]
    without_names = {
        text.replace(name, "NAME").replace(name.split(" ")[0], "NAME")
        for name, text in zip(names, texts, strict=True)
    }
    assert len(without_names) > 10


# --------------------------------------------------------------------------------------------
# What is said, and what is not
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "answer", "phrase"),
    [
        ("worse_cough_sneeze", True, "coughing"),
        ("tingling", True, "tingling"),
        ("reflex_changes", True, "reflexes"),
        ("worse_at_night", True, "night"),
        ("fever", True, "fever"),
        ("cancer_history", True, "cancer"),
        ("mri_finding", "not_done", "MRI"),
        ("pain_region", "back_of_leg_heel", "heel"),
        ("pain_quality", "burning", "burning"),
        ("duration_weeks", 26.0, "six months"),
    ],
)
def test_unknown_answers_are_not_mentioned(field: str, answer: object, phrase: str) -> None:
    assert mentions(narrate(one_case(**{field: answer})).iloc[0], phrase)
    assert not mentions(narrate(one_case(**{field: None})).iloc[0], phrase)


def test_no_answers_are_said_briefly() -> None:
    text = narrate(one_case(worse_cough_sneeze=False, fever=False, cancer_history=True)).iloc[0]
    assert "Coughing and sneezing do not affect it." in text
    assert re.search(r"denies [^.]*\bfever\b", text), text
    assert "reports a history of cancer" in text


def test_missing_columns_count_as_unknown() -> None:
    bare = pd.DataFrame({"case_id": [4], "age": [45], "sex": ["female"]})
    all_unknown = one_case(**{f: None for f in FIELD_NAMES if f not in ("age", "sex")})
    all_unknown[["case_id", "age", "sex"]] = [4, 45, "female"]
    text = narrate(bare).iloc[0]
    assert text == narrate(all_unknown).iloc[0]
    assert text.count(".") == 1 and "45-year-old woman" in text


def test_list_unknown_names_the_questions_not_asked() -> None:
    df = one_case(reflex_changes=None, fever=False)
    listed = vignettes.narrative.narrate(df, list_unknown=True).iloc[0]
    assert "Not asked:" in listed and "Has an examiner found changed reflexes?" in listed
    assert "Not asked" not in narrate(df).iloc[0]


LEAKS_UNLESS_MRI_SAYS_SO = {
    "stenosis": {"central_stenosis", "foraminal_stenosis"},
    "herniation": {"disc_herniation"},
    "spondylolisthesis": {"spondylolisthesis"},
    "degenerative": {"degenerative_changes"},
}
NEVER_SAID = (
    "piriformis",
    "mechanical",
    "sciatica",
    "cauda",
    "equina",
    "infection",
    "malignancy",
    "red flag",
    "red_flag",
    "urgent",
    "serious",
    "nerve root",
    "L2",
    "L3",
    "L4",
    "L5",
    "S1",
    "S2",
)


def test_labels_and_latents_never_leak(cases: pd.DataFrame, texts: pd.Series) -> None:
    for mri, text in zip(cases["mri_finding"], texts, strict=True):
        for word, findings in LEAKS_UNLESS_MRI_SAYS_SO.items():
            assert not mentions(text, word) or mri in findings, (word, mri, text)
        for word in NEVER_SAID:
            assert not mentions(text, word), (word, text)


def test_stenosis_only_from_the_mri(cases: pd.DataFrame, texts: pd.Series) -> None:
    stenosis = cases["cause"] == "spinal_stenosis"
    mri_says = cases["mri_finding"].isin(["central_stenosis", "foraminal_stenosis"])
    assert (stenosis & ~mri_says).sum() > 5 and (stenosis & mri_says).sum() > 0
    said = texts.str.contains("stenosis")
    assert not said[stenosis & ~mri_says].any()
    assert said[stenosis & mri_says].all()


def test_text_ignores_labels_and_latents(cases: pd.DataFrame, texts: pd.Series) -> None:
    relabelled = cases.copy()
    for column in ("cause", "red_flag", "nerve_root", "serious_condition"):
        relabelled[column] = relabelled[column].sample(frac=1, random_state=1).to_numpy()
    pd.testing.assert_series_equal(narrate(relabelled, seed=SEED), texts)


# --------------------------------------------------------------------------------------------
# Helpers, bad input, and the lazy import
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("weeks", "words"),
    [
        (0, "a few days"),
        (0.5, "four days"),
        (1, "one week"),
        (6, "six weeks"),
        (12, "three months"),
        (26, "six months"),
        (52, "about a year"),
        (156, "three years"),
        (1600, "31 years"),
    ],
)
def test_duration_in_words(weeks: float, words: str) -> None:
    assert duration_in_words(weeks) == words


def test_bad_values_are_refused_naming_the_field() -> None:
    df = one_case().astype({"pain_quality": object})
    df["pain_quality"] = "stabbing"
    with pytest.raises(ValueError, match="pain_quality") as error:
        narrate(df)
    assert isinstance(error.value, NarrativeInputError)
    with pytest.raises(ValueError, match="age"):
        narrate(pd.DataFrame({"case_id": [0], "age": [7]}))
    with pytest.raises(ValueError, match="fever"):
        narrate(pd.DataFrame({"case_id": [0], "age": [40], "fever": [1]}))
    with pytest.raises(ValueError, match="seed"):
        narrate(one_case(), seed=-1)
    with pytest.raises(ValueError, match="case_id"):
        narrate(pd.DataFrame({"case_id": [-3], "age": [40]}))


def test_structured_path_never_imports_the_narratives() -> None:
    code = (
        "import sys, vignettes; vignettes.generate(10, seed=1); "
        "assert 'vignettes.narrative' not in sys.modules and 'faker' not in sys.modules; "
        "vignettes.narrate(vignettes.generate(2, seed=1)); "
        "assert 'vignettes.narrative' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
