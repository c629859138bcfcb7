"""The whole training path, top to bottom: data, candidates, comparison, champion, registry.

``make train`` runs :func:`train`. One parent MLflow run holds the comparison; each candidate is a
nested run with its params, dataset inputs, metrics and figures. The champion (lowest validation
log-loss among the tree models, which have exact attributions) gets its serious-type models, is
logged as a pyfunc model from code in its run and registered as ``sciatica-triage``; the
``champion`` alias moves only if the new model beats the current champion on this run's test
set.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature

from model.conformal import ConformalSets
from model.mlflow_names import EXPERIMENT, MODEL_NAME
from model.triage import URGENT_PROBABILITY, cost_ratio_threshold
from training import mlflow_view, plots, report
from training.candidates import CANDIDATES, CEILING, CHAMPION_ELIGIBLE, Split
from training.config import TrainConfig
from training.evaluation import (
    ROBUSTNESS_CASES,
    CandidateRun,
    bayes_proba,
    differential_report,
    evaluate,
    learning_curve,
    learning_curve_points,
    log_figures,
    robustness,
    setting_shift,
    urgency_report,
    views,
)
from training.progress import StepProfile, expected_from_metrics, reference_step_times, say
from training.registry import describe, log_triage_model, register_champion
from training.safety_report import safety_sections
from training.sensitivity import latest_section
from vignettes import generate


@dataclass
class Outcome:
    """What :func:`train` produced (for the CLI and tests)."""

    parent_run_id: str
    table: pd.DataFrame
    champion: str | None
    model_version: str | None
    alias_moved: bool
    results: dict[str, dict[str, float]]


def code_version() -> str:
    """Git commit of the checkout (``+dirty`` if it has uncommitted changes), or ``unknown``."""
    try:
        root = Path(__file__).resolve().parents[1]
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def make_splits(cfg: TrainConfig) -> dict[str, Split]:
    """Disjoint row ranges of one seeded dataset: train, validation, test, conformal calibration.

    Validation picks the red-flag threshold, calibrates probabilities and chooses the champion;
    the calibration split is used only by the conformal differential, so its guarantee holds.
    The dataset's seed is the seed tree's ``data`` seed (:class:`training.config.Seeds`).
    """
    sizes = {"train": cfg.n_train, "validation": cfg.n_val, "test": cfg.n_test}
    sizes["calibration"] = cfg.n_cal
    frames, start = {}, 0
    for name, size in sizes.items():
        frames[name] = generate(size, cfg.seeds.data, cfg.setting, start=start)
        start += size
    return {name: Split(frame) for name, frame in frames.items()}


SCHEMA_ROWS = 1_000
"""Rows MLflow's dataset schema is inferred from (with each column's first unknown answer)."""


def schema_rows(frame: pd.DataFrame, head: int = SCHEMA_ROWS) -> pd.DataFrame:
    """The rows a dataset's schema is inferred from: the first ``head``, and for every column
    with an unknown answer the first row that has one.

    MLflow infers a column's type value by value in Python (about 0.2 ms a row on this frame);
    the types come from the dtypes and the gaps, so these rows give the same schema as the whole
    frame does (tested), in a fraction of the time.
    """
    gaps = frame.isna().to_numpy()
    first_gap = gaps.argmax(axis=0)[gaps.any(axis=0)]
    return frame.iloc[np.union1d(np.arange(min(head, len(frame))), first_gap)]


def dataset(frame: pd.DataFrame, name: str) -> Any:
    """``frame`` as an MLflow dataset (targets: the cause), its schema from :func:`schema_rows`."""
    logged = mlflow.data.from_pandas(frame, name=name, targets="cause")  # type: ignore[attr-defined]
    # PandasDataset.schema is a functools.cached_property: filling it in spares the full pass.
    logged.__dict__["schema"] = infer_signature(schema_rows(frame)).inputs
    return logged


def _run_candidate(
    name: str, cfg: TrainConfig, splits: dict[str, Split], version: str, datasets: dict[str, Any]
) -> CandidateRun:
    """Fit, evaluate and log one candidate as a nested run.

    Tree candidates are fitted without their serious-type models: only the champion needs them,
    and :func:`_log_champion` fits them and logs its model once it is chosen.
    """
    with mlflow.start_run(run_name=name, nested=True) as run:
        say(f"fitting {name} ...")
        later = {"serious": False} if name in CHAMPION_ELIGIBLE else {}
        fitted = CANDIDATES[name](splits["train"], splits["validation"], cfg.seeds.models, **later)
        metrics, outputs = evaluate(fitted, splits, cfg.cost_ratio)
        mlflow.set_tags(
            {"candidate": name, "deployable": fitted.deployable, "code_version": version}
        )
        params: dict[str, Any] = {"seed": cfg.seed, "model_seed": cfg.seeds.models}
        params |= {"setting": cfg.setting, "n_train": cfg.n_train}
        params |= {
            "red_flag_review_threshold": cost_ratio_threshold(cfg.cost_ratio),
            "red_flag_urgent_threshold": URGENT_PROBABILITY,
        }
        mlflow.log_params(params | {k: str(v)[:250] for k, v in fitted.params.items()})
        mlflow.log_input(datasets["train"], context="training")
        mlflow.log_input(datasets["test"], context="testing")
        mlflow.log_metrics(metrics)
        log_figures(fitted, outputs, splits["test"])
        say(
            f"  {name}: test accuracy {metrics['accuracy']:.4f},"
            f" log-loss {metrics['log_loss']:.4f},"
            f" val log-loss {metrics['val_log_loss']:.4f} ({metrics['fit_seconds']:.0f}s)"
        )
        return CandidateRun(
            fitted, metrics, None, outputs["proba"], outputs["tradeoff"], run.info.run_id
        )


def _log_champion(
    name: str, run: CandidateRun, cfg: TrainConfig, splits: dict[str, Split], version: str
) -> CandidateRun:
    """The champion's serious-type models, conformal sets and metadata, and its pyfunc model,
    logged in its own nested run; returns the run with the model's URI."""
    fitted, triage = run.fitted, run.fitted.triage
    assert triage is not None  # champion-eligible candidates are tree models
    with mlflow.start_run(run_id=run.run_id, nested=True) as nested:
        say(f"serious-type models of the champion ({name}) ...")
        mlflow.log_metric("serious_fit_seconds", fitted.add_serious_types())
        conformal = splits["calibration"]
        sets = ConformalSets.fit(fitted.predict_cause(conformal), conformal.y, cfg.alpha)
        triage.meta |= {
            "conformal": sets.to_dict(),
            "red_flag_threshold": cost_ratio_threshold(cfg.cost_ratio),
            "red_flag_cost_ratio": cfg.cost_ratio,
            "red_flag_urgent_threshold": URGENT_PROBABILITY,
            "version": f"run-{nested.info.run_id[:8]}",
            "training_run_id": nested.info.run_id,
            "code_version": version,
            "config": {k: v for k, v in asdict(cfg).items() if k != "extra"},
        }
        card = report.model_card(cfg.model_name, name, run.metrics, asdict(cfg))
        model_uri = log_triage_model(triage, card, splits["test"].frame.head(3))
    return dataclasses.replace(run, model_uri=model_uri)


