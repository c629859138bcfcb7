"""The ``sciatica-triage`` command: output, errors as one line, the store, the cache, streaming.

Tests that need a model use the small champion ``tests/conftest.py`` trains once per worker; the
others stop before any model is loaded. Subprocess tests run the installed command as a user
would, from an empty working directory.
"""

from __future__ import annotations

import io
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import serve
import vignettes
from model.intake import validate_case
from model.triage import DISCLAIMER, OUTPUT_COLUMNS
from serve import loading
from serve.cli import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_NO_MODEL, main
from serve.terminal import MLFLOW_CLIENT_SETTINGS, Progress
from vignettes.schema import CAUSES, FIELD_NAMES, FIELDS, RED_FLAG_FIELDS

COMMAND = str(Path(sys.executable).with_name("sciatica-triage"))
DISC = {
    "age": 38,
    "leg_pain_worse_than_back": True,
    "sides": "left",
    "pain_region": "outer_leg_big_toe",
    "pain_quality": "sharp_electric",
    "worse_sitting": True,
    "worse_cough_sneeze": True,
}
CAUDA = {"age": 45, "bladder_bowel_dysfunction": True, "saddle_numbness": True}
MECHANICAL = {
    "age": 30,
    "back_pain": True,
    "pain_region": "back_only",
    "better_rest_movement": True,
}


@pytest.fixture(autouse=True)
def model_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's own model cache: the command never writes to the real home here."""
    folder = tmp_path / "model-cache"
    monkeypatch.setenv("SCIATICA_TRIAGE_CACHE", str(folder))
    return folder


@pytest.fixture(scope="module")
def predictor(trained: Any) -> serve.Predictor:
    return serve.load()


def write(tmp_path: Path, value: Any, name: str = "case.json") -> Path:
    path = tmp_path / name
    path.write_text(value if isinstance(value, str) else json.dumps(value))
    return path


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def run(
    args: list[str], cwd: Path, env: dict[str, str], **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """The installed command in a fresh process (stopped after a minute if it hangs)."""
    return subprocess.run(
        [COMMAND, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, **kwargs
    )


def clean_env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "SCIATICA_"))}
    return env | {"SCIATICA_TRIAGE_CACHE": "off"} | settings


# --------------------------------------------------------------------------------------------
# predict: output
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_json_output_parses(predictor: serve.Predictor, tmp_path: Path, capsys: Any) -> None:
    assert main(["predict", "--json", str(write(tmp_path, DISC))]) == 0
    (row,) = json.loads(capsys.readouterr().out)["predictions"]  # the schema of HTTP
    assert row == json.loads(json.dumps(predictor.model.predict_records([validate_case(DISC)])[0]))
    assert list(row) == list(OUTPUT_COLUMNS)
    assert math.isclose(sum(row[f"prob_{c}"] for c in CAUSES), 1.0)
    assert row["cause"] == predictor.predict(DISC).cause


@pytest.mark.slow
def test_reads_a_list_from_stdin(
    predictor: serve.Predictor, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps([{"age": 40}, CAUDA])))
    assert main(["predict", "--json", "-"]) == 0
    data = json.loads(capsys.readouterr().out)["predictions"]
    assert len(data) == 2 and data[1]["red_flag"] is True


@pytest.mark.slow
def test_text_output(predictor: serve.Predictor, tmp_path: Path, capsys: Any) -> None:
    path = write(tmp_path, MECHANICAL)
    assert main(["predict", str(path), "--model", "models:/sciatica-triage@champion"]) == 0
    out = capsys.readouterr().out
    assert DISCLAIMER in out and "Next step:" in out


