"""The one bad-input suite: valid cases pass and round-trip, every kind of bad input is refused.

``vignettes.intake`` is the one validator; ``model.intake`` re-exports it and
``vignettes.posterior`` reads its input through it. The last section checks that every entry
point refuses the same bad input with the same error type and message; what only the posterior
refuses (answers the knowledge base never gives together) is checked there too.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import io
import json
import math
import pickle
import tomllib
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import model
import model.intake
import serve
import vignettes
from tests.frames import assert_frames_identical
from vignettes.intake import (
    FEW_ROWS,
    IGNORED_COLUMNS,
    IntakeError,
    validate_case,
    validate_frame,
)
from vignettes.knowledge import KNOWLEDGE_PATH, parse_knowledge
from vignettes.narrative import NarrativeInputError
from vignettes.schema import (
    FIELD_BY_NAME,
    FIELD_NAMES,
    FIELDS,
    Field,
    longest_duration,
    pandas_dtype,
)

# --------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------


def known_value(field: Field) -> st.SearchStrategy[Any]:
    """A valid, known answer to ``field``."""
    if field.kind == "bool":
        return st.booleans()
    if field.kind == "category":
        return st.sampled_from(field.values)
    if field.kind == "int":
        whole = st.integers(int(field.low or 0), int(field.high or 100))
        return whole | whole.map(float)
    # duration_weeks: at most the youngest patient's life (18 years), so any age goes with it
    return st.integers(0, 500) | st.floats(0, 939, allow_nan=False, allow_infinity=False)


def valid_value(field: Field) -> st.SearchStrategy[Any]:
    return known_value(field) | st.none()


valid_cases = st.fixed_dictionaries(
    {"age": known_value(FIELD_BY_NAME["age"])},
    optional={f.name: valid_value(f) for f in FIELDS if f.name != "age"},
)


def wrong_type(field: Field, scalars_only: bool = False) -> st.SearchStrategy[Any]:
    """Values of a type the field does not accept."""
    other = st.just(b"x") if scalars_only else st.lists(st.integers(), max_size=2) | st.just({})
    if field.kind == "bool":
        words = st.sampled_from(["True", "False", "true", "yes", "1"])
        numbers = st.sampled_from([0, 1, 1.0, 0.0, np.int64(1), np.float64(0.0), math.nan])
        return words | numbers | other
    if field.kind == "category":
        return st.integers() | st.booleans() | st.just(math.nan) | other
    return st.sampled_from(["67", "many", True, False, np.True_]) | other


def bad_number(field: Field) -> st.SearchStrategy[Any]:
    """Numbers of the right type but outside the field's range (or not whole, for age)."""
    low = field.low if field.low is not None else 0
    below = st.floats(-1e6, low, exclude_max=True, allow_nan=False) | st.just(-math.inf)
    if field.kind == "float":  # duration_weeks: longer than a 100-year life, or infinite
        return below | st.floats(5218, 1e308) | st.just(math.inf)
    high = field.high if field.high is not None else 100
    above = st.integers(int(high) + 1, 10_000)
    fractional = st.floats(low, high, allow_nan=False).filter(lambda x: not x.is_integer())
    return below | above | fractional | st.just(math.inf)


