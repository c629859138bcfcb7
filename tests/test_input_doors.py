"""Nothing a patient said is lost or changed on the way in, at the Python API, the CLI and HTTP.

The shared bad-input suite (``tests/bad_inputs.py``) runs here through the API and the CLI; its
HTTP run is in ``tests/test_mlflow_serve.py`` (it needs ``make serve``). The HTTP guards of
``model.scoring_guard`` are also tested here without a server, around a stand-in for MLflow's
``invocations``. None of these tests loads a model: every refusal happens before one is needed.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import serve
import vignettes
from model import scoring_guard
from serve.cli import EXIT_BAD_INPUT, main
from tests.bad_inputs import (
    BAD_RESPONSES,
    PATIENT_NAME,
    SUITE,
    BadInput,
    BadResponse,
    as_series,
    response,
    tally,
)
from vignettes.intake import IntakeError, validate_case
from vignettes.readers import InputFormatError, csv_records, json_lines, loads_json
from vignettes.schema import FIELD_NAMES, FIELDS

README = Path(__file__).resolve().parents[1] / "README.md"
SAFETY = '{"age": 50, "bladder_bowel_dysfunction": true, "bladder_bowel_dysfunction": false}'


@pytest.fixture(autouse=True)
def no_model_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No store and no cache: a door that fails to refuse cannot quietly answer with a model."""
    monkeypatch.setenv("SCIATICA_TRIAGE_CACHE", "off")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'none' / 'mlflow.db'}")
    serve.clear_cache()


# --------------------------------------------------------------------------------------------
# The shared suite: API and CLI
# --------------------------------------------------------------------------------------------


def api_refuses_by_name(item: BadInput) -> bool:
    try:
        serve.predict(as_series(item))
    except IntakeError as error:
        return item.field is None or error.field == item.field
    except Exception:
        return False
    return False


def cli_refuses_by_name(item: BadInput, tmp_path: Path, capsys: Any) -> bool:
    path = tmp_path / "case.json"
    path.write_text(item.text)
    status = main(["predict", str(path)])
    err = capsys.readouterr().err.strip()
    if status != EXIT_BAD_INPUT or len(err.splitlines()) != 1 or "Traceback" in err:
        return False
    return item.field is None or re.search(rf"\b{item.field}: ", err) is not None


def suite_counts(tmp_path: Path, capsys: Any) -> dict[str, tuple[int, int]]:
    api = tally("API", [i for i in SUITE if i.for_api], api_refuses_by_name)
    cli = tally("CLI", SUITE, lambda item: cli_refuses_by_name(item, tmp_path, capsys))
    for door in (api, cli):
        assert door.missed == [], door.line()
    return {d.door: (d.tried, d.refused_by_name) for d in (api, cli)}


def test_the_api_and_the_cli_refuse_every_bad_input_by_name(tmp_path: Path, capsys: Any) -> None:
    counts = suite_counts(tmp_path, capsys)
    assert counts["API"][0] == counts["API"][1] > 100
    assert counts["CLI"][0] == counts["CLI"][1] == len(SUITE)


def test_the_readme_states_the_suites_counts(tmp_path: Path, capsys: Any) -> None:
    counts = suite_counts(tmp_path, capsys)
    text = " ".join(README.read_text().split())
    assert f"{len(SUITE)} bad records" in text
    for door, (tried, refused) in counts.items():
        assert f"{door}: {tried} tried, {refused} refused by name" in text, door
    assert f"HTTP: {len(SUITE)} tried, {len(SUITE)} refused by name" in text


