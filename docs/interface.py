"""Write ``docs/interface.md``, the project's interface, from the code that defines it.

Run ``make docs`` (or ``python docs/interface.py``) after changing a field, a label, a public
name, an output, a make target or an MLflow name; ``python docs/interface.py --check`` exits 1
when the committed file differs from what this script writes now (``tests/test_docs.py`` runs
it), so the page and the code cannot drift apart.

Every table comes from code: the intake fields and labels from :mod:`vignettes.schema`, the
validation rules from :mod:`vignettes.intake`'s docstring, the public names from each package's
``__all__``, the outputs from :class:`serve.Prediction`'s docstring and
:data:`model.triage.OUTPUT_COLUMNS`, the make targets from the Makefile's ``##`` comments and
the MLflow names from :mod:`model.mlflow_names`. Only the connecting sentences are written here.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import re
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "docs" / "interface.md"
QUESTIONNAIRE_PATH = "docs/fhir/Questionnaire-sciatica-intake.json"
QUESTIONNAIRE = ROOT / QUESTIONNAIRE_PATH
"""The intake's SDC Questionnaire, as ``vignettes.questionnaire()`` returns it, for FHIR tools."""
ARTICLE = "Lower Back Pain Radiates to the Leg: 7 Key Causes, Diagnosis & Treatments"
PACKAGES = ("vignettes", "model", "serve", "training")

KIND_TYPE = {"int": "int", "float": "number", "bool": "bool", "category": "string"}


_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")


def _code(text: str) -> str:
    """reStructuredText literals (````x````) and roles (``:func:`x```) as Markdown literals."""
    return _ROLE.sub(r"`\1`", text).replace("``", "`")


def _para(text: str, indent: str = "") -> list[str]:
    """One paragraph, wrapped to the repository's line length."""
    return textwrap.wrap(
        " ".join(text.split()),
        width=100,
        initial_indent=indent,
        subsequent_indent=" " * len(indent),
        break_on_hyphens=False,
        break_long_words=False,
    )


def _cell(text: str) -> str:
    """Text that is safe inside a Markdown table cell."""
    return _code(" ".join(text.split())).replace("|", "\\|")


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


def _intake() -> list[str]:
    from vignettes import intake, schema

    rows = [
        (
            f"`{f.name}`",
            KIND_TYPE[f.kind],
            f.allowed() + (" (required)" if f.name == "age" else ""),
            f.question + (" **Red flag.**" if f.red_flag else ""),
        )
        for f in schema.FIELDS
    ]
    doc = intake.__doc__ or ""
    rules = doc.split("Rules, for both:", 1)[1].split("Label and bookkeeping", 1)[0]
    ignored = ", ".join(f"`{c}`" for c in sorted(intake.IGNORED_COLUMNS))
    return [
        "## 1. A case: the intake",
        "",
        "One patient's answers, as a mapping from field name to answer (a `dict`, a JSON object,",
        "a pandas `Series` or a frame row). Every field but `age` may be absent or `null`,",
        'meaning "not asked / unknown"; the generator leaves such gaps too.',
        "",
        *_table(("field", "type", "allowed values", "meaning (the question asked)"), rows),
        "",
        "What is accepted (`vignettes.intake`, the one validator that the API, the CLI, the",
        "MLflow pyfunc and `vignettes.posterior` all use):",
        "",
        _code(inspect.cleandoc(rules)),
        "",
        f"The columns {ignored} of a generated frame are not answers; they are accepted and",
        "dropped. Any other unknown name is refused.",
        "",
        "Bad input (a wrong type, an unknown field, an out-of-range or unknown value) raises",
        "`IntakeError` (`vignettes.IntakeError`, also `model.IntakeError` and `serve.IntakeError`,",
        "a `ValueError`), whose message starts with the field (and, in a frame, the row) and says",
        "what is allowed. Nothing is guessed.",
        "",
    ]


def _labels() -> list[str]:
    from vignettes import schema

    def values(names: tuple[str, ...]) -> str:
        return ", ".join(f"`{n}`" for n in names)

    return [
        "## 2. Labels and latent truth",
        "",
        *_para(
            f"`cause`, exactly one of: {values(schema.CAUSES)}: the article's six numbered "
            "causes and the mechanical, non-neurological pain it contrasts them with.",
            "- ",
        ),
        *_para(
            "`red_flag`: bool, a serious condition is present and the case needs more than "
            "routine care.",
            "- ",
        ),
        *_para(
            '`serious_condition` (latent; `red_flag` is `serious_condition != "none"`): '
            f"{values(schema.SERIOUS_CONDITIONS)}.",
            "- ",
        ),
        *_para(
            "`nerve_root` (latent; `none` = no radicular involvement): "
            f"{values(schema.NERVE_ROOTS)}.",
            "- ",
        ),
        *_para(
            f"`setting`, the clinical setting whose class priors apply: {values(schema.SETTINGS)}.",
            "- ",
        ),
        "",
    ]


