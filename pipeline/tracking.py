"""Every MLflow call lives here: the store, experiments, runs, params, metrics and artifacts.

Runs are created through ``MlflowClient`` with explicit ids, not the fluent API's process-wide
active run, so that nested runs work the same in-process and in launcher workers. Every run
opened here ends FINISHED, FAILED (with the error as the ``error`` tag) or KILLED.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from pipeline import credentials, interrupts, sqlitestore
from pipeline.paths import REPO_ROOT, default_store
from pipeline.result import PickledModel, portable

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
    scheme, sep, rest = uri.partition("://")
    uri = scheme.lower() + sep + rest  # a scheme is case-insensitive (RFC 3986); MLflow's are lower case
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        uri = prefix + str(Path(uri[len(prefix) :]).resolve())
    return credentials.put_back(uri)


#: What a tracking URI may be: a SQLite file, an MLflow server, or a database MLflow can use.
SCHEMES = ("sqlite:///", "http://", "https://", "postgresql://", "postgresql+psycopg://", "mysql://", "mssql://")


def masked(uri: str) -> str:
    """``uri`` without the user:password part, for anything that is printed or written."""
    return credentials.mask(uri)


def check_uri(uri: str | None) -> None:
    """Refuse a tracking URI MLflow would reject later, or take for a plain folder."""
    from pipeline.errors import ConfigError

    resolved = resolve_uri(uri)
    if not resolved.startswith(SCHEMES):
        accepted = "sqlite:///<path>.db, http(s)://<mlflow server> or a database URI (postgresql://...)"
        raise ConfigError("tracking.uri", masked(str(uri or resolved)), accepted)


def _store_path(uri: str) -> Path | None:
    return Path(uri[len("sqlite:///") :]) if uri.startswith("sqlite:///") else None


def _client(uri: str) -> Any:
    from mlflow import MlflowClient

    _quiet_mlflow()
    path = _store_path(uri)
    if path is not None and uri not in _opened:
        _open_sqlite(path, uri)
    if uri.startswith(("http://", "https://")) and uri not in _opened:
        _check_server(uri)
    if uri.startswith(DATABASES) and uri not in _opened:
        _check_database(uri)
    return MlflowClient(tracking_uri=uri)


#: Database URIs, and the port each listens on by default.
DATABASES = ("postgresql", "mysql", "mssql")
_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}


def _check_database(uri: str) -> None:
    """Refuse, within seconds, a database nothing answers on: MLflow's engine retries for
    minutes (``create_sqlalchemy_engine_with_retry``), in every job of a sweep."""
    from urllib.parse import urlsplit

    from pipeline.errors import ConfigError

    parts = urlsplit(uri)
    scheme = parts.scheme.split("+")[0]
    host, port = parts.hostname or "localhost", parts.port or _DEFAULT_PORTS.get(scheme, 5432)
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as err:
        why = f"nothing answers on {host}:{port}: {err.strerror or err}"
        raise ConfigError("tracking.uri", masked(uri), "the URI of a running database server", why=why) from None
    _connect_once(uri)
    _opened.add(uri)


def _connect_once(uri: str) -> None:
    """One connection, as MLflow will open it: a server that answers but refuses (a wrong
    password, no such database) is said in one line, where MLflow would retry for most of an hour."""
    import sqlalchemy

    from pipeline.errors import ConfigError

    timeout = {"connect_args": {"connect_timeout": 5}} if uri.startswith("postgresql") else {}
    engine = sqlalchemy.create_engine(uri, poolclass=sqlalchemy.pool.NullPool, **timeout)
    try:
        with engine.connect():
            pass
    except sqlalchemy.exc.SQLAlchemyError as err:
        cause = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
        accepted = "a database URI whose user, password and database the server accepts"
        raise ConfigError("tracking.uri", masked(uri), accepted, why=credentials.mask(cause)) from None
    finally:
        engine.dispose()


#: MLflow's HTTP client retries a dead server for minutes by default; these bound a request to
#: about a minute in all (a user's own settings win).
HTTP_RETRIES = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}


def _check_server(uri: str) -> None:
    """Refuse, within seconds and before any job, a tracking server that does not answer."""
    import urllib.request

    from pipeline.errors import ConfigError

    for key, value in HTTP_RETRIES.items():
        os.environ.setdefault(key, value)
    shown = masked(uri)
    try:
        with urllib.request.urlopen(f"{shown.rstrip('/')}/health", timeout=5):
            pass
    except OSError as err:
        reason = getattr(err, "reason", err)
        raise ConfigError(
            "tracking.uri", shown, "the address of a running MLflow server (make server starts one)", why=str(reason)
        ) from None
    _opened.add(uri)


def client_for(uri: str, check: bool = True) -> Any:
    """An MLflow client on a resolved tracking URI (the store created safely first). Without
    ``check``, for a store this process's parent made or checked already (the run writer): no
    lock, no health request, so a server that went away fails the first real request instead."""
    if check:
        return _client(uri)
    from mlflow import MlflowClient

    path = _store_path(uri)
    if path is not None:
        sqlitestore.remember(path)
    _quiet_mlflow()
    return MlflowClient(tracking_uri=uri)


def _quiet_mlflow() -> None:
    # MLflow's INFO lines (store creation, migrations) and the pickle notice on every model
    # save would bury a run's one-line summary or error.
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("mlflow.sklearn").setLevel(logging.ERROR)
    # MLflow's session and SQLAlchemy's pool log a traceback for a database error they raise (a
    # full disk under the store); the error itself reaches the run's one line
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    logging.getLogger("sqlalchemy.pool").setLevel(logging.CRITICAL)


#: SQLite stores this process has created or checked (under the lock) already.
_opened: set[str] = set()


def _open_sqlite(path: Path, uri: str) -> None:
    """Create (atomically) or migrate a SQLite store under a bounded file lock, then switch it
    to WAL (``sqlitestore.open_store``). WAL lets readers and the one writer proceed together,
    and MLflow's sessions wait (its busy timeout, 20 s) instead of failing while another process
    writes."""
    sqlitestore.open_store(path, uri)
    _opened.add(uri)


def precheck(uri: str) -> None:
    """What a single run checks before its writer opens the store, without MLflow, so that a
    store it cannot use is still refused before the job computes: a server answers its health
    request; a database server accepts a connection; a SQLite store's folder can be made and the
    file written."""
    import sqlite3

    if uri.startswith(("http://", "https://")):
        _check_server(uri)
    if uri.startswith(DATABASES):
        _check_database(uri)
    path = _store_path(uri)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            sqlitestore.check_writable(path)
        except (OSError, sqlite3.Error) as err:
            raise sqlitestore.unwritable(uri, err) from None


def prepare(cfg: DictConfig) -> tuple[str, str]:
    """Create the store and the experiment (once, before any job) and end the runs that dead
    processes left RUNNING there; return (uri, experiment id)."""
    uri = resolve_uri(cfg.tracking.uri)
    client = _client(uri)
    experiment = _experiment_id(client, experiment_name(cfg), _store_path(uri))
    if (uri, experiment) not in _reconciled:
        _reconciled.add((uri, experiment))
        reconcile(client, experiment)
    return uri, experiment


_reconciled: set[tuple[str, str]] = set()


def liveness_tags() -> dict[str, str]:
    """How a run shows whose it is: host, pid and the process's start time (pids are reused)."""
    return {"host": socket.gethostname(), "pid": str(os.getpid()), "pid_started": _process_start(os.getpid())}