def _log_report(
    cfg: TrainConfig,
    summary: report.DataSummary,
    table: pd.DataFrame,
    champion: str | None,
    coverage: pd.DataFrame | None,
    images: dict[str, report.Image],
    views: list[report.Section],
    extra_sections: list[report.Section],
    setting_shift: report.Section | None,
) -> None:
    """Log ``comparison.html``: one self-contained page with every section and figure."""
    gap = None
    if CEILING in table.index:
        rows = table.drop(index=CEILING)
        figure = plots.bayes_gap_figure(
            list(map(str, rows.index)), rows["gap to Bayes (pp)"].tolist(), champion
        )
        gap = report.Image.from_figure(figure)
        plots.plt.close(figure)
    sections = report.comparison_sections(
        summary,
        table,
        champion,
        CEILING,
        differential=coverage,
        alpha=cfg.alpha,
        gap_figure=gap,
        views=views,
        extra=extra_sections,
        learning_curve=images.get("learning_curve"),
        curve_cases=ROBUSTNESS_CASES,
        robustness=images.get("robustness"),
        setting_shift=setting_shift,
    )
    run = mlflow.active_run()
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    meta = f"MLflow run {run.info.run_name if run else '-'}, {when}, code {code_version()[:12]}"
    page = report.build_html(f"{cfg.model_name}: candidates", sections, meta=meta)
    mlflow.log_text(page, "comparison.html")


def _describe(
    cfg: TrainConfig,
    experiment_id: str,
    parent_run_id: str,
    run_ids: dict[str, str],
    summary: report.DataSummary,
    table: pd.DataFrame,
    champion: str | None,
    registration: Any,
) -> None:
    """Descriptions MLflow shows: the experiment, the comparison run, candidates, the registry."""
    client = mlflow.MlflowClient()
    registered = None
    if registration is not None and champion is not None:
        registered = (
            f"Registered as {cfg.model_name} v{registration.version}. {registration.decision}"
        )
        describe(
            cfg.model_name,
            registration.version,
            report.model_version_description(
                champion, summary, table, CEILING, parent_run_id, registration.decision
            ),
            report.registered_model_description(
                cfg.model_name, registration.version, champion, summary, table, CEILING
            )
            if registration.moved
            else None,
        )
    note = report.comparison_description(summary, table, champion, CEILING, registered)
    client.set_tag(parent_run_id, report.NOTE_TAG, note)
    latest = f"run `{mlflow.active_run().info.run_name}`. " + report.champion_summary(  # type: ignore[union-attr]
        table, champion, CEILING
    )
    client.set_experiment_tag(experiment_id, report.NOTE_TAG, report.experiment_description(latest))
    for name, run_id in run_ids.items():
        text = report.candidate_description(name, summary, table, champion, CEILING)
        client.set_tag(run_id, report.NOTE_TAG, text)


