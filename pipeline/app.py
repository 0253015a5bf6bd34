"""The Hydra app: compose the config, run one job, track it; sweeps get a parent run.

Heavy libraries (MLflow, imbalanced-learn, torch) are imported inside the job, so that
``--help`` and ``--cfg job`` answer at once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from pipeline import interrupts
from pipeline.errors import DISK_FULL, ConfigError, Refused
from pipeline.paths import CONF_DIR, check_name
from pipeline.schema import Config  # the schema itself is registered by hydra_plugins/imbalance_lab

log = logging.getLogger("pipeline")

RESULT_FILE = "result.json"
#: What the last sweep in this process left for ``main`` to report: failed job errors.
_sweep_failures: list[dict[str, Any]] = []
#: A single run's error, handed to ``main`` (raising it would make Hydra print a second line).
_run_errors: list[Exception] = []


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def task(cfg: DictConfig) -> float | None:
    """One job. In a sweep a failing job is recorded and the sweep goes on; alone, ``main``
    reports its error."""
    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    interrupts.stop_if_interrupted()
    try:
        _take_credentials(cfg, job=True)
        check_run_config(cfg)
        if not multirun:
            _start_writer(cfg)
        record = run_job(cfg)
    except Exception as err:
        interrupts.stop_if_interrupted()  # a signal that surfaced as another error stops the sweep
        with contextlib.suppress(OSError):  # a full disk: the store has the run's status
            _write_record(hydra_cfg.runtime.output_dir, _failure(cfg, err))
        if _store_gone(err) and multirun and cfg.tracking.get("on_unreachable") == "stop":
            raise StopSweep(_one_line(err)) from err
        if multirun and "database or disk is full" in str(err):  # no later job could be tracked either
            raise DiskFull(OSError(DISK_FULL[0], "the store's disk is full")) from err
        if multirun and isinstance(err, Refused):
            return None  # said before the sweep started (SweepCallback.on_multirun_start)
        if multirun:
            log.error("job %s failed: %s", hydra_cfg.job.num, _one_line(err))
        else:
            _run_errors.append(err)
        return None
    _write_record(hydra_cfg.runtime.output_dir, record)
    if not multirun:
        _print_run(record, cfg)
    return float(record["metrics"].get("test/pr_auc", float("nan")))


def _start_writer(cfg: DictConfig) -> None:
    """A tracked single run starts its run writer before its heavy imports (``writer.start_single``;
    ``python -m pipeline`` started it before Hydra composed the config: ``writer.prestart``),
    unless ``tracking.writer=never`` or with ``resume`` (the store is asked first). ``auto``: only
    with a core to spare (``writer.spare_core``). What the config alone refuses is refused first, and
    a store the run cannot use (``tracking.precheck``)."""
    from pipeline import compat, resume, tracking, writer

    setting = cfg.tracking.get("writer", "auto")
    if not cfg.tracking.enabled or resume.mode(cfg) or setting == "never":
        writer.dismiss()
        return
    if setting == "auto" and not writer.started_early() and not writer.spare_core():
        return
    compat.check_compatible(cfg)
    tracking.precheck(tracking.resolve_uri(cfg.tracking.uri))
    tags = {**tracking.liveness_tags(), "study": str(cfg.study)}
    writer.start_single(OmegaConf.to_container(cfg, resolve=True), tags)


def _take_credentials(cfg: DictConfig, job: bool = False) -> None:
    """A user:password in the tracking URI (from a config file or an environment variable the
    config reads) moves into the environment before anything is logged or written."""
    from pipeline import credentials

    if not (cfg.get("tracking") and cfg.tracking.get("uri")):
        return
    given = cfg.tracking.uri
    cfg.tracking.uri = credentials.take(given)
    if job and cfg.tracking.uri != given:  # Hydra wrote the job's files before the job ran
        runtime = HydraConfig.get()
        subdir = runtime.output_subdir
        written = list(Path(runtime.runtime.output_dir, subdir).glob("*.yaml")) if subdir else []
        written.append(Path(runtime.sweep.dir) / "multirun.yaml")
        for path in written:
            credentials.scrub(path)


def _credentials_out_of_argv() -> None:
    """Take a user:password out of ``tracking.uri=...`` on the command line and out of
    ``$MLFLOW_TRACKING_URI`` before Hydra sees them, so that Hydra's own files (``.hydra/``,
    ``multirun.yaml``) never hold them; see ``credentials.take``."""
    from pipeline import credentials

    for i, arg in enumerate(sys.argv):
        key, sep, value = arg.partition("=")
        if sep and key.lstrip("+~") == "tracking.uri":
            sys.argv[i] = f"{key}={credentials.taken(value)}"
    if os.environ.get("MLFLOW_TRACKING_URI"):
        os.environ["MLFLOW_TRACKING_URI"] = credentials.taken(os.environ["MLFLOW_TRACKING_URI"])


def check_run_config(cfg: DictConfig) -> None:
    """What no option file checks, before a job does anything: the seed, the study name (it
    becomes a folder), the resume mode and the tracking URI."""
    from pipeline import resume, tracking

    if not 0 <= cfg.seed < 2**32:
        raise ConfigError("seed", cfg.seed, "an integer in [0, 2**32)")
    check_name("study", cfg.study)  # the sweep's folder and the experiment
    if cfg.tracking.get("experiment"):
        check_name("tracking.experiment", cfg.tracking.experiment)  # a report's default folder
    resume.mode(cfg)
    if cfg.tracking.enabled:
        tracking.check_uri(cfg.tracking.uri)
    if cfg.tracking.get("on_unreachable", "continue") not in ("continue", "stop"):
        raise ConfigError("tracking.on_unreachable", cfg.tracking.on_unreachable, "continue or stop")
    if cfg.tracking.get("writer", "auto") not in ("auto", "always", "never"):
        raise ConfigError("tracking.writer", cfg.tracking.writer, "auto, always or never")
    if HydraConfig.initialized():
        check_overrides(list(HydraConfig.get().overrides.task))


def check_overrides(overrides: list[str]) -> None:
    """Refuse Hydra's append syntax (``+foo=1``, ``++model.depth=3``) outside ``hydra.``: it adds
    a key no option reads, which would be logged as if it had changed the run."""
    for text in overrides:
        key = text.partition("=")[0]
        if key.startswith("+") and not key.lstrip("+").startswith("hydra."):
            raise ConfigError(
                key, text.partition("=")[2], "keys the config has, set without '+' (python -m pipeline --cfg job "
                "lists them); '+' only under hydra.", why="'+' adds a key that nothing reads",
            )  # fmt: skip


def run_job(cfg: DictConfig) -> dict[str, Any]:
    """Run and (unless ``tracking.enabled=false``) track one configuration; return its record.
    With ``resume``, a configuration that already has a FINISHED run is kept, not rerun."""
    from pipeline import experiment, leaderboard, resume, tracking

    experiment.check_compatible(cfg)  # before a run is opened for it
    how = resume.mode(cfg)
    claim, tags = None, None
    if how and cfg.tracking.enabled:
        kept = resume.kept_run(cfg, how)
        if kept is not None:
            return resume.kept_record(kept, tracking.flatten(cfg))
        tags = resume.identity(cfg)  # claimed in the store: concurrent resumes split the jobs
        claim = resume.claim(how, tags)
    if cfg.tracking.enabled:
        job = lambda: experiment.run(cfg, on_curves=tracking.curves_ready)  # noqa: E731
        try:
            result = tracking.track(cfg, job, lambda r: leaderboard.describe(cfg, r), tags=tags, claim=claim)
        except tracking.Claimed as held:
            record = resume.claimed_record(tracking.run_name(cfg), tracking.flatten(cfg), held.run_id)
            if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
                return record  # settled at the sweep's end
            settled = resume.settle(tracking.client_for(tracking.resolve_uri(cfg.tracking.uri)), [record])[0]
            if settled["status"] == "FAILED":  # the other process did not finish it
                raise RuntimeError(settled["error"]) from None
            return settled
    else:
        result = experiment.run(cfg)
    return {
        "status": "FINISHED",
        "run_name": tracking.run_name(cfg),
        "params": tracking.flatten(cfg),
        "metrics": result.metrics,
        "info": result.info,
    }


def _failure(cfg: DictConfig, err: Exception) -> dict[str, Any]:
    from pipeline import tracking

    return {
        "status": "REFUSED" if isinstance(err, Refused) else "FAILED",
        "run_name": tracking.run_name(cfg),
        "error": _one_line(err),
        "user_error": isinstance(err, ConfigError),
        "params": tracking.flatten(cfg),
        "metrics": {},
    }


def _write_record(output_dir: str, record: dict[str, Any]) -> None:
    part = Path(output_dir, RESULT_FILE + ".part")  # renamed whole: a reader never sees half a record
    part.write_text(json.dumps(record, indent=1))
    part.replace(part.with_name(RESULT_FILE))


def _print_run(record: dict[str, Any], cfg: DictConfig) -> None:
    m = record["metrics"]
    if record["status"] == "KEPT":
        print(f"kept: {record['run_name']} ({record['run_id']}) already FINISHED with this config; nothing to run")
    print(
        f"{record['run_name']}: pr_auc {m['test/pr_auc']:.3f}  recall {m['test/recall']:.3f}  "
        f"precision {m['test/precision']:.3f}  f1 {m['test/f1']:.3f}  ece {m['test/ece']:.3f}  "
        f"accuracy {m['test/accuracy']:.3f} (baseline {m['test/baseline_accuracy']:.3f})  "
        f"threshold {m['calib/threshold']:.3g}"
    )
    if cfg.tracking.enabled:
        print(_ui_hint(cfg))


def _ui_hint(cfg: DictConfig) -> str:
    from pipeline import tracking
    from pipeline.ui import ui_url

    uri = tracking.masked(tracking.resolve_uri(cfg.tracking.uri))
    experiment = tracking.experiment_id(cfg)
    if not uri.startswith("sqlite:"):
        return f"MLflow UI: {ui_url(uri, experiment)}"
    mlflow = Path(sys.executable).with_name("mlflow")
    return (
        f"Open the MLflow UI: {mlflow} ui --backend-store-uri {uri} --host 127.0.0.1 --port 5000\n"
        f"  then {ui_url('http://127.0.0.1:5000', experiment)}"
    )


def _store_gone(err: BaseException) -> bool:
    """Whether a job failed because the tracking store stopped answering."""
    from pipeline import relog, tracking

    return isinstance(err, relog.Unlogged) or tracking.unreachable(err)


class StopSweep(BaseException):
    """The store stopped answering and ``tracking.on_unreachable=stop``: no further job starts."""


class DiskFull(BaseException):
    """The run writer found the disk full: ``main`` says so as for a job that filled it. A
    BaseException, to pass Hydra's callback wrapper (see ``SweepRefused``)."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