@st.composite
def corrupted_cases(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A valid case with exactly one field corrupted, and that field's name."""
    case = draw(valid_cases)
    kind = draw(st.sampled_from(["unknown_name", "wrong_type", "out_of_range", "bad_category"]))
    if kind == "unknown_name":
        name = draw(st.text(min_size=1, max_size=20))
        name = name if name not in FIELD_BY_NAME and name not in IGNORED_COLUMNS else name + "_x"
        case[name] = draw(st.none() | st.booleans())
        return case, name
    if kind == "out_of_range":
        field = draw(st.sampled_from([f for f in FIELDS if f.kind in ("int", "float")]))
        case[field.name] = draw(bad_number(field))
        return case, field.name
    if kind == "bad_category":
        field = draw(st.sampled_from([f for f in FIELDS if f.kind == "category"]))
        case[field.name] = draw(st.text(max_size=15).filter(lambda v: v not in field.values))
        return case, field.name
    field = draw(st.sampled_from(FIELDS))
    case[field.name] = draw(wrong_type(field))
    return case, field.name


def as_none(value: object) -> object:
    return None if pd.api.types.is_scalar(value) and pd.isna(value) else value


def frame_rows(frame: pd.DataFrame) -> list[dict[str, object]]:
    return [
        {k: as_none(v) for k, v in row.items()} for row in frame.astype(object).to_dict("records")
    ]


@functools.cache
def small_object_frame() -> pd.DataFrame:
    """50 generated cases as plain object columns, with string index labels in reverse order."""
    base = vignettes.generate(50, seed=4).astype(object)
    base.index = [f"case-{i}" for i in range(49, -1, -1)]
    return base


@pytest.fixture(scope="module")
def generated() -> pd.DataFrame:
    return vignettes.generate(2_000, seed=21)


# --------------------------------------------------------------------------------------------
# validate_case
# --------------------------------------------------------------------------------------------


@given(valid_cases)
def test_valid_case_validates_and_round_trips(case: dict[str, Any]) -> None:
    out = validate_case(case)
    assert list(out) == list(FIELD_NAMES)
    for name, value in out.items():
        given_value = case.get(name)
        if given_value is None:
            assert value is None
        else:
            assert value == given_value
            assert (
                type(value)
                is {"int": int, "float": float, "bool": bool, "category": str}[
                    FIELD_BY_NAME[name].kind
                ]
            )
    assert validate_case(out) == out


@given(corrupted_cases())
def test_one_corrupted_field_is_refused_by_name(corrupted: tuple[dict[str, Any], str]) -> None:
    case, name = corrupted
    with pytest.raises(IntakeError) as info:
        validate_case(case)
    assert info.value.field == name
    assert name in str(info.value)
    assert info.value.allowed


def test_messages_say_what_is_allowed() -> None:
    with pytest.raises(IntakeError, match=r"^pain_region: 'calf' is not allowed; expected one of "):
        validate_case({"age": 40, "pain_region": "calf"})
    with pytest.raises(IntakeError, match="did you mean 'outer_foot'"):
        validate_case({"age": 40, "pain_region": "outer_fot"})
    with pytest.raises(IntakeError, match=r"^fever: got str 'True'; expected true or false"):
        validate_case({"age": 40, "fever": "True"})
    with pytest.raises(IntakeError, match=r"1\.0/0\.0 are not accepted"):
        validate_case({"age": 40, "fever": 1.0})
    with pytest.raises(IntakeError, match=r"^age: got bool True; expected an integer >= 18"):
        validate_case({"age": True})
    with pytest.raises(IntakeError, match=r"^age: 67.5 is not a whole number"):
        validate_case({"age": 67.5})
    with pytest.raises(IntakeError, match=r"^age: is required"):
        validate_case({"sex": "female"})
    with pytest.raises(IntakeError, match=r"^age: is required"):
        validate_case({"age": math.nan})


def test_unknown_field_suggests_the_closest_name_and_where_the_list_is() -> None:
    with pytest.raises(IntakeError) as info:
        validate_case({"age": 50, "worse_walkin": True})
    message = str(info.value)
    assert info.value.field == "worse_walkin"
    assert "did you mean 'worse_walking'" in message
    assert "sciatica-triage --help" in message and "docs/interface.md" in message


def test_nan_means_unknown_for_numbers_only() -> None:
    assert validate_case({"age": 50, "duration_weeks": math.nan})["duration_weeks"] is None
    assert validate_case({"age": 50, "fever": None, "sides": pd.NA})["sides"] is None
    for name in ("fever", "sides"):
        with pytest.raises(IntakeError, match=name):
            validate_case({"age": 50, name: math.nan})


def test_numpy_scalars_series_and_dataclasses_are_accepted(generated: pd.DataFrame) -> None:
    case = {"age": np.int64(70), "duration_weeks": np.float64(3.5), "fever": np.False_}
    assert validate_case(case) | {} == validate_case(
        {"age": 70, "duration_weeks": 3.5, "fever": False}
    )

    @dataclasses.dataclass
    class Intake:
        age: int
        worse_walking: bool | None = None

    assert validate_case(Intake(71, True))["worse_walking"] is True
    row = validate_case(generated.iloc[0])  # a row with labels and NaN-coded unknown categories
    assert row["age"] == int(generated["age"].iloc[0])
    with pytest.raises(IntakeError, match="expected a mapping"):
        validate_case([("age", 40)])


def test_error_is_a_value_error_and_pickles() -> None:
    with pytest.raises(ValueError) as info:
        validate_case({"age": 40, "sides": "middle"})
    error = pickle.loads(pickle.dumps(info.value))
    assert isinstance(error, IntakeError)
    assert (error.field, error.allowed, str(error)) == (
        info.value.field,
        info.value.allowed,
        str(info.value),
    )


# --------------------------------------------------------------------------------------------
# validate_frame
# --------------------------------------------------------------------------------------------


def test_generated_frame_validates_to_contract_columns_and_dtypes(generated: pd.DataFrame) -> None:
    shuffled = generated.sample(frac=1.0, random_state=0)
    out = validate_frame(shuffled)
    assert list(out.columns) == list(FIELD_NAMES)
    assert out.index.equals(shuffled.index)
    for field in FIELDS:
        assert out[field.name].dtype == pandas_dtype(field), field.name
        pd.testing.assert_series_equal(
            out[field.name], shuffled[field.name].astype(pandas_dtype(field)), check_names=False
        )
    assert out is not shuffled


def test_frame_agrees_with_case_row_by_row(generated: pd.DataFrame) -> None:
    frame = generated.iloc[:300]
    rows = frame_rows(validate_frame(frame))
    for position, row in enumerate(rows):
        assert row == validate_case(frame.iloc[position])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(valid_cases, min_size=1, max_size=12))
