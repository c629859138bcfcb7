"""The knowledge base: the packaged file loads, every table is sourced, bad documents are refused.

Malformed documents are built by loading the packaged ``knowledge.toml`` with ``tomllib``,
changing one entry in a deep copy and handing it to :func:`vignettes.knowledge.parse_knowledge`,
which must raise :class:`~vignettes.knowledge.KnowledgeError` naming the table at fault.
"""

from __future__ import annotations

import copy
import re
import tomllib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import vignettes
from vignettes.knowledge import (
    AGES,
    KNOWLEDGE_PATH,
    TABLE_FIELDS,
    KnowledgeBase,
    KnowledgeError,
    parse_knowledge,
)
from vignettes.schema import (
    CAUSES,
    FIELD_BY_NAME,
    FIELD_NAMES,
    NERVE_ROOTS,
    SERIOUS_CONDITIONS,
    SETTINGS,
)

Doc = dict[str, Any]


@pytest.fixture(scope="module")
def document() -> Doc:
    with open(KNOWLEDGE_PATH, "rb") as fh:
        return tomllib.load(fh)


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return vignettes.load_knowledge()


# --- the packaged knowledge base ----------------------------------------------------------------


def test_packaged_knowledge_loads(kb: KnowledgeBase) -> None:
    n_bands, n_c, n_s, n_r = (
        len(kb.band_names),
        len(CAUSES),
        len(SERIOUS_CONDITIONS),
        len(NERVE_ROOTS),
    )
    assert kb.prior.shape == (len(SETTINGS), n_c)
    assert kb.age_pmf.shape == (n_c, AGES.size)
    assert kb.root.shape == (n_c, n_r)
    assert kb.serious.shape == (len(SETTINGS), n_bands, n_c, n_s)
    assert set(kb.tables) == set(TABLE_FIELDS)
    for name, table in kb.tables.items():
        field = FIELD_BY_NAME[name]
        n_values = 2 if field.kind == "bool" else len(field.values)
        assert table.shape == (n_bands, n_c, n_s, n_r, n_values), name
    assert set(kb.missing) == set(FIELD_NAMES)
    assert kb.missing["age"] == 0.0
    assert set(kb.groups) == {"pain_location", "sitting", "bending_forward"}
    for group in kb.groups.values():
        assert group.table.shape == (n_bands, n_c, n_s, n_r, len(group.answers)), group.name
        assert group.codes.shape == (len(group.answers), len(group.fields)), group.name


def test_units_cover_every_table_field_once(kb: KnowledgeBase) -> None:
    members = [name for unit in kb.units for name in unit.fields]
    assert sorted(members) == sorted(TABLE_FIELDS)
    assert len(members) == len(set(members))
    firsts = [unit.fields[0] for unit in kb.units]
    assert firsts == sorted(firsts, key=TABLE_FIELDS.index)  # drawn in schema order
    for unit in kb.units:
        if len(unit.fields) == 1:
            assert unit.table is kb.tables[unit.fields[0]]
        else:
            assert unit is kb.groups[unit.name]
            assert kb.unit_of(unit.fields[-1]) is unit


def test_group_answers_are_sorted_and_distinct(kb: KnowledgeBase) -> None:
    """Sorted by the members' codes (first slowest), so the first member keeps its own draw."""
    for group in kb.groups.values():
        rows = [tuple(r) for r in group.codes.tolist()]
        assert rows == sorted(rows) and len(set(rows)) == len(rows), group.name


def test_member_tables_are_the_group_marginals(kb: KnowledgeBase) -> None:
    for group in kb.groups.values():
        for i, name in enumerate(group.fields):
            for value in range(group.n_values[i]):
                joint = group.table[..., group.codes[:, i] == value].sum(axis=-1)
                np.testing.assert_allclose(kb.tables[name][..., value], joint, atol=1e-12)


