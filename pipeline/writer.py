"""The run writer: a child process that logs a finished job's metrics, tags and files and ends
its run, while a sweep's next job runs (or, for a single run, that opens the run while the job
computes: see the last section).

Under the basic launcher a sweep runs its jobs one after another in one process, which then
spent about 40% of each job drawing six figures, writing the prediction table and the model,
and talking to the store. ``track`` now opens the run and logs its params as before, runs the
job, then hands the result to this writer and returns; the writer, on the other core, writes
everything and only then ends the run FINISHED. So a FINISHED run always has all its files:

- a write that fails ends the run FAILED (the results are kept in the job's ``unlogged/``
  folder for ``python -m pipeline.relog``, as a synchronous write would) and the sweep's
  record of that job is turned FAILED before the leaderboard is made (``finish``);
- on Ctrl-C or SIGTERM (``stop``) the runs not yet written end KILLED (the writer ignores the
  terminal's SIGINT and takes the order from the sweep); a writer that does not answer within
  ``grace`` seconds is killed and the sweep ends what it held; a sweep that stops on an error
  first lets the writer finish (``finish``), so results computed are logged or kept;
- ``kill -9`` of the sweep kills the writer with it (PR_SET_PDEATHSIG): its runs stay RUNNING
  until the next start ends them KILLED (``tracking.reconcile``);
- ``kill -9`` of the writer alone (or the out-of-memory killer): the parent keeps each item until
  it is answered and writes the runs the writer held itself (``Writer.rescue``); a single run
  whose writer died before it answered opens, or adopts, its run itself.

Only the process that enabled it (the sweep's own) defers: launcher workers (joblib, Ray)
already keep every core busy, so they write their runs themselves. The sweep's process also
writes a run itself while the writer is ``BACKLOG`` runs behind. Results reach the writer as
``result.portable`` makes them (the model pickled), so the writer never imports the fix and
model code to unpickle them.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import queue
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: What a run the writer has not finished ends as when the sweep is interrupted (``stop``).
_STOP_CODES = {0: "", 1: "KILLED"}
#: The line for a writer that died (``kill -9``, out of memory) before it answered.
DIED = "the run writer process died"


@dataclass
class StopCode:
    """``write``'s stop order when the run's own process writes (0: none)."""

    value: int = 0


@dataclass
class Item:
    """One finished job for the writer: what ``tracking._log_result`` needs, and the job folder
    where ``relog.keep`` puts the results if the store refuses them."""

    run_id: str
    uri: str
    experiment: str
    cfg: Any
    result: Any
    note: str
    artifact_uri: str
    folder: str


@dataclass
class Done:
    """The writer's answer for one run: how it ended, why if not FINISHED (the line the sweep
    prints and records for the job), whether the disk was full, and the error itself, pickled
    (a single run raises it as a synchronous write would have)."""

    run_id: str
    status: str
    error: str
    disk_full: bool = False
    raised: bytes = b""


@dataclass
class Open:
    """A single run's request: open the store and the run, log the params (``tags`` are the
    run's own: the liveness of the process the run belongs to, the study)."""

    cfg: Any
    tags: dict[str, str]


@dataclass
class Opened:
    run_id: str
    uri: str
    experiment_id: str
    artifact_uri: str


@dataclass
class NotOpened:
    """The store (or the run) could not be opened: the error, pickled, and its line."""

    raised: bytes
    error: str


@dataclass
class Draw:
    """A single run's curves, sent while its job computes the metrics: drawn meanwhile."""

    curves: dict[str, Any]


@dataclass
class End:
    """End the run opened for a single run whose job failed or was interrupted."""

    status: str
    error: str


