"""Progress during a long run: heartbeats with ETAs, the boosting rounds, the step profile."""

from __future__ import annotations

import threading
import time

import lightgbm
import numpy as np
import pytest

from training.progress import (
    REFERENCE_N_TRAIN,
    REFERENCE_STEP_SECONDS,
    StepProfile,
    boosting_progress,
    eta_text,
    expected_from_metrics,
    reference_step_times,
    step_key,
)


def test_eta_text_says_what_is_left_and_when_it_runs_over() -> None:
    assert eta_text(40, None) == "40 s"
    assert eta_text(40, 150) == "40 s of ~150 s, ~110 s left"
    assert "longer" in eta_text(200, 150)


def test_a_first_run_takes_its_etas_from_the_reference_profile() -> None:
    """The reference times scale with the run's size (but for the steps that do not grow with
    it), and the ETA says where they come from (every step has one: ``test_training``)."""
    half = reference_step_times(REFERENCE_N_TRAIN // 2)
    fit = "candidate_lightgbm"
    assert half[fit] == pytest.approx(REFERENCE_STEP_SECONDS[fit] / 2)
    assert half["report"] == REFERENCE_STEP_SECONDS["report"]
    out = Lines()
    profile = StepProfile({"x": 0.01}, "on the reference machine", interval=0.05, out=out)
    with profile.step("x"):
        time.sleep(0.2)
    assert "(on the reference machine 0 s: a little longer this time)" in out.lines[-1]


def test_step_keys_are_metric_names() -> None:
    assert step_key("candidate hist_gradient_boosting") == "candidate_hist_gradient_boosting"
    assert step_key("Robustness and change of setting!") == "robustness_and_change_of_setting"


class Lines:
    """A thread-safe list of the lines a component printed."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, line: str) -> None:
        with self._lock:
            self.lines.append(line)


def test_a_running_step_beats_with_its_eta_and_is_timed() -> None:
    out = Lines()
    profile = StepProfile({"fit_lightgbm": 100.0}, interval=0.05, out=out)
    with profile.step("fit lightgbm"):
        time.sleep(0.3)
        np.linalg.eigvals(np.random.default_rng(0).random((300, 300)))  # some CPU time
    assert len(out.lines) >= 3
    assert all("fit lightgbm" in line and "of ~100 s" in line for line in out.lines)
    (record,) = profile.records
    assert record.wall >= 0.3 and 0 < record.cpu < record.wall + 1
    lines = len(out.lines)
    time.sleep(0.15)
    assert len(out.lines) == lines  # the heartbeat stops with the step


def test_the_profile_adds_up_and_reads_back_as_expected_times() -> None:
    profile = StepProfile(interval=60)
    for name in ("generate cases", "candidate lightgbm", "report"):
        with profile.step(name):
            time.sleep(0.01)
    metrics = profile.metrics()
    assert set(metrics) == {
        "time_generate_cases",
        "cpu_generate_cases",
        "time_candidate_lightgbm",
        "cpu_candidate_lightgbm",
        "time_report",
        "cpu_report",
        "time_total",
    }
    assert metrics["time_total"] == pytest.approx(sum(r.wall for r in profile.records))
    expected = expected_from_metrics(metrics)
    assert expected["candidate_lightgbm"] == metrics["time_candidate_lightgbm"]
    table = profile.markdown()
    assert table.count("\n") == 2 + 3 + 1 and "| candidate lightgbm |" in table
    assert "**total**" in table


def test_a_step_that_fails_is_still_timed_and_stops_beating() -> None:
    out = Lines()
    profile = StepProfile(interval=0.02, out=out)
    with pytest.raises(RuntimeError), profile.step("broken"):
        raise RuntimeError("boom")
    assert [r.name for r in profile.records] == ["broken"]
    assert not any(t.name == "heartbeat broken" for t in threading.enumerate())


def test_boosting_rounds_are_reported_with_the_time_left() -> None:
    rng = np.random.default_rng(0)
    X = rng.random((2000, 5))
    y = (X[:, 0] + rng.normal(0, 0.3, 2000) > 0.5).astype(int)
    out = Lines()
    callback = boosting_progress("lightgbm test", 300, interval=0.0, out=out, expected_rounds=200)
    params = {"objective": "binary", "verbosity": -1, "num_threads": 1, "learning_rate": 0.01}
    lightgbm.train(params, lightgbm.Dataset(X, y), num_boost_round=300, callbacks=[callback])
    assert len(out.lines) == 299  # every round after the first, at interval 0
    assert "round 2 of at most 300" in out.lines[0] and "s left" in out.lines[0]
    assert "round 300 of at most 300" in out.lines[-1]
    unknown = Lines()
    quiet = boosting_progress("lightgbm test", 50, interval=0.0, out=unknown)
    lightgbm.train(params, lightgbm.Dataset(X, y), num_boost_round=50, callbacks=[quiet])
    assert unknown.lines and not any("left" in line for line in unknown.lines)


def test_background_work_returns_its_value_or_its_error_in_the_caller() -> None:
    """What ``make train`` runs beside the other evaluations (the learning-curve refits)."""
    from training.pipeline import Background

    started = threading.Event()

    def work(x: int) -> int:
        started.set()
        time.sleep(0.05)
        return x * 2

    job = Background(work, 21)
    assert started.wait(5) and job._thread.daemon  # Ctrl-C does not wait for it
    assert job.result() == 42

    def fails() -> None:
        raise ValueError("refit failed")

    with pytest.raises(ValueError, match="refit failed"):
        Background(fails).result()