def test_frame_of_plain_records_agrees_with_case(cases: list[dict[str, Any]]) -> None:
    frame = pd.DataFrame(cases)  # plain object / float / int / bool columns, NaN where absent
    rows = frame_rows(validate_frame(frame))
    assert rows == [validate_case(case) for case in cases]


def test_json_and_csv_round_trips(generated: pd.DataFrame) -> None:
    expected = validate_frame(generated)
    records = json.loads(generated.to_json(orient="records"))
    assert_frames_identical(validate_frame(pd.DataFrame(records)), expected)
    from_csv = pd.read_csv(io.StringIO(generated.to_csv(index=False)))
    assert_frames_identical(validate_frame(from_csv), expected)


def test_boolean_strings_and_floats_are_refused() -> None:
    strings = pd.DataFrame({"age": [40, 50], "fever": ["False", "True"]})
    with pytest.raises(IntakeError, match=r"^fever, row 0: got str 'False'.*not a string"):
        validate_frame(strings)
    floats = pd.DataFrame({"age": [40, 50], "fever": [np.nan, 1.0]})
    with pytest.raises(IntakeError, match=r"^fever, row 1: got float 1.0.*read_json") as info:
        validate_frame(floats)
    assert info.value.row == 1
    ints = pd.DataFrame({"age": [40, 50], "fever": [0, 1]})
    with pytest.raises(IntakeError, match=r"^fever, row 0: got int 0"):
        validate_frame(ints)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.data(),
    st.sampled_from(FIELDS),
    st.integers(0, 49),
    st.integers(0, 49),
)
def test_error_names_first_offending_row(
    data: st.DataObject, field: Field, first: int, second: int
) -> None:
    base = small_object_frame().copy()
    bad = data.draw(wrong_type(field, scalars_only=True))
    if field.kind in ("int", "float"):
        bad = data.draw(st.sampled_from([bad, data.draw(bad_number(field))]))
    if field.kind == "category":
        bad = data.draw(st.sampled_from([bad, "calf"]))
    if as_none(bad) is None and field.name != "age":
        bad = "nonsense"  # NaN is "unknown" inside a frame
    positions = sorted({first, second})
    for position in positions:
        base.iat[position, base.columns.get_loc(field.name)] = bad
    with pytest.raises(IntakeError) as info:
        validate_frame(base)
    label = base.index[positions[0]]
    assert info.value.field == field.name
    assert info.value.row == label
    assert str(info.value).startswith(f"{field.name}, row {label!r}: ")


def test_missing_age_names_the_row() -> None:
    frame = pd.DataFrame({"age": [40, None, 50]}, index=[10, 11, 12])
    with pytest.raises(IntakeError, match=r"^age, row 11: is required") as info:
        validate_frame(frame)
    assert info.value.row == 11
    with pytest.raises(IntakeError, match=r"^age: is required"):
        validate_frame(pd.DataFrame({"sex": ["male"]}))


