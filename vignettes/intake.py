"""The one intake validator: refuse bad intakes with a message that says what is allowed.

The contract (``docs/interface.md``, generated from :mod:`vignettes.schema`) says that bad
input - a wrong type, an unknown field, an out-of-range or unknown value - is refused with a
``ValueError`` subclass whose message names the field and what is allowed, and that nothing is
guessed silently. This module is that boundary: :func:`validate_case` for one case (a mapping, a
pandas ``Series`` or a dataclass), :func:`validate_frame` for a batch. Everything that reads an
intake goes through it: :mod:`serve`, the MLflow pyfunc (through :mod:`model.intake`, which
re-exports these names) and :func:`vignettes.posterior`. It lives in ``vignettes``, the lowest
layer, because data flows one way and ``vignettes`` imports nothing of ``model``.

Rules, for both:

* only ``age`` is required: an integer 18..100 (a float with an integral value such as ``67.0`` is
  accepted, ``67.5`` is not; a bool is not an integer);
* ``duration_weeks`` is a finite number >= 0 and no longer than the patient has lived
  (``age * 365.25 / 7`` weeks);
* boolean answers must be real booleans (``True``/``False``, also ``numpy.bool_``): the strings
  ``"True"``/``"false"`` and the numbers ``1``/``0``/``1.0`` are refused, because guessing what they
  mean is exactly what the contract forbids;
* categorical answers must be one of the field's allowed strings, spelled exactly;
* ``None`` (JSON ``null``), ``pandas.NA`` or an absent field means "not asked / unknown";
* ``NaN`` means unknown for the numeric fields only when a case is a plain mapping or dataclass.
  In a pandas ``Series`` or ``DataFrame`` every pandas missing marker (``NaN``, ``None``, ``NA``)
  means unknown, because pandas itself stores a missing category or string as ``NaN``.

Label and bookkeeping columns of generated frames are not intake answers; they are accepted and
dropped: :data:`IGNORED_COLUMNS`.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import (
    infer_dtype,
    is_bool_dtype,
    is_float_dtype,
    is_integer_dtype,
    is_object_dtype,
)

from vignettes.schema import (
    FIELD_BY_NAME,
    FIELD_NAMES,
    FIELDS,
    RED_FLAG_FIELDS,
    WEEKS_PER_YEAR,
    Field,
    pandas_dtype,
)
from vignettes.toml_check import did_you_mean

__all__ = [
    "IGNORED_COLUMNS",
    "WEEKS_PER_YEAR",
    "IntakeError",
    "answer_code",
    "answers_frame",
    "asked_fields",
    "is_missing",
    "red_flag_dont_knows",
    "validate_case",
    "validate_frame",
]

IGNORED_COLUMNS: frozenset[str] = frozenset(
    {"case_id", "setting", "cause", "red_flag", "nerve_root", "serious_condition"}
)
"""Columns of :func:`vignettes.generate` frames that are not intake answers (row id, clinical
setting, the labels and the latent truth). :func:`validate_case` and :func:`validate_frame` accept
them and leave them out of their result, so a generated frame or one of its rows validates as is.
Any other unknown name is refused."""

WHERE_FIELDS_ARE_LISTED = "`sciatica-triage --help` and docs/interface.md"
"""Where a user who sent an unknown field finds the valid ones; inside the repository."""

_READ_JSON_HINT = (
    "; note that pandas.read_json turns true/false/null into 1.0/0.0/NaN, so build the frame "
    "with pandas.DataFrame(json.loads(text)) to keep the booleans"
)

_NUMERIC_INFERRED = frozenset({"integer", "floating", "mixed-integer-float", "empty"})

FEW_ROWS = 64
"""Frames of at most this many rows, unless every column already has its contract dtype, are
validated case by case (:func:`validate_case`), which agrees with the column pass and costs less
at that size. Measured on a frame from records: 0.75 ms against 5.6 ms for one row, 1.1 against
6.0 for 32, 2.2 against 6.2 for 64, and the same at about 250 rows; a frame already in the
contract dtypes takes about 1 ms by columns at any of these sizes."""


class IntakeError(ValueError):
    """A case or batch that breaks the intake contract.

    Parameters
    ----------
    field : str or None
        The offending field (for an unknown name, the name as received); ``None`` when the input
        as a whole is unusable (not a mapping, not a DataFrame).
    allowed : str
        What would have been accepted, in words.
    message : str
        The full message; it starts with the field name.
    row : object, optional
        Index label of the first offending row (:func:`validate_frame` only).

    Attributes
    ----------
    field, allowed, row
        As passed.
    """

    def __init__(self, field: str | None, allowed: str, message: str, row: Any = None) -> None:
        super().__init__(message)
        self.field = field
        self.allowed = allowed
        self.row = row

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.field, self.allowed, str(self), self.row))


# --------------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------------


def _show(value: object) -> str:
    """``repr`` of a value, with numpy scalars shown as the Python value they hold."""
    if isinstance(value, np.generic):
        value = value.item()
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(value: object) -> str:
    """The type of a value, with numpy scalars named by the Python type they hold."""
    if isinstance(value, np.generic):
        value = value.item()
    return type(value).__name__


def _unknown_field(name: object, allowed: Iterable[str] = FIELD_NAMES) -> IntakeError:
    shown = name if isinstance(name, str) else _show(name)
    close = difflib.get_close_matches(str(name), list(allowed), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    message = (
        f"{shown}: unknown field {_show(name)}; {hint}the valid fields are listed in "
        f"{WHERE_FIELDS_ARE_LISTED}"
    )
    return IntakeError(str(shown), "one of the contract's field names", message)


def _wrong_type(field: Field, value: object) -> IntakeError:
    hint = ""
    if field.kind == "bool" and isinstance(value, str):
        hint = " (a boolean true/false, not a string)"
    elif field.kind == "bool" and isinstance(value, numbers.Number):
        hint = " (a boolean true/false; numbers such as 1/0 or 1.0/0.0 are not accepted)"
    elif field.kind == "bool":
        hint = " (use null/None for unknown)"
    elif field.kind in ("int", "float") and isinstance(value, bool | np.bool_):
        hint = " (a boolean is not a number)"
    elif field.kind == "category" and isinstance(value, float) and math.isnan(value):
        hint = " (use null/None for unknown)"
    message = (
        f"{field.name}: got {_type_name(value)} {_show(value)}; expected {field.allowed()}{hint}"
    )
    return IntakeError(field.name, field.allowed(), message)


def _bad_value(field: Field, value: object, problem: str) -> IntakeError:
    message = f"{field.name}: {_show(value)} {problem}; expected {field.allowed()}"
    if field.kind == "category" and isinstance(value, str):
        close = difflib.get_close_matches(value, list(field.values), n=1, cutoff=0.6)
        if close:
            message += f" (did you mean {close[0]!r}?)"
    return IntakeError(field.name, field.allowed(), message)


def _required(field: Field) -> IntakeError:
    message = f"{field.name}: is required but missing; expected {field.allowed()}"
    return IntakeError(field.name, field.allowed(), message)


def _longer_than_life(duration: object, age: int) -> IntakeError:
    most = age * WEEKS_PER_YEAR
    message = (
        f"duration_weeks: {_show(duration)} is longer than the patient has lived (age {age}: at "
        f"most {most:.0f} weeks); expected a number >= 0 and at most the patient's age in weeks"
    )
    allowed = "a number >= 0 and at most the patient's age in weeks"
    return IntakeError("duration_weeks", allowed, message)


def _at_row(error: IntakeError, label: object) -> IntakeError:
    """The same error, placed at a row of a frame."""
    text = str(error)
    assert error.field is not None and text.startswith(f"{error.field}: ")
    rest = text[len(error.field) + 2 :]
    message = f"{error.field}, row {_show(label)}: {rest}"
    return IntakeError(error.field, error.allowed, message, row=label)


# --------------------------------------------------------------------------------------------
# One value
# --------------------------------------------------------------------------------------------


def _number(field: Field, value: object) -> float | None:
    """A finite real number (or ``None`` for unknown), refusing bools and non-numbers."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise _wrong_type(field, value)
    try:
        number = float(value)
    except OverflowError:
        raise _bad_value(field, value, "is out of range") from None
    if math.isnan(number):
        return None
    if math.isinf(number):
        raise _bad_value(field, value, "is not a finite number")
    return number