class Writer:
    """The parent's side: a queue of items to the child and one of answers back."""

    def __init__(self, warm: bool = False) -> None:
        ctx = multiprocessing.get_context("spawn")  # no fork of a process with MLflow's threads
        self.todo: Any = ctx.Queue()
        self.answers: Any = ctx.Queue()
        self.stop_code: Any = ctx.Value("i", 0)
        self.process = ctx.Process(
            target=serve,
            args=(self.todo, self.answers, self.stop_code, os.getpid(), warm),
            name="run-writer",
            daemon=True,
        )
        self.process.start()
        #: run id -> job folder, for the runs handed over and not answered yet
        self.pending: dict[str, str] = {}
        #: run id -> the item itself, until answered: a writer that dies is no loss (``rescue``)
        self.items: dict[str, Item] = {}
        #: job folder -> the answer for a run that ended FAILED in the writer
        self.failed: dict[str, Done] = {}
        self.lock = threading.Lock()
        #: a single run's: whether it asked to open its run, and the answer (None: not yet)
        self.asked_open = False
        self.opened: Opened | NotOpened | None = None

    def ask(self, message: Open | Draw | End) -> None:
        with self.lock:
            self.todo.put(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))

    def answer_to_open(self) -> Opened | NotOpened:
        """Wait for the answer to the single run's ``Open``."""
        while self.opened is None:
            if not self.process.is_alive():
                self.collect(0.2)  # what it said before it went
                if self.opened is None:
                    return NotOpened(b"", DIED)
            self.collect(0.2)
        return self.opened

    def submit(self, item: Item) -> None:
        payload = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
        with self.lock:
            self.pending[item.run_id] = item.folder
            self.items[item.run_id] = item
            self.todo.put(payload)
        self.collect(0)

    def collect(self, timeout: float) -> None:
        """Take the answers that have arrived (waiting up to ``timeout`` s for the first)."""
        from pipeline import tracking

        while self.pending or (self.asked_open and self.opened is None):
            try:
                done = self.answers.get(timeout=timeout) if timeout else self.answers.get_nowait()
            except queue.Empty:
                return
            timeout = 0
            if isinstance(done, (Opened, NotOpened)):
                self.opened = done
                continue
            with self.lock:
                folder = self.pending.pop(done.run_id, "")
                self.items.pop(done.run_id, None)
            tracking.forget(done.run_id)
            if done.status == "FAILED":
                self.failed[folder] = done

    def wait(self, deadline: float | None) -> bool:
        """Collect answers until none is pending (True), the deadline passes or the child is
        gone (False)."""
        while self.pending:
            if deadline is not None and time.monotonic() > deadline:
                return False
            if not self.process.is_alive():
                self.collect(0.2)  # what it said before it went
                return not self.pending
            self.collect(0.2)
        return True

    def rescue(self) -> None:
        """The child died (``kill -9``, out of memory) holding runs: write them here, each ending
        FINISHED, or FAILED with its results kept in ``unlogged/`` (a store that refuses)."""
        from pipeline import tracking

        for run_id in [r for r in self.pending if r in self.items]:
            done = write(self.items.pop(run_id), StopCode())
            tracking.forget(run_id)
            folder = self.pending.pop(run_id)
            if done.status != "FINISHED":
                self.failed[folder] = done

    def close(self, status: str, error: str) -> None:
        """End the child (killing it if it does not go); runs it still held end ``status`` here."""
        from pipeline import tracking

        if self.process.is_alive():
            with self.lock:
                self.todo.put(None)
            self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        self.collect(0)
        for run_id in list(self.pending):
            tracking.end_held(run_id, status, error)
            self.failed[self.pending.pop(run_id)] = Done(run_id, status, error)
        self.todo.cancel_join_thread()
        self.answers.cancel_join_thread()


