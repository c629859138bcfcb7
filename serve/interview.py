"""``sciatica-triage interview``: the adaptive interview, one question at a time, until the stop
rule (:mod:`serve.questions`) says the answer is settled, or the user stops.

The engine is :func:`interview_step`: answers and the fields asked so far in, the prediction, the
tier in words and the next question (or the reason to stop) out. The terminal loop
(:func:`run_interview`), the FHIR ``$next-question`` operation and the browser page all call it,
so they ask the same questions and stop at the same point.

The loop is a plain function of two callables, ``ask`` (prompt -> answer) and ``show`` (text ->
None), so it runs the same at a terminal, in tests and in a notebook. At the terminal both write
to stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from model.intake import IntakeError, answers_frame, validate_case
from serve.api import asked_fields, red_flag_dont_knows
from serve.questions import (
    ASKABLE,
    ASKABLE_WITHOUT_CLINICIAN,
    OPTION_WORDS,
    STOP_RULE,
    TRIAGE_COMPARED,
    Question,
    StopRule,
    assess,
    dont_know_floor,
    option_words,
    questions_for,
)
from serve.terminal import CommandError, load_predictor, read_json
from vignettes.schema import FIELD_BY_NAME, FIELD_NAMES, SETTINGS

YES = {"y", "yes", "true", "t"}
NO = {"n", "no", "false", "f"}
UNKNOWN = {"", "?", "dk", "don't know", "dont know", "unknown", "skip"}
QUIT = {"q", "quit", "exit", "stop"}
MAX_WEEKS = 1040.0
"""The longest duration accepted at the prompt (20 years, in weeks): a larger number is almost
certainly days or a typing slip, so the interview asks again."""


class Quit(Exception):  # noqa: N818 - a control-flow signal, not an error
    """The user asked to stop."""


def words(value: Any) -> str:
    """A contract value in plain words (yes/no, or the category's words)."""
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if value is None:
        return "don't know"
    if isinstance(value, str):
        return OPTION_WORDS.get(value, value.replace("_", " "))
    return f"{value:g}" if isinstance(value, float) else str(value)


def parse_answer(field_name: str, text: str) -> Any:
    """Turn a typed answer into a contract value; ``None`` means "don't know".

    Booleans take yes/no (y/n, true/false); categories take the number in the list shown, the
    code or its words; numbers take a number (``duration_weeks`` at most :data:`MAX_WEEKS`).
    Raises :class:`Quit` on q/quit, ``ValueError`` (with what is allowed) otherwise.
    """
    answer = text.strip().lower()
    if answer in QUIT:
        raise Quit
    spec = FIELD_BY_NAME[field_name]
    if answer in UNKNOWN:
        if field_name == "age":
            raise ValueError("age is required: please give the age in years (18 to 100)")
        return None
    if spec.kind == "bool":
        if answer in YES | NO:
            return answer in YES
        raise ValueError("please answer yes or no (or press Enter if you don't know)")
    if spec.kind == "category":
        options = option_words(field_name)
        if answer.isdigit() and 1 <= int(answer) <= len(options):
            return options[int(answer) - 1][0]
        for code, text_words in options:
            if answer in (code, text_words.lower()):
                return code
        raise ValueError(f"please answer with a number 1-{len(options)} (Enter = don't know)")
    try:
        value = float(answer)
    except ValueError:
        raise ValueError(f"please answer with {spec.allowed()}") from None
    if not math.isfinite(value) or value < (spec.low or 0):
        raise ValueError(f"please answer with {spec.allowed()}")
    if spec.high is not None and value > spec.high:
        raise ValueError(f"please answer with {spec.allowed()}")
    if field_name == "duration_weeks" and value > MAX_WEEKS:
        raise ValueError(
            f"{value:g} weeks is more than 20 years: please give the duration in weeks "
            f"(0 to {MAX_WEEKS:g})"
        )
    if spec.kind == "int":
        if not value.is_integer():
            raise ValueError(f"please answer with {spec.allowed()}")
        return int(value)
    return value


def prompt_for(field_name: str, json_codes: bool = False) -> str:
    """The question and its allowed answers, in words (codes with ``json_codes``)."""
    spec = FIELD_BY_NAME[field_name]
    if spec.kind == "bool":
        choices = "[y]es / [n]o"
    elif spec.kind == "category":
        choices = "  ".join(
            f"{i}) {code if json_codes else text}"
            for i, (code, text) in enumerate(option_words(field_name), start=1)
        )
    elif field_name == "age":
        return f"{spec.question} (required: 18 to 100)\n> "
    else:
        choices = "a number of weeks" if field_name == "duration_weeks" else spec.allowed()
    return f"{spec.question}\n  {choices}   (Enter = don't know, q = quit)\n> "


def _ask_until_valid(
    field_name: str, ask: Callable[[str], str], show: Callable[[str], None]
) -> Any:
    while True:
        try:
            value = parse_answer(field_name, ask(prompt_for(field_name)))
        except ValueError as exc:
            show(f"  {exc}")
            continue
        if value is None:
            return None
        try:
            return validate_case({"age": 50, field_name: value})[field_name]
        except IntakeError as exc:
            show(f"  {exc}")


# --------------------------------------------------------------------------------------------
# The tier in words
# --------------------------------------------------------------------------------------------


def shown_tier(prediction: Any, dont_knows: Sequence[str]) -> str:
    """The tier the interview shows: the prediction's, at least ``review`` after a red-flag
    "don't know" (:func:`serve.questions.dont_know_floor`)."""
    return dont_know_floor(str(prediction.urgency), bool(dont_knows))


def tier_text(prediction: Any, dont_knows: Sequence[str]) -> str:
    """The current tier with its reason, in words (routine included)."""
    tier = shown_tier(prediction, dont_knows)
    p, thr = prediction.red_flag_probability, prediction.red_flag_threshold
    against = f"a serious condition {p:.1%} likely, against a {thr:.1%} review threshold"
    when = getattr(prediction, "urgency_timeframe", None)
    when = f" ({when})" if when else ""
    if prediction.red_flags_fired:
        named = ", ".join(f.replace("_", " ") for f in prediction.red_flags_fired)
        return f"Urgency: {tier.upper()}{when} - red flag reported: {named}."
    by_answers = [
        t for t in getattr(prediction, "urgency_triggers", []) if not t.startswith("model_")
    ]
    if by_answers and tier == prediction.urgency:  # a combination of answers set the tier
        return f"Urgency: {tier.upper()}{when} - {prediction.urgency_action}"
    if tier == "urgent" and tier == prediction.urgency:  # the model's upper threshold
        upper = prediction.red_flag_urgent_threshold
        return (
            f"Urgency: URGENT{when} - a serious condition {p:.1%} likely, at or above the "
            f"{upper:.0%} urgent threshold, although no red-flag sign was reported."
        )
    if tier != prediction.urgency:
        asked = ", ".join(f.replace("_", " ") for f in dont_knows)
        return (
            f"Urgency: {tier.upper()} - raised from {prediction.urgency}: the red-flag question "
            f'({asked}) was answered "don\'t know", and a sign that may be present is not '
            f"cleared ({against})."
        )
    if tier == "review":
        kept = (
            f" It stays at least review: the red-flag question ({', '.join(dont_knows)}) was "
            'answered "don\'t know".'
            if dont_knows
            else ""
        )
        soon = str(prediction.urgency_timeframe) if when else "soon"  # "within 2 weeks"
        return (
            f"Urgency: REVIEW{when} - {against}: at or above it, a clinician should review "
            f"{soon}.{kept}"
        )
    if tier == "routine":
        return f"Urgency: ROUTINE - {against}: below it, conservative care first."
    return f"Urgency: {tier.upper()} - {against}."


def tier_change_text(
    before: Any,
    after: Any,
    dont_knows_before: Sequence[str],
    dont_knows_after: Sequence[str],
    field_name: str | None,
) -> str | None:
    """Why the shown tier moved between two predictions, or ``None`` when it did not."""
    old, new = shown_tier(before, dont_knows_before), shown_tier(after, dont_knows_after)
    if old == new:
        return None
    question = f"the answer to '{FIELD_BY_NAME[field_name].question}'" if field_name else "it"
    if after.red_flags_fired and set(after.red_flags_fired) != set(before.red_flags_fired):
        why = f"{question} reports a red flag"
    elif len(dont_knows_after) > len(dont_knows_before):
        why = f'{question} was "don\'t know", and a red-flag sign cannot be cleared'
    elif _rules_of(after) != _rules_of(before):  # an answer-based rule started or stopped
        started = [_label(c) for c in _rules_of(after) - _rules_of(before)]
        stopped = [_label(c) for c in _rules_of(before) - _rules_of(after)]
        parts = [f"{question} sets the rule {', '.join(started)}"] if started else []
        if stopped:
            parts.append(f"the rule {', '.join(stopped)} no longer applies after {question}")
        why = "; ".join(parts)
    else:
        why = (
            f"after {question}, a serious condition is {after.red_flag_probability:.1%} likely "
            f"(was {before.red_flag_probability:.1%}; review threshold "
            f"{after.red_flag_threshold:.1%})"
        )
    return f"The urgency moved from {old} to {new}: {why}."


def _rules_of(prediction: Any) -> frozenset[str]:
    """The answer-based urgency rules that fired (not the model's thresholds)."""
    triggers = getattr(prediction, "urgency_triggers", None) or []
    return frozenset(t for t in triggers if not t.startswith("model_"))


def _label(code: str) -> str:
    return code.replace("_", " ")


def top_causes_text(prediction: Any, n: int = 3) -> str:
    probs = prediction.probabilities
    ranked = sorted(probs, key=probs.get, reverse=True)[:n]
    return "Most likely: " + ", ".join(f"{c.replace('_', ' ')} {probs[c]:.0%}" for c in ranked)


# --------------------------------------------------------------------------------------------
# The engine: one step
# --------------------------------------------------------------------------------------------


def served_triage(predictor: Any) -> Callable[..., list[tuple[Any, ...]]]:
    """A ``triage_of`` for :func:`serve.questions.assess` from the served model: the triage the
    interview shows, so the stop rule compares what the patient is told."""

    def triage_of(
        frame: pd.DataFrame, post: pd.DataFrame, floor: np.ndarray, cases: Any = None
    ) -> list[tuple[Any, ...]]:
        out = predictor.predict_batch(frame, red_flag_dont_know=floor)
        keys = []
        for i in range(len(out)):
            parts = []
            for name in TRIAGE_COMPARED:
                if name not in out.columns:
                    continue
                value = out[name].iat[i]
                if isinstance(value, str) and value.startswith("["):
                    value = json.loads(value)
                parts.append(tuple(value) if isinstance(value, list | np.ndarray) else value)
            keys.append(tuple(parts))
        return keys

    return triage_of


@dataclass
class Step:
    """One step of the interview.

    Attributes
    ----------
    prediction : Prediction
        The prediction on the answers so far.
    tier : str
        The tier shown (the prediction's, at least review after a red-flag "don't know").
    tier_text : str
        The tier with its probability and threshold, in words.
    question : Question or None
        The next question; ``None`` when the stop rule says stop (or nothing is left).
    stop_reason : str
        Why the interview stops (empty while it goes on).
    dont_knows : list of str
        Red-flag questions answered "don't know".
    """

    prediction: Any
    tier: str
    tier_text: str
    question: Question | None
    stop_reason: str = ""
    dont_knows: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "tier_text": self.tier_text,
            "question": None if self.question is None else self.question.to_dict(),
            "stop_reason": self.stop_reason,
            "red_flag_dont_know": list(self.dont_knows),
            "top_causes": sorted(self.prediction.probabilities.items(), key=lambda kv: -kv[1])[:3],
        }


