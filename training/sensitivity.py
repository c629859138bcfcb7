"""How much the conclusions depend on the knowledge base's assumptions (``make sensitivity``).

The champion is fitted once, on the default world. It is then scored on fresh cases from
alternative worlds (:func:`vignettes.perturb.perturb`: every table redrawn within its stated
uncertainty) against each world's own Bayes ceiling, and on one-at-a-time swings of each table to
either end of its 95% interval (:func:`vignettes.perturb.swing`), which rank the assumptions by
how much they move the champion's gap to Bayes and the share of serious conditions caught
(tornado plots). Every world is a nested MLflow run under one parent run, with the table, the
plots and a report page as the parent's artifacts.

Each world costs what generating and scoring its cases costs: no world refits anything. Swings
reuse the same case seed, so their differences are not drowned by sampling noise (common random
numbers).
"""

from __future__ import annotations

import argparse
import html
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
from sklearn.metrics import log_loss

from model.mlflow_names import EXPERIMENT
from model.triage import RED_FLAG_COST_RATIO, cost_ratio_threshold
from training.candidates import Fitted, Split, fit_lightgbm
from training.metrics import expected_calibration_error, urgency_metrics
from training.report import Section, build_html, markdown_to_html, with_section
from vignettes import generate, posterior
from vignettes.knowledge import KnowledgeBase, load_knowledge
from vignettes.perturb import perturb, swing, uncertainties
from vignettes.schema import CAUSES

__all__ = [
    "SECTION_TITLE",
    "SensitivityConfig",
    "attach_to_comparison",
    "comparison_section",
    "evaluate_world",
    "latest_section",
    "main",
    "run_sensitivity",
]

SECTION_TITLE = "How much the assumptions matter"
"""The title of the section ``make sensitivity`` adds to the comparison report."""
RUN_PREFIX = "sensitivity-"


@dataclass
class SensitivityConfig:
    """What ``make sensitivity`` can be told.

    Attributes
    ----------
    worlds : int
        Alternative worlds drawn from every table's uncertainty (``N=``).
    cases : int
        Fresh cases scored per world.
    swing_cases : int
        Cases per one-at-a-time swing (two swings per table).
    n_train, n_val : int
        The champion's training and validation (calibration) cases, default world.
    seed : int
        Seed of the training data, the worlds and their cases.
    swings : bool
        Also run the one-at-a-time swings (the tornado ranking).
    experiment : str
        MLflow experiment.
    """

    worlds: int = 20
    cases: int = 20_000
    swing_cases: int = 10_000
    n_train: int = 100_000
    n_val: int = 20_000
    seed: int = 7
    swings: bool = True
    experiment: str = EXPERIMENT


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def fit_champion(cfg: SensitivityConfig) -> Fitted:
    """The champion's family (LightGBM), fitted once on the default world."""
    train = Split(generate(cfg.n_train, cfg.seed))
    val = Split(generate(cfg.n_val, cfg.seed, start=cfg.n_train))
    return fit_lightgbm(train, val, cfg.seed)


def evaluate_world(
    fitted: Fitted, knowledge: KnowledgeBase, n: int, seed: int, threshold: float
) -> dict[str, float]:
    """The champion and the world's own Bayes posterior on ``n`` fresh cases of one world.

    Returns
    -------
    dict
        ``accuracy``, ``log_loss``, ``ece``, ``caught`` (share of serious conditions not left
        routine at the served threshold) for the champion; the same with a ``bayes_`` prefix
        for the world's exact posterior; ``gap_pp`` (Bayes accuracy minus the champion's, in
        points), ``log_loss_ratio`` and ``caught_gap_pp``.
    """
    split = Split(generate(n, seed, knowledge=knowledge))
    post = posterior(split.frame, knowledge=knowledge)
    scores = {
        "": (fitted.predict_cause(split), fitted.predict_red_flag(split)),
        "bayes_": (post[list(CAUSES)].to_numpy(), post["red_flag"].to_numpy()),
    }
    out: dict[str, float] = {}
    for prefix, (proba, red) in scores.items():
        tiers = urgency_metrics(red, threshold, split.sign_tier, split.serious, split.answered_no)
        out |= {
            f"{prefix}accuracy": float((proba.argmax(axis=1) == split.y).mean()),
            f"{prefix}log_loss": float(
                log_loss(split.y, np.clip(proba, 1e-15, 1), labels=range(len(CAUSES)))
            ),
            f"{prefix}ece": expected_calibration_error(proba, split.y),
            f"{prefix}caught": tiers["caught"],
        }
    out["gap_pp"] = 100 * (out["bayes_accuracy"] - out["accuracy"])
    out["log_loss_ratio"] = out["log_loss"] / out["bayes_log_loss"]
    out["caught_gap_pp"] = 100 * (out["bayes_caught"] - out["caught"])
    return out


