"""The registered champion served by ``mlflow models serve`` answers as ``serve.predict`` does.

Starts the MLflow scoring server on a free loopback port against the session's temporary
tracking store, waits (bounded) for ``/ping``, posts a case to ``/invocations`` and compares the
answer with the Python API. The server's process group is always stopped.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import serve
from vignettes.schema import CAUSES, FIELD_NAMES

HOST = "127.0.0.1"
STARTUP_SECONDS = 120
CASE = {
    "age": 67,
    "sex": "female",
    "sides": "both",
    "pain_quality": "heaviness_fatigue",
    "worse_walking": True,
    "better_sitting": True,
    "saddle_numbness": False,
    "fever": True,
}


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_for_ping(url: str, process: subprocess.Popen, log: Path, timeout: float) -> None:
    """Poll ``url`` until it answers 200; fail early if the server process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"mlflow models serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    pytest.fail(f"no answer from {url} within {timeout:.0f} s:\n{log.read_text()[-4000:]}")


def post_json(url: str, payload: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def stop(process: subprocess.Popen) -> None:
    """Terminate the server's process group (uvicorn and its workers), then kill if needed."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.mark.slow
def test_mlflow_models_serve_matches_serve_predict(
    trained: Any, tracking_uri: str, tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "mlflow-serve.log"
    store_dir = Path(tracking_uri.removeprefix("sqlite:///")).parent  # holds ./mlruns
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "models",
        "serve",
        "-m",
        "models:/sciatica-triage@champion",
        "--env-manager",
        "local",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    # mlflow starts `uvicorn` by name: put this interpreter's scripts folder first on PATH.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = os.environ | {"MLFLOW_TRACKING_URI": tracking_uri, "PATH": path}
    with log.open("w") as out:
        process = subprocess.Popen(
            command,
            cwd=store_dir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, stopped as a whole below
        )
    try:
        wait_for_ping(f"http://{HOST}:{port}/ping", process, log, STARTUP_SECONDS)
        answer = post_json(f"http://{HOST}:{port}/invocations", {"dataframe_records": [CASE]})
    finally:
        stop(process)

    rows = answer["predictions"]
    assert len(rows) == 1
    row = rows[0]
    probabilities = [row[f"prob_{c}"] for c in CAUSES]
    assert math.isclose(sum(probabilities), 1.0, abs_tol=1e-9)
    assert isinstance(row["red_flag"], bool)
    assert all(f"attr_{f}" in row and f"red_flag_attr_{f}" in row for f in FIELD_NAMES)

    expected = serve.load().predict(CASE)
    assert row["cause"] == expected.cause
    np.testing.assert_allclose(probabilities, list(expected.probabilities.values()), rtol=1e-9)
    assert row["red_flag"] is expected.red_flag is True  # fever is a red flag
    assert json.loads(row["red_flags_fired"]) == expected.red_flags_fired == ["fever"]
    assert row["next_step"] == expected.next_step
    assert json.loads(row["differential"]) == expected.differential
    np.testing.assert_allclose(
        [row[f"attr_{f}"] for f in FIELD_NAMES], list(expected.attributions.values()), atol=1e-9
    )
    np.testing.assert_allclose(
        [row[f"red_flag_attr_{f}"] for f in FIELD_NAMES],
        list(expected.red_flag_attributions.values()),
        atol=1e-9,
    )
    np.testing.assert_allclose(row["red_flag_probability"], expected.red_flag_probability)
