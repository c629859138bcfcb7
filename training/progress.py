"""Progress a researcher can read during a long run: steps with ETAs, a heartbeat, a profile.

:class:`StepProfile` times every step of ``make train`` (wall and CPU seconds, with the load
average when it started). While a step runs, a heartbeat line comes every
:data:`HEARTBEAT_SECONDS` with the time spent and, when an earlier run in the same MLflow
experiment timed the same step, the time left at that pace. :func:`boosting_progress` does the
same for LightGBM's boosting rounds. At the end, :meth:`StepProfile.markdown` is the table
``make train`` prints and logs as ``profile.md`` (and as ``time_<step>`` / ``cpu_<step>``
metrics, which the next run reads back for its ETAs).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "HEARTBEAT_SECONDS",
    "REFERENCE_N_TRAIN",
    "REFERENCE_STEP_SECONDS",
    "StepProfile",
    "boosting_progress",
    "eta_text",
    "expected_from_metrics",
    "reference_step_times",
    "say",
    "step_key",
]

HEARTBEAT_SECONDS = 10.0
"""How often a running step, or a boosting loop, says where it is."""


def say(message: str) -> None:
    """Progress output: timestamped, flushed, so long runs show where they are. One write per
    line, so that lines from work running side by side do not run into each other."""
    sys.stdout.write(f"[{time.strftime('%H:%M:%S')}] {message}\n")
    sys.stdout.flush()


def step_key(name: str) -> str:
    """The metric-safe key of a step's name: ``"fit lightgbm"`` -> ``"fit_lightgbm"``."""
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")


def eta_text(elapsed: float, expected: float | None, basis: str = "last time") -> str:
    """``"40 s"`` or ``"40 s of ~150 s, ~110 s left"`` (past the expected time: ``"last time
    150 s: a little longer this time"``; ``basis`` says where the expected time comes from)."""
    if expected is None or expected <= 0:
        return f"{elapsed:.0f} s"
    left = expected - elapsed
    if left <= 0:
        return f"{elapsed:.0f} s ({basis} {expected:.0f} s: a little longer this time)"
    return f"{elapsed:.0f} s of ~{expected:.0f} s, ~{left:.0f} s left"


REFERENCE_N_TRAIN = 300_000
REFERENCE_STEP_SECONDS: dict[str, float] = {
    "generate_cases": 2.9,
    "candidate_article_rules": 2.1,
    "candidate_logistic_regression": 9.7,
    "candidate_hist_gradient_boosting": 60.6,
    "candidate_lightgbm": 64.5,
    "candidate_bayes_posterior": 1.6,
    "comparison_views": 6.5,
    "champion_model": 25.6,
    "register_champion": 0.3,
    "learning_curve": 0.3,
    "robustness_and_change_of_setting": 19.0,
    "safety_tables": 7.6,
    "report": 0.2,
}
"""Wall seconds of each step of ``make train`` with the defaults (:data:`REFERENCE_N_TRAIN`
training cases) on the project's 2-core machine, by :func:`step_key`: the ETAs of a first run,
before any run of the same size is in the tracking store (measured 2026-12-07, load average
about 1.5; the learning curve's refits run beside robustness and the safety tables, so its step is
the wait that is left)."""
_SIZE_FREE_STEPS = ("register_champion", "report")


def reference_step_times(n_train: int) -> dict[str, float]:
    """:data:`REFERENCE_STEP_SECONDS` scaled to ``n_train`` cases (fitting and scoring grow
    about linearly with the cases; registering and the report do not)."""
    scale = n_train / REFERENCE_N_TRAIN
    return {
        key: seconds if key in _SIZE_FREE_STEPS else seconds * scale
        for key, seconds in REFERENCE_STEP_SECONDS.items()
    }


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:  # not available on every platform
        return float("nan")


@dataclass
class StepRecord:
    """One timed step: wall and CPU seconds, and the 1-minute load average when it started."""

    name: str
    wall: float
    cpu: float
    load: float