class SweepRefused(BaseException):
    """Bad input found before any job of a sweep starts. A BaseException, so that it passes
    Hydra's callback wrapper, which reports an ``Exception`` as a warning and goes on."""

    def __init__(self, error: ConfigError) -> None:
        super().__init__(str(error))
        self.error = error


class SweepCallback(Callback):
    """A multirun's parent run, its progress line, and its leaderboard at the end."""

    def __init__(self) -> None:
        self.progress: Progress | None = None
        self.parent: str | None = None
        self.main_pid = os.getpid()  # the callback is pickled into launcher workers: they differ

    def __getstate__(self) -> dict[str, Any]:
        # Launchers (joblib, Ray) pickle the callbacks into their workers: the progress stays here.
        return {**self.__dict__, "progress": None}

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            self._start(config)
        except ConfigError as err:  # Hydra would turn it into a warning and launch every job anyway
            raise SweepRefused(err) from err
        except Exception as err:  # the store could not take the sweep's parent run: no job starts either
            if "database or disk is full" in str(err):
                raise DiskFull(OSError(DISK_FULL[0], "the store's disk is full")) from err
            raise StopSweep(_one_line(err)) from err

    def _start(self, config: DictConfig) -> None:
        from pipeline import resume, tracking, writer

        writer.dismiss()  # one started for what looked like a single run (hydra.mode set in a config file)
        _sweep_failures.clear()
        _take_credentials(config)
        check_run_config(config)
        compose_each_job_once()
        jobs = planned_jobs(config)
        for line in refusals(config, jobs or []):
            print(line, file=sys.stderr)
        if config.tracking.enabled:
            if resume.mode(config) and jobs is not None:
                print(resume_plan(config, jobs), file=sys.stderr)
            name = f"{config.study}-{time.strftime('%Y%m%d-%H%M%S')}"
            self.parent = tracking.open_parent(config, name, f"Sweep `{config.study}`: running.")
            if writer.wanted(str(config.tracking.get("writer", "auto")), None if jobs is None else len(jobs)):
                writer.enable()  # jobs run in this process (basic launcher) hand their runs to a writer
        self.progress = Progress(Path(config.hydra.sweep.dir), None if jobs is None else len(jobs), str(config.study))

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        from pipeline.tracking import PARENT_ENV

        if os.getpid() != self.main_pid:
            interrupts.die_with_parent()
        interrupts.stop_if_interrupted()
        if self.parent is not None:  # a worker of another process (Ray) may not share our environment
            os.environ[PARENT_ENV] = self.parent

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        interrupts.stop_if_interrupted()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        # Hydra turns a callback's exception into a warning: catch it here, end the parent
        # FAILED and make the command fail, rather than leave a RUNNING parent and exit 0.
        try:
            self._report(config)
        except Exception as err:
            from pipeline import tracking

            tracking.end_open_runs("FAILED", f"sweep report: {_one_line(err)}")
            _sweep_failures.append({"error": f"sweep report failed: {_one_line(err)}", "user_error": False})

    def _report(self, config: DictConfig) -> None:
        from pipeline import leaderboard, tracking, writer

        if self.progress is not None:
            self.progress.close()
        sweep_dir = Path(config.hydra.sweep.dir)
        unwritten = writer.finish()  # every run handed to the writer is written and ended first
        if any(done.disk_full for done in unwritten.values()):  # as a job that fills the disk itself
            raise DiskFull(OSError(DISK_FULL[0], os.strerror(DISK_FULL[0])))
        for folder, done in unwritten.items():
            _record_failed(Path(folder), done.error)
        records = read_records(sweep_dir)
        if any(r["status"] == "CLAIMED" for r in records):  # jobs another resume of this sweep ran
            from pipeline import resume

            records = resume.settle(tracking.client_for(tracking.resolve_uri(config.tracking.uri)), records)
        _sweep_failures.extend(r for r in records if r["status"] == "FAILED")
        if records and all(r["status"] == "REFUSED" for r in records):
            _sweep_failures.extend(records)  # nothing could run: that is an error, not a result
        columns = tuple(config.get("leaderboard") or leaderboard.COLUMNS)
        summary = leaderboard.sweep_report(records, sweep_axes(config), sweep_dir / "report", columns)
        print(summary.text)
        if self.parent is not None:
            tracking.close_parent(self.parent, summary.metrics, sweep_dir / "report", summary.note)
            print(_ui_hint(config))


