"""Every MLflow call lives here: the store, experiments, runs, params, metrics and artifacts.

Runs are created through ``MlflowClient`` with explicit ids, not the fluent API's process-wide
active run, so that nested runs work the same in-process and in launcher workers. Every run
opened here ends FINISHED, FAILED (with the error as the ``error`` tag) or KILLED.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from pipeline import interrupts
from pipeline.paths import REPO_ROOT, default_store

log = logging.getLogger(__name__)

PARENT_ENV = "IMBALANCE_LAB_PARENT_RUN_ID"
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
MAX_PARAM_LENGTH = 6000
#: What the runs table's Source column shows.
SOURCE = {"mlflow.source.type": "LOCAL", "mlflow.source.name": "python -m pipeline"}

#: Runs opened by this process and not yet ended, so an interrupted process can end them.
_open_runs: dict[str, str] = {}


def resolve_uri(uri: str | None) -> str:
    """``uri``, else ``$MLFLOW_TRACKING_URI``, else the SQLite store at the repo root (see
    ``paths.default_store``).

    A relative SQLite path is made absolute against the current directory, once, so that a
    job that changes directory (Hydra's chdir, DVC's experiment copies) still finds it.
    """
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{default_store()}"
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        uri = prefix + str(Path(uri[len(prefix) :]).resolve())
    return uri


def _store_path(uri: str) -> Path | None:
    return Path(uri[len("sqlite:///") :]) if uri.startswith("sqlite:///") else None


def _client(uri: str) -> Any:
    from mlflow import MlflowClient

    # MLflow's INFO lines (store creation, migrations) and the pickle notice on every model
    # save would bury a run's one-line summary or error.
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("mlflow.sklearn").setLevel(logging.ERROR)
    return MlflowClient(tracking_uri=uri)


def prepare(cfg: DictConfig) -> tuple[str, str]:
    """Create the store (once, before any job) and the experiment; return (uri, experiment id)."""
    uri = resolve_uri(cfg.tracking.uri)
    path = _store_path(uri)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    return uri, _experiment_id(_client(uri), experiment_name(cfg), path)


def experiment_id(cfg: DictConfig) -> str:
    """The id of the config's experiment (created if need be)."""
    return prepare(cfg)[1]


def experiment_name(cfg: DictConfig) -> str:
    return str(cfg.tracking.experiment or cfg.study)


def _experiment_id(client: Any, name: str, store: Path | None) -> str:
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location = (store.parent / "mlartifacts").as_uri() if store is not None else None
    try:
        return str(client.create_experiment(name, artifact_location=location, tags=EXPERIMENT_KIND))
    except MlflowException:  # created meanwhile by another worker
        return str(client.get_experiment_by_name(name).experiment_id)


def flatten(node: Any, prefix: str = "") -> dict[str, str]:
    """Config as ``{"fix.name": "smote", "model.C": "1.0", ...}``: the MLflow param names."""
    if isinstance(node, DictConfig):
        node = OmegaConf.to_container(node, resolve=True)
    if not isinstance(node, dict):
        return {prefix: str(node)[:MAX_PARAM_LENGTH]}
    out: dict[str, str] = {}
    for key, value in node.items():
        out.update(flatten(value, f"{prefix}{key}."))
    return {k.rstrip("."): v for k, v in out.items()}


def run_name(cfg: DictConfig) -> str:
    """``smote-logreg-isotonic-p0.05-s3``: what the run is, readable in the runs table."""
    rate = cfg.imbalance.positive_rate
    rate_text = "nat" if rate is None else f"{rate:g}"
    return f"{cfg.fix.name}-{cfg.model.name}-{cfg.calibration.name}-p{rate_text}-s{cfg.seed}"


