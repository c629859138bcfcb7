"""Strict readers for intakes arriving as text: JSON, JSON lines, CSV, and frames as records.

Every door (the ``sciatica-triage`` command, ``make serve`` over HTTP, the Python API) reads what a
client sent through these functions before :func:`vignettes.intake.validate_case` checks the
answers, so that nothing a patient said is lost or changed on the way in:

* a key that appears twice in one JSON object is refused by name
  (``{"bladder_bowel_dysfunction": true, "bladder_bowel_dysfunction": false}`` would otherwise
  keep the last value and silently drop a reported red flag); so is a CSV or frame column that
  appears twice;
* JSON nested deeper than :data:`MAX_JSON_DEPTH` levels is refused (a flat intake needs three:
  a request, its list of records, a record), and so is input too deep for Python's parser;
* ``NaN`` and ``Infinity``, which Python's ``json`` module accepts but JSON does not, are refused;
* a CSV cell is read as the same JSON literal would be - ``true``/``false`` for a yes/no field,
  a number for ``age`` and ``duration_weeks``, the value's name for a category - and an empty
  cell is unknown. Any other spelling (``True``, ``TRUE``, ``yes``, ``1``) stays a string, which the
  validator refuses: strings are not booleans.

Errors are :class:`InputFormatError` (an :class:`~vignettes.intake.IntakeError`, so a
``ValueError``); the message starts with the key or the place and never repeats the input.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable
from typing import Any

import pandas as pd

from vignettes.intake import IntakeError, is_missing
from vignettes.schema import FIELD_BY_NAME

__all__ = [
    "MAX_JSON_DEPTH",
    "InputFormatError",
    "csv_records",
    "frame_records",
    "json_lines",
    "loads_json",
]

MAX_JSON_DEPTH = 32
"""The deepest nesting of JSON arrays and objects accepted; an intake request needs three."""

_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
"""A JSON number, as a CSV cell for a numeric field must be spelled."""


class InputFormatError(IntakeError):
    """Input that cannot be read as intakes: a duplicated key, bad JSON, too deep, bad CSV."""


def _duplicate(key: str, first: object, second: object) -> InputFormatError:
    shown = f" ({json.dumps(first)[:20]}, then {json.dumps(second)[:20]})"
    if not all(isinstance(v, bool | int | float | str) or v is None for v in (first, second)):
        shown = ""
    message = (
        f"{key}: appears more than once in one JSON object{shown}; expected each key once "
        "(which answer is meant cannot be guessed)"
    )
    return InputFormatError(key, "each key once", message)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` for :func:`json.loads` that refuses a key seen twice."""
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                raise _duplicate(key, seen[key], value)
            seen[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _depth(value: Any) -> int:
    """The nesting depth of a parsed JSON value (0 for a scalar), without recursion."""
    deepest = 0
    stack = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest


def _too_deep(where: str, levels: str) -> InputFormatError:
    message = (
        f"{where}: JSON nested {levels} levels deep; at most {MAX_JSON_DEPTH} are accepted "
        "(an intake is one flat object)"
    )
    return InputFormatError(None, f"at most {MAX_JSON_DEPTH} levels of nesting", message)


def loads_json(text: str | bytes, where: str = "input") -> Any:
    """Parse JSON strictly: duplicated keys, ``NaN``/``Infinity`` and deep nesting are refused.

    Parameters
    ----------
    text : str or bytes
        The JSON text (bytes must be UTF-8).
    where : str, default="input"
        What the text is, for messages (a file name, "standard input", "request").

    Returns
    -------
    object
        The parsed value.

    Raises
    ------
    InputFormatError
        For a key that appears twice in one object (``error.field`` is the key), for text that
        is not JSON (the message gives the line and column, never the text), or for nesting
        deeper than :data:`MAX_JSON_DEPTH`.

    Examples
    --------
    >>> loads_json('{"age": 50, "fever": true}')
    {'age': 50, 'fever': True}
    >>> loads_json('{"age": 50, "fever": true, "fever": false}')  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    vignettes.readers.InputFormatError: fever: appears more than once in one JSON object ...
    """
    try:
        if isinstance(text, bytes | bytearray):
            text = bytes(text).decode("utf-8")
        value = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except UnicodeDecodeError:
        message = f"{where}: not UTF-8 text; expected JSON in UTF-8"
        raise InputFormatError(None, "JSON in UTF-8", message) from None
    except json.JSONDecodeError as exc:
        message = f"{where}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        raise InputFormatError(None, "valid JSON", message) from None
    except RecursionError:
        raise _too_deep(where, "more than a thousand") from None
    except ValueError as exc:  # NaN/Infinity, or an integer too long for Python to read
        if isinstance(exc, IntakeError):
            raise
        message = f"{where}: not valid JSON ({exc})"
        raise InputFormatError(None, "valid JSON", message) from None
    depth = _depth(value)
    if depth > MAX_JSON_DEPTH:
        raise _too_deep(where, str(depth))
    return value


def json_lines(text: str, where: str = "input") -> list[Any]:
    """The values of JSON lines text (one JSON value per line; blank lines are skipped).

    Raises
    ------
    InputFormatError
        As :func:`loads_json`, with the line number (counting from 1, as editors do).
    """
    values = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        place = f"{where}, line {number}"
        try:
            values.append(loads_json(line, place))
        except InputFormatError as error:
            if error.field is None:
                raise
            raise InputFormatError(error.field, error.allowed, f"{place}: {error}") from None
    return values


def _check_columns(names: Iterable[object], where: str) -> None:
    seen: set[object] = set()
    for name in names:
        if name in seen:
            message = (
                f"{name}: the column appears more than once in {where}; expected one column "
                "per field (which answer is meant cannot be guessed)"
            )
            raise InputFormatError(str(name), "one column per field", message)
        seen.add(name)


def _csv_cell(name: str, cell: str) -> Any:
    """A CSV cell as the JSON literal of the same spelling would read; other text stays text."""
    field = FIELD_BY_NAME.get(name)
    if field is None or field.kind == "category":
        return cell
    if field.kind == "bool":
        return {"true": True, "false": False}.get(cell, cell)
    if _NUMBER.fullmatch(cell):
        number = float(cell)
        if math.isfinite(number) and number.is_integer() and not re.search(r"[.eE]", cell):
            return int(cell)
        return number
    return cell


def csv_records(text: str, where: str = "input") -> list[dict[str, Any]]:
    """The rows of CSV text (a header of field names, one case per row) as records.

    An empty cell is an unknown answer and is left out of its record; ``true``/``false`` are the
    booleans and JSON numbers the numbers (see the module notes); anything else stays a string
    for the validator to judge.

    Raises
    ------
    InputFormatError
        For a column named twice, a row with more cells than the header, or text that is not CSV.
    """
    try:
        rows = list(csv.reader(io.StringIO(text), strict=True))
    except csv.Error as exc:
        message = f"{where}: not valid CSV ({exc})"
        raise InputFormatError(None, "CSV with a header of field names", message) from None
    if not rows:
        return []
    header, body = rows[0], rows[1:]
    _check_columns(header, where)
    records = []
    for number, row in enumerate(body):
        if not row:
            continue
        if len(row) > len(header):
            message = (
                f"{where}, row {number} (counting from 0): {len(row)} cells under a header of "
                f"{len(header)} columns; expected at most one cell per column"
            )
            raise InputFormatError(None, "one cell per column", message)
        records.append(
            {name: _csv_cell(name, cell) for name, cell in zip(header, row, strict=False) if cell}
        )
    return records


def frame_records(frame: pd.DataFrame, where: str = "input") -> list[dict[str, Any]]:
    """The rows of a frame as records holding only the answers given (missing cells left out).

    Values come out as plain Python values (``numpy.bool_`` as ``bool``, ...).

    Raises
    ------
    InputFormatError
        For a column that appears twice (a record would otherwise keep only one of its values).
    """
    _check_columns(frame.columns, where)
    columns = list(frame.columns)
    rows = zip(*(frame.iloc[:, i].tolist() for i in range(len(columns))), strict=True)
    return [
        {name: value for name, value in zip(columns, row, strict=True) if not is_missing(value)}
        for row in rows
    ]
