"""The strict door of ``mlflow models serve``: requests are read as the CLI reads its files.

MLflow's scoring server parses a request itself, before the model sees it, with ``json.loads``
(the last of two equal keys wins, so ``{"bladder_bowel_dysfunction": true,
"bladder_bowel_dysfunction": false}`` would silently drop a reported red flag), ``pandas.read_csv``
(which turns the strings ``True``/``TRUE`` into booleans) and ``pandas.read_parquet``; it reads
any size of body, echoes a body that is not JSON back in its 400, and returns stack traces with
the server's paths. It offers no hook for any of this. The least-bad route found, used here: the
model's own code runs in the server process when MLflow loads it
(:meth:`model.pyfunc.TriagePyfunc.load_context`), before the server answers anything, and
:func:`install` puts two guards in front of MLflow's request handling there:

* :func:`strict_invocations` replaces ``mlflow.pyfunc.scoring_server.invocations``, the function
  MLflow's ``/invocations`` route calls for every request (it looks it up by name at request time).
  It checks the content type (415), the size (413), parses JSON with
  :func:`vignettes.readers.loads_json` (duplicated keys, ``NaN``, nesting deeper than
  :data:`vignettes.readers.MAX_JSON_DEPTH`: 400 naming the key), reads CSV with
  :func:`vignettes.readers.csv_records` and Parquet with :func:`vignettes.readers.frame_records`,
  and hands MLflow the parsed request as ``dataframe_records``, so every door ends in the same
  validator. Errors are answered with a message that names the field or the place, never the
  body, and never a stack trace or a path (the details go to the server log). A FHIR resource
  in the ``inputs`` form (a QuestionnaireResponse) is shielded from MLflow's NumPy conversion
  (:func:`shield_resources`), so that the pyfunc reads it as the client sent it.
* :class:`BodyLimit` wraps the ASGI application, so that a body above :func:`max_body_bytes` is
  refused with 413 before it is read into memory (from its ``Content-Length``, or while a chunked
  body streams in). MLflow builds its application after the model has loaded, in the module
  ``mlflow.pyfunc.scoring_server.app`` that uvicorn is importing at that moment; the guard is
  attached to that module so that uvicorn, which then takes the module's ``app``, gets the
  wrapped application. Where that cannot be done (another server, another MLflow layout), the
  size is still checked by :func:`strict_invocations`, after MLflow has read the body.

Both are installed only inside a scoring server (MLflow sets ``__pyfunc_model_path__`` for it);
a model loaded in any other process changes nothing in MLflow.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import sys
import types
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from vignettes.readers import InputFormatError, csv_records, frame_records, loads_json

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "MAX_BODY_ENV",
    "BodyLimit",
    "install",
    "max_body_bytes",
    "shield_resources",
    "strict_invocations",
]

DEFAULT_MAX_BODY_BYTES = 16_000_000
"""The largest request body accepted by default (16 MB, about 16,000 cases as JSON records)."""
MAX_BODY_ENV = "SCIATICA_TRIAGE_MAX_BODY_BYTES"
"""Environment variable that sets another limit (bytes) for ``make serve``."""

JSON = "application/json"
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"
CONTENT_TYPES = (JSON, CSV, PARQUET)
REQUEST_FORMS = ("dataframe_records", "dataframe_split", "inputs", "instances")
"""MLflow's request forms: a JSON request holds exactly one of them (and optionally ``params``)."""

_SERVER_MODEL_PATH = "__pyfunc_model_path__"  # set by `mlflow models serve` for its server
_APP_MODULE = "mlflow.pyfunc.scoring_server.app"
_DRAIN_BYTES = 256_000_000
"""A refused body is read and dropped up to this size, so that clients that send the whole body
before they read the answer (urllib, requests) get the 413 instead of a reset connection."""
_DRAIN_WAIT = 1.0
"""Seconds to wait for each further piece of a refused body before answering anyway."""

