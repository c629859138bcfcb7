"""The champion at run time: calibrated probabilities, exact attributions and the article's triage.

:class:`TriageModel` holds the two calibrated scorers (cause and red flag) and the metadata written
at training time, and turns a frame of intakes into one output row per case. The pyfunc model
that MLflow serves (:mod:`model.pyfunc`) and the Python API (``serve``) both call it, so every way
in gives the same answer.

Safety net: the urgency tier comes from ``vignettes/article.toml``'s urgency rules over the
answers (reported signs, and combinations such as a deficit that is getting worse); the model's
calibrated probability of a serious condition is two more facts of those rules: at or above the
review threshold it raises a case to ``review``, at or above the upper threshold
(:data:`URGENT_PROBABILITY`) to ``urgent``. ``red_flag`` is ``urgency != "routine"``: the model
can add urgency, never remove it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from model import rules
from model.conformal import ConformalSets
from model.features import FIELD_ORDER, encode, encode_case, to_fields
from model.intake import answers_frame, validate_case, validate_frame
from model.integrity import read_verified, write_bundle_manifest
from model.mlflow_names import MODEL_NAME
from model.scorers import Scorer, to_proba
from model.serious import SERIOUS_PROB_COLUMNS, SeriousTypeModel
from vignettes.contradictions import read_frame_safely, read_safely
from vignettes.schema import CAUSES

DISCLAIMER = (
    "Research software trained on synthetic data; not a medical device and not medical advice."
)
ATTRIBUTION_UNITS = (
    "additive contributions to the calibrated score (softmax logit for the cause, log-odds for "
    "the red flag); they add up to the score minus the base value"
)
RED_FLAG_TOLERANCE = 1e-12
"""Slack in ``probability >= threshold``. The threshold is one validation case's probability;
summing the same trees in another order (library, tables) moves it by an ulp or two, and a tie
must not turn the urgent decision off. The slack only ever adds urgency."""


RED_FLAG_COST_RATIO = 100.0
"""Default K: missing one serious condition costs as much as K false alarms (model-raised
``review`` alerts). The review threshold is then ``1 / (1 + K)`` on a calibrated probability: an
alert is worth raising when ``p * K >= (1 - p)``. K = 100 puts the threshold near 1%, so a review
alert raised by the model is right a few percent of the time - about NICE NG12's 3% positive
predictive value for urgent referral - while an emergency pathway already accepts that 80-95% of
suspected cauda equina scans are negative (Bell 2007; Domen 2009; GIRFT 2023). The measured
trade-off for other K is in the comparison report and the README."""


URGENT_PROBABILITY = 0.10
"""The upper threshold: a case with no sign that sets a tier, whose calibrated P(serious) is at
or above it, goes to ``urgent`` (within days). At 0.10 one such case in ten is serious, inside
the 5-20% yield an emergency pathway accepts for suspected cauda equina (GIRFT 2023; Bell 2007:
80-95% of emergency scans are negative), and more than three times NICE NG12's 3% bar for urgent
referral. Equivalent to a second cost ratio K = 9 (``1 / (1 + K)``): below it, a review within
2 weeks; above it, days. Recorded with the model as ``red_flag_urgent_threshold``."""


FAST_PATH_MAX_CASES = 32
"""Requests with at most this many cases are answered case by case (``predict_case``)."""
CHUNK_CASES = 4096
"""Larger requests go through the vectorised ``TriageModel.predict`` this many cases at a time
(bounded memory for the attribution arrays)."""


def cost_ratio_threshold(cost_ratio: float) -> float:
    """The review threshold ``1 / (1 + K)`` for a cost ratio ``K > 0`` (see
    :data:`RED_FLAG_COST_RATIO`).

    Examples
    --------
    >>> cost_ratio_threshold(99.0)
    0.01
    """
    if not cost_ratio > 0:
        raise ValueError(f"cost_ratio: expected a number > 0, got {cost_ratio!r}")
    return 1.0 / (1.0 + float(cost_ratio))


def red_flag_decision(probability: np.ndarray, threshold: float) -> np.ndarray:
    """The model's red-flag decision: ``probability >= threshold``, ties broken towards urgent."""
    return np.asarray(probability) >= threshold - RED_FLAG_TOLERANCE


