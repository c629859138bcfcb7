"""Generated vignettes as FHIR R4 Bundles and Bulk-Data ndjson."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

import vignettes
from tests.fhir_bindings import assert_required_codes, binding_errors
from vignettes.fhir import (
    HTEST,
    _BackgroundWriter,
    _birth_date_is_consistent,
    _Case,
    _uuid5,
    bundle_lines,
    export_ndjson,
    resource_lines,
    to_fhir,
    write_ndjson,
)
from vignettes.fhir_common import ID_NAMESPACE

SEED = 19


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """1,000 cases: 700 from primary care and 300 from a spine clinic (more serious ones)."""
    return pd.concat(
        [
            vignettes.generate(700, seed=SEED),
            vignettes.generate(300, seed=SEED, setting="spine_clinic"),
        ],
        ignore_index=True,
    )


@pytest.fixture(scope="module")
def bundles(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return to_fhir(frame, seed=SEED, posterior=True)


def _by_type(bundle: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for entry in bundle["entry"]:
        out.setdefault(entry["resource"]["resourceType"], []).append(entry["resource"])
    return out


def test_every_resource_of_1000_cases_validates_with_the_r4b_models(
    bundles: list[dict[str, Any]],
) -> None:
    assert len(bundles) == 1000
    for bundle in bundles:
        # The bundle's model validates each entry's resource with the model of its type (the
        # test below shows it), so each resource is validated once, not again on its own.
        Bundle.model_validate(bundle)
        assert_required_codes(bundle)  # the codes the models do not check
        for entry in bundle["entry"]:
            assert entry["resource"]["meta"]["security"] == [HTEST]


def test_a_code_outside_a_required_value_set_is_caught() -> None:
    """What the R4B models let through, the binding check does not: a wrong code anywhere in
    a bundle, a contained resource or a nested item is named by its path."""
    patient = {"resourceType": "Patient", "gender": "banana"}
    qr = {"resourceType": "QuestionnaireResponse", "status": "nope", "contained": [patient]}
    questionnaire = {
        "resourceType": "Questionnaire",
        "status": "active",
        "item": [{"linkId": "g", "type": "group", "item": [{"linkId": "x", "type": "yes-no"}]}],
    }
    bundle = {"resourceType": "Bundle", "type": "collection"}
    bundle["entry"] = [{"resource": qr}, {"resource": questionnaire}]
    assert binding_errors(bundle) == [
        "QuestionnaireResponse.status: 'nope'",
        "Patient.gender: 'banana'",
        "Questionnaire.item.type: 'yes-no'",
    ]
    assert binding_errors(questionnaire | {"item": []}) == []


def test_a_bundle_s_model_validates_each_resource_with_the_model_of_its_type(
    bundles: list[dict[str, Any]],
) -> None:
    """Why the test above validates each resource once, as part of its bundle: an entry's
    resource is parsed by the model of its ``resourceType``, which refuses what it lacks."""
    bundle = bundles[0]
    parsed = Bundle.model_validate(bundle)
    for entry, raw in zip(parsed.entry, bundle["entry"], strict=True):
        assert type(entry.resource) is get_fhir_model_class(raw["resource"]["resourceType"])
    for i in range(len(bundle["entry"])):
        broken = copy.deepcopy(bundle)
        broken["entry"][i]["resource"]["notAnElement"] = 1
        with pytest.raises(ValidationError, match=rf"entry\.{i}\.resource\.notAnElement"):
            Bundle.model_validate(broken)


def test_references_resolve_inside_each_bundle(bundles: list[dict[str, Any]]) -> None:
    def references(value: Any) -> list[str]:
        if isinstance(value, dict):
            found = [value["reference"]] if isinstance(value.get("reference"), str) else []
            return found + [r for v in value.values() for r in references(v)]
        if isinstance(value, list):
            return [r for v in value for r in references(v)]
        return []

    for bundle in bundles:
        full_urls = {e["fullUrl"] for e in bundle["entry"]}
        found = references([e["resource"] for e in bundle["entry"]])
        assert found and set(found) <= full_urls
        for entry in bundle["entry"]:
            assert entry["fullUrl"] == f"urn:uuid:{entry['resource']['id']}"
            assert entry["request"]["url"].endswith("/" + entry["resource"]["id"])


def test_the_response_is_the_case_and_the_conditions_the_ground_truth(
    frame: pd.DataFrame, bundles: list[dict[str, Any]]
) -> None:
    for (_, row), bundle in zip(frame.iterrows(), bundles, strict=True):
        resources = _by_type(bundle)
        (qr,) = resources["QuestionnaireResponse"]
        assert vignettes.from_questionnaire_response(qr) == vignettes.validate_case(row)
        assert qr["item"] == vignettes.to_questionnaire_response(row)["item"]
        conditions = resources["Condition"]
        assert len(conditions) == 1 + (row["serious_condition"] != "none")
        cause = vignettes.codes.concept("cause", row["cause"])
        assert conditions[0]["code"] == cause
        statuses = {c["verificationStatus"]["coding"][0]["code"] for c in conditions}
        assert statuses == {"confirmed"}
        sides = row["sides"]
        if pd.isna(sides):
            assert "bodySite" not in conditions[0]
        else:
            assert (
                conditions[0]["bodySite"][0]["text"]
                == {
                    "left": "left leg",
                    "right": "right leg",
                    "both": "both legs",
                }[sides]
            )
        if row["serious_condition"] != "none":
            serious = vignettes.codes.concept("serious_condition", row["serious_condition"])
            assert conditions[1]["code"] == serious
        (patient,) = resources["Patient"]
        sex = row["sex"]
        assert patient["gender"] == ("unknown" if pd.isna(sex) else sex)
        assert patient["name"][0]["family"] and patient["name"][0]["given"][0]
        (encounter,) = resources["Encounter"]
        assert encounter["serviceType"]["text"] == row["setting"].replace("_", " ")


def test_birth_dates_make_each_patient_exactly_their_age(frame: pd.DataFrame) -> None:
    case = _Case(frame, SEED)
    assert _birth_date_is_consistent(*case.age_check)
    encounter = pd.to_datetime(pd.Series(case.encounter_date))
    birth = pd.to_datetime(pd.Series(case.birth_date))
    before = (encounter.dt.month < birth.dt.month) | (
        (encounter.dt.month == birth.dt.month) & (encounter.dt.day < birth.dt.day)
    )
    age = encounter.dt.year - birth.dt.year - before.astype(int)
    assert (age.to_numpy() == frame["age"].to_numpy(dtype=int)).all()


def test_the_posterior_risk_assessment_holds_the_exact_posterior(
    frame: pd.DataFrame, bundles: list[dict[str, Any]]
) -> None:
    post = vignettes.posterior(frame)
    for i in (0, 1, 500, 999):
        (risk,) = _by_type(bundles[i])["RiskAssessment"]
        values = [p["probabilityDecimal"] for p in risk["prediction"]]
        expected = [*post.iloc[i][list(vignettes.CAUSES)], post.iloc[i]["red_flag"]]
        assert values == pytest.approx(expected, abs=0, rel=1e-15)


def test_the_text_is_json_dumps_of_the_dicts(frame: pd.DataFrame) -> None:
    lines = bundle_lines(frame.head(50), seed=SEED)
    for text in lines:
        assert text == json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)


def test_uuid5_is_the_standard_one() -> None:
    import uuid

    keys = ["a", "7|primary_care|0|Patient", "x" * 100]
    assert list(_uuid5(keys)) == [str(uuid.uuid5(ID_NAMESPACE, k)) for k in keys]


def test_ndjson_lines_parse_and_the_same_seed_gives_byte_identical_files(
    frame: pd.DataFrame, tmp_path: Path
) -> None:
    first = write_ndjson(frame, tmp_path / "a", seed=SEED, posterior=True)
    second = write_ndjson(frame, tmp_path / "b", seed=SEED, posterior=True)
    assert sorted(first) == [
        "Condition",
        "Encounter",
        "Patient",
        "QuestionnaireResponse",
        "RiskAssessment",
    ]
    ids: dict[str, set[str]] = {}
    for kind, path in first.items():
        assert path.read_bytes() == second[kind].read_bytes()
        for line in path.read_text(encoding="utf-8").splitlines():
            resource = json.loads(line)
            assert resource["resourceType"] == kind
            ids.setdefault(kind, set()).add(resource["id"])
    assert len(ids["Patient"]) == len(frame)
    for line in first["Condition"].read_text(encoding="utf-8").splitlines()[:50]:
        resource = json.loads(line)
        assert resource["subject"]["reference"].removeprefix("Patient/") in ids["Patient"]
        qr = resource["evidence"][0]["detail"][0]["reference"]
        assert qr.removeprefix("QuestionnaireResponse/") in ids["QuestionnaireResponse"]
    other = write_ndjson(frame.head(10), tmp_path / "c", seed=SEED + 1)
    assert (
        other["Patient"].read_text().splitlines()[0] != first["Patient"].read_text().splitlines()[0]
    )


def test_ndjson_is_the_bundles_with_relative_references(frame: pd.DataFrame) -> None:
    lines = resource_lines(frame.head(20), seed=SEED)
    bundles = to_fhir(frame.head(20), seed=SEED)
    patients = [json.loads(line) for line in lines["Patient"]]
    assert patients == [_by_type(b)["Patient"][0] for b in bundles]
    encounter = json.loads(lines["Encounter"][0])
    assert encounter["subject"]["reference"] == f"Patient/{patients[0]['id']}"


def test_every_ndjson_line_is_its_bundle_entry_with_relative_references(
    frame: pd.DataFrame, tmp_path: Path
) -> None:
    """The ndjson writer's one-join fast path gives exactly the Bundles' resources, line by line,
    in row order (a case's cause Condition before its serious one), with ``Type/id``
    references instead of ``urn:uuid:``."""
    sample = frame.iloc[::7]  # both settings, with and without a serious condition
    expected: dict[str, list[str]] = {}
    for bundle in to_fhir(sample, seed=SEED, posterior=True):
        relative = {e["fullUrl"]: f"{e['resource']['resourceType']}/{e['resource']['id']}"
                    for e in bundle["entry"]}  # fmt: skip
        for entry in bundle["entry"]:
            text = json.dumps(entry["resource"], separators=(",", ":"), ensure_ascii=False)
            for urn, ref in relative.items():
                text = text.replace(f'"{urn}"', f'"{ref}"')
            expected.setdefault(entry["resource"]["resourceType"], []).append(text)
    lines = resource_lines(sample, seed=SEED, posterior=True)
    assert lines == expected
    assert sum(sample["serious_condition"] != "none") == len(lines["Condition"]) - len(sample)
    written = write_ndjson(sample, tmp_path, seed=SEED, posterior=True)
    for kind, path in written.items():
        assert path.read_text(encoding="utf-8") == "".join(f"{line}\n" for line in lines[kind])


def test_partitions_give_the_same_union(tmp_path: Path) -> None:
    whole = resource_lines(vignettes.generate(300, seed=SEED), seed=SEED)
    parts = [vignettes.generate_partition(k, 4, 300, seed=SEED) for k in range(4)]
    pieces = [resource_lines(p, seed=SEED) for p in parts]
    for kind, lines in whole.items():
        assert sorted(lines) == sorted(line for piece in pieces for line in piece[kind])
    assert np.array_equal(
        bundle_lines(parts[1], seed=SEED),
        bundle_lines(vignettes.generate(300, seed=SEED), seed=SEED)[75:150],
    )


def test_the_chunked_background_export_is_the_frame_written_at_once(tmp_path: Path) -> None:
    """Chunks written on the writer thread while the next is rendered give, in order, the
    bytes of the whole frame written in one call, whatever the chunk size."""
    whole = write_ndjson(vignettes.generate(500, seed=SEED, start=40), tmp_path / "w", seed=SEED)
    for rows in (64, 500):
        paths = export_ndjson(500, tmp_path / f"c{rows}", SEED, start=40, chunk_rows=rows)
        assert sorted(paths) == sorted(whole)
        for kind, path in paths.items():
            assert path.read_bytes() == whole[kind].read_bytes(), (rows, kind)


def test_a_failed_write_is_raised_not_lost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full_disk(self: Any, texts: dict[str, str]) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_BackgroundWriter, "_append", full_disk)
    with pytest.raises(OSError, match="No space left"):
        export_ndjson(100, tmp_path, SEED, chunk_rows=40)
