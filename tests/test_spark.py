"""Scoring that scales out: the registered champion as a Spark UDF (``local[2]`` session).

Spark needs a Java runtime; ``.ci/run`` installs one from the distribution's packages. Elsewhere
the test is skipped, with the reason, when Java is absent.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

import vignettes
from model.triage import TriageModel

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java; none on PATH"),
]
pyspark = pytest.importorskip("pyspark", reason="pyspark is in the dev extra")

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