OUTPUT_SCALARS = (
    "cause",
    *(f"prob_{c}" for c in CAUSES),
    "differential",
    "differential_coverage",
    "urgency",
    "urgency_timeframe",
    "urgency_timeframe_source",
    "urgency_action",
    "urgency_triggers",
    "suspected_conditions",
    "red_flag",
    "red_flag_screen",
    "red_flag_probability",
    "red_flag_model",
    "red_flag_model_urgent",
    "red_flag_threshold",
    "red_flag_urgent_threshold",
    "red_flag_cost_ratio",
    *SERIOUS_PROB_COLUMNS,
    "red_flags_fired",
    "red_flags_unasked",
    "red_flag_questions_unanswered",
    "nerve_root",
    "nerve_territory",
    "pain_mechanism",
    "mri_indicated",
    "mri_reasons",
    "next_step",
    "advice_codes",
    "advice_audiences",
    "advice",
    "warnings",
    "attribution_base",
    "red_flag_attribution_base",
    "model_name",
    "model_version",
    "disclaimer",
)
OUTPUT_COLUMNS = (
    *OUTPUT_SCALARS,
    *(f"attr_{f}" for f in FIELD_ORDER),
    *(f"red_flag_attr_{f}" for f in FIELD_ORDER),
)
"""Columns of :meth:`TriageModel.predict`, in order (the pyfunc's output schema)."""


