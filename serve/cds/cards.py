"""CDS Hooks cards from a triage: pure functions, a :class:`serve.Prediction` in, cards out.

Nothing here does I/O or knows about HTTP: :func:`triage_cards` turns one prediction into the
``patient-view`` card, :func:`mri_cards` one prediction and the draft lumbar MRI orders into the
``order-select`` cards. The card fields follow CDS Hooks 2.0, "Card Attributes": ``uuid``,
``summary`` (under 140 characters), ``detail`` (GitHub-flavoured Markdown), ``indicator``
(``info`` / ``warning`` / ``critical``), ``source`` (``label``, ``url``, ``topic``),
``suggestions`` with ``actions`` (``create`` / ``delete``), ``selectionBehavior``,
``overrideReasons`` and ``links``.

What a card says comes from the prediction and the article's data (``vignettes/article.toml``
through :mod:`model.rules`), so the card's tier, timeframe, causes and advice are exactly
``serve.predict``'s for the same case.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from model.intake import red_flag_dont_knows
from model.rules import MRI_CRITERIA, RED_FLAG_TEXT, RED_FLAG_TIER
from serve.explanation import (
    format_answer,
    next_step_text,
    strongest_contributions,
    suspected_words,
)
from vignettes.schema import FIELD_BY_NAME

if TYPE_CHECKING:
    from serve.prediction import Prediction

__all__ = [
    "INDICATOR",
    "OVERRIDE_REASONS",
    "OVERRIDE_REASON_SYSTEM",
    "SUMMARY_MAX",
    "CardContext",
    "mri_cards",
    "summary_line",
    "triage_cards",
    "urgency_timeframe",
]

SUMMARY_MAX = 139
"""CDS Hooks 2.0: the summary is a "<140-character summary message"."""

INDICATOR = {"emergency": "critical", "urgent": "warning", "review": "warning", "routine": "info"}
"""The card's ``indicator`` for each urgency tier."""

_TIER_WORD = {
    "emergency": "EMERGENCY",
    "urgent": "URGENT",
    "review": "REVIEW",
    "routine": "Routine",
}

TIMEFRAME_FALLBACK = {
    "emergency": "same day",
    "urgent": "within days",
    "review": "within 2 weeks",
    "routine": "within 2 weeks",
}
"""Used only for a model whose predictions carry no ``urgency_timeframe`` (models older than
the tiers' timeframes): the timeframe each tier's action text names in ``vignettes/article.toml``
("same-day emergency assessment", "prompt specialist assessment, within days")."""

OVERRIDE_REASON_SYSTEM = "urn:sciatica-triage:cds:override-reason"
"""The code system of the service's override reasons (a project-local identifier)."""

OVERRIDE_REASONS: tuple[tuple[str, str], ...] = (
    ("already-assessed", "Patient already assessed or referred for this"),
    ("clinical-judgement", "Clinical assessment differs from the intake"),
    ("intake-outdated", "Intake answers are out of date"),
    ("patient-declined", "Patient declined"),
)
"""``overrideReasons`` offered on every alerting card (``warning`` or ``critical``)."""

CPT_SYSTEM = "http://www.ama-assn.org/go/cpt"
LUMBAR_MRI_CODING = {
    "system": CPT_SYSTEM,
    "code": "72148",
    "display": "MRI lumbar spine without contrast",
}
"""What the suggested order asks for (CPT 72148, MRI of the lumbar spinal canal, no contrast)."""
LUMBAR_MRI_CPT = frozenset({"72148", "72149", "72158"})
"""CPT codes of a lumbar-spine MRI (without, with, and without-then-with contrast)."""

SDC_TASK_CODE = {
    "system": "http://hl7.org/fhir/uv/sdc/CodeSystem/temp",
    "code": "complete-questionnaire",
    "display": "Complete Questionnaire",
}
"""SDC's Task code for "ask the patient to fill in (part of) a questionnaire"."""


