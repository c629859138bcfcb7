"""The Python API: :func:`load`, :func:`predict`, :func:`predict_batch` and :class:`Predictor`.

Models are loaded once per (tracking store, model URI) and cached for the life of the process;
the first load of a URI holds a lock, so threads that ask at the same moment share one load.
:func:`predict` and :func:`predict_batch` use the model of the last :func:`load` call, or the
registered champion on first use.

Thread safety
-------------
A :class:`Predictor` is immutable and may be shared by threads, and ``TriageModel.predict`` and
``predict_case`` are safe to call from several threads at once: they keep no per-call state on
the model (validation, encoding, the article's rules and the outputs are built per call); the
TreeSHAP tables are only read; scikit-learn estimators and LightGBM boosters are only read -
LightGBM's predictor set-up writes the booster's iteration range without a lock (LightGBM issue
#6142), but every call here asks for the same range, so the values written are identical;
``shap.TreeExplainer.shap_values`` allocates its output per call. The lazily built state - a
scorer's TreeSHAP tables (or, for trees too large for tables, its ``shap.TreeExplainer``) and the
model's conformal thresholds - is built by a warm-up prediction while the load lock is held,
before any other thread can see the model.
``tests/test_serve.py`` checks that 8 threads predicting at once get exactly the sequential
answers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from model.intake import (
    IntakeError,
    answers_frame,
    asked_fields,
    red_flag_dont_knows,
    validate_case,
    validate_frame,
)
from model.triage import OUTPUT_COLUMNS, TriageModel
from serve.loading import DEFAULT_MODEL_URI, LoadedModel, load_triage_model, tracking_uri
from serve.prediction import Prediction
from vignettes.sdc import (
    asked_in_response,
    from_questionnaire_response,
    is_questionnaire_response,
)

__all__ = ["Predictor", "clear_cache", "load", "predict", "predict_batch"]


@dataclass(frozen=True)
class Predictor:
    """A loaded triage model, ready to predict.

    Get one with :func:`load`. Its answers carry :attr:`model_name` and :attr:`model_version`
    (the registry's, when loaded from the registry).

    Attributes
    ----------
    model : TriageModel
        The model; its metadata carries the registry name and version.
    model_uri : str
        The URI it was loaded from.
    resolved_uri : str
        The concrete URI loaded (``models:/<name>/<version>`` for registry URIs).
    tracking_uri : str
        The MLflow tracking store it came from.
    """

    model: TriageModel
    model_uri: str
    resolved_uri: str
    tracking_uri: str

    @classmethod
    def from_loaded(cls, loaded: LoadedModel) -> Predictor:
        """Wrap a loaded model, stamping its registry name and version into a copy of its meta.

        The pyfunc's own metadata names the training run (e.g. ``run-1a2b3c4d``); the registry
        version is only known after registration, so it is set here.
        """
        source = loaded.model
        meta = dict(source.meta)
        meta.setdefault("training_version", source.meta.get("version"))
        meta |= {"name": loaded.name, "version": loaded.version}
        return cls(
            replace(source, meta=meta), loaded.model_uri, loaded.resolved_uri, loaded.tracking_uri
        )

    @property
    def model_name(self) -> str:
        return str(self.model.meta.get("name"))

    @property
    def model_version(self) -> str:
        return str(self.model.meta.get("version"))

    def predict(
        self, case: Mapping[str, Any] | Any, *, asked: Iterable[str] | None = None
    ) -> Prediction:
        """Predict one case.

        Parameters
        ----------
        case : mapping, dataclass instance or QuestionnaireResponse dict
            Field name -> answer (see ``vignettes.schema.FIELDS``); absent or ``None`` = unknown;
            only ``age`` is required. A FHIR ``QuestionnaireResponse`` to
            ``vignettes.questionnaire()`` is read with ``vignettes.from_questionnaire_response``.
        asked : iterable of str, optional
            The fields that were asked, whatever the answer. A red-flag question asked and
            left unknown was answered "don't know": the tier stays at least ``review`` (rule
            ``red_flag_dont_know``), as in the interview. Without ``asked`` an unknown answer
            may be a question never asked, which gets the "ask the red-flag questions" advice;
            for a QuestionnaireResponse the default is the items it holds (an item without an
            answer was asked: ``vignettes.sdc.asked_in_response``).

        Returns
        -------
        Prediction

        Raises
        ------
        model.intake.IntakeError
            (a ``ValueError``) for a bad case or an unknown name in ``asked``; the message
            names the field and what is allowed.
        """
        answers = validated_answers(case)
        asked = asked_fields(asked_of(case, asked))
        dont_know = red_flag_dont_knows(answers, asked)
        return Prediction.from_row(self.model.predict_case(answers, dont_know), answers, asked)

    def predict_many(
        self,
        cases: Iterable[Mapping[str, Any] | Any],
        *,
        asked: Sequence[Iterable[str] | None] | None = None,
    ) -> list[Prediction]:
        """Predict several cases in one vectorised pass; the same answers as :meth:`predict`.

        Parameters
        ----------
        cases : iterable
            Cases as :meth:`predict` takes them (mappings, dataclasses, QuestionnaireResponses).
        asked : sequence, optional
            Per case, the fields asked whatever the answer (or ``None``), as :meth:`predict`'s
            ``asked``; a QuestionnaireResponse's own items count as asked either way.

        Raises
        ------
        model.intake.IntakeError
            For the first bad case; the error names the field (not the case's position), or
            ``asked`` if it does not give one entry per case.
        """
        cases = list(cases)
        if asked is not None and (isinstance(asked, str) or len(asked) != len(cases)):
            allowed = "one list of field names (or None) per case"
            message = f"asked: expected {allowed}, for {len(cases)} cases"
            raise IntakeError("asked", allowed, message)
        answers = [validated_answers(case) for case in cases]
        chosen = [
            asked_fields(asked_of(case, None if asked is None else asked[i]))
            for i, case in enumerate(cases)
        ]
        dont_know = [red_flag_dont_knows(a, c) for a, c in zip(answers, chosen, strict=True)]
        return self._predict_answers(answers, dont_know, chosen)

    def _predict_answers(
        self,
        answers: list[dict[str, Any]],
        red_flag_dont_know: list[Any] | None = None,
        asked: Sequence[Iterable[str] | None] | None = None,
    ) -> list[Prediction]:
        """Predictions for answers that already passed ``validate_case`` (``asked``: per case,
        the fields asked, recorded in each :attr:`Prediction.asked`)."""
        if not answers:
            return []
        frame = answers_frame(answers)
        out = self.model.predict(frame, validated=True, red_flag_dont_know=red_flag_dont_know)
        columns = list(out.columns)
        rows = out.to_numpy(dtype=object)  # ~20x faster than to_dict("records") for one row
        chosen = [None] * len(answers) if asked is None else asked
        return [
            Prediction.from_row(dict(zip(columns, row, strict=True)), case, fields)
            for row, case, fields in zip(rows, answers, chosen, strict=True)
        ]

    def predict_batch(
        self,
        frame: pd.DataFrame | Iterable[Mapping[str, Any]],
        *,
        red_flag_dont_know: Any = None,
    ) -> pd.DataFrame:
        """Predict every row of a frame (vectorised).

        Parameters
        ----------
        frame : pandas.DataFrame or iterable of cases
            One case per row; columns are contract fields (any subset including ``age``) and,
            optionally, the label columns of a generated frame (ignored). Or a list of cases
            as :meth:`predict` takes them (dicts or FHIR QuestionnaireResponses), numbered from
            0 in the result's index.
        red_flag_dont_know : sequence, optional
            Per row, the red-flag questions answered "don't know" (field names, or a bool:
            some), as ``model.triage.TriageModel.predict`` takes them (see :meth:`predict`).

        Returns
        -------
        pandas.DataFrame
            ``model.triage.OUTPUT_COLUMNS`` in the input's row order and index: ``cause``,
            ``prob_<cause>`` for the seven causes, ``red_flag``, ``red_flag_probability``, the
            rest of the triage (``warnings`` among it), and ``attr_<field>`` /
            ``red_flag_attr_<field>``. List-valued cells (``differential``, ``red_flags_fired``,
            ``mri_reasons``, ``advice_codes``, ``advice``, ``warnings``, ...) hold Python lists.

        Raises
        ------
        model.intake.IntakeError
            For a bad column or value; the message names the field and the first bad row.
        """
        return self._predict_frame(validated_frame(frame), red_flag_dont_know)

    def _predict_frame(self, valid: pd.DataFrame, red_flag_dont_know: Any = None) -> pd.DataFrame:
        """:meth:`predict_batch` for a frame that already passed ``validate_frame``."""
        if valid.empty:  # LightGBM's pred_contrib cannot take zero rows
            return pd.DataFrame({c: [] for c in OUTPUT_COLUMNS}, index=valid.index)
        return self.model.predict(valid, validated=True, red_flag_dont_know=red_flag_dont_know)


def asked_of(case: Any, asked: Iterable[str] | None) -> Iterable[str] | None:
    """``asked`` as given; for a QuestionnaireResponse, the items it holds (an item present
    without an answer was asked: a "don't know") together with ``asked``, so that naming other
    questions never drops one the response itself says was asked."""
    if is_questionnaire_response(case):
        return [*asked_in_response(case), *asked_fields(asked)]
    return asked


def validated_answers(case: Mapping[str, Any] | Any) -> dict[str, Any]:
    """One case (a dict, a dataclass or a FHIR QuestionnaireResponse) through the validator."""
    if is_questionnaire_response(case):
        return from_questionnaire_response(case)
    return validate_case(case)


def validated_frame(cases: pd.DataFrame | Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """A frame, or a list of cases or QuestionnaireResponses, as a validated frame."""
    if isinstance(cases, pd.DataFrame):
        return validate_frame(cases)
    if (
        isinstance(cases, str | bytes)
        or not isinstance(cases, Iterable)
        or (isinstance(cases, Mapping))
    ):
        message = (
            f"cases: expected a pandas DataFrame or a list of cases (dicts or "
            f"QuestionnaireResponses), got {type(cases).__name__}"
        )
        raise IntakeError(None, "a DataFrame or a list of cases", message)
    return answers_frame([validated_answers(case) for case in cases])


# --------------------------------------------------------------------------------------------
# The cache and the module-level API
# --------------------------------------------------------------------------------------------

_cache: dict[tuple[str, str], Predictor] = {}
_lock = threading.Lock()
_current: Predictor | None = None


def load(model_uri: str | None = None, *, reload: bool = False) -> Predictor:
    """Load a model (default: the registered champion) and make it the one :func:`predict` uses.

    Parameters
    ----------
    model_uri : str, optional
        ``models:/<name>@<alias>``, ``models:/<name>/<version>``, ``runs:/...`` or a local path;
        default ``models:/sciatica-triage@champion``. The tracking store is MLflow's
        (``MLFLOW_TRACKING_URI``, else MLflow's default).
    reload : bool, default=False
        Load again even if cached (e.g. after the champion alias moved).

    Returns
    -------
    Predictor

    Raises
    ------
    serve.ModelNotFoundError
        If no model is registered there ("run `make train` first").
    """
    global _current
    uri = model_uri or DEFAULT_MODEL_URI
    key = (tracking_uri(), uri)
    predictor = None if reload else _cache.get(key)
    if predictor is None:
        with _lock:
            predictor = None if reload else _cache.get(key)
            if predictor is None:
                predictor = Predictor.from_loaded(load_triage_model(uri))
                predictor.model.warm_up()  # builds lazy state before threads share it
                _cache[key] = predictor
    _current = predictor
    return predictor


def clear_cache() -> None:
    """Forget every loaded model (the next :func:`predict` loads the champion again)."""
    global _current
    with _lock:
        _cache.clear()
        _current = None


def _current_predictor() -> Predictor:
    return _current if _current is not None else load()


def predict(case: Mapping[str, Any] | Any, *, asked: Iterable[str] | None = None) -> Prediction:
    """Predict one case with the current model (:func:`load`; the champion by default).

    The case is validated before any model is loaded, so bad input fails fast.

    Parameters
    ----------
    case : mapping, dataclass instance or QuestionnaireResponse dict
        Field name -> answer; absent or ``None`` = unknown; only ``age`` is required. A FHIR
        ``QuestionnaireResponse`` to ``vignettes.questionnaire()`` is read by ``linkId``.
    asked : iterable of str, optional
        The fields asked, whatever the answer: a red-flag question asked and left unknown
        ("don't know") keeps the tier at least ``review`` (see :meth:`Predictor.predict`).

    Returns
    -------
    Prediction

    Raises
    ------
    model.intake.IntakeError
        (a ``ValueError``) naming the field and what is allowed.
    serve.ModelNotFoundError
        If no model is registered.
    """
    answers = validated_answers(case)  # before any model is loaded: bad input fails fast
    asked = asked_fields(asked_of(case, asked))
    dont_know = red_flag_dont_knows(answers, asked)
    model = _current_predictor().model
    return Prediction.from_row(model.predict_case(answers, dont_know), answers, asked)


def predict_batch(frame: pd.DataFrame | Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Predict every row of ``frame`` with the current model; see :meth:`Predictor.predict_batch`.

    ``frame`` may also be a list of cases: dicts or FHIR QuestionnaireResponses.

    Returns a frame with at least ``cause``, ``prob_<cause>`` (seven), ``red_flag`` and
    ``red_flag_probability``, in the input's order and index, plus the rest of the triage.
    """
    valid = validated_frame(frame)
    return _current_predictor()._predict_frame(valid)