def test_unknown_and_ignored_columns() -> None:
    with pytest.raises(IntakeError, match="did you mean 'numbness'") as info:
        validate_frame(pd.DataFrame({"age": [40], "numbnes": [True]}))
    assert info.value.field == "numbnes"
    with pytest.raises(IntakeError, match="0: unknown field 0"):
        validate_frame(pd.DataFrame({"age": [40], 0: [1]}))
    labelled = pd.DataFrame({"age": [40], **{name: ["x"] for name in IGNORED_COLUMNS}})
    out = validate_frame(labelled)
    assert list(out.columns) == list(FIELD_NAMES)
    assert out.drop(columns="age").isna().all().all()
    with pytest.raises(IntakeError, match="expected a pandas DataFrame"):
        validate_frame({"age": [40]})  # type: ignore[arg-type]


def test_missing_columns_are_added_as_unknown_and_dtypes_are_the_contract() -> None:
    frame = pd.DataFrame({"age": [67.0, 18], "duration_weeks": [2, None], "sides": ["both", None]})
    out = validate_frame(frame)
    assert out["age"].tolist() == [67, 18]
    assert out["duration_weeks"].isna().tolist() == [False, True]
    assert out["sides"].tolist()[0] == "both"
    for field in FIELDS:
        assert out[field.name].dtype == pandas_dtype(field)
    assert validate_frame(frame.iloc[:0]).shape == (0, len(FIELD_NAMES))


def test_out_of_range_numbers_in_frames() -> None:
    with pytest.raises(IntakeError, match=r"^duration_weeks, row 1: -2.0 is out of range"):
        validate_frame(pd.DataFrame({"age": [40, 40], "duration_weeks": [1.0, -2.0]}))
    with pytest.raises(IntakeError, match=r"^age, row 0: 67.5 is not a whole number"):
        validate_frame(pd.DataFrame({"age": [67.5]}))
    with pytest.raises(IntakeError, match=r"^age, row 0: got bool True"):
        validate_frame(pd.DataFrame({"age": [True]}))
    with pytest.raises(IntakeError, match=r"^duration_weeks, row 0: inf is not a finite number"):
        validate_frame(pd.DataFrame({"age": [40], "duration_weeks": [np.inf]}))


# --------------------------------------------------------------------------------------------
# A frame of a few rows: validated case by case, exactly as column by column
# --------------------------------------------------------------------------------------------


def odd_value(field: Field) -> st.SearchStrategy[Any]:
    """What a caller's frame may hold beyond plain valid answers: numpy scalars, fractions,
    every pandas missing marker, wrong types and out-of-range numbers."""
    missing = st.sampled_from([None, math.nan, pd.NA, pd.NaT, np.float64("nan")])
    known = known_value(field)
    as_numpy = known.map(lambda v: np.bool_(v) if isinstance(v, bool) else v)
    if field.kind in ("int", "float"):
        as_numpy = known.map(np.float64) | known.map(lambda v: Fraction(v).limit_denominator(4))
        as_numpy |= st.integers(18, 100).map(np.int16)
        return missing | as_numpy | bad_number(field) | wrong_type(field, scalars_only=True)
    if field.kind == "category":
        as_numpy = known.map(np.str_)
    return missing | as_numpy | wrong_type(field, scalars_only=True)


@st.composite
def few_row_frames(draw: st.DrawFn) -> tuple[pd.DataFrame, bool]:
    """A frame of 1-6 rows, each column in one of the dtypes a caller may give, and whether
    every value is a plain valid answer (the case-by-case pass must then take it)."""
    n = draw(st.integers(1, 6))
    names = draw(st.lists(st.sampled_from(FIELD_NAMES), unique=True, max_size=8))
    plain = True
    columns: dict[str, pd.Series] = {}
    for name in ["age", *names]:
        field = FIELD_BY_NAME[name]
        odd = draw(st.sampled_from([False] * 7 + [True]))  # most frames stay valid
        valid = known_value(field) if name == "age" else valid_value(field)  # age: required
        values = draw(st.lists(odd_value(field) if odd else valid, min_size=n, max_size=n))
        plain &= not odd
        style = draw(st.sampled_from(["inferred", "object", "categorical", "string"]))
        if style == "categorical" and field.kind == "category" and not odd:
            order = draw(st.permutations(field.values))  # any category order is allowed
            columns[name] = pd.Series(values, dtype=object).astype(pd.CategoricalDtype(order))
        elif style == "string" and field.kind == "category" and not odd:
            columns[name] = pd.Series(values, dtype="string")
        elif style == "object":
            columns[name] = pd.Series(values, dtype=object)
        else:
            columns[name] = pd.Series(values)
    index = draw(st.sampled_from([None, [f"p-{i}" for i in range(n)]]))
    frame = pd.DataFrame(columns)
    if index is not None:
        frame.index = index
    return frame, plain