def _log_world(name: str, params: dict[str, object], metrics: dict[str, float]) -> None:
    with mlflow.start_run(run_name=name, nested=True):
        mlflow.log_params(params)
        mlflow.log_metrics({k: v for k, v in metrics.items() if np.isfinite(v)})


def tornado_figure(swings: pd.DataFrame, metric: str, baseline: float, label: str, top: int = 15):
    """One bar per table, from its low swing's value to its high swing's, largest range first."""
    wide = swings.pivot(index="table", columns="direction", values=metric)
    wide["range"] = (wide[1] - wide[-1]).abs()
    wide = wide.sort_values("range", ascending=True).tail(top)
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(wide) + 1.5))
    y = np.arange(len(wide))
    for i, (low, high) in enumerate(zip(wide[-1], wide[1], strict=True)):
        ax.plot([low, high], [i, i], color="#888", lw=1, zorder=1)
    ax.scatter(wide[-1], y, color="#1f77b4", label="low end (-1.96 sd)", zorder=2)
    ax.scatter(wide[1], y, color="#d62728", label="high end (+1.96 sd)", zorder=2)
    ax.axvline(baseline, color="black", lw=0.8, ls="--", label="default world")
    ax.set_yticks(y, wide.index)
    ax.set_xlabel(label)
    ax.set_title(f"Which assumptions move it most: {label}")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def run_sensitivity(cfg: SensitivityConfig) -> dict[str, pd.DataFrame]:
    """Fit once, score every world, log it all to MLflow.

    Returns
    -------
    dict
        ``worlds`` (one row per random world), ``swings`` (one row per table and direction,
        empty without swings) and ``ranking`` (tables by the range of the gap they cause).
    """
    threshold = cost_ratio_threshold(RED_FLAG_COST_RATIO)
    mlflow.set_experiment(cfg.experiment)
    with mlflow.start_run(run_name=f"{RUN_PREFIX}seed{cfg.seed}-worlds{cfg.worlds}") as run:
        mlflow.set_tag("role", "sensitivity")
        mlflow.log_params(vars(cfg))
        say(f"fitting the champion (LightGBM) once on {cfg.n_train:,} default-world cases")
        fitted = fit_champion(cfg)
        default = load_knowledge()
        start = time.perf_counter()
        base = evaluate_world(fitted, default, cfg.cases, cfg.seed + 1, threshold)
        _log_world("default-world", {"world": "default"}, base)
        rows = []
        for k in range(cfg.worlds):
            metrics = evaluate_world(
                fitted,
                perturb(default, seed=cfg.seed * 1000 + k),
                cfg.cases,
                cfg.seed + 1,
                threshold,
            )
            _log_world(
                f"world-{k}", {"world": "perturbed", "world_seed": cfg.seed * 1000 + k}, metrics
            )
            rows.append({"world": k, **metrics})
            elapsed = time.perf_counter() - start
            say(
                f"world {k + 1}/{cfg.worlds}: gap {metrics['gap_pp']:.2f} pp, caught "
                f"{metrics['caught']:.1%} (ETA {elapsed / (k + 2) * (cfg.worlds - k - 1):.0f} s)"
            )
        worlds = pd.DataFrame(rows)
        swings = _swings(cfg, fitted, default, threshold) if cfg.swings else pd.DataFrame()
        ranking = _ranking(swings) if len(swings) else pd.DataFrame()
        summary = _summary(base, worlds)
        mlflow.log_metrics(summary)
        _log_artifacts(base, worlds, swings, ranking, summary)
        say(_headline(summary, ranking))
        section = comparison_section(base, worlds, swings, ranking, summary, run.info.run_name)
    attached = attach_to_comparison(section, cfg.experiment)
    say(
        f"added '{SECTION_TITLE}' to comparison.html of run {attached}"
        if attached
        else "no finished comparison run yet: `make train` adds this section to its report"
    )
    return {"worlds": worlds, "swings": swings, "ranking": ranking}


def comparison_section(
    base: dict[str, float],
    worlds: pd.DataFrame,
    swings: pd.DataFrame,
    ranking: pd.DataFrame,
    summary: dict[str, float],
    run_name: str,
) -> Section:
    """The sensitivity run's findings as one section of the comparison report."""
    parts = _sections(base, worlds, swings, ranking, summary)
    text = "".join(
        (f"<h3>{html.escape(p.title)}</h3>" if i else "") + p.text for i, p in enumerate(parts)
    )
    text += (
        f"<p>From MLflow run <code>{html.escape(run_name)}</code> (<code>make sensitivity"
        "</code>): a LightGBM champion fitted by that run on the default world, not the "
        "registered one; its page <code>sensitivity.html</code> holds every world.</p>"
    )
    figures = [f for p in parts for f in p.figures]
    return Section(SECTION_TITLE, text, figures)


