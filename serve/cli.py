"""The ``sciatica-triage`` command.

``sciatica-triage predict [case.json | -] [--json] [--model URI]`` reads one case (a JSON object)
or several (a JSON list of objects) from a file or standard input and prints each prediction
explained in words, or as JSON with ``--json``.

Exit status: 0 on success; 2 for bad input (unreadable file, invalid JSON, a field or value the
contract refuses), with a one-line message naming the field; 1 when no model is registered.

Adding a command: write ``add_<name>_command(subparsers)`` that adds a sub-parser and sets
``handler`` (a function ``argparse.Namespace -> int``) with ``set_defaults``, raise
:class:`CommandError` for user errors, and append it to :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from model.intake import IntakeError, validate_case
from serve.interview import add_interview_command
from serve.loading import DEFAULT_MODEL_URI, ModelNotFoundError
from vignettes.schema import FIELDS

__all__ = ["COMMANDS", "CommandError", "build_parser", "fields_help", "main"]

PROG = "sciatica-triage"
EXIT_BAD_INPUT = 2
EXIT_NO_MODEL = 1


class CommandError(Exception):
    """A user error: printed as one line, and the command exits with ``code``."""

    def __init__(self, message: str, code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.code = code


def fields_help(width: int = 100) -> str:
    """Every intake field with its allowed values and question, for ``--help``."""
    lines = [
        "case fields (a JSON object; every field but age may be left out or null, meaning",
        "not asked / unknown; booleans are true/false):",
    ]
    indent = " " * 29
    for field in FIELDS:
        notes = " (required)" if field.name == "age" else ""
        notes += " (red flag)" if field.red_flag else ""
        text = f"  {field.name:<26} {field.allowed()}{notes}"
        lines += textwrap.wrap(text, width, subsequent_indent=indent)
        lines += textwrap.wrap(
            field.question, width, initial_indent=indent, subsequent_indent=indent
        )
    return "\n".join(lines)


def _fill(text: str) -> str:
    return textwrap.fill(text, 100)


# --------------------------------------------------------------------------------------------
# predict
# --------------------------------------------------------------------------------------------


def _read_input(source: str) -> Any:
    """The JSON value in a file, or on standard input for ``-``."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"{source}: cannot read ({exc.strerror or exc})") from exc
    where = "standard input" if source == "-" else source
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"{where}: not valid JSON ({exc})") from exc


def _cases(value: Any) -> tuple[list[Any], bool]:
    """The cases in the input and whether it was a single object (not a list)."""
    if isinstance(value, dict):
        return [value], True
    if isinstance(value, list):
        return value, False
    raise CommandError(f"input: expected a JSON object or a list of objects, got {value!r:.60}")


def _quiet_import_of_pyfunc() -> None:
    """Import the pyfunc class without MLflow's advice to model authors on stderr.

    MLflow warns "Add type hints to the `predict` method" when the class is defined, and resets
    the warning filters while doing so, so the message cannot be filtered; a command-line user
    has no use for it.
    """
    with contextlib.redirect_stderr(io.StringIO()):
        import model.pyfunc  # noqa: F401


def run_predict(args: argparse.Namespace) -> int:
    """``sciatica-triage predict``: validate every case first, then predict them in one pass."""
    from serve.api import load

    cases, single = _cases(_read_input(args.input))
    for number, case in enumerate(cases, start=1):
        try:
            validate_case(case)
        except IntakeError as exc:
            where = "" if single else f"case {number}: "
            raise CommandError(f"{where}{exc}") from exc
    _quiet_import_of_pyfunc()
    try:
        predictor = load(args.model)
    except ModelNotFoundError as exc:
        raise CommandError(str(exc), EXIT_NO_MODEL) from exc
    predictions = predictor.predict_many(cases)
    if args.as_json:
        payload = [p.to_dict() for p in predictions]
        print(json.dumps(payload[0] if single else payload, indent=2))
        return 0
    for number, prediction in enumerate(predictions, start=1):
        if not single:
            print(f"{'=' * 30} case {number} of {len(predictions)} {'=' * 30}")
        print(prediction)
        print()
    return 0


def add_predict_command(subparsers: Any) -> None:
    """Register ``predict``."""
    parser = subparsers.add_parser(
        "predict",
        help="predict, explain and triage one case or a list of cases",
        description=_fill(
            "Predict the likely cause, the red-flag decision and the next step for one case "
            "(a JSON object) or several (a JSON list of objects), read from a file or from "
            "standard input ('-', the default). Research software trained on synthetic data; "
            "not a medical device and not medical advice."
        ),
        epilog=fields_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "input",
        nargs="?",
        default="-",
        metavar="case.json | -",
        help="JSON file with a case or a list of cases; '-' or nothing reads standard input",
    )
    parser.add_argument(
        "--json",
        dest="as_json",
        action="store_true",
        help="print machine-readable JSON (a prediction object, or a list for a list input)",
    )
    parser.add_argument(
        "--model",
        metavar="URI",
        default=None,
        help=f"MLflow model URI (default: {DEFAULT_MODEL_URI}; the tracking store is "
        "MLFLOW_TRACKING_URI, else MLflow's default)",
    )
    parser.set_defaults(handler=run_predict)


# --------------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------------

COMMANDS: list[Callable[[Any], None]] = [add_predict_command, add_interview_command]
"""Functions that each register one sub-command on the ``sciatica-triage`` parser."""


def build_parser() -> argparse.ArgumentParser:
    """The ``sciatica-triage`` parser with every command of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=_fill(
            "Triage of lower back pain radiating to the leg: likely cause, red flags, nerve "
            "root, MRI indication and next step, with the reasons. Research software trained "
            "on synthetic data; not a medical device and not medical advice."
        ),
        epilog=fields_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in COMMANDS:
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``sciatica-triage`` with ``argv`` (default: the process arguments).

    Returns
    -------
    int
        The exit status (``--help`` and usage errors exit through argparse instead).
    """
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except CommandError as exc:
        print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        return exc.code
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return 0


if __name__ == "__main__":
    sys.exit(main())
