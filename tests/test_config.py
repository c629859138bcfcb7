"""Configuration in one place: defaults and names defined once, no global state set at import."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import warnings
from dataclasses import asdict
from pathlib import Path

import pytest

from model import mlflow_names
from training.__main__ import parse_args
from training.pipeline import TrainConfig, _quiet_mlflow

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
    args = parse_args([])
    config = asdict(TrainConfig())
    assert (args.n_train, args.n_val, args.n_test, args.n_cal) == (
        config["n_train"],
        config["n_val"],
        config["n_test"],
        config["n_cal"],
    )
    assert (args.seed, args.setting, args.alpha, args.experiment) == (
        config["seed"],
        config["setting"],
        config["alpha"],
        config["experiment"],
    )
    assert tuple(args.candidates) == config["candidates"]


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