def _summary(obj: object) -> str:
    """The first line of a public name's docstring, or what it holds for a constant."""
    if inspect.isclass(obj) or inspect.isroutine(obj) or inspect.ismodule(obj):
        doc = inspect.getdoc(obj) or ""
        return doc.split("\n\n", 1)[0]
    text = repr(obj)
    return f"constant `{text}`" if len(text) <= 70 else f"constant ({type(obj).__name__})"


def _python_api() -> list[str]:
    lines = [
        "## 3. Python API",
        "",
        "```python",
        "import vignettes, serve",
        "",
        "df = vignettes.generate(n=10_000, seed=7)  # intake fields + cause + red_flag (+ latents)",
        "post = vignettes.posterior(df)  # exact P(cause | answers), P(red_flag | answers)",
        'pred = serve.predict({"age": 67, "worse_walking": True, "better_sitting": True})',
        "pred.cause, pred.probabilities, pred.red_flag, pred.attributions, pred.to_dict()",
        "table = serve.predict_batch(df)  # one row per case, same content as predict",
        "```",
        "",
        "The public names of each package (its `__all__`), with the first line of their",
        "docstrings; `help(name)` has the rest.",
        "",
    ]
    for package in PACKAGES:
        module = importlib.import_module(package)
        rows = [(f"`{package}.{n}`", _summary(getattr(module, n))) for n in module.__all__]
        lines += [f"### `{package}`", "", *_table(("name", "what it is"), rows), ""]
    return lines


_ATTRIBUTE = re.compile(r"^    (?P<names>[a-z_, ]+) : (?P<type>.+)$")


def _attributes(cls: type) -> list[tuple[str, str, str]]:
    """``(names, type, description)`` of each entry of a numpydoc ``Attributes`` section."""
    doc = (cls.__doc__ or "").split("Attributes\n    ----------\n", 1)[1]
    entries: list[list[str]] = []
    for line in doc.splitlines():
        match = _ATTRIBUTE.match(line)
        if match:
            entries.append([match["names"], match["type"], ""])
        elif entries and line.startswith("        "):
            entries[-1][2] += " " + line.strip()
        elif entries and line.strip():
            break
    return [(n, t, d.strip()) for n, t, d in entries]


def _outputs() -> list[str]:
    from model.triage import LIST_COLUMNS, OUTPUT_COLUMNS
    from serve import Prediction
    from vignettes.schema import CAUSES, FIELD_NAMES

    rows = [
        (", ".join(f"`{n.strip()}`" for n in names.split(",")), kind, text)
        for names, kind, text in _attributes(Prediction)
    ]
    grouped = {f"prob_{c}" for c in CAUSES} | {
        f"{prefix}{f}" for prefix in ("attr_", "red_flag_attr_") for f in FIELD_NAMES
    }
    plain = ", ".join(f"`{c}`" for c in OUTPUT_COLUMNS if c not in grouped)
    lists = ", ".join(f"`{c}`" for c in LIST_COLUMNS)
    return [
        "## 4. Outputs",
        "",
        "`serve.predict(case)` returns a `serve.Prediction`, a frozen dataclass of plain Python",
        "values; `Prediction.to_dict()` and `to_json()` give them as JSON.",
        "",
        *_table(("attribute", "type", "meaning"), rows),
        "",
        "`serve.predict_batch(frame)` and the MLflow pyfunc (`TriageModel.predict`) return one",
        "row per case, in the input's order and index, with these columns:",
        "",
        *_para(f"{plain};", "- "),
        "- `prob_<cause>` for each of the seven causes;",
        "- `attr_<field>` and `red_flag_attr_<field>` for each intake field, in schema order",
        "  (the attributions to the predicted cause and to the red flag).",
        "",
        *_para(
            f"The columns {lists} hold a Python list per case (`model.triage.LIST_COLUMNS`), "
            "a JSON array in JSON."
        ),
        "",
        "### One JSON schema: the CLI, HTTP and the pyfunc",
        "",
        *_para(
            "`sciatica-triage predict --json` and `make serve` (`POST /invocations`) answer "
            '`{"predictions": [record, ...]}`, and the MLflow pyfunc\'s `predict` returns the '
            "list of records: one record per case, in the input's order, numbered from 0, each "
            "a flat JSON object with exactly the columns above (`model.TriageModel."
            'predict_records`). An empty list of cases answers `{"predictions": []}` (the '
            "CLI's text output says `no cases`). `warnings` lists the contradictions found in "
            "the answers, each naming its fields (`vignettes/contradictions.toml`)."
        ),
        "",
    ]