def interview_step(
    predictor: Any,
    answers: Mapping[str, Any],
    asked: Sequence[str] = (),
    *,
    clinician: bool = False,
    setting: str = "primary_care",
    rule: StopRule = STOP_RULE,
    prediction: Any = None,
) -> Step:
    """The prediction so far and the next question, or the reason to stop.

    Parameters
    ----------
    predictor : Predictor
        The model that predicts (``serve.load``); if it has ``predict_batch``, the stop rule
        compares the triage it gives (:func:`served_triage`), else the exact posterior's.
    answers : mapping
        The answers (``age`` required); ``None`` = unknown.
    asked : sequence of str
        Fields already asked, "don't know" included (they are not asked again).
    clinician : bool
        Also ask the examination signs.
    """
    valid = validate_case(answers)
    fields = ASKABLE if clinician else ASKABLE_WITHOUT_CLINICIAN
    asked_set = set(asked) | {f for f, v in valid.items() if v is not None}
    if prediction is None:
        prediction = predictor.predict(valid, asked=[f for f in FIELD_NAMES if f in asked_set])
    dont_knows = red_flag_dont_knows(valid, list(asked_set))
    frame = answers_frame([valid])  # what validate_frame gives, without a second check
    mask = np.array([[f in asked_set for f in fields]])
    triage_of = served_triage(predictor) if hasattr(predictor, "predict_batch") else None
    a = assess(frame, mask, fields, setting, rule, triage_of)
    ranked = questions_for(a, 0, 1)
    question = ranked[0] if ranked else None
    return Step(
        prediction,
        shown_tier(prediction, dont_knows),
        tier_text(prediction, dont_knows),
        question,
        "" if question is not None else a.reason[0],
        dont_knows,
    )


