"""The ``sciatica-triage`` command.

``sciatica-triage predict [cases | -] [--json | --fhir] [--model URI]`` reads one case (a JSON
object, or a FHIR QuestionnaireResponse) or several (a JSON list of objects, a FHIR Bundle of
QuestionnaireResponses, ``.jsonl``, ``.csv`` or ``.parquet``) from a file or standard input and
prints each prediction explained in words, with ``--json`` as ``{"predictions": [...]}`` (one
record per case with the same keys as over HTTP), or as a FHIR Bundle with ``--fhir``. Records
are numbered from 0.

Exit status: 0 on success; 2 for bad input (unreadable file, invalid JSON, a field or value the
contract refuses), with a one-line message naming the field; 1 when no model is registered, the
tracking store does not exist or its server does not answer (within about 10 s); 130 on Ctrl-C.
Errors are always one line on stderr, never a traceback (``SCIATICA_TRIAGE_DEBUG=1`` shows one
for an unexpected error).

The tracking store is ``MLFLOW_TRACKING_URI``, else ``./mlflow.db``, else the store ``make
train`` wrote in the checkout; nothing is ever created. Registry versions are copied to a local
cache (``SCIATICA_TRIAGE_CACHE``, default ``~/.cache/sciatica-triage/models``; ``off`` turns it
off), so later starts load without MLflow. Large inputs are predicted in chunks of
:data:`CHUNK` cases, with progress on stderr when it is a terminal.

Adding a command: write ``add_<name>_command(subparsers)`` that adds a sub-parser and sets
``handler`` (a function ``argparse.Namespace -> int``) with ``set_defaults``, raise
:class:`CommandError` for user errors, and append it to :data:`COMMANDS`. Import NumPy,
pandas, the model and MLflow inside functions, not at the top: ``main`` must be running when
they load, so that a Ctrl-C during the start is one line, not a traceback.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import json
import os
import sys
import textwrap
from collections.abc import Callable, Sequence
from functools import cache
from importlib import metadata
from typing import Any

from serve.terminal import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    EXIT_NO_MODEL,
    CommandError,
    Progress,
    command_environment,
    load_predictor,
    read_cases,
)

__all__ = [
    "CHUNK",
    "COMMANDS",
    "EXIT_BAD_INPUT",
    "EXIT_INTERRUPTED",
    "EXIT_NO_MODEL",
    "CommandError",
    "build_parser",
    "fields_help",
    "main",
]

PROG = "sciatica-triage"
CHUNK = 2_000
"""Cases predicted at a time: output starts at once and memory stays flat for any input size."""


@cache  # the same text every time; the tests build the parser hundreds of times in one process
def fields_help(width: int = 100) -> str:
    """Every intake field with its allowed values and question, for ``--help``."""
    from vignettes.schema import FIELDS

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


def _cases(value: Any, source: str) -> tuple[list[Any], bool]:
    """The cases in the input and whether it was a single object (not a list).

    A FHIR ``QuestionnaireResponse`` is one case; a FHIR ``Bundle`` holds one case per
    QuestionnaireResponse entry (a single case when it holds exactly one).
    """
    where = "standard input" if source == "-" else source
    if isinstance(value, dict) and value.get("resourceType") == "Bundle":
        entries = value.get("entry") or []
        responses = [
            e["resource"]
            for e in entries
            if isinstance(e, dict)
            and isinstance(e.get("resource"), dict)
            and e["resource"].get("resourceType") == "QuestionnaireResponse"
        ]
        if not responses:
            raise CommandError(f"{where}: the Bundle holds no QuestionnaireResponse")
        return responses, len(responses) == 1
    if isinstance(value, dict):
        kind = value.get("resourceType")
        if kind is not None and kind != "QuestionnaireResponse":
            raise CommandError(
                f"{where}: resourceType {kind!r}: expected a case, a QuestionnaireResponse or a "
                "Bundle that holds one"
            )
        return [value], True
    if isinstance(value, list):
        return value, False
    raise CommandError(f"{where}: expected a JSON object or a list of objects, got {value!r:.60}")


def _validated(cases: list[Any], single: bool) -> list[dict[str, Any]]:
    """Every case validated before anything is predicted, so bad input prints no output.

    A QuestionnaireResponse is read by linkId (``vignettes.from_questionnaire_response``).
    """
    from model.intake import IntakeError, validate_case
    from vignettes.sdc import from_questionnaire_response, is_questionnaire_response

    answers = []
    for number, case in enumerate(cases):
        try:
            if is_questionnaire_response(case):
                answers.append(from_questionnaire_response(case))
            else:
                answers.append(validate_case(case))
        except IntakeError as exc:
            where = "" if single else f"record {number} (counting from 0): "
            raise CommandError(f"{where}{exc}") from None
    return answers


def _responses(cases: list[Any]) -> list[dict[str, Any] | None]:
    """The QuestionnaireResponse each case came as (``None`` for a plain case)."""
    return [c if isinstance(c, dict) and c.get("resourceType") else None for c in cases]


def _rendered(prediction: Any, response: Any, asked: Any, indent: int) -> str:
    """One prediction as ``--fhir`` JSON: the response it came as, or one built from its
    answers that keeps every question asked (a "don't know" as an item without an answer)."""
    return json.dumps(prediction.to_fhir(response=response, asked=asked), indent=indent)


def run_predict(args: argparse.Namespace) -> int:
    """``sciatica-triage predict``: validate every case, then predict and print chunk by chunk."""
    cases, single = _cases(read_cases(args.input), args.input)
    answers = _validated(cases, single)
    from serve.api import asked_of

    asked = [asked_of(case, args.asked) for case in cases]
    responses = _responses(cases) if args.as_fhir else [None] * len(answers)
    del cases  # the validated copies are all that is needed from here on
    if not answers:
        print("[]" if args.as_fhir else '{"predictions": []}' if args.as_json else "no cases")
        return 0
    dont_know = _dont_knows(answers, asked)
    predictor = load_predictor(args.model)
    if args.as_json and not args.as_fhir:
        return _print_records(predictor, answers, dont_know)
    if single:
        prediction = predictor.predict(answers[0], asked=asked[0])
        if args.as_fhir:
            print(_rendered(prediction, responses[0], asked[0], 2))
        else:
            print(f"{prediction}\n")
        return 0
    progress = Progress(len(answers))
    out = sys.stdout
    if args.as_fhir:
        out.write("[")
    for start in range(0, len(answers), CHUNK):
        span = slice(start, start + CHUNK)
        chunk = predictor._predict_answers(answers[span], dont_know[span], asked[span])
        for number, prediction in enumerate(chunk, start=start):
            if args.as_fhir:
                rendered = _rendered(prediction, responses[number], asked[number], 2)
                out.write(("\n" if number == 0 else ",\n") + textwrap.indent(rendered, "  "))
            else:
                heading = f"record {number} ({number + 1} of {len(answers)})"
                out.write(f"{'=' * 30} {heading} {'=' * 30}\n")
                out.write(f"{prediction}\n\n")
        out.flush()
        progress.update(start + len(chunk))
    progress.close()
    if args.as_fhir:
        out.write("\n]\n")
    return 0


def _dont_knows(answers: list[dict[str, Any]], asked: list[Any]) -> list[list[str]]:
    """Per case: the red-flag questions asked and left unknown ("don't know")."""
    from serve.api import red_flag_dont_knows

    return [red_flag_dont_knows(case, fields) for case, fields in zip(answers, asked, strict=True)]


def _asked_option(text: str) -> list[str]:
    """``--asked``: comma-separated intake field names, checked (argparse reports the error)."""
    from model.intake import IntakeError
    from serve.api import asked_fields

    names = [name.strip() for name in text.split(",") if name.strip()]
    try:
        return asked_fields(names)
    except IntakeError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _print_records(
    predictor: Any, answers: list[dict[str, Any]], dont_know: list[list[str]] | None = None
) -> int:
    """``--json``: ``{"predictions": [...]}``, one record per case, exactly as over HTTP.

    The records are the pyfunc's (``TriageModel.predict_records``), written one per line as
    each chunk is ready, so that memory stays flat for any input size.
    """
    progress = Progress(len(answers))
    out = sys.stdout
    out.write('{"predictions": [')
    for start in range(0, len(answers), CHUNK):
        flags = None if dont_know is None else dont_know[start : start + CHUNK]
        rows = predictor.model.predict_records(answers[start : start + CHUNK], flags)
        for number, row in enumerate(rows, start=start):
            out.write(("\n  " if number == 0 else ",\n  ") + json.dumps(row))
        out.flush()
        progress.update(start + len(rows))
    progress.close()
    out.write("\n]}\n")
    return 0


def add_predict_command(subparsers: Any) -> None:
    """Register ``predict``."""
    from serve.loading import DEFAULT_MODEL_URI

    parser = subparsers.add_parser(
        "predict",
        help="predict, explain and triage one case or a list of cases",
        description=_fill(
            "Predict the likely cause, the red-flag decision and the next step for one case "
            "(a JSON object) or several (a JSON list of objects), read from a file or from "
            "standard input ('-', the default). A FHIR QuestionnaireResponse to the intake "
            "Questionnaire, or a Bundle holding such responses, is read by linkId. Research "
            "software trained on synthetic data; not a medical device and not medical advice."
        ),
        epilog=fields_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "input",
        nargs="?",
        default="-",
        metavar="cases | -",
        help="a .json file (a case or a list of cases), .jsonl (a case per line), .csv (a header "
        "of field names, a case per row; cells as JSON literals: true/false) or .parquet; '-' "
        "or nothing reads JSON from standard input",
    )
    # one output format: --json and --fhir together is a usage error, not one ignored
    output = parser.add_mutually_exclusive_group()
    output.add_argument(
        "--json",
        dest="as_json",
        action="store_true",
        help='print JSON: {"predictions": [...]}, one record per case, the same schema as over '
        "HTTP (docs/interface.md)",
    )
    output.add_argument(
        "--fhir",
        dest="as_fhir",
        action="store_true",
        help="print each prediction as a FHIR R4 collection Bundle (a RiskAssessment and the "
        "differential as Conditions, with the QuestionnaireResponse they rest on)",
    )
    parser.add_argument(
        "--model",
        metavar="URI",
        default=None,
        help=f"MLflow model URI (default: {DEFAULT_MODEL_URI}; the tracking store is "
        "MLFLOW_TRACKING_URI, else ./mlflow.db, else the one `make train` wrote in the checkout)",
    )
    parser.add_argument(
        "--asked",
        metavar="FIELDS",
        type=_asked_option,
        default=None,
        help="comma-separated fields that were asked, whatever the answer (for every case): a "
        'red-flag question asked and left unknown was answered "don\'t know", which keeps the '
        "urgency at least review, as in the interview (`interview --save` prints the list)",
    )
    parser.set_defaults(handler=run_predict)


# --------------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------------


def add_interview_command(subparsers: Any) -> None:
    """Register ``interview`` (:mod:`serve.interview`)."""
    from serve.interview import add_interview_command as add

    add(subparsers)


COMMANDS: list[Callable[[Any], None]] = [add_predict_command, add_interview_command]
"""Functions that each register one sub-command on the ``sciatica-triage`` parser."""


@cache
def version() -> str:
    """The installed package's version, e.g. ``0.1.0``."""
    try:
        return metadata.version(PROG)
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


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
    parser.add_argument("--version", action="version", version=f"{PROG} {version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in COMMANDS:
        register(subparsers)
    return parser


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def skip_the_last_collection() -> None:
    """Let the interpreter's exit skip its last garbage collection of what the command loaded.

    A command that has imported pandas, scikit-learn, LightGBM and MLflow spent 1.2-1.4 s of
    its exit collecting their objects (measured on the 2-core machine: a start from the local
    copy took 1.8-2.4 s with it, 1.3 s without). Freezing moves every object into a
    generation that collection ignores; memory goes back to the system with the process.
    Nothing is lost: the command's files are written and closed before ``main`` returns, and
    the standard streams are still flushed at exit. Registered with ``atexit`` only when
    ``main`` runs as the command.
    """
    gc.freeze()


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``sciatica-triage`` with ``argv`` (default: the process arguments).

    Returns
    -------
    int
        The exit status (``--help``, ``--version`` and usage errors exit through argparse).
        Called without ``argv``, as the installed command is, the process exits without its
        last garbage collection (:func:`skip_the_last_collection`).
    """
    command = PROG
    if argv is None:  # this process is the command (not a caller's main(argv)): exit at once
        atexit.register(skip_the_last_collection)
    try:
        args = build_parser().parse_args(argv)
        command = f"{PROG} {args.command}"
        with command_environment():
            return int(args.handler(args))
    except CommandError as exc:
        print(f"{command}: error: {_one_line(str(exc))}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        start = "\n" if sys.stderr.isatty() else ""  # leave the line the ^C was typed on
        print(f"{start}{command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return 0
    except Exception as exc:  # a user sees one line, not a traceback
        if os.environ.get("SCIATICA_TRIAGE_DEBUG"):
            raise
        print(
            f"{command}: error: {type(exc).__name__}: {_one_line(str(exc))} "
            "(SCIATICA_TRIAGE_DEBUG=1 shows where)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