@dataclass(frozen=True)
class CardContext:
    """What a card needs besides the prediction: who it is about and where to point.

    Attributes
    ----------
    patient_id : str
        ``context.patientId``; the suggested resources are about ``Patient/<patient_id>``.
    source_url : str
        The "not a medical device" section of the README: the card's ``source.url``.
    questionnaire_url : str
        The intake Questionnaire's canonical URL (the unanswered questions belong to it).
    encounter_id : str or None
        ``context.encounterId``, when the call carried one.
    interview_url : str or None
        A page where the unanswered questions can be asked (the card links to it when set).
    new_uuid : callable
        Makes each card's and suggestion's ``uuid`` (tests may pass a deterministic one).
    """

    patient_id: str
    source_url: str
    questionnaire_url: str
    encounter_id: str | None = None
    interview_url: str | None = None
    new_uuid: Callable[[], str] = field(default=lambda: str(uuid.uuid4()))


# --------------------------------------------------------------------------------------------
# Small pieces
# --------------------------------------------------------------------------------------------


def _label(name: str) -> str:
    return name.replace("_", " ")


_NO_FIELD = object()


def urgency_timeframe(p: Prediction) -> str:
    """The prediction's ``urgency_timeframe``: ``""`` where it gives none (routine), and for an
    older model, whose predictions have no such field, its tier's fallback."""
    value = getattr(p, "urgency_timeframe", _NO_FIELD)
    if value is _NO_FIELD:
        return TIMEFRAME_FALLBACK.get(p.urgency, "")
    return str(value) if value else ""


def tier_head(p: Prediction) -> str:
    """The tier in a word with its timeframe: ``"URGENT (within days)"``, ``"Routine"``."""
    word, timeframe = _TIER_WORD.get(p.urgency, p.urgency), urgency_timeframe(p)
    return f"{word} ({timeframe})" if timeframe else word


def _shorten(text: str, limit: int = SUMMARY_MAX) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip(" ,;:-") + "…"


def _dont_know_set_it(p: Prediction) -> bool:
    """Whether a "don't know" rule (``red_flag_dont_know``, ``cauda_equina_dont_know``) fired."""
    return any(t.endswith("_dont_know") for t in getattr(p, "urgency_triggers", None) or [])


def summary_line(p: Prediction) -> str:
    """The card's summary: tier and timeframe first, then what it is about (< 140 chars).

    >>> from types import SimpleNamespace
    >>> p = SimpleNamespace(urgency="routine", urgency_timeframe=None,
    ...     cause="disc_herniation", probabilities={"disc_herniation": 0.62},
    ...     red_flags_fired=[], red_flag_questions_unanswered=[])
    >>> summary_line(p)
    'Routine: likely disc herniation (62%); conservative care first'
    """
    head = tier_head(p)
    cause = f"likely {_label(p.cause)} ({p.probabilities[p.cause]:.0%})"
    fired = [RED_FLAG_TEXT.get(f, _label(f)).lower() for f in p.red_flags_fired]
    named = [c for c in getattr(p, "suspected_conditions", []) or [] if c != "unspecified"]
    if p.urgency in ("emergency", "urgent") and fired:
        tail = f"red flag reported: {', '.join(fired)}"
    elif p.urgency != "routine" and named:
        # a rule over the answers set the tier: say what it suspects, never "conservative care"
        tail = f"suspected {suspected_words(p)[0]}; {cause}"
    elif p.urgency != "routine" and _dont_know_set_it(p):
        # a red-flag "don't know" set the tier, not the model: say which question
        counted = red_flag_dont_knows(getattr(p, "answers", None) or {}, getattr(p, "asked", None))
        unsure = [_label(f) for f in counted] or ["a red-flag question"]
        tail = f'"don\'t know" to {", ".join(unsure)}; {cause}'
    elif p.urgency != "routine":  # the model's estimate alone
        tail = f"model flags a possible serious condition; {cause}"
    elif p.red_flag_questions_unanswered:
        tail = f"{cause}; ask the {len(p.red_flag_questions_unanswered)} red-flag questions left"
    else:
        tail = f"{cause}; conservative care first"
    return _shorten(f"{head}: {tail}")


