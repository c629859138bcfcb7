"""The dataset card of ``make data``: Croissant 1.1 JSON-LD with the RAI fields, and a datasheet.

:func:`croissant` describes the files that ``python -m vignettes`` wrote: one ``FileObject`` per
file with its SHA-256, and for Parquet output one ``RecordSet`` of cases whose fields are the
columns of :func:`vignettes.generate`, built from :mod:`vignettes.schema` (name, Croissant
``dataType`` from the field's kind, description from the question), never written by hand. The
Responsible-AI properties (``rai:*``, http://mlcommons.org/croissant/RAI/) say that the data are
synthetic, how they were made, what they distort and what they are not for. :func:`datasheet`
renders the same card and manifest as ``README.md`` for people. :func:`structural_problems` is a
dependency-free check of what the card must hold; ``tests/test_croissant.py`` also runs the
``mlcroissant`` validator when it is installed.

Nothing here reads the clock unless no date is given: ``datePublished`` (required by Croissant)
comes from ``SOURCE_DATE_EPOCH`` when it is set, the reproducible-builds convention, so the same
arguments and date give a byte-identical card.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from vignettes.knowledge import KNOWLEDGE_PATH
from vignettes.schema import (
    CAUSES,
    FIELDS,
    LABELS,
    LATENTS,
    NERVE_ROOTS,
    SERIOUS_CONDITIONS,
    SETTINGS,
    Field,
)

__all__ = [
    "CARD",
    "CONFORMS_TO",
    "CONTEXT",
    "DATASHEET",
    "DISTORTIONS",
    "NOT_CLINICAL",
    "RAI_PROPERTIES",
    "Column",
    "columns",
    "croissant",
    "datasheet",
    "knowledge_sha256",
    "knowledge_sources",
    "sha256_file",
    "structural_problems",
    "write_card",
]

CONFORMS_TO = "http://mlcommons.org/croissant/1.1"
CARD = "croissant.json"
DATASHEET = "README.md"
ARTICLE = "Lower Back Pain Radiates to the Leg: 7 Key Causes, Diagnosis & Treatments"
LICENSE = "https://spdx.org/licenses/MIT.html"
"""The project's own licence (pyproject.toml): the data are its output."""
NOT_CLINICAL = (
    "Not for clinical use: not a medical device, not medical advice, and not to be used to make "
    "decisions about real patients."
)

CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "containedIn": "cr:containedIn",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "prov": "http://www.w3.org/ns/prov#",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}
"""The JSON-LD context of Croissant 1.1 as ``mlcroissant`` writes it, plus ``prov`` (PROV-O, which
the specification uses for provenance)."""

_DATA_TYPE = {"int": "sc:Integer", "float": "sc:Float", "bool": "sc:Boolean", "category": "sc:Text"}
_ENCODING = {
    ".parquet": "application/x-parquet",
    ".jsonl": "application/jsonlines",
    ".ndjson": "application/fhir+ndjson",
    ".json": "application/json",
    ".md": "text/markdown",
}
_SPLIT_URL = {
    "train": "cr:TrainingSplit",
    "validation": "cr:ValidationSplit",
    "test": "cr:TestSplit",
}
CASES = "cases"
SPLITS = "splits"
PARQUET_FILES = "parquet-files"

# --------------------------------------------------------------------------------------------
# The knowledge base's version and sources
# --------------------------------------------------------------------------------------------


