"""What a researcher sees first in the MLflow UI: the comparison, with its key metrics as columns.

MLflow 3.17's UI opens every experiment in its GenAI view (Overview, Traces) unless the user's
browser has switched the sidebar's workflow type to "Machine learning": the type is a per-browser
setting (local storage ``mlflow.workflowType``, default ``genai``), and when the UI's
workflow-type switch is on it wins over the experiment's ``mlflow.experimentKind`` tag. A link may
carry ``workflowType=machine_learning``, which the UI honours and remembers. So ``make train``
prints, and the README gives, one link that opens the runs list in the model-training view, with
a shared view (the UI's own "share view" mechanism, an experiment tag
``mlflow.sharedViewState.<key>`` holding the view as JSON) that

* shows the comparison run first (pinned), with the champion's figures on its row and the
  candidates under it (expanding a parent is a per-browser setting the UI does not share);
* shows the metrics every candidate logs under the same names as columns: accuracy, the gap to
  the Bayes accuracy in points, the log-loss ratio to Bayes, ECE and serious conditions caught.

Every candidate logs ``gap_to_bayes_pp`` and ``log_loss_ratio_to_bayes`` once the ceiling is
known (:func:`log_bayes_gaps`), so the columns mean the same for every model family.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import mlflow

__all__ = [
    "KEY_METRICS",
    "VIEW_KEY",
    "log_bayes_gaps",
    "runs_view_state",
    "runs_view_url",
    "share_runs_view",
]

VIEW_KEY = "comparison"
"""The shared view's key: ``viewStateShareKey=comparison`` in the link."""
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_KEY}"

KEY_METRICS = (
    "accuracy",
    "gap_to_bayes_pp",
    "log_loss",
    "log_loss_ratio_to_bayes",
    "ece",
    "urgency_caught",
)
"""The columns the comparison view shows, logged under these names by every candidate."""


def _column(kind: str, name: str) -> str:
    """The UI's canonical column key, e.g. ``metrics.`accuracy```."""
    return f"{kind}.`{name}`"


def runs_view_state(parent_run_id: str) -> dict:
    """The runs list as the comparison view shows it (the UI's shareable view-state JSON)."""
    return {
        "selectedColumns": [_column("metrics", m) for m in KEY_METRICS]
        + [_column("tags", "candidate")],
        "runsPinned": [parent_run_id],
        "orderByKey": "attributes.start_time",
        "orderByAsc": False,
        "searchFilter": "",
    }


def runs_view_url(experiment_id: str, tracking_ui: str = "http://127.0.0.1:5000") -> str:
    """The link that opens the runs list, model-training view, comparison first."""
    return (
        f"{tracking_ui}/#/experiments/{experiment_id}/runs"
        f"?viewStateShareKey={VIEW_KEY}&workflowType=machine_learning"
    )


def share_runs_view(experiment_id: str, parent_run_id: str) -> str:
    """Store the comparison view on the experiment; return its link (for ``make ui``)."""
    mlflow.MlflowClient().set_experiment_tag(
        experiment_id, VIEW_TAG, json.dumps(runs_view_state(parent_run_id))
    )
    return runs_view_url(experiment_id)


def log_bayes_gaps(
    run_ids: Mapping[str, str],
    results: Mapping[str, Mapping[str, float]],
    ceiling: str,
    parent_run_id: str | None = None,
    champion: str | None = None,
) -> None:
    """Give every candidate's run the gap to the ceiling under the same metric names.

    The comparison (parent) run gets the champion's :data:`KEY_METRICS` under the same names,
    so its row in the runs list reads as the result of the comparison.

    Parameters
    ----------
    run_ids : mapping
        Candidate name -> its run id.
    results : mapping
        Candidate name -> its test metrics (``accuracy`` and ``log_loss`` at least).
    ceiling : str
        The ceiling's name (the Bayes posterior); nothing is logged without it.
    parent_run_id, champion : str, optional
        The comparison run and the champion's name.
    """
    if ceiling not in results:
        return
    bayes = results[ceiling]
    client = mlflow.MlflowClient()
    for name, run_id in run_ids.items():
        row = results.get(name)
        if row is None:
            continue
        client.log_metric(run_id, "gap_to_bayes_pp", 100 * (bayes["accuracy"] - row["accuracy"]))
        client.log_metric(run_id, "log_loss_ratio_to_bayes", row["log_loss"] / bayes["log_loss"])
    if parent_run_id and champion is not None and champion in results:
        best = dict(results[champion])
        best["gap_to_bayes_pp"] = 100 * (bayes["accuracy"] - best["accuracy"])
        best["log_loss_ratio_to_bayes"] = best["log_loss"] / bayes["log_loss"]
        for name in KEY_METRICS:
            if name in best:
                client.log_metric(parent_run_id, name, float(best[name]))