def _column_pass(frame: pd.DataFrame) -> pd.DataFrame | IntakeError:
    try:
        return vignettes.intake._validate_columns(frame)
    except IntakeError as error:
        return error


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(few_row_frames())
def test_few_rows_are_validated_case_by_case_as_column_by_column(
    drawn: tuple[pd.DataFrame, bool],
) -> None:
    """The case-by-case pass takes exactly the frames the column pass takes, into the same
    frame; it gives way (None) on every frame the column pass refuses, and validate_frame then
    raises the column pass's error, word for word."""
    frame, plain = drawn
    expected = _column_pass(frame)
    by_rows = vignettes.intake._valid_rows(frame)
    event(f"{type(expected).__name__}, by rows: {by_rows is not None}")
    if isinstance(expected, IntakeError):
        assert by_rows is None
        with pytest.raises(IntakeError) as info:
            validate_frame(frame)
        assert (str(info.value), info.value.field, info.value.row) == (
            str(expected),
            expected.field,
            expected.row,
        )
        return
    if plain:
        assert by_rows is not None  # the fast pass is the one a plain frame takes
    if by_rows is not None:
        assert_frames_identical(by_rows, expected)
    assert_frames_identical(validate_frame(frame), expected)


def test_a_frame_of_fractions_is_read_as_their_values() -> None:
    """Real numbers pandas does not infer as numbers (a Fraction) are read as validate_case
    reads them, by either pass, instead of failing on an empty list of offenders."""
    for n in (2, FEW_ROWS + 1):  # the case-by-case pass, then the column pass
        weeks = [Fraction(1, 2)] + [None] * (n - 1)
        frame = pd.DataFrame({"age": [Fraction(40)] * n, "duration_weeks": weeks}, dtype=object)
        out = validate_frame(frame)
        assert out["age"].tolist() == [40] * n
        assert out["duration_weeks"].iloc[0] == 0.5 and out["duration_weeks"].iloc[1:].isna().all()
        frame.iat[1, 0] = Fraction(81, 2)
        with pytest.raises(IntakeError, match=r"^age, row 1: .*is not a whole number"):
            validate_frame(frame)


# --------------------------------------------------------------------------------------------
# One error type, one validator, every entry point
# --------------------------------------------------------------------------------------------


def test_every_package_exposes_the_same_error_class() -> None:
    assert model.intake.IntakeError is IntakeError
    assert model.IntakeError is serve.IntakeError is vignettes.IntakeError is IntakeError
    assert vignettes.InputError is IntakeError  # the posterior's former name, kept as an alias
    assert NarrativeInputError is IntakeError  # narrate's former name, likewise
    assert model.intake.validate_case is validate_case
    assert model.intake.validate_frame is validate_frame


def _posterior(case: dict[str, Any]) -> object:
    return vignettes.posterior(pd.DataFrame([case]))


def _answer_distribution(case: dict[str, Any]) -> object:
    return vignettes.answer_distribution(pd.DataFrame([case]), "fever")


ENTRY_POINTS: dict[str, Callable[[dict[str, Any]], object]] = {
    "validate_case": validate_case,
    "validate_frame": lambda case: validate_frame(pd.DataFrame([case])),
    "posterior": _posterior,
    "answer_distribution": _answer_distribution,
}

BAD_CASES = [
    ({"age": 17}, "age"),
    ({"age": 101}, "age"),
    ({"age": None}, "age"),
    ({"sides": "left"}, "age"),  # no age at all
    ({"age": 50.6}, "age"),
    ({"age": "fifty"}, "age"),
    ({"age": True}, "age"),
    ({"age": 50, "sides": "middle"}, "sides"),
    ({"age": 50, "pain_quality": "stabbing"}, "pain_quality"),
    ({"age": 50, "mri_finding": "fracture"}, "mri_finding"),
    ({"age": 50, "sex": "other"}, "sex"),
    ({"age": 50, "duration_weeks": -2}, "duration_weeks"),
    ({"age": 50, "duration_weeks": "six"}, "duration_weeks"),
    ({"age": 50, "duration_weeks": math.inf}, "duration_weeks"),
    ({"age": 50, "duration_weeks": True}, "duration_weeks"),
    ({"age": 50, "numbness": "yes"}, "numbness"),
    ({"age": 50, "numbness": 1}, "numbness"),
    ({"age": 50, "fever": 0.0}, "fever"),
    ({"age": 50, "worse_sittin": True}, "worse_sittin"),
]


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
@pytest.mark.parametrize(("case", "field"), BAD_CASES, ids=[repr(c) for c, _ in BAD_CASES])
def test_every_entry_point_refuses_bad_input_naming_the_field(
    entry: str, case: dict[str, Any], field: str
) -> None:
    with pytest.raises(IntakeError) as info:
        ENTRY_POINTS[entry](case)
    assert info.value.field == field
    assert str(info.value).startswith(field)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(("case", "field"), BAD_CASES, ids=[repr(c) for c, _ in BAD_CASES])