def _latest_finished(experiment: str, where: str) -> mlflow.entities.Run | None:
    """The latest finished run of ``experiment`` that matches the search filter ``where``."""
    client = mlflow.MlflowClient()
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    runs = client.search_runs(
        [found.experiment_id],
        f"{where} AND attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0] if runs else None


def latest_section(experiment: str = EXPERIMENT) -> Section | None:
    """The section of the latest finished ``make sensitivity`` run, rebuilt from its logged
    tables and metrics; ``None`` when there is none (or it logged no tables)."""
    run = _latest_finished(experiment, f"attributes.run_name LIKE '{RUN_PREFIX}%'")
    if run is None:
        return None
    summary = dict(run.data.metrics)
    base = {k.removeprefix("default_"): v for k, v in summary.items() if k.startswith("default_")}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=tmp))
        if not (folder / "worlds.csv").is_file() or "gap_pp" not in base:
            return None
        tables = {
            name: pd.read_csv(folder / f"{name}.csv") if (folder / f"{name}.csv").is_file()
            else pd.DataFrame()
            for name in ("worlds", "swings", "ranking")
        }  # fmt: skip
    return comparison_section(
        base, tables["worlds"], tables["swings"], tables["ranking"], summary, run.info.run_name
    )


def attach_to_comparison(section: Section, experiment: str = EXPERIMENT) -> str | None:
    """Put ``section`` into ``comparison.html`` of the latest finished comparison run (in place
    of an earlier sensitivity section); returns that run's name, or ``None`` if there is none."""
    run = _latest_finished(experiment, "tags.role = 'comparison'")
    if run is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=run.info.run_id, artifact_path="comparison.html", dst_path=tmp
            )
        except Exception:  # a comparison run without its page (stopped before the report)
            return None
        page = Path(path).read_text(encoding="utf-8")
    mlflow.MlflowClient().log_text(run.info.run_id, with_section(page, section), "comparison.html")
    return str(run.info.run_name)


def _swings(
    cfg: SensitivityConfig, fitted: Fitted, default: KnowledgeBase, threshold: float
) -> pd.DataFrame:
    rows = []
    tables = list(uncertainties(default))
    start = time.perf_counter()
    for i, table in enumerate(tables):
        for direction in (-1, 1):
            world = swing(table, direction, default)
            metrics = evaluate_world(fitted, world, cfg.swing_cases, cfg.seed + 2, threshold)
            _log_world(
                f"swing-{table}-{'high' if direction > 0 else 'low'}",
                {"world": "swing", "table": table, "direction": direction},
                metrics,
            )
            rows.append({"table": table, "direction": direction, **metrics})
        elapsed = time.perf_counter() - start
        eta = elapsed / (i + 1) * (len(tables) - i - 1)
        say(f"swings {i + 1}/{len(tables)} ({table}; ETA {eta:.0f} s)")
    return pd.DataFrame(rows)


def _ranking(swings: pd.DataFrame) -> pd.DataFrame:
    out = []
    for table, group in swings.groupby("table", sort=False):
        by = group.set_index("direction")
        out.append(
            {
                "table": table,
                "gap_range_pp": float(abs(by.loc[1, "gap_pp"] - by.loc[-1, "gap_pp"])),
                "caught_range_pp": float(100 * abs(by.loc[1, "caught"] - by.loc[-1, "caught"])),
                "bayes_accuracy_range_pp": float(
                    100 * abs(by.loc[1, "bayes_accuracy"] - by.loc[-1, "bayes_accuracy"])
                ),
            }
        )
    return pd.DataFrame(out).sort_values("gap_range_pp", ascending=False, ignore_index=True)


def _summary(base: dict[str, float], worlds: pd.DataFrame) -> dict[str, float]:
    out = {f"default_{k}": v for k, v in base.items()}
    if len(worlds):
        for metric in ("gap_pp", "log_loss_ratio", "ece", "caught", "bayes_caught"):
            out[f"worlds_{metric}_mean"] = float(worlds[metric].mean())
            out[f"worlds_{metric}_max"] = float(worlds[metric].max())
            out[f"worlds_{metric}_min"] = float(worlds[metric].min())
    return out


