"""Configuration in one place: defaults and names defined once, no global state set at import."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import warnings
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import pytest

from model import mlflow_names
from training.__main__ import build_parser, parse_args
from training.config import QUICK, Seeds, TrainConfig
from training.pipeline import _quiet_mlflow

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("vignettes", "model", "serve", "training")
NAME_ALLOWED_IN = {
    "model/mlflow_names.py",  # the definition
    "serve/cli.py",  # the command's own name (pyproject's [project.scripts]), not the model's
    "vignettes/__main__.py",  # the installed distribution's name, for its version
    "vignettes/sdc.py",  # the same, for the Questionnaire's version
    "serve/loading.py",  # the application's cache folder (~/.cache/sciatica-triage/models)
    "serve/cds/hooks.py",  # the CDS service id (the contract's /cds-services/sciatica-triage)
}


def test_training_cli_defaults_are_train_config_defaults() -> None:
    assert parse_args([]) == TrainConfig()


def test_the_cli_has_an_option_for_every_documented_field() -> None:
    options = build_parser()._option_string_actions
    for f in fields(TrainConfig):
        if "help" in f.metadata:
            flag = "--" + f.name.replace("_", "-")
            assert flag in options or "--no-" + flag[2:] in options, f.name
    assert "--model-name" not in options and "--extra" not in options  # not for the CLI


def test_cli_options_reach_the_config() -> None:
    given = "--n-train 5000 --seed 3 --setting spine_clinic --no-robustness --cost-ratio 9"
    cfg = parse_args([*given.split(), "--candidates", "lightgbm", "bayes_posterior"])
    assert (cfg.n_train, cfg.seed, cfg.setting, cfg.robustness) == (5000, 3, "spine_clinic", False)
    assert cfg.candidates == ("lightgbm", "bayes_posterior") and cfg.cost_ratio == 9.0
    assert cfg.learning_curve and cfg.n_test == TrainConfig().n_test


def test_quick_is_the_preset_and_options_given_win() -> None:
    quick = parse_args(["--quick"])
    assert {k: getattr(quick, k) for k in QUICK} == dict(QUICK)
    assert quick.n_train < TrainConfig().n_train and quick.candidates == TrainConfig().candidates
    assert parse_args(["--quick", "--n-train", "12345"]).n_train == 12345


def test_bad_cli_values_name_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--setting", "icu"])
    assert "--setting" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(["--n-train", "many"])
    assert "--n-train" in capsys.readouterr().err
    with pytest.raises(ValueError, match="n_train"):
        parse_args(["--n-train", "5"])


def test_the_seed_tree_is_reproducible_and_independent() -> None:
    seeds = Seeds.spawn(7)
    assert seeds == Seeds.spawn(7) == TrainConfig(seed=7).seeds
    values = list(asdict(seeds).values())
    assert len(set(values)) == 4 and all(0 <= v < 2**31 for v in values)
    assert Seeds.spawn(8) != seeds
    children = np.random.SeedSequence(7).spawn(4)
    assert values == [int(c.generate_state(1)[0] >> 1) for c in children]


@pytest.mark.skipif(sys.platform == "win32", reason="needs make")
def test_make_train_quick_passes_quick() -> None:
    assert "--quick" in _make_dry_run("QUICK=1") and "--quick" not in _make_dry_run()


def _make_dry_run(*assignments: str) -> str:
    result = subprocess.run(
        ["make", "-n", "train", "data", *assignments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


@pytest.mark.skipif(sys.platform == "win32", reason="needs make")
def test_makefile_forwards_only_what_the_user_sets() -> None:
    plain = _make_dry_run()
    assert "-m training" in plain and "-m vignettes" in plain
    for flag in ("--n-train", "--n ", "--seed", "--setting"):
        assert flag not in plain, flag  # the defaults are TrainConfig's and the data CLI's
    chosen = _make_dry_run("N=5000", "SEED=3", "SETTING=spine_clinic")
    assert "--n-train 5000 --seed 3 --setting spine_clinic" in " ".join(chosen.split())
    assert "--n 5000 --seed 3 --setting spine_clinic" in " ".join(chosen.split())


def _string_constants(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def test_the_registered_name_is_written_out_once() -> None:
    assert mlflow_names.CHAMPION_URI == "models:/sciatica-triage@champion"
    writers = {
        path.relative_to(ROOT).as_posix()
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if {mlflow_names.MODEL_NAME, mlflow_names.CHAMPION_URI} & _string_constants(path)
    }
    assert writers <= NAME_ALLOWED_IN, writers - NAME_ALLOWED_IN


def test_importing_training_changes_no_global_state() -> None:
    """A fresh interpreter: the environment and warning filters are as they were."""
    probe = (
        "import os, warnings\n"
        "def ours(env): return {k: v for k, v in env.items() if not k.startswith('_MLFLOW')}\n"
        "before_env = ours(os.environ)\n"
        # What training imports from elsewhere may add filters of its own: import it first.
        "import lightgbm, matplotlib, mlflow, sklearn, model, model.triage, vignettes\n"
        "before_filters = list(warnings.filters)\n"
        "import training, training.pipeline\n"
        "assert ours(os.environ) == before_env, set(ours(os.environ)) ^ set(before_env)\n"
        "assert list(warnings.filters) == before_filters, warnings.filters[:3]\n"
        # the probe's exit skips collecting what it imported (0.8 s), as the command's does
        "import gc; gc.freeze()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"}
    subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, check=True)


def test_training_quiets_mlflow_only_while_it_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    name = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    monkeypatch.delenv(name, raising=False)
    filters = list(warnings.filters)
    with _quiet_mlflow():
        assert os.environ[name] == "false"
        assert len(warnings.filters) == len(filters) + 1
    assert name not in os.environ
    assert warnings.filters == filters
    monkeypatch.setenv(name, "true")  # a user's own choice is kept
    with _quiet_mlflow():
        assert os.environ[name] == "true"
    assert os.environ[name] == "true"