def test_groups_keep_the_single_question_marginals(kb: KnowledgeBase) -> None:
    """The groups made the answers consistent without moving each question's own rates."""
    causes = {c: i for i, c in enumerate(CAUSES)}
    was = {  # P(true | cause) of each question before it joined a group
        "worse_sitting": {
            "disc_herniation": 0.70,
            "spinal_stenosis": 0.08,
            "mechanical_pain": 0.35,
        },
        "better_sitting": {"spinal_stenosis": 0.85, "spondylolisthesis": 0.15},
        "better_bending_forward": {"spinal_stenosis": 0.80, "foraminal_stenosis": 0.20},
    }
    for name, rates in was.items():
        for cause, rate in rates.items():
            got = kb.tables[name][:, causes[cause], :, :, 1]
            np.testing.assert_allclose(got, rate, atol=1e-12, err_msg=f"{name} {cause}")
    below = kb.tables["below_knee"][0, 0, 0, :, 1]
    np.testing.assert_allclose(below, [0.06, 0.08, 0.50, 0.90, 0.90, 0.92], atol=0.011)


def test_every_distribution_is_a_distribution(kb: KnowledgeBase) -> None:
    arrays = {"prior": kb.prior, "age": kb.age_pmf, "root": kb.root, "serious": kb.serious}
    arrays |= {f"field {name}": table for name, table in kb.tables.items()}
    for name, array in arrays.items():
        assert np.isfinite(array).all(), name
        assert array.min() >= 0, name
        np.testing.assert_allclose(array.sum(axis=-1), 1.0, atol=1e-9, err_msg=name)
    for name, array in {
        "female": kb.female,
        "missing": np.array(list(kb.missing.values())),
    }.items():
        assert ((array >= 0) & (array <= 1)).all(), name
    assert 0 <= kb.red_flag_block <= 1
    assert (kb.duration[:, 1] > 0).all()


def test_loading_the_same_file_gives_the_same_tables(document: Doc, kb: KnowledgeBase) -> None:
    again = parse_knowledge(copy.deepcopy(document))
    np.testing.assert_array_equal(again.prior, kb.prior)
    for name in TABLE_FIELDS:
        np.testing.assert_array_equal(again.tables[name], kb.tables[name])
    for name, group in kb.groups.items():
        np.testing.assert_array_equal(again.groups[name].table, group.table)
        assert again.groups[name].answers == group.answers
    assert again.sources == kb.sources


def test_every_table_has_a_source(kb: KnowledgeBase) -> None:
    expected = set(TABLE_FIELDS)
    expected |= {f"priors.{s}" for s in SETTINGS}
    expected |= {f"age.{c}" for c in CAUSES}
    expected |= {f"serious.{s}" for s in SERIOUS_CONDITIONS[1:]} | {"serious.setting_multiplier"}
    expected |= {"missingness", "female", "duration_weeks", "nerve_root"}
    expected |= {f"groups.{name}" for name in kb.groups}
    missing = expected - set(kb.sources)
    assert not missing, f"tables without a source: {sorted(missing)}"
    for key, text in kb.sources.items():
        assert isinstance(text, str) and len(text.strip()) >= 10, key


def test_sources_cite_the_article_a_figure_or_an_assumption(kb: KnowledgeBase) -> None:
    cited = re.compile(r"article|assumption|clinical-figures|\b(19|20)\d\d\b|as numbness", re.I)
    for key, text in kb.sources.items():
        assert cited.search(text), f"{key}: source names no article quote, figure or assumption"


# --- malformed documents ------------------------------------------------------------------------


def refuse(document: Doc, change: Callable[[Doc], object], table: str) -> None:
    """Apply ``change`` to a copy of ``document``; parsing must fail and name ``table``."""
    bad = copy.deepcopy(document)
    change(bad)
    with pytest.raises(KnowledgeError, match=re.escape(table)):
        parse_knowledge(bad)


def _set(*path: str, value: object) -> Callable[[Doc], None]:
    def change(doc: Doc) -> None:
        for key in path[:-1]:
            doc = doc[key]
        doc[path[-1]] = value

    return change


def _drop(*path: str) -> Callable[[Doc], None]:
    def change(doc: Doc) -> None:
        for key in path[:-1]:
            doc = doc[key]
        del doc[path[-1]]

    return change


def _ids(cases: list) -> list[str]:
    return [c[1] for c in cases]