def sha256_file(path: Path | str) -> str:
    """The SHA-256 of a file's bytes, in hex (read in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def knowledge_sha256(path: Path | str = KNOWLEDGE_PATH) -> str:
    """The knowledge base's version: the SHA-256 of ``knowledge.toml``.

    The file has no version number of its own; its digest changes exactly when a number or a
    source changes, so it names the knowledge base that generated a dataset.
    """
    return sha256_file(path)


def _sources(table: object, where: str = "") -> Iterable[tuple[str, str]]:
    if isinstance(table, dict):
        for key, value in table.items():
            name = f"{where}.{key}" if where else key
            if isinstance(value, str) and (key == "source" or key.endswith("_source")):
                yield name, value
            else:
                yield from _sources(value, name)


@cache
def _source_counts(path: str) -> tuple[int, int]:
    with open(path, "rb") as handle:
        table = tomllib.load(handle)
    table.pop("uncertainty", None)  # widths for `make sensitivity`, not the generator's numbers
    texts = [text for _, text in _sources(table)]
    return len(texts), sum("assumption" in text.lower() for text in texts)


def knowledge_sources(path: Path | str = KNOWLEDGE_PATH) -> tuple[int, int]:
    """``(sources, assumed)``: the generator's ``source`` entries, and how many state an assumption.

    Counts every ``source`` (or ``*_source``) string of ``knowledge.toml`` outside
    ``[uncertainty]``; ``assumed`` counts those that say "assumption" for some of their numbers.

    Examples
    --------
    >>> sources, assumed = knowledge_sources()
    >>> 0 < assumed <= sources
    True
    """
    return _source_counts(str(Path(path).resolve()))


# --------------------------------------------------------------------------------------------
# The columns, from the schema
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One column of a generated frame, as the card describes it."""

    name: str
    data_type: str
    description: str
    role: str
    """``"id"``, ``"feature"`` (an intake answer), ``"label"`` or ``"latent"``."""


def _one_of(values: Sequence[str]) -> str:
    return "one of " + ", ".join(f"'{v}'" for v in values)


def _feature(field: Field) -> Column:
    question = field.question if field.question.endswith(("?", ".")) else f"{field.question}."
    notes = [question, f"Answer: {field.allowed()}; null when unknown."]
    if field.red_flag:
        notes.append("A red-flag sign.")
    if field.examination:
        notes.append("Needs a clinician's examination.")
    return Column(field.name, _DATA_TYPE[field.kind], " ".join(notes), "feature")


def columns() -> list[Column]:
    """The columns of :func:`vignettes.generate`, in order, described from the schema.

    Examples
    --------
    >>> cols = columns()
    >>> [c.name for c in cols[:3]], cols[2].data_type
    (['case_id', 'setting', 'age'], 'sc:Integer')
    """
    described = {
        "case_id": Column(
            "case_id",
            "sc:Integer",
            "Row index of the case in the seeded dataset: with the seed and setting of the "
            "manifest it rebuilds the case (vignettes.generate(1, seed, setting, start=case_id)).",
            "id",
        ),
        "setting": Column(
            "setting",
            "sc:Text",
            f"Clinical setting whose priors generated the case: {_one_of(SETTINGS)}.",
            "id",
        ),
        "cause": Column(
            "cause",
            "sc:Text",
            "Label: the cause the generator drew for the case (the article's six numbered "
            f"causes and mechanical pain), {_one_of(CAUSES)}.",
            "label",
        ),
        "red_flag": Column(
            "red_flag",
            "sc:Boolean",
            "Label: whether the case has a latent serious condition (serious_condition is not "
            "'none'); its red-flag signs may or may not be reported.",
            "label",
        ),
        "nerve_root": Column(
            "nerve_root",
            "sc:Text",
            f"Latent, never an input: the compressed nerve root, {_one_of(NERVE_ROOTS)} "
            "('none': no radicular involvement).",
            "latent",
        ),
        "serious_condition": Column(
            "serious_condition",
            "sc:Text",
            f"Latent, never an input: the serious condition, {_one_of(SERIOUS_CONDITIONS)}.",
            "latent",
        ),
    }
    order = ("case_id", "setting", *(f.name for f in FIELDS), *LABELS, *LATENTS)
    features = {f.name: _feature(f) for f in FIELDS}
    return [features.get(name) or described[name] for name in order]


# --------------------------------------------------------------------------------------------
# Responsible AI
# --------------------------------------------------------------------------------------------

RAI_PROPERTIES = (
    "rai:dataCollection",
    "rai:dataCollectionType",
    "rai:dataCollectionRawData",
    "rai:dataCollectionMissingData",
    "rai:dataAnnotationProtocol",
    "rai:dataUseCases",
    "rai:dataLimitations",
    "rai:dataBiases",
    "rai:personalSensitiveInformation",
    "rai:dataSocialImpact",
    "rai:dataReleaseMaintenancePlan",
)
"""The RAI properties every card of ours carries (the ones that apply to synthetic data)."""

