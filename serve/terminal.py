"""What every ``sciatica-triage`` command shares: user errors, JSON input, the model, progress.

A command raises :class:`CommandError` for anything the user can fix; ``serve.cli.main`` prints it
as one line on stderr and exits with its code. Nothing here imports MLflow at import time.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_INTERRUPTED",
    "EXIT_NO_MODEL",
    "INPUT_FORMATS",
    "MLFLOW_CLIENT_SETTINGS",
    "CommandError",
    "Progress",
    "command_environment",
    "load_predictor",
    "read_cases",
    "read_json",
]

EXIT_NO_MODEL = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # what shells report for Ctrl-C (128 + SIGINT)

MLFLOW_CLIENT_SETTINGS = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "4",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}
"""MLflow client settings of the command's own process, unless the user set them: a tracking
server that does not answer is reported after about 4 + 1 + 4 s instead of MLflow's default of
minutes of retries (120 s timeout, 7 retries with growing back-off); MLflow's usage telemetry
is off (MLflow 3 sends it unless told not to), as under ``make``."""


class CommandError(Exception):
    """A user error: printed as one line, and the command exits with ``code``."""

    def __init__(self, message: str, code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.code = code


INPUT_FORMATS = (".json", ".jsonl", ".csv", ".parquet")
"""File suffixes the commands read (standard input, ``-``, is JSON)."""


def _read_text(source: str) -> str:
    where = "standard input" if source == "-" else source
    try:
        return sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CommandError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise CommandError(f"{source}: is a directory, not a file") from None
    except UnicodeDecodeError:
        raise CommandError(f"{where}: not a text file (expected UTF-8)") from None
    except OSError as exc:
        raise CommandError(f"{source}: cannot read ({exc.strerror or exc})") from None


def read_json(source: str) -> Any:
    """The JSON value in a file, or on standard input for ``-``, read strictly.

    A key that appears twice in one object, ``NaN``/``Infinity`` and nesting deeper than
    :data:`vignettes.readers.MAX_JSON_DEPTH` are refused (:func:`vignettes.readers.loads_json`).

    Raises
    ------
    CommandError
        If the file cannot be read or is not valid JSON; the message names the file (and the
        duplicated key).
    """
    from vignettes.readers import InputFormatError, loads_json

    where = "standard input" if source == "-" else source
    try:
        return loads_json(_read_text(source), where)
    except InputFormatError as exc:
        raise CommandError(_placed(exc, where)) from None


def read_cases(source: str) -> Any:
    """The cases in a file by its suffix (:data:`INPUT_FORMATS`), or JSON on standard input.

    ``.json`` and standard input hold one JSON object or a list of them; ``.jsonl`` one object
    per line; ``.csv`` a header of field names and a case per row (cells read as JSON literals:
    :func:`vignettes.readers.csv_records`); ``.parquet`` a frame such as ``make data`` writes.

    Returns
    -------
    dict or list
        One case (a JSON object) or a list of cases.

    Raises
    ------
    CommandError
        For a file that cannot be read, a suffix not in :data:`INPUT_FORMATS`, or a format error
        (a duplicated key or column, bad JSON or CSV); the message names the file.
    """
    from vignettes.readers import InputFormatError, csv_records, frame_records, json_lines

    suffix = "" if source == "-" else Path(source).suffix.lower()
    if suffix in ("", ".json") or source == "-":
        return read_json(source)
    if suffix not in INPUT_FORMATS:
        known = ", ".join(INPUT_FORMATS)
        raise CommandError(f"{source}: unknown file type {suffix!r}; expected one of {known}")
    try:
        if suffix == ".jsonl":
            return json_lines(_read_text(source), source)
        if suffix == ".csv":
            return csv_records(_read_text(source), source)
        return frame_records(_read_parquet(source), source)
    except InputFormatError as exc:
        raise CommandError(_placed(exc, source)) from None


def _placed(error: Exception, where: str) -> str:
    """The message, starting with the file or stream it came from."""
    text = str(error)
    return text if text.startswith(where) else f"{where}: {text}"


def _read_parquet(source: str) -> Any:
    import pandas as pd

    if not Path(source).exists():
        raise CommandError(f"{source}: no such file")
    try:
        return pd.read_parquet(source)
    except (OSError, ValueError, ImportError) as exc:  # pyarrow's errors derive from these
        reason = type(exc).__name__
        raise CommandError(f"{source}: not a readable Parquet file ({reason})") from None


@contextlib.contextmanager
def command_environment(settings: Mapping[str, str] = MLFLOW_CLIENT_SETTINGS) -> Iterator[None]:
    """Set ``settings`` in ``os.environ`` where the user has not, and restore them afterwards.

    The command-line process gets short MLflow timeouts; a caller of ``serve.cli.main`` in the
    same process (a test, a notebook) gets its environment back unchanged.
    """
    added = [name for name in settings if name not in os.environ]
    for name in added:
        os.environ[name] = settings[name]
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


class Progress:
    """``done of total`` on one line of a terminal's stderr; silent when stderr is not a TTY."""

    def __init__(self, total: int, what: str = "cases", stream: TextIO | None = None) -> None:
        self.total = total
        self.what = what
        self.stream = stream if stream is not None else sys.stderr
        self.active = total > 0 and _is_tty(self.stream)

    def update(self, done: int) -> None:
        if self.active:
            share = done / self.total
            self.stream.write(f"\r  {done:,} of {self.total:,} {self.what} ({share:.0%})")
            self.stream.flush()

    def close(self) -> None:
        if self.active:
            self.stream.write("\r\033[K")  # clear the line: the output stays clean
            self.stream.flush()
            self.active = False


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def load_predictor(model_uri: str | None) -> Any:
    """The model for a command: found without creating a store, cached locally by version.

    The tracking store is :func:`serve.loading.locate_store`'s; registry versions are kept in
    :func:`serve.loading.default_cache_dir`, so a second start reads a local copy without MLflow.

    When the store cannot be read and a verified local copy is served instead, one line
    ``sciatica-triage: warning: ...`` says so on stderr.

    Raises
    ------
    CommandError
        With exit status 1 if there is no store, no such model, the server does not answer,
        the store cannot be read with no verified copy at hand, or the model's files differ
        from the manifest recorded at registration.
    """
    import warnings

    from serve.api import Predictor
    from serve.loading import (
        ModelNotFoundError,
        StoreFallbackWarning,
        default_cache_dir,
        load_triage_model,
        locate_store,
    )

    try:
        store = locate_store()
        with (
            command_environment({"MLFLOW_TRACKING_URI": store}),
            warnings.catch_warnings(record=True) as caught,
        ):
            warnings.simplefilter("always", StoreFallbackWarning)
            loaded = load_triage_model(model_uri, cache_dir=default_cache_dir())
        for warning in caught:
            if issubclass(warning.category, StoreFallbackWarning):
                print(f"sciatica-triage: warning: {warning.message}", file=sys.stderr)
            else:  # not ours to judge: shown as it would have been
                warnings.showwarning(
                    warning.message, warning.category, warning.filename, warning.lineno
                )
    except ModelNotFoundError as exc:
        raise CommandError(str(exc), EXIT_NO_MODEL) from None
    except TypeError as exc:
        raise CommandError(str(exc), EXIT_NO_MODEL) from None
    predictor = Predictor.from_loaded(loaded)
    predictor.model.warm_up()
    return predictor
