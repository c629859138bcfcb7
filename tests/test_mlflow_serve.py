"""``make serve`` (``mlflow models serve`` on the champion) answers exactly as ``serve.predict``.

The server is started the way a user starts it, ``make serve PORT=<free port>``, against the
session's temporary tracking store, on 127.0.0.1 only. Polling ``/ping`` is bounded, and the
server's process group (make, mlflow, uvicorn) is always stopped.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

import serve
import vignettes
from model.triage import LIST_COLUMNS, OUTPUT_COLUMNS
from serve.api import validated_answers
from tests.bad_inputs import BAD_RESPONSES, PATIENT_NAME, BadResponse
from vignettes.schema import CAUSES, FIELD_NAMES

pytestmark = pytest.mark.slow

HOST = "127.0.0.1"
STARTUP_SECONDS = 180
REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
N_BATCH = 300


class Server(NamedTuple):
    url: str
    port: int
    log: Path


class Answer(NamedTuple):
    status: int
    body: Any


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def make_serve_command(port: int) -> list[str]:
    """``make serve PORT=<port>``, with this interpreter's environment as ``.venv``.

    ``BIN`` points the target at the scripts folder of the interpreter running the tests (the
    project's ``.venv`` under ``make test``); ``-o`` keeps make from reinstalling it.
    """
    bin_dir = Path(sys.executable).parent
    stamp = ".venv/.installed-stamp"  # as the Makefile names it, relative to the checkout
    command = ["make", "--no-print-directory", "-C", str(REPO), "-o", stamp, "serve"]
    return [*command, f"PORT={port}", f"BIN={bin_dir}"]


def wait_for_ping(url: str, process: subprocess.Popen, log: Path, timeout: float) -> None:
    """Poll ``url`` until it answers 200; fail early if the server process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"make serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    pytest.fail(f"no answer from {url} within {timeout:.0f} s:\n{log.read_text()[-4000:]}")


def stop(process: subprocess.Popen) -> None:
    """Terminate the server's process group (make, uvicorn and its workers), then kill."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def server(
    trained: Any, tracking_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "make-serve.log"
    env = os.environ | {"MLFLOW_TRACKING_URI": tracking_uri}
    with log.open("w") as out:
        process = subprocess.Popen(
            make_serve_command(port),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, stopped as a whole below
        )
    try:
        wait_for_ping(f"http://{HOST}:{port}/ping", process, log, STARTUP_SECONDS)
        yield Server(f"http://{HOST}:{port}", port, log)
    finally:
        stop(process)


def post(server: Server, payload: Any) -> Answer:
    """POST JSON to ``/invocations``; the status and the decoded body, also for errors."""
    request = urllib.request.Request(
        f"{server.url}/invocations",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return Answer(response.status, json.loads(response.read()))
    except urllib.error.HTTPError as error:
        return Answer(error.code, json.loads(error.read()))


def predictions(server: Server, payload: Any) -> list[dict[str, Any]]:
    answer = post(server, payload)
    assert answer.status == 200, answer.body
    return list(answer.body["predictions"])


def generated_records(n: int, seed: int) -> list[dict[str, Any]]:
    """Generated cases as JSON records, unknown answers as ``null``."""
    cases = vignettes.generate(n, seed=seed)[list(FIELD_NAMES)]
    records = json.loads(cases.to_json(orient="records"))
    assert any(v is None for r in records for v in r.values())  # there are gaps to test
    return records


def without_nulls(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if v is not None} for r in records]


def assert_same_answer(row: dict[str, Any], case: dict[str, Any]) -> None:
    """``row`` (over HTTP) is ``serve.predict(case)``'s answer, column by column.

    ``case`` is a plain case or a FHIR QuestionnaireResponse (read as ``serve.predict`` reads it).
    """
    expected = serve.load().model.predict_case(validated_answers(case))  # serve.predict's path
    assert list(row) == list(OUTPUT_COLUMNS)
    for name in OUTPUT_COLUMNS:
        got, want = row[name], expected[name]
        if isinstance(want, float) and not isinstance(want, bool):
            assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9), (name, got, want, case)
        else:
            assert got == want, (name, got, want, case)
    public = serve.predict(case)
    assert row["cause"] == public.cause
    assert [row[f"prob_{c}"] for c in CAUSES] == pytest.approx(
        list(public.probabilities.values()), rel=1e-9, abs=1e-12
    )
    assert row["red_flag"] is public.red_flag
    assert row["urgency"] == public.urgency
    assert row["urgency_action"] == public.urgency_action
    assert row["advice_codes"] == public.advice_codes
    assert row["red_flag_questions_unanswered"] == public.red_flag_questions_unanswered
    assert row["red_flags_fired"] == public.red_flags_fired
    assert row["differential"] == public.differential
    assert row["next_step"] == public.next_step


# --------------------------------------------------------------------------------------------
# The same answers as serve.predict
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gaps", ["null", "left out"])
def test_a_generated_batch_in_one_request_gets_serve_predicts_answers(
    server: Server, gaps: str
) -> None:
    records = generated_records(N_BATCH, seed=41)
    if gaps == "left out":
        records = without_nulls(records)
    rows = predictions(server, {"dataframe_records": records})
    assert len(rows) == N_BATCH
    for row, case in zip(rows, records, strict=True):
        assert_same_answer(row, case)


def test_small_requests_and_the_inputs_form_get_the_same_answers(server: Server) -> None:
    """Requests small enough for the one-case path, in both JSON forms, with gaps both ways."""
    records = generated_records(60, seed=42)
    mixed = [r if i % 2 else without_nulls([r])[0] for i, r in enumerate(records)]
    for start in range(0, len(mixed), 12):
        chunk = mixed[start : start + 12]
        for form in ("dataframe_records", "inputs"):
            rows = predictions(server, {form: chunk})
            for row, case in zip(rows, chunk, strict=True):
                assert_same_answer(row, case)


@pytest.mark.parametrize("form", ["dataframe_records", "inputs"])
def test_each_record_is_answered_alone(server: Server, form: str) -> None:
    first, second = {"age": 35, "sides": "left"}, {"age": 50, "fever": True}
    together = predictions(server, {form: [first, second]})
    assert together[0]["red_flags_fired"] == []  # the issue: fever leaked into the first
    assert together[1]["red_flags_fired"] == ["fever"]
    assert together[0] == predictions(server, {form: [first]})[0]
    assert together[1] == predictions(server, {form: [second]})[0]
    assert_same_answer(together[0], first)
    assert_same_answer(together[1], second)
    # null means unknown, exactly as a field left out
    with_null = predictions(server, {form: [{**first, "fever": None}, second]})
    assert with_null == together


def test_outputs_are_json_lists_and_the_registry_version(server: Server) -> None:
    import mlflow

    row = predictions(server, {"dataframe_records": [{"age": 58, "fever": True}]})[0]
    for name in LIST_COLUMNS:
        assert isinstance(row[name], list), name
    champion = mlflow.MlflowClient().get_model_version_by_alias("sciatica-triage", "champion")
    assert row["model_version"] == str(champion.version)
    assert row["model_version"] == serve.load().model_version
    assert row["model_name"] == "sciatica-triage"


# --------------------------------------------------------------------------------------------
# Bad input: 400, and the first line names the field, the value and what is allowed
# --------------------------------------------------------------------------------------------

BAD = [
    ({"age": 40, "fever": "no"}, "fever", "'no'"),
    ({"age": 40, "fever": "false"}, "fever", "'false'"),
    ({"age": 40, "fever": 1}, "fever", "1"),
    ({"age": "40"}, "age", "'40'"),
    ({"age": 40.7}, "age", "40.7"),
    ({"age": 300}, "age", "300"),
    ({"age": 40, "sex": "Male"}, "sex", "'Male'"),
    ({"age": 40, "pain_region": "calf"}, "pain_region", "'calf'"),
    ({"age": 40, "duration_weeks": -2}, "duration_weeks", "-2"),
    ({"age": 40, "duration_weeks": "3"}, "duration_weeks", "'3'"),
    ({"age": 40, "worse_coughing": True}, "worse_coughing", "'worse_coughing'"),
    ({"age": 40, "worse_coughing": None}, "worse_coughing", "'worse_coughing'"),
    ({"sex": "male"}, "age", "age"),
]


@pytest.mark.parametrize("form", ["dataframe_records", "inputs"])
@pytest.mark.parametrize(("record", "field", "shown"), BAD, ids=[f"{b[1]}-{b[0]}" for b in BAD])
def test_bad_input_is_refused_with_400_naming_the_field(
    server: Server, form: str, record: dict[str, Any], field: str, shown: str
) -> None:
    answer = post(server, {form: [{"age": 61, "numbness": True}, record]})
    assert answer.status == 400, answer.body
    message = answer.body["message"]
    first_line = message.splitlines()[0]
    assert first_line.startswith(f"{field}"), message
    assert shown in first_line, message
    allowed = ("expected", "required", "the valid fields are")  # what is allowed, in words
    assert any(words in first_line for words in allowed), message
    assert answer.body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert answer.body["field"] == field
    assert "stack_trace" not in answer.body and "Traceback" not in message
    assert str(REPO) not in json.dumps(answer.body)  # no server paths


def test_a_request_that_is_not_records_gets_400(server: Server) -> None:
    answer = post(server, {"inputs": [1, 2, 3]})
    assert answer.status == 400, answer.body


# --------------------------------------------------------------------------------------------
# FHIR QuestionnaireResponses in the inputs form
# --------------------------------------------------------------------------------------------


def generated_responses(n: int, seed: int) -> list[dict[str, Any]]:
    return [vignettes.to_questionnaire_response(r) for r in generated_records(n, seed)]


def test_a_questionnaire_response_gets_serve_predicts_answer(server: Server) -> None:
    records = without_nulls(generated_records(6, seed=44))
    records[0] |= {"bladder_bowel_dysfunction": True}  # a red flag, through its group
    for record in records:
        qr = vignettes.to_questionnaire_response(record)
        (row,) = predictions(server, {"inputs": [qr]})
        assert_same_answer(row, qr)
        assert row == predictions(server, {"inputs": [record]})[0]  # the same as the dict's
    assert predictions(server, {"inputs": qr}) == [row]  # one response, not in a list
    first = predictions(server, {"inputs": [vignettes.to_questionnaire_response(records[0])]})
    assert first[0]["urgency"] == "emergency"


@pytest.mark.parametrize("n", [12, 80])  # the one-case path and the vectorised path
def test_a_batch_mixing_responses_and_cases_gets_serve_predicts_answers(
    server: Server, n: int
) -> None:
    records = generated_records(n, seed=45 + n)
    mixed = [vignettes.to_questionnaire_response(r) if i % 3 else r for i, r in enumerate(records)]
    rows = predictions(server, {"inputs": mixed})
    assert len(rows) == n
    for row, case in zip(rows, mixed, strict=True):
        assert_same_answer(row, case)
    assert rows == predictions(server, {"inputs": records})  # the same as the plain cases


@pytest.mark.parametrize("bad", BAD_RESPONSES, ids=[b.name for b in BAD_RESPONSES])
def test_a_bad_response_is_refused_with_400_naming_the_link_id(
    server: Server, bad: BadResponse
) -> None:
    good = generated_responses(1, seed=46)[0]
    answer = post(server, {"inputs": [good, {"age": 61}, bad.response]})
    assert answer.status == 400, answer.body
    message = answer.body["message"]
    first_line = message.splitlines()[0]
    assert first_line.startswith(f"{bad.link_id}: "), message
    assert bad.allowed in first_line, message
    assert answer.body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert (answer.body["field"], answer.body["record"]) == (bad.link_id, 2)
    assert_clean(answer)
    text = json.dumps(answer.body)
    assert PATIENT_NAME not in text and "Patient/p-1" not in text, text


def test_a_response_in_dataframe_records_is_refused_pointing_to_inputs(server: Server) -> None:
    answer = post(server, {"dataframe_records": generated_responses(1, seed=47)})
    assert answer.status == 400, answer.body
    assert answer.body["field"] == "resourceType"
    assert '{"inputs": [qr, ...]}' in answer.body["message"]


def test_the_pyfunc_takes_responses_in_a_list(trained: Any) -> None:
    import mlflow

    model = mlflow.pyfunc.load_model("models:/sciatica-triage@champion")
    records = generated_records(10, seed=48)
    responses = [vignettes.to_questionnaire_response(r) for r in records]
    assert model.predict(responses) == model.predict(records)
    assert model.predict(responses[:1] + records[1:]) == model.predict(records)


def readme_fhir_curl(port: int) -> str:
    """The curl example that sends a QuestionnaireResponse (section "FHIR R4"), at ``port``."""
    section = README.read_text().split("## FHIR R4:", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)
    (block,) = [b for b in blocks if "/invocations" in b]
    lines = block.replace("\\\n", " ").splitlines()
    (curl,) = [line for line in lines if line.lstrip().startswith("curl ")]
    assert "5001" in curl and "QuestionnaireResponse" in curl
    return curl.replace("5001", str(port))


def test_the_readme_fhir_curl_example_works_as_written(server: Server) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    command = readme_fhir_curl(server.port)
    out = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=60, check=True
    )
    rows = json.loads(out.stdout)["predictions"]
    words = shlex.split(command)
    sent = json.loads(words[words.index("-d") + 1])["inputs"]
    assert sent[0]["resourceType"] == "QuestionnaireResponse"
    assert len(rows) == len(sent)
    for row, case in zip(rows, sent, strict=True):
        assert_same_answer(row, case)


# --------------------------------------------------------------------------------------------
# make serve, the README and warnings
# --------------------------------------------------------------------------------------------


def readme_curl(port: int) -> str:
    """The README's curl example (section "Over HTTP"), pointed at ``port``."""
    section = README.read_text().split("### Over HTTP", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.DOTALL)
    assert block is not None
    lines = block.group(1).replace("\\\n", " ").splitlines()
    (curl,) = [line for line in lines if line.lstrip().startswith("curl ")]
    assert "5001" in curl
    return curl.replace("5001", str(port))


def test_the_readme_curl_example_works_as_written(server: Server) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    section = README.read_text().split("### Over HTTP", 1)[1]
    assert "make serve" in section.split("```", 2)[1]
    command = readme_curl(server.port)
    out = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=60, check=True
    )
    rows = json.loads(out.stdout)["predictions"]
    sent = json.loads(shlex.split(command)[shlex.split(command).index("-d") + 1])
    case = next(iter(sent.values()))[0]
    assert_same_answer(rows[0], case)