def _record_failed(folder: Path, error: str) -> None:
    """A job whose run the writer could not log: its record says FAILED, with the error."""
    path = folder / RESULT_FILE
    if path.is_file():
        record = json.loads(path.read_text())
        record.update(status="FAILED", error=error, user_error=False)
        _write_record(str(folder), record)


def read_records(sweep_dir: Path) -> list[dict[str, Any]]:
    """The records the sweep's jobs wrote so far (a record is written whole, then renamed)."""
    return [json.loads(p.read_text()) for p in sorted(sweep_dir.glob(f"*/{RESULT_FILE}"))]


class Progress:
    """One line for a sweep: done / total, failed, kept and time left. A thread counts the job
    records in the sweep folder, so it works the same whichever launcher ran the jobs."""

    def __init__(self, sweep_dir: Path, total: int | None, name: str, every: float = 0.5) -> None:
        import threading

        from tqdm import tqdm

        self.sweep_dir, self.every = sweep_dir, every
        self.bar = tqdm(total=total, desc=name, unit="job", file=sys.stderr)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, name="sweep-progress", daemon=True)
        self.thread.start()
        _progress.append(self)

    def _poll(self) -> None:
        while not self.stop.wait(self.every):
            self.refresh()

    def refresh(self) -> None:
        statuses = [r["status"] for r in read_records(self.sweep_dir)]
        self.bar.n = len(statuses)
        self.bar.set_postfix_str(f"failed {statuses.count('FAILED')}, kept {statuses.count('KEPT')}", refresh=True)

    def close(self) -> None:
        """Stop polling and end the line (also when the sweep stops on an error: its line follows)."""
        if self in _progress:
            _progress.remove(self)
        self.stop.set()
        self.thread.join()
        self.refresh()
        self.bar.close()


