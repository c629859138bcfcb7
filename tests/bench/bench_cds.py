"""Speed of ``make cds`` (the CDS Hooks service) over loopback HTTP.

A LightGBM champion is trained with the training code (50,000 generated cases, 10,000 with
``--quick``) into a temporary SQLite tracking store and registered, as in ``bench_http``; the
service is started with ``make cds PORT=<free port>`` exactly as a user starts it (127.0.0.1
only, feedback to a temporary file). Every loop is bounded, every request has a timeout, and the
server's process group is stopped at the end.

Figures
-------
patient-view p50 (prefetch)
    Median round trip of a ``patient-view`` call of ``sciatica-triage`` whose prefetch holds the
    intake QuestionnaireResponse, over 300 distinct generated cases with gaps (60 with
    ``--quick``) on one kept-alive connection: request validation, reading the response, the
    prediction with exact attributions, and the card. Reference: the median ``GET /ping`` on the
    same server and connection, interleaved call by call (three rounds) so that both see the
    same machine load. ``ratio`` = call p50 / ping p50; the aim is <= 4.
patient-view calls/s, 1 and 4 concurrent clients
    Calls per second with 1 and 4 client threads, each on its own connection, sending a fixed
    number of calls. Reference: ``/ping`` per second with the same clients; ``ratio`` = ping
    rate / call rate.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import vignettes
from tests.bench import result
from tests.bench.bench_http import HOST, REPO, _free_port, _load, _pings, _records, _train
from vignettes.schema import FIELD_NAMES

SEED = 11
FULL = {"n_train": 50_000, "n_latency": 300, "n_requests": 600}
QUICK = {"n_train": 10_000, "n_latency": 60, "n_requests": 100}
ROUNDS = 3
WARM_UP_CALLS = 30
STARTUP_SECONDS = 300
REQUEST_TIMEOUT = 120
SERVICE = "/cds-services/sciatica-triage"


@contextmanager
def _served(store: Path, env: dict[str, str]) -> Iterator[int]:
    """``make cds`` on a free port; yields the port once ``/ping`` answers."""
    port = _free_port()
    command = ["make", "--no-print-directory", "-C", str(REPO), "-o", ".venv/.installed-stamp"]
    command += ["cds", f"PORT={port}", f"BIN={Path(sys.executable).parent}"]
    log = store / "cds.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not _pings(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"make cds did not start:\n{log.read_text()[-3000:]}")
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


class Client:
    """One kept-alive connection to the service."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT)

    def ping(self) -> None:
        self.connection.request("GET", "/ping")
        response = self.connection.getresponse()
        response.read()
        assert response.status == 200

    def call(self, body: bytes) -> bytes:
        headers = {"Content-Type": "application/json"}
        self.connection.request("POST", SERVICE, body=body, headers=headers)
        response = self.connection.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {data[:500]!r}")
        return data


def patient_view_body(case: dict[str, Any], patient: str) -> bytes:
    """A ``patient-view`` call whose prefetch holds the case as a QuestionnaireResponse."""
    response = vignettes.to_questionnaire_response(case)
    response["subject"] = {"reference": f"Patient/{patient}"}
    body = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/bench", "patientId": patient},
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": patient},
            "intake": {
                "resourceType": "Bundle",
                "type": "searchset",
                "entry": [{"resource": response}],
            },
        },
    }
    return json.dumps(body).encode()


def _seconds(call: Any) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def bench_latency(client: Client, bodies: list[bytes]) -> dict[str, Any]:
    """Median ``patient-view`` round trip against ``/ping``, taking turns."""
    for body in bodies[:WARM_UP_CALLS]:
        client.call(body)
        client.ping()
    pings: list[float] = []
    calls: list[float] = []
    for _ in range(ROUNDS):
        for body in bodies:
            pings.append(_seconds(client.ping))
            calls.append(_seconds(lambda b=body: client.call(b)))
    ping, p50 = statistics.median(pings), statistics.median(calls)
    return result(
        "CDS patient-view p50 (prefetch)",
        p50 * 1e3,
        "ms",
        ping * 1e3,
        p50 / ping,
        f"{len(bodies)} distinct generated cases with gaps x {ROUNDS} rounds, interleaved with "
        "GET /ping, one kept-alive connection; reference: /ping p50 on the same server; "
        f"ratio = call / ping (aim <= 4); {_load()}",
    )


def _rate(port: int, clients: int, per_client: int, body: bytes | None) -> float:
    """Calls per second of ``clients`` threads sending ``per_client`` calls each."""
    errors: list[BaseException] = []

    def work() -> None:
        client = Client(port)
        try:
            for _ in range(per_client):
                client.ping() if body is None else client.call(body)
        except BaseException as exc:  # reported after the join
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=REQUEST_TIMEOUT * per_client)
    elapsed = time.perf_counter() - start
    if errors or any(t.is_alive() for t in threads):
        raise RuntimeError(f"throughput clients failed: {errors[:1]}")
    return clients * per_client / elapsed


def bench_throughput(port: int, body: bytes, n_requests: int) -> list[dict[str, Any]]:
    rows = []
    for clients in (1, 4):
        per_client = max(1, n_requests // clients)
        ping_rate = _rate(port, clients, per_client, None)
        rate = _rate(port, clients, per_client, body)
        rows.append(
            result(
                f"CDS patient-view calls/s, {clients} client{'s' if clients > 1 else ''}",
                rate,
                "req/s",
                ping_rate,
                ping_rate / rate,
                f"{clients * per_client} calls with prefetch; reference: /ping per second with "
                f"the same clients; ratio = ping rate / call rate; {_load()}",
            )
        )
    return rows


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Train and register a champion, serve it with ``make cds``, measure latency and rate.

    Parameters
    ----------
    quick : bool, default=False
        A smaller model and fewer calls: a smoke run rather than a measurement.

    Returns
    -------
    list of dict
        One result per figure (see :mod:`tests.bench`).
    """
    sizes = QUICK if quick else FULL
    with tempfile.TemporaryDirectory(prefix="bench-cds-") as tmp:
        store = Path(tmp)
        env = os.environ | {
            "MLFLOW_TRACKING_URI": f"sqlite:///{store / 'mlflow.db'}",
            "SCIATICA_CDS_FEEDBACK_DB": str(store / "feedback.sqlite3"),
        }
        env.pop("SCIATICA_CDS_ISSUERS", None)
        started = time.perf_counter()
        _train(store, sizes["n_train"], env)
        print(f"   trained on {sizes['n_train']:,} cases in {time.perf_counter() - started:.0f} s")
        frame = vignettes.generate(sizes["n_latency"], seed=SEED)[list(FIELD_NAMES)]
        bodies = [patient_view_body(c, f"p{i}") for i, c in enumerate(_records(frame))]
        with _served(store, env) as port:
            rows = [bench_latency(Client(port), bodies)]
            rows += bench_throughput(port, bodies[0], sizes["n_requests"])
    return rows