def test_frame_and_posterior_say_the_same_thing(case: dict[str, Any], field: str) -> None:
    """The posterior's message is the validator's, word for word: there is one validator."""
    frame = pd.DataFrame([case], index=["p-1"])
    with pytest.raises(IntakeError) as by_validator:
        validate_frame(frame)
    with pytest.raises(IntakeError) as by_posterior:
        vignettes.posterior(frame)
    assert str(by_posterior.value) == str(by_validator.value)
    assert by_posterior.value.row == by_validator.value.row


def test_setting_is_refused_by_name() -> None:
    allowed = r"'primary_care', 'spine_clinic'"
    with pytest.raises(IntakeError, match=rf"^setting: 'icu' is not allowed; .*{allowed}"):
        vignettes.posterior(pd.DataFrame([{"age": 50}]), setting="icu")
    with pytest.raises(IntakeError, match=rf"^setting, row 'b': expected .*{allowed}") as info:
        vignettes.posterior(
            pd.DataFrame({"age": [50, 60], "setting": ["spine_clinic", "icu"]}, index=["a", "b"])
        )
    assert info.value.row == "b"


def test_posterior_reads_what_the_validator_accepts() -> None:
    """Whole floats for age, booleans in object columns with gaps: the same posterior."""
    pd.testing.assert_frame_equal(
        vignettes.posterior(pd.DataFrame({"age": [50.0, 61.0]})),
        vignettes.posterior(pd.DataFrame({"age": [50, 61]})),
    )
    rows = [{"age": 50, "numbness": True}, {"age": 60, "numbness": None}, {"age": 70}]
    typed = pd.DataFrame(
        {"age": [50, 60, 70], "numbness": pd.array([True, None, None], dtype="boolean")}
    )
    pd.testing.assert_frame_equal(
        vignettes.posterior(pd.DataFrame(rows)), vignettes.posterior(typed)
    )


def test_posterior_columns_strict_and_not(generated: pd.DataFrame) -> None:
    """A misspelt column is refused (it would silently count as unknown); ``strict=False``
    ignores it. A generated frame with a narrative and predicted probabilities beside it is
    accepted as is."""
    case = pd.DataFrame([{"age": 50, "worse_sittin": True}])
    with pytest.raises(IntakeError, match=r"^worse_sittin: .*did you mean 'worse_sitting'"):
        vignettes.posterior(case)
    pd.testing.assert_frame_equal(
        vignettes.posterior(case, strict=False),
        vignettes.posterior(case.drop(columns="worse_sittin")),
    )
    frame = generated.iloc[:50].assign(narrative="text", prob_disc_herniation=0.5)
    expected = vignettes.posterior(generated.iloc[:50][list(vignettes.FIELD_NAMES)])
    pd.testing.assert_frame_equal(vignettes.posterior(frame), expected)
    pd.testing.assert_frame_equal(
        vignettes.posterior(frame.assign(extra=1), strict=False), expected
    )