def is_missing(value: object) -> bool:
    """An unknown answer as a reader gives it: ``None``, ``pandas.NA`` or a float NaN."""
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _check_value(field: Field, value: object) -> object:
    """The validated Python value of one answer (``None`` = unknown), or raise IntakeError."""
    if value is None or value is pd.NA:
        return None
    if field.kind == "bool":
        if isinstance(value, bool | np.bool_):
            return bool(value)
        raise _wrong_type(field, value)
    if field.kind == "category":
        if not isinstance(value, str):
            raise _wrong_type(field, value)
        if value not in field.values:
            raise _bad_value(field, value, "is not allowed")
        return str(value)
    number = _number(field, value)
    if number is None:
        return None
    if field.kind == "int" and not isinstance(value, numbers.Integral) and not number.is_integer():
        raise _bad_value(field, value, "is not a whole number")
    too_low = field.low is not None and number < field.low
    if too_low or (field.high is not None and number > field.high):
        raise _bad_value(field, value, "is out of range")
    return int(number) if field.kind == "int" else number


# --------------------------------------------------------------------------------------------
# One case
# --------------------------------------------------------------------------------------------


def _case_items(case: object) -> tuple[dict[Any, object], bool]:
    """The case's ``(name, value)`` pairs and whether pandas missing markers mean unknown."""
    if isinstance(case, pd.Series):
        repeated = case.index[case.index.duplicated()]
        if len(repeated):  # dict() would keep the last answer and drop the others
            name = str(repeated[0])
            message = f"{name}: appears more than once in the case; expected each field once"
            raise IntakeError(name, "each field once", message)
        return dict(case.items()), True
    if isinstance(case, Mapping):
        return dict(case.items()), False
    if dataclasses.is_dataclass(case) and not isinstance(case, type):
        return {f.name: getattr(case, f.name) for f in dataclasses.fields(case)}, False
    message = (
        f"case: expected a mapping of field names to answers (a dict, a pandas Series or a "
        f"dataclass), got {type(case).__name__}"
    )
    raise IntakeError(None, "a mapping of field names to answers", message)