def test_no_library_warnings_in_the_server_log(server: Server) -> None:
    predictions(server, {"dataframe_records": [{"age": 44}]})
    log = server.log.read_text()
    assert "Warning" not in log, log
    assert "Add type hints" not in log


def test_importing_and_using_the_pyfunc_warns_nothing(trained: Any, tracking_uri: str) -> None:
    """MLflow's advice to model authors (type hints, schemas) must not reach users.

    Run with Python's default warning filters, as a user's program runs.
    """
    script = (
        "import mlflow, pandas as pd\n"
        "m = mlflow.pyfunc.load_model('models:/sciatica-triage@champion')\n"
        "m.predict(pd.DataFrame([{'age': 50, 'fever': True}, {'age': 60}]))\n"
        "m.predict([{'age': 50, 'fever': None}])\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    env["MLFLOW_TRACKING_URI"] = tracking_uri
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert "Warning" not in out.stderr, out.stderr


def test_pyfunc_takes_a_frame_as_spark_and_python_callers_send_it(trained: Any) -> None:
    """A frame with pandas missing markers (``NaN``, ``NA``) answers as the records do."""
    import mlflow

    model = mlflow.pyfunc.load_model("models:/sciatica-triage@champion")
    frame = vignettes.generate(80, seed=43)[list(FIELD_NAMES)]
    rows = model.predict(frame)
    records = json.loads(frame.to_json(orient="records"))
    assert rows == model.predict(records)
    for row, case in zip(rows[:10], records, strict=False):
        assert_same_answer(row, case)


# --------------------------------------------------------------------------------------------
# The strict door (model.scoring_guard): the shared bad-input suite and HTTP hygiene
# --------------------------------------------------------------------------------------------


def send(server: Server, body: bytes, content_type: str | None) -> Answer:
    """POST raw bytes to ``/invocations`` with ``content_type`` (or no Content-Type at all)."""
    import http.client

    connection = http.client.HTTPConnection(HOST, server.port, timeout=120)
    try:
        connection.putrequest("POST", "/invocations", skip_accept_encoding=True)
        if content_type is not None:
            connection.putheader("Content-Type", content_type)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        raw = response.read()
    finally:
        connection.close()
    try:
        return Answer(response.status, json.loads(raw))
    except ValueError:
        return Answer(response.status, raw.decode(errors="replace"))


def assert_clean(answer: Answer) -> None:
    """No stack trace, no server path, no request in an error answer."""
    text = json.dumps(answer.body)
    assert "stack_trace" not in text and "Traceback" not in text, text
    assert str(REPO) not in text and ".venv" not in text and "site-packages" not in text, text


def test_the_shared_bad_input_suite_is_refused_by_name_over_http(server: Server) -> None:
    from tests.bad_inputs import SUITE, tally

    def refused_by_name(item: Any) -> bool:
        body = f'{{"dataframe_records": [{{"age": 61}}, {item.text}]}}'.encode()
        answer = send(server, body, "application/json")
        assert_clean(answer)
        if answer.status != 400 or not isinstance(answer.body, dict):
            return False
        if item.field is None:
            return True
        return answer.body.get("field") == item.field and answer.body["message"].startswith(
            item.field
        )

    result = tally("HTTP", SUITE, refused_by_name)
    assert result.missed == [], result.line()
    assert (result.tried, result.refused_by_name) == (len(SUITE), len(SUITE))


@pytest.mark.parametrize("form", ["dataframe_records", "inputs"])
def test_the_probes_duplicated_red_flag_is_refused_over_http(server: Server, form: str) -> None:
    case = '{"age": 50, "bladder_bowel_dysfunction": true, "bladder_bowel_dysfunction": false}'
    answer = send(server, f'{{"{form}": [{case}]}}'.encode(), "application/json")
    assert answer.status == 400, answer.body
    assert answer.body["field"] == "bladder_bowel_dysfunction"
    alone = predictions(server, {form: [{"age": 50, "bladder_bowel_dysfunction": True}]})
    assert alone[0]["urgency"] == "emergency"


def test_http_hygiene_status_codes(server: Server) -> None:
    ok = b'{"inputs": [{"age": 40}]}'
    assert send(server, ok, None).status == 415
    assert send(server, ok, "text/plain").status == 415
    deep = b'{"inputs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    answer = send(server, deep, "application/json")
    assert answer.status == 400 and "nested" in answer.body["message"]
    secret = b"not json: patient Ada Lovelace, 12 Main St"
    answer = send(server, secret, "application/json")
    assert answer.status == 400 and "Ada" not in json.dumps(answer.body)
    answer = send(server, b"PAR1 broken", "application/vnd.apache.parquet")
    assert answer.status == 400
    for answer in (send(server, b"PAR1 broken", "application/vnd.apache.parquet"),):
        assert_clean(answer)


def test_a_body_above_16_mb_gets_413_before_it_is_read(server: Server) -> None:
    """``Content-Length`` says 20 MB and no body follows: 413, without waiting for one."""
    import http.client

    connection = http.client.HTTPConnection(HOST, server.port, timeout=60)
    try:
        connection.putrequest("POST", "/invocations")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(20_000_000))
        connection.endheaders()
        response = connection.getresponse()
        body = json.loads(response.read())
    finally:
        connection.close()
    assert response.status == 413 and "at most 16,000,000" in body["message"]