DISTORTIONS = (
    "Every number comes from one patient-education article, a handful of published figures and "
    "stated assumptions (rai:dataCollectionRawData counts them); where no figure exists the "
    "number is a guess guided by the article's words. `make sensitivity` shows how much the "
    "results move when these numbers move.",
    "Class priors are assumed for the chosen setting: the share of each cause, and of serious "
    "conditions, is what the knowledge base says for that setting, not a measured prevalence.",
    "Each case has exactly one cause; real patients often have several at once (for example a "
    "disc herniation on top of stenosis).",
    "Answers are independent of each other once the latent state (cause, nerve root, serious "
    "condition, age band) is known, except within the few groups of questions answered "
    "together; real symptoms are more entangled.",
    "Missing answers are missing completely at random, at fixed rates (examination signs "
    "together in half the intakes). Real missingness is informative: an examination is skipped "
    "when suspicion is low, an MRI is ordered when it is high.",
    "Labels are the generator's ground truth, exact by construction; real diagnoses are "
    "uncertain and disagree between clinicians.",
    "Serious conditions are rare, and about a third of them show no reported red-flag sign; "
    "red-flag signs also appear as false alarms.",
    "Adults aged 18 to 100 only; sex is female or male; there is no ethnicity, comorbidity, "
    "body weight, occupation, language or geography, so no fairness analysis across them is "
    "possible, and none of their real effects is represented.",
    "One intake per patient and no course over time: no follow-up, treatment or outcome.",
    "The sample narratives are template text with Faker names: plainer and more complete than "
    "what patients write or say.",
)
"""Known distortions: what the data get wrong about real patients, on purpose or by omission."""


def _rai(manifest: Mapping[str, Any], sources: tuple[int, int]) -> dict[str, Any]:
    total, assumed = sources
    return {
        "rai:dataCollection": (
            "No data were collected. Every case is drawn by a seeded, vectorised sampler "
            "(vignettes.generate) from a declarative generative model of the article "
            f"'{ARTICLE}' (vignettes/knowledge.toml): a latent cause, serious condition and "
            "nerve root, age and sex given the cause, then each intake answer given the latent "
            "state, then missing answers at fixed rates."
        ),
        "rai:dataCollectionType": [
            "Synthetic data: software generation from a knowledge base (no real patients)"
        ],
        "rai:dataCollectionRawData": (
            f"The knowledge base vignettes/knowledge.toml (sha256 "
            f"{manifest['knowledge_sha256']}, sciatica-triage {manifest['package_version']}): "
            f"{total} source entries, {assumed} of which state an assumption for some of their "
            "numbers; the others cite the article or a published figure by author, year and "
            "journal."
        ),
        "rai:dataCollectionMissingData": (
            "Null answers are unknown answers, hidden completely at random at the rates of "
            "knowledge.toml [missingness] (examination signs together in half the intakes, "
            "MRI often, age never); nothing was imputed."
        ),
        "rai:dataAnnotationProtocol": (
            "No annotation: cause and red_flag are the generator's own draws, exact by "
            "construction; nerve_root and serious_condition are the latent state behind them."
        ),
        "rai:dataUseCases": [
            "Research only: training, validating and testing triage models for lower back pain "
            "radiating to the leg, comparing them with the article's rules and with the exact "
            "Bayes posterior of the same generator (the ceiling no classifier can beat).",
            "Teaching and software testing of clinical-informatics pipelines (FHIR, CDS Hooks).",
            NOT_CLINICAL,
        ],
        "rai:dataLimitations": [
            "A model's figures on these data describe how well it recovers this generator, not "
            "how it would do on patients.",
            NOT_CLINICAL,
        ],
        "rai:dataBiases": list(DISTORTIONS),
        "rai:personalSensitiveInformation": [
            "None: no real person is in the data. Age and sex are synthetic attributes; the "
            "names in the sample narratives are invented by Faker."
        ],
        "rai:dataSocialImpact": (
            "Synthetic cases let triage methods be studied and shared without patient data. The "
            "risk is over-trust: a model that scores well here may be taken for a clinical tool. "
            "Every file, prediction and card says that it is not."
        ),
        "rai:dataReleaseMaintenancePlan": [
            "Not a release: each `make data` run regenerates the files from the seed, setting "
            "and row ranges in manifest.json, with the knowledge base of the installed version. "
            "A changed knowledge base changes its sha256 here and the rows."
        ],
    }


