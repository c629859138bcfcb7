"""The MLflow pyfunc wrapper around :class:`model.triage.TriageModel`.

MLflow logs this model "from code" (``model/mlflow_model.py``), so the registered model holds no
pickled Python object: the code is a file and the fitted trees are skops / LightGBM text files.

The input form, and why
-----------------------
The model is logged with an output schema but **no input schema**, and ``predict`` is typed
``pandas.DataFrame`` (a type MLflow does not derive a schema from). With an input schema, MLflow
coerces every column to the declared type *before* the model sees it: a boolean column turns
``null`` into ``False`` and ``"no"`` into ``True``, an integer column turns ``"40"`` into 40 and
40.7 into 40, a field absent from one record takes a value from the others, and unknown fields are
dropped. Without one, the scoring server only parses the JSON (``dataframe_records`` and
``dataframe_split`` into a pandas frame, ``inputs`` into a list of records), and the values reach
:func:`model.intake.validate_case` as the client sent them. The other form MLflow offers, a
type-hinted ``list[dict[str, Any]]`` input, makes MLflow turn a pandas frame into its first column
(which breaks ``spark_udf`` and ``pyfunc.predict(frame)``), warns that ``Any`` is not validated,
and replaces the output schema that ``spark_udf`` needs; so it was not used.

Every record is validated on its own by ``validate_case`` (the validator ``serve.predict`` uses):
in a frame, a missing cell (``NaN``, ``None``) is an absent answer, so ``null`` and absent both mean
"unknown", and a record's answer never depends on the other records of its request. Bad input is
refused with :class:`IntakeRefused`, an ``MlflowException`` with ``INVALID_PARAMETER_VALUE``
(HTTP 400), whose message starts with the field, the value and what is allowed.

A record of the ``inputs`` form (or of a list passed to ``predict``) may also be a FHIR
``QuestionnaireResponse`` to ``vignettes.questionnaire()``, alone or mixed with plain records: it
is read by :func:`vignettes.sdc.from_questionnaire_response`, as ``serve.predict(qr)`` reads it, so
its answer is ``serve.predict``'s, and a bad response (an unknown ``linkId``, a wrong answer type,
two answers to one item, a response to another Questionnaire) is refused with HTTP 400 naming the
``linkId`` and what is allowed. MLflow's ``inputs`` parser turns each top-level value of a record
into a NumPy array (the response's ``item`` list becomes an object array of dicts; over HTTP,
:func:`model.scoring_guard.shield_resources` hands it the lists as object arrays already, so
that no list is mangled or refused on the way); a response is turned back into plain JSON
values, all the way down, before it is read. A frame
(``dataframe_records``, ``dataframe_split``) cannot carry a response: its ``resourceType`` column
is refused with a pointer to the ``inputs`` form.

Requests of up to :data:`FAST_PATH_MAX_CASES` cases take the single-case fast path of
``serve.predict`` (:meth:`TriageModel.predict_case`, no pandas); larger ones the vectorised
:meth:`TriageModel.predict` in chunks of :data:`CHUNK_CASES`, with the same answers. Outputs are
one dict per case with :data:`model.triage.OUTPUT_COLUMNS`; list outputs are lists (JSON arrays
over HTTP).

``model_version`` is the registry version: :meth:`TriagePyfunc.load_context` looks up which
version of the registered model was made from this logged model (MLflow records the logged
model's id on each version), because the version number only exists after the model is logged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from model.intake import IGNORED_COLUMNS, IntakeError, is_missing, validate_case
from model.mlflow_names import MODEL_NAME
from model.triage import CHUNK_CASES, FAST_PATH_MAX_CASES, TriageModel
from vignettes.schema import FIELD_BY_NAME
from vignettes.sdc import from_questionnaire_response

__all__ = ["CHUNK_CASES", "FAST_PATH_MAX_CASES", "IntakeRefused", "TriagePyfunc"]


class IntakeRefused(MlflowException):
    """A request with a bad intake: HTTP 400, the validator's message first.

    MLflow's scoring server rewrites the message of an ``MlflowException`` raised by a model to
    ``"Failed to predict data '<the whole request>'. Error: <message>"``. That would put the
    request (patient answers; megabytes for a large batch) on the first line instead of the field
    and what is allowed, so this error keeps the message it was made with.
    """

    def __init__(self, error: IntakeError, record: int | None = None) -> None:
        where = "" if record is None else f"\n(in record {record} of the request, counting from 0)"
        super().__init__(
            f"{error}{where}",
            error_code=INVALID_PARAMETER_VALUE,
            field=error.field,
            allowed=error.allowed,
            record=record,
        )

    @property
    def message(self) -> str:
        return self._message

    @message.setter
    def message(self, value: str) -> None:
        if not hasattr(self, "_message"):  # set once, by MlflowException.__init__
            self._message = value


class TriagePyfunc(mlflow.pyfunc.PythonModel):  # type: ignore[name-defined,misc]
    """Serves :class:`TriageModel` through MLflow (``models serve``, ``spark_udf``, ``load_model``).

    Attributes
    ----------
    model : TriageModel
        Set by :meth:`load_context`; its ``meta["version"]`` is the registry version when one
        was found.
    """

    model: TriageModel

    def load_context(self, context: Any) -> None:
        """Load the bundle, stamp the registry version, build the lazy state before requests.

        In ``mlflow models serve``, this also puts :mod:`model.scoring_guard`'s strict reading
        of requests in front of MLflow's (duplicated keys, size, content type, nesting).
        """
        from model.scoring_guard import install

        install()
        triage = TriageModel.load(context.artifacts["bundle"])
        version = registry_version(Path(context.artifacts["bundle"]), triage.meta)
        if version is not None:
            meta = dict(triage.meta)
            meta["training_version"] = meta.get("version")
            meta["version"] = version
            triage = dataclasses.replace(triage, meta=meta)
        self.model = triage.warm_up()

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Predict every case of a request, each on its own.

        Parameters
        ----------
        context : PythonModelContext
            Unused (the model is loaded in :meth:`load_context`).
        model_input : pandas.DataFrame, list of mappings or mapping
            The cases: a frame (``dataframe_records``/``dataframe_split`` over HTTP,
            ``spark_udf``), a list of records (``inputs`` over HTTP, or a direct call) or one
            record. In a list (or alone), a record may be a FHIR ``QuestionnaireResponse``.
        params : dict, optional
            Unused.

        Returns
        -------
        list of dict
            One dict per case, in order: :data:`model.triage.OUTPUT_COLUMNS` -> plain values,
            list outputs as lists.

        Raises
        ------
        IntakeRefused
            For the first bad record (HTTP 400); the message starts with the field (the
            ``linkId`` for a QuestionnaireResponse).
        """
        answers = [_validate(record, i) for i, record in enumerate(records_of(model_input))]
        return self.model.predict_records(answers)