@dataclass
class StepProfile:
    """Times the steps of a run and keeps a heartbeat going while each one runs.

    Parameters
    ----------
    expected : mapping, optional
        Seconds each step took last time, by :func:`step_key`: the basis of the ETAs.
    basis : str, default="last time"
        Where ``expected`` comes from, in words (``"on the reference machine"``).
    interval : float, default=HEARTBEAT_SECONDS
        Seconds between heartbeat lines.
    out : callable, default=say
        Where the lines go.
    """

    expected: Mapping[str, float] = field(default_factory=dict)
    basis: str = "last time"
    interval: float = HEARTBEAT_SECONDS
    out: Callable[[str], None] = say
    records: list[StepRecord] = field(default_factory=list)

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time the block as step ``name``, with a heartbeat line every :attr:`interval`."""
        expected = self.expected.get(step_key(name))
        load = _load()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        done = threading.Event()

        def beat() -> None:
            while not done.wait(self.interval):
                elapsed = time.perf_counter() - wall0
                self.out(f"  ... {name}: {eta_text(elapsed, expected, self.basis)}")

        thread = threading.Thread(target=beat, name=f"heartbeat {name}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            self.records.append(StepRecord(name, wall, cpu, load))

    @property
    def total(self) -> float:
        """Wall seconds of every step together."""
        return sum(r.wall for r in self.records)

    def metrics(self) -> dict[str, float]:
        """``time_<step>`` and ``cpu_<step>`` per step, and ``time_total``, for MLflow."""
        out: dict[str, float] = {}
        for r in self.records:
            key = step_key(r.name)
            out[f"time_{key}"] = out.get(f"time_{key}", 0.0) + r.wall
            out[f"cpu_{key}"] = out.get(f"cpu_{key}", 0.0) + r.cpu
        out["time_total"] = self.total
        return out

    def markdown(self) -> str:
        """The profile as a table: step, wall and CPU seconds, share of the run, load."""
        total = self.total or 1.0
        lines = [
            "| step | wall s | CPU s | share | load (1 min) |",
            "|---|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r.name} | {r.wall:.1f} | {r.cpu:.1f} | {r.wall / total:.0%} | {r.load:.2f} |"
            for r in self.records
        ]
        lines.append(
            f"| **total** | {self.total:.1f} | {sum(r.cpu for r in self.records):.1f} | 100% | |"
        )
        return "\n".join(lines) + "\n"


def expected_from_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    """Step times by key from a finished run's ``time_<step>`` metrics."""
    return {k[len("time_") :]: v for k, v in metrics.items() if k.startswith("time_")}


def boosting_progress(
    label: str,
    max_rounds: int,
    *,
    interval: float = HEARTBEAT_SECONDS,
    out: Callable[[str], None] = say,
    expected_rounds: int | None = None,
) -> Callable[[Any], None]:
    """A LightGBM callback that says every ``interval`` seconds which round it is at.

    Early stopping ends the loop before ``max_rounds``, so the time left is given, at the current
    pace, only when ``expected_rounds`` (where an earlier run stopped) is known.
    """
    start: float | None = None
    last = 0.0

    def callback(env: Any) -> None:
        nonlocal start, last
        now = time.perf_counter()
        if start is None:
            start = last = now
            return
        if now - last < interval:
            return
        last = now
        done = env.iteration - env.begin_iteration + 1
        pace = (now - start) / max(done, 1)
        text = (
            f"  ... {label}: round {done:,} of at most {max_rounds:,} ({pace * 1000:.0f} ms/round)"
        )
        if expected_rounds:
            left = max(expected_rounds - done, 0) * pace
            text += f", ~{left:.0f} s left if it stops near round {expected_rounds:,} as last time"
        out(text)

    callback.order = 40  # type: ignore[attr-defined]  # after early stopping (order 30)
    return callback
