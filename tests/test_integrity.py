"""Model files are checked against their SHA-256 manifest before any library parses them, and a
skops file may hold only the types the project's models need.

The models here are tiny (a few boosting rounds on 2,000 cases, well under a second), built
without MLflow; the store and cache faults are in ``tests/test_model_store.py``.
"""

from __future__ import annotations

import builtins
import json
import subprocess
import sys
from pathlib import Path

import lightgbm
import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

import vignettes
from model.intake import validate_case
from model.integrity import (
    BUNDLE_MANIFEST,
    DamagedModelError,
    check_tree,
    manifest_digest,
    read_verified,
    tree_manifest,
    write_bundle_manifest,
)
from model.scorers import SKOPS_TRUSTED_TYPES, Scorer
from model.triage import TriageModel
from training.candidates import Split
from vignettes.schema import CAUSES


@pytest.fixture(scope="module")
def split() -> Split:
    return Split(vignettes.generate(2_000, seed=5))


def tiny_lightgbm(split: Split, target: str, n_classes: int) -> Scorer:
    objective = (
        {"objective": "multiclass", "num_class": n_classes}
        if n_classes > 2
        else {"objective": "binary"}
    )
    params = {"num_leaves": 4, "verbosity": -1, "num_threads": 1, "seed": 1} | objective
    y = getattr(split, target)
    booster = lightgbm.train(params, lightgbm.Dataset(split.X, y), num_boost_round=5)
    return Scorer("lightgbm", booster, n_classes)


def tiny_triage(split: Split) -> TriageModel:
    meta = {"name": "tiny", "version": "t1", "red_flag_threshold": 0.01}
    cause = tiny_lightgbm(split, "y", len(CAUSES))
    return TriageModel(cause, tiny_lightgbm(split, "red", 2), meta)


@pytest.fixture
def bundle(split: Split, tmp_path: Path) -> Path:
    return tiny_triage(split).save(tmp_path / "bundle")


CASE = {"age": 50, "numbness": True}


def test_a_saved_bundle_lists_every_file_and_loads(bundle: Path, split: Split) -> None:
    listed = json.loads((bundle / BUNDLE_MANIFEST).read_text())["files"]
    on_disk = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()}
    assert set(listed) == on_disk - {BUNDLE_MANIFEST}
    assert all(len(entry["sha256"]) == 64 for entry in listed.values())
    case = validate_case(CASE)
    assert TriageModel.load(bundle).predict_case(case) == tiny_triage(split).predict_case(case)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _threshold(path: Path) -> None:
    meta = json.loads(path.read_text())
    path.write_text(json.dumps(meta | {"red_flag_threshold": 0.9}))


@pytest.mark.parametrize(
    ("file", "damage"),
    [
        ("cause/estimator.txt", _truncate),
        ("red_flag/estimator.txt", _flip),
        ("cause/scorer.json", _flip),
        ("meta.json", _threshold),
    ],
)
def test_a_damaged_or_changed_file_is_refused_naming_it(bundle: Path, file: str, damage) -> None:
    damage(bundle / file)
    with pytest.raises(DamagedModelError, match=rf"{file}: damaged or changed") as caught:
        TriageModel.load(bundle)
    assert "\n" not in str(caught.value)


def test_a_missing_file_or_manifest_is_refused(bundle: Path) -> None:
    (bundle / "red_flag" / "scorer.json").unlink()
    with pytest.raises(DamagedModelError, match=r"red_flag/scorer.json: listed in the manifest"):
        TriageModel.load(bundle)
    (bundle / BUNDLE_MANIFEST).unlink()
    with pytest.raises(DamagedModelError, match=r"manifest.json: no manifest"):
        TriageModel.load(bundle)


def test_a_manifest_pointing_outside_the_bundle_is_refused(bundle: Path) -> None:
    path = bundle / BUNDLE_MANIFEST
    manifest = json.loads(path.read_text())
    manifest["files"]["../elsewhere"] = {"size": 1, "sha256": "0" * 64}
    path.write_text(json.dumps(manifest))
    with pytest.raises(DamagedModelError, match="outside the bundle"):
        read_verified(bundle)


_LOAD_TRUNCATED = """
import sys
from pathlib import Path
from model.triage import TriageModel
from model.integrity import DamagedModelError
bundle = Path(sys.argv[1])
path = bundle / "cause" / "estimator.txt"
path.write_bytes(path.read_bytes()[:200])
try:
    TriageModel.load(bundle)
except DamagedModelError as error:
    print("refused:", error)
"""