def process_stat(pid: int | str) -> list[str]:
    """The fields of /proc/PID/stat after the command name (the state first), [] if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22), "" if gone
    (a zombie, killed but not yet reaped by its parent, is gone)."""
    fields = process_stat(pid)
    return "" if not fields or fields[0] in ("Z", "X") else fields[19]


def dead(tags: dict[str, str]) -> bool:
    """Whether the process that opened a run is known to be gone: it ran on this host and no
    process with its pid and start time exists. Runs of other hosts, or without the tags, are
    never judged dead here."""
    if tags.get("host") != socket.gethostname() or not tags.get("pid"):
        return False
    return _process_start(int(tags["pid"])) != tags.get("pid_started")


def reconcile(client: Any, experiment: str) -> int:
    """End KILLED, tagged ``reconciled=true``, every RUNNING run whose process is dead
    (``kill -9``, power loss); return how many. A live process's runs are never touched."""
    zombies = [r for r in client.search_runs([experiment], "attributes.status = 'RUNNING'") if dead(r.data.tags)]
    _end_dead(client, zombies)
    if zombies:
        print(f"reconciled: {len(zombies)} run(s) left RUNNING by dead processes ended KILLED", file=sys.stderr)
    return len(zombies)


def _end_dead(client: Any, runs: list[Any]) -> None:
    for run in runs:
        tags = run.data.tags
        note = f"process {tags['pid']} on {tags['host']} ended without ending this run"
        client.set_tag(run.info.run_id, "reconciled", "true")
        client.set_tag(run.info.run_id, "error", note)
        client.set_terminated(run.info.run_id, "KILLED")