def _advice_items(p: Prediction) -> list[tuple[str | None, str]]:
    """``(audience, text)`` for each advice item; audience ``None`` when the model has none."""
    audiences = getattr(p, "advice_audiences", None) or getattr(p, "advice_audience", None)
    if audiences and len(audiences) == len(p.advice):
        return [(str(a), str(t)) for a, t in zip(audiences, p.advice, strict=True)]
    items: list[tuple[str | None, str]] = []
    for item in p.advice:
        if isinstance(item, Mapping):
            items.append((item.get("audience"), str(item.get("text", ""))))
        else:
            items.append((None, str(item)))
    return items


def _question(field_name: str) -> str:
    spec = FIELD_BY_NAME.get(field_name)
    return spec.question if spec is not None else _label(field_name)


def _override_reasons() -> list[dict[str, str]]:
    return [
        {"system": OVERRIDE_REASON_SYSTEM, "code": code, "display": display}
        for code, display in OVERRIDE_REASONS
    ]


def _source(p: Prediction, ctx: CardContext) -> dict[str, Any]:
    return {
        "label": f"sciatica-triage research software · {p.model_name} v{p.model_version}",
        "url": ctx.source_url,
        "topic": {
            "system": "urn:sciatica-triage:cds:model",
            "code": f"{p.model_name}/{p.model_version}",
            "display": f"model {p.model_name}, registry version {p.model_version}",
        },
    }


def _card(
    summary: str,
    indicator: str,
    detail: str,
    source: dict[str, Any],
    ctx: CardContext,
    suggestions: Sequence[dict[str, Any]] = (),
    links: Sequence[dict[str, Any]] = (),
    extension: dict[str, Any] | None = None,
) -> dict[str, Any]:
    card: dict[str, Any] = {
        "uuid": ctx.new_uuid(),
        "summary": _shorten(summary),
        "indicator": indicator,
        "detail": detail,
        "source": source,
    }
    if extension is not None:
        card["extension"] = {EXTENSION_KEY: extension}
    if suggestions:
        card["suggestions"] = list(suggestions)
        card["selectionBehavior"] = "any"
    if indicator in ("warning", "critical"):
        card["overrideReasons"] = _override_reasons()
    if links:
        card["links"] = list(links)
    return card


EXTENSION_KEY = "triage"
"""The card's ``extension`` member (CDS Hooks 2.0 allows one on a card) holding the triage as
data: what a client program, or a test, reads instead of parsing the Markdown."""


def triage_extension(p: Prediction) -> dict[str, Any]:
    """The triage as data: tier, timeframe, causes, differential, red flags, MRI, advice."""
    return {
        "urgency": p.urgency,
        "urgency_timeframe": urgency_timeframe(p) or None,
        "red_flag_screen": getattr(p, "red_flag_screen", None),
        "cause": p.cause,
        "probabilities": dict(p.probabilities),
        "differential": list(p.differential),
        "red_flags_fired": list(p.red_flags_fired),
        "red_flag_questions_unanswered": list(p.red_flag_questions_unanswered),
        "mri_indicated": p.mri_indicated,
        "mri_reasons": [r["code"] for r in p.mri_reasons],
        "next_step": p.next_step,
        "advice_codes": list(p.advice_codes),
        "model_name": p.model_name,
        "model_version": p.model_version,
    }


def _reference(kind: str, resource_id: str) -> dict[str, str]:
    return {"reference": f"{kind}/{resource_id}"}


# --------------------------------------------------------------------------------------------
# The triage card (patient-view)
# --------------------------------------------------------------------------------------------