def test_a_truncated_lightgbm_file_does_not_kill_the_process(bundle: Path) -> None:
    """LightGBM itself aborts or segfaults on a truncated model file; it never sees one here."""
    result = subprocess.run(
        [sys.executable, "-c", _LOAD_TRUNCATED, str(bundle)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("refused:") and "cause/estimator.txt" in result.stdout


def test_a_tree_manifest_names_every_file_and_its_digest_changes_with_any(tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "a.py").write_text("x = 1\n")
    (tmp_path / "MLmodel").write_text("flavors: {}\n")
    (tmp_path / "code" / "__pycache__").mkdir()
    (tmp_path / "code" / "__pycache__" / "a.pyc").write_bytes(b"cache")
    (tmp_path / "registered_model_meta").write_text("added by MLflow on download")
    manifest = tree_manifest(tmp_path)
    assert set(manifest) == {"MLmodel", "code/a.py"}
    digest = manifest_digest(manifest)
    check_tree(tmp_path, digest, "the copy")
    (tmp_path / "code" / "a.py").write_text("x = 2\n")
    with pytest.raises(DamagedModelError, match="the copy: its files differ"):
        check_tree(tmp_path, digest, "the copy")


# --------------------------------------------------------------------------------------------
# skops: exactly the types a fitted HistGradientBoostingClassifier needs
# --------------------------------------------------------------------------------------------


def test_a_scikit_learn_scorer_loads_with_the_allowlist(split: Split, tmp_path: Path) -> None:
    estimator = HistGradientBoostingClassifier(max_iter=3, max_leaf_nodes=4, early_stopping=False)
    scorer = Scorer("hgb", estimator.fit(split.X, split.red), 2)
    scorer.save(tmp_path / "s")
    import skops.io  # here, not at the top: its import takes 0.6 s of every worker's collection

    untrusted = skops.io.get_untrusted_types(file=tmp_path / "s" / "estimator.skops")
    assert set(untrusted) <= SKOPS_TRUSTED_TYPES
    back = Scorer.load(tmp_path / "s")
    np.testing.assert_array_equal(back.raw(split.X[:50]), scorer.raw(split.X[:50]))


@pytest.mark.parametrize("payload", ["eval", "exec"])
def test_a_crafted_skops_file_holding_a_builtin_function_is_refused(
    bundle: Path, payload: str
) -> None:
    """A skops file naming ``builtins.eval`` passed the old ``builtins.*`` prefix allowlist."""
    folder = bundle / "cause"
    import skops.io

    skops.io.dump({"estimator": getattr(builtins, payload)}, folder / "estimator.skops")
    meta = json.loads((folder / "scorer.json").read_text())
    (folder / "scorer.json").write_text(json.dumps(meta | {"kind": "hgb"}))
    (folder / "estimator.txt").unlink()
    write_bundle_manifest(bundle)  # a consistent manifest: the type check alone must refuse it
    with pytest.raises(
        ValueError, match=rf"estimator.skops: refusing to load .*builtins.{payload}"
    ):
        TriageModel.load(bundle)


# --------------------------------------------------------------------------------------------
# the registry pointer and the cache's housekeeping (no MLflow)
# --------------------------------------------------------------------------------------------


def test_the_pointer_is_fresh_until_the_store_changes(tmp_path: Path) -> None:
    from model.registry_pointer import VersionRecord, pointer_path, read_pointer, write_pointer

    store = tmp_path / "mlflow.db"
    store.write_bytes(b"store")
    assert read_pointer(store) is None
    record = VersionRecord("3", "run", "models:/m-1", "1000", "ab" * 32)
    assert write_pointer(store, {"m@champion": "3"}, {"m/3": record})
    pointer = read_pointer(store)
    assert pointer is not None and pointer.fresh
    assert pointer.lookup("m", "champion", None) == record == pointer.lookup("m", None, "3")
    assert pointer.lookup("m", "other", None) is None
    store.write_bytes(b"store, then a new run")
    stale = read_pointer(store)
    assert stale is not None and not stale.fresh and stale.lookup("m", "champion", None) == record
    pointer_path(store).write_text("{not json")
    assert read_pointer(store) is None
    assert [p.name for p in tmp_path.iterdir()] == sorted(["mlflow.db", "mlflow.db.aliases.json"])


def test_a_copy_replaces_a_damaged_one_and_orphans_go(tmp_path: Path) -> None:
    import os
    import time

    from serve import loading

    cache = tmp_path / "cache"
    folder, work = cache / "m-v1-abc", cache / ".incoming-1"
    for path, text in ((folder, "damaged"), (work, "good")):
        path.mkdir(parents=True)
        (path / "copy.json").write_text(text)
    loading._install(work, folder)
    assert (folder / "copy.json").read_text() == "good"
    assert sorted(p.name for p in cache.iterdir()) == ["m-v1-abc"]
    old, new = cache / ".incoming-old", cache / ".stale-new"
    old.mkdir()
    new.mkdir()
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    loading._clean_orphans(cache)
    assert not old.exists() and new.exists() and folder.exists()