# --------------------------------------------------------------------------------------------
# The card
# --------------------------------------------------------------------------------------------


def _date(date: dt.date | None) -> dt.date:
    if date is not None:
        return date
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        return dt.datetime.fromtimestamp(int(epoch), dt.UTC).date()
    return dt.datetime.now(dt.UTC).date()


def _file_object(path: Path, root: Path) -> dict[str, Any]:
    name = path.relative_to(root).as_posix()
    return {
        "@type": "cr:FileObject",
        "@id": name,
        "name": name,
        "description": _file_description(name),
        "contentUrl": name,
        "contentSize": f"{path.stat().st_size} B",
        "encodingFormat": _ENCODING.get(path.suffix, "application/octet-stream"),
        "sha256": sha256_file(path),
    }


def _file_description(name: str) -> str:
    stem = Path(name).stem
    if name.endswith(".parquet"):
        return f"The {stem} split: one row per case (the '{CASES}' record set)."
    if name.endswith(".ndjson"):
        split = Path(name).parent.name
        return f"FHIR R4 Bulk-Data {stem} resources of the {split} split."
    if name.endswith(".jsonl"):
        return "Sample narratives, one JSON object per case (case_id, narrative, cause, red_flag)."
    if name.endswith(".md"):
        return "Sample narratives as Markdown, with their labels for review."
    return "What was written and how to rebuild it: seed, setting, row ranges, columns."


def _field(column: Column) -> dict[str, Any]:
    data_type: str | list[str] = column.data_type
    if column.role == "label":
        data_type = [column.data_type, "cr:Label"]
    return {
        "@type": "cr:Field",
        "@id": f"{CASES}/{column.name}",
        "name": column.name,
        "description": column.description,
        "dataType": data_type,
        "source": {"fileSet": {"@id": PARQUET_FILES}, "extract": {"column": column.name}},
    }


def _record_sets(split_files: Mapping[str, str]) -> list[dict[str, Any]]:
    names = "|".join(split_files)
    splits = {
        "@type": "cr:RecordSet",
        "@id": SPLITS,
        "name": SPLITS,
        "description": "The splits: contiguous, non-overlapping row ranges of one seeded dataset.",
        "dataType": "cr:Split",
        "key": {"@id": f"{SPLITS}/name"},
        "field": [
            {"@type": "cr:Field", "@id": f"{SPLITS}/name", "name": "name", "dataType": "sc:Text"},
            {"@type": "cr:Field", "@id": f"{SPLITS}/url", "name": "url", "dataType": "sc:URL"},
        ],
        "data": [{f"{SPLITS}/name": s, f"{SPLITS}/url": _SPLIT_URL[s]} for s in split_files],
    }
    split_field = {
        "@type": "cr:Field",
        "@id": f"{CASES}/split",
        "name": "split",
        "description": "The split the case belongs to (from its file's name).",
        "dataType": "sc:Text",
        "references": {"field": {"@id": f"{SPLITS}/name"}},
        "source": {
            "fileSet": {"@id": PARQUET_FILES},
            "extract": {"fileProperty": "filename"},
            # The suffix is optional: mlcroissant applies the transform to the referenced
            # split names too when it joins the two record sets.
            "transform": {"regex": f"^({names})(?:\\.parquet)?$"},
        },
    }
    cases = {
        "@type": "cr:RecordSet",
        "@id": CASES,
        "name": CASES,
        "description": (
            "One synthetic case per record: identifiers, the intake answers (the contract of "
            "vignettes/schema.py), the labels and the latent state."
        ),
        "key": {"@id": f"{CASES}/case_id"},
        "field": [*(_field(c) for c in columns()), split_field],
    }
    return [splits, cases]


def _check_parquet_columns(path: Path) -> None:
    import pyarrow.parquet as pq

    found = pq.read_schema(path).names
    expected = [c.name for c in columns()]
    if found != expected:
        raise ValueError(f"{path}: columns {found} differ from the schema's {expected}")