NOT_SUMMING_TO_ONE = [
    (_set("priors", "primary_care", "disc_herniation", value=0.40), "[priors.primary_care]"),
    (_set("priors", "spine_clinic", "mechanical_pain", value=0.0), "[priors.spine_clinic]"),
    (_set("nerve_root", "disc_herniation", "L5", value=0.30), "[nerve_root].disc_herniation"),
    (_set("fields", "sides", "spinal_stenosis", "both", value=0.9), "[fields.sides]"),
    (
        _set("groups", "pain_location", "S1", "back_of_leg_heel", value=0.5),
        "[groups.pain_location].S1",
    ),
    (
        _set("fields", "pain_quality", "mechanical_pain", "burning", value=0.3),
        "[fields.pain_quality]",
    ),
    (
        _set("fields", "mri_finding", "background", "older", "normal", value=0.5),
        "[fields.mri_finding].background",
    ),
]


@pytest.mark.parametrize(("change", "table"), NOT_SUMMING_TO_ONE, ids=_ids(NOT_SUMMING_TO_ONE))
def test_distribution_not_summing_to_one(document: Doc, change: Callable, table: str) -> None:
    refuse(document, change, table)
    bad = copy.deepcopy(document)
    change(bad)
    with pytest.raises(KnowledgeError, match="sum to 1"):
        parse_knowledge(bad)


UNKNOWN_CAUSE = [
    (_set("priors", "primary_care", "sciatica", value=0.0), "[priors.primary_care]"),
    (_set("female", "sciatica", value=0.5), "[female]"),
    (_set("fields", "back_pain", "cause", "sciatica", value=0.5), "[fields.back_pain].cause"),
    (_set("fields", "numbness", "cause", "sciatica", value=0.5), "[fields.numbness].cause"),
    (
        _set("fields", "mri_finding", "sensitivity", "sciatica", value=0.5),
        "[fields.mri_finding].sensitivity",
    ),
    (
        _set("fields", "mri_finding", "not_done", "sciatica", value=0.5),
        "[fields.mri_finding].not_done",
    ),
    (_set("missingness", "sciatica", value=0.5), "[missingness]"),
    (_set("fields", "sides", "sciatica", value={"left": 1.0}), "[fields.sides]"),
    (_set("nerve_root", "sciatica", value={"L5": 1.0}), "[nerve_root]"),
    (_set("age", "sciatica", value={"mean": 40, "sd": 10, "source": "assumption"}), "[age]"),
    (_set("duration_weeks", "sciatica", value={"median": 4, "sigma": 1.0}), "[duration_weeks]"),
    (
        _set("serious", "cauda_equina", "rr_cause", "sciatica", value=2.0),
        "[serious.cauda_equina].rr_cause",
    ),
    (
        _set("fields", "mri_finding", "finding", "sciatica", value="normal"),
        "[fields.mri_finding].finding",
    ),
    (_set("groups", "sitting", "sciatica", value={"worse": 1.0}), "[groups.sitting]"),
    (_set("priors", "icu", value={"disc_herniation": 1.0}), "[priors]"),
]

MISSPELT = [
    (_set("serious", "malignancy", "rr_age", "elderly", value=2.0), "[serious.malignancy].rr_age"),
    (
        _set("serious", "setting_multiplier", "spine_clinc", value=2.0),
        "[serious].setting_multiplier",
    ),
    (_set("serious", "malignancy", "rr_cuase", value={}), "[serious.malignancy]"),
    (_set("serious", "malignacy", value={}), "[serious]"),
    (_set("age", "disc_herniation", "sigma", value=11), "[age].disc_herniation"),
    (
        _set("duration_weeks", "mechanical_pain", "sd", value=1.0),
        "[duration_weeks].mechanical_pain",
    ),
    (_set("fields", "mri_finding", "sensitivty", value={}), "[fields.mri_finding]"),
    (_set("fields", "sides", "parent", value="cause"), "[fields.sides]"),
    (_set("misingness", value={}), "top-level"),
]


@pytest.mark.parametrize(("change", "table"), MISSPELT, ids=_ids(MISSPELT))
def test_misspelt_key(document: Doc, change: Callable, table: str) -> None:
    refuse(document, change, table)