def records_of(model_input: object) -> list[Mapping[str, Any]]:
    """The request's cases as records, each holding only what its client sent.

    A frame's missing cells (``NaN``/``None``, which is how pandas fills a field that a record
    left out) are dropped from that record, so "absent" and ``null`` both mean unknown. In
    records from MLflow's ``inputs`` parser, each value is a 0-d NumPy array: it is unwrapped;
    a FHIR resource (a record with ``resourceType``) is turned back into plain JSON values.
    """
    if isinstance(model_input, pd.DataFrame):
        _check_names(model_input.columns)
        return [_drop_missing(record) for record in _frame_records(model_input)]
    if isinstance(model_input, Mapping):
        return [_unwrap(model_input)]
    if isinstance(model_input, list) and all(isinstance(r, Mapping) for r in model_input):
        return [_unwrap(record) for record in model_input]
    shown = type(model_input).__name__
    raise IntakeRefused(
        IntakeError(
            None,
            "a list of records",
            f"input: expected a list of records (field -> answer), got {shown}; send "
            '{"dataframe_records": [{"age": 67, ...}, ...]} or {"inputs": [...]}',
        )
    )


def registry_version(bundle: Path, meta: Mapping[str, Any]) -> str | None:
    """The registry version made from the logged model that holds ``bundle``, if any.

    MLflow 3 records on each model version the logged model it was registered from (its
    ``model_id``, and a source ``models:/<model_id>``); the logged model's ``MLmodel`` file, in a
    folder above the bundle, holds that id. One registry query, at load time. ``None``
    when the model was never registered, or the registry cannot be reached (then the training
    run's name for the model stays).
    """
    from mlflow import MlflowClient
    from mlflow.models import Model

    name = str(meta.get("name", MODEL_NAME))
    try:
        mlmodel = next(p / "MLmodel" for p in bundle.parents if (p / "MLmodel").is_file())
        model_id = Model.load(mlmodel).model_id
        if not model_id:
            return None
        versions = MlflowClient().search_model_versions(f"name = '{name}'")
    except (StopIteration, MlflowException, OSError):
        return None
    matching = [int(v.version) for v in versions if _made_from(v, model_id)]
    return str(max(matching)) if matching else None