def test_a_whole_body_above_the_limit_gets_413(server: Server) -> None:
    """A client that sends the whole 17 MB body first still reads the 413."""
    record = b'{"age": 40, "sex": "male", "back_pain": true},'
    body = b'{"dataframe_records": [' + record * (17_000_000 // len(record)) + b'{"age": 40}]}'
    assert send(server, body, "application/json").status == 413


def test_the_csv_door_refuses_strings_as_booleans(server: Server) -> None:
    for cell in ("True", "TRUE", "yes", "1"):
        answer = send(server, f"age,fever\n50,{cell}\n".encode(), "text/csv")
        assert answer.status == 400 and answer.body["field"] == "fever", (cell, answer.body)
    rows = send(server, b"age,fever,sides\n50,true,left\n60,,\n", "text/csv")
    assert rows.status == 200, rows.body
    first, second = rows.body["predictions"]
    assert_same_answer(first, {"age": 50, "fever": True, "sides": "left"})
    assert_same_answer(second, {"age": 60})


def test_no_http_answer_to_a_contradicting_duplicate_is_below_the_patients_yes(
    server: Server,
) -> None:
    """The property of ``tests/test_input_doors.py`` over HTTP: refusal counts as "not lower"."""
    import random

    tiers = ["routine", "review", "urgent", "emergency"]
    from vignettes.schema import FIELDS

    booleans = [f.name for f in FIELDS if f.kind == "bool"]
    rng = random.Random(17)
    for _ in range(25):
        case = {"age": rng.randint(18, 100)}
        case |= {name: rng.random() < 0.5 for name in rng.sample(booleans, 6)}
        twice = rng.choice(booleans)
        case.pop(twice, None)
        yes = predictions(server, {"inputs": [{**case, twice: True}]})[0]["urgency"]
        order = (True, False) if rng.random() < 0.5 else (False, True)
        pairs = [*case.items(), (twice, order[0]), (twice, order[1])]
        text = "{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in pairs) + "}"
        answer = send(server, f'{{"inputs": [{text}]}}'.encode(), "application/json")
        if answer.status == 200:
            got = answer.body["predictions"][0]["urgency"]
            assert tiers.index(got) >= tiers.index(yes), (text, got, yes)
        else:
            assert answer.status == 400 and answer.body["field"] == twice