def test_misspelt_key_suggests_the_closest_name(document: Doc) -> None:
    refuse(
        document,
        _set("serious", "malignancy", "rr_age", "oldr", value=2.0),
        "(did you mean 'older'?)",
    )


@pytest.mark.parametrize(("change", "table"), UNKNOWN_CAUSE, ids=_ids(UNKNOWN_CAUSE))
def test_unknown_cause_name(document: Doc, change: Callable, table: str) -> None:
    refuse(document, change, table)


def test_unknown_value_or_root_name(document: Doc) -> None:
    refuse(
        document,
        _set("fields", "sides", "disc_herniation", value={"left": 0.5, "middle": 0.5}),
        "[fields.sides].disc_herniation",
    )
    refuse(
        document,
        _set("fields", "weakness", "nerve_root", "L6", value=0.3),
        "[fields.weakness].nerve_root",
    )
    refuse(
        document,
        _set("fields", "mri_finding", "finding", "disc_herniation", value="fracture"),
        "[fields.mri_finding].finding.disc_herniation",
    )
    refuse(document, _set("fields", "fever", "parents", value={}), "[fields.fever]")
    refuse(document, _set("fields", "sciatica", value={"kind": "bernoulli"}), "[fields]")
    refuse(document, _drop("fields", "fever"), "[fields]")


PROBABILITY_ABOVE_ONE = [
    (_set("priors", "primary_care", "disc_herniation", value=1.2), "[priors.primary_care]"),
    (_set("female", "spondylolisthesis", value=1.5), "[female]"),
    (
        _set("fields", "worse_walking", "cause", "disc_herniation", value=1.2),
        "[fields.worse_walking].cause",
    ),
    (
        _set("fields", "numbness", "nerve_root", "default", value=1.01),
        "[fields.numbness].nerve_root",
    ),
    (_set("fields", "fever", "serious", "infection", value=2.0), "[fields.fever].serious"),
    (
        _set("fields", "cancer_history", "age_band", "older", value=1.1),
        "[fields.cancer_history].age_band",
    ),
    (
        _set("fields", "mri_finding", "not_done", "mechanical_pain", value=1.5),
        "[fields.mri_finding].not_done",
    ),
    (_set("fields", "sides", "disc_herniation", "left", value=1.5), "[fields.sides]"),
    (_set("missingness", "reflex_changes", value=1.5), "[missingness]"),
    (_set("serious", "malignancy", "base", value=1.5), "[serious"),
    (_set("missingness", "red_flag_block", value=1.5), "[missingness].red_flag_block"),
    (_set("groups", "sitting", "disc_herniation", "worse", value=1.2), "[groups.sitting]"),
]


@pytest.mark.parametrize(
    ("change", "table"), PROBABILITY_ABOVE_ONE, ids=_ids(PROBABILITY_ABOVE_ONE)
)
def test_probability_above_one(document: Doc, change: Callable, table: str) -> None:
    refuse(document, change, table)


def test_negative_probability(document: Doc) -> None:
    refuse(document, _set("fields", "fever", "cause", "default", value=-0.1), "[fields.fever]")
    refuse(document, _set("priors", "spine_clinic", "mechanical_pain", value=-0.1), "[priors")
    refuse(document, _set("missingness", "red_flag_block", value=-0.1), "[missingness]")


NOT_A_NUMBER = [
    (_set("female", "disc_herniation", value="half"), "[female].disc_herniation"),
    (_set("fields", "fever", "cause", "default", value=True), "[fields.fever].cause"),
    (_set("fields", "fever", "cause", "default", value=float("nan")), "[fields.fever].cause"),
    (_set("missingness", "red_flag_block", value="often"), "[missingness].red_flag_block"),
    (_set("age", "spinal_stenosis", "mean", value="69"), "[age].spinal_stenosis.mean"),
    (_set("serious", "infection", "base", value=None), "[serious.infection].base"),
    (_set("serious", "setting_multiplier", value=2.0), "[serious].setting_multiplier"),
    (_set("fields", "sides", "disc_herniation", value=0.5), "[fields.sides].disc_herniation"),
]


@pytest.mark.parametrize(("change", "table"), NOT_A_NUMBER, ids=_ids(NOT_A_NUMBER))
def test_value_of_the_wrong_type(document: Doc, change: Callable, table: str) -> None:
    refuse(document, change, table)


