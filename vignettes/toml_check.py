"""One TOML checker for both knowledge files (``knowledge.toml`` and ``article.toml``).

Every error it raises is a :class:`KnowledgeError` whose message starts with the file, then the
table and the key at fault, and suggests the closest allowed name for a misspelt one:

- :func:`load_toml` reads a file and passes the document to a parser; a TOML syntax error or a
  table declared twice is reported with the file, the line, the table it is in and the key on
  that line, and an error of the parser gets the file name in front;
- :func:`did_you_mean`, :func:`check_keys`, :func:`check_names` and :func:`numbers` are the
  small checks both parsers use.

Examples
--------
>>> did_you_mean("chronc", ["acute", "chronic", "subacute"])
" (did you mean 'chronic'?)"
>>> numbers([20, "x"], "mri_background.ages")
Traceback (most recent call last):
...
vignettes.toml_check.KnowledgeError: mri_background.ages: item 1: expected a number, got 'x'
"""

from __future__ import annotations

import difflib
import math
import numbers as _numbers
import re
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "KnowledgeError",
    "check_keys",
    "check_names",
    "did_you_mean",
    "load_toml",
    "numbers",
]

T = TypeVar("T")
_AT = re.compile(r"\(at line (?P<line>\d+), column (?P<column>\d+)\)")
_HEADER = re.compile(r"^\s*\[\[?\s*(?P<table>[^\]]+?)\s*\]\]?")
_KEY = re.compile(r"^\s*(?P<key>[A-Za-z0-9_\-\"'.]+)\s*=")


class KnowledgeError(ValueError):
    """A knowledge file is malformed: names the file, the table and what is wrong."""


def did_you_mean(name: object, allowed: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the allowed name closest to ``name``, or ``""``."""
    close = difflib.get_close_matches(str(name), list(allowed), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_keys(
    table: dict[str, Any],
    where: str,
    required: Iterable[str] = (),
    optional: Iterable[str] = (),
) -> None:
    """Refuse a missing required key, or a key that is neither required nor optional.

    Raises
    ------
    KnowledgeError
        ``"<where>: missing [...]"`` or ``"<where>: unknown keys [...] (did you mean ...?);
        allowed [...]"``.
    """
    if not isinstance(table, dict):
        raise KnowledgeError(f"{where}: expected a table, got {type(table).__name__}")
    required, optional = set(required), set(optional)
    allowed = sorted(required | optional)
    missing = sorted(required - table.keys())
    if missing:
        raise KnowledgeError(f"{where}: missing {missing}")
    unknown = sorted(table.keys() - required - optional)
    if unknown:
        hint = did_you_mean(unknown[0], allowed)
        raise KnowledgeError(f"{where}: unknown keys {unknown}{hint}; allowed {allowed}")


def check_names(value: Any, where: str, allowed: Iterable[str] | None = None) -> tuple[str, ...]:
    """A list of names, each one of ``allowed`` (if given).

    Raises
    ------
    KnowledgeError
        ``"<where>: unknown 'x' (did you mean 'y'?); allowed [...]"``, or for a value that is
        not a list of strings.
    """
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise KnowledgeError(f"{where}: expected a list of names, got {value!r}")
    if allowed is not None:
        allowed = list(allowed)
        for name in value:
            if name not in allowed:
                hint = did_you_mean(name, allowed)
                raise KnowledgeError(f"{where}: unknown {name!r}{hint}; allowed {allowed}")
    return tuple(value)


def numbers(value: Any, where: str) -> tuple[float, ...]:
    """A list of finite numbers (not strings, not booleans), as floats.

    Raises
    ------
    KnowledgeError
        Naming the item: ``"<where>: item 1: expected a number, got 'x'"``.
    """
    if not isinstance(value, list):
        raise KnowledgeError(f"{where}: expected a list of numbers, got {value!r}")
    out = []
    for i, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, _numbers.Real):
            raise KnowledgeError(f"{where}: item {i}: expected a number, got {item!r}")
        if not math.isfinite(float(item)):
            raise KnowledgeError(f"{where}: item {i}: expected a finite number, got {item!r}")
        out.append(float(item))
    return tuple(out)


def _syntax_error(path: Path, text: str, error: tomllib.TOMLDecodeError) -> KnowledgeError:
    """The decoder's message with the file, the line, the table it is in and the line's key."""
    message = str(error)
    found = _AT.search(message)
    reason = _AT.sub("", message).strip().rstrip(".")
    if found is None:
        return KnowledgeError(f"{path}: not valid TOML: {reason}")
    line = int(found["line"])
    lines = text.splitlines()
    table = "the top level"
    for previous in reversed(lines[: line - 1]):
        header = _HEADER.match(previous)
        if header:
            table = f"[{header['table']}]"
            break
    here = lines[line - 1] if 0 < line <= len(lines) else ""
    header = _HEADER.match(here)
    key = _KEY.match(here)
    if header:
        place = f"table [{header['table']}]"
    elif key:
        place = f"{table}, key {key['key']!r}"
    else:
        place = table
    return KnowledgeError(
        f"{path}: line {line}, column {found['column']} ({place}): not valid TOML: {reason}"
    )


def load_toml(path: Path | str, parse: Callable[[dict[str, Any]], T]) -> T:
    """Read the TOML file ``path`` and return ``parse(document)``.

    Parameters
    ----------
    path : path-like
        The knowledge file.
    parse : callable
        Checks the document and builds the result; raises :class:`KnowledgeError` (or another
        ``ValueError``) naming the table and key.

    Raises
    ------
    KnowledgeError
        Every error starts with ``path``: it cannot be read, it is not valid TOML (with the
        line, table and key), or ``parse`` refused it.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise KnowledgeError(f"{path}: cannot be read ({error})") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise _syntax_error(path, text, error) from None
    try:
        return parse(document)
    except KnowledgeError as error:
        raise KnowledgeError(f"{path}: {error}") from None
    except (ValueError, TypeError, KeyError, AttributeError) as error:  # a check that was missed
        raise KnowledgeError(f"{path}: {type(error).__name__}: {error}") from None