def test_the_duplicated_red_flag_of_the_probe_is_refused_at_the_cli(
    tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "case.json"
    path.write_text(SAFETY)
    assert main(["predict", str(path)]) == EXIT_BAD_INPUT
    line = capsys.readouterr().err.strip()
    assert "bladder_bowel_dysfunction: appears more than once" in line
    monkeypatch.setattr("sys.stdin", io.StringIO(f"[{{}}, {SAFETY}]"))
    assert main(["predict", "-"]) == EXIT_BAD_INPUT
    assert "bladder_bowel_dysfunction" in capsys.readouterr().err


def test_json_nested_100000_deep_exits_2_at_the_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("[" * 100_000 + "]" * 100_000))
    assert main(["predict", "-"]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "nested" in err and "RecursionError" not in err and len(err.splitlines()) == 1


def test_a_series_with_a_repeated_field_is_refused() -> None:
    case = pd.Series([50, True, False], index=["age", "saddle_numbness", "saddle_numbness"])
    with pytest.raises(IntakeError, match=r"^saddle_numbness: appears more than once") as error:
        serve.predict(case)
    assert error.value.field == "saddle_numbness"


def test_a_frame_with_a_repeated_column_is_refused() -> None:
    frame = pd.DataFrame([[50, True, False]], columns=["age", "fever", "fever"])
    with pytest.raises(IntakeError, match=r"^fever: the column appears more than once"):
        serve.predict_batch(frame)


# --------------------------------------------------------------------------------------------
# Property: a duplicated answer never lowers the tier
# --------------------------------------------------------------------------------------------

BOOLS = [f.name for f in FIELDS if f.kind == "bool"]


@st.composite
def intakes_with_a_contradicting_duplicate(draw: st.DrawFn) -> tuple[str, str]:
    """A random intake as JSON text with one yes/no answer given twice (yes and no, any order)."""
    pairs: list[tuple[str, Any]] = [("age", draw(st.integers(18, 100)))]
    for name in draw(st.lists(st.sampled_from(BOOLS), unique=True, max_size=8)):
        pairs.append((name, draw(st.booleans())))
    twice = draw(st.sampled_from(BOOLS))
    pairs = [p for p in pairs if p[0] != twice]
    yes_first = draw(st.booleans())
    at = draw(st.integers(0, len(pairs)))
    pairs[at:at] = [(twice, yes_first), (twice, not yes_first)]
    text = "{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in pairs) + "}"
    return text, twice


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=intakes_with_a_contradicting_duplicate())
def test_no_door_answers_a_contradicting_duplicate_below_the_patients_yes(
    case: tuple[str, str], tmp_path: Path, capsys: Any
) -> None:
    """Refusal counts as "not lower": here no door may answer at all (no model is reachable, so
    an answer would be a failure to load, exit 1, not a refusal)."""
    text, twice = case
    item = BadInput("duplicate", text, twice)
    assert api_refuses_by_name(item)
    assert cli_refuses_by_name(item, tmp_path, capsys)


# --------------------------------------------------------------------------------------------
# The readers
# --------------------------------------------------------------------------------------------


def test_loads_json_refuses_what_python_json_would_guess() -> None:
    with pytest.raises(InputFormatError) as error:
        loads_json(SAFETY)
    assert error.value.field == "bladder_bowel_dysfunction"
    assert "(true, then false)" in str(error.value)
    assert loads_json('{"a": {"a": 1}}') == {"a": {"a": 1}}  # the same key at two levels is fine
    for text, words in [("[NaN]", "NaN"), ("[-Infinity]", "Infinity"), ("[1e2, ", "not valid")]:
        with pytest.raises(InputFormatError, match=words):
            loads_json(text)


def test_no_reader_repeats_the_input_in_its_message() -> None:
    secret = "patient-name-Ada"
    for text in [f'{{"x": "{secret}", ', f'["{secret}", NaN]', f'{{"{secret}": 1}}  x']:
        with pytest.raises(InputFormatError) as error:
            loads_json(text)
        assert secret not in str(error.value)


def test_json_lines_name_the_line() -> None:
    assert json_lines('{"age": 40}\n\n{"age": 50}\n') == [{"age": 40}, {"age": 50}]
    with pytest.raises(InputFormatError, match=r"^f, line 2: ") as error:
        json_lines('{"age": 40}\n{"age": 40, "fever": true, "fever": false}\n', "f")
    assert error.value.field == "fever"


def test_csv_cells_read_as_json_literals_and_strings_are_not_booleans() -> None:
    text = "age,fever,sex,duration_weeks,numbness\n50,true,male,3.5,\n60,True,,1e2,TRUE\n"
    first, second = csv_records(text)
    assert first == {"age": 50, "fever": True, "sex": "male", "duration_weeks": 3.5}
    assert second == {"age": 60, "fever": "True", "duration_weeks": 100.0, "numbness": "TRUE"}
    with pytest.raises(IntakeError, match=r"^fever: got str 'True'"):
        serve.predict({**second, "numbness": None})
    with pytest.raises(InputFormatError, match=r"^fever: the column appears more than once"):
        csv_records("age,fever,fever\n50,true,false\n")


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_the_cli_reads_jsonl_csv_and_parquet_with_the_same_checks(
    suffix: str, tmp_path: Path, capsys: Any
) -> None:
    path = tmp_path / f"cases{suffix}"
    if suffix == ".jsonl":
        path.write_text('{"age": 40}\n{"age": 41, "sides": "up"}\n')
    elif suffix == ".csv":
        path.write_text("age,sides\n40,left\n41,up\n")
    else:
        pd.DataFrame({"age": [40, 41], "sides": ["left", "up"]}).to_parquet(path)
    assert main(["predict", str(path)]) == EXIT_BAD_INPUT
    assert "record 1 (counting from 0): sides: 'up'" in capsys.readouterr().err