@pytest.mark.parametrize("n", [3, 40])  # the one-case path and the vectorised path
def test_the_cli_json_is_the_http_answer(
    server: Server,
    n: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """One schema: ``sciatica-triage predict --json`` prints the body ``make serve`` answers."""
    from serve.cli import main

    monkeypatch.setenv("SCIATICA_TRIAGE_CACHE", str(tmp_path / "cache"))
    records = without_nulls(generated_records(n, seed=50 + n))
    records[0] |= {"progressive_weakness": True, "weakness": False}  # a warning too
    path = tmp_path / "cases.json"
    path.write_text(json.dumps(records))
    assert main(["predict", "--json", str(path)]) == 0
    printed = json.loads(capsys.readouterr().out)
    answered = post(server, {"inputs": records})
    assert answered.status == 200
    assert printed.keys() == answered.body.keys() == {"predictions"}
    assert len(printed["predictions"]) == n
    for mine, theirs in zip(printed["predictions"], answered.body["predictions"], strict=True):
        assert list(mine) == list(theirs) == list(OUTPUT_COLUMNS)
        for name, value in mine.items():
            if isinstance(value, float):
                assert math.isclose(value, theirs[name], rel_tol=1e-9, abs_tol=1e-12), name
            else:
                assert value == theirs[name], name
    assert printed["predictions"][0]["warnings"][0].startswith("progressive_weakness, weakness:")