def end_orphans(grace: float = 10.0) -> None:
    """After an interrupt: end KILLED the runs of this process's sweeps that launcher workers
    (joblib, Ray) still hold RUNNING. A launcher kills its workers as the sweep is interrupted
    (joblib with SIGKILL, so they cannot end their runs); a worker still alive after ``grace``
    seconds is sent SIGTERM, then SIGKILL. Only processes that opened these runs on this host,
    with their recorded start time, are ever signalled."""
    import signal

    for uri, experiment, parent in _sweeps:
        client = _client(uri)
        query = f"attributes.status = 'RUNNING' and tags.mlflow.parentRunId = '{parent}'"
        start = time.monotonic()
        while True:
            running = client.search_runs([experiment], query)
            # this process's own (handed to its run writer, which is gone by now) count as dead
            own = {r.info.run_id for r in running if r.data.tags.get("pid") == str(os.getpid())}
            _end_dead(client, [r for r in running if dead(r.data.tags) or r.info.run_id in own])
            alive = [r for r in running if not dead(r.data.tags) and r.info.run_id not in own
                     and r.data.tags.get("host") == socket.gethostname()]  # fmt: skip
            waited = time.monotonic() - start
            if not alive or waited > grace + 10:
                break
            if waited > grace:
                for run in alive:
                    sig = signal.SIGTERM if waited < grace + 5 else signal.SIGKILL
                    with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
                        os.kill(int(run.data.tags["pid"]), sig)
            time.sleep(0.2)
    _sweeps.clear()


def experiment_id(cfg: DictConfig) -> str:
    """The id of the config's experiment (created if need be; known without MLflow when this
    single run's writer opened it)."""
    known = _experiment_ids.get((resolve_uri(cfg.tracking.uri), experiment_name(cfg)))
    return known if known is not None else prepare(cfg)[1]


#: (resolved URI, experiment name) -> id, as a single run's writer opened it.
_experiment_ids: dict[tuple[str, str], str] = {}


def experiment_in(client: Any, name: str, uri: str) -> str:
    """The id of experiment ``name`` in the store at ``uri`` (created, with its artifacts beside a
    SQLite store, if need be)."""
    return _experiment_id(client, name, _store_path(uri))


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


class Claimed(Exception):
    """Another process holds this configuration (``track``'s ``claim``): its run id."""

    def __init__(self, run_id: str) -> None:
        super().__init__(run_id)
        self.run_id = run_id