@pytest.mark.slow
def test_a_large_list_streams_in_chunks_with_the_same_answers(
    predictor: serve.Predictor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    frame = vignettes.generate(45, seed=11)[list(FIELD_NAMES)]
    cases = json.loads(frame.to_json(orient="records"))
    path = write(tmp_path, cases, "cases.json")
    monkeypatch.setattr("serve.cli.CHUNK", 7)  # 7 chunks, the last one short
    assert main(["predict", "--json", str(path)]) == 0
    captured = capsys.readouterr()
    answers = [validate_case(c) for c in cases]
    expected = [
        r for s in range(0, 45, 7) for r in predictor.model.predict_records(answers[s : s + 7])
    ]
    assert json.loads(captured.out)["predictions"] == json.loads(json.dumps(expected))
    assert captured.err == ""  # no progress when stderr is not a terminal
    assert main(["predict", str(path)]) == 0
    text = capsys.readouterr().out
    headings = [f"record {i - 1} ({i} of 45)" in text for i in (1, 7, 8, 45)]
    assert headings == [True] * 4


def test_progress_shows_on_a_terminal_only() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    shown, hidden = Terminal(), io.StringIO()
    for stream in (shown, hidden):
        progress = Progress(4_000, stream=stream)
        progress.update(2_000)
        progress.close()
    assert "2,000 of 4,000 cases (50%)" in shown.getvalue()
    assert shown.getvalue().endswith("\r\033[K")  # the line is cleared again
    assert hidden.getvalue() == ""


# --------------------------------------------------------------------------------------------
# Bad input: one line on stderr, a non-zero exit, never a traceback
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "field"),
    [
        ({"age": 40, "fevr": True}, "fevr"),
        ({"age": 40, "pain_region": "calf"}, "pain_region"),
        ({"age": 40, "numbness": "yes"}, "numbness"),
        ({"age": 300}, "age"),
        ({"sex": "male"}, "age"),
    ],
)
@pytest.mark.parametrize("command", ["predict", "interview"])
def test_a_bad_field_exits_2_naming_it(
    tmp_path: Path, capsys: Any, case: dict, field: str, command: str
) -> None:
    if command == "interview" and field == "age" and "age" not in case:
        case = {**case, "age": 300}  # an interview asks for a missing age; 300 is refused
    assert main([command, str(write(tmp_path, case))]) == EXIT_BAD_INPUT
    assert field in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("command", ["predict", "interview"])
@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"age": 40,', "not valid JSON"),
        ("42", "JSON object"),
        (None, "no such file"),
        (b"\xff\xfe\x00", "not a text file"),
    ],
)
def test_a_bad_file_exits_2_in_one_line(
    tmp_path: Path, capsys: Any, command: str, content: str | bytes | None, message: str
) -> None:
    path = tmp_path / "case.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    assert main([command, str(path)]) == EXIT_BAD_INPUT
    line = one_error_line(capsys.readouterr().err)
    assert message in line and str(path) in line


def test_interview_refuses_a_list_in_one_line(tmp_path: Path, capsys: Any) -> None:
    assert main(["interview", str(write(tmp_path, [{"age": 40}]))]) == EXIT_BAD_INPUT
    assert "one case (a JSON object), got a list" in one_error_line(capsys.readouterr().err)


def test_predict_names_the_case_in_a_list(tmp_path: Path, capsys: Any) -> None:
    path = write(tmp_path, [{"age": 40}, {"age": 40, "sides": "up"}])
    assert main(["predict", str(path)]) == EXIT_BAD_INPUT
    assert "record 1 (counting from 0): sides:" in one_error_line(capsys.readouterr().err)


@pytest.mark.slow
def test_a_missing_model_exits_1_saying_make_train(
    trained: Any, tmp_path: Path, capsys: Any
) -> None:
    path = write(tmp_path, {"age": 40})
    assert main(["predict", str(path), "--model", "models:/sciatica-triage@nope"]) == EXIT_NO_MODEL
    assert "make train" in one_error_line(capsys.readouterr().err)


def test_an_unexpected_error_is_one_line(
    tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(model_uri: str | None) -> Any:
        raise RuntimeError("something\nbroke")

    monkeypatch.setattr("serve.cli.load_predictor", broken)
    assert main(["predict", str(write(tmp_path, {"age": 40}))]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "RuntimeError: something broke" in line and "SCIATICA_TRIAGE_DEBUG" in line


# --------------------------------------------------------------------------------------------
# --help, --version, settings
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["--help"], ["predict", "--help"]])
def test_help_lists_every_field_with_its_values(argv: list[str], capsys: Any) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    for field in FIELDS:
        assert field.name in out
        assert " ".join(field.allowed().split()) in out


def test_version(capsys: Any) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"sciatica-triage {version('sciatica-triage')}"


def test_json_and_fhir_together_are_refused_naming_both(tmp_path: Path, capsys: Any) -> None:
    case = write(tmp_path, {"age": 40})
    with pytest.raises(SystemExit) as info:  # before any model is looked for
        main(["predict", "--fhir", "--json", str(case)])
    assert info.value.code == EXIT_BAD_INPUT
    assert "argument --json: not allowed with argument --fhir" in capsys.readouterr().err