def asked_fields(asked: Iterable[str] | None) -> list[str]:
    """``asked`` checked: intake field names (schema order, once each); ``[]`` for ``None``.

    The fields a patient was asked, whatever the answer: an asked field left unknown was
    answered "don't know", which is not the same as a question never asked.

    Raises
    ------
    IntakeError
        Naming ``asked`` and the first unknown name, with a "did you mean".

    Examples
    --------
    >>> asked_fields(["fever", "age", "fever"])
    ['age', 'fever']
    """
    if asked is None:
        return []
    allowed = "a list of intake field names"
    if isinstance(asked, str | bytes | Mapping) or not isinstance(asked, Iterable):
        message = f"asked: expected {allowed}, got {type(asked).__name__} {asked!r:.40}"
        raise IntakeError("asked", allowed, message)
    names = list(asked)
    for name in names:
        if not isinstance(name, str) or name not in FIELD_BY_NAME:
            hint = did_you_mean(str(name), FIELD_NAMES)
            message = f"asked: {name!r} is not an intake field{hint}; expected {allowed}"
            raise IntakeError("asked", allowed, message)
    return [f for f in FIELD_NAMES if f in set(names)]


def red_flag_dont_knows(answers: Mapping[str, Any], asked: Iterable[str] | None) -> list[str]:
    """The red-flag questions asked and answered "don't know" (unknown in ``answers``).

    Examples
    --------
    >>> red_flag_dont_knows({"fever": None, "cancer_history": False}, ["fever", "cancer_history"])
    ['fever']
    """
    chosen = set(asked_fields(asked))
    return [f for f in RED_FLAG_FIELDS if f in chosen and answers.get(f) is None]