def track(
    cfg: DictConfig,
    job: Callable[[], Any],
    describe: Callable[[Any], str],
    tags: dict[str, str] | None = None,
    adopt: bool = False,
    claim: Callable[[Any, str, Any], str | None] | None = None,
) -> Any:
    """Run ``job`` inside one MLflow run and log its ``RunResult``; nest under the sweep's parent.

    ``describe(result)`` gives the run's Markdown note; ``tags`` are added to the run's own.
    The run ends FINISHED, FAILED (error tag) or KILLED (Ctrl-C, SIGTERM); the exception is re-raised.
    ``adopt``: first look for a RUNNING run of this process's (one its writer opened, then died).
    ``claim(client, experiment, info)``: asked once the run exists (its identity in ``tags``); a
    run id back means another process holds the configuration: this run is deleted, unstarted,
    and ``Claimed`` raised. Two processes that create runs of one identity at once both see
    both, and the later one yields; so each configuration is computed once (resume's claims).
    In a sweep's own process the finished job's metrics and files are handed to the run writer
    (``pipeline.writer``), which ends the run once they are written, while the next job runs.
    """
    from pipeline import writer

    if writer.single():  # this single run's writer opens, writes and ends the run
        return _track_in_writer(cfg, job, describe)
    uri, experiment = prepare(cfg)
    client = _client(uri)
    tags = {**git_tags(), **SOURCE, **liveness_tags(), "study": str(cfg.study), **(tags or {})}
    if os.environ.get(PARENT_ENV):
        tags["mlflow.parentRunId"] = os.environ[PARENT_ENV]
    with contextlib.ExitStack() as ending:
        with interrupts.shielded():
            info = (_adopted(client, experiment) if adopt else None) or client.create_run(
                experiment, run_name=run_name(cfg), tags=tags
            ).info
            run_id = info.run_id
            # entered inside the shield: a signal that came meanwhile, raised as the shield ends,
            # ends the run KILLED (outside, it left the run RUNNING in a launcher's worker)
            ending.enter_context(_ending(client, run_id))
        holder = claim(client, experiment, info) if claim is not None else None
        if holder is not None:
            ending.pop_all()  # not ended: removed, as if it had never been made
            _open_runs.pop(run_id, None)
            client.set_terminated(run_id, "KILLED")
            client.delete_run(run_id)
            raise Claimed(holder)
        client.log_batch(run_id, params=_params(flatten(cfg)))
        from pipeline import relog, writer

        with writer.job_threads():
            result = job()
        note = describe(result)

        if writer.deferring() and not writer.behind():  # a sweep's own: the writer logs the rest, ends the run
            item = _handed(cfg, run_id, uri, info.artifact_uri, result, note)
            with interrupts.shielded():
                writer.submit(item)
                ending.pop_all()  # handed over: not ended here
            return result
        try:
            log_result(client, run_id, cfg, result, note, info.artifact_uri)
        except Exception as err:  # the store went away (or refused): what the job computed is kept
            raise relog.keep(run_id, experiment_name(cfg), uri, cfg, result, note, err) from err
    return result


def _track_in_writer(cfg: DictConfig, job: Callable[[], Any], describe: Callable[[Any], str]) -> Any:
    """``track`` for a single run whose writer opened the run meanwhile (``writer.start_single``):
    this process never imports MLflow. A job that fails or is interrupted ends the run FAILED or
    KILLED there; a store that refused is raised once the job is done."""
    from pipeline import writer

    try:
        result = job()
    except BaseException as err:
        with interrupts.shielded():
            stopped = isinstance(err, (KeyboardInterrupt, SystemExit)) or interrupts.received()
            writer.end_opened("KILLED" if stopped else "FAILED", "" if stopped else one_line(err))
        raise
    run = writer.opened()
    if run is None:  # the writer died before it answered: this process opens (or adopts) and writes the run
        return track(cfg, lambda: result, describe, adopt=True)
    _experiment_ids[(run.uri, experiment_name(cfg))] = run.experiment_id
    note = describe(result)
    done = writer.write_single(_handed(cfg, run.run_id, run.uri, run.artifact_uri, result, note))
    if done.status != "FINISHED":
        raise writer.raised(done)
    return result


def _adopted(client: Any, experiment: str) -> Any | None:
    """The info of a RUNNING run whose liveness tags name this very process, if any."""
    mine = liveness_tags()
    query = " and ".join(["attributes.status = 'RUNNING'", *(f"tags.{k} = '{v}'" for k, v in mine.items())])
    found = client.search_runs([experiment], query, max_results=1)
    return found[0].info if found else None


def _handed(cfg: DictConfig, run_id: str, uri: str, artifact_uri: str, result: Any, note: str) -> Any:
    """A finished job's run as a writer gets it (``writer.Item``): the config as a container,
    the results ``portable``, the job folder where they are kept if the store refuses them."""
    from pipeline import relog, writer

    return writer.Item(run_id, uri, experiment_name(cfg), OmegaConf.to_container(cfg, resolve=True),
                       portable(result, cfg.tracking.log_model), note, artifact_uri,
                       str(relog.job_folder()))  # fmt: skip


def curves_ready(curves: dict[str, Any]) -> None:
    """A job's curves, as soon as it has them: a single run's writer draws them while the job
    computes its metrics (``writer.draw``); otherwise they are drawn with the rest."""
    from pipeline import writer

    if writer.single():
        writer.draw(curves)