def test_mlflow_client_settings_hold_only_while_the_command_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, str | None] = {}

    def spy(model_uri: str | None) -> Any:
        seen.update({k: os.environ.get(k) for k in MLFLOW_CLIENT_SETTINGS})
        raise KeyboardInterrupt

    for name in MLFLOW_CLIENT_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")  # the user's own setting wins
    monkeypatch.setattr("serve.cli.load_predictor", spy)
    assert main(["predict", str(write(tmp_path, {"age": 40}))]) == EXIT_INTERRUPTED
    assert seen == MLFLOW_CLIENT_SETTINGS | {"MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "30"
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ


def test_mlflow_telemetry_is_off_under_make_unless_the_user_turns_it_on() -> None:
    """MLflow 3 sends usage telemetry unless told not to; every make target runs with it off
    (the command's own process too: MLFLOW_CLIENT_SETTINGS), and the user's setting wins."""

    def under_make(**settings: str) -> str:
        env = {k: v for k, v in os.environ.items() if k != "MLFLOW_DISABLE_TELEMETRY"}
        command = ["make", "-pn", "-o", ".venv/.installed-stamp", "help"]
        root = Path(__file__).resolve().parents[1]
        out = subprocess.run(
            command, cwd=root, env=env | settings, capture_output=True, text=True, check=True
        ).stdout
        (line,) = [x for x in out.splitlines() if x.startswith("MLFLOW_DISABLE_TELEMETRY ")]
        return line.split("=", 1)[1].strip()

    assert under_make() == "true"
    assert under_make(MLFLOW_DISABLE_TELEMETRY="false") == "false"
    assert MLFLOW_CLIENT_SETTINGS["MLFLOW_DISABLE_TELEMETRY"] == "true"


# --------------------------------------------------------------------------------------------
# The tracking store: found, never created; a server that does not answer
# --------------------------------------------------------------------------------------------


def test_locate_store_prefers_the_variable_then_here_then_the_checkout(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout" / "mlflow.db"
    here = tmp_path / "here"
    here.mkdir()
    with pytest.raises(loading.StoreUnavailableError, match="MLFLOW_TRACKING_URI"):
        loading.locate_store({}, here, checkout)
    checkout.parent.mkdir()
    checkout.write_bytes(b"")
    assert loading.locate_store({}, here, checkout) == f"sqlite:///{checkout.resolve()}"
    (here / "mlflow.db").write_bytes(b"")
    assert loading.locate_store({}, here, checkout) == f"sqlite:///{(here / 'mlflow.db').resolve()}"
    uri = "http://127.0.0.1:1"
    assert loading.locate_store({"MLFLOW_TRACKING_URI": uri}, here, checkout) == uri
    made = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()}
    assert made == {"checkout/mlflow.db", "here/mlflow.db"}  # only what the test wrote


@pytest.mark.parametrize(
    "store", ["sqlite:///{tmp}/typo/mlflow.db", "file://{tmp}/typo/mlruns", "{tmp}/typo/mlruns"]
)
def test_a_mistyped_store_is_reported_and_never_created(tmp_path: Path, store: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    case = write(tmp_path, {"age": 40})
    uri = store.format(tmp=tmp_path).replace("sqlite:///", "sqlite:////")
    result = run(["predict", str(case)], work, clean_env(MLFLOW_TRACKING_URI=uri))
    assert result.returncode == EXIT_NO_MODEL
    line = one_error_line(result.stderr)
    assert "no MLflow tracking store at" in line and "typo" in line
    assert not (tmp_path / "typo").exists() and list(work.iterdir()) == []


def _black_hole() -> tuple[socket.socket, int]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    return server, server.getsockname()[1]


def test_a_tracking_server_that_does_not_answer_is_reported(tmp_path: Path) -> None:
    server, port = _black_hole()
    case = write(tmp_path, {"age": 40})
    # a 1 s limit and no retry instead of the CLI's 4 s and one retry after 1 s (the user's
    # settings win): the same path, in 1 s instead of 3 s
    env = clean_env(
        MLFLOW_TRACKING_URI=f"http://127.0.0.1:{port}",
        MLFLOW_HTTP_REQUEST_TIMEOUT="1",
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
    )
    try:
        result = run(["predict", str(case)], tmp_path, env)
    finally:
        server.close()
    assert result.returncode == EXIT_NO_MODEL
    line = one_error_line(result.stderr)
    assert f"http://127.0.0.1:{port} does not answer" in line and "MLFLOW_TRACKING_URI" in line


def test_a_tracking_server_that_is_not_running_is_reported(tmp_path: Path) -> None:
    server, port = _black_hole()
    server.close()  # nothing listens there now
    case = write(tmp_path, {"age": 40})
    env = clean_env(MLFLOW_TRACKING_URI=f"http://127.0.0.1:{port}")
    result = run(["predict", str(case)], tmp_path, env)
    assert result.returncode == EXIT_NO_MODEL
    assert "does not answer (connection refused)" in one_error_line(result.stderr)


@pytest.mark.slow
def test_run_elsewhere_it_creates_no_file(trained: Any, tracking_uri: str, tmp_path: Path) -> None:
    work = tmp_path / "elsewhere"
    work.mkdir()
    case = write(tmp_path, DISC)
    result = run(
        ["predict", "--json", str(case)], work, clean_env(MLFLOW_TRACKING_URI=tracking_uri)
    )
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)["predictions"]
    assert row["model_version"] == str(trained.model_version)
    assert list(work.iterdir()) == []


# --------------------------------------------------------------------------------------------
# The local copy of a registry version
# --------------------------------------------------------------------------------------------

_LOAD_AND_REPORT = """
import json, sys
import model.scorers
built = []
compile_tables = model.scorers.compile_tables
model.scorers.compile_tables = lambda *args: built.append(1) or compile_tables(*args)
from serve.terminal import load_predictor
p = load_predictor(None)
case = json.loads(sys.argv[1])
out = {"mlflow": "mlflow" in sys.modules, "built": len(built)}
print(json.dumps(out | {"prediction": p.predict(case).to_dict()}))
"""


@pytest.mark.slow
def test_a_second_start_uses_the_local_copy_without_mlflow(
    trained: Any, tracking_uri: str, tmp_path: Path, predictor: serve.Predictor
) -> None:
    env = clean_env(MLFLOW_TRACKING_URI=tracking_uri, SCIATICA_TRIAGE_CACHE=str(tmp_path / "c"))
    outputs = []
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "-c", _LOAD_AND_REPORT, json.dumps(DISC)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        outputs.append(json.loads(result.stdout))
    assert [o["mlflow"] for o in outputs] == [True, False]
    assert outputs[0]["built"] > 0 and outputs[1]["built"] == 0  # TreeSHAP tables kept too
    expected = json.loads(json.dumps(predictor.predict(DISC).to_dict()))
    assert outputs[0]["prediction"] == outputs[1]["prediction"] == expected
    assert len(list((tmp_path / "c").iterdir())) == 1


def test_the_cache_key_changes_with_the_registry_entry() -> None:
    base = loading._Version("1", "run-a", "models:/m-1", "1000")
    folder = loading._cache_folder(Path("/c"), "sqlite:///x.db", "sciatica-triage", base)
    for changed in (
        loading._Version("1", "run-b", "models:/m-1", "1000"),  # the store was made anew
        loading._Version("1", "run-a", "models:/m-1", "2000"),
        loading._Version("2", "run-a", "models:/m-1", "1000"),
    ):
        assert loading._cache_folder(Path("/c"), "sqlite:///x.db", "sciatica-triage", changed) != (
            folder
        )
    assert loading._cache_folder(Path("/c"), "sqlite:///y.db", "sciatica-triage", base) != folder


# --------------------------------------------------------------------------------------------
# interview at a terminal
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_interview_prompts_go_to_stdout(
    trained: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n\nq\n"))
    save = tmp_path / "answers.json"
    assert main(["interview", str(write(tmp_path, {"age": 61})), "--save", str(save)]) == 0
    captured = capsys.readouterr()
    assert "Enter = don't know, q = quit" in captured.out and "Most likely" in captured.out
    assert "Urgency: " in captured.out
    assert captured.err == ""
    # the first question is a red flag ("n"), the second one "don't know" (Enter): it is saved
    # as null, and the command to predict from the file with the same urgency is printed
    saved = json.loads(save.read_text())
    unknown = [name for name, value in saved.items() if value is None]
    assert len(unknown) == 1 and unknown[0] in RED_FLAG_FIELDS
    assert f"predict {save} --asked {unknown[0]}" in captured.out
    assert main(["predict", str(save), "--json", "--asked", unknown[0]]) == 0
    kept = json.loads(capsys.readouterr().out)["predictions"][0]
    assert kept["urgency"] != "routine" and "red_flag_dont_know" in kept["urgency_triggers"]
    assert main(["predict", str(save), "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)["predictions"][0]
    assert "red_flag_dont_know" not in plain["urgency_triggers"]


@pytest.mark.slow
def test_a_response_item_without_an_answer_is_a_dont_know(
    trained: Any, tmp_path: Path, capsys: Any
) -> None:
    """A QuestionnaireResponse says what was asked: an item it holds without an answer is a
    "don't know" at the command line too, in the text and the JSON output alike."""
    calm = {"age": 35, "pain_region": "back_only"} | {
        f: False for f in RED_FLAG_FIELDS if f != "fever"
    }
    response = vignettes.to_questionnaire_response(calm)
    response["item"].append({"linkId": "fever"})
    path = write(tmp_path, response)
    assert main(["predict", str(path), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)["predictions"][0]
    assert "red_flag_dont_know" in record["urgency_triggers"] and record["urgency"] != "routine"
    assert main(["predict", str(path)]) == 0
    assert "REVIEW" in capsys.readouterr().out.upper()


def test_predict_refuses_an_unknown_asked_field_by_name(tmp_path: Path, capsys: Any) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["predict", str(write(tmp_path, {"age": 40})), "--asked", "fever,sadle_numbness"])
    assert stop.value.code == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "--asked" in err and "'sadle_numbness' is not an intake field" in err
    assert "(did you mean 'saddle_numbness'?)" in err


def _sigint_as_in_a_terminal() -> None:
    """Give the child the default SIGINT disposition a terminal's foreground command has.

    Under a non-interactive shell's ``&`` (``nohup make test &``, a CI runner's background
    job) SIGINT is ignored, and an ignored signal stays ignored across ``exec``: Python then
    installs no handler, and the interview rightly does not stop. This test stood 60 s at the
    prompt whenever its worker had not run the Spark tests first (PySpark installs a handler,
    which ``exec`` resets to the default).
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_ctrl_c_in_an_interview_is_one_line(
    trained: Any, tracking_uri: str, tmp_path: Path
) -> None:
    # faulthandler: a process that does not stop is made to say where it is (SIGABRT below)
    env = clean_env(MLFLOW_TRACKING_URI=tracking_uri, PYTHONFAULTHANDLER="1")
    process = subprocess.Popen(
        [COMMAND, "interview", str(write(tmp_path, {"age": 50}))],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_sigint_as_in_a_terminal,
    )
    asked = threading.Event()

    def watch() -> None:
        assert process.stdout is not None
        while line := process.stdout.readline():
            if "q = quit" in line:
                asked.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        assert asked.wait(120), "no question was asked"
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack
            process.wait(timeout=30)
            assert process.stderr is not None
            pytest.fail(f"still running 60 s after Ctrl-C:\n{process.stderr.read()[-6000:]}")
        watcher.join(timeout=60)  # it reads stdout to its end: nothing else touches that pipe
        assert process.stderr is not None
        err = process.stderr.read()
    finally:
        process.kill()
    assert process.returncode == EXIT_INTERRUPTED
    assert one_error_line(err) == "sciatica-triage interview: interrupted"


def test_interview_save_to_a_missing_folder_is_refused_first(tmp_path: Path, capsys: Any) -> None:
    case = write(tmp_path, {"age": 40})
    argv = ["interview", str(case), "--save", str(tmp_path / "nope" / "a.json")]
    assert main(argv) == EXIT_BAD_INPUT
    assert "no such folder" in one_error_line(capsys.readouterr().err)


def test_only_the_command_itself_skips_the_last_collection_at_exit(tmp_path: Path) -> None:
    """Run as the command, ``main`` freezes the heap at exit (the interpreter's last collection
    took 1.2-1.4 s); a caller's ``main(argv)`` leaves its own process's exit alone."""
    case = str(write(tmp_path, {"age": 40}))
    report = "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0, file=sys.stderr))"
    code = f"import atexit, gc, sys; from serve.cli import main; {report}; sys.exit(main(ARGV))"
    no_store = f"sqlite:///{tmp_path / 'none' / 'mlflow.db'}"
    for argv, frozen in (("None", True), (repr(["predict", "--json", case]), False)):
        result = subprocess.run(
            [sys.executable, "-c", code.replace("ARGV", argv), "predict", "--json", case],
            env=clean_env(MLFLOW_TRACKING_URI=no_store),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == EXIT_NO_MODEL, result.stderr
        assert result.stderr.strip().splitlines()[-1] == f"frozen {frozen}"


def test_the_command_module_starts_without_heavy_imports() -> None:
    """NumPy, pandas, the models and MLflow load inside ``main``, where Ctrl-C is handled."""
    code = "import sys, serve.cli; print(sorted(set(sys.modules) & {'numpy', 'pandas', 'mlflow'}))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