@pytest.mark.parametrize(
    ("answers", "fields"),
    [
        ({"worse_sitting": True, "better_sitting": True}, "worse_sitting and better_sitting"),
        (
            {"worse_bending_forward": True, "better_bending_forward": True},
            "worse_bending_forward and better_bending_forward",
        ),
        ({"pain_region": "back_only", "below_knee": True}, "pain_region and below_knee"),
        ({"pain_region": "outer_foot", "below_knee": False}, "pain_region and below_knee"),
    ],
)
def test_contradictory_answers_are_refused_by_the_posterior(answers: dict, fields: str) -> None:
    """Valid answers one by one, but the knowledge base never gives them together."""
    frame = pd.DataFrame([{"age": 50}, {"age": 60, **answers}], index=["a", "b"])
    validate_frame(frame)  # each answer is allowed ...
    with pytest.raises(IntakeError, match=f"^{fields}, row 'b': .*contradict") as error:
        vignettes.posterior(frame)  # ... but not together
    assert (error.value.field, error.value.row) == (fields, "b")


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("age", "^age: .*boolean and categorical"),
        ("duration_weeks", "^duration_weeks: "),
        ("worse_sittin", "^worse_sittin: unknown field; did you mean 'worse_sitting'"),
    ],
)
def test_answer_distribution_refuses_other_fields(field: str, message: str) -> None:
    with pytest.raises(IntakeError, match=message):
        vignettes.answer_distribution(pd.DataFrame([{"age": 50}]), field)


def test_an_answer_the_model_never_gives_is_refused() -> None:
    """With a knowledge base where nobody has a history of cancer, ``True`` cannot be scored."""
    with open(KNOWLEDGE_PATH, "rb") as fh:
        doc = tomllib.load(fh)
    never = copy.deepcopy(doc)
    never["fields"]["cancer_history"] |= {"age_band": {"default": 0.0}, "serious": {}}
    kb = parse_knowledge(never)
    case = pd.DataFrame([{"age": 70, "cancer_history": False}, {"age": 70, "cancer_history": True}])
    with pytest.raises(IntakeError, match=r"^cancer_history, row 1: .*probability 0"):
        vignettes.posterior(case, knowledge=kb)
    dist = vignettes.answer_distribution(case, "cancer_history", knowledge=kb)
    assert (dist[True] == 0).all()


# --------------------------------------------------------------------------------------------
# duration_weeks is bounded by the patient's age
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("age", "weeks"), [(40, 5_000), (40, 2_088), (18, 940), (100, 1e308)])
def test_a_duration_longer_than_the_patients_life_is_refused_naming_the_field(
    age: int, weeks: float
) -> None:
    with pytest.raises(IntakeError, match=r"^duration_weeks: .* longer than the patient") as e:
        validate_case({"age": age, "duration_weeks": weeks})
    assert e.value.field == "duration_weeks"
    assert "age in weeks" in e.value.allowed
    frame = pd.DataFrame({"age": [50, age], "duration_weeks": [3.0, weeks]})
    with pytest.raises(IntakeError, match=r"^duration_weeks, row 1: ") as e:
        validate_frame(frame)
    assert e.value.field == "duration_weeks" and e.value.row == 1


@pytest.mark.parametrize(("age", "weeks"), [(40, 2_087), (18, 939), (100, 5_217.8), (30, None)])
def test_a_duration_within_the_patients_life_is_accepted(age: int, weeks: float | None) -> None:
    assert validate_case({"age": age, "duration_weeks": weeks})["duration_weeks"] == weeks
    frame = validate_frame(pd.DataFrame({"age": [age], "duration_weeks": [weeks]}, dtype=object))
    assert len(frame) == 1


def test_generated_durations_never_exceed_the_patients_life() -> None:
    """The generator caps its log-normal durations, so its frames always validate."""
    frame = vignettes.generate(20_000, seed=11)
    assert (frame["duration_weeks"] <= frame["age"] * 365.25 / 7).all()
    # the cap is the one place the posterior's duration mass is a tail: it stays a probability
    from vignettes.knowledge import load_knowledge

    kb = load_knowledge()
    young = np.array([18, 18, 18])
    logpmf = kb.duration_logpmf(np.array([939.0, 2000.0, 10.0]), longest_duration(young))
    assert np.isfinite(logpmf).all()
    assert np.allclose(logpmf[0], logpmf[1])  # beyond the cap reads as the cap


@pytest.mark.parametrize("field", FIELDS, ids=lambda f: f.name)
def test_an_unknown_column_is_what_pandas_makes_of_unknowns(field: Field) -> None:
    """The fast all-unknown column of validation is pandas' own, dtype and values."""
    from vignettes.intake import _unknown_column

    for n in (0, 1, 3):
        made = _unknown_column(field, n)
        expected = pd.array([pd.NA] * n, dtype=pandas_dtype(field))
        assert made.dtype == expected.dtype and type(made) is type(expected)
        pd.testing.assert_extension_array_equal(made, expected)