_log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def max_body_bytes() -> int:
    """The body limit: :data:`MAX_BODY_ENV` when set to a positive integer, else the default."""
    value = os.environ.get(MAX_BODY_ENV, "")
    return int(value) if value.isdigit() and int(value) > 0 else DEFAULT_MAX_BODY_BYTES


# --------------------------------------------------------------------------------------------
# Answers
# --------------------------------------------------------------------------------------------


def _error_body(status: int, message: str, field: str | None = None) -> str:
    codes = {400: "BAD_REQUEST", 413: "REQUEST_LIMIT_EXCEEDED", 415: "BAD_REQUEST"}
    body: dict[str, Any] = {"error_code": codes.get(status, "INTERNAL_ERROR"), "message": message}
    if field is not None:
        body["field"] = field
    return json.dumps(body)


def _too_large(size: int | None, limit: int) -> str:
    got = f"more than {limit:,}" if size is None else f"{size:,}"
    return _error_body(
        413,
        f"request: the body is {got} bytes; at most {limit:,} are accepted (send fewer cases "
        f"per request, or set {MAX_BODY_ENV} for the server)",
    )


def _unsupported_type(content_type: str | None) -> str:
    allowed = ", ".join(CONTENT_TYPES)
    got = "no Content-Type" if not content_type else f"Content-Type {content_type[:60]!r}"
    return _error_body(415, f"request: {got}; expected one of {allowed} (UTF-8)")


# --------------------------------------------------------------------------------------------
# /invocations
# --------------------------------------------------------------------------------------------


def _media_type(content_type: str | None) -> str | None:
    """The request's media type if it is one of :data:`CONTENT_TYPES` in UTF-8, else ``None``."""
    if not content_type:
        return None
    media, *parameters = (part.strip() for part in content_type.split(";"))
    media = media.lower()
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() != "charset" or value.strip().strip('"').lower() != "utf-8":
            return None
    return media if media in CONTENT_TYPES else None


def _parse(data: bytes | str, media: str) -> dict[str, Any]:
    """The request as MLflow's JSON form, read strictly; raises InputFormatError."""
    if media == JSON:
        request = loads_json(data, "request")
        if not isinstance(request, dict):
            kind = "a list" if isinstance(request, list) else type(request).__name__
            raise InputFormatError(None, "a JSON object", _form_message(f"got {kind}"))
        forms = [name for name in request if name in REQUEST_FORMS]
        others = [name for name in request if name not in REQUEST_FORMS and name != "params"]
        if len(forms) != 1 or others:
            keys = ", ".join(repr(str(k)[:40]) for k in request) or "none"
            raise InputFormatError(None, "one request form", _form_message(f"got keys {keys}"))
        split = request.get("dataframe_split")
        if isinstance(split, dict) and isinstance(split.get("columns"), list):
            frame_records(_columns_only(split["columns"]), "the request's columns")
        return shield_resources(request)
    if media == CSV:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return {"dataframe_records": csv_records(text, "request")}
    return {"dataframe_records": frame_records(_parquet(data), "request")}


def _form_message(got: str) -> str:
    forms = ", ".join(REQUEST_FORMS)
    return (
        f"request: expected a JSON object with exactly one of {forms} (and optionally params); "
        f'{got}; e.g. {{"dataframe_records": [{{"age": 67, "worse_walking": true}}]}}'
    )