def open_run(client: Any, experiment: str, cfg: DictConfig, tags: dict[str, str]) -> tuple[str, str]:
    """Create ``cfg``'s run (``tags`` added to the source's) and log its params, for a single
    run's writer; a run whose params the store refuses ends FAILED. Returns (run id, artifact URI)."""
    tags = {**git_tags(), **SOURCE, **tags}
    info = client.create_run(experiment, run_name=run_name(cfg), tags=tags).info
    try:
        client.log_batch(info.run_id, params=_params(flatten(cfg)))
    except Exception as err:
        end_quietly(client, info.run_id, "FAILED", one_line(err))
        raise
    return str(info.run_id), str(info.artifact_uri)


@functools.cache
def _requirements() -> tuple[str, ...]:
    from importlib.metadata import version

    names = ("scikit-learn", "imbalanced-learn", "numpy", "pandas", "scipy")
    return tuple(f"{name}=={version(name)}" for name in names)


def log_result(
    client: Any, run_id: str, cfg: DictConfig, result: Any, note: str, artifact_uri: str, drawn: Path | None = None
) -> None:
    """Log a run's metrics, tags, inputs and files (``drawn``: see ``write_artifacts``)."""
    from mlflow.entities import RunTag

    tags = {**result.info, "mlflow.note.content": note}
    log_metrics(client, run_id, result.metrics, result.history)
    client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])
    if result.inputs:
        client.log_inputs(run_id, datasets=[_dataset_input(cfg, part) for part in result.inputs])
    local = _local_artifact_dir(artifact_uri)
    with tempfile.TemporaryDirectory() as tmp:
        out = local or Path(tmp)  # a local artifact store is written in place, not copied into
        write_artifacts(out, cfg, result, drawn)
        if local is None:
            client.log_artifacts(run_id, str(out))


#: The most metrics one ``log_batch`` call takes.
BATCH = 1000