def croissant(
    paths: Iterable[Path | str],
    manifest: Mapping[str, Any],
    *,
    root: Path | str,
    date_published: dt.date | None = None,
) -> dict[str, Any]:
    """The Croissant 1.1 card, with RAI fields, of the files ``python -m vignettes`` wrote.

    Parameters
    ----------
    paths : iterable of path-like
        The files written, all inside ``root`` (splits, narratives, manifest).
    manifest : mapping
        What :func:`vignettes.__main__.manifest` returns for the run (seed, setting, splits,
        package version, ``knowledge_sha256``).
    root : path-like
        The output directory; every ``contentUrl`` is relative to it, where the card lives.
    date_published : datetime.date, optional
        Default: ``SOURCE_DATE_EPOCH`` if set, else today (UTC).

    Returns
    -------
    dict
        JSON-ready JSON-LD: ``conformsTo`` :data:`CONFORMS_TO`, a ``FileObject`` with
        ``sha256`` per file; for Parquet a ``FileSet`` of the split files and the ``cases``
        record set (one field per column, from the schema, plus the split) with a ``splits``
        record set of type ``cr:Split``; the RAI properties of :data:`RAI_PROPERTIES`.

    Raises
    ------
    ValueError
        If a Parquet file's columns are not the schema's.
    """
    root = Path(root)
    files = [Path(p) for p in paths]
    distribution: list[dict[str, Any]] = [_file_object(p, root) for p in files]
    record_sets: list[dict[str, Any]] = []
    data_format = manifest.get("format", "parquet")
    split_files = {
        name: split["file"]
        for name, split in manifest["splits"].items()
        if str(split["file"]).endswith(".parquet")
    }
    if data_format == "parquet" and split_files:
        for path in files:
            if path.suffix == ".parquet":
                _check_parquet_columns(path)
        distribution.append(
            {
                "@type": "cr:FileSet",
                "@id": PARQUET_FILES,
                "name": PARQUET_FILES,
                "description": "The split files together (each is also a FileObject above).",
                "encodingFormat": _ENCODING[".parquet"],
                "includes": list(split_files.values()),
            }
        )
        record_sets = _record_sets(split_files)
    rows = ", ".join(f"{name} {s['rows']:,}" for name, s in manifest["splits"].items())
    version = manifest["package_version"]
    command = _command(manifest)
    card: dict[str, Any] = {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": CONFORMS_TO,
        "name": "sciatica-triage-vignettes",
        "description": (
            "Synthetic patient vignettes of lower back pain radiating to the leg, for research on "
            f"triage models: {manifest['n_total']:,} cases ({rows}), seed {manifest['seed']}, "
            f"setting {manifest['setting']}, {data_format}. No real patients. {NOT_CLINICAL}"
        ),
        "creator": {"@type": "sc:Organization", "name": "sciatica-triage (research software)"},
        "datePublished": _date(date_published).isoformat(),
        "license": LICENSE,
        # Required by Croissant: the dataset's page. The data are not published anywhere; their
        # page is the datasheet beside the card (a reference relative to the card).
        "url": DATASHEET,
        "keywords": [
            "synthetic data",
            "sciatica",
            "lower back pain",
            "triage",
            "not for clinical use",
        ],
        "inLanguage": "en",
        "isAccessibleForFree": True,
        "citeAs": (
            "@misc{sciatica_triage_vignettes, title={sciatica-triage synthetic vignettes}, "
            f"note={{{command}; knowledge base sha256 {manifest['knowledge_sha256']}}}}}"
        ),
        "prov:wasGeneratedBy": {
            "@type": "prov:Activity",
            "prov:label": command,
            "prov:used": {
                "@type": "prov:Entity",
                "prov:label": "vignettes/knowledge.toml",
                "sha256": manifest["knowledge_sha256"],
            },
        },
        "prov:wasAttributedTo": {
            "@type": "prov:SoftwareAgent",
            "prov:label": f"sciatica-triage {version}",
        },
        **_rai(manifest, knowledge_sources()),
        "distribution": distribution,
        "recordSet": record_sets,
    }
    if version != "unknown":
        card["version"] = version
    return card


