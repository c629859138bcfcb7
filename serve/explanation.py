"""A prediction in words: what ``str(prediction)`` prints.

The text follows the order a clinician reads a triage note in: the disclaimer, the urgency with
its timeframe and the suspected serious condition (which the seven causes do not cover), the
red-flag reasoning, the likely causes (secondary when a serious condition is suspected) and why
the model leans to the top one, the nerve root and pain mechanism, imaging, and the next step
with the advice, the patient's and the clinician's apart.
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Any

from model.rules import DERMATOME_ROOT, FACTS, RED_FLAG_TEXT, RED_FLAG_TIER
from vignettes.schema import FIELD_BY_NAME

if TYPE_CHECKING:
    from serve.prediction import Prediction

__all__ = ["explain", "format_answer", "strongest_contributions", "suspected_words"]

MIN_SHOWN_CONTRIBUTION = 0.005
"""Contributions smaller than this (in logit units) are not worth listing as reasons."""

_WIDTH = 100
REGION_TEXT = {r.region: r.where for r in FACTS.pain_regions}
"""The article's pain locations ("How to Tell Which Nerve Is Involved"), in words
(``vignettes/article.toml``)."""
STEP_WORDS = {
    "emergency_assessment": "emergency assessment",
    "urgent_evaluation": "prompt assessment by a clinician",
    "imaging_and_specialist_review": "imaging (MRI) and specialist review",
    "specialist_review": "specialist review, reading the MRI on file in context",
    "clinician_review": "clinician review",
    "conservative_care": "conservative care (first-line management)",
}
"""Each next step (``model.rules.NEXT_STEPS``) in words; :func:`next_step_text` adds the rest."""


def next_step_text(p: Prediction) -> str:
    """The next step in words, with the timeframe of the tier ("emergency assessment, now").

    Conservative care and a clinician's review are not offered as the plan while a red-flag
    question is unanswered or answered "don't know": the text says to ask it first."""
    text = STEP_WORDS.get(p.next_step, _label(p.next_step))
    if p.urgency_timeframe:
        text += f", {p.urgency_timeframe}"
    unscreened = p.red_flag_screen != "complete" or "red_flag_dont_know" in p.urgency_triggers
    if p.next_step in ("clinician_review", "conservative_care") and unscreened:
        text += "; first ask the red-flag questions not yet answered (no reassurance until then)"
    elif p.next_step == "clinician_review":
        text += "; conservative care meanwhile"
    return text


def _label(name: str) -> str:
    return name.replace("_", " ")


def format_answer(field: str, value: Any) -> str:
    """A patient's answer as shown to a reader: ``yes``/``no``, ``67``, ``not answered``."""
    if value is None:
        return "not answered"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return f"{value:g}"
    if FIELD_BY_NAME[field].kind == "category":
        return _label(str(value))
    return str(value)


def strongest_contributions(
    attributions: dict[str, float], n: int
) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """The ``n`` fields that pushed most towards and the ``n`` that pushed most against.

    Parameters
    ----------
    attributions : dict of str to float
        Field -> contribution.
    n : int
        How many of each to keep.

    Returns
    -------
    towards, against : list of (field, contribution)
        Largest first by size; contributions below :data:`MIN_SHOWN_CONTRIBUTION` are dropped.
    """
    ranked = sorted(attributions.items(), key=lambda item: -abs(item[1]))
    towards = [(f, v) for f, v in ranked if v >= MIN_SHOWN_CONTRIBUTION][:n]
    against = [(f, v) for f, v in ranked if v <= -MIN_SHOWN_CONTRIBUTION][:n]
    return towards, against


def _wrap(text: str, indent: str) -> list[str]:
    return textwrap.wrap(text, _WIDTH, initial_indent=indent, subsequent_indent=indent + "  ")


def _causes(p: Prediction) -> list[str]:
    serious = p.urgency in ("emergency", "urgent")
    head = "Among the seven causes (secondary), most likely" if serious else "Most likely cause"
    lines = [f"{head}: {_label(p.cause)} ({p.probabilities[p.cause]:.1%})"]
    for rank, (cause, prob) in enumerate(p.top_causes(3), start=1):
        lines.append(f"  {rank}. {_label(cause):<28} {prob:6.1%}")
    causes = ", ".join(_label(c) for c in p.differential)
    lines += _wrap(f"Differential ({p.differential_coverage:.0%} coverage): {causes}", "")
    return lines