def _urgency_section(p: Prediction) -> list[str]:
    lines = [f"**Urgency: {tier_head(p)}.**"]
    lines += [p.urgency_action, ""]
    if p.urgency in ("emergency", "urgent", "review"):
        lines += [
            "The seven causes below say nothing about cauda equina syndrome, malignancy or "
            "infection: the urgency comes first.",
            "",
        ]
    if p.red_flags_fired:
        lines.append("**Red flags reported** (each sets the tier by rule; no model lowers it):")
        lines += [
            f"- {RED_FLAG_TEXT.get(f, _label(f))} ({RED_FLAG_TIER.get(f, 'urgent')})"
            for f in p.red_flags_fired
        ]
    else:
        lines.append("**Red flags reported:** none.")
    if p.red_flag_questions_unanswered:
        lines += ["", "**Red-flag questions not answered — ask these before reassuring:**"]
        lines += [f"- {_question(f)}" for f in p.red_flag_questions_unanswered]
    lines += [
        "",
        f"Model: P(serious condition) = {p.red_flag_probability:.3g} (review threshold "
        f"{p.red_flag_threshold:.3g}).",
    ]
    return lines


def _causes_section(p: Prediction) -> list[str]:
    lines = ["### Likely causes", "", "| cause | probability |", "|---|---|"]
    lines += [f"| {_label(c)} | {prob:.1%} |" for c, prob in p.top_causes(3)]
    causes = ", ".join(_label(c) for c in p.differential)
    lines += ["", f"Differential ({p.differential_coverage:.0%} coverage): {causes}."]
    return lines


def _reasons_section(p: Prediction, n: int = 3) -> list[str]:
    answered = {f: v for f, v in p.attributions.items() if p.answers.get(f) is not None}
    towards, against = strongest_contributions(answered, n)
    lines = [f"### Why {_label(p.cause)}", ""]
    for title, items in (("pushed most towards it", towards), ("pushed most against it", against)):
        shown = ", ".join(
            f"{_label(f)} = {format_answer(f, p.answers.get(f))} ({v:+.2f})" for f, v in items
        )
        lines.append(f"- Answers that {title}: {shown or 'none notably'}.")
    lines.append("  (contributions to the cause's calibrated logit, exact TreeSHAP)")
    return lines


def _plan_section(p: Prediction) -> list[str]:
    mri = "yes" if p.mri_indicated else "no"
    lines = ["### Imaging", "", f"MRI indicated: **{mri}**."]
    lines += [f"- {r['text']}" for r in p.mri_reasons]
    step = next_step_text(p)
    lines += ["", "### Next step", "", f"{step[0].upper()}{step[1:]}."]
    lines += ["", "### Advice", ""]
    for audience, text in _advice_items(p):
        lines.append(f"- *for the {audience}:* {text}" if audience else f"- {text}")
    return lines


def triage_detail(p: Prediction) -> str:
    """The triage card's Markdown ``detail``: urgency first, then causes, why, plan, reminder."""
    sections = [
        _urgency_section(p),
        _causes_section(p),
        _reasons_section(p),
        _plan_section(p),
        ["---", f"*{p.disclaimer}* Model {p.model_name}, registry version {p.model_version}."],
    ]
    return "\n\n".join("\n".join(s).strip("\n") for s in sections)


def _mri_order(ctx: CardContext, reasons: Iterable[str]) -> dict[str, Any]:
    order: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "proposal",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://snomed.info/sct",
                        "code": "363679005",
                        "display": "Imaging",
                    }
                ]
            }
        ],
        "code": {"coding": [dict(LUMBAR_MRI_CODING)], "text": "MRI lumbar spine"},
        "subject": _reference("Patient", ctx.patient_id),
        "reasonCode": [{"text": text} for text in reasons],
    }
    if ctx.encounter_id:
        order["encounter"] = _reference("Encounter", ctx.encounter_id)
    return order


def _ask_task(p: Prediction, ctx: CardContext) -> dict[str, Any]:
    questions = "; ".join(_question(f) for f in p.red_flag_questions_unanswered)
    return {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "code": {"coding": [dict(SDC_TASK_CODE)]},
        "description": f"Ask the unanswered red-flag questions before reassuring: {questions}",
        "for": _reference("Patient", ctx.patient_id),
        "input": [
            {
                "type": {"text": "questionnaire"},
                "valueCanonical": ctx.questionnaire_url,
            },
            *(
                {"type": {"text": "linkId"}, "valueString": name}
                for name in p.red_flag_questions_unanswered
            ),
        ],
    }


