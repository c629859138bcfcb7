"""Speed of ``make serve`` (``mlflow models serve`` on the champion) over loopback HTTP.

A LightGBM champion is trained with the training code on 50,000 generated cases (10,000 with
``--quick``) into a temporary SQLite tracking store, registered, and served with
``make serve PORT=<free port>`` exactly as a user starts it (127.0.0.1 only). Every loop is
bounded, every request has a timeout, and the server's process group is stopped at the end.

Figures
-------
one-case request p50 (``inputs``, the README's form; and ``dataframe_records``)
    Median round trip of a request holding one case, over 300 distinct generated cases (60 with
    ``--quick``) on one kept-alive connection. Reference: the median ``/ping`` round trip on the
    same server and connection, interleaved request by request (three rounds) so that both see
    the same machine load. ``ratio`` = request p50 / ping p50; the aim is <= 4.
requests/s, 1 and 4 concurrent clients
    One-case ``inputs`` requests per second with 1 and 4 client threads, each on its own connection,
    sending a fixed number of requests. Reference: ``/ping`` requests per second with the same
    clients; ``ratio`` = ping rate / request rate.
10,000 cases in one request (both forms)
    Wall-clock time of one request with 10,000 generated cases (gaps as ``null``), best of three
    (one with ``--quick``). Reference: ``serve.predict_batch`` on the same cases in this process
    (the vectorised Python API); ``ratio`` = HTTP time / reference.
MLflow JSON writer
    MLflow's ``predictions_to_json`` on the same 10,000 answers, in this process, as a share of
    the request: the part of the request that the model cannot change.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

import vignettes
from tests.bench import result
from vignettes.schema import FIELD_NAMES

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parents[2]
SEED = 7
FULL = {"n_train": 50_000, "n_latency": 300, "n_requests": 600, "n_big": 10_000, "big_runs": 3}
QUICK = {"n_train": 10_000, "n_latency": 60, "n_requests": 100, "n_big": 10_000, "big_runs": 1}
ROUNDS = 3
WARM_UP_CALLS = 30
STARTUP_SECONDS = 300
REQUEST_TIMEOUT = 300

TRAIN_SCRIPT = """
import sys
from training import TrainConfig, train
n = int(sys.argv[1])
train(TrainConfig(n_train=n, n_val=20_000, n_test=5_000, n_cal=5_000, seed=7,
                  candidates=("lightgbm",), learning_curve=False, robustness=False))
"""


def _load() -> str:
    return f"load avg {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _train(store: Path, n_train: int, env: dict[str, str]) -> None:
    """Train and register a champion into ``store`` (a subprocess, so no MLflow state leaks)."""
    subprocess.run(
        [sys.executable, "-c", TRAIN_SCRIPT, str(n_train)],
        cwd=store,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=3600,
    )


@contextmanager
def _served(store: Path, env: dict[str, str]) -> Iterator[int]:
    """``make serve`` on a free port; yields the port once ``/ping`` answers."""
    port = _free_port()
    command = ["make", "--no-print-directory", "-C", str(REPO), "-o", ".venv/.installed-stamp"]
    command += ["serve", f"PORT={port}", f"BIN={Path(sys.executable).parent}"]
    log = store / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not _pings(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"make serve did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield port
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def _pings(port: int) -> bool:
    try:
        connection = http.client.HTTPConnection(HOST, port, timeout=2)
        connection.request("GET", "/ping")
        return connection.getresponse().status == 200
    except OSError:
        return False


class Client:
    """One kept-alive connection to the server."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT)

    def ping(self) -> None:
        self.connection.request("GET", "/ping")
        response = self.connection.getresponse()
        response.read()
        assert response.status == 200

    def invoke(self, body: bytes) -> bytes:
        headers = {"Content-Type": "application/json"}
        self.connection.request("POST", "/invocations", body=body, headers=headers)
        response = self.connection.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {data[:500]!r}")
        return data


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Generated cases as JSON records (unknown answers as ``null``)."""
    records: list[dict[str, Any]] = json.loads(frame[list(FIELD_NAMES)].to_json(orient="records"))
    return records


def _seconds(call: Any, items: list[Any]) -> list[float]:
    times = []
    for item in items:
        start = time.perf_counter()
        call(item)
        times.append(time.perf_counter() - start)
    return times


def bench_one_case(client: Client, cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Median one-case round trip in both JSON forms against ``/ping``, taking turns."""
    bodies = {
        form: [json.dumps({form: [case]}).encode() for case in cases]
        for form in ("inputs", "dataframe_records")
    }
    for body in bodies["inputs"][:WARM_UP_CALLS]:
        client.invoke(body)
        client.ping()
    pings: list[float] = []
    requests: dict[str, list[float]] = {form: [] for form in bodies}
    for _ in range(ROUNDS):
        for i in range(len(cases)):  # interleaved, so that all see the same machine load
            pings += _seconds(lambda _: client.ping(), [None])
            for form, items in bodies.items():
                requests[form] += _seconds(client.invoke, [items[i]])
    ping = statistics.median(pings)
    rows = []
    for form, times in requests.items():
        p50 = statistics.median(times)
        rows.append(
            result(
                f"HTTP one case p50 ({form})",
                p50 * 1e3,
                "ms",
                ping * 1e3,
                p50 / ping,
                f"{len(cases)} distinct cases x {ROUNDS} rounds, interleaved with /ping, "
                "one kept-alive connection; "
                f"reference: /ping p50 on the same server; ratio = request / ping (aim <= 4); "
                f"{_load()}",
            )
        )
    return rows