def log_metrics(client: Any, run_id: str, metrics: dict[str, float], history: dict[str, list[float]]) -> None:
    """``metrics`` in batches; a metric with a ``history`` (a cross-validated run's folds) gets
    its per-fold values at steps 0..K-1 and its mean at step K, so the runs table shows the mean
    and the metric's chart the folds."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    entities = [Metric(k, float(v), now, step) for k, values in history.items() for step, v in enumerate(values)]
    entities += [Metric(k, float(v), now, len(history.get(k, []))) for k, v in metrics.items()]
    for start in range(0, len(entities), BATCH):
        client.log_batch(run_id, metrics=entities[start : start + BATCH])


#: Seconds to wait between a run's plots and its other files: the fault tests' window in which
#: a run is half written (unset: no wait).
WRITE_PAUSE_ENV = "IMBALANCE_LAB_TEST_WRITE_PAUSE"


def write_artifacts(out: Path, cfg: DictConfig, result: Any, drawn: Path | None = None) -> None:
    """A run's files: plots, curves, the prediction table, its config and (``log_model``) its model.
    ``drawn``: a folder where these curves' ``plots/`` and ``curves/`` are drawn already."""
    if drawn is None:
        from pipeline import plots

        plots.write_all(result.curves, out)
    else:  # written as ours: copytree folds a full disk's OSError into a shutil.Error, copyfile names the source
        for part in ("plots", "curves"):
            (out / part).mkdir(parents=True, exist_ok=True)
            for path in sorted((drawn / part).iterdir()):
                (out / part / path.name).write_bytes(path.read_bytes())
    if os.environ.get(WRITE_PAUSE_ENV):  # fault tests: a window in which a run is half written
        time.sleep(float(os.environ[WRITE_PAUSE_ENV]))
    (out / "predictions").mkdir(parents=True, exist_ok=True)
    result.predictions.to_parquet(out / "predictions" / "test.parquet")
    (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    if cfg.tracking.log_model:
        _save_model(result.model, out / "model", result.example)


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
    """The run's ``Decider`` (or, in a run writer, the ``PickledModel`` of one) as an MLflow
    model: ``predict`` applies the run's threshold, the threshold and its policy are in the
    model's metadata, and a signature and input example (a few test rows) let ``mlflow models
    serve`` check its input."""
    import mlflow.sklearn
    import mlflow.utils.environment
    from mlflow.models import infer_signature

    metadata = {"threshold": float(model.threshold), "threshold_policy": str(model.policy), **(model.info or {})}
    if isinstance(model, PickledModel):
        output, model = model.example_output, model.saved()
    else:
        output = model.predict(example)
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
            signature=infer_signature(example, output),
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
            else:  # the error on its way out is the one to report, even if the store is gone too
                if issubclass(kind, (KeyboardInterrupt, SystemExit)) or interrupts.received():
                    end_quietly(self.client, self.run_id, "KILLED", "")
                else:
                    end_quietly(self.client, self.run_id, "FAILED", one_line(err))
            _open_runs.pop(self.run_id, None)


def end_quietly(client: Any, run_id: str, status: str, error: str) -> None:
    """End a run, or say in one line that the store would not (the next start reconciles it)."""
    try:
        if error:
            client.set_tag(run_id, "error", error)
        client.set_terminated(run_id, status)
    except Exception as err:
        unreachable(err)
        text = short(str(err).strip().splitlines()[0]) if str(err).strip() else type(err).__name__
        print(f"could not end run {run_id} {status} ({text}); the next start ends it", file=sys.stderr)


_API_ERROR = re.compile(r"API request to (?P<server>https?://[^/]+)\S* failed with exception")
_CAUSES = ("Connection refused", "Read timed out", "Name or service not known", "Max retries exceeded")


def short(text: str) -> str:
    """MLflow's account of a request the server never answered, in a few words."""
    found = _API_ERROR.search(text)
    cause = next((c for c in _CAUSES if c in text), None)
    if not found or cause is None:
        return text
    return f"the tracking server {masked(found['server'])} did not answer ({cause}, after the bounded retries)"


def unreachable(err: BaseException) -> bool:
    """Whether ``err`` says the tracking server did not answer. If so, the breaker trips: this
    process's later requests get one try each (``fail_fast``), so that ending its runs and
    reporting the sweep do not each wait out the retries again."""
    gone = short(str(err)) != str(err)
    if gone:
        fail_fast()
    return gone


def one_line(err: BaseException | None) -> str:
    """The first line of an error's message, prefixed by its type unless it is a ConfigError."""
    from pipeline.errors import ConfigError

    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text if isinstance(err, ConfigError) else f"{type(err).__name__}: {short(text)}"


def open_parent(cfg: DictConfig, name: str, note: str) -> str:
    """Create the sweep's parent run and publish its id to the jobs (and launcher workers)."""
    uri, experiment = prepare(cfg)
    client = _client(uri)
    tags = {**git_tags(), **SOURCE, **liveness_tags(), "study": str(cfg.study), "sweep": "true",
            "mlflow.note.content": note}  # fmt: skip
    with interrupts.shielded():
        run_id = str(client.create_run(experiment, run_name=name, tags=tags).info.run_id)
        _open_runs[run_id] = uri
        _sweeps.append((uri, experiment, run_id))
        os.environ[PARENT_ENV] = run_id
    return run_id


#: (uri, experiment, parent run id) of the sweeps this process opened, for ``end_orphans``.
_sweeps: list[tuple[str, str, str]] = []


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
    _sweeps[:] = [s for s in _sweeps if s[2] != run_id]
    os.environ.pop(PARENT_ENV, None)


def forget(run_id: str) -> None:
    """The run was ended elsewhere (by the writer)."""
    _open_runs.pop(run_id, None)


def end_held(run_id: str, status: str, error: str) -> None:
    """End a run this process opened and handed to a writer that is gone."""
    uri = _open_runs.pop(run_id, None)
    if uri is not None:
        end_quietly(_client(uri), run_id, status, error)


def open_runs() -> list[str]:
    """The runs this process opened and has not ended yet."""
    return list(_open_runs)


def end_open_runs(status: str, error: str) -> None:
    """End every run this process left open (an interrupted or failed sweep's parent)."""
    with interrupts.shielded():
        for run_id, uri in list(_open_runs.items()):
            end_quietly(_client(uri), run_id, status, error)
            _open_runs.pop(run_id, None)
        os.environ.pop(PARENT_ENV, None)


def fail_fast() -> None:
    """After an interrupt, or once the server has not answered: one try of 5 s per call, no retries."""
    os.environ.update(
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", MLFLOW_HTTP_REQUEST_TIMEOUT="5", MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR="0"
    )
