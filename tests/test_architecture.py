"""Data flows one way: knowledge -> vignettes -> training -> model -> serve.

No package imports one that comes after it in that flow, except that training builds the model it
trains (``training`` -> ``model``); ``model`` never reaches back into ``training`` or ``serve``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "vignettes": {"training", "model", "serve"},
    "model": {"training", "serve"},
    "training": {"serve"},
}


def _imported_packages(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(path.name)
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_package_reaches_back_up_the_chain(package: str) -> None:
    imported = _imported_packages(package)
    offending = {p: sorted(files) for p, files in imported.items() if p in FORBIDDEN[package]}
    assert not offending, f"{package} imports {offending}"


def test_structured_path_does_not_load_faker_or_mlflow() -> None:
    import subprocess
    import sys

    code = (
        "import sys, vignettes; vignettes.generate(10, seed=1); vignettes.posterior("
        "vignettes.generate(10, seed=1)); print('faker' in sys.modules, 'mlflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
