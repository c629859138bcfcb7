"""``sciatica-triage interview``: ask the next best question at the terminal until the
differential is a single cause and the triage no longer depends on an unanswered question, or
the user stops.

The triage (urgency, nerve root and territory, pain mechanism, MRI, next step and advice) is part
of the answer, so one likely cause is not enough to stop: while some unanswered question could
still change the triage (where the pain reaches, for the nerve root; the examination signs where
a clinician is present), the interview asks those questions, most informative first.

The loop is a plain function of two callables, ``ask`` (prompt -> answer) and ``show`` (text ->
None), so it runs the same at a terminal, in tests and in a notebook. At the terminal both write
to stdout (Python's ``input`` writes its prompt to stderr at a terminal), so ``2>/dev/null``
hides errors, never questions.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from model.intake import IntakeError, validate_case, validate_frame
from serve.questions import ASKABLE, ASKABLE_WITHOUT_CLINICIAN, rank_questions
from serve.terminal import CommandError, load_predictor, read_json
from vignettes import answer_distribution
from vignettes.schema import FIELD_BY_NAME, RED_FLAG_FIELDS, SETTINGS

TRIAGE_OUTPUTS: tuple[str, ...] = (
    "urgency",
    "red_flag",
    "nerve_root",
    "nerve_territory",
    "pain_mechanism",
    "mri_indicated",
    "next_step",
    "advice",
)
"""The parts of a prediction that make up its triage: the interview stops only once no
unanswered question could change any of them."""

YES = {"y", "yes", "true", "t"}
NO = {"n", "no", "false", "f"}
UNKNOWN = {"", "?", "dk", "don't know", "dont know", "unknown", "skip"}
QUIT = {"q", "quit", "exit", "stop"}


class Quit(Exception):  # noqa: N818 - a control-flow signal, not an error
    """The user asked to stop."""


def parse_answer(field: str, text: str) -> Any:
    """Turn a typed answer into a contract value; ``None`` means "don't know".

    Booleans take yes/no (y/n, true/false); categories take the value or its number in the list
    shown; numbers take a number. Raises :class:`Quit` on q/quit, ``ValueError`` otherwise.
    """
    answer = text.strip().lower()
    if answer in QUIT:
        raise Quit
    if answer in UNKNOWN:
        return None
    spec = FIELD_BY_NAME[field]
    if spec.kind == "bool":
        if answer in YES | NO:
            return answer in YES
        raise ValueError("please answer yes or no (or press Enter if you don't know)")
    if spec.kind == "category":
        if answer.isdigit() and 1 <= int(answer) <= len(spec.values):
            return spec.values[int(answer) - 1]
        if answer in spec.values:
            return answer
        raise ValueError(f"please answer with a number 1-{len(spec.values)} or {spec.allowed()}")
    try:
        value = float(answer)
    except ValueError:
        raise ValueError(f"please answer with {spec.allowed()}") from None
    return int(value) if spec.kind == "int" and value.is_integer() else value


def prompt_for(field: str) -> str:
    spec = FIELD_BY_NAME[field]
    if spec.kind == "bool":
        choices = "[y]es / [n]o"
    elif spec.kind == "category":
        choices = "  ".join(f"{i}) {v}" for i, v in enumerate(spec.values, start=1))
    else:
        choices = spec.allowed()
    return f"{spec.question}\n  {choices}   (Enter = don't know, q = quit)\n> "


def _ask_until_valid(field: str, ask: Callable[[str], str], show: Callable[[str], None]) -> Any:
    while True:
        try:
            value = parse_answer(field, ask(prompt_for(field)))
        except ValueError as exc:
            show(f"  {exc}")
            continue
        if value is None:
            return None
        try:
            return validate_case({"age": 50, field: value})[field]
        except IntakeError as exc:
            show(f"  {exc}")


def differential_line(prediction: Any) -> str:
    probs = prediction.probabilities
    names = prediction.differential or sorted(probs, key=probs.get, reverse=True)
    shown = ", ".join(f"{c} {probs[c]:.0%}" for c in names)
    coverage = f"{prediction.differential_coverage:.0%}" if prediction.differential else "all"
    urgent = f"  urgency: {prediction.urgency.upper()}" if prediction.red_flag else ""
    return f"  differential ({coverage} coverage): {shown}{urgent}"


def _triage(prediction: Any) -> tuple[Any, ...]:
    """The triage part of a prediction (:data:`TRIAGE_OUTPUTS`), comparable with ``==``."""
    return tuple(
        tuple(v) if isinstance(v, list) else v
        for v in (getattr(prediction, name, None) for name in TRIAGE_OUTPUTS)
    )


def triage_open_questions(
    predictor: Any,
    answers: Mapping[str, Any],
    fields: tuple[str, ...] = ASKABLE,
    setting: str = "primary_care",
) -> list[str]:
    """The unanswered ``fields`` whose answer could change the triage, in ``fields`` order.

    A field is open when one of its possible answers (probability above 0 given the answers so
    far, under the generator's model), added to ``answers``, gives a prediction whose
    :data:`TRIAGE_OUTPUTS` differ from the current one.
    """
    now = _triage(predictor.predict(dict(answers)))
    frame = _frame(answers)
    open_fields = []
    for field in fields:
        if answers.get(field) is not None:
            continue
        chance = answer_distribution(frame, field, setting).iloc[0]
        values = [v for v, p in chance.items() if p > 0]
        if any(_triage(predictor.predict({**answers, field: v})) != now for v in values):
            open_fields.append(field)
    return open_fields


def run_interview(
    predictor: Any,
    case: Mapping[str, Any] | None = None,
    *,
    ask: Callable[[str], str] = input,
    show: Callable[[str], None] = print,
    setting: str = "primary_care",
    clinician: bool = False,
) -> tuple[dict[str, Any], Any]:
    """Ask questions in order of expected information gain; return the case and the prediction.

    Red-flag questions come first. Stops when the differential is a single cause and no
    unanswered question could change the triage (:func:`triage_open_questions`; where the pain
    reaches is always asked, for the nerve root), when nothing is left to ask, or when the user
    types ``q``. Once the differential is a single cause, only the questions the triage still
    depends on are asked. Examination signs (straight-leg raise, reflexes) are asked only when
    ``clinician`` is true: without one nobody can examine the patient.
    """
    fields = ASKABLE if clinician else ASKABLE_WITHOUT_CLINICIAN
    start = dict(case or {})
    answers: dict[str, Any] = {}
    skipped: set[str] = set()
    prediction = None
    try:
        while start.get("age") is None:  # the one required answer
            start["age"] = _ask_until_valid("age", ask, show)
        answers = validate_case(start)
        prediction = predictor.predict(answers)
        show(differential_line(prediction))
        while True:
            askable = tuple(f for f in fields if f not in skipped)
            red_pending = any(answers[f] is None and f in askable for f in RED_FLAG_FIELDS)
            wanted = None
            if len(prediction.differential) == 1 and not red_pending:
                wanted = set(triage_open_questions(predictor, answers, askable, setting))
                if answers.get("pain_region") is None and "pain_region" in askable:
                    wanted.add("pain_region")  # the nerve root is part of the answer
                if not wanted:
                    show("  The differential is a single cause and the triage is settled.")
                    break
            frame = _frame(answers)
            ranked = [
                q
                for q in rank_questions(frame, None, setting, askable)[0]
                if wanted is None or q.field in wanted
            ]
            if not ranked:
                show("  No questions left to ask.")
                break
            question = ranked[0]
            show(f"\n({question.information_gain:.2f} bits about the {question.target})")
            value = _ask_until_valid(question.field, ask, show)
            if value is None:
                skipped.add(question.field)
                continue
            answers[question.field] = value
            prediction = predictor.predict(answers)
            show(differential_line(prediction))
    except (Quit, EOFError):
        show("  Stopped.")
        if prediction is None:
            raise Quit from None
    return {k: v for k, v in answers.items() if v is not None}, prediction


def _frame(answers: Mapping[str, Any]) -> pd.DataFrame:
    return validate_frame(pd.DataFrame([dict(answers)]))


def ask_on_stdout(prompt: str) -> str:
    """Print ``prompt`` on stdout and read one line (``EOFError`` at the end of input)."""
    sys.stdout.write(prompt)
    sys.stdout.flush()
    return input()


def read_start_case(source: str) -> dict[str, Any]:
    """The partial case an interview starts from: one JSON object with valid answers.

    ``age`` may be missing (the interview asks it first). Raises
    :class:`~serve.terminal.CommandError` naming the file, or the field and what is allowed.
    """
    value = read_json(source)
    if not isinstance(value, dict):
        kind = "a list" if isinstance(value, list) else f"{type(value).__name__} {value!r:.40}"
        raise CommandError(
            f"{source}: an interview starts from one case (a JSON object), got {kind}"
        )
    try:
        validate_case(value if value.get("age") is not None else {**value, "age": 50})
    except IntakeError as exc:
        raise CommandError(f"{source}: {exc}") from None
    return value


def run_interview_command(args: argparse.Namespace) -> int:
    case = read_start_case(args.case) if args.case else None
    if args.save and not Path(args.save).resolve().parent.is_dir():  # say so before, not after
        raise CommandError(f"--save {args.save}: no such folder {Path(args.save).parent}")
    predictor = load_predictor(args.model)
    print("sciatica-triage interview. Research software on synthetic data: not medical advice.")
    try:
        answers, prediction = run_interview(
            predictor,
            case,
            ask=ask_on_stdout,
            setting=args.setting,
            clinician=args.clinician,
        )
    except Quit:
        return 0
    print("\n" + "=" * 72 + "\nSummary\n" + "=" * 72)
    print(str(prediction))
    if args.save:
        try:
            Path(args.save).write_text(json.dumps(answers, indent=2))
        except OSError as exc:
            raise CommandError(
                f"--save {args.save}: cannot write ({exc.strerror or exc})"
            ) from None
        print(f"\nAnswers saved to {args.save}")
    return 0


def add_interview_command(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "interview",
        help="ask the most informative questions, showing the differential after each answer",
        description=(
            "Asks the unanswered intake questions in order of expected information gain "
            "(red-flag questions first), shows the differential after each answer, accepts "
            '"don\'t know" (press Enter), and stops when the differential is a single cause and no '
            "unanswered question could change the triage, or "
            "you type q. Ends with the full prediction."
        ),
    )
    parser.add_argument("case", nargs="?", help="a partial case (JSON object) to start from")
    parser.add_argument("--model", default=None, help="model URI (default: the champion)")
    parser.add_argument("--setting", choices=SETTINGS, default="primary_care")
    parser.add_argument(
        "--clinician",
        action="store_true",
        help="a clinician is present: also ask the examination signs (straight-leg raise)",
    )
    parser.add_argument("--save", metavar="FILE", help="write the answers as JSON when done")
    parser.set_defaults(handler=run_interview_command)