def _headline(summary: dict[str, float], ranking: pd.DataFrame) -> str:
    text = (
        f"default world: gap {summary['default_gap_pp']:.2f} pp, caught "
        f"{summary['default_caught']:.1%}"
    )
    if "worlds_gap_pp_max" in summary:
        text += (
            f"; across the perturbed worlds the champion stays within "
            f"{summary['worlds_gap_pp_max']:.2f} points of Bayes (mean "
            f"{summary['worlds_gap_pp_mean']:.2f}), catching {summary['worlds_caught_min']:.1%}-"
            f"{summary['worlds_caught_max']:.1%} of serious conditions"
        )
    if len(ranking):
        text += "; the gap depends most on " + ", ".join(ranking["table"].head(3))
        by_caught = ranking.sort_values("caught_range_pp", ascending=False)["table"].head(3)
        text += "; serious conditions caught on " + ", ".join(by_caught)
    return text


def _log_artifacts(
    base: dict[str, float],
    worlds: pd.DataFrame,
    swings: pd.DataFrame,
    ranking: pd.DataFrame,
    summary: dict[str, float],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        worlds.to_csv(folder / "worlds.csv", index=False)
        if len(swings):
            swings.to_csv(folder / "swings.csv", index=False)
            ranking.to_csv(folder / "ranking.csv", index=False)
            for metric, baseline, label, name in (
                ("gap_pp", base["gap_pp"], "champion's gap to Bayes accuracy (points)", "gap"),
                ("caught", base["caught"], "share of serious conditions caught", "caught"),
            ):
                fig = tornado_figure(swings, metric, baseline, label)
                fig.savefig(folder / f"tornado_{name}.png", dpi=110)
                plt.close(fig)
        (folder / "sensitivity.md").write_text(_headline(summary, ranking) + "\n")
        page = build_html(
            "How much the assumptions matter", _sections(base, worlds, swings, ranking, summary)
        )
        (folder / "sensitivity.html").write_text(page)
        mlflow.log_artifacts(str(folder))


def _table_html(frame: pd.DataFrame, digits: int = 3) -> str:
    return frame.to_html(index=False, float_format=lambda v: f"{v:.{digits}f}", border=0)


def _sections(
    base: dict[str, float],
    worlds: pd.DataFrame,
    swings: pd.DataFrame,
    ranking: pd.DataFrame,
    summary: dict[str, float],
) -> list[Section]:
    """The report page: the headline, the worlds' spread, the ranking and its tornado plots."""
    shown = ["gap_pp", "log_loss_ratio", "ece", "caught", "bayes_accuracy", "bayes_caught"]
    sections = [
        Section(
            "The answer",
            markdown_to_html(_headline(summary, ranking))
            + "<p>The champion is fitted once on the default world; each world's cases are "
            "scored against that world's own exact posterior (its Bayes ceiling).</p>",
        )
    ]
    if len(worlds):
        spread = worlds[shown].describe().loc[["mean", "min", "max"]].reset_index()
        sections.append(Section("Across plausible worlds", _table_html(spread)))
    if len(ranking):
        figures = [
            tornado_figure(swings, "gap_pp", base["gap_pp"], "gap to Bayes accuracy (points)"),
            tornado_figure(swings, "caught", base["caught"], "serious conditions caught"),
        ]
        sections.append(
            Section("Which assumptions matter most", _table_html(ranking.head(15), 2), figures)
        )
    return sections


def parse_args(argv: Sequence[str] | None = None) -> SensitivityConfig:
    defaults = SensitivityConfig()
    parser = argparse.ArgumentParser(
        prog="python -m training.sensitivity",
        description="How much the results depend on the knowledge base's assumptions: fit the "
        "champion once, score it on alternative worlds against each world's Bayes ceiling, and "
        "rank the assumptions by one-at-a-time swings (tornado plots, logged to MLflow).",
    )
    parser.add_argument("--worlds", type=int, default=defaults.worlds, help="perturbed worlds (N=)")
    parser.add_argument("--cases", type=int, default=defaults.cases, help="cases per world")
    parser.add_argument("--swing-cases", type=int, default=defaults.swing_cases)
    parser.add_argument("--n-train", type=int, default=defaults.n_train)
    parser.add_argument("--n-val", type=int, default=defaults.n_val)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--no-swings", action="store_true", help="skip the tornado ranking")
    args = parser.parse_args(argv)
    for name in ("worlds", "cases", "swing_cases", "n_train", "n_val"):
        low = 0 if name == "worlds" else 100
        if getattr(args, name) < low:
            parser.error(f"--{name.replace('_', '-')}: expected at least {low}")
    return SensitivityConfig(
        worlds=args.worlds,
        cases=args.cases,
        swing_cases=args.swing_cases,
        n_train=args.n_train,
        n_val=args.n_val,
        seed=args.seed,
        swings=not args.no_swings,
    )


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    run_sensitivity(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