def serve(todo: Any, answers: Any, stop_code: Any, parent: int, warm: bool = False) -> None:
    """The child: write each item, end its run, answer; until ``None`` or the parent is gone.
    ``warm``: started before its first order (``prestart``), so import MLflow meanwhile."""
    _die_with(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the sweep decides
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    if warm:  # what opening a run imports: MLflow's client (about 2 s) and its SQL store (about 1 s)
        import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
        from mlflow import MlflowClient  # noqa: F401
    opened: Opened | None = None  # a single run's, until its results (an Item) or an End come
    early = _Drawn()  # a single run's curves, drawn while its job computed the metrics
    try:
        while (payload := todo.get()) is not None:
            message = pickle.loads(payload)
            if isinstance(message, Open):
                answer = open_run(message)
                opened = answer if isinstance(answer, Opened) else None
                answers.put(answer)
                if opened is not None:  # while the job runs: what drawing and saving its results import
                    _import_for_writing(bool(message.cfg["tracking"]["log_model"]))
            elif isinstance(message, Draw):
                early.draw(message.curves)
            elif isinstance(message, End):
                if opened is not None:
                    answers.put(_end(opened, message.status, message.error))
                opened = None
            else:
                opened = None
                answers.put(write(message, stop_code, early.folder_for(message.result.curves)))
                early.clear()
        if opened is not None:  # the run's process ended without its results: interrupted, or failed
            status = _STOP_CODES[stop_code.value] or "FAILED"
            answers.put(_end(opened, status, "" if stop_code.value else "no results"))
    finally:
        early.clear()
    answers.close()
    answers.join_thread()  # every answer is in the pipe to the parent
    from pipeline.interrupts import quick_exit

    quick_exit(0)  # the teardown of MLflow, matplotlib and scikit-learn (0.5-1 s) would hold up the sweep's end


class _Drawn:
    """Curves drawn ahead into a temporary folder, used if the results bring the same curves."""

    def __init__(self) -> None:
        self.folder: Path | None = None
        self.curves: dict[str, Any] | None = None

    def draw(self, curves: dict[str, Any]) -> None:
        import tempfile

        from pipeline import plots

        self.clear()
        self.folder = Path(tempfile.mkdtemp(prefix="imbalance-lab-plots-"))
        plots.write_all(curves, self.folder)
        self.curves = curves

    def folder_for(self, curves: dict[str, Any]) -> Path | None:
        return self.folder if self.folder is not None and curves == self.curves else None

    def clear(self) -> None:
        import shutil

        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
        self.folder = self.curves = None


#: What writing a run's files imports, in the order it is needed: matplotlib and Pillow for the
#: PNGs, then (a run that logs its model) scikit-learn, which MLflow's ``sklearn.save_model``
#: imports for its version (about 1.2 s). Unpickling the results needs none of it (``result.portable``).
_FOR_WRITING = ("pipeline.plots", "PIL.PngImagePlugin")


def _import_for_writing(log_model: bool) -> None:
    import importlib

    for name in (*_FOR_WRITING, "sklearn") if log_model else _FOR_WRITING:
        importlib.import_module(name)


def open_run(message: Open) -> Opened | NotOpened:
    """Open a single run's store and run, and log its params, as ``tracking.track`` does."""
    from omegaconf import OmegaConf

    from pipeline import tracking

    cfg = OmegaConf.create(message.cfg)
    try:
        uri, experiment = tracking.prepare(cfg)
        run_id, artifact_uri = tracking.open_run(tracking.client_for(uri, check=False), experiment, cfg, message.tags)
    except Exception as err:
        return NotOpened(_pickled(err), tracking.one_line(err))
    return Opened(run_id, uri, experiment, artifact_uri)


def _end(opened: Opened, status: str, error: str) -> Done:
    from pipeline import tracking

    tracking.end_quietly(tracking.client_for(opened.uri, check=False), opened.run_id, status, error)
    return Done(opened.run_id, status, error)


def _pickled(err: BaseException) -> bytes:
    """``err`` pickled, or nothing if it will not pickle (or unpickle): its line is said then."""
    try:
        data = pickle.dumps(err, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.loads(data)
    except Exception:
        return b""
    return data


def write(item: Item, stop_code: Any, drawn: Path | None = None) -> Done:
    """Log one run's results and end it: FINISHED once everything is written, FAILED if the
    store refused (results kept for relog), or the stop status if the sweep stopped meanwhile.
    ``drawn``: the results' plots and curves, drawn already (``Draw``)."""
    from omegaconf import OmegaConf

    from pipeline import relog, tracking
    from pipeline.errors import DISK_FULL

    cfg = OmegaConf.create(item.cfg)
    client = tracking.client_for(item.uri, check=False)
    status, error, line, disk_full, raised = _STOP_CODES[stop_code.value], "", "", False, b""
    if not status:
        try:
            tracking.log_result(client, item.run_id, cfg, item.result, item.note, item.artifact_uri, drawn)
            status = "FINISHED"
        except Exception as err:
            folder = Path(item.folder)
            kept = relog.keep(item.run_id, item.experiment, item.uri, cfg, item.result, item.note, err, folder)
            status, error = "FAILED", tracking.one_line(kept)
            disk_full = isinstance(kept, OSError) and kept.errno in DISK_FULL
            said = str(kept).strip()  # the job's line, as the app says a job's error (no type name)
            line = tracking.short(said.splitlines()[0]) if said else type(kept).__name__
            raised = _pickled(kept)
    if status == "FINISHED" and stop_code.value:  # the sweep stopped while this one was written
        status = _STOP_CODES[stop_code.value]
    tracking.end_quietly(client, item.run_id, status, error)
    return Done(item.run_id, status, line, disk_full, raised)


def _die_with(parent: int) -> None:
    """Be killed when the parent dies (Linux), and leave at once if it already has."""
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):  # not Linux: no such call
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


#: This process's writer while it defers (see ``enable``), the pid that enabled it, and the
#: answers of a writer that died mid-sweep (job folder -> ``Done``), for ``finish``.
_state: dict[str, Any] = {"writer": None, "pid": None, "failed": {}, "single": False}


#: A sweep with fewer jobs than this writes its own runs (``tracking.writer=auto``): the writer's
#: start (about 3 s of imports on the other core) would cost more than it hides.
AUTO_FROM_JOBS = 8


def wanted(setting: str, jobs: int | None) -> bool:
    """Whether a sweep of ``jobs`` jobs (None: not known in advance) defers to a writer."""
    return setting == "always" or (setting == "auto" and (jobs is None or jobs >= AUTO_FROM_JOBS))


def enable() -> None:
    """Defer the runs of this process's jobs to a writer (started at the first one)."""
    _state["pid"] = os.getpid()


def deferring() -> bool:
    return _state["pid"] == os.getpid()


#: A sweep's process writes a finished run itself while its writer still has this many to write.
#: The writer's share of a run (six figures, the table, the model, the store's records) can take
#: longer than the job (a seed_demo run: about 0.3 s against 0.17 s), so a writer that only
#: queued would leave the sweep's core idle at the end while it caught up; writing every few runs
#: here keeps both cores busy and bounds the results waiting in memory.
BACKLOG = 2


def behind() -> bool:
    """Whether this process's writer has ``BACKLOG`` runs or more not yet written."""
    writer = _state["writer"]
    if writer is None:
        return False
    writer.collect(0)
    return len(writer.pending) >= BACKLOG


def job_threads() -> contextlib.AbstractContextManager[Any]:
    """While deferring, a job's numerical libraries use all cores but the writer's one (else no
    limit, and none of threadpoolctl's 3 ms library scan). On 2 cores a job's BLAS and OpenMP
    threads otherwise wait on the writer's core: 0.30 s a seed_demo job alone, 0.45 s beside a
    busy process, 0.31 s with one thread."""
    if not deferring():
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(max(1, (os.cpu_count() or 1) - 1))


def submit(item: Item) -> None:
    writer = _state["writer"]
    if writer is not None and not writer.process.is_alive():  # it died: its runs are written here, a new one starts
        writer.collect(0)  # what it said before it went
        writer.rescue()
        writer.close("FAILED", DIED)
        _state["failed"] = {**_state["failed"], **writer.failed}
        writer = None
    if writer is None:
        writer = _state["writer"] = Writer()
    writer.submit(item)


def finish() -> dict[str, Done]:
    """Wait for every handed-over run to be written and ended; stop deferring. Returns the job
    folders whose run ended FAILED in the writer, with the error."""
    writer, failed = _state["writer"], dict(_state["failed"])
    if writer is not None:  # an interrupt meanwhile leaves it to ``stop``
        writer.wait(None)
        if writer.pending and not writer.process.is_alive():
            writer.rescue()
        writer.close("FAILED", DIED)
        failed.update(writer.failed)
    _state.update(writer=None, pid=None, failed={}, single=False)
    return failed


def stop(grace: float = 10.0) -> None:
    """The sweep was interrupted (Ctrl-C, SIGTERM): the runs not written yet end KILLED, in the
    writer if it answers within ``grace`` seconds, else here."""
    writer = _state["writer"]
    _state.update(writer=None, pid=None, failed={}, single=False)
    if writer is None:
        return
    writer.stop_code.value = 1
    writer.wait(time.monotonic() + grace)
    writer.close("KILLED", "")


# A single run (``python -m pipeline`` without --multirun) starts its writer first, before Hydra
# composes the config (``prestart``): the writer imports MLflow, opens the store and the run and
# logs the params on the other core while the run's process imports scikit-learn, loads the data
# and fits; it draws the curves while the job computes its metrics (``Draw``); then it writes the
# rest and ends the run, as for a sweep's job, and the run's process waits for it.
# A server or SQLite store the run cannot use is refused before (``tracking.precheck``); another
# refusal (a database URI) is said when the job is done, and nothing is written (no run opened).


def spare_core() -> bool:
    """Whether the machine has a core a single run's writer can have now: 2 cores or more, and
    fewer processes running than cores, this one included (each process's state in /proc, about
    5 ms; elsewhere the 1-minute load average). The writer hides MLflow's imports and the store's
    opening behind the job on an idle core, but repeats the scientific imports (about 2 s of
    CPU): on a busy machine (a test suite, 10 runs at once) it would only add them. (The load
    average lags a minute behind: a run started just after a sweep would be refused the writer;
    /proc/loadavg's count of running tasks counts this process's own threads.)"""
    from pipeline.tracking import process_stat

    cores = os.cpu_count() or 1
    try:
        others = [entry for entry in os.listdir("/proc") if entry.isdigit() and int(entry) != os.getpid()]
    except OSError:  # not Linux
        return cores >= 2 and int(os.getloadavg()[0]) + 1 <= cores - 1
    running = 1 + sum(process_stat(pid)[:1] == ["R"] for pid in others)
    return cores >= 2 and running <= cores - 1


#: Hydra's flags after which ``python -m pipeline`` runs no single job in its own process: a
#: sweep, or only a printout.
_NOT_A_RUN = {"-m", "--multirun", "-h", "--help", "--hydra-help", "-c", "--cfg", "-i", "--info", "-sc",
              "--shell-completion", "--version"}  # fmt: skip
#: Overrides after which a single run opens its run without a writer (``app._start_writer``).
_NO_WRITER = ("tracking=off", "tracking.enabled=false", "tracking.writer=never", "resume=true", "resume=any_code",
              "hydra.mode=")  # fmt: skip


def looks_single(argv: list[str]) -> bool:
    """Whether a command line (without the program) is a single run that may use a writer; the
    composed config decides for good (a config file may still turn tracking off)."""
    return not any(arg in _NOT_A_RUN or arg.lower().startswith(_NO_WRITER) for arg in argv)


def prestart() -> None:
    """Start a writer now, before Hydra composes the config, for a command line that looks
    like a single run (``pipeline/__main__.py``): it imports MLflow while this process composes the config
    and imports scikit-learn. ``start_single`` takes it; a run that will not use it (tracking
    off, ``tracking.writer=never``, refused input) lets it go (``dismiss``): it has opened nothing."""
    _state["early"] = Writer(warm=True)


def started_early() -> bool:
    return _state.get("early") is not None


def dismiss() -> None:
    """Let a writer started by ``prestart`` and not taken go (it has written nothing)."""
    early = _state.pop("early", None)
    if early is not None:
        with early.lock:
            early.todo.put(None)
        early.todo.cancel_join_thread()
        early.answers.cancel_join_thread()


def start_single(cfg: Any, tags: dict[str, str]) -> None:
    """Start this single run's writer (or take the one ``prestart`` started) and ask it to open
    the run (``cfg``: the config as a container; ``tags``: the run's liveness and study)."""
    writer = _state.pop("early", None) or Writer()
    writer.asked_open = True
    writer.ask(Open(cfg, tags))
    _state.update(writer=writer, single=True)


def single() -> bool:
    """Whether this process's run is opened and written by a writer (``start_single``)."""
    return bool(_state.get("single")) and _state["writer"] is not None


def opened() -> Opened | None:
    """The single run's opened run, or None when its writer died before it answered (then this
    process is the run's only writer: ``single()`` is false from here); raises the error the
    store refused it with."""
    writer = _state["writer"]
    answer = writer.answer_to_open()
    if isinstance(answer, NotOpened) and answer.error == DIED and not answer.raised:
        writer.close("FAILED", DIED)  # reaps it; it held no run
        _state.update(writer=None, single=False)
        return None
    if isinstance(answer, NotOpened):
        raise _error(answer.raised, answer.error)
    return answer


def end_opened(status: str, error: str, grace: float = 10.0) -> None:
    """The single run's job failed or was interrupted: its run (if opened) ends ``status``."""
    writer = _state["writer"]
    writer.ask(End(status, error))
    answer = writer.answer_to_open()
    if isinstance(answer, Opened):
        writer.pending[answer.run_id] = ""
        writer.wait(time.monotonic() + grace)
        writer.failed.pop("", None)  # ended FAILED on purpose: the job's own error is what is said


def draw(curves: dict[str, Any]) -> None:
    """Have the single run's writer draw ``curves`` now (``Draw``)."""
    _state["writer"].ask(Draw(curves))


def write_single(item: Item) -> Done:
    """Hand the single run's results to its writer and wait until the run is written and
    ended. The writer is told to go, not waited for: its run is ended already, and its exit
    (about 1 s of MLflow's and matplotlib's teardown) would only delay this process's."""
    writer = _state["writer"]
    writer.submit(item)
    writer.wait(None)
    _state.update(writer=None, single=False)
    if writer.pending:  # it died first (kill -9, out of memory): this process writes the run it opened
        writer.rescue()  # FINISHED, or FAILED with the results kept in unlogged/
        writer.close("FAILED", DIED)
    else:
        with writer.lock:
            writer.todo.put(None)
    return writer.failed.get(item.folder, Done(item.run_id, "FINISHED", ""))


def raised(done: Done) -> BaseException:
    """The error a run that ended FAILED in the writer raises in the run's process."""
    return _error(done.raised, done.error)


def _error(data: bytes, line: str) -> BaseException:
    if data:
        err = pickle.loads(data)
        if isinstance(err, BaseException):
            return err
    return RuntimeError(line)