def _command(manifest: Mapping[str, Any]) -> str:
    splits = manifest["splits"]
    n = manifest["n_total"]
    parts = [
        f"python -m vignettes --n {n} --seed {manifest['seed']} --setting {manifest['setting']}",
        f"--format {manifest.get('format', 'parquet')}",
    ]
    if n:
        validation, test = splits["validation"]["rows"] / n, splits["test"]["rows"] / n
        parts.append(f"--validation {validation:g} --test {test:g}")
    if manifest.get("fhir_posterior"):
        parts.append("--fhir-posterior")
    narratives = manifest.get("narratives") or {}
    parts.append(f"--narratives {narratives.get('count', 0)}")
    return " ".join(parts)


# --------------------------------------------------------------------------------------------
# Structural check (no dependency) and the datasheet
# --------------------------------------------------------------------------------------------

_REQUIRED = ("conformsTo", "name", "description", "license", "url", "creator", "datePublished")
"""Dataset properties Croissant 1.1 requires besides ``@context`` and ``@type``."""
_NAMESPACES = {
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "dct": "http://purl.org/dc/terms/",
    "sc": "https://schema.org/",
}
_MAPPED = ("conformsTo", "recordSet", "field", "source", "extract", "fileSet", "key", "dataType")


def structural_problems(card: Mapping[str, Any]) -> list[str]:
    """What the card lacks of Croissant 1.1 and of our RAI fields; empty when nothing.

    Checks ``@context`` (the ``cr``, ``rai``, ``dct`` and ``sc`` namespaces and the terms it
    must map), ``@type``, the required dataset properties, ``conformsTo`` naming
    :data:`CONFORMS_TO`, the properties of :data:`RAI_PROPERTIES`, that each ``FileObject`` has
    a ``contentUrl`` and a 64-hex-digit ``sha256``, that every field has a ``dataType`` and that
    every ``@id`` a source or a reference names exists. It reads no data: ``mlcroissant
    validate`` checks more, where it is installed.

    Examples
    --------
    >>> structural_problems({"@type": "sc:Dataset"})[:2]
    ['missing @context', 'missing conformsTo']
    """
    problems: list[str] = []
    context = card.get("@context")
    if not isinstance(context, Mapping):
        problems.append("missing @context")
    else:
        problems += [
            f"@context: {prefix} should be {iri}"
            for prefix, iri in _NAMESPACES.items()
            if context.get(prefix) != iri
        ]
        problems += [f"@context: no mapping for {key}" for key in _MAPPED if key not in context]
    if card.get("@type") != "sc:Dataset":
        problems.append("@type should be sc:Dataset")
    problems += [f"missing {key}" for key in _REQUIRED if key not in card]
    conforms = card.get("conformsTo")
    if conforms is not None and CONFORMS_TO not in (
        conforms if isinstance(conforms, list) else [conforms]
    ):
        problems.append(f"conformsTo should name {CONFORMS_TO}")
    problems += [f"missing {key}" for key in RAI_PROPERTIES if not card.get(key)]
    ids = set()
    for resource in card.get("distribution", []):
        ids.add(resource.get("@id"))
        if resource.get("@type") == "cr:FileObject":
            if not resource.get("contentUrl"):
                problems.append(f"{resource.get('@id')}: no contentUrl")
            if not re.fullmatch(r"[0-9a-f]{64}", str(resource.get("sha256", ""))):
                problems.append(f"{resource.get('@id')}: sha256 is not 64 hex digits")
    fields = [f for record_set in card.get("recordSet", []) for f in record_set.get("field", [])]
    field_ids = {f.get("@id") for f in fields}
    for f in fields:
        if not f.get("dataType"):
            problems.append(f"{f.get('@id')}: no dataType")
        source = f.get("source", {})
        for kind in ("fileObject", "fileSet"):
            if kind in source and source[kind].get("@id") not in ids:
                problems.append(f"{f.get('@id')}: source {source[kind].get('@id')} not found")
        ref = f.get("references", {}).get("field", {}).get("@id")
        if ref is not None and ref not in field_ids:
            problems.append(f"{f.get('@id')}: references {ref} not found")
    return problems


def _listed(items: object) -> list[str]:
    return [f"- {item}" for item in (items if isinstance(items, list) else [items])]


