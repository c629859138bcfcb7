"""The interface page is what the code says now; the repository points nowhere outside itself."""

from __future__ import annotations

import importlib.util
import re
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_interface", ROOT / "docs" / "interface.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_interface_page_equals_what_the_generator_writes() -> None:
    generator = _generator()
    committed = (ROOT / "docs" / "interface.md").read_text(encoding="utf-8")
    assert committed == generator.render(), "docs/interface.md is stale: run `make docs`"


def test_interface_page_names_every_field_label_and_public_name() -> None:
    import vignettes
    from model.mlflow_names import CHAMPION_URI

    page = (ROOT / "docs" / "interface.md").read_text(encoding="utf-8")
    for name in (*vignettes.FIELD_NAMES, *vignettes.CAUSES, CHAMPION_URI, "make train"):
        assert f"`{name}`" in page, name
    for value in vignettes.FIELD_BY_NAME["pain_region"].values:
        assert repr(value) in page


def test_check_mode_reports_a_stale_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    generator = _generator()
    stale = tmp_path / "interface.md"
    stale.write_text(generator.render() + "an edit by hand\n", encoding="utf-8")
    monkeypatch.setattr(generator, "TARGET", stale)
    assert generator.main(["--check"]) == 1
    stale.write_text(generator.render(), encoding="utf-8")
    assert generator.main(["--check"]) == 0


OWN_FILES = ("README.md", "model/intake.py", "vignettes/schema.py", "vignettes/posterior.py")
OWN_FOLDERS = ("serve", "training", "tests", "docs", "vignettes/intake.py")


def test_the_repository_points_nowhere_outside_itself() -> None:
    """No reference to material outside the repository, which a clone does not have."""
    pattern = r"\.\./shared|shared/contract|shared/clinical|shared/source"
    found = subprocess.run(
        ["git", "grep", "-n", "-E", pattern, "--", *OWN_FILES, *OWN_FOLDERS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode == 128:  # not a git checkout (e.g. an sdist): nothing to check
        pytest.skip("not a git checkout")
    # This test's own pattern is the one allowed mention.
    hits = [line for line in found.stdout.splitlines() if not line.startswith("tests/test_docs.py")]
    assert hits == []


def test_every_relative_link_of_the_readme_and_docs_exists() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for page in pages:
        for target in re.findall(r"\]\(([^)#]+)\)", page.read_text(encoding="utf-8")):
            if "://" in target:
                continue
            assert (page.parent / target).resolve().is_file(), f"{page.name}: {target}"