def validate_case(case: Mapping[str, object] | pd.Series | Any) -> dict[str, object]:
    """Check one patient's answers against the contract.

    Parameters
    ----------
    case : mapping, pandas.Series or dataclass instance
        Field name -> answer. Absent fields and ``None`` mean unknown; names in
        :data:`IGNORED_COLUMNS` are accepted and dropped.

    Returns
    -------
    dict
        Every contract field in schema order, with ``int`` (age), ``float`` (duration_weeks),
        ``bool`` or ``str`` values, and ``None`` where unknown.

    Raises
    ------
    IntakeError
        For the first unknown field name, then for the first bad value in schema order, or if
        ``age`` is missing. The message starts with the field name and says what is allowed.

    Examples
    --------
    >>> case = validate_case({"age": 67.0, "worse_walking": True, "sides": "both"})
    >>> case["age"], case["worse_walking"], case["fever"]
    (67, True, None)
    >>> validate_case({"age": 40, "pain_region": "calf"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    vignettes.intake.IntakeError: pain_region: 'calf' is not allowed; expected one of ...
    """
    items, pandas_missing = _case_items(case)
    for name in items:
        if not isinstance(name, str) or (name not in FIELD_BY_NAME and name not in IGNORED_COLUMNS):
            raise _unknown_field(name)
    out: dict[str, object] = dict.fromkeys(FIELD_NAMES)
    for field in FIELDS:
        value = items.get(field.name)
        if value is None or (type(value) is bool and field.kind == "bool"):
            out[field.name] = value  # unknown, or a plain yes/no: valid as it stands
            continue
        if pandas_missing and pd.api.types.is_scalar(value) and pd.isna(value):
            value = None
        out[field.name] = _check_value(field, value)
    if out["age"] is None:
        raise _required(FIELD_BY_NAME["age"])
    duration = out["duration_weeks"]
    if duration is not None and duration > out["age"] * WEEKS_PER_YEAR:  # type: ignore[operator]
        raise _longer_than_life(items.get("duration_weeks"), out["age"])  # type: ignore[arg-type]
    return out


# --------------------------------------------------------------------------------------------
# A frame
# --------------------------------------------------------------------------------------------


def _check_columns(columns: pd.Index) -> None:
    if isinstance(columns, pd.MultiIndex):
        raise IntakeError(None, "flat column names", "columns: expected flat field names")
    for name in columns:
        if not isinstance(name, str) or (name not in FIELD_BY_NAME and name not in IGNORED_COLUMNS):
            raise _unknown_field(name)
    duplicated = columns[columns.duplicated()]
    if len(duplicated):
        name = str(duplicated[0])
        message = f"{name}: the column appears more than once; expected one column per field"
        raise IntakeError(name, "one column per field", message)


def _type_ok(values: np.ndarray, kind: str) -> np.ndarray:
    """Elementwise: does an object array hold values of an acceptable Python type for ``kind``.

    Only used to locate the first offender once the fast, whole-column checks have failed.
    """

    def accepts(value: object) -> bool:
        if kind == "bool":
            return isinstance(value, bool | np.bool_)
        if kind == "category":
            return isinstance(value, str)
        if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
            return False
        if kind == "finite":  # a number that a float can hold
            try:
                return math.isfinite(float(value))
            except OverflowError:
                return False
        return True

    return pd.Series(values, dtype=object).map(accepts).to_numpy(dtype=bool)


def _bool_column(col: pd.Series, missing: np.ndarray) -> tuple[Any, np.ndarray]:
    if is_bool_dtype(col.dtype):
        return col.astype("boolean").array, np.zeros(len(col), dtype=bool)
    if is_object_dtype(col.dtype):
        if infer_dtype(col, skipna=True) == "boolean":
            return col.astype("boolean").array, np.zeros(len(col), dtype=bool)
        values = col.to_numpy(dtype=object)
        bad = ~missing & ~_type_ok(values, "bool")
        if bad.any():
            return None, bad
        # booleans beside a missing marker that pandas' inference does not skip (NaT): one by one
        answers = np.array(
            [not m and bool(v) for v, m in zip(values, missing, strict=True)], dtype=bool
        )
        return pd.arrays.BooleanArray(answers, missing), bad
    return None, ~missing  # numbers, strings, categories: never a boolean


def _category_column(field: Field, col: pd.Series, missing: np.ndarray) -> tuple[Any, np.ndarray]:
    if is_bool_dtype(col.dtype) or pd.api.types.is_numeric_dtype(col.dtype):
        return None, ~missing
    if isinstance(col.dtype, pd.CategoricalDtype) and tuple(col.cat.categories) == field.values:
        # Already the contract dtype (a generated frame): every value is allowed by construction.
        # Compared as a tuple, because unordered CategoricalDtypes are equal in any order.
        return col.array, np.zeros(len(col), dtype=bool)
    bad = ~missing & ~col.isin(list(field.values)).to_numpy(dtype=bool)
    if not bad.any() and infer_dtype(col, skipna=True) not in ("string", "empty", "categorical"):
        bad = ~missing & ~_type_ok(col.to_numpy(dtype=object), "category")  # str look-alikes
    if bad.any():
        return None, bad
    return pd.Categorical(col.astype(object), dtype=pandas_dtype(field)), bad