def shield_resources(request: dict[str, Any]) -> dict[str, Any]:
    """The request with each FHIR resource of its ``inputs`` form shielded from NumPy.

    MLflow's ``inputs`` parser calls ``numpy.array`` on every top-level value of a record. For a
    QuestionnaireResponse that is its ``item`` list (and ``extension`` and the like): a list of
    item objects becomes an object array, which is harmless, but a list that mixes objects and
    lists cannot be made an array at all (MLflow answers a 400 that names nothing), and a list
    of strings and numbers becomes an array of strings. Each list value of a record that names a
    ``resourceType`` is therefore handed over as a one-dimensional object array of the very same
    elements, which ``numpy.array`` copies as it is; the pyfunc turns it back into a list
    (:func:`model.pyfunc.records_of`). Plain records, and the other forms, are left alone.

    Parameters
    ----------
    request : dict
        The parsed JSON request (one of :data:`REQUEST_FORMS`).

    Returns
    -------
    dict
        The same request, with shielded copies of the records that are FHIR resources.
    """
    records = request.get("inputs")
    if isinstance(records, dict):
        return {**request, "inputs": _shielded(records)}
    if isinstance(records, list) and any(_is_resource(r) for r in records):
        return {**request, "inputs": [_shielded(r) for r in records]}
    return request


def _is_resource(record: object) -> bool:
    return isinstance(record, dict) and "resourceType" in record


def _shielded(record: Any) -> Any:
    if not _is_resource(record):
        return record
    return {name: _object_array(v) if isinstance(v, list) else v for name, v in record.items()}


def _object_array(values: list[Any]) -> Any:
    """A one-dimensional object array of exactly ``values`` (lists among them stay lists)."""
    import numpy as np

    array = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):  # element by element: a slice would broadcast lists
        array[i] = value
    return array


def _columns_only(columns: list[Any]) -> Any:
    import pandas as pd

    return pd.DataFrame(columns=[str(c) if not isinstance(c, str) else c for c in columns])


def _parquet(data: bytes | str) -> Any:
    import pandas as pd

    raw = data.encode() if isinstance(data, str) else data
    try:
        return pd.read_parquet(io.BytesIO(raw))
    except Exception as exc:  # pyarrow raises many types; none of their text is answered
        _log.info("refused a Parquet body: %s: %s", type(exc).__name__, exc)
        message = "request: not a readable Parquet file (a frame written by DataFrame.to_parquet)"
        raise InputFormatError(None, "a Parquet file", message) from None