# --------------------------------------------------------------------------------------------
# The terminal loop
# --------------------------------------------------------------------------------------------


@dataclass
class Progress:
    """What has been answered so far (kept for Ctrl-C and ``--save``)."""

    answers: dict[str, Any] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    def saved(self) -> dict[str, Any]:
        """The known answers, and ``null`` for each red-flag question answered "don't know"
        (the file records that it was asked; ``predict --asked`` needs to be told)."""
        dont_knows = red_flag_dont_knows(self.answers, self.asked)
        return {
            k: v for k, v in self.answers.items() if v is not None or k in dont_knows
        } | dict.fromkeys(dont_knows)


def run_interview(
    predictor: Any,
    case: Mapping[str, Any] | None = None,
    *,
    ask: Callable[[str], str] = input,
    show: Callable[[str], None] = print,
    setting: str = "primary_care",
    clinician: bool = False,
    rule: StopRule = STOP_RULE,
    progress: Progress | None = None,
    asked: Sequence[str] = (),
) -> tuple[dict[str, Any], Any]:
    """Ask the next question until the stop rule says stop, nothing is left, or ``q``.

    Shows the tier after every answer (routine included, with the probability and the
    threshold in words), says when it moved and why, and the top causes. A "don't know" is not
    asked again. ``progress`` (optional) holds the answers as they come, for the caller to save
    on Ctrl-C. ``asked``: questions asked before the start (a field among them left unknown in
    ``case`` was answered "don't know"). Returns the known answers and the last prediction.
    """
    state = progress if progress is not None else Progress()
    start = dict(case or {})
    prediction = None
    try:
        if start.get("age") is None:
            show("Age is required (18 to 100): the causes' chances depend on it.")
        while start.get("age") is None:  # the one required answer
            start["age"] = _ask_until_valid("age", ask, show)
        state.answers.update(validate_case(start))
        state.asked.extend(f for f, v in state.answers.items() if v is not None)
        state.asked.extend(f for f in asked_fields(asked) if f not in state.asked)
        step = interview_step(
            predictor, state.answers, state.asked, clinician=clinician, setting=setting, rule=rule
        )
        prediction = step.prediction
        show("  " + step.tier_text)
        show("  " + top_causes_text(prediction))
        while step.question is not None:
            question = step.question
            show(f"\n(Why this question: {question.rationale})")
            value = _ask_until_valid(question.field, ask, show)
            state.asked.append(question.field)
            state.answers[question.field] = value
            before, dk_before = step.prediction, step.dont_knows
            step = interview_step(
                predictor,
                state.answers,
                state.asked,
                clinician=clinician,
                setting=setting,
                rule=rule,
            )
            prediction = step.prediction
            show("  " + step.tier_text)
            moved = tier_change_text(before, prediction, dk_before, step.dont_knows, question.field)
            if moved:
                show("  " + moved)
            show("  " + top_causes_text(prediction))
        show(f"  Stopping: {step.stop_reason}.")
    except (Quit, EOFError):
        show("  Stopped.")
        if prediction is None:
            raise Quit from None
    return {k: v for k, v in state.answers.items() if v is not None}, prediction