def _numeric_values(field: Field, col: pd.Series, missing: np.ndarray) -> tuple[Any, np.ndarray]:
    """Float values of a numeric column (NaN where missing), or the mask of wrongly typed rows."""
    n = len(col)
    if is_bool_dtype(col.dtype):
        return None, ~missing
    if is_integer_dtype(col.dtype) or is_float_dtype(col.dtype):
        return col.astype("Float64").to_numpy(dtype=float, na_value=np.nan), np.zeros(n, bool)
    if is_object_dtype(col.dtype):
        if infer_dtype(col, skipna=True) in _NUMERIC_INFERRED:
            try:
                values = pd.to_numeric(col.where(~missing, np.nan)).astype(float)
            except (OverflowError, ValueError, TypeError):  # e.g. integers beyond float range
                return None, ~missing & ~_type_ok(col.to_numpy(dtype=object), "finite")
            return values.to_numpy(dtype=float), np.zeros(n, dtype=bool)
        values = col.to_numpy(dtype=object)
        bad = ~missing & ~_type_ok(values, "finite")
        if bad.any():
            return None, bad
        # Real numbers pandas does not infer as numbers (a fractions.Fraction, say): one by one,
        # as validate_case converts them (a rare input, never a frame that JSON or CSV gives).
        return np.array(
            [np.nan if m else float(v) for v, m in zip(values, missing, strict=True)]
        ), bad
    return None, ~missing  # strings, categories: never a number


def _numeric_column(field: Field, col: pd.Series, missing: np.ndarray) -> tuple[Any, np.ndarray]:
    values, bad = _numeric_values(field, col, missing)
    if values is None:
        return None, bad
    known = ~np.isnan(values)
    bad = ~np.isfinite(values) & ~np.isnan(values)
    if field.kind == "int":
        bad |= ~known  # age is required in every row
        bad |= known & (values != np.round(values))
    if field.low is not None:
        bad |= known & (values < field.low)
    if field.high is not None:
        bad |= known & (values > field.high)
    if bad.any():
        return None, bad
    if field.kind == "int":
        return pd.array(np.round(values).astype(np.int64), dtype="Int64"), bad
    return pd.arrays.FloatingArray(np.where(known, values, 0.0), ~known), bad


def _has_contract_dtype(field: Field, dtype: Any) -> bool:
    """A yes/no or category column's dtype is its contract dtype, valid by that dtype alone:
    the nullable boolean holds only true, false and unknown; the categorical holds only the
    field's values, in the field's order (so its codes are the field's codes)."""
    if field.kind == "bool":
        return isinstance(dtype, pd.BooleanDtype)
    if field.kind == "category" and isinstance(dtype, pd.CategoricalDtype):
        return tuple(dtype.categories) == tuple(field.values) and not dtype.ordered
    return False


def _in_contract_dtypes(df: pd.DataFrame) -> bool:
    """Whether every intake column of ``df`` has its contract dtype (a generated frame, or one
    :func:`validate_frame` returned), for which the column pass is the cheaper one."""
    for name, dtype in df.dtypes.items():
        field = FIELD_BY_NAME.get(name)  # type: ignore[call-overload]
        if field is None:
            continue
        if field.kind in ("bool", "category"):
            if not _has_contract_dtype(field, dtype):
                return False
        elif dtype != pandas_dtype(field):
            return False
    return True


def _unknown_column(field: Field, n: int) -> Any:
    """``n`` unknown answers to ``field`` as a pandas array in its contract dtype.

    Equal to ``pd.array([pd.NA] * n, dtype=pandas_dtype(field))``, built from its masks and
    codes directly: that call infers from ``n`` Python objects, and a frame of a few cases
    spends half its validation on its absent columns that way.
    """
    if field.kind == "category":
        return pd.Categorical.from_codes(np.full(n, -1, dtype=np.int8), dtype=pandas_dtype(field))
    unknown = np.ones(n, dtype=bool)  # under the mask, the values pandas itself puts there
    if field.kind == "bool":
        return pd.arrays.BooleanArray(np.zeros(n, dtype=bool), unknown)
    if field.kind == "int":
        return pd.arrays.IntegerArray(np.ones(n, dtype=np.int64), unknown)
    return pd.arrays.FloatingArray(np.full(n, np.nan), unknown)