@dataclass
class TriageModel:
    """Calibrated cause and red-flag scorers plus their training-time metadata.

    Attributes
    ----------
    cause : Scorer
    red_flag : Scorer
    meta : dict
        ``name``, ``version``, ``red_flag_threshold`` and whatever training recorded.
    serious : SeriousTypeModel or None
        Which serious condition: ``P(condition | answers)`` per condition
        (``prob_serious_<condition>`` outputs; NaN, or ``None`` for one case, without it).
    """

    cause: Scorer
    red_flag: Scorer
    meta: dict[str, Any]
    serious: SeriousTypeModel | None = None

    @property
    def threshold(self) -> float:
        """The served review threshold on the calibrated probability of a serious condition."""
        return float(self.meta["red_flag_threshold"])

    @property
    def urgent_threshold(self) -> float:
        """The upper threshold (urgent); :data:`URGENT_PROBABILITY` for a model trained before
        it was recorded."""
        return float(self.meta.get("red_flag_urgent_threshold", URGENT_PROBABILITY))

    @property
    def cost_ratio(self) -> float | None:
        """The declared cost ratio K behind the threshold (``1 / (1 + K)``), when recorded."""
        k = self.meta.get("red_flag_cost_ratio")
        return None if k is None else float(k)

    def save(self, directory: Path | str) -> Path:
        """Write the bundle: two scorer folders, ``meta.json`` and the SHA-256 manifest of them
        (:func:`model.integrity.write_bundle_manifest`; write it again after adding a file)."""
        directory = Path(directory)
        self.cause.save(directory / "cause")
        self.red_flag.save(directory / "red_flag")
        if self.serious is not None:
            self.serious.save(directory / "serious")
        (directory / "meta.json").write_text(json.dumps(self.meta, indent=2, default=str))
        write_bundle_manifest(directory)
        return directory

    @classmethod
    def load(cls, directory: Path | str) -> TriageModel:
        """Read a bundle written by :meth:`save`, every file checked against its manifest first.

        Raises
        ------
        model.integrity.DamagedModelError
            If a file is missing or differs from the manifest (nothing has parsed it then).
        ValueError
            If a checked file holds something unexpected; the message names the file.
        """
        directory = Path(directory)
        files = read_verified(directory)

        def scorer(name: str) -> Scorer:
            prefix = f"{name}/"
            own = {k.removeprefix(prefix): v for k, v in files.items() if k.startswith(prefix)}
            return Scorer.from_files(own, str(directory / name))

        try:
            meta = json.loads(files["meta.json"])
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{directory / 'meta.json'}: unreadable ({exc})") from None
        serious = None
        if "serious/serious.json" in files:  # the serious-type model (absent in older bundles)
            try:
                conditions = json.loads(files["serious/serious.json"])["conditions"]
            except (KeyError, ValueError) as exc:
                where = directory / "serious" / "serious.json"
                raise ValueError(f"{where}: unreadable ({exc})") from None
            serious = SeriousTypeModel({c: scorer(f"serious/{c}") for c in conditions})
        return cls(scorer("cause"), scorer("red_flag"), meta, serious)

    def warm_up(self) -> TriageModel:
        """Build the lazy state (TreeSHAP tables, or the library explainer; the conformal
        thresholds) now, before threads share the model or the first request waits for it.

        The serious-type scorers' tables are built too: they score a few rows faster than
        their library does (:data:`model.scorers.TABLE_SCORE_ROWS`)."""
        if self.serious is not None:
            for scorer in self.serious.scorers.values():
                scorer.shap_tables()
        self.predict_case(validate_case({"age": 50}))
        return self

    def predict(
        self, cases: pd.DataFrame, *, validated: bool = False, red_flag_dont_know: Any = None
    ) -> pd.DataFrame:
        """Predict, explain and triage every case.

        Parameters
        ----------
        cases : pandas.DataFrame
            Intakes; validated here unless ``validated`` is true.
        validated : bool, default=False
            Skip validation for frames that already passed ``model.intake.validate_frame``.
        red_flag_dont_know : sequence, optional
            Per row, the red-flag questions asked and answered "don't know": their field names
            (or a bool: some, which not said). The tier stays at least ``review``, and a
            bladder, bowel or saddle "don't know" is assessed the same day
            (:func:`model.rules.triage`). Default: none was.

        Returns
        -------
        pandas.DataFrame
            :data:`OUTPUT_COLUMNS`, one row per case, in the input's order and index. List
            cells (:data:`LIST_COLUMNS`: ``differential``, ``advice_codes``, ``warnings``, ...)
            hold Python lists.

        Notes
        -----
        Contradictory answers (``vignettes/contradictions.toml``) are read the safer way for the
        model and the rules, and reported in ``warnings``.
        """
        valid = cases if validated else validate_frame(cases)
        frame, warnings = read_frame_safely(valid)
        learned = self._learned(encode(frame))
        cause = _CAUSE_NAMES[learned.proba.argmax(axis=1)]
        out: dict[str, Any] = {"cause": cause}
        out |= dict(zip(_PROB_COLUMNS, learned.proba.T, strict=True))
        out |= {
            "differential": learned.differential,
            "red_flag_probability": learned.red,
            "red_flag_model": learned.red_model,
            "red_flag_model_urgent": learned.red_urgent,
            "attribution_base": learned.base,
            "red_flag_attribution_base": learned.red_base,
        }
        out |= dict(zip(SERIOUS_PROB_COLUMNS, learned.serious.T, strict=True))
        out |= dict(zip(_ATTR_COLUMNS, learned.attr.T, strict=True))
        out |= dict(zip(_RED_ATTR_COLUMNS, learned.red_attr.T, strict=True))
        out |= rules.triage(frame, learned.red_model, cause, learned.red_urgent, red_flag_dont_know)
        out |= self._constants()
        out["warnings"] = warnings
        for name in LIST_COLUMNS:  # one list object per cell, never a list spread over columns
            out[name] = pd.Series(list(out[name]), index=frame.index, dtype=object)
        # "no root" stays None (JSON null), not the NaN a string column would make of it
        for name in ("nerve_root", "nerve_territory", *_OPTIONAL_TEXT):
            out[name] = pd.Series(out[name], index=frame.index, dtype=object)
        return pd.DataFrame(out, index=frame.index)[list(OUTPUT_COLUMNS)]

    def predict_records(
        self, answers: Sequence[Mapping[str, Any]], red_flag_dont_know: Sequence[Any] | None = None
    ) -> list[dict[str, Any]]:
        """One output record per validated case: the JSON of the pyfunc, HTTP and the CLI.

        Up to :data:`FAST_PATH_MAX_CASES` cases go case by case (:meth:`predict_case`), more
        through the vectorised :meth:`predict` in chunks of :data:`CHUNK_CASES`; the answers
        are the same. ``red_flag_dont_know`` (optional, one per case): the red-flag questions
        answered "don't know", as :meth:`predict` takes them.

        Returns
        -------
        list of dict
            :data:`OUTPUT_COLUMNS` -> plain Python values (lists for :data:`LIST_COLUMNS`), in
            order; records are numbered from 0 by their position.
        """
        dont_know = [False] * len(answers) if red_flag_dont_know is None else red_flag_dont_know
        if len(dont_know) != len(answers):
            raise ValueError(
                f"red_flag_dont_know: expected {len(answers)} values (one per case), "
                f"got {len(dont_know)}"
            )
        if len(answers) <= FAST_PATH_MAX_CASES:
            return [self.predict_case(c, d) for c, d in zip(answers, dont_know, strict=True)]
        rows: list[dict[str, Any]] = []
        for start in range(0, len(answers), CHUNK_CASES):
            chunk = answers_frame(answers[start : start + CHUNK_CASES])
            flags = dont_know[start : start + CHUNK_CASES]
            frame = self.predict(chunk, validated=True, red_flag_dont_know=flags)
            columns = [frame[name].tolist() for name in OUTPUT_COLUMNS]  # Python values
            rows.extend(
                dict(zip(OUTPUT_COLUMNS, row, strict=True)) for row in zip(*columns, strict=True)
            )
        return rows

    def predict_case(
        self, answers: Mapping[str, Any], red_flag_dont_know: Any = False
    ) -> dict[str, Any]:
        """Predict, explain and triage one validated case, without building a frame.

        The fast path for one case: the same numbers as :meth:`predict` on a one-row frame, in
        a fraction of the time (no pandas; exact TreeSHAP from lookup tables when the trees
        allow, see :mod:`model.shap_tables`).

        Parameters
        ----------
        answers : mapping
            One case as returned by ``model.intake.validate_case`` (not validated again).
        red_flag_dont_know : bool or collection of str, default=False
            The red-flag questions asked and answered "don't know" (their field names; ``True``:
            some, which not said). See :meth:`predict`.

        Returns
        -------
        dict
            :data:`OUTPUT_COLUMNS` -> plain Python values; list cells are lists.
        """
        answers, warnings = read_safely(answers)
        learned = self._learned(encode_case(answers))
        proba = learned.proba[0].tolist()
        red_model = bool(learned.red_model[0])
        red_urgent = bool(learned.red_urgent[0])
        cause = CAUSES[proba.index(max(proba))]
        out: dict[str, Any] = {"cause": cause}
        out |= zip(_PROB_COLUMNS, proba, strict=True)
        out |= {
            "differential": learned.differential[0],
            "red_flag_probability": float(learned.red[0]),
            "red_flag_model": red_model,
            "red_flag_model_urgent": red_urgent,
            "attribution_base": float(learned.base[0]),
            "red_flag_attribution_base": float(learned.red_base[0]),
        }
        serious = [None if p != p else p for p in learned.serious[0].tolist()]  # NaN: no model
        out |= zip(SERIOUS_PROB_COLUMNS, serious, strict=True)
        out |= zip(_ATTR_COLUMNS, learned.attr[0].tolist(), strict=True)
        out |= zip(_RED_ATTR_COLUMNS, learned.red_attr[0].tolist(), strict=True)
        out |= rules.triage(answers, red_model, cause, red_urgent, red_flag_dont_know)
        out |= self._constants()
        out["warnings"] = warnings
        return {name: out[name] for name in OUTPUT_COLUMNS}

    def _learned(self, X: np.ndarray) -> _Learned:
        """The learned part of the outputs, one row per row of ``X``."""
        score, values, base = self.cause.score_and_explain(X)
        proba = to_proba(score)
        red_score, red_values, red_base = self.red_flag.score_and_explain(X)
        red = to_proba(red_score)
        if self.serious is None:
            serious = np.full((len(X), len(SERIOUS_PROB_COLUMNS)), np.nan)
        else:
            serious = self.serious.proba(X)
        return _Learned(
            proba=proba,
            differential=self._differential(proba),
            red=red,
            red_model=red_flag_decision(red, self.threshold),
            red_urgent=red_flag_decision(red, self.urgent_threshold),
            base=base,
            red_base=red_base,
            attr=to_fields(values),
            red_attr=to_fields(red_values),
            serious=serious,
        )

    def _constants(self) -> dict[str, Any]:
        """Outputs that are the same for every case."""
        sets = self.conformal
        return {
            "differential_coverage": 1.0 if sets is None else 1.0 - sets.alpha,
            "red_flag_threshold": self.threshold,
            "red_flag_urgent_threshold": self.urgent_threshold,
            "red_flag_cost_ratio": self.cost_ratio,
            "model_name": self.meta.get("name", MODEL_NAME),
            "model_version": str(self.meta.get("version", "unregistered")),
            "disclaimer": DISCLAIMER,
        }

    @property
    def conformal(self) -> ConformalSets | None:
        """The conformal differential's thresholds (``None`` for a model calibrated without).

        Parsed once per ``meta["conformal"]`` value (and again if it is replaced).
        """
        data = self.meta.get("conformal")
        cached = self.__dict__.get("_conformal")
        if cached is None or cached[0] is not data:
            cached = (data, None if data is None else ConformalSets.from_dict(data))
            self.__dict__["_conformal"] = cached
        return cached[1]

    def _differential(self, proba: np.ndarray) -> list[list[str]]:
        """Per row, the causes in the conformal set closed upward (every cause at least as
        probable as a member is in), most probable first (all if uncalibrated)."""
        sets = self.conformal
        if len(proba) == 1:  # one case: plain Python is several times faster than arrays
            p = proba[0].tolist()
            members = list(range(len(p))) if sets is None else sets.members(p)
            return [[CAUSES[k] for k in sorted(members, key=lambda k: -p[k])]]
        member = np.ones_like(proba, dtype=bool) if sets is None else sets.sets(proba)
        order = np.argsort(-proba, axis=1, kind="stable")  # ties in CAUSES order, as sorted()
        keep = member[np.arange(len(proba))[:, None], order]
        return [_CAUSE_NAMES[o[m]].tolist() for o, m in zip(order, keep, strict=True)]


