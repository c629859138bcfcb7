"""Standard codes for the project's names, from ``vignettes/codes.toml`` (each with its source).

The table maps each cause, serious condition, finding, advice item and laterality to ICD-10
(WHO) and, where verified against a public code-system page, SNOMED CT or LOINC. A name with no
verified code gets a ``text``-only CodeableConcept: a code is never guessed.
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from typing import Any

from vignettes.knowledge import KnowledgeError

__all__ = ["CODES_PATH", "SYSTEMS", "cause_code", "coded", "concept", "load_codes"]

CODES_PATH = Path(__file__).with_name("codes.toml")
SYSTEMS: dict[str, str] = {
    "icd10": "http://hl7.org/fhir/sid/icd-10",
    "snomed": "http://snomed.info/sct",
    "loinc": "http://loinc.org",
}
"""The code systems of ``codes.toml``'s keys, by their FHIR canonical URIs (WHO ICD-10 is
``http://hl7.org/fhir/sid/icd-10``; ICD-10-CM would be ``.../icd-10-cm``)."""
_KINDS = ("cause", "serious_condition", "finding", "advice", "laterality")
_ENTRY_KEYS = {"text", "note", *SYSTEMS}
_CODE_KEYS = {"code", "display", "source"}


def _check(table: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    unknown = set(table) - set(_KINDS)
    if unknown:
        raise KnowledgeError(f"codes.toml: unknown tables {sorted(unknown)}; allowed {_KINDS}")
    for kind, entries in table.items():
        for name, entry in entries.items():
            where = f"codes.toml [{kind}.{name}]"
            if "text" not in entry:
                raise KnowledgeError(f"{where}: needs a text")
            extra = set(entry) - _ENTRY_KEYS
            if extra:
                raise KnowledgeError(f"{where}: unknown keys {sorted(extra)}")
            for system in SYSTEMS:
                code = entry.get(system)
                if code is None:
                    continue
                if set(code) != _CODE_KEYS or not all(isinstance(v, str) for v in code.values()):
                    raise KnowledgeError(f"{where}.{system}: needs exactly code, display, source")
    return table


@cache
def load_codes(path: Path | str = CODES_PATH) -> dict[str, dict[str, dict[str, Any]]]:
    """Read and check ``codes.toml``: ``{kind: {name: entry}}``."""
    with open(path, "rb") as handle:
        return _check(tomllib.load(handle))


def coded(kind: str, name: str) -> dict[str, Any] | None:
    """The table's entry for one name, or ``None`` when it has none."""
    return load_codes().get(kind, {}).get(name)


def concept(kind: str, name: str, fallback_text: str | None = None) -> dict[str, Any]:
    """A FHIR CodeableConcept for a name: its verified codings and text, or text only.

    Examples
    --------
    >>> concept("cause", "spinal_stenosis")["coding"][0]["code"]
    'M48.0'
    >>> concept("advice", "no_such_advice", fallback_text="some advice")
    {'text': 'some advice'}
    """
    entry = coded(kind, name)
    if entry is None:
        return {"text": fallback_text or name.replace("_", " ")}
    codings = [
        {"system": uri, "code": entry[system]["code"], "display": entry[system]["display"]}
        for system, uri in SYSTEMS.items()
        if system in entry
    ]
    out: dict[str, Any] = {"coding": codings} if codings else {}
    out["text"] = entry["text"]
    return out


def cause_code(cause: str) -> dict[str, str] | None:
    """The ICD-10 (WHO) code of a cause, ``{"system", "code", "display"}``, or ``None``."""
    entry = coded("cause", cause)
    if entry is None or "icd10" not in entry:
        return None
    icd = entry["icd10"]
    return {"system": SYSTEMS["icd10"], "code": icd["code"], "display": icd["display"]}