def ask_on_stdout(prompt: str) -> str:
    """Print ``prompt`` on stdout and read one line (``EOFError`` at the end of input)."""
    sys.stdout.write(prompt)
    sys.stdout.flush()
    return input()


def read_start(source: str) -> tuple[dict[str, Any], list[str]]:
    """The partial case an interview starts from, and the questions already asked.

    One JSON object with valid answers, or a FHIR QuestionnaireResponse to the intake
    Questionnaire (or an adaptive interview's, ``$next-question``): its items are the questions
    asked, an item without an answer a "don't know" that is not asked again. ``age`` may be
    missing (the interview asks it first). Raises :class:`~serve.terminal.CommandError` naming
    the file, or the field (``linkId``) and what is allowed.
    """
    value = read_json(source)
    if isinstance(value, dict) and value.get("resourceType") is not None:
        return _start_of_response(source, value)
    return read_start_case(source, value), []


def _start_of_response(source: str, response: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    from vignettes.sdc import asked_in_response, from_questionnaire_response

    try:
        asked = [f for f in asked_in_response(response) if f != "age"]
        try:
            case = from_questionnaire_response(response)
        except IntakeError as exc:
            if exc.field != "age" or _answered_age(response):
                raise
            # age not given yet: read the rest with a stand-in, then ask it first
            stand_in = {"linkId": "age", "answer": [{"valueInteger": 50}]}
            items = [*_without_age(response.get("item") or []), stand_in]
            case = from_questionnaire_response(response | {"item": items}) | {"age": None}
    except IntakeError as exc:
        raise CommandError(f"{source}: {exc}") from None
    return {k: v for k, v in case.items() if v is not None}, asked


def _without_age(items: list[Any]) -> list[Any]:
    """The items (and their groups' items) without any ``age`` item."""
    out = []
    for item in items:
        if isinstance(item, dict) and item.get("linkId") == "age":
            continue
        if isinstance(item, dict) and isinstance(item.get("item"), list):
            item = item | {"item": _without_age(item["item"])}
        out.append(item)
    return out


def _answered_age(response: dict[str, Any]) -> bool:
    def walk(items: list[Any]) -> bool:
        return any(
            isinstance(i, dict)
            and ((i.get("linkId") == "age" and i.get("answer")) or walk(i.get("item") or []))
            for i in items
        )

    return walk(response.get("item") or [])


def read_start_case(source: str, value: Any = None) -> dict[str, Any]:
    """The partial case an interview starts from: one JSON object with valid answers.

    ``age`` may be missing (the interview asks it first). ``value``: the file's JSON, if read.
    Raises :class:`~serve.terminal.CommandError` naming the file, or the field and what is
    allowed.
    """
    value = read_json(source) if value is None else value
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


def _save(path: str, progress: Progress) -> None:
    try:
        Path(path).write_text(json.dumps(progress.saved(), indent=2))
    except OSError as exc:
        raise CommandError(f"--save {path}: cannot write ({exc.strerror or exc})") from None
    print(f"\nAnswers saved to {path}")
    dont_knows = red_flag_dont_knows(progress.answers, progress.asked)
    if dont_knows:  # a plain case file cannot say a null was asked; the command can
        print(
            'Red-flag questions answered "don\'t know" are saved as null. To predict from the '
            f"file with the same urgency: sciatica-triage predict {path} "
            f"--asked {','.join(dont_knows)}"
        )


def run_interview_command(args: argparse.Namespace) -> int:
    case, asked = read_start(args.case) if args.case else (None, [])
    if args.save and not Path(args.save).resolve().parent.is_dir():  # say so before, not after
        raise CommandError(f"--save {args.save}: no such folder {Path(args.save).parent}")
    predictor = load_predictor(args.model)
    print("sciatica-triage interview. Research software on synthetic data: not medical advice.")
    progress = Progress()
    try:
        _, prediction = run_interview(
            predictor,
            case,
            ask=ask_on_stdout,
            setting=args.setting,
            clinician=args.clinician,
            progress=progress,
            asked=asked,
        )
    except Quit:
        return 0
    except KeyboardInterrupt:  # save what was answered, then the command reports the Ctrl-C
        if args.save:
            _save(args.save, progress)
        raise
    print("\n" + "=" * 72 + "\nSummary\n" + "=" * 72)
    dont_knows = red_flag_dont_knows(progress.answers, progress.asked)
    if getattr(args, "json", False):
        shown = shown_tier(prediction, dont_knows)
        print(json.dumps({**prediction.to_dict(), "shown_urgency": shown}, indent=2))
    else:
        print(tier_text(prediction, dont_knows))
        print(str(prediction))
    if args.save:
        _save(args.save, progress)
    return 0


def add_interview_command(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "interview",
        help="ask the most useful questions, showing the urgency and the causes after each answer",
        description=(
            "Asks the six red-flag questions first, then the unasked intake questions that "
            "most change the triage and the cause, each with the reason it is asked; shows the "
            "urgency (with its probability and threshold) and the most likely causes after each "
            'answer; accepts "don\'t know" (press Enter) and does not ask it again; stops when '
            "the stop rule says the answer is settled ("
            + STOP_RULE.describe()
            + "), or you type q. Ends with the full prediction."
        ),
    )
    parser.add_argument(
        "case",
        nargs="?",
        help="a partial case to start from: a JSON object of answers, or a FHIR "
        'QuestionnaireResponse (an item without an answer: a "don\'t know", not asked again)',
    )
    parser.add_argument("--model", default=None, help="model URI (default: the champion)")
    parser.add_argument("--setting", choices=SETTINGS, default="primary_care")
    parser.add_argument(
        "--clinician",
        action="store_true",
        help="a clinician is present: also ask the examination signs (straight-leg raise)",
    )
    parser.add_argument(
        "--save", metavar="FILE", help="write the answers as JSON when done (also on Ctrl-C)"
    )
    parser.add_argument(
        "--json", action="store_true", help="end with the prediction as JSON (codes, not words)"
    )
    parser.set_defaults(handler=run_interview_command)


__all__ = [
    "Progress",
    "Quit",
    "Step",
    "interview_step",
    "parse_answer",
    "prompt_for",
    "run_interview",
    "served_triage",
    "shown_tier",
    "tier_change_text",
    "tier_text",
    "words",
]
