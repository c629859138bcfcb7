"""Work that scales out on Spark (one ``local[2]`` session for the module): the registered
champion as a Spark UDF, and the FHIR ndjson export as a Spark job, whose lines do not depend on
the partitioning and are those of the single-process export.

Spark needs a Java runtime; ``.ci/run`` installs one from the distribution's packages. Elsewhere
the tests are skipped, with the reason, when Java or pyspark is absent. Both parts share this
module so that the suite starts one Spark session (a JVM, about 7 s), not two.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import vignettes
from model.triage import TriageModel
from vignettes.fhir import RESOURCE_TYPES, export_ndjson, resource_lines
from vignettes.fhir_spark import main, spark_ndjson

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java; none on PATH"),
]
pyspark = pytest.importorskip("pyspark", reason="pyspark is in the dev extra")

# --- the champion as a Spark UDF ---------------------------------------------------------------

SPARK_TYPES = {"long": "bigint", "double": "double", "boolean": "boolean", "string": "string"}


def test_champion_scores_a_spark_dataframe(trained, spark) -> None:
    import mlflow
    from pyspark.sql.functions import col, struct

    from training.registry import input_schema

    uri = "models:/sciatica-triage@champion"
    udf = mlflow.pyfunc.spark_udf(spark, uri, env_manager="local")
    cases = vignettes.generate(300, seed=77)[list(vignettes.FIELD_NAMES)]
    records = pd.DataFrame(json.loads(cases.to_json(orient="records")))
    ddl = ", ".join(f"{c.name} {SPARK_TYPES[c.type.name]}" for c in input_schema().inputs)
    frame = spark.createDataFrame(records, schema=ddl).repartition(3)
    scored = frame.withColumn("pred", udf(struct(*[col(c) for c in frame.columns])))
    out = scored.select("age", "pred.*").toPandas()
    assert len(out) == 300
    local = mlflow.pyfunc.load_model(uri).unwrap_python_model().model
    assert isinstance(local, TriageModel)
    expected = local.predict(records)
    # Spark may reorder rows across partitions: compare on a key that is unique enough.
    out = out.sort_values(["age", "prob_disc_herniation"]).reset_index(drop=True)
    expected = expected.assign(age=records["age"]).sort_values(["age", "prob_disc_herniation"])
    expected = expected.reset_index(drop=True)
    np.testing.assert_allclose(out["prob_disc_herniation"], expected["prob_disc_herniation"])
    assert (out["cause"] == expected["cause"]).all()
    assert (out["red_flag"] == expected["red_flag"]).all()
    np.testing.assert_allclose(out["attr_age"], expected["attr_age"], atol=1e-9)


# --- the FHIR export as a Spark job ------------------------------------------------------------

SEED = 19
N = vignettes.BLOCK_ROWS + 808  # two random blocks; partition edges fall inside them


def _read(out: Path) -> dict[str, list[str]]:
    """The lines of each resource type's folder, sorted (files and order are Spark's)."""
    found: dict[str, list[str]] = {}
    for folder in sorted(out.glob("resourceType=*")):
        kind = folder.name.removeprefix("resourceType=")
        lines = [
            line
            for part in sorted(folder.glob("part-*"))
            for line in part.read_text(encoding="utf-8").splitlines()
        ]
        found[kind] = sorted(lines)
    return found


@pytest.fixture(scope="module")
def written(spark, tmp_path_factory: pytest.TempPathFactory) -> dict[int, dict[str, list[str]]]:
    root = tmp_path_factory.mktemp("spark-fhir")
    out = {}
    for partitions in (2, 5):
        path = root / f"p{partitions}"
        spark_ndjson(spark, N, path, SEED, partitions=partitions, posterior=True)
        out[partitions] = _read(path)
    return out


def test_the_union_does_not_depend_on_the_partitioning(written) -> None:
    two, five = written[2], written[5]
    assert sorted(two) == sorted(RESOURCE_TYPES)
    assert two == five  # the same lines, each as often, per resource type
    assert len(two["Patient"]) == N


def test_the_lines_are_those_of_the_single_process_export(written, tmp_path: Path) -> None:
    paths = export_ndjson(N, tmp_path, SEED, posterior=True)
    for kind, path in paths.items():
        assert sorted(path.read_text(encoding="utf-8").splitlines()) == written[2][kind], kind


def test_every_line_is_its_resource_type_and_references_resolve(written) -> None:
    resources = {kind: [json.loads(line) for line in lines] for kind, lines in written[5].items()}
    ids = {}
    for kind, items in resources.items():
        assert {r["resourceType"] for r in items} == {kind}
        ids[kind] = {r["id"] for r in items}
        assert len(ids[kind]) == len(items), f"{kind}: repeated ids"

    def resolves(reference: str) -> bool:
        kind, _, rid = reference.partition("/")
        return rid in ids.get(kind, set())

    for encounter in resources["Encounter"]:
        assert resolves(encounter["subject"]["reference"])
    for kind in ("QuestionnaireResponse", "Condition", "RiskAssessment"):
        for resource in resources[kind]:
            assert resolves(resource["subject"]["reference"])
            assert resolves(resource["encounter"]["reference"])
    for qr in resources["QuestionnaireResponse"]:
        assert qr["subject"]["reference"].startswith("Patient/")
    for condition in resources["Condition"]:
        (evidence,) = condition["evidence"][0]["detail"]
        assert evidence["reference"].startswith("QuestionnaireResponse/")
        assert resolves(evidence["reference"])
    for risk in resources["RiskAssessment"]:
        assert all(resolves(b["reference"]) for b in risk["basis"])


def test_the_cli_runs_on_the_active_session(spark, tmp_path: Path) -> None:
    out = tmp_path / "cli"
    args = ["--n", "300", "--seed", str(SEED), "--partitions", "3", "--out", str(out)]
    assert main(args) == 0
    assert spark.range(3).count() == 3  # the CLI did not stop a session it did not start
    whole = resource_lines(vignettes.generate(300, seed=SEED), seed=SEED)
    assert _read(out) == {kind: sorted(lines) for kind, lines in whole.items()}
    from pyspark.errors import AnalysisException

    with pytest.raises(AnalysisException, match="already exists"):
        main(args)