def _made_from(version: Any, model_id: str) -> bool:
    """Was this registry version registered from the logged model ``model_id``?

    Some stores leave ``ModelVersion.model_id`` empty on search results; the version's source
    (``models:/<model_id>``) says the same.
    """
    return getattr(version, "model_id", None) == model_id or version.source == f"models:/{model_id}"


def _validate(record: Mapping[str, Any], index: int) -> dict[str, Any]:
    """One record through the validator; a FHIR resource through the QuestionnaireResponse reader.

    Any record that names a ``resourceType`` goes to the reader, which refuses every resource
    but a ``QuestionnaireResponse`` by its ``resourceType`` (rather than as an unknown field).
    """
    try:
        if _is_resource(record):
            return from_questionnaire_response(record)
        return validate_case(record)
    except IntakeError as error:
        raise IntakeRefused(error, index) from None


def _is_resource(record: Mapping[Any, Any]) -> bool:
    return "resourceType" in record


def _frame_records(frame: pd.DataFrame) -> list[dict[Any, Any]]:
    """The rows of a frame as dicts (several times faster than ``to_dict("records")``)."""
    columns = list(frame.columns)
    if len(frame) <= FAST_PATH_MAX_CASES:
        rows = frame.to_numpy(dtype=object).tolist()
    else:  # column by column: Python values without a (rows x columns) object array
        rows = zip(*(frame.iloc[:, i].tolist() for i in range(len(columns))), strict=True)
    return [dict(zip(columns, row, strict=True)) for row in rows]


def _check_names(columns: Iterable[object]) -> None:
    """Refuse a frame with a column that is not a field, even if every cell of it is missing,
    or with a column that appears twice (a record would keep only one of its answers); a
    ``resourceType`` column (FHIR resources as rows) is refused with a pointer to ``inputs``.

    A record that names an unknown field with ``null`` must be refused, not quietly accepted
    because its cell looks like the ones pandas fills in for records without the field.
    """
    columns = list(columns)
    if "resourceType" in columns:  # before its other members are refused as unknown fields
        message = (
            "resourceType: a FHIR resource is not a row of a frame; expected a case per row, "
            'or send QuestionnaireResponses in the inputs form: {"inputs": [qr, ...]}'
        )
        raise IntakeRefused(IntakeError("resourceType", "a case per row", message))
    seen: set[object] = set()
    for name in columns:
        if name in seen:
            message = f"{name}: the column appears more than once; expected one column per field"
            raise IntakeRefused(IntakeError(str(name), "one column per field", message))
        seen.add(name)
        if name not in FIELD_BY_NAME and name not in IGNORED_COLUMNS:
            try:
                validate_case({name: None})  # the validator's own words for an unknown field
            except IntakeError as error:
                raise IntakeRefused(error) from None


def _drop_missing(record: Mapping[Any, Any]) -> dict[Any, Any]:
    """A frame row without its missing cells (answers the record did not give)."""
    return {name: value for name, value in record.items() if not is_missing(value)}


def _unwrap(record: Mapping[Any, Any]) -> dict[Any, Any]:
    """A record with 0-d NumPy arrays (MLflow's ``inputs`` parser) replaced by their value.

    A FHIR resource (``resourceType``) is made plain all the way down (:func:`_plain`): MLflow
    turns its ``item`` list into a NumPy object array, and a list of numbers into a numeric one.
    """
    if _is_resource(record):
        return {name: _plain(value) for name, value in record.items()}
    return {
        name: value.item() if isinstance(value, np.ndarray) and value.ndim == 0 else value
        for name, value in record.items()
    }


def _plain(value: object) -> object:
    """``value`` as plain JSON-like Python: NumPy arrays as (nested) lists, NumPy scalars as
    Python ones, through every dict and list.

    A 0-d array becomes its value and an n-d array nested lists (``tolist``), so the QR reader
    sees what the client sent: a list of item objects stays a list of the same objects, and an
    object that is not a list where one is expected (``"item": {...}``) stays an object and is
    refused by name.
    """
    if isinstance(value, np.ndarray | np.generic):
        value = value.tolist()
    if isinstance(value, Mapping):
        return {name: _plain(inner) for name, inner in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(inner) for inner in value]
    return value