MISSING_SOURCE = [
    (_drop("priors", "primary_care", "source"), "[priors.primary_care]"),
    (_drop("priors", "spine_clinic", "source"), "[priors.spine_clinic]"),
    (_drop("age", "spinal_stenosis", "source"), "[age].spinal_stenosis"),
    (_drop("female", "source"), "[female]"),
    (_drop("duration_weeks", "source"), "[duration_weeks]"),
    (_drop("nerve_root", "source"), "[nerve_root]"),
    (_drop("serious", "setting_source"), "[serious]"),
    (_drop("serious", "malignancy", "source"), "[serious.malignancy]"),
    (_drop("fields", "fever", "source"), "[fields.fever]"),
    (_drop("fields", "pain_quality", "source"), "[fields.pain_quality]"),
    (_drop("groups", "pain_location", "source"), "[groups.pain_location]"),
    (_drop("fields", "mri_finding", "source"), "[fields.mri_finding]"),
    (_drop("missingness", "source"), "[missingness]"),
    (_set("fields", "sides", "source", value="  "), "[fields.sides]"),
    (_set("fields", "tingling", "source", value=0.5), "[fields.tingling]"),
]


@pytest.mark.parametrize(("change", "table"), MISSING_SOURCE, ids=_ids(MISSING_SOURCE))
def test_missing_source(document: Doc, change: Callable, table: str) -> None:
    refuse(document, change, table)


KIND_MISMATCH = [
    (_set("fields", "sides", "kind", value="bernoulli"), "[fields.sides]"),
    (_set("fields", "fever", "kind", value="categorical"), "[fields.fever]"),
    (_set("fields", "sides", "kind", value="imaging"), "[fields.sides]"),
    (_set("fields", "pain_quality", "kind", value="imaging"), "[fields.pain_quality]"),
    (_set("fields", "worse_walking", "kind", value="imaging"), "[fields.worse_walking]"),
    (_set("fields", "mri_finding", "kind", value="bernoulli"), "[fields.mri_finding]"),
    (_set("fields", "numbness", "kind", value="gaussian"), "[fields.numbness]"),
    (_drop("fields", "back_pain", "kind"), "[fields.back_pain]"),
]


@pytest.mark.parametrize(("change", "table"), KIND_MISMATCH, ids=_ids(KIND_MISMATCH))
def test_kind_that_does_not_fit_the_field(document: Doc, change: Callable, table: str) -> None:
    refuse(document, change, table)


def test_categorical_parent_must_be_cause_or_root(document: Doc) -> None:
    refuse(document, _set("fields", "sides", "by", value="serious"), "[fields.sides]")


MISSING = [
    (_drop("priors", "spine_clinic"), "[priors]"),
    (_drop("fields", "sides", "mechanical_pain"), "[fields.sides]"),
    (_drop("nerve_root", "mechanical_pain"), "[nerve_root]"),
    (_drop("serious", "infection"), "[serious.infection]"),
    (_drop("age", "mechanical_pain"), "[age]"),
    (_drop("age", "mechanical_pain", "sd"), "[age].mechanical_pain"),
    (_set("age_bands", value={"young": [20, 39], "older": [40, 100]}), "age_bands"),
    (_set("age_bands", value={"young": [18, 39], "older": [45, 100]}), "age_bands"),
    (_set("age_bands", value={"young": [18, 39], "older": [40, 90]}), "age_bands"),
    (_set("age_bands", value={"young": 18}), "age_bands.young"),
    (_drop("serious", "infection", "rr_cause"), "[serious.infection]"),
    (_drop("serious", "infection", "rr_age"), "[serious.infection]"),
    (_drop("serious", "setting_multiplier", "spine_clinic"), "[serious].setting_multiplier"),
    (_drop("fields", "mri_finding", "not_done"), "[fields.mri_finding]"),
    (_drop("fields", "mri_finding", "background"), "[fields.mri_finding]"),
    (_drop("fields", "mri_finding", "finding"), "[fields.mri_finding]"),
    (_drop("fields", "mri_finding", "background", "middle"), "[fields.mri_finding].background"),
    (_drop("missingness", "red_flag_block"), "[missingness]"),
    (_drop("duration_weeks", "spinal_stenosis"), "[duration_weeks]"),
    (_drop("duration_weeks", "spinal_stenosis", "sigma"), "[duration_weeks].spinal_stenosis"),
    (_drop("missingness"), "[missingness]"),
]