def strict_invocations(original: Callable[..., Any]) -> Callable[..., Any]:
    """MLflow's ``invocations`` behind this module's strict reading of the request.

    Parameters
    ----------
    original : callable
        ``mlflow.pyfunc.scoring_server.invocations(data, content_type, model, input_schema)``,
        which returns an ``InvocationsResponse(response, status, mimetype)``.

    Returns
    -------
    callable
        The same signature and result type. Answers: 415 for a missing or unsupported content
        type, 413 above :func:`max_body_bytes`, 400 naming the key or the place for a request
        that cannot be read, MLflow's answer otherwise, with any error it raises answered
        without the request, a stack trace or a path.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc.scoring_server import InvocationsResponse

    from model.pyfunc import IntakeRefused

    def answer(body: str, status: int) -> Any:
        return InvocationsResponse(response=body, status=status, mimetype=JSON)

    def invocations(data: bytes | str, content_type: str | None, model: Any, schema: Any) -> Any:
        media = _media_type(content_type)
        if media is None:
            return answer(_unsupported_type(content_type), 415)
        limit = max_body_bytes()
        if len(data) > limit:
            return answer(_too_large(len(data), limit), 413)
        try:
            request = _parse(data, media)
        except UnicodeDecodeError:
            return answer(_error_body(400, "request: not UTF-8 text"), 400)
        except InputFormatError as error:
            return answer(_error_body(400, str(error), error.field), 400)
        try:
            return original(request, JSON, model, schema)
        except IntakeRefused as error:  # the validator's message: the field, what is allowed
            return answer(error.serialize_as_json(), error.get_http_status_code())
        except MlflowException as error:
            _log.warning("request refused by MLflow: %s", error.message, exc_info=True)
            status = error.get_http_status_code()
            message = f"request: could not be predicted ({error.error_code}); see the server log"
            return answer(_error_body(status, message), status)
        except Exception:
            _log.exception("unexpected error while predicting a request")
            return answer(_error_body(500, "internal error; see the server log"), 500)

    invocations.__wrapped__ = original  # type: ignore[attr-defined]
    return invocations


# --------------------------------------------------------------------------------------------
# The body limit, before the body is read
# --------------------------------------------------------------------------------------------


class BodyLimit:
    """ASGI middleware: refuse a request body above ``limit`` bytes with 413 before reading it.

    Parameters
    ----------
    app : ASGI application
        The application to protect (MLflow's FastAPI app).
    limit : int, optional
        Bytes; default :func:`max_body_bytes`.
    """

    def __init__(self, app: Any, limit: int | None = None) -> None:
        self.app = app
        self.limit = max_body_bytes() if limit is None else limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None and length <= self.limit:
            await self.app(scope, receive, send)  # the server stops the body at its length
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more and (length is None or length <= self.limit) and size <= self.limit:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = bool(message.get("more_body"))
        if size > self.limit or (length is not None and length > self.limit):
            if not _expects_continue(scope):  # else the client waits, and sends nothing
                await _drain(receive, more, size)
            await _send_json(send, 413, _too_large(length, self.limit))
            return
        replay = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replayed() -> MutableMapping[str, Any]:
            return replay.pop() if replay else await receive()

        await self.app(scope, replayed, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


def _expects_continue(scope: Scope) -> bool:
    """Did the client ask to hear back before it sends the body (``Expect: 100-continue``)?"""
    return any(
        name.lower() == b"expect" and value.lower().startswith(b"100")
        for name, value in scope.get("headers", ())
    )


async def _drain(receive: Receive, more: bool, size: int) -> None:
    """Read and drop the rest of a refused body, so the client can read the 413.

    Bounded: at most :data:`_DRAIN_BYTES`, and no more than :data:`_DRAIN_WAIT` seconds for
    each piece (a client that declared a length and sends nothing is answered after that).
    """
    while more and size < _DRAIN_BYTES:
        try:
            message = await asyncio.wait_for(receive(), _DRAIN_WAIT)
        except TimeoutError:
            return
        if message["type"] != "http.request":
            return
        size += len(message.get("body", b""))
        more = bool(message.get("more_body"))


async def _send_json(send: Send, status: int, body: str) -> None:
    data = body.encode()
    headers = [(b"content-type", JSON.encode()), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


# --------------------------------------------------------------------------------------------
# Installing the guards in MLflow's scoring server
# --------------------------------------------------------------------------------------------


class _GuardedAppModule(types.ModuleType):
    """``mlflow.pyfunc.scoring_server.app`` whose ``app`` is read through :class:`BodyLimit`.

    The module assigns ``app`` into its namespace when MLflow has built it; uvicorn then reads
    ``module.app``, which this property answers with the wrapped application (made once).
    """

    @property
    def app(self) -> Any:
        namespace = self.__dict__
        if "_guarded_app" not in namespace:
            namespace["_guarded_app"] = BodyLimit(namespace["app"])
        return namespace["_guarded_app"]


def in_scoring_server() -> bool:
    """Is this process MLflow's scoring server (``mlflow models serve``)?"""
    return bool(os.environ.get(_SERVER_MODEL_PATH))


def install() -> bool:
    """Put the guards in front of MLflow's scoring server, when this process is one.

    Called by :meth:`model.pyfunc.TriagePyfunc.load_context`; idempotent.

    Returns
    -------
    bool
        Whether the guards are in place (``False`` outside a scoring server).
    """
    if not in_scoring_server():
        return False
    from mlflow.pyfunc import scoring_server

    if not hasattr(scoring_server.invocations, "__wrapped__"):
        scoring_server.invocations = strict_invocations(scoring_server.invocations)
    module = sys.modules.get(_APP_MODULE)
    if module is not None and "app" not in module.__dict__:  # MLflow is building it right now
        module.__class__ = _GuardedAppModule
    return True
