"""The command line as a user runs it: start-up for one case, and a large file's time and memory.

The model is the champion ``make train`` registered in the checkout (``mlflow.db``) when there
is one, else a small LightGBM champion trained here into a temporary store (the notes say which).
Every run is a fresh ``sciatica-triage`` process from an empty working directory.

Figures
-------
predict 1 case, cold
    Wall-clock time of ``sciatica-triage predict case.json`` with an empty model cache: imports,
    the registry lookup through MLflow, loading the pyfunc, the local copy, the prediction.
predict 1 case, warm
    The same with the local copy of the registry version in place (the usual case): no MLflow.
    Reference for both: ``python -c pass`` with the same interpreter, measured in the same
    rounds (they take turns, so machine drift does not enter the ratio); ``ratio`` = median
    time / median reference time.
predict N cases: time and peak memory
    ``sciatica-triage predict --json cases.json`` on 50,000 generated cases (5,000 with
    ``--quick``), output to a file. Peak memory is the process's maximum resident set size
    (``wait4``'s ``ru_maxrss``); reference: the input file's size; ``ratio`` = peak / input. The
    target is at most 1.5 GiB at 50,000 cases.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from serve.loading import CHECKOUT_STORE
from tests.bench import result

ROUNDS = 5
CASE = {"age": 67, "worse_walking": True, "better_sitting": True, "sides": "both"}
COMMAND = str(Path(sys.executable).with_name("sciatica-triage"))


def _champion_store(work: Path) -> tuple[str, str]:
    """A tracking store with a champion, and which one it is (for the notes)."""
    if CHECKOUT_STORE.is_file():
        probe = subprocess.run(
            [COMMAND, "predict", "--json", "-"],
            input=json.dumps({"age": 50}),
            env=_env(f"sqlite:///{CHECKOUT_STORE}", work / "probe-cache"),
            cwd=work,
            capture_output=True,
            text=True,
        )
        if probe.returncode == 0:
            version = json.loads(probe.stdout)["predictions"][0]["model_version"]
            return f"sqlite:///{CHECKOUT_STORE}", f"the checkout's champion v{version}"
    uri = f"sqlite:///{work / 'mlflow.db'}"
    train = [sys.executable, "-m", "training", "--n-train", "20000", "--n-val", "5000"]
    train += ["--n-test", "2000", "--n-cal", "2000", "--candidates", "lightgbm"]
    train += ["--no-learning-curve", "--no-robustness"]
    # its own process and store: this run's MLflow settings stay as they were
    subprocess.run(train, env=_env(uri, "off"), cwd=work, check=True, capture_output=True)
    return uri, "a LightGBM champion trained here on 20,000 cases (no `make train` store found)"


def _env(store: str, cache: Path | str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "SCIATICA_"))}
    return env | {"MLFLOW_TRACKING_URI": store, "SCIATICA_TRIAGE_CACHE": str(cache)}


def _timed(argv: list[str], env: dict[str, str], cwd: Path, **kwargs: Any) -> tuple[float, Any]:
    """Wall-clock seconds and resource usage of one process, which must succeed."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, env=env, cwd=cwd, **kwargs)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with {process.returncode}")
    return seconds, usage


def bench_start(store: str, which: str, work: Path) -> list[dict[str, Any]]:
    case = work / "case.json"
    case.write_text(json.dumps(CASE))
    predict = [COMMAND, "predict", str(case)]
    warm_cache = work / "warm-cache"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    _timed(predict, _env(store, warm_cache), work, **quiet)  # fills the warm cache
    times: dict[str, list[float]] = {"pass": [], "cold": [], "warm": []}
    for round_ in range(ROUNDS):
        cold_cache = work / f"cold-cache-{round_}"
        times["pass"].append(_timed([sys.executable, "-c", "pass"], dict(os.environ), work)[0])
        times["cold"].append(_timed(predict, _env(store, cold_cache), work, **quiet)[0])
        times["warm"].append(_timed(predict, _env(store, warm_cache), work, **quiet)[0])
        shutil.rmtree(cold_cache, ignore_errors=True)
    reference = statistics.median(times["pass"])
    load = f"load avg {os.getloadavg()[0]:.1f}"
    rows = []
    for key, what in (("cold", "empty model cache"), ("warm", "local copy of the version")):
        figure = statistics.median(times[key])
        rows.append(
            result(
                f"CLI predict 1 case, {key}",
                figure,
                "s",
                reference,
                figure / reference,
                f"median of {ROUNDS}, {what}; reference `python -c pass`; {which}; {load}",
            )
        )
    return rows


def bench_large_file(store: str, n: int, work: Path) -> list[dict[str, Any]]:
    import vignettes
    from vignettes.schema import FIELD_NAMES

    frame = vignettes.generate(n, seed=17)[list(FIELD_NAMES)]
    path = work / "cases.json"
    path.write_text(frame.to_json(orient="records"))
    del frame
    env = _env(store, work / "warm-cache")
    with open(work / "out.json", "w") as out:
        seconds, usage = _timed(
            [COMMAND, "predict", "--json", str(path)], env, work, stdout=out, stderr=subprocess.PIPE
        )
    with open(work / "out.json") as out:
        assert len(json.load(out)["predictions"]) == n
    peak = usage.ru_maxrss * 1024  # kilobytes on Linux
    size = path.stat().st_size
    return [
        result(
            f"CLI predict {n:,} cases, time",
            n / seconds,
            "cases/s",
            note=f"{seconds:.1f} s for a {size / 2**20:.0f} MiB JSON list, output to a file",
        ),
        result(
            f"CLI predict {n:,} cases, peak memory",
            peak / 2**30,
            "GiB",
            size / 2**30,
            peak / size,
            "max resident set size; reference: the input file; target <= 1.5 GiB at 50,000",
        ),
    ]


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Start-up for one case (cold and warm) and a large file, each as a fresh process."""
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        work = Path(tmp)
        store, which = _champion_store(work)
        print(f"   model: {which}", flush=True)
        rows = bench_start(store, which, work)
        rows += bench_large_file(store, 5_000 if quick else 50_000, work)
    return rows