class _Learned(NamedTuple):
    """What the two scorers say about each row (arrays with one entry or row per case)."""

    proba: np.ndarray  # (n, 7) calibrated cause probabilities
    differential: list[list[str]]  # conformal set per row, most probable first
    red: np.ndarray  # (n,) calibrated red-flag probability
    red_model: np.ndarray  # (n,) red_flag_decision(red, threshold)
    red_urgent: np.ndarray  # (n,) red_flag_decision(red, urgent_threshold)
    base: np.ndarray  # (n,) base value of the predicted cause's logit
    red_base: np.ndarray  # (n,) base value of the red-flag log-odds
    attr: np.ndarray  # (n, n_fields) attributions to the predicted cause's logit
    red_attr: np.ndarray  # (n, n_fields) attributions to the red-flag log-odds
    serious: np.ndarray  # (n, 4) P(condition | answers) per serious condition (NaN: no model)


_CAUSE_NAMES = np.asarray(CAUSES, dtype=object)
_OPTIONAL_TEXT = ("urgency_timeframe", "urgency_timeframe_source")  # None for routine
_PROB_COLUMNS = tuple(f"prob_{c}" for c in CAUSES)
_ATTR_COLUMNS = tuple(f"attr_{f}" for f in FIELD_ORDER)
_RED_ATTR_COLUMNS = tuple(f"red_flag_attr_{f}" for f in FIELD_ORDER)
LIST_COLUMNS = (
    "differential",
    "red_flags_fired",
    "red_flag_questions_unanswered",
    "mri_reasons",
    "urgency_triggers",
    "suspected_conditions",
    "advice_codes",
    "advice_audiences",
    "advice",
    "warnings",
)
"""Output columns holding a list per case (Python lists, JSON arrays over HTTP)."""
