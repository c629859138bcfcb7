"""``python -m training`` stopped by SIGINT or SIGTERM: one line, no run left RUNNING, and the
champion alias never moved by the interrupted run. Slow: they train (on tiny data)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import mlflow
import pytest

import vignettes
from model.mlflow_names import CHAMPION_ALIAS, MODEL_NAME
from tests.stores import make_empty_store
from tests.test_integrity import tiny_triage
from training.candidates import Split
from training.interrupt import stopped_cleanly
from training.registry import log_triage_model, register_champion

pytestmark = pytest.mark.slow

TINY = [
    "--n-train", "2000", "--n-val", "2000", "--n-test", "1000", "--n-cal", "1000",
    "--candidates", "lightgbm", "--no-learning-curve", "--no-robustness",
]  # fmt: skip


def _statuses(uri: str) -> list[str]:
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiments = client.search_experiments()
    runs = client.search_runs([e.experiment_id for e in experiments])
    return [run.info.status for run in runs]


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_training_in_one_line_with_no_run_left_running(
    tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    uri = make_empty_store(tmp_path / "mlflow.db", cwd=tmp_path)  # the command's cwd
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env |= {"MLFLOW_TRACKING_URI": uri, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "training", *TINY],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    fitting = threading.Event()

    def watch() -> None:
        assert process.stdout is not None
        while line := process.stdout.readline():
            if "fitting lightgbm" in line:
                fitting.set()

    threading.Thread(target=watch, daemon=True).start()
    try:
        assert fitting.wait(600), "training never reached the fit"
        process.send_signal(sig)
        _, err = process.communicate(timeout=300)
    finally:
        process.kill()
    assert process.returncode == code, err
    lines = [line for line in err.strip().splitlines() if "INFO mlflow" not in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"python -m training: interrupted ({sig.name})")
    assert "marked KILLED" in lines[0]
    statuses = _statuses(uri)
    assert statuses and "RUNNING" not in statuses and "KILLED" in statuses
    client = mlflow.MlflowClient(tracking_uri=uri)
    assert (
        client.search_registered_models() == []
        or not client.get_registered_model(MODEL_NAME).aliases
    )


def test_an_interrupt_after_the_alias_moved_puts_it_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = make_empty_store(tmp_path / "mlflow.db", cwd=tmp_path)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        experiment = mlflow.create_experiment("interrupt", artifact_location=str(tmp_path / "a"))
        split = Split(vignettes.generate(2_000, seed=5))
        triage = tiny_triage(split)
        with stopped_cleanly("training") as stop, mlflow.start_run(experiment_id=experiment):
            model_uri = log_triage_model(triage, "tiny", split.frame.head(2))
            registration = register_champion(MODEL_NAME, model_uri, triage, split, print)
            assert registration.moved  # the first champion
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)  # the signal arrives here
            pytest.fail("the signal did not stop the block")
        client = mlflow.MlflowClient()
        aliases = client.get_registered_model(MODEL_NAME).aliases
        statuses = _statuses(uri)
    finally:
        mlflow.set_tracking_uri(previous)
    assert stop.interrupted and stop.exit_code == 143
    assert CHAMPION_ALIAS not in aliases
    assert statuses == ["KILLED"]
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("training: interrupted (SIGTERM)")
    assert "@champion removed" in err[-1]