def _reasons(p: Prediction, n: int) -> list[str]:
    answered = {f: v for f, v in p.attributions.items() if p.answers.get(f) is not None}
    unanswered = {f: v for f, v in p.attributions.items() if p.answers.get(f) is None}
    towards, against = strongest_contributions(answered, n)
    lines = [
        f"Why {_label(p.cause)}: how each answer moved its score",
        f"  (logit units; average case {p.attribution_base:+.2f}, this case {p.score:+.2f})",
    ]
    for title, items in (("pushed towards it", towards), ("pushed against it", against)):
        lines.append(f"  {title}:")
        if not items:
            lines.append("    (no answer did notably)")
        for field, value in items:
            answer = format_answer(field, p.answers.get(field))
            lines.append(f"    {value:+6.2f}  {_label(field)} = {answer}")
    if unanswered:
        total = sum(unanswered.values())
        field, value = max(unanswered.items(), key=lambda item: abs(item[1]))
        lines.append(
            f"  questions not answered ({len(unanswered)}), together: {total:+.2f} "
            f"(largest: {_label(field)} {value:+.2f})"
        )
    return lines


_TIER_TEXT = {
    "emergency": "EMERGENCY",
    "urgent": "URGENT",
    "review": "REVIEW by a clinician",
    "routine": "routine - conservative care first",
}
_SUSPECTED_TEXT = {
    "cauda_equina": "cauda equina syndrome",
    "malignancy": "malignancy (spinal metastases; cord compression if neurological signs)",
    "infection": "spinal infection",
    "progressive_deficit": "a progressive neurological deficit",
    "unspecified": "a serious condition (the model's estimate; no sign reported)",
}
_SERIOUS_CAUSES_NOTE = (
    "The seven causes below (disc herniation, stenosis, ...) do not cover cauda equina "
    "syndrome, malignancy or infection: the cause section is secondary."
)


def suspected_words(p: Any) -> list[str]:
    """The suspected serious conditions in words, the named ones first: the model's unnamed
    alert ("a serious condition") only when no rule named one."""
    found = list(getattr(p, "suspected_conditions", []) or [])
    named = [c for c in found if c != "unspecified"] or found
    return [_SUSPECTED_TEXT.get(c, _label(c)) for c in named]


def _urgency(p: Prediction) -> list[str]:
    when = f" - {p.urgency_timeframe}" if p.urgency_timeframe else ""
    tier = _TIER_TEXT.get(p.urgency, p.urgency)
    if p.urgency == "routine" and p.red_flag_screen != "complete":  # no reassurance yet
        tier = "routine so far - not cleared: red-flag questions unanswered"
    lines = [f"Urgency: {tier}{when}"]
    suspected = suspected_words(p)
    if p.urgency in ("emergency", "urgent") and suspected:
        names = "; ".join(suspected)
        lines += _wrap(f"Suspected: {names}. {_SERIOUS_CAUSES_NOTE}", "  ")
    lines += _wrap(p.urgency_action, "  ")
    if p.urgency_triggers:
        lines += _wrap(f"rules that fired: {', '.join(p.urgency_triggers)}", "  ")
    lines.append(f"  red-flag screen: {p.red_flag_screen}")
    if p.red_flags_fired:
        lines.append("  red-flag signs reported (each sets the tier by rule; no model lowers it):")
        lines += [
            f"    - {RED_FLAG_TEXT.get(f, _label(f))} ({RED_FLAG_TIER.get(f, 'urgent')})"
            for f in p.red_flags_fired
        ]
    else:
        lines.append("  red-flag signs reported: none")
    if p.red_flags_unasked:
        lines.append(
            "  none of the six red-flag questions was answered: red flags cannot be ruled out"
        )
    if p.red_flag_questions_unanswered:
        unasked = ", ".join(_label(f) for f in p.red_flag_questions_unanswered)
        lines += _wrap(
            f"red-flag questions not answered - ask these before reassuring: {unasked}", "  "
        )
    relation = ">=" if p.red_flag_model else "<"
    k = "" if p.red_flag_cost_ratio is None else f" = 1/(1+K), K = {p.red_flag_cost_ratio:g}"
    lines.append(
        f"  model: P(serious condition) = {p.red_flag_probability:.3g} {relation} review "
        f"threshold {p.red_flag_threshold:.3g}{k}; urgent threshold "
        f"{p.red_flag_urgent_threshold:.3g}"
    )
    lines += _serious_types(p)
    if p.red_flags_fired:
        lines.append("  (a reported sign sets the tier; the model's estimate never lowers it)")
    elif p.red_flag_model and p.urgency == "review":
        lines.append(
            "  (raised by the model alone: an estimate to review, not a reported red flag)"
        )
    return lines