def _rate(port: int, clients: int, per_client: int, body: bytes | None) -> float:
    """Requests per second of ``clients`` threads sending ``per_client`` requests each."""
    errors: list[BaseException] = []

    def work() -> None:
        client = Client(port)
        try:
            for _ in range(per_client):
                if body is None:
                    client.ping()
                else:
                    client.invoke(body)
        except BaseException as exc:  # reported after the join
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=REQUEST_TIMEOUT)
    elapsed = time.perf_counter() - start
    if errors or any(t.is_alive() for t in threads):
        raise RuntimeError(f"throughput clients failed: {errors[:1]}")
    return clients * per_client / elapsed


def bench_throughput(port: int, case: dict[str, Any], n_requests: int) -> list[dict[str, Any]]:
    body = json.dumps({"inputs": [case]}).encode()  # the README's form
    rows = []
    for clients in (1, 4):
        per_client = max(1, n_requests // clients)
        ping_rate = _rate(port, clients, per_client, None)
        rate = _rate(port, clients, per_client, body)
        rows.append(
            result(
                f"HTTP one-case requests/s, {clients} client{'s' if clients > 1 else ''}",
                rate,
                "req/s",
                ping_rate,
                ping_rate / rate,
                f"{clients * per_client} requests (inputs); reference: /ping requests/s with "
                f"the same clients; ratio = ping rate / request rate; {_load()}",
            )
        )
    return rows


def bench_big_request(
    port: int, frame: pd.DataFrame, runs: int, store: Path
) -> list[dict[str, Any]]:
    """One request with every case of ``frame``, against ``serve.predict_batch`` in-process.

    Also times MLflow's own JSON writer (``predictions_to_json``) on the same answers in this
    process: the scoring server writes every response with it.
    """
    import io

    import mlflow
    from mlflow.pyfunc.scoring_server import predictions_to_json

    import serve

    records = _records(frame)
    mlflow.set_tracking_uri(f"sqlite:///{store / 'mlflow.db'}")
    predictor = serve.load(reload=True)
    reference = min(_seconds(predictor.predict_batch, [frame] * runs))
    client = Client(port)  # a new connection: the server closes idle ones after 5 s
    rows = []
    for form in ("inputs", "dataframe_records"):
        body = json.dumps({form: records}).encode()
        seconds = min(_seconds(client.invoke, [body] * runs))
        rows.append(
            result(
                f"HTTP {len(frame):,} cases in one request ({form})",
                seconds,
                "s",
                reference,
                seconds / reference,
                f"gaps as null, best of {runs}; reference: serve.predict_batch on the same "
                f"cases in-process; ratio = HTTP / in-process; {_load()}",
            )
        )
    answers = json.loads(client.invoke(json.dumps({"inputs": records}).encode()))["predictions"]
    writer = min(_seconds(lambda a: predictions_to_json(a, io.StringIO()), [answers] * runs))
    rows.append(
        result(
            f"MLflow JSON writer, {len(frame):,} answers",
            writer,
            "s",
            seconds,
            writer / seconds,
            "mlflow's predictions_to_json (pure-Python json.dump) on the same answers, "
            "in-process; reference: the dataframe_records request above; ratio = its share",
        )
    )
    return rows


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Train and serve a champion, then measure one-case latency, throughput and a big batch.

    Parameters
    ----------
    quick : bool, default=False
        A smaller model and fewer requests: a smoke run rather than a measurement.

    Returns
    -------
    list of dict
        One result per figure (see :mod:`tests.bench`).
    """
    import mlflow

    sizes = QUICK if quick else FULL
    previous_uri = mlflow.get_tracking_uri()
    with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp:
        store = Path(tmp)
        env = os.environ | {"MLFLOW_TRACKING_URI": f"sqlite:///{store / 'mlflow.db'}"}
        started = time.perf_counter()
        _train(store, sizes["n_train"], env)
        print(f"   trained on {sizes['n_train']:,} cases in {time.perf_counter() - started:.0f} s")
        cases = _records(vignettes.generate(sizes["n_latency"], seed=SEED + 1))
        big = vignettes.generate(sizes["n_big"], seed=SEED + 2)[list(FIELD_NAMES)]
        rows: list[dict[str, Any]] = []
        try:
            with _served(store, env) as port:
                client = Client(port)
                rows += bench_one_case(client, cases)
                rows += bench_throughput(port, cases[0], sizes["n_requests"])
                rows += bench_big_request(port, big, sizes["big_runs"], store)
        finally:
            mlflow.set_tracking_uri(previous_uri)
            import serve

            serve.clear_cache()
    return rows
