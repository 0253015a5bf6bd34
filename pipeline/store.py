"""Reading a store back: the runs of experiments or sweeps as one table, and the Model Registry.

The readers of the store (``promote``, ``explain``) aggregate what runs logged; they never
recompute it. Writing runs stays in ``tracking.py``; this module only reads, plus the
registry calls of ``promote``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.errors import ConfigError
from pipeline.tracking import client_for, resolve_uri

#: Params that say where a run was tracked, how its table was shown or how its sweep was started,
#: not what it computed (a resumed sweep's runs pair with the first run's).
NOT_CONFIG = ("tracking.", "study", "leaderboard", "metrics.", "resume")
#: A run's identity, as resume and every reader of the store count runs: its configuration on its data.
IDENTITY = ("tags.config_hash", "tags.data_fingerprint")


def client(uri: str | None) -> Any:
    """An MLflow client on ``uri`` (default: as the CLI, ``$MLFLOW_TRACKING_URI`` or the repo's store)."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a bar per run read back
    resolved = resolve_uri(uri)
    if resolved.startswith("sqlite:///") and not Path(resolved.removeprefix("sqlite:///")).is_file():
        raise ConfigError("--tracking-uri", resolved, "an existing store (a reader never creates one)")
    return client_for(resolved)


def leaf_runs(mlflow: Any, names: list[str], status: str = "FINISHED") -> pd.DataFrame:
    """The job runs (not sweep parents) of each experiment name or parent run id in
    ``names``, one row each: ``run_id``, ``run_name``, ``status``, ``experiment_id``, then
    ``params.<key>``, ``metrics.<name>`` and ``tags.<key>`` columns. ``status=None``: any status."""
    rows: list[dict[str, Any]] = []
    for name in names:
        experiment_ids, where = _scope(mlflow, name)
        if status:
            where.append(f"attributes.status = '{status}'")
        for run in _search(mlflow, experiment_ids, " and ".join(where)):
            if run.data.tags.get("sweep") == "true" or run.data.tags.get("kind") == "report":
                continue  # a sweep's parent or a report: no job's results
            rows.append(_row(run))
    return pd.DataFrame(rows)


def one_per_identity(runs: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """(``runs`` with each identity once, how many were dropped). Two processes that resumed one
    sweep, or a resume and a relog, can leave two FINISHED runs of one configuration on the same
    data; counted twice they would pass for two seeds. The newest is kept; a run without the
    identity tags (made by other tools) is kept as it is."""
    if runs.empty or not set(IDENTITY) <= set(runs.columns):
        return runs, 0
    newest = runs.sort_values("start_time", ascending=False, kind="stable")
    # among FINISHED runs only: a FAILED try beside a FINISHED one is no duplicate
    finished = newest["status"] == "FINISHED" if "status" in newest else pd.Series(True, index=newest.index)
    candidates = newest[finished & newest[list(IDENTITY)].notna().all(axis=1)]
    duplicate = candidates[list(IDENTITY)].duplicated().reindex(newest.index, fill_value=False)
    return newest[~duplicate].sort_index(), int(duplicate.sum())


def duplicates_line(dropped: int) -> str:
    """What a reader says when it dropped duplicates ("" when none)."""
    if not dropped:
        return ""
    return f"{dropped} duplicate run(s) of a configuration on the same data counted once (the newest kept)"


def _scope(mlflow: Any, name: str) -> tuple[list[str], list[str]]:
    """(experiment ids, filter clauses) for an experiment name or a sweep's parent run id."""
    from mlflow.exceptions import MlflowException

    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return [str(found.experiment_id)], []
    try:
        parent = mlflow.get_run(name)
    except MlflowException:
        parent = None
    if parent is None:
        known = ", ".join(sorted(e.name for e in mlflow.search_experiments())) or "(none in this store)"
        raise ConfigError("experiment", name, f"an experiment name or a sweep's parent run id; experiments: {known}")
    return [parent.info.experiment_id], [f"tags.mlflow.parentRunId = '{name}'"]


def _search(mlflow: Any, experiment_ids: list[str], where: str) -> list[Any]:
    runs, token = [], None
    while True:
        page = mlflow.search_runs(experiment_ids, where, max_results=10_000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _row(run: Any) -> dict[str, Any]:
    info, data = run.info, run.data
    row: dict[str, Any] = {
        "run_id": info.run_id,
        "run_name": info.run_name,
        "status": info.status,
        "experiment_id": info.experiment_id,
        "start_time": info.start_time,
    }
    row.update({f"params.{k}": v for k, v in data.params.items()})
    row.update({f"metrics.{k}": v for k, v in data.metrics.items()})
    row.update({f"tags.{k}": v for k, v in data.tags.items()})
    return row


def config_columns(frame: pd.DataFrame) -> list[str]:
    """The param columns that decide a run's numbers (not where it was tracked)."""
    return [c for c in frame.columns if c.startswith("params.") and not c[len("params.") :].startswith(NOT_CONFIG)]


def register(mlflow: Any, run_id: str, name: str, tags: dict[str, str], alias: str) -> Any:
    """Register the run's ``model`` artifact under ``name``, tag the version, point ``alias`` at it."""
    from mlflow.exceptions import MlflowException

    try:
        mlflow.get_registered_model(name)
    except MlflowException:
        mlflow.create_registered_model(name)
    source = f"{mlflow.get_run(run_id).info.artifact_uri}/model"
    version = mlflow.create_model_version(name, source, run_id=run_id, tags=tags)
    mlflow.set_registered_model_alias(name, alias, version.version)
    return version
