"""One case's answer from the model: :class:`Prediction`.

A :class:`Prediction` is built from one output row of :meth:`model.triage.TriageModel.predict`
(the same row the MLflow pyfunc serves) and the validated answers it was computed from. It holds
plain Python values only, so :meth:`Prediction.to_dict` is ready for ``json.dumps``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from model.intake import IntakeError, asked_fields, red_flag_dont_knows
from model.rules import MRI_REASON_TEXT
from model.serious import SERIOUS_PROB_COLUMNS, SERIOUS_TYPES
from model.triage import ATTRIBUTION_UNITS
from vignettes.schema import CAUSES, FIELD_NAMES

__all__ = ["Prediction"]


_PLAIN = (str, bool, int)
_PROB_KEYS = tuple((c, f"prob_{c}") for c in CAUSES)
_ATTR_KEYS = tuple((f, f"attr_{f}") for f in FIELD_NAMES)
_RED_ATTR_KEYS = tuple((f, f"red_flag_attr_{f}") for f in FIELD_NAMES)
_SERIOUS_KEYS = tuple(zip(SERIOUS_TYPES, SERIOUS_PROB_COLUMNS, strict=True))


def _scalar(value: Any) -> Any:
    """A NumPy or pandas scalar as the plain Python value it holds (``None`` for missing)."""
    if value is None:
        return None
    if hasattr(value, "item"):
        value = value.item()
    try:
        if value != value:  # NaN, pandas.NA raise or compare unequal
            return None
    except TypeError:
        return None
    return value


def _probability(value: Any) -> float | None:
    """A probability cell as a float, ``None`` where the model has none (NaN or ``None``)."""
    value = _scalar(value)
    return None if value is None else float(value)


def _answer(value: Any) -> Any:
    """:func:`_scalar`, skipping the conversion for the plain values validation returns."""
    return value if value is None or type(value) in _PLAIN else _scalar(value)


def _json_list(value: Any) -> list[Any]:
    """A list cell of the model's output, as a list of its own."""
    return list(value)