@contextlib.contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """While training, keep MLflow's download bars and schema hints out of our progress lines.

    Scoped, not set at import: importing :mod:`training` changes no environment variable and no
    warning filter, and both are as they were once :func:`train` returns.
    """
    name = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    before = os.environ.get(name)
    os.environ.setdefault(name, "false")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message=".*Integer columns in Python cannot represent.*"
            )
            yield
    finally:
        if before is None:
            os.environ.pop(name, None)


def train(cfg: TrainConfig) -> Outcome:
    """Generate, fit every candidate, compare, and register the champion.

    Parameters
    ----------
    cfg : TrainConfig

    Returns
    -------
    Outcome
    """
    with _quiet_mlflow():
        return _train(cfg)


class Background:
    """``function(*args)`` in a daemon thread; :meth:`result` waits for it and returns its value
    or raises its exception. A daemon thread, so that Ctrl-C ends the run at once rather than
    after the work in it."""

    def __init__(self, function: Callable[..., Any], *args: Any) -> None:
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(function, args), daemon=True)
        self._thread.start()

    def _run(self, function: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            self._value = function(*args)
        except BaseException as error:  # handed to the caller's thread in result()
            self._error = error

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def _expected_step_times(experiment_id: str, cfg: TrainConfig) -> dict[str, float]:
    """Step times of the last finished comparison run of the same size: the ETAs' basis."""
    try:
        last = mlflow.search_runs(
            [experiment_id],
            filter_string=(
                "tags.role = 'comparison' and attributes.status = 'FINISHED' "
                f"and params.n_train = '{cfg.n_train}'"
            ),
            order_by=["attributes.start_time DESC"],
            max_results=1,
            output_format="list",
        )
    except mlflow.exceptions.MlflowException:
        return {}
    return expected_from_metrics(last[0].data.metrics) if last else {}


def _train(cfg: TrainConfig) -> Outcome:
    """:func:`train`'s body, run with MLflow's progress output off."""
    experiment = mlflow.set_experiment(cfg.experiment)
    mlflow.set_experiment_tag(*report.EXPERIMENT_KIND)
    version = code_version()
    expected = _expected_step_times(experiment.experiment_id, cfg)
    profile = (
        StepProfile(expected)
        if expected
        else StepProfile(reference_step_times(cfg.n_train), "on the reference machine")
    )
    step = profile.step
    with mlflow.start_run(run_name=f"comparison-seed{cfg.seed}-n{cfg.n_train}") as parent:
        say(f"tracking to {mlflow.get_tracking_uri()} (experiment {cfg.experiment!r})")
        mlflow.set_tags({"role": "comparison", "code_version": version})
        mlflow.log_params(
            {k: v for k, v in asdict(cfg).items() if k not in ("extra", "candidates")}
            | {f"seed_{k}": v for k, v in asdict(cfg.seeds).items()}
        )
        say(f"generating {cfg.n_train:,} / {cfg.n_val:,} / {cfg.n_test:,} cases ({cfg.setting})")
        with step("generate cases"):
            splits = make_splits(cfg)
            datasets = {
                name: dataset(splits[name].frame, f"vignettes-{name}") for name in ("train", "test")
            }
            mlflow.log_input(datasets["train"], context="training")
        runs: dict[str, CandidateRun] = {}
        for i, name in enumerate(cfg.candidates, start=1):
            say(f"candidate {i}/{len(cfg.candidates)}: {name}")
            with step(f"candidate {name}"):
                runs[name] = _run_candidate(name, cfg, splits, version, datasets)
        results = {name: run.metrics for name, run in runs.items()}
        run_ids = {name: run.run_id for name, run in runs.items()}
        eligible = [n for n in cfg.candidates if n in CHAMPION_ELIGIBLE]
        champion = min(eligible, key=lambda n: results[n]["val_log_loss"]) if eligible else None
        has_ceiling = CEILING in results
        table = report.comparison_table(results, CEILING)
        with step("comparison views"):
            fitted_by_name = {name: run.fitted for name, run in runs.items()}
            differential, coverage = (
                differential_report(fitted_by_name, champion, cfg, splits)
                if champion
                else ("", None)
            )
            urgency, urgency_figure = urgency_report(
                results, {name: run.tradeoff for name, run in runs.items()}, champion, cfg
            )
            view_sections, per_cause = views(runs, table, champion, splits["test"])
        markdown = report.to_markdown(table, champion)
        page = [markdown, per_cause, urgency, differential]
        mlflow.log_table(table.reset_index(), "comparison.json")
        summary = report.summarize_data(
            {k: s.frame for k, s in splits.items()}, cfg.setting, cfg.seed
        )
        champion_triage, champion_uri = None, None
        if champion:
            with step("champion model"):
                runs[champion] = _log_champion(champion, runs[champion], cfg, splits, version)
            champion_triage, champion_uri = runs[champion].fitted.triage, runs[champion].model_uri
            # Champion-eligible candidates are tree models, always logged as pyfunc models.
            assert champion_triage is not None and champion_uri is not None
            mlflow.set_tag("champion_candidate", champion)
            mlflow.log_metrics({f"champion_{k}": v for k, v in results[champion].items()})
        # The champion is registered first: the sections after it describe it, and a researcher
        # who stops the run there still has a served model.
        registration = None
        if champion and champion_triage and champion_uri and cfg.register:
            with step("register champion"):
                registration = register_champion(
                    cfg.model_name,
                    champion_uri,
                    champion_triage,
                    splits["test"],
                    say,
                    test_proba=runs[champion].test_proba,
                )
        images: dict[str, report.Image] = {}
        shift = None
        curve = None
        if champion and champion_triage is not None and cfg.learning_curve and has_ceiling:
            # The refits on fewer cases run beside robustness and the safety tables, which
            # mostly score: two cores are busy instead of one (make train: 86 s of refits).
            curve = Background(learning_curve_points, champion, cfg, splits)
        if champion and champion_triage is not None and cfg.robustness:
            say("robustness: missing answers and a change of setting")
            with step("robustness and change of setting"):
                bayes_test = (
                    runs[CEILING].test_proba if has_ceiling else bayes_proba(splits["test"].frame)
                )
                robust, images["robustness"] = robustness(
                    champion_triage, cfg, splits["test"], (runs[champion].test_proba, bayes_test)
                )
                shifted, shift_text, shift = setting_shift(
                    champion,
                    champion_triage,
                    cfg,
                    splits["test"],
                    (runs[champion].test_proba, bayes_test),
                )
                mlflow.log_metrics(robust | shifted)
                page.append(shift_text)
        # Sections of comparison.html beyond the standard ones go here (after the Bayes gap).
        extra_sections = [report.Section("Urgency tiers", urgency, [urgency_figure])]
        if champion is not None and champion_triage is not None:
            say("safety: serious-condition types and the safety table (test set)")
            with step("safety tables"):
                sections, safety_text, _, _ = safety_sections(
                    champion,
                    champion_triage,
                    splits["test"],
                    cfg.cost_ratio,
                    runs[champion].test_proba,
                    runs[champion].fitted.predict_red_flag(splits["test"]),
                )
            extra_sections += sections
            page.append(safety_text)
        if curve is not None and champion is not None:
            with step("learning curve"):  # the wait for the refits, and the figure
                points = curve.result()
                test_proba = {n: runs[n].test_proba for n in (champion, CEILING)}
                images["learning_curve"] = learning_curve(champion, cfg, splits, test_proba, points)
        # the latest `make sensitivity` run's findings, if there is one (it adds them itself to
        # the comparison that exists when it runs)
        sensitivity = latest_section(cfg.experiment)
        if sensitivity is not None:
            extra_sections.append(sensitivity)
        with step("report"):
            mlflow.log_text("\n".join(page), "comparison.md")  # the page's tables, in markdown
            _log_report(
                cfg,
                summary,
                table,
                champion,
                coverage,
                images,
                view_sections,
                extra_sections,
                shift,
            )
            _describe(
                cfg,
                experiment.experiment_id,
                parent.info.run_id,
                run_ids,
                summary,
                table,
                champion,
                registration,
            )
            mlflow_view.log_bayes_gaps(run_ids, results, CEILING, parent.info.run_id, champion)
            link = mlflow_view.share_runs_view(experiment.experiment_id, parent.info.run_id)
        mlflow.log_metrics(profile.metrics())
        mlflow.log_text(profile.markdown(), "profile.md")
        say(f"the comparison in the MLflow UI (make ui): {link}")
        version_id, moved = (
            (registration.version, registration.moved) if registration else (None, False)
        )
        print("\nWhere the time went (also logged as profile.md):\n" + profile.markdown())
        print(report.to_markdown(table, champion), flush=True)
        return Outcome(parent.info.run_id, table, champion, version_id, moved, results)


__all__ = ["CEILING", "EXPERIMENT", "MODEL_NAME", "Outcome", "TrainConfig", "train"]