def _serious_types(p: Prediction) -> list[str]:
    """Which serious condition the model suspects, most probable first (none without a model)."""
    known = {c: v for c, v in p.serious_condition_probabilities.items() if v is not None}
    if not known:
        return []
    ranked = sorted(known.items(), key=lambda item: -item[1])
    text = ", ".join(f"{_label(c)} {v:.2%}" for c, v in ranked)
    return _wrap(f"which serious condition (model): {text}", "  ")


def _nerve_and_mechanism(p: Prediction) -> list[str]:
    region = p.answers.get("pain_region")
    if p.nerve_root is not None:
        root = f"{p.nerve_root} (pain reaches the {REGION_TEXT.get(str(region), region)})"
    elif region is None:
        root = "unknown (where the pain reaches was not answered)"
    elif region not in DERMATOME_ROOT:
        root = "none indicated (the pain stays in the back, buttock or thigh)"
    else:
        root = "unknown"
    off_the_spine = p.nerve_territory is not None and not p.nerve_territory.endswith("root")
    if off_the_spine and p.nerve_root is not None:  # the sciatic nerve, outside the spine
        root = f"{p.nerve_territory}: the pain follows the {root} territory"
    return [f"Likely nerve root: {root}", f"Pain mechanism: {p.pain_mechanism}"]


def _imaging(p: Prediction) -> list[str]:
    lines = [f"MRI indicated: {'yes' if p.mri_indicated else 'no'}"]
    for reason in p.mri_reasons:
        lines += _wrap(f"- {reason['text']}", "  ")
    return lines


def _next_step(p: Prediction) -> list[str]:
    lines = [f"Next step: {next_step_text(p)}"]
    for audience, title in (("patient", "For the patient"), ("clinician", "For the clinician")):
        texts = [t for t, a in zip(p.advice, p.advice_audiences, strict=True) if a == audience]
        if texts:
            lines.append(f"  {title}:")
            for text in texts:
                lines += _wrap(f"- {text}", "    ")
    return lines


def _warnings(p: Prediction) -> list[str]:
    """The contradictions found in the answers, each with its fields and the reading taken."""
    lines = ["Contradictions in the answers (the safer reading was used):"]
    for text in p.warnings:
        lines += _wrap(f"- {text}", "  ")
    return lines


def explain(p: Prediction, n_reasons: int = 4) -> str:
    """Explain a prediction in plain text.

    Parameters
    ----------
    p : Prediction
    n_reasons : int, default=4
        How many answers to list as pushing towards, and as pushing against, the top cause.

    Returns
    -------
    str
        Several lines: disclaimer and model, the urgency tier and red-flag reasoning, the
        contradictions found in the answers (if any), the three most likely causes and the
        conformal differential, the answers that pushed most for and against the top cause
        (with the patient's answers; the unanswered questions are summed on one line), nerve
        root, pain mechanism, MRI indication with reasons, next step and advice.
    """
    sections = [
        [p.disclaimer, f"Model: {p.model_name}, version {p.model_version}"],
        _urgency(p),  # what to do comes before why: an emergency must not be read last
        *([_warnings(p)] if p.warnings else []),
        _causes(p),
        _reasons(p, n_reasons),
        _nerve_and_mechanism(p),
        _imaging(p),
        _next_step(p),
    ]
    return "\n\n".join("\n".join(section) for section in sections)