@dataclass(frozen=True)
class Prediction:
    """The triage of one case: cause, red flag, attributions and the article's next steps.

    Attributes are plain Python values (``str``, ``float``, ``bool``, ``None``, ``list``,
    ``dict``). The dataclass is frozen: attributes cannot be reassigned (the lists and dicts
    are this prediction's own copies; treat them as read-only).

    Attributes
    ----------
    cause : str
        The most likely cause (one of ``vignettes.schema.CAUSES``).
    probabilities : dict of str to float
        Calibrated probability of each of the seven causes, in ``CAUSES`` order; they sum to 1.
    differential : list of str
        The conformal differential: the causes that together hold the true cause with
        probability at least ``differential_coverage``, most probable first.
    differential_coverage : float
        Its target coverage (e.g. 0.95; 1.0, all causes, for a model without conformal sets).
    urgency : str
        ``"emergency"``, ``"urgent"``, ``"review"`` or ``"routine"``: the most urgent tier of the
        urgency rules that fired (``vignettes/article.toml``: a cauda equina sign, suspected
        cauda equina or spinal cord compression, fever, a progressive deficit, cancer, weight
        loss, and the model's two decisions). The model can raise a case to review (at or above
        ``red_flag_threshold``) or urgent (at or above ``red_flag_urgent_threshold``), never
        lower a tier.
    urgency_timeframe : str or None
        How soon: ``"now"``, ``"same day"``, ``"within 24 hours"``, ``"within days"`` or
        ``"within 2 weeks"``, the shortest of the fired rules; ``None`` for a routine case.
    urgency_timeframe_source : str or None
        The source of that timeframe (the rule's ``source`` in ``article.toml``).
    urgency_action : str
        What the tier asks for, in words (the first fired rule's action).
    urgency_triggers : list of str
        The codes of the urgency rules that fired, most urgent first.
    suspected_conditions : list of str
        The serious conditions those rules look for (``cauda_equina``, ``malignancy``,
        ``infection``, ``progressive_deficit``; ``unspecified`` for the model's alerts). None of
        the seven causes covers them.
    red_flag_screen : str
        ``"complete"`` (all six red-flag questions answered), ``"partial"`` or ``"none"``. Until
        it is complete, the first advice is to ask the rest, and no reassurance is given.
    red_flag : bool
        ``urgency != "routine"``: the case needs more than routine care.
    red_flag_probability : float
        The model's calibrated probability of a serious condition.
    red_flag_model : bool
        The model's own decision, ``red_flag_probability >= red_flag_threshold``.
    red_flag_model_urgent : bool
        ``red_flag_probability >= red_flag_urgent_threshold``.
    red_flag_threshold : float
        The review threshold, ``1 / (1 + K)`` for the declared cost ratio K.
    red_flag_urgent_threshold : float
        The upper threshold (0.10 by default, argued in the README): urgent, within days.
    red_flag_cost_ratio : float or None
        K: one missed serious condition costs as much as K false alarms (``None`` for a model
        trained without one).
    serious_condition_probabilities : dict of str to float or None
        Which serious condition: the calibrated probability of each one given the answers,
        ``cauda_equina``, ``infection``, ``malignancy`` and ``progressive_deficit``
        (``vignettes.schema.SERIOUS_CONDITIONS``), from a model of the serious-condition type
        trained beside the champion. Each is ``P(condition | answers)``, so together they are
        about ``red_flag_probability``. ``None`` for a model trained without it.
    red_flags_fired : list of str
        The red-flag questions answered yes (field names, schema order).
    red_flags_unasked : bool
        ``True`` when none of the six red-flag questions was answered: the case cannot be
        cleared of the article's red flags.
    red_flag_questions_unanswered : list of str
        The red-flag questions left unanswered (field names, schema order).
    attributions : dict of str to float
        Exact TreeSHAP contribution of every intake field to the calibrated score of the
        predicted cause (its softmax logit), in schema order. ALL fields are included: an
        unanswered field has a contribution too (often small, not always zero), because "not
        known" routes a case differently through the trees than the average case does.
        ``sum(attributions.values()) + attribution_base`` is the calibrated logit.
    attribution_base : float
        The calibrated logit of the predicted cause for the average training case.
    red_flag_attributions : dict of str to float
        The same for the red-flag log-odds: ``sum + red_flag_attribution_base ==
        logit(red_flag_probability)``.
    red_flag_attribution_base : float
        The red-flag log-odds of the average training case.
    attribution_units : str
        What the attribution numbers are, in words.
    nerve_root : str or None
        Likely nerve root from the article's pain-location table (``"L5"``, ``"S1"``, ...);
        ``None`` when the pain stays in the back or its region was not answered.
    nerve_territory : str or None
        The nerve the pain pattern points to: ``"<root> nerve root"``, or ``"sciatic nerve,
        outside the spine"`` for a piriformis-like pattern (its pain follows the sciatic nerve's
        territory; no spinal root is compressed, so ``nerve_root`` names the territory only).
    pain_mechanism : str
        ``"neurological"``, ``"mechanical"``, ``"mixed"`` or ``"unclear"``.
    mri_indicated : bool
        Whether one of the article's MRI criteria applies.
    mri_reasons : list of dict
        ``{"code": ..., "text": ...}`` for each reason (texts from ``model.rules.MRI_REASON_TEXT``;
        ``already_imaged`` is information only).
    next_step : str
        One of ``model.rules.NEXT_STEPS``: ``"emergency_assessment"``, ``"urgent_evaluation"``,
        ``"imaging_and_specialist_review"``, ``"specialist_review"`` (an MRI is on file: read it
        in context), ``"clinician_review"`` or ``"conservative_care"``.
    advice_codes : list of str
        The advice given, as codes from ``model.rules.ADVICE_CODES`` (e.g.
        ``"epidural_steroid_injection"``, ``"surgery"``, ``"safety_net"``); each item's source
        and conditions are in ``vignettes/article.toml``.
    advice_audiences : list of str
        Whom each advice item speaks to, ``"patient"`` or ``"clinician"``, in the same order.
    advice : list of str
        The advice texts, in the same order.
    warnings : list of str
        Contradictions found in the answers, each naming its fields first
        (``"progressive_weakness, weakness: ..."``), from ``vignettes/contradictions.toml``. The
        triage took the safer reading of each (a reported red flag always counts); ``answers``
        keeps what was given.
    model_name, model_version : str
        The model that answered (registry name and version when loaded from the registry).
    disclaimer : str
        Research software on synthetic data; not a medical device.
    answers : dict
        The validated answers (every field, ``None`` = unknown) the prediction was made from.
    asked : list of str
        The fields that were asked, whatever the answer (schema order), as given to
        :func:`serve.predict` (``asked=``) or read from a QuestionnaireResponse: an asked field
        left unknown was answered "don't know", which the triage counts. Empty when the caller
        did not say; :meth:`to_fhir` keeps these in the response it builds.
    """

    cause: str
    probabilities: dict[str, float]
    differential: list[str]
    differential_coverage: float
    urgency: str
    urgency_timeframe: str | None
    urgency_timeframe_source: str | None
    urgency_action: str
    urgency_triggers: list[str]
    suspected_conditions: list[str]
    red_flag: bool
    red_flag_screen: str
    red_flag_probability: float
    red_flag_model: bool
    red_flag_model_urgent: bool
    red_flag_threshold: float
    red_flag_urgent_threshold: float
    red_flag_cost_ratio: float | None
    serious_condition_probabilities: dict[str, float | None]
    red_flags_fired: list[str]
    red_flags_unasked: bool
    red_flag_questions_unanswered: list[str]
    attributions: dict[str, float]
    attribution_base: float
    red_flag_attributions: dict[str, float]
    red_flag_attribution_base: float
    attribution_units: str
    nerve_root: str | None
    nerve_territory: str | None
    pain_mechanism: str
    mri_indicated: bool
    mri_reasons: list[dict[str, str]]
    next_step: str
    advice_codes: list[str]
    advice_audiences: list[str]
    advice: list[str]
    warnings: list[str]
    model_name: str
    model_version: str
    disclaimer: str
    answers: dict[str, Any]
    asked: list[str] = field(default_factory=list)

    @classmethod
    def from_row(
        cls,
        row: Mapping[str, Any],
        answers: Mapping[str, Any],
        asked: Iterable[str] | None = None,
    ) -> Prediction:
        """Build a prediction from one output row of ``TriageModel.predict``.

        Parameters
        ----------
        row : mapping
            One row of :data:`model.triage.OUTPUT_COLUMNS` (e.g. a pandas ``Series``).
        answers : mapping
            The validated answers of the case (``model.intake.validate_case``).
        asked : iterable of str, optional
            The fields asked, whatever the answer (checked names; see :attr:`asked`).

        Returns
        -------
        Prediction
        """
        reasons = [str(code) for code in _json_list(row["mri_reasons"])]
        return cls(
            cause=str(row["cause"]),
            probabilities={c: float(row[key]) for c, key in _PROB_KEYS},
            differential=[str(c) for c in _json_list(row["differential"])],
            differential_coverage=float(row["differential_coverage"]),
            urgency=str(row["urgency"]),
            urgency_timeframe=_scalar(row["urgency_timeframe"]),
            urgency_timeframe_source=_scalar(row["urgency_timeframe_source"]),
            urgency_action=str(row["urgency_action"]),
            urgency_triggers=[str(c) for c in _json_list(row["urgency_triggers"])],
            suspected_conditions=[str(c) for c in _json_list(row["suspected_conditions"])],
            red_flag=bool(row["red_flag"]),
            red_flag_screen=str(row["red_flag_screen"]),
            red_flag_probability=float(row["red_flag_probability"]),
            red_flag_model=bool(row["red_flag_model"]),
            red_flag_model_urgent=bool(row["red_flag_model_urgent"]),
            red_flag_threshold=float(row["red_flag_threshold"]),
            red_flag_urgent_threshold=float(row["red_flag_urgent_threshold"]),
            red_flag_cost_ratio=_scalar(row["red_flag_cost_ratio"]),
            serious_condition_probabilities={c: _probability(row[k]) for c, k in _SERIOUS_KEYS},
            red_flags_fired=[str(name) for name in _json_list(row["red_flags_fired"])],
            red_flags_unasked=bool(row["red_flags_unasked"]),
            red_flag_questions_unanswered=[
                str(f) for f in _json_list(row["red_flag_questions_unanswered"])
            ],
            attributions={f: float(row[key]) for f, key in _ATTR_KEYS},
            attribution_base=float(row["attribution_base"]),
            red_flag_attributions={f: float(row[key]) for f, key in _RED_ATTR_KEYS},
            red_flag_attribution_base=float(row["red_flag_attribution_base"]),
            attribution_units=ATTRIBUTION_UNITS,
            nerve_root=_scalar(row["nerve_root"]),
            nerve_territory=_scalar(row["nerve_territory"]),
            pain_mechanism=str(row["pain_mechanism"]),
            mri_indicated=bool(row["mri_indicated"]),
            mri_reasons=[{"code": c, "text": MRI_REASON_TEXT.get(c, c)} for c in reasons],
            next_step=str(row["next_step"]),
            advice_codes=[str(code) for code in _json_list(row["advice_codes"])],
            advice_audiences=[str(a) for a in _json_list(row["advice_audiences"])],
            advice=[str(text) for text in _json_list(row["advice"])],
            warnings=[str(text) for text in _json_list(row["warnings"])],
            model_name=str(row["model_name"]),
            model_version=str(row["model_version"]),
            disclaimer=str(row["disclaimer"]),
            answers={name: _answer(answers.get(name)) for name in FIELD_NAMES},
            asked=asked_fields(asked),
        )

    @property
    def score(self) -> float:
        """Calibrated logit of the predicted cause: base plus the sum of the attributions."""
        return self.attribution_base + sum(self.attributions.values())

    def top_causes(self, n: int = 3) -> list[tuple[str, float]]:
        """The ``n`` most likely causes with their probabilities, most likely first."""
        ranked = sorted(self.probabilities.items(), key=lambda item: -item[1])
        return ranked[:n]

    @property
    def cause_code(self) -> dict[str, str] | None:
        """The ICD-10 (WHO) code of :attr:`cause` (``{"system", "code", "display"}``), from
        ``vignettes/codes.toml``; ``None`` where no code was verified (see the README)."""
        from vignettes.codes import cause_code

        return cause_code(self.cause)

    def to_fhir(
        self,
        response: Mapping[str, Any] | None = None,
        subject: str | None = None,
        asked: Iterable[str] | None = None,
    ) -> dict[str, Any]:
        """This prediction as a FHIR R4 collection Bundle: a RiskAssessment and the differential
        as Conditions (and the QuestionnaireResponse they rest on); see :mod:`serve.fhir`.

        Parameters
        ----------
        response : mapping, optional
            The QuestionnaireResponse the prediction was made from; default: one built from
            :attr:`answers`.
        subject : str, optional
            A reference to the patient, e.g. ``"Patient/123"``.
        asked : iterable of str, optional
            More fields that were asked, besides :attr:`asked` (which are always kept): in the
            response built from :attr:`answers`, an asked field left unknown is an item
            without an answer (a "don't know"), as :func:`vignettes.sdc.asked_in_response`
            reads it, so the record shows what the RiskAssessment rests on.

        Raises
        ------
        model.intake.IntakeError
            If ``asked`` names a red-flag question left unknown that the prediction did not
            count as "don't know" (not in :attr:`asked`): its tier would not be the one the
            record shows. Predict again with ``asked=``.
        """
        from serve.fhir import prediction_bundle

        uncounted = [f for f in red_flag_dont_knows(self.answers, asked) if f not in self.asked]
        if uncounted:
            allowed = "the questions the prediction was made with (Prediction.asked)"
            message = (
                f'asked: {", ".join(uncounted)} left unknown would be a red-flag "don\'t know" '
                "this prediction did not count; predict again with asked=[...] to record it"
            )
            raise IntakeError("asked", allowed, message)
        given = None if response is None else dict(response)
        return prediction_bundle(self, given, subject, [*self.asked, *asked_fields(asked)])

    def to_dict(self) -> dict[str, Any]:
        """Every attribute as JSON-serialisable plain Python values (``json.dumps`` works)."""
        return asdict(self)

    def to_json(self, **kwargs: Any) -> str:
        """:meth:`to_dict` as a JSON string (``kwargs`` go to ``json.dumps``)."""
        return json.dumps(self.to_dict(), **kwargs)

    def explain(self, n_reasons: int = 4) -> str:
        """A readable explanation; see :func:`serve.explanation.explain`."""
        from serve.explanation import explain

        return explain(self, n_reasons=n_reasons)

    def __str__(self) -> str:
        return self.explain()