def _convert(field: Field, col: pd.Series) -> tuple[Any, np.ndarray]:
    """The column in its contract dtype, or ``None`` and the mask of offending rows."""
    if _has_contract_dtype(field, col.dtype):
        return col.array.copy(), np.zeros(len(col), dtype=bool)
    missing = col.isna().to_numpy(dtype=bool)
    if missing.all() and field.kind != "int":  # a column of unknowns, whatever its dtype
        return _unknown_column(field, len(col)), ~missing
    if field.kind != "category" and isinstance(col.dtype, pd.CategoricalDtype):
        col = col.astype(object)
    if field.kind == "bool":
        return _bool_column(col, missing)
    if field.kind == "category":
        return _category_column(field, col, missing)
    converted, bad = _numeric_column(field, col, missing)
    if converted is None and field.kind == "int":
        bad = bad | missing  # age is required in every row, whatever the column's dtype
    return converted, bad


def _row_error(field: Field, col: pd.Series, position: int) -> IntakeError:
    """The error for one offending row, worded exactly as :func:`validate_case` words it."""
    value = col.iloc[position]
    label = col.index[position]
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return _at_row(_required(field), label)
    try:
        _check_value(field, value)
    except IntakeError as error:
        if field.kind == "bool" and is_float_dtype(col.dtype):
            error = IntakeError(error.field, error.allowed, str(error) + _READ_JSON_HINT)
        return _at_row(error, label)
    # A value that is fine alone but not in this column (cannot happen for the kinds above).
    return _at_row(_wrong_type(field, value), label)