@pytest.mark.parametrize(
    ("change", "table"), MISSING, ids=[f"{t} {i}" for i, (_, t) in enumerate(MISSING)]
)
def test_missing_tables_and_keys_are_named(document: Doc, change: Callable, table: str) -> None:
    refuse(document, change, table)


@pytest.mark.parametrize(
    ("change", "table"),
    [
        (_set("age", "disc_herniation", "sd", value=0), "[age].disc_herniation.sd"),
        (_set("age", "disc_herniation", "sd", value=-3), "[age].disc_herniation.sd"),
        (_set("age", "disc_herniation", "mean", value=10_000), "[age].disc_herniation"),
        (
            _set("duration_weeks", "mechanical_pain", "median", value=0),
            "[duration_weeks].mechanical_pain.median",
        ),
        (
            _set("duration_weeks", "mechanical_pain", "sigma", value=-1.0),
            "[duration_weeks].mechanical_pain.sigma",
        ),
    ],
    ids=["age sd 0", "age sd < 0", "age mean far out", "duration median 0", "duration sigma < 0"],
)
def test_degenerate_continuous_parameters(document: Doc, change: Callable, table: str) -> None:
    with np.errstate(divide="raise", invalid="raise"):  # refused before arithmetic goes wrong
        refuse(document, change, table)


@pytest.mark.parametrize(
    ("change", "table"),
    [
        (_set("serious", "infection", "base", value=-0.01), "[serious.infection].base"),
        (_set("serious", "infection", "rr_age", "young", value=-0.7), "[serious.infection].rr_age"),
        (
            _set("serious", "cauda_equina", "rr_cause", "disc_herniation", value=-3.0),
            "[serious.cauda_equina].rr_cause",
        ),
        (
            _set("serious", "setting_multiplier", "spine_clinic", value=-2.0),
            "[serious].setting_multiplier",
        ),
    ],
    ids=["base", "rr_age", "rr_cause", "setting_multiplier"],
)
def test_negative_serious_rate(document: Doc, change: Callable, table: str) -> None:
    refuse(document, change, table)


def test_relative_risks_may_exceed_one(document: Doc) -> None:
    doc = copy.deepcopy(document)
    doc["serious"]["malignancy"]["rr_age"]["older"] = 4.0
    kb = parse_knowledge(doc)
    older, young = kb.band_names.index("older"), kb.band_names.index("young")
    malignancy = SERIOUS_CONDITIONS.index("malignancy")
    ratio = kb.serious[0, older, 0, malignancy] / kb.serious[0, young, 0, malignancy]
    assert ratio == pytest.approx(4.0 / 0.2)


# --- joint groups -------------------------------------------------------------------------------