#: The progress line of a sweep under way, closed before an error is printed.
_progress: list[Progress] = []


class _Composed(dict):
    """The composed configs, empty once pickled: launchers pickle the config loader (and so
    this cache) into every job they send, which made each job cost more than the one before."""

    def __reduce__(self) -> tuple[type, tuple[()]]:
        return (_Composed, ())


def compose_each_job_once() -> None:
    """Let this process compose each job's config once. Hydra's basic sweeper composes every job
    to validate the batch, its launcher composes it again to run it, and the resume plan needs
    it too: about 0.15 s each time here. Each caller gets its own deep copy (the launcher writes
    the job's number into it); the cache lives as long as the sweep's config loader."""
    import copy

    from hydra.core.global_hydra import GlobalHydra

    loader = GlobalHydra.instance().config_loader()
    if getattr(loader, "_imbalance_lab_cached", False):
        return
    compose, cache = loader.load_sweep_config, _Composed()

    def load_sweep_config(master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        key = (id(master_config), tuple(sweep_overrides))
        if key not in cache:
            cache[key] = compose(master_config, sweep_overrides)
        copied = copy.deepcopy(cache[key])
        # a deep copy drops the resolvers' cache: without it ${now:...} is read again, and the
        # jobs of one sweep would land in the folders of several timestamps
        OmegaConf.copy_cache(from_config=master_config, to_config=copied)
        return copied

    loader.load_sweep_config = load_sweep_config  # type: ignore[method-assign]
    loader._imbalance_lab_cached = True  # type: ignore[attr-defined]


def resume_plan(config: DictConfig, jobs: list[list[str]]) -> str:
    """``resuming: K finished runs kept, N to run``, from the config hash of each planned job."""
    from hydra.core.global_hydra import GlobalHydra

    from pipeline import experiment, resume, tracking

    loader = GlobalHydra.instance().config_loader()
    hashes = [experiment.config_hash(loader.load_sweep_config(config, job)) for job in jobs]
    uri, experiment_id = tracking.prepare(config)
    return resume.plan_line(hashes, resume.finished(tracking.client_for(uri), experiment_id, resume.mode(config)))


def sweep_overrides(config: DictConfig) -> list[Any]:
    """The parsed overrides of a multirun: the study's sweeper params, then the command line,
    which replaces a study's sweep of the same key (as Hydra's basic sweeper does)."""
    params = config.hydra.sweeper.get("params") or {}
    texts = [f"{k}={v}" for k, v in params.items()] + list(config.hydra.overrides.task)
    parsed = OverridesParser.create().parse_overrides(texts)
    return list({o.get_key_element(): o for o in parsed}.values())


def planned_jobs(config: DictConfig) -> list[list[str]] | None:
    """Each job's overrides, as Hydra's basic sweeper will launch them (globs expanded);
    None under another sweeper, whose jobs are not known in advance."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra

    if not str(config.hydra.sweeper.get("_target_", "")).endswith("BasicSweeper"):
        return None
    loader = GlobalHydra.instance().config_loader()
    texts = [o.input_line for o in sweep_overrides(config) if o.input_line]
    parsed = OverridesParser.create(config_loader=loader).parse_overrides(texts)
    return [list(job) for job in BasicSweeper.split_arguments(parsed, None)[0]]


def refusals(config: DictConfig, jobs: list[list[str]]) -> list[str]:
    """One line per (fix, model, calibration) of the sweep that ``experiment.check_compatible``
    refuses, found by composing one job of each, before any job runs."""
    from hydra.core.global_hydra import GlobalHydra

    from pipeline.experiment import check_compatible

    choices, groups = config.hydra.runtime.choices, ("fix", "model", "calibration")
    pairs: dict[tuple[str, ...], list[list[str]]] = {}
    for job in jobs:
        chosen = dict(o.split("=", 1) for o in job if o.split("=", 1)[0] in groups)
        pairs.setdefault(tuple(chosen.get(g, choices[g]) for g in groups), []).append(job)
    loader, lines, refused = GlobalHydra.instance().config_loader(), [], 0
    for (fix, model, calibration), members in pairs.items():
        try:
            check_compatible(loader.load_sweep_config(config, members[0]))
        except Refused as err:
            refused += len(members)
            where = f"fix={fix} model={model} calibration={calibration}"
            lines.append(f"  {where} ({len(members)} job(s)): {_one_line(err)}")
    return [f"refused before any run starts: {refused} of {len(jobs)} jobs", *lines] if lines else []


def sweep_axes(config: DictConfig) -> list[str]:
    """Param names of the swept keys other than the seed: the leaderboard's rows.

    A swept config group (``fix=a,b``) is named by its option's ``name`` (``fix.name``)."""
    keys = [o.get_key_element().lstrip("+~") for o in sweep_overrides(config) if o.is_sweep_override()]
    axes = [f"{k}.name" if OmegaConf.select(config, k + ".name") is not None else k for k in keys if k != "seed"]
    return axes or ["fix.name"]


def _one_line(err: BaseException) -> str:
    """A one-line account of a bad input: the key, the value and what is accepted."""
    if isinstance(err, MissingConfigException) and err.missing_cfg_file:
        group, _, value = err.missing_cfg_file.rpartition("/")
        accepted = ", ".join(sorted(err.options or [])) or "(none found)"
        return f"{group or 'config'}={value} is not an option of '{group}'; accepted: {accepted}"
    if isinstance(err, OverrideParseException):
        return f"override {err.override!r} could not be parsed; accepted: key=value (see Hydra's override grammar)"
    cause = err.__cause__ if isinstance(err.__cause__, OmegaConfBaseException) else err
    if isinstance(cause, OmegaConfBaseException) and cause.full_key:
        return _omegaconf_line(err, cause)
    text = str(err).strip()
    if "pipeline.tracking" in sys.modules:
        text = sys.modules["pipeline.tracking"].short(text)
    return text.splitlines()[0] if text else type(err).__name__


def _omegaconf_line(err: BaseException, cause: OmegaConfBaseException) -> str:
    given = re.search(r"use \+\S+?=(.*)$", str(err))
    value = given.group(1) if given else cause.value
    if isinstance(cause, (ConfigAttributeError, ConfigKeyError)):
        parent = cause.parent_node
        keys = parent.keys() if isinstance(parent, DictConfig) else [f.name for f in fields(Config)]
        where = str(cause.full_key).rpartition(".")[0] or "the top level"
        accepted = ", ".join(sorted(map(str, keys)))
        return f"{cause.full_key}={value} is not a config key; accepted keys under {where}: {accepted}"
    return f"{cause.full_key}={value} is not accepted; {str(cause.msg).splitlines()[0]}"


def main() -> None:
    """Entry point: bad input ends with one line on stderr and exit status 2.

    Set ``HYDRA_FULL_ERROR=1`` for the traceback.
    """
    wants_traceback = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"  # let Hydra's errors reach us instead of exit(1)
    logging.raiseExceptions = False  # a job log that cannot be written (full disk) prints no traceback
    interrupts.install()
    _credentials_out_of_argv()
    try:
        _run_errors.clear()
        task()
        interrupts.stop_if_interrupted()
        if _run_errors:
            raise _run_errors[0]
    except BaseException as err:
        from pipeline import writer

        writer.dismiss()  # one started early (pipeline/__main__.py) for a run refused before it began
        for progress in list(_progress):
            progress.close()
        if isinstance(err, (SweepRefused, DiskFull)):
            err = err.error
        if isinstance(err, StopSweep):
            sys.modules["pipeline.tracking"].fail_fast()
            _end_open_runs("FAILED", f"sweep stopped: {err}")
            print(f"error: {err}; the sweep stopped (tracking.on_unreachable=stop)", file=sys.stderr)
            sys.exit(1)
        if isinstance(err, KeyboardInterrupt) or interrupts.received():
            _end_interrupted()
            print("interrupted", file=sys.stderr)
            sys.exit(130)
        _end_open_runs("FAILED", _one_line(err))
        if _worker_died(err) and not wants_traceback:
            _end_interrupted()  # the dead worker's run, and those the launcher's others still hold
            print("error: a launcher worker died (kill -9, or out of memory) while it ran a job; the sweep stopped: "
                  "rerun it with resume=true to run what is left", file=sys.stderr)  # fmt: skip
            sys.exit(1)
        full = isinstance(err, OSError) and err.errno in DISK_FULL
        if (full or "database or disk is full" in str(err)) and not wants_traceback:  # the latter: SQLite's
            where = f" writing {err.filename}" if isinstance(err, OSError) and err.filename else ""
            reason = err.strerror if isinstance(err, OSError) else "the store could not be written"
            print(f"error: disk full ({reason}{where}); free space, then rerun with resume=true", file=sys.stderr)
            sys.exit(1)
        if isinstance(err, OSError) and not isinstance(err, HydraException) and not wants_traceback:
            _os_error_line(err)  # (Hydra's MissingConfigException is an IOError: said below)
        if wants_traceback or not isinstance(err, (ConfigError, HydraException, OmegaConfBaseException)):
            raise
        print(f"error: {_one_line(err)}", file=sys.stderr)
        sys.exit(2)
    _exit_for_failed_jobs()


def _worker_died(err: BaseException) -> bool:
    """Whether the joblib launcher lost a worker (``kill -9``, the kernel's out-of-memory killer)."""
    if "joblib" not in type(err).__module__:
        return False
    from joblib.externals.loky.process_executor import TerminatedWorkerError

    return isinstance(err, TerminatedWorkerError)


def _os_error_line(err: OSError) -> None:
    """A folder that could not be made or written: one line. Named by its key (exit 2) when the
    path came from ``hydra.run.dir`` or ``hydra.sweep.dir`` on the command line, else exit 1."""
    where = str(err.filename or "")
    for arg in sys.argv[1:]:
        key, _, value = arg.partition("=")
        if key.lstrip("+") in ("hydra.run.dir", "hydra.sweep.dir") and value and where.startswith(value):
            accepted = "a folder this user can create and write"
            print(f"error: {ConfigError(key.lstrip('+'), value, accepted, why=err.strerror or str(err))}",
                  file=sys.stderr)  # fmt: skip
            sys.exit(2)
    print(f"error: {err.strerror or err}" + (f": {where}" if where else ""), file=sys.stderr)
    sys.exit(1)


def _end_interrupted() -> None:
    """End this process's open runs KILLED, then those its launcher's workers left open."""
    tracking = sys.modules.get("pipeline.tracking")
    if tracking is None:
        return
    tracking.fail_fast()
    if "pipeline.writer" in sys.modules:  # finished jobs whose runs are not written yet end KILLED
        sys.modules["pipeline.writer"].stop()
    tracking.end_open_runs("KILLED", "interrupted")
    try:
        tracking.end_orphans()
    except Exception as err:  # the store is gone: the next start reconciles the workers' runs
        print(f"could not end the workers' runs ({_one_line(err)}); the next start ends them", file=sys.stderr)


def _end_open_runs(status: str, error: str) -> None:
    """After an error: the runs handed to the writer are written first (or kept for relog, each
    failure said in one line), then this process's open runs end ``status``."""
    if "pipeline.writer" in sys.modules:
        for line in sorted({done.error for done in sys.modules["pipeline.writer"].finish().values()}):
            print(f"error: {line}", file=sys.stderr)
    if "pipeline.tracking" in sys.modules:
        sys.modules["pipeline.tracking"].end_open_runs(status, error)


def _exit_for_failed_jobs() -> None:
    if not _sweep_failures:
        return
    for line in sorted({f["error"] for f in _sweep_failures}):
        print(f"error: {line}", file=sys.stderr)
    print(f"{len(_sweep_failures)} job(s) failed", file=sys.stderr)
    sys.exit(2 if all(f["user_error"] for f in _sweep_failures) else 1)
