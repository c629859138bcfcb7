"""Stopping ``python -m training`` cleanly on Ctrl-C (SIGINT) or ``kill`` (SIGTERM).

:func:`stopped_cleanly` wraps the training call of a command line. While it is active, SIGINT
and SIGTERM raise :class:`TrainingInterrupted` in the main thread (Python's default for SIGTERM is
to die at once, leaving the MLflow runs marked RUNNING forever). On the way out it

- marks every MLflow run that was open when the signal came KILLED (the runs' own ``with``
  blocks have ended them FAILED by then);
- puts back every registry alias this process moved (:func:`training.registry.undo_alias_moves`),
  so the alias never moves on an interrupted run;
- prints one line on stderr, and leaves the exit status (130 for SIGINT, 143 for SIGTERM, as
  shells report them) in :attr:`Stop.exit_code`.

A second signal while this is being done is ignored: the clean-up is short.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import FrameType

import mlflow

from training.registry import forget_alias_moves, undo_alias_moves

__all__ = ["Stop", "TrainingInterrupted", "stopped_cleanly"]

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(KeyboardInterrupt):
    """Raised in the main thread by SIGINT or SIGTERM while :func:`stopped_cleanly` is active."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.signal_name = name


@dataclass
class Stop:
    """What :func:`stopped_cleanly` saw: the signal, the runs open then, the exit status."""

    signal_name: str | None = None
    open_runs: list[str] = field(default_factory=list)
    exit_code: int = 0

    @property
    def interrupted(self) -> bool:
        return self.signal_name is not None


def _open_runs() -> list[str]:
    """The active MLflow run and the run it is nested in, innermost first, from memory only
    (this runs in the signal handler: no query to the store here)."""
    run = mlflow.active_run()
    if run is None:
        return []
    parent = run.data.tags.get("mlflow.parentRunId")
    return [run.info.run_id, *([parent] if parent else [])]


def _ancestors(run_ids: list[str]) -> list[str]:
    """``run_ids`` and the runs the last of them is nested in (asked of the store)."""
    out = list(run_ids)
    client = mlflow.MlflowClient()
    while out:
        try:
            parent = client.get_run(out[-1]).data.tags.get("mlflow.parentRunId")
        except Exception:  # the store cannot be read now: the runs known so far are marked
            break
        if not parent or parent in out:
            break
        out.append(parent)
    return out


@contextlib.contextmanager
def stopped_cleanly(program: str = "python -m training") -> Iterator[Stop]:
    """Turn SIGINT and SIGTERM into a clean stop of the block (see the module's description).

    Parameters
    ----------
    program : str
        Names the command in the one-line message.

    Yields
    ------
    Stop
        Filled in when a signal stopped the block; the exception does not propagate.
    """
    stop = Stop()

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.signal_name is not None:
            return
        stop.signal_name = signal.Signals(signum).name
        stop.open_runs = _open_runs()
        raise TrainingInterrupted(stop.signal_name)

    forget_alias_moves()
    previous = {number: signal.signal(number, handler) for number in SIGNALS}
    try:
        yield stop
    except KeyboardInterrupt:
        if stop.signal_name is None:  # a KeyboardInterrupt raised before the handler ran
            stop.signal_name = "SIGINT"
        for number in SIGNALS:
            signal.signal(number, signal.SIG_IGN)
        stop.exit_code = 128 + int(getattr(signal, stop.signal_name))
        print(f"{program}: {_clean_up(stop)}", file=sys.stderr, flush=True)
    finally:
        for number, before in previous.items():
            signal.signal(number, before)


def _clean_up(stop: Stop) -> str:
    """Mark the open runs KILLED and put the moved aliases back; the one line that says so."""
    parts = [f"interrupted ({stop.signal_name})"]
    while mlflow.active_run() is not None:  # runs whose ``with`` block did not end them
        mlflow.end_run("KILLED")
    marked = []
    for run_id in _ancestors(stop.open_runs):
        with contextlib.suppress(Exception):
            mlflow.MlflowClient().set_terminated(run_id, "KILLED")
            marked.append(run_id)
    if marked:
        parts.append(f"run{'s' if len(marked) > 1 else ''} {', '.join(marked)} marked KILLED")
    try:
        restored = undo_alias_moves()
    except Exception as exc:
        parts.append(f"could not restore the registry alias ({' '.join(str(exc).split())[:120]})")
    else:
        parts.append(
            "registry aliases put back: " + ", ".join(restored)
            if restored
            else "no registry alias moved"
        )
    return "; ".join(parts)