BAD_GROUPS = [
    (
        _set("groups", "sitting", "fields", value=["worse_sitting", "better_sittin"]),
        "[groups.sitting].fields",
    ),
    (_set("groups", "sitting", "fields", value=["worse_sitting"]), "[groups.sitting].fields"),
    (_set("groups", "sitting", "fields", value="worse_sitting"), "[groups.sitting].fields"),
    (
        _set("groups", "sitting", "fields", value=["worse_sitting", "age"]),
        "[groups.sitting].fields",
    ),
    (
        _set("groups", "bending_forward", "fields", value=["better_sitting", "worse_walking"]),
        "[groups.bending_forward].fields",
    ),
    (_set("groups", "sitting", "by", value="serious"), "[groups.sitting]"),
    (_drop("groups", "sitting", "by"), "[groups.sitting]"),
    (_drop("groups", "sitting", "source"), "[groups.sitting]"),
    (_drop("groups", "sitting", "answers"), "[groups.sitting]"),
    (_set("groups", "sitting", "answers", value={}), "[groups.sitting].answers"),
    (
        _set("groups", "sitting", "answers", "worse", "better_sitting", value="no"),
        "[groups.sitting].answers.worse.better_sitting",
    ),
    (
        _set("groups", "sitting", "answers", "worse", "better_sitting", value=0),
        "[groups.sitting].answers.worse.better_sitting",
    ),
    (
        _set("groups", "pain_location", "answers", "outer_foot", "pain_region", value="toe"),
        "[groups.pain_location].answers.outer_foot.pain_region",
    ),
    (_drop("groups", "sitting", "answers", "worse", "worse_sitting"), "[groups.sitting].answers"),
    (
        _set("groups", "sitting", "answers", "worse", "worse_walking", value=True),
        "[groups.sitting].answers.worse",
    ),
    (
        _set(
            "groups",
            "sitting",
            "answers",
            "also_neutral",
            value={"worse_sitting": False, "better_sitting": False},
        ),
        "[groups.sitting].answers",
    ),
    (_set("groups", "sitting", "disc_herniation", "worse", value=0.8), "[groups.sitting]"),
    (_set("groups", "sitting", "disc_herniation", "wrose", value=0.0), "[groups.sitting]"),
    (_drop("groups", "sitting", "mechanical_pain"), "[groups.sitting]"),
    (_set("groups", "sitting", "L5", value={"worse": 1.0}), "[groups.sitting]"),
    (
        _set("fields", "worse_sitting", value={"kind": "bernoulli", "source": "assumption: x"}),
        "[fields]",
    ),
    (_drop("groups", "sitting"), "[fields]"),  # its fields are then defined nowhere
    (_set("groups", value=[]), "[groups]"),
    # rows by cause: only in a group by nerve root, known causes, distributions
    (
        _set("groups", "sitting", "by_cause", value={"piriformis_syndrome": {"worse": 1.0}}),
        "[groups.sitting].by_cause",
    ),
    (
        _set("groups", "pain_location", "by_cause", value={"sciatica": {"back_only": 1.0}}),
        "[groups.pain_location].by_cause",
    ),
    (
        _set("groups", "pain_location", "by_cause", "piriformis_syndrome", "back_only", value=0.5),
        "[groups.pain_location].by_cause.piriformis_syndrome",
    ),
]

BAD_IMAGING = [
    (
        _set("fields", "mri_finding", "not_done", "setting", "primary_care", value=1.2),
        "[fields.mri_finding].not_done.setting.primary_care",
    ),
    (
        _drop("fields", "mri_finding", "not_done", "setting"),
        "[fields.mri_finding].not_done",
    ),
    (
        _set("fields", "mri_finding", "not_done", "duration_weeks", "edges", value=[12, 6]),
        "[fields.mri_finding].not_done.duration_weeks.edges",
    ),
    (
        _set("fields", "mri_finding", "not_done", "duration_weeks", "factor", value=[1.0, 0.5]),
        "[fields.mri_finding].not_done.duration_weeks.factor",
    ),
    (
        _set("fields", "mri_finding", "not_done", "weakness", "true", value=-0.1),
        "[fields.mri_finding].not_done.weakness.true",
    ),
    (  # an answer in a joint group: its factor's expectation would not factorise
        _set("fields", "mri_finding", "not_done", "worse_sitting", value={"false": 1, "true": 1}),
        "[fields.mri_finding].not_done.worse_sitting",
    ),
    (
        _set("fields", "mri_finding", "not_done", "pain_quality", value={"false": 1, "true": 1}),
        "[fields.mri_finding].not_done",
    ),
    (
        _set("missingness", "examination_block", value=1.5),
        "[missingness].examination_block",
    ),
]


@pytest.mark.parametrize(
    ("change", "table"), BAD_IMAGING, ids=[f"{t} {i}" for i, (_, t) in enumerate(BAD_IMAGING)]
)
def test_malformed_imaging_decision(document: Doc, change: Callable, table: str) -> None:
    refuse(document, change, table)


def test_piriformis_pain_location_rows_replace_the_roots(kb: KnowledgeBase) -> None:
    """Piriformis answers follow its own row (the sciatic territory), whatever the root."""
    group = kb.groups["pain_location"]
    piriformis = CAUSES.index("piriformis_syndrome")
    mechanical = CAUSES.index("mechanical_pain")
    none = NERVE_ROOTS.index("none")
    own = group.table[:, piriformis]
    assert np.allclose(own, own[:1, :1, :1])  # one row for every band, condition and root
    assert not np.allclose(own[0, 0, none], group.table[0, mechanical, 0, none])