def validate_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Check a batch of cases against the contract, column by column (vectorised).

    Parameters
    ----------
    df : pandas.DataFrame
        One row per case; columns are contract fields (any subset that includes ``age``) and,
        optionally, the ignorable columns of :data:`IGNORED_COLUMNS` (``case_id``, ``setting``,
        ``cause``, ``red_flag``, ``nerve_root``, ``serious_condition``), which are dropped.
        Columns may carry the contract dtypes (a frame from :func:`vignettes.generate`) or plain
        ``object``/``str``/``float``/``int``/``bool`` dtypes (a frame from JSON or CSV). Any pandas
        missing marker means unknown.

    Returns
    -------
    pandas.DataFrame
        A new frame with exactly the contract columns in schema order, in the contract dtypes
        (:func:`vignettes.schema.pandas_dtype`), absent columns added as all-unknown, and the
        input's index.

    Raises
    ------
    IntakeError
        For an unknown or duplicated column, or a bad value. For bad values the error names the
        field and the FIRST offending row (smallest position; ties broken in schema order) by its
        index label (``error.row``), with the value and what is allowed. Boolean columns of
        strings (``"True"``) or numbers (``1``/``0``, ``1.0``/``0.0``) are refused, not guessed.

    Notes
    -----
    Valid frames are checked with whole-column operations only. Once a column is known to be
    bad, an elementwise type scan may run to find its first offender.

    Examples
    --------
    >>> import vignettes
    >>> raw = vignettes.generate(100, seed=1)
    >>> clean = validate_frame(raw)
    >>> list(clean.columns) == list(vignettes.FIELD_NAMES), clean.index.equals(raw.index)
    (True, True)
    """
    if not isinstance(df, pd.DataFrame):
        message = f"frame: expected a pandas DataFrame, got {type(df).__name__}"
        raise IntakeError(None, "a pandas DataFrame", message)
    _check_columns(df.columns)
    n = len(df)
    if "age" not in df.columns:
        raise _required(FIELD_BY_NAME["age"])
    if n <= FEW_ROWS and not _in_contract_dtypes(df):
        valid = _valid_rows(df)
        if valid is not None:
            return valid
    return _validate_columns(df)


def _valid_rows(df: pd.DataFrame) -> pd.DataFrame | None:
    """A frame of a few rows validated case by case, or ``None`` if any row is refused.

    What :func:`_validate_columns` returns, at a third of its cost for a frame built from
    records (a request, one interview's step): pandas spends milliseconds per column on a frame
    of one row. Every pandas missing marker is unknown, as in a column. A refused row gives
    ``None``, so that the column pass finds and words the frame's first offender.
    """
    names = list(df.columns)
    try:
        rows = [
            validate_case(
                {k: None if is_missing(v) else v for k, v in zip(names, row, strict=True)}
            )
            for row in df.to_numpy(dtype=object).tolist()
        ]
    except (IntakeError, TypeError, ArithmeticError):
        return None
    out = answers_frame(rows)
    out.index = df.index
    return out


def _validate_columns(df: pd.DataFrame) -> pd.DataFrame:
    """:func:`validate_frame`'s column-by-column pass (its columns already checked)."""
    n = len(df)
    columns: dict[str, Any] = {}
    first: tuple[int, int, Field] | None = None
    for order, field in enumerate(FIELDS):
        if field.name not in df.columns:
            columns[field.name] = _unknown_column(field, n)
            continue
        converted, bad = _convert(field, df[field.name])
        if converted is not None:
            columns[field.name] = converted
            continue
        position = int(np.flatnonzero(bad)[0])
        if first is None or position < first[0]:
            first = (position, order, field)
    if first is not None:
        raise _row_error(first[2], df[first[2].name], first[0])
    _check_durations(columns["duration_weeks"], columns["age"], df.index)
    return pd.DataFrame(columns, index=df.index)


def _check_durations(duration: Any, age: Any, index: pd.Index) -> None:
    """Refuse the first row whose ``duration_weeks`` is longer than the patient's life."""
    weeks = pd.array(duration, dtype="Float64").to_numpy(dtype=float, na_value=np.nan)
    years = pd.array(age, dtype="Int64").to_numpy(dtype=float, na_value=np.nan)
    longer = weeks > years * WEEKS_PER_YEAR  # NaN compares False: unknown durations pass
    if longer.any():
        position = int(np.flatnonzero(longer)[0])
        error = _longer_than_life(float(weeks[position]), int(years[position]))
        raise _at_row(error, index[position])


# --------------------------------------------------------------------------------------------
# Validated answers back to a frame
# --------------------------------------------------------------------------------------------


@functools.cache
def answer_code(name: str) -> dict[Any, int]:
    """A yes/no or category field's answer -> its code in the contract dtype (booleans 0 and
    1, a category its index in the field's values); ``None`` (unknown) -> -1."""
    spec = FIELD_BY_NAME[name]
    values = (False, True) if spec.kind == "bool" else spec.values
    return {None: -1} | {value: i for i, value in enumerate(values)}


def _category_codes(field: Field, values: list[Any]) -> np.ndarray:
    """The codes of validated values; a value not allowed raises, naming the field."""
    code = answer_code(field.name)
    try:
        return np.array([code[v] for v in values], dtype=np.int8)
    except (KeyError, TypeError):  # not validated: say which value, as validate_case would
        for value in values:
            _check_value(field, value)
        raise


def _answers_column(field: Field, values: list[Any]) -> Any:
    """One field's validated values as a pandas array in the contract dtype (fast path)."""
    if field.kind == "category":
        return pd.Categorical.from_codes(_category_codes(field, values), dtype=pandas_dtype(field))
    missing = np.array([v is None for v in values], dtype=bool)
    if field.kind == "bool":
        return pd.arrays.BooleanArray(np.array([v is True for v in values], dtype=bool), missing)
    if field.kind == "int":
        data = np.array([0 if v is None else v for v in values], dtype=np.int64)
        return pd.arrays.IntegerArray(data, missing)
    data = np.array([0.0 if v is None else v for v in values], dtype=np.float64)
    return pd.arrays.FloatingArray(data, missing)


def answers_frame(answers: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Validated answers (``validate_case`` results) as a frame in the contract's dtypes.

    The frame is what ``validate_frame`` would return for the same cases, so it can go to
    ``TriageModel.predict(..., validated=True)`` without a second validation pass.
    """
    rows = list(answers)
    return pd.DataFrame(
        {f.name: _answers_column(f, [row[f.name] for row in rows]) for f in FIELDS}, copy=False
    )
