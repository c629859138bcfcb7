"""What ``make train`` can be told, defined once: :class:`TrainConfig`, its seed tree and its CLI.

Every field of :class:`TrainConfig` carries its help text; ``python -m training``'s command line
is generated from the fields (:func:`add_arguments`, :func:`from_arguments`), so a default, a
choice or a help line is written in one place. :data:`QUICK` is the preset behind
``make train QUICK=1``: small splits for iterating on the knowledge base.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any

import numpy as np

from model.mlflow_names import EXPERIMENT, MODEL_NAME
from model.triage import RED_FLAG_COST_RATIO, cost_ratio_threshold
from training.candidates import CANDIDATES
from vignettes.schema import SETTINGS

__all__ = ["QUICK", "Seeds", "TrainConfig", "add_arguments", "from_arguments"]


def _option(default: Any, help: str, **extra: Any) -> Any:
    """A config field with its command-line help (and ``choices=``, when it has them)."""
    return field(default=default, metadata={"help": help, **extra})


@dataclass(frozen=True)
class Seeds:
    """The independent seeds of one training run, spawned from its one ``seed``.

    ``numpy.random.SeedSequence(seed).spawn`` gives statistically independent streams, so the
    data, the models' randomness, the answers hidden by the robustness check and the other
    setting's cases never share a stream, as ``seed``, ``seed``, ``seed``, ``seed + 1`` did.
    Each is a 31-bit integer, which every library here accepts.

    Attributes
    ----------
    data, models, masks, shift : int
    """

    data: int
    models: int
    masks: int
    shift: int

    @classmethod
    def spawn(cls, seed: int) -> Seeds:
        """The seed tree of ``seed``: the same ``seed``, the same four seeds, on any machine."""
        children = np.random.SeedSequence(seed).spawn(len(fields(cls)))
        return cls(*(int(c.generate_state(1)[0] >> 1) for c in children))


@dataclass
class TrainConfig:
    """Everything ``make train`` can be told; the defaults are the documented run."""

    n_train: int = _option(300_000, "training cases")
    n_val: int = _option(50_000, "validation cases (calibration, threshold, champion choice)")
    # the urgency targets are judged on 100,000 fresh cases
    n_test: int = _option(100_000, "test cases")
    n_cal: int = _option(50_000, "conformal calibration cases")
    alpha: float = _option(0.05, "differential miscoverage (1 - coverage)")
    cost_ratio: float = _option(
        RED_FLAG_COST_RATIO,
        "K: one missed serious condition costs as much as K false alarms; the model's review "
        "threshold is 1/(1+K)",
    )
    seed: int = _option(7, "root of the seed tree (data, models, masks, setting shift)")
    setting: str = _option("primary_care", "clinical setting of the cases", choices=SETTINGS)
    candidates: tuple[str, ...] = _option(
        tuple(CANDIDATES), "candidates to train", choices=tuple(CANDIDATES)
    )
    experiment: str = _option(EXPERIMENT, "MLflow experiment name")
    model_name: str = field(default=MODEL_NAME)
    learning_curve: bool = _option(True, "the champion's learning curve")
    robustness: bool = _option(True, "robustness to unknown answers and the change of setting")
    register: bool = _option(True, "register the champion in the model registry")
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.candidates) - set(CANDIDATES)
        if unknown:
            raise ValueError(f"candidates: unknown {sorted(unknown)}; allowed: {list(CANDIDATES)}")
        if self.setting not in SETTINGS:
            raise ValueError(f"setting must be one of {list(SETTINGS)}, got {self.setting!r}")
        if min(self.n_train, self.n_val, self.n_test, self.n_cal) < 100:
            raise ValueError("n_train, n_val, n_test and n_cal must each be at least 100")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        cost_ratio_threshold(self.cost_ratio)  # refuses K <= 0

    @property
    def seeds(self) -> Seeds:
        """The run's seed tree, spawned from :attr:`seed`."""
        return Seeds.spawn(self.seed)


QUICK: Mapping[str, Any] = {
    "n_train": 40_000,
    "n_val": 10_000,
    "n_test": 20_000,
    "n_cal": 10_000,
    "learning_curve": False,
}
"""``--quick`` (``make train QUICK=1``): a tenth of the data and no learning curve, for iterating
on the knowledge base; every candidate, the comparison and the report are still made. Sizes given
on the command line win over the preset."""


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _cli_fields() -> list[Field]:
    return [f for f in fields(TrainConfig) if "help" in f.metadata]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one option per :class:`TrainConfig` field with help, and ``--quick``.

    Booleans that default to on become ``--no-<name>``; tuples take one or more values. The
    defaults shown are the dataclass's; options left out are left to it (``None`` here).
    """
    for f in _cli_fields():
        default = f.default if f.default is not MISSING else None
        help_text = f"{f.metadata['help']} (default: {_shown(default)})"
        if isinstance(default, bool):
            parser.add_argument(
                _flag("no_" + f.name),
                dest=f.name,
                action="store_false",
                default=None,
                help=f"skip: {help_text}",
            )
            continue
        kwargs: dict[str, Any] = {"dest": f.name, "default": None, "help": help_text}
        if "choices" in f.metadata:
            kwargs["choices"] = list(f.metadata["choices"])
        if isinstance(default, tuple):
            kwargs["nargs"] = "+"
        else:
            kwargs["type"] = type(default)
        parser.add_argument(_flag(f.name), **kwargs)
    sizes = ", ".join(f"{k}={v}" for k, v in QUICK.items())
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"iterate fast: {sizes}; sizes given as options win (make train QUICK=1)",
    )


def _shown(default: Any) -> str:
    if isinstance(default, tuple):
        return " ".join(default)
    if isinstance(default, int) and not isinstance(default, bool):
        return f"{default:_}"
    return str(default)


def from_arguments(args: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` the parsed options describe: the preset, then what was given."""
    values: dict[str, Any] = dict(QUICK) if getattr(args, "quick", False) else {}
    for f in _cli_fields():
        given = getattr(args, f.name, None)
        if given is not None:
            values[f.name] = tuple(given) if isinstance(f.default, tuple) else given
    return TrainConfig(**values)