@pytest.mark.parametrize(
    ("change", "table"), BAD_GROUPS, ids=[f"{t} {i}" for i, (_, t) in enumerate(BAD_GROUPS)]
)
def test_malformed_group(document: Doc, change: Callable, table: str) -> None:
    refuse(document, change, table)


def test_a_knowledge_base_without_groups_loads(document: Doc, kb: KnowledgeBase) -> None:
    """Groups are optional: the same fields as independent questions load as before."""
    doc = copy.deepcopy(document)
    groups = doc.pop("groups")
    for group in groups.values():
        for name in group["fields"]:
            field = FIELD_BY_NAME[name]
            kind = "bernoulli" if field.kind == "bool" else "categorical"
            spec: Doc = {"kind": kind, "source": "assumption: independent questions"}
            if field.kind == "bool":
                spec["cause"] = {"default": 0.3}
            else:
                spec["by"] = "cause"
                spec |= {c: {field.values[0]: 1.0} for c in CAUSES}
            doc["fields"][name] = spec
    plain = parse_knowledge(doc)
    assert plain.groups == {}
    assert [u.fields for u in plain.units] == [(name,) for name in TABLE_FIELDS]
    frame = vignettes.generate(2_000, seed=1, knowledge=plain)
    assert (frame["pain_region"].dropna() == "back_only").all()
    post = vignettes.posterior(frame, knowledge=plain)
    np.testing.assert_allclose(post[list(CAUSES)].sum(axis=1), 1.0, atol=1e-9)


def test_load_knowledge_reads_another_file(tmp_path, document: Doc) -> None:
    text = KNOWLEDGE_PATH.read_text()
    changed = text.replace("disc_herniation = 0.34\n", "disc_herniation = 0.20\n", 1).replace(
        "mechanical_pain = 0.34\n", "mechanical_pain = 0.48\n", 1
    )
    assert changed != text
    path = tmp_path / "knowledge.toml"
    path.write_text(changed)
    other = vignettes.load_knowledge(path)
    assert other.prior[0, CAUSES.index("disc_herniation")] == pytest.approx(0.20)
    assert other.prior[0, CAUSES.index("mechanical_pain")] == pytest.approx(0.48)
    frame = vignettes.generate(20_000, seed=3, knowledge=other)
    assert frame["cause"].value_counts(normalize=True)["mechanical_pain"] > 0.42


def test_a_serious_condition_row_replaces_the_cause_rows(kb: KnowledgeBase) -> None:
    """Cauda equina is bilateral by its own row ([fields.sides].by_serious), whatever the cause."""
    sides = kb.tables["sides"]
    cauda = SERIOUS_CONDITIONS.index("cauda_equina")
    both = FIELD_BY_NAME["sides"].values.index("both")
    assert np.allclose(sides[:, :, cauda, :, both], sides[0, 0, cauda, 0, both])
    assert sides[0, 0, cauda, 0, both] >= 0.4
    none = SERIOUS_CONDITIONS.index("none")
    disc = CAUSES.index("disc_herniation")
    assert sides[0, disc, none, 0, both] < 0.1  # the cause's own row elsewhere


BAD_BY_SERIOUS = [
    (
        _set("fields", "sides", "by_serious", value={"cauda": {"both": 1.0}}),
        "[fields.sides].by_serious",
    ),
    (
        _set("fields", "sides", "by_serious", value={"cauda_equina": {"both": 0.5}}),
        "[fields.sides].by_serious.cauda_equina",
    ),
    (
        _set("fields", "sides", "by_serious", value={"cauda_equina": {"bilateral": 1.0}}),
        "[fields.sides].by_serious.cauda_equina",
    ),
]


@pytest.mark.parametrize(("change", "table"), BAD_BY_SERIOUS, ids=[t for _, t in BAD_BY_SERIOUS])
def test_malformed_serious_condition_row(document: Doc, change: Callable, table: str) -> None:
    refuse(document, change, table)