_TARGET = re.compile(r"^(?P<name>[a-z-]+):.*## (?P<text>.+)$")


def _make_targets() -> list[str]:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    rows = [
        (f"`make {m['name']}`", m["text"]) for m in map(_TARGET.match, makefile.splitlines()) if m
    ]
    return [
        "## 5. Make targets",
        "",
        "Every target sets up `.venv` on first use (`make help` lists them).",
        "",
        *_table(("target", "what it does"), rows),
        "",
    ]


def _mlflow_names() -> list[str]:
    from model import mlflow_names, registry_pointer

    rows = [
        ("registered model", f"`{mlflow_names.MODEL_NAME}`"),
        ("alias of the served version", f"`{mlflow_names.CHAMPION_ALIAS}`"),
        (
            "default model URI (`serve.load`, `mlflow models serve -m`)",
            f"`{mlflow_names.CHAMPION_URI}`",
        ),
        ("experiment of `make train`", f"`{mlflow_names.EXPERIMENT}`"),
        (
            "version tag: digest of the manifest of the model's files",
            f"`{mlflow_names.MANIFEST_TAG}`",
        ),
        (
            "registry pointer beside a SQLite store (written at registration)",
            f"`mlflow.db{registry_pointer.POINTER_SUFFIX}`",
        ),
    ]
    return [
        "## 6. MLflow",
        "",
        "Defined once, in `model/mlflow_names.py`. With no settings `make train` tracks to",
        "`sqlite:///mlflow.db` in the checkout; `MLFLOW_TRACKING_URI` points it elsewhere.",
        "",
        *_table(("what", "name"), rows),
        "",
        f'`mlflow.pyfunc.load_model("{mlflow_names.CHAMPION_URI}")` loads the champion, and',
        "`mlflow models serve` serves it over HTTP.",
        "",
    ]


def _fhir() -> list[str]:
    from vignettes import sdc

    rel = QUESTIONNAIRE_PATH
    rows = [
        (f"`{g['linkId']}`", g["text"], ", ".join(f"`{i['linkId']}`" for i in g["item"]))
        for g in sdc.questionnaire()["item"]
    ]
    return [
        "## 7. FHIR",
        "",
        *_para(
            f"`vignettes.questionnaire()` is the intake as an SDC Questionnaire (FHIR R4), "
            f"canonical `{sdc.QUESTIONNAIRE_URL}`, version = the package version; "
            f"`{rel}` is a copy of it for FHIR tools (written by `make docs`). Each item's "
            "`linkId` is the field name and its `text` the question above; the items sit in "
            "three groups:"
        ),
        "",
        *_table(("group", "text", "items"), rows),
        "",
        *_para(
            "`vignettes.to_questionnaire_response(case)` and "
            "`vignettes.from_questionnaire_response(qr)` convert one case to a response and "
            "back (exactly); `serve.predict` and `serve.predict_batch` accept responses "
            "wherever they accept cases. A bad response is refused by `linkId` with an "
            "`IntakeError`: an unknown linkId, a wrong answer type, two answers to one item, "
            "an item given twice, or a response to another Questionnaire."
        ),
        "",
    ]


def render_questionnaire() -> str:
    """The committed copy of the Questionnaire, as this script writes it."""
    import json

    from vignettes import sdc

    return json.dumps(sdc.questionnaire(), indent=2, ensure_ascii=False) + "\n"


def render() -> str:
    """The whole of ``docs/interface.md``, as this script writes it."""
    head = [
        "# The interface of sciatica-triage",
        "",
        "<!-- Generated by docs/interface.py from the code; edit that, then run `make docs`. -->",
        "",
        *_para(
            "What users, tests and outside checks rely on. The knowledge behind it is one "
            f'patient-education article, "{ARTICLE}". Research software on synthetic data: not '
            "a medical device and not medical advice."
        ),
        "",
    ]
    sections = [
        _intake(),
        _labels(),
        _python_api(),
        _outputs(),
        _make_targets(),
        _mlflow_names(),
        _fhir(),
    ]
    return "\n".join(head + [line for section in sections for line in section]).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the page, or with ``--check`` report whether the committed one is current."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    pages = {TARGET: render(), QUESTIONNAIRE: render_questionnaire()}
    if args.check:
        stale = [p for p, text in pages.items() if not p.exists() or p.read_text("utf-8") != text]
        for path in stale:
            print(f"{path} is stale: run `make docs`", file=sys.stderr)
        return 1 if stale else 0
    for path, text in pages.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