def test_the_cli_reads_the_parquet_make_data_writes(tmp_path: Path, capsys: Any) -> None:
    """A generated frame (categories, nullable booleans, label columns) reads as its records."""
    import vignettes
    from serve.terminal import read_cases

    frame = vignettes.generate(30, seed=5)
    path = tmp_path / "train.parquet"
    frame.to_parquet(path)
    records = read_cases(str(path))
    assert len(records) == 30
    assert [validate_case(r) for r in records] == [validate_case(r) for _, r in frame.iterrows()]
    path.write_bytes(b"PAR1 not really")
    assert main(["predict", str(path)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "not a readable Parquet file" in err and "Traceback" not in err


def test_an_empty_list_answers_no_cases(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("[]"))
    assert main(["predict", "-"]) == 0
    assert capsys.readouterr().out.strip() == "no cases"


# --------------------------------------------------------------------------------------------
# The HTTP guards, around a stand-in for MLflow's invocations
# --------------------------------------------------------------------------------------------


class Stand:
    """Records what MLflow's ``invocations`` would have been given; answers 200 or raises."""

    def __init__(self, error: Exception | None = None) -> None:
        self.requests: list[Any] = []
        self.error = error

    def __call__(self, data: Any, content_type: str, model: Any, schema: Any) -> Any:
        from mlflow.pyfunc.scoring_server import InvocationsResponse

        self.requests.append((data, content_type))
        if self.error is not None:
            raise self.error
        return InvocationsResponse('{"predictions": []}', 200, "application/json")


def invoke(body: bytes | str, content_type: str | None, stand: Stand | None = None) -> Any:
    stand = stand if stand is not None else Stand()
    answer = scoring_guard.strict_invocations(stand)(body, content_type, None, None)
    return answer.status, json.loads(answer.response), stand


@pytest.mark.parametrize(
    "content_type",
    [None, "", "text/plain", "application/xml", "application/json; charset=latin-1", "json"],
)
def test_a_missing_or_unsupported_content_type_gets_415(content_type: str | None) -> None:
    status, body, stand = invoke('{"inputs": [{"age": 40}]}', content_type)
    assert status == 415 and stand.requests == []
    assert "application/json" in body["message"]


def test_a_body_above_the_limit_gets_413(monkeypatch: pytest.MonkeyPatch) -> None:
    assert scoring_guard.max_body_bytes() == 16_000_000
    monkeypatch.setenv(scoring_guard.MAX_BODY_ENV, "100")
    status, body, stand = invoke('{"inputs": [' + '{"age": 40},' * 20 + "{}]}", "application/json")
    assert status == 413 and stand.requests == [] and "at most 100" in body["message"]


@pytest.mark.parametrize("form", ["dataframe_records", "inputs", "instances"])
def test_a_duplicated_key_in_any_form_gets_400_naming_it(form: str) -> None:
    status, body, stand = invoke(f'{{"{form}": [{{"age": 40}}, {SAFETY}]}}', "application/json")
    assert status == 400 and stand.requests == []
    assert body["field"] == "bladder_bowel_dysfunction"
    assert body["message"].startswith("bladder_bowel_dysfunction: appears more than once")


def test_a_duplicated_column_of_dataframe_split_gets_400() -> None:
    split = {"columns": ["age", "fever", "fever"], "data": [[50, True, False]]}
    status, body, _ = invoke(json.dumps({"dataframe_split": split}), "application/json")
    assert status == 400 and body["field"] == "fever"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("not json at all, patient Ada Lovelace", "not valid JSON"),
        ('{"inputs": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested"),
        ('{"inputs": [{"age": 40}], "inputs": []}', "inputs: appears more than once"),
        ('[{"age": 40}]', "exactly one of"),
        ('{"age": 40, "fever": true}', "exactly one of"),
        (b"\xff\xfe", "UTF-8"),
    ],
)
def test_an_unreadable_request_gets_400_without_the_body(body: str | bytes, words: str) -> None:
    status, answer, stand = invoke(body, "application/json")
    assert status == 400 and stand.requests == []
    assert words in answer["message"]
    assert "Ada" not in answer["message"] and "Traceback" not in json.dumps(answer)


def test_the_csv_door_goes_through_the_json_records_door() -> None:
    csv = "age,fever,sides\n50,true,left\n60,TRUE,\n"
    status, _, stand = invoke(csv, "text/csv")
    assert status == 200
    ((request, content_type),) = stand.requests
    assert content_type == "application/json"
    assert request == {
        "dataframe_records": [
            {"age": 50, "fever": True, "sides": "left"},
            {"age": 60, "fever": "TRUE"},
        ]
    }


def test_a_bad_parquet_body_gets_400_without_a_trace() -> None:
    status, body, _ = invoke(b"PAR1 garbage", "application/vnd.apache.parquet")
    assert status == 400 and "not a readable Parquet file" in body["message"]
    assert "Traceback" not in json.dumps(body) and ".venv" not in json.dumps(body)


def test_a_parquet_body_goes_through_the_records_door() -> None:
    buffer = io.BytesIO()
    pd.DataFrame({"age": [50, 60], "fever": [True, None]}).to_parquet(buffer)
    status, _, stand = invoke(buffer.getvalue(), "application/vnd.apache.parquet")
    assert status == 200
    assert stand.requests[0][0] == {"dataframe_records": [{"age": 50, "fever": True}, {"age": 60}]}


def test_errors_from_mlflow_are_answered_without_the_request_a_trace_or_a_path() -> None:
    from mlflow.exceptions import MlflowException

    leaky = MlflowException(
        'Failed to predict data \'{"age": 40, "name": "Ada"}\'', stack_trace="/home/x/.venv"
    )
    for error in (leaky, RuntimeError("/home/x/.venv/lib/site.py Ada")):
        status, body, _ = invoke('{"inputs": [{"age": 40}]}', "application/json", Stand(error))
        assert status == 500
        text = json.dumps(body)
        assert "Ada" not in text and ".venv" not in text and "stack_trace" not in body


def test_the_guards_install_only_in_a_scoring_server(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.pyfunc import scoring_server

    monkeypatch.delenv("__pyfunc_model_path__", raising=False)
    before = scoring_server.invocations
    assert scoring_guard.install() is False
    assert scoring_server.invocations is before


# --------------------------------------------------------------------------------------------
# QuestionnaireResponses in the inputs form, through MLflow's own parser (no model, no server)
# --------------------------------------------------------------------------------------------


class Echo:
    """A stand-in for ``TriageModel``: answers each case with the answers that reached it."""

    def predict_records(self, answers: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [dict(a) for a in answers]


def mlflow_invoke(payload: Any) -> tuple[int, Any]:
    """``payload`` through the strict door and MLflow's real ``invocations`` into the pyfunc,
    whose model is :class:`Echo`: the status and the decoded answer."""
    from mlflow.pyfunc import scoring_server

    from model.pyfunc import TriagePyfunc

    pyfunc = TriagePyfunc()
    pyfunc.model = cast(Any, Echo())

    def predict(data: Any, params: Any = None) -> Any:
        return pyfunc.predict(None, data, params)

    model = SimpleNamespace(metadata=SimpleNamespace(), predict=predict)
    original = getattr(scoring_server.invocations, "__wrapped__", scoring_server.invocations)
    door = scoring_guard.strict_invocations(original)
    answer = door(json.dumps(payload), "application/json", model, None)
    return answer.status, json.loads(answer.response)


def assert_no_patient_data(body: Any) -> None:
    text = json.dumps(body)
    assert PATIENT_NAME not in text and "Patient/p-1" not in text, text
    assert "Traceback" not in text and "stack_trace" not in text, text


def test_responses_in_the_inputs_form_reach_the_model_as_serve_predict_reads_them() -> None:
    from serve.api import validated_answers

    frame = vignettes.generate(40, seed=19)[list(FIELD_NAMES)]
    records = json.loads(frame.to_json(orient="records"))
    mixed = [vignettes.to_questionnaire_response(r) if i % 2 else r for i, r in enumerate(records)]
    mixed[1]["item"] = [item for group in mixed[1]["item"] for item in group["item"]]  # top level
    for cases in (mixed, mixed[1::2], mixed[:3]):  # mixed, only responses, the one-case path
        status, body = mlflow_invoke({"inputs": cases})
        assert status == 200, body
        assert body["predictions"] == [validated_answers(case) for case in cases]
    status, body = mlflow_invoke({"inputs": mixed[3]})  # one response, not in a list
    assert (status, body["predictions"]) == (200, [validated_answers(mixed[3])])


@pytest.mark.parametrize("bad", BAD_RESPONSES, ids=[b.name for b in BAD_RESPONSES])
def test_a_bad_response_in_the_inputs_form_gets_400_naming_the_link_id(bad: BadResponse) -> None:
    status, body = mlflow_invoke({"inputs": [{"age": 61}, bad.response]})
    assert status == 400, body
    first_line = body["message"].splitlines()[0]
    assert first_line.startswith(f"{bad.link_id}: "), body
    assert bad.allowed in first_line, body
    assert (body["field"], body["record"]) == (bad.link_id, 1)
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert_no_patient_data(body)
    with pytest.raises(IntakeError) as caught:  # the Python API refuses it the same way
        serve.predict(bad.response)
    assert caught.value.field == bad.link_id and str(caught.value) == first_line


@pytest.mark.parametrize(
    "items",
    [
        [[{"linkId": "age"}], [{"linkId": "age"}, {"linkId": "fever"}]],  # NumPy: inhomogeneous
        [{"linkId": "history", "item": []}, [1]],
        ["history", 1],  # NumPy would make 1 the string "1"
        [[{"linkId": "age", "answer": [{"valueInteger": 67}]}]],  # NumPy: a 2-d array
    ],
)
def test_item_lists_numpy_would_mangle_are_refused_by_name(items: list[Any]) -> None:
    qr = {**response(), "item": items}
    status, body = mlflow_invoke({"inputs": [{"age": 61}, qr]})
    assert status == 400, body
    assert body["field"] == "item" and body["message"].startswith("item: an item has no linkId")
    assert_no_patient_data(body)


def test_only_the_inputs_forms_resources_are_shielded() -> None:
    plain = {"inputs": [{"age": 40, "fever": [1, 2]}]}
    assert scoring_guard.shield_resources(plain) is plain
    frame = {"dataframe_records": [response()]}
    assert scoring_guard.shield_resources(frame) is frame
    shielded = scoring_guard.shield_resources({"inputs": [{"age": 40}, response()]})["inputs"]
    assert shielded[0] == {"age": 40}
    assert shielded[1]["item"].dtype == object and shielded[1]["item"].shape == (1,)
    assert shielded[1]["item"].tolist() == response()["item"]


@pytest.mark.parametrize("form", ["dataframe_records", "dataframe_split"])
def test_a_response_in_a_frame_form_is_refused_pointing_to_inputs(form: str) -> None:
    qr = dict(reversed(response().items()))  # resourceType last: still the one named
    payload: Any = {form: [{"age": 61}, qr]}
    if form == "dataframe_split":
        payload = {form: {"columns": list(qr), "data": [list(qr.values())]}}
    status, body = mlflow_invoke(payload)
    assert status == 400, body
    assert body["field"] == "resourceType" and '{"inputs": [qr, ...]}' in body["message"]
    assert_no_patient_data(body)


# --------------------------------------------------------------------------------------------
# The body limit before the body is read (ASGI)
# --------------------------------------------------------------------------------------------


def run_asgi(
    app: Any, body_chunks: list[bytes], headers: list[tuple[bytes, bytes]]
) -> tuple[int, bytes, int]:
    """Send one request through an ASGI app: (status, body, chunks the app's side read)."""
    messages = [
        {"type": "http.request", "body": chunk, "more_body": i < len(body_chunks) - 1}
        for i, chunk in enumerate(body_chunks)
    ]
    read = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal read
        read += 1
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/invocations", "headers": headers}
    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body, read


async def echo_app(scope: Any, receive: Any, send: Any) -> None:
    """An app that reads the whole body and answers its size."""
    size, more = 0, True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


def test_body_limit_refuses_a_declared_length_above_the_limit_before_the_app_reads() -> None:
    app = scoring_guard.BodyLimit(echo_app, limit=10)
    status, body, _ = run_asgi(app, [b"x" * 11], [(b"content-length", b"11")])
    assert status == 413 and b"at most 10" in body
    assert run_asgi(app, [b"x" * 10], [(b"content-length", b"10")])[:2] == (200, b"10")


def test_body_limit_stops_a_chunked_body_at_the_limit() -> None:
    app = scoring_guard.BodyLimit(echo_app, limit=10)
    status, _, _ = run_asgi(app, [b"x" * 6, b"x" * 6, b"x" * 6], [])
    assert status == 413
    assert run_asgi(app, [b"x" * 4, b"x" * 6], [])[:2] == (200, b"10")