@functools.cache
def git_tags() -> dict[str, str]:
    """The commit and dirty flag of the repository the code runs from."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "HEAD")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    return {"mlflow.source.git.commit": commit or "unknown", "git_dirty": str(dirty).lower()}


def track(
    cfg: DictConfig, job: Callable[[], Any], describe: Callable[[Any], str], tags: dict[str, str] | None = None
) -> Any:
    """Run ``job`` inside one MLflow run and log its ``RunResult``; nest under the sweep's parent.

    ``describe(result)`` gives the run's Markdown note; ``tags`` are added to the run's own.
    The run ends FINISHED, FAILED (error tag) or KILLED (Ctrl-C, SIGTERM); the exception is re-raised.
    """
    uri, experiment = prepare(cfg)
    client = _client(uri)
    tags = {**git_tags(), **SOURCE, "study": str(cfg.study), **(tags or {})}
    if os.environ.get(PARENT_ENV):
        tags["mlflow.parentRunId"] = os.environ[PARENT_ENV]
    with interrupts.shielded():
        info = client.create_run(experiment, run_name=run_name(cfg), tags=tags).info
        run_id = info.run_id
        _open_runs[run_id] = uri
    with _ending(client, run_id):
        client.log_batch(run_id, params=_params(flatten(cfg)))
        result = job()
        _log_result(client, run_id, cfg, result, describe(result), info.artifact_uri)
    return result


@functools.cache
def _requirements() -> tuple[str, ...]:
    from importlib.metadata import version

    names = ("scikit-learn", "imbalanced-learn", "numpy", "pandas", "scipy")
    return tuple(f"{name}=={version(name)}" for name in names)


def _log_result(client: Any, run_id: str, cfg: DictConfig, result: Any, note: str, artifact_uri: str) -> None:
    from mlflow.entities import Metric, RunTag

    from pipeline import plots

    now = int(time.time() * 1000)
    metrics = [Metric(k, float(v), now, 0) for k, v in result.metrics.items()]
    tags = {**result.info, "mlflow.note.content": note}
    client.log_batch(run_id, metrics=metrics, tags=[RunTag(k, str(v)) for k, v in tags.items()])
    if result.inputs:
        client.log_inputs(run_id, datasets=[_dataset_input(cfg, part) for part in result.inputs])
    local = _local_artifact_dir(artifact_uri)
    with tempfile.TemporaryDirectory() as tmp:
        out = local or Path(tmp)  # a local artifact store is written in place, not copied into
        plots.write_all(result.curves, out)
        (out / "predictions").mkdir(parents=True, exist_ok=True)
        result.predictions.to_parquet(out / "predictions" / "test.parquet")
        (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        if cfg.tracking.log_model:
            _save_model(result.model, out / "model", result.example)
        if local is None:
            client.log_artifacts(run_id, str(out))


def _local_artifact_dir(uri: str) -> Path | None:
    """The run's artifact folder when the artifact store is a local folder (``file:``), else None."""
    from urllib.parse import urlparse

    from mlflow.utils.file_utils import local_file_uri_to_path

    if urlparse(uri).scheme != "file":
        return None
    path = Path(local_file_uri_to_path(uri))
    path.mkdir(parents=True, exist_ok=True)
    return path


_SCHEMA_TYPES = {"float64": "double", "float32": "float", "int64": "long", "int32": "integer", "bool": "boolean"}