def datasheet(card: Mapping[str, Any], manifest: Mapping[str, Any]) -> str:
    """``README.md`` of the output directory: a datasheet rendered from the card and manifest."""
    sources, assumed = knowledge_sources()
    fields = {
        f["name"]: f for rs in card.get("recordSet", []) if rs["@id"] == CASES for f in rs["field"]
    }
    lines = [
        "# Datasheet: sciatica-triage synthetic vignettes",
        "",
        f"> **Synthetic research data: no real patients. {NOT_CLINICAL}**",
        "",
        f"The machine-readable card is [`{CARD}`]({CARD}) (Croissant 1.1 with the Responsible-AI "
        "fields); this page renders the same content. Both are rewritten by every `make data`.",
        "",
        "## What was generated",
        "",
        card["description"],
        "",
        "| file | rows | bytes | sha256 |",
        "|---|---|---|---|",
    ]
    rows = {str(s["file"]): s["rows"] for s in manifest["splits"].values()}
    for resource in card["distribution"]:
        if resource["@type"] != "cr:FileObject":
            continue
        size = resource["contentSize"].removesuffix(" B")
        count = rows.get(resource["contentUrl"], "")
        count = f"{count:,}" if isinstance(count, int) else count
        lines.append(f"| `{resource['contentUrl']}` | {count} | {size} | `{resource['sha256']}` |")
    lines += [
        "",
        "Check a file with `sha256sum FILE` against this table (or the card's `sha256`).",
        "",
        "## How",
        "",
        f"    {card['prov:wasGeneratedBy']['prov:label']}",
        "",
        card["rai:dataCollection"],
        "",
        f"- Software: {card['prov:wasAttributedTo']['prov:label']}.",
        f"- Knowledge-base version: `vignettes/knowledge.toml` sha256 "
        f"`{manifest['knowledge_sha256']}`. Its {sources} source entries cite the article, a "
        f"published figure by author, year and journal, or a stated assumption ({assumed} state "
        "an assumption for some of their numbers).",
        f"- Rows come in blocks of {manifest['block_rows']:,}, each with its own random stream "
        "from (seed, setting, block): any split, or any single case, can be rebuilt alone.",
        "",
        "## Intended use",
        "",
        *_listed(card["rai:dataUseCases"]),
        "",
        "## Known distortions and biases",
        "",
        *_listed(card["rai:dataBiases"]),
        "",
        "## Limitations",
        "",
        *_listed(card["rai:dataLimitations"]),
        "",
        f"Missing data: {card['rai:dataCollectionMissingData']}",
        "",
        f"Personal information: {' '.join(card['rai:personalSensitiveInformation'])}",
        "",
    ]
    if fields:
        lines += [
            "## Columns",
            "",
            "| column | Croissant type | description |",
            "|---|---|---|",
        ]
        for name, f in fields.items():
            kind = f["dataType"] if isinstance(f["dataType"], str) else ", ".join(f["dataType"])
            text = f["description"].replace("|", "\\|")
            lines.append(f"| `{name}` | {kind} | {text} |")
        lines.append("")
    else:
        lines += [
            "## Columns",
            "",
            "FHIR R4 resources: each intake answer is an item of the SDC Questionnaire "
            "(docs/fhir/Questionnaire-sciatica-intake.json in the repository).",
            "",
        ]
    lines += [
        "## Maintenance",
        "",
        *_listed(card["rai:dataReleaseMaintenancePlan"]),
        "",
    ]
    return "\n".join(lines)


def write_card(
    out: Path | str,
    paths: Iterable[Path | str],
    manifest: Mapping[str, Any],
    *,
    date_published: dt.date | None = None,
) -> tuple[Path, Path]:
    """Write ``croissant.json`` and ``README.md`` into ``out``; return their paths.

    Raises
    ------
    ValueError
        If the card fails :func:`structural_problems` (a bug: it is built from the schema).
    """
    import json

    out = Path(out)
    card = croissant(paths, manifest, root=out, date_published=date_published)
    problems = structural_problems(card)
    if problems:
        raise ValueError(f"the Croissant card is malformed: {problems}")
    card_path, sheet_path = out / CARD, out / DATASHEET
    card_path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    sheet_path.write_text(datasheet(card, manifest), encoding="utf-8")
    return card_path, sheet_path