def triage_cards(p: Prediction, ctx: CardContext) -> list[dict[str, Any]]:
    """The ``patient-view`` answer: one triage card for the patient's latest intake.

    Parameters
    ----------
    p : serve.Prediction
        The triage of the intake.
    ctx : CardContext
        The patient, the encounter and the links the card carries.

    Returns
    -------
    list of dict
        One card: summary led by the tier and its timeframe; indicator ``critical``
        (emergency), ``warning`` (urgent, review) or ``info`` (routine); Markdown detail;
        suggestions to order a lumbar MRI (when indicated and none is on file) and to ask the
        unanswered red-flag questions (when any are left); override reasons when alerting.
    """
    suggestions = []
    if p.mri_indicated and p.next_step == "imaging_and_specialist_review":
        reasons = [r["text"] for r in p.mri_reasons if r["code"] in MRI_CRITERIA]
        suggestions.append(
            {
                "label": "Order a lumbar spine MRI",
                "uuid": ctx.new_uuid(),
                "isRecommended": True,
                "actions": [
                    {
                        "type": "create",
                        "description": "Draft an MRI of the lumbar spine (CPT 72148)",
                        "resource": _mri_order(ctx, reasons),
                    }
                ],
            }
        )
    if p.red_flag_questions_unanswered:
        n = len(p.red_flag_questions_unanswered)
        suggestions.append(
            {
                "label": f"Ask the {n} unanswered red-flag question{'s' if n > 1 else ''}",
                "uuid": ctx.new_uuid(),
                "isRecommended": True,
                "actions": [
                    {
                        "type": "create",
                        "description": "A task to complete the intake's red-flag questions: "
                        + ", ".join(p.red_flag_questions_unanswered),
                        "resource": _ask_task(p, ctx),
                    }
                ],
            }
        )
    links = []
    if ctx.interview_url and p.red_flag_questions_unanswered:
        links.append(
            {"label": "Ask the unanswered questions", "url": ctx.interview_url, "type": "absolute"}
        )
    card = _card(
        summary_line(p),
        INDICATOR.get(p.urgency, "warning"),
        triage_detail(p),
        _source(p, ctx),
        ctx,
        suggestions,
        links,
        triage_extension(p),
    )
    return [card]


# --------------------------------------------------------------------------------------------
# The MRI appropriateness card (order-select)
# --------------------------------------------------------------------------------------------