def _dataset_input(cfg: DictConfig, part: dict[str, Any]) -> Any:
    """An MLflow dataset input for one split part, named and digested from our own fingerprint,
    so the runs table's Dataset column and the lineage show which rows a run saw."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    source = {"dataset": part["dataset"], "positive_rate": cfg.imbalance.positive_rate, "seed": cfg.seed}
    colspec = [{"name": c, "type": _SCHEMA_TYPES.get(t, "string")} for c, t in part["columns"].items()]
    dataset = Dataset(
        name=f"{part['dataset']}-{part['part']}",
        digest=part["digest"][:8],
        source_type="code",
        source=json.dumps(source),
        schema=json.dumps({"mlflow_colspec": colspec}),
        profile=json.dumps({"num_rows": part["rows"], "positives": part["positives"]}),
    )
    return DatasetInput(dataset, tags=[InputTag("mlflow.data.context", part["part"])])


def _save_model(model: Any, path: Path, example: Any) -> None:
    """The run's ``Decider`` as an MLflow model: ``predict`` applies the run's threshold, the
    threshold and its policy are in the model's metadata, and a signature and input example
    (a few test rows) let ``mlflow models serve`` check its input."""
    import mlflow.sklearn
    import mlflow.utils.environment
    from mlflow.models import infer_signature

    metadata = {"threshold": float(model.threshold), "threshold_policy": str(model.policy), **(model.info or {})}
    # The requirements are the installed versions themselves, so MLflow's check that they match
    # the environment can only pass; it maps every installed distribution to its modules first,
    # about 0.8 s in each new process.
    check = mlflow.utils.environment.warn_dependency_requirement_mismatches
    mlflow.utils.environment.warn_dependency_requirement_mismatches = lambda model_requirements: None
    try:
        mlflow.sklearn.save_model(
            model,
            str(path),
            serialization_format="pickle",
            pip_requirements=list(_requirements()),
            code_paths=[str(REPO_ROOT / "pipeline")],
            signature=infer_signature(example, model.predict(example)),
            input_example=example,
            metadata=metadata,
        )
    finally:
        mlflow.utils.environment.warn_dependency_requirement_mismatches = check


def _params(flat: dict[str, str]) -> list[Any]:
    from mlflow.entities import Param

    return [Param(k, v) for k, v in flat.items()]


class _ending:
    """Context manager that ends an open run FINISHED, FAILED or KILLED, and forgets it."""

    def __init__(self, client: Any, run_id: str) -> None:
        self.client, self.run_id = client, run_id

    def __enter__(self) -> None:
        _open_runs[self.run_id] = self.client.tracking_uri

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: object) -> None:
        with interrupts.shielded():
            if kind is None:
                self.client.set_terminated(self.run_id, "FINISHED")
            elif issubclass(kind, (KeyboardInterrupt, SystemExit)) or interrupts.received():
                self.client.set_terminated(self.run_id, "KILLED")
            else:
                self.client.set_tag(self.run_id, "error", one_line(err))
                self.client.set_terminated(self.run_id, "FAILED")
            _open_runs.pop(self.run_id, None)


def one_line(err: BaseException | None) -> str:
    """The first line of an error's message, prefixed by its type unless it is a ConfigError."""
    from pipeline.errors import ConfigError

    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text if isinstance(err, ConfigError) else f"{type(err).__name__}: {text}"


def open_parent(cfg: DictConfig, name: str, note: str) -> str:
    """Create the sweep's parent run and publish its id to the jobs (and launcher workers)."""
    uri, experiment = prepare(cfg)
    client = _client(uri)
    tags = {**git_tags(), **SOURCE, "study": str(cfg.study), "sweep": "true", "mlflow.note.content": note}
    with interrupts.shielded():
        run_id = str(client.create_run(experiment, run_name=name, tags=tags).info.run_id)
        _open_runs[run_id] = uri
        os.environ[PARENT_ENV] = run_id
    return run_id


def close_parent(run_id: str, metrics: dict[str, float], artifacts: Path, note: str) -> None:
    """Log the sweep summary to the parent and end it FINISHED."""
    from mlflow.entities import Metric, RunTag

    client = _client(_open_runs[run_id])
    now = int(time.time() * 1000)
    with _ending(client, run_id):
        client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
            tags=[RunTag("mlflow.note.content", note)],
        )
        client.log_artifacts(run_id, str(artifacts))
    os.environ.pop(PARENT_ENV, None)


def end_open_runs(status: str, error: str) -> None:
    """End every run this process left open (an interrupted or failed sweep's parent)."""
    with interrupts.shielded():
        for run_id, uri in list(_open_runs.items()):
            client = _client(uri)
            if error:
                client.set_tag(run_id, "error", error)
            client.set_terminated(run_id, status)
            _open_runs.pop(run_id, None)
        os.environ.pop(PARENT_ENV, None)