def _codings(resource: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    code = resource.get("code")
    if not isinstance(code, Mapping):
        return []
    codings = code.get("coding")
    return [c for c in codings if isinstance(c, Mapping)] if isinstance(codings, list) else []


def _texts(resource: Mapping[str, Any]) -> str:
    code = resource.get("code")
    parts = [str(code.get("text", ""))] if isinstance(code, Mapping) else []
    parts += [str(c.get("display", "")) for c in _codings(resource)]
    return " ".join(parts).lower()


def is_lumbar_mri(resource: Mapping[str, Any]) -> bool:
    """Whether a draft order is a ServiceRequest for an MRI of the lumbar spine.

    Recognised by a CPT code of :data:`LUMBAR_MRI_CPT`, or by its code's text or display naming
    both MRI (``mri``, ``mr ``, ``magnetic resonance``) and the lumbar spine (``lumbar``,
    ``l-spine``).

    >>> is_lumbar_mri({"resourceType": "ServiceRequest", "code": {"text": "MRI lumbar spine"}})
    True
    >>> is_lumbar_mri({"resourceType": "ServiceRequest", "code": {"text": "CT lumbar spine"}})
    False
    """
    if resource.get("resourceType") != "ServiceRequest":
        return False
    if any(str(c.get("code")) in LUMBAR_MRI_CPT for c in _codings(resource)):
        return True
    text = f" {_texts(resource)} "
    mri = any(word in text for word in (" mri", " mr ", "magnetic resonance"))
    return mri and any(word in text for word in ("lumbar", "l-spine", "lumbosacral"))


def lumbar_mri_orders(draft_orders: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The lumbar-spine MRI ServiceRequests of an ``order-select`` ``draftOrders`` Bundle."""
    entries = draft_orders.get("entry") or []
    resources = [e.get("resource") for e in entries if isinstance(e, Mapping)]
    return [r for r in resources if isinstance(r, Mapping) and is_lumbar_mri(r)]


def _mri_detail(p: Prediction, met: list[dict[str, str]]) -> str:
    lines: list[str] = []
    if met:
        lines.append("**An MRI criterion is met:**")
        lines += [f"- {r['text']}" for r in met]
    else:
        lines += [
            "**No MRI criterion is met** for this patient's intake. The source article: MRI is "
            "most useful when pain persists beyond 6-8 weeks despite conservative care, there "
            "is progressive weakness or a neurological deficit, surgery is being considered, "
            'or red flags are present; "treat the patient, not the scan". NICE NG59 (2016, '
            "updated 2020) 1.1.4: do not routinely offer imaging in a non-specialist setting "
            "for low back pain with or without sciatica.",
        ]
    imaged = [r for r in p.mri_reasons if r["code"] not in MRI_CRITERIA]
    if imaged:
        lines += ["", *(f"- Note: {r['text']}" for r in imaged)]
    if p.red_flag_questions_unanswered:
        lines += [
            "",
            "Red-flag questions not answered (a yes would make MRI indicated): "
            + "; ".join(_question(f) for f in p.red_flag_questions_unanswered),
        ]
    lines += [
        "",
        f"Triage of the same intake: {tier_head(p)}; "
        f"likely {_label(p.cause)} ({p.probabilities[p.cause]:.0%}).",
        "",
        "---",
        f"*{p.disclaimer}* Model {p.model_name}, registry version {p.model_version}.",
    ]
    return "\n".join(lines)


def mri_cards(
    p: Prediction, orders: Sequence[Mapping[str, Any]], ctx: CardContext
) -> list[dict[str, Any]]:
    """The ``order-select`` answer for the draft lumbar MRI orders of one patient.

    Parameters
    ----------
    p : serve.Prediction
        The triage of the patient's latest intake (its ``mri_indicated`` and ``mri_reasons``
        are the article's criteria).
    orders : sequence of dict
        The lumbar-spine MRI ServiceRequests among the draft orders (:func:`lumbar_mri_orders`).
    ctx : CardContext

    Returns
    -------
    list of dict
        No card when there is no such order. Otherwise one card: ``info`` naming the criteria
        met; or ``warning`` with a suggestion to remove the order(s) (a ``delete`` action per
        order with an ``id``) and override reasons, when none is met.
    """
    if not orders:
        return []
    met = [r for r in p.mri_reasons if r["code"] in MRI_CRITERIA]
    source = _source(p, ctx)
    if met:
        names = "; ".join(r["code"].replace("_", " ") for r in met)
        summary = f"Lumbar MRI: criterion met ({names})"
        detail = _mri_detail(p, met)
        return [_card(summary, "info", detail, source, ctx, extension=triage_extension(p))]
    actions = [
        {
            "type": "delete",
            "description": "Remove the draft lumbar MRI order",
            "resourceId": f"ServiceRequest/{order['id']}",
        }
        for order in orders
        if order.get("id")
    ]
    suggestions = []
    if actions:
        suggestions.append(
            {
                "label": "Remove the lumbar MRI order",
                "uuid": ctx.new_uuid(),
                "isRecommended": True,
                "actions": actions,
            }
        )
    summary = "Lumbar MRI: no criterion of the article or NICE NG59 is met for this patient"
    detail = _mri_detail(p, [])
    extension = triage_extension(p)
    return [_card(summary, "warning", detail, source, ctx, suggestions, extension=extension)]
