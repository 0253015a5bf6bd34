"""Faults, with real processes, a real store and a real server: signals and ``kill -9`` under the
joblib launcher, a full disk, a read-only store, and credentials in the tracking URI."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline import server, tracking
from pipeline.paths import REPO_ROOT
from tests.conftest import SMALL, client, job_runs

FAST = [*SMALL, "metrics.n_boot=0", "tracking.log_model=false"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING")}
    return {**env, "DVC_NO_ANALYTICS": "1"}


def _statuses(store: Path) -> Counter[str]:
    with contextlib.closing(sqlite3.connect(store)) as db:
        return Counter(dict(db.execute("select status, count(*) from runs group by status").fetchall()))


def _alive(pid: int) -> bool:
    return tracking._process_start(pid) != ""


@pytest.mark.fault(
    "SIGTERM, and `kill -9`, to a joblib sweep (2 workers)",
    (
        "SIGTERM: exit 130, every run FINISHED or KILLED, none RUNNING, no worker left. `kill -9`: "
        "workers end their runs KILLED within seconds, start no further job and exit; the next start "
        "ends the parent KILLED"
    ),
)
@pytest.mark.parametrize(
    "sig", [pytest.param(signal.SIGTERM, marks=pytest.mark.slow), signal.SIGKILL], ids=["SIGTERM", "kill -9"]
)
def test_joblib_workers_end_their_runs_and_die_with_the_sweep(tmp_path: Path, sig: signal.Signals) -> None:
    """SIGTERM: every run of every worker ends KILLED, none RUNNING. ``kill -9`` of the sweep's
    process: its workers end their runs KILLED and start no further job; the parent, which
    nothing could end, is ended by the next start's reconciliation."""
    store = tmp_path / "mlflow.db"
    sweep = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "--multirun", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
         "seed=range(0,12)", *FAST, "study=signals", f"tracking.uri=sqlite:///{store}",
         f"hydra.sweep.dir={tmp_path}/s"],
        cwd=REPO_ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.time() + 300
    while len(list(tmp_path.glob("s/*/result.json"))) < 2 and time.time() < deadline:
        time.sleep(0.05)
    while not job_runs(store, "RUNNING") and time.time() < deadline:  # signal with a worker's run open
        time.sleep(0.02)
    sweep.send_signal(sig)
    _, err = sweep.communicate(timeout=120)
    assert sweep.returncode == (130 if sig == signal.SIGTERM else -signal.SIGKILL), err[-2000:]
    c = client(store)
    (experiment,) = [e.experiment_id for e in c.search_experiments() if e.name == "signals"]
    runs = lambda: c.search_runs([experiment])  # noqa: E731
    if sig == signal.SIGKILL:  # the workers notice within a second, end their runs and exit
        deadline = time.time() + 60
        while any(r.info.status == "RUNNING" and "mlflow.parentRunId" in r.data.tags for r in runs()):
            assert time.time() < deadline, "a worker's run is still RUNNING a minute after the sweep died"
            time.sleep(0.5)
        time.sleep(3)
    pids = {int(r.data.tags["pid"]) for r in runs()}
    assert len(pids) >= 2 and not any(_alive(pid) for pid in pids), "a worker outlived the sweep"
    children = [r for r in runs() if "mlflow.parentRunId" in r.data.tags]
    finished = sum(r.info.status == "FINISHED" for r in children)
    time.sleep(2)
    assert sum(r.info.status == "FINISHED" for r in runs() if "mlflow.parentRunId" in r.data.tags) == finished
    assert finished < 12 and {r.info.status for r in children} <= {"FINISHED", "KILLED"}, Counter(
        r.info.status for r in children
    )
    (parent,) = [r for r in runs() if r.data.tags.get("sweep") == "true"]
    if sig == signal.SIGTERM:
        assert parent.info.status == "KILLED"
    else:
        assert parent.info.status == "RUNNING"  # what no handler can catch: the next start ends it
        assert tracking.reconcile(c, experiment) == 1
        assert c.get_run(parent.info.run_id).info.status == "KILLED"
    assert _statuses(store)["RUNNING"] == 0


@contextlib.contextmanager
def _tmpfs(size: str) -> Iterator[Path]:
    """A small real file system of its own (root only); skipped where mounting is not allowed."""
    where = Path(tempfile.mkdtemp(prefix="imbalance-lab-fs-"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                             capture_output=True, text=True, check=False)  # fmt: skip
    if mounted.returncode != 0:
        where.rmdir()
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()})")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
        where.rmdir()


@pytest.mark.fault(
    "outputs and artifacts on a full disk (300 kB tmpfs), single run and sweep",
    "exit 1, one line (`error: disk full ...`), every run FAILED, none RUNNING",
)
@pytest.mark.parametrize("sweep", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["run", "sweep"])
def test_a_full_disk_ends_the_runs_failed_with_one_line(tmp_path: Path, sweep: bool) -> None:
    """Outputs and artifacts on a full disk (a 300 kB tmpfs), the store elsewhere."""
    store = tmp_path / "mlflow.db"
    with _tmpfs("300k") as disk:
        c = client(store)
        tracking.client_for(f"sqlite:///{store}")
        c.create_experiment("full", artifact_location=(disk / "artifacts").as_uri())
        # a single run's writer too, as on an idle machine (``auto``), where it draws the plots early
        args = [*(["--multirun", "seed=0,1"] if sweep else []), "tracking.writer=always"]
        done = subprocess.run(
            [sys.executable, "-m", "pipeline", *args, *FAST, "study=full", f"tracking.uri=sqlite:///{store}",
             f"hydra.run.dir={disk}/run", f"hydra.sweep.dir={disk}/sweep"],
            cwd=REPO_ROOT, env=_env(), capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    lines = [
        line
        for line in done.stderr.replace("\r", "\n").splitlines()
        if "job/s" not in line and "s/job" not in line and line.strip()
    ]
    assert done.returncode == 1 and lines == [
        "error: disk full (No space left on device); free space, then rerun with resume=true"
    ], done.stderr[-3000:]
    statuses = _statuses(store)
    assert statuses["FAILED"] >= 1 and set(statuses) == {"FAILED"}, statuses


@pytest.mark.fault(
    "the SQLite store on a read-only file system",
    "exit 2 within seconds, one line naming `tracking.uri`, no job started, the store unchanged",
)
def test_a_read_only_store_is_refused_before_any_job(tmp_path: Path) -> None:
    with _tmpfs("20m") as disk:
        store = disk / "mlflow.db"
        # made in another process: files this one kept open for writing would block the remount
        code = f"from pipeline import tracking; tracking.client_for('sqlite:///{store}')"
        subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True, timeout=120)
        before = store.read_bytes()
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        started = time.time()
        done = subprocess.run(
            [sys.executable, "-m", "pipeline", "--multirun", "seed=0,1", *FAST, "study=ro",
             f"tracking.uri=sqlite:///{store}", f"hydra.sweep.dir={tmp_path}/sweep"],
            cwd=REPO_ROOT, env=_env(), capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert store.read_bytes() == before
    assert done.returncode == 2 and time.time() - started < 60
    assert done.stderr.strip().splitlines() == [
        f"error: tracking.uri=sqlite:///{store} is not accepted (Read-only file system); "
        "accepted: a SQLite store in a folder this user can write"
    ]
    assert not list(tmp_path.glob("sweep/*/result.json"))


SECRET = "s3cr3t-t0ken"


@pytest.mark.fault(
    (
        "`user:password@` in `tracking.uri` (argument, `MLFLOW_TRACKING_URI`, sweep, a config file, quoted, "
        "`HTTP://`, `/` and `@` in the password) against the PostgreSQL-backed server"
    ),
    (
        "the password is in no file the run writes (Hydra's included), no param, tag or artifact, not on "
        "stdout or stderr"
    ),
)
@pytest.mark.parametrize(
    "how",
    [
        "argument",
        "environment",
        "sweep",
        "config-file",
        pytest.param("quoted", marks=pytest.mark.slow),
        pytest.param("capitals", marks=pytest.mark.slow),
        "slash-at-password",
    ],
)  # (quoted and capitals are also in test_safety's spelling tests, which run in make test)
def test_credentials_in_the_tracking_uri_are_written_nowhere(
    postgres_server: server.Server, tmp_path: Path, how: str
) -> None:
    """``user:password@`` in the URI reaches MLflow as MLFLOW_TRACKING_USERNAME/PASSWORD; no
    param, tag, artifact, Hydra file, job record or printed line holds the password, however it
    is spelled (quoted, a scheme in capitals, '/' and '@' in the password) or wherever it comes
    from (the command line, the environment, a config file)."""
    from mlflow import MlflowClient

    password = f"{SECRET}/x@y" if how == "slash-at-password" else SECRET
    scheme = "HTTP://" if how == "capitals" else "http://"
    secret_uri = postgres_server.url.replace("http://", f"{scheme}alice:{password}@")
    env = _env()
    where = {"environment": [], "quoted": [f'tracking.uri="{secret_uri}"']}.get(how, [f"tracking.uri={secret_uri}"])
    if how == "environment":
        env["MLFLOW_TRACKING_URI"] = secret_uri
    if how == "config-file":  # a named study of the user's own, in a config folder of theirs
        (tmp_path / "mine" / "experiments").mkdir(parents=True)
        (tmp_path / "mine" / "experiments" / "leak.yaml").write_text(
            f"# @package _global_\ntracking:\n  uri: {secret_uri}\n"
        )
        where = ["experiments=leak"]
    study = f"secret-{how}"
    args = ["--multirun", "fix=none,smote"] if how == "sweep" else []
    if how == "config-file":  # Hydra's parser takes its flags first
        args = ["--config-dir", str(tmp_path / "mine")]
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", *args, "tracking=server", *where, *FAST, f"study={study}",
         f"hydra.run.dir={tmp_path}/out", f"hydra.sweep.dir={tmp_path}/out"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert SECRET not in done.stdout + done.stderr and "alice" not in done.stdout + done.stderr
    written = [p for p in tmp_path.rglob("*") if p.is_file() and "mine" not in p.parts]
    assert any(p.match("*/.hydra/overrides.yaml") for p in written)
    assert [p for p in written if SECRET.encode() in p.read_bytes()] == []
    c = MlflowClient(postgres_server.url)
    runs = c.search_runs([c.get_experiment_by_name(study).experiment_id])
    assert len(runs) == (3 if how == "sweep" else 1) and {r.info.status for r in runs} == {"FINISHED"}
    for run in runs:
        fields = {**run.data.params, **run.data.tags}
        assert [k for k, v in fields.items() if SECRET in v or "alice" in v] == []
        artifacts = Path(c.download_artifacts(run.info.run_id, "", str(tmp_path / "dl" / run.info.run_id)))
        assert [p for p in artifacts.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()] == []
    leaf = next(r for r in runs if r.data.tags.get("sweep") != "true")
    assert leaf.data.params["tracking.uri"] == postgres_server.url


def _mlflow_server(store: Path, port: int, cwd: Path) -> subprocess.Popen[bytes]:
    mlflow = Path(sys.executable).with_name("mlflow")
    cmd = [str(mlflow), "server", "--backend-store-uri", f"sqlite:///{store}", "--host", "127.0.0.1", "--port",
           str(port), "--artifacts-destination", str(cwd / "artifacts"), "--workers", "1"]  # fmt: skip
    log = open(cwd / f"server-{port}.log", "a")  # noqa: SIM115 (the server keeps writing to it)
    env = {**_env(), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    from pipeline.ui import wait_healthy

    wait_healthy(f"http://127.0.0.1:{port}", proc, cwd / f"server-{port}.log", 90)
    return proc


@pytest.mark.fault(
    "the tracking server killed while a job computes",
    (
        "remaining jobs FAILED in bounded time (one line each); the job's results kept in `unlogged/`; "
        "`python -m pipeline.relog` completes the same run FINISHED once the server is back"
    ),
)
@pytest.mark.parametrize("then", ["continue", pytest.param("stop", marks=pytest.mark.slow)])
def test_a_server_dying_mid_sweep_fails_jobs_in_bounded_time_and_keeps_results(tmp_path: Path, then: str) -> None:
    """The server is killed while a job computes: that job's results are kept in unlogged/, the
    remaining jobs fail within the bounded retries (or, with ``tracking.on_unreachable=stop``,
    the sweep stops at the first job that meets the dead server: the writer finds the first
    job's store gone only after the next job has tried to open its run, which fails, computes
    nothing and is recorded FAILED; no job after it starts), and ``pipeline.relog`` logs the kept
    results into the same run once the server is back."""
    from mlflow import MlflowClient

    from tests.conftest import free_port

    store, port = tmp_path / "server.db", free_port()
    tracking.client_for(f"sqlite:///{store}")  # made once, first (see tracking._open_sqlite)
    srv = _mlflow_server(store, port, tmp_path)
    url = f"http://127.0.0.1:{port}"
    c = MlflowClient(url)
    started = time.time()
    sweep = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "--multirun", "fix=smote,none" + (",class_weight" if then == "stop" else ""),
         "tracking=server",
         f"tracking.uri={url}", "dataset.n_samples=30000", "metrics.n_boot=0", "tracking.log_model=false",
         "study=down", f"tracking.on_unreachable={then}", "tracking.writer=always", f"hydra.sweep.dir={tmp_path}/s"],
        cwd=REPO_ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        while time.time() - started < 300:  # the first job's run is open and its params are in
            found = c.get_experiment_by_name("down")
            running = [] if found is None else c.search_runs([found.experiment_id], "attributes.status = 'RUNNING'")
            if any("fix.name" in r.data.params for r in running if "mlflow.parentRunId" in r.data.tags):
                break
            time.sleep(0.05)
    finally:
        os.killpg(srv.pid, signal.SIGKILL)
        srv.wait()
    killed = time.time()
    _, err = sweep.communicate(timeout=300)
    assert sweep.returncode == 1, err[-3000:]
    assert time.time() - killed < 90  # the bounded retries, not minutes
    (kept,) = tmp_path.glob("s/*/unlogged/run.json")
    record = json.loads(kept.read_text())
    assert record["params"]["fix.name"] == "smote" and 0 < record["metrics"]["test/pr_auc"] < 1
    assert f"kept in {kept.parent}: python -m pipeline.relog {kept.parent}" in err
    records = list(tmp_path.glob("s/*/result.json"))
    if then == "stop":
        assert err.rstrip().endswith("the sweep stopped (tracking.on_unreachable=stop)")
        others = [json.loads(p.read_text()) for p in records if p.parent != kept.parent.parent]
        assert len(records) <= 2 and all(r["status"] == "FAILED" and not r["metrics"] for r in others), others
        assert not any(r["params"]["fix.name"] == "class_weight" for r in others)  # nothing after it started
    else:
        assert len(records) == 2

    srv = _mlflow_server(store, port, tmp_path)  # the server is back, on the same store
    try:
        done = subprocess.run([sys.executable, "-m", "pipeline.relog", str(tmp_path / "s")], cwd=REPO_ROOT,
                              env=_env(), capture_output=True, text=True, timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr
        run = c.get_run(record["run_id"])  # the same run, completed
        assert run.info.status == "FINISHED" and run.data.tags["relogged"] == "true"
        assert run.data.metrics == pytest.approx(record["metrics"])
        assert {"predictions", "plots", "config.yaml"} <= {a.path for a in c.list_artifacts(run.info.run_id)}
        assert not kept.parent.exists()
    finally:
        os.killpg(srv.pid, signal.SIGKILL)
        srv.wait()


def test_relog_creates_the_run_a_store_never_had_and_refuses_an_empty_path(tmp_path: Path, capsys: Any) -> None:
    from pipeline import relog

    folder = tmp_path / "job" / relog.FOLDER
    (folder / "artifacts").mkdir(parents=True)
    (folder / "artifacts" / "config.yaml").write_text("seed: 3\n")
    record = {"run_id": "0" * 32, "experiment": "later", "uri": "sqlite:///unused.db",
              "run_name": "none-logreg-s3", "params": {"seed": "3"}, "metrics": {"test/pr_auc": 0.25},
              "tags": {"data_fingerprint": "abc"}}  # fmt: skip
    (folder / "run.json").write_text(json.dumps(record))
    from tests.conftest import free_port

    down = f"http://127.0.0.1:{free_port()}"  # the server is still down: one line, the folder kept
    with pytest.raises(SystemExit) as ended:
        relog.main([str(tmp_path), "--tracking-uri", down])
    said = capsys.readouterr().err
    assert ended.value.code == 2 and said.count("\n") == 1 and "Traceback" not in said
    assert said.startswith(f"error: {folder} not logged (") and said.endswith("; it is kept\n")
    assert (folder / "run.json").is_file()
    store = tmp_path / "mlflow.db"
    relog.main([str(tmp_path), "--tracking-uri", f"sqlite:///{store}"])
    c = client(store)
    (run,) = c.search_runs([c.get_experiment_by_name("later").experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "none-logreg-s3"
    assert run.data.params == {"seed": "3"} and run.data.metrics == {"test/pr_auc": 0.25}
    assert run.data.tags["relogged"] == "true" and run.data.tags["data_fingerprint"] == "abc"
    assert [a.path for a in c.list_artifacts(run.info.run_id)] == ["config.yaml"]
    assert not folder.exists() and f"as run {run.info.run_id}" in capsys.readouterr().out
    with pytest.raises(SystemExit) as ended:
        relog.main([str(tmp_path)])
    assert ended.value.code == 2 and "hold no unlogged/run.json" in capsys.readouterr().err


def _session_alive(sid: int) -> list[int]:
    """Processes of session ``sid`` still alive (zombies excluded)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == sid and fields[0] not in ("Z", "X"):
                alive.append(int(stat.parent.name))
    return alive


def _half_written(artifacts: Path) -> list[Path]:
    """Runs' artifact folders with their plots written and their prediction table not yet."""
    return [p.parent.parent for p in artifacts.glob("*/artifacts/plots/pr.png")
            if not (p.parent.parent / "predictions").exists()]  # fmt: skip


def _complete(folder: Path) -> bool:
    """A run's files all there: a plot per figure curve, the predictions, its config and its model."""
    from pipeline import plots

    figures = {p.stem for p in (folder / "curves").glob("*.json")} & set(plots.KINDS)
    return (
        bool(figures)
        and {p.stem for p in (folder / "plots").glob("*.png")} == figures
        and (folder / "predictions" / "test.parquet").is_file()
        and (folder / "config.yaml").is_file()
        and (folder / "model" / "MLmodel").is_file()
    )


@pytest.mark.fault(
    "Ctrl-C, and `kill -9`, to a sweep while its run writer is half-way through a run's files",
    (
        "every run FINISHED has all its files (plots, predictions, config, model); the half-written one "
        "and those not yet written end KILLED (after `kill -9`, at the next start); no writer left"
    ),
)
@pytest.mark.parametrize(
    "sig", [signal.SIGINT, pytest.param(signal.SIGKILL, marks=pytest.mark.slow)], ids=["Ctrl-C", "kill -9"]
)
def test_a_sweep_stopped_while_its_runs_are_written_loses_no_file(tmp_path: Path, sig: signal.Signals) -> None:
    """The writer is slowed (a pause between a run's plots and its other files) so that the
    signal lands while a run is half written, with finished jobs queued behind it. The sweep's
    process, finding its writer behind, may be half-way through writing a run itself too
    (``writer.BACKLOG``): every half-written run ends KILLED."""
    store = tmp_path / "mlflow.db"
    env = {**_env(), tracking.WRITE_PAUSE_ENV: "1.5"}
    sweep = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "--multirun", "seed=range(0,8)", *SMALL, "metrics.n_boot=0",
         "study=writer", f"tracking.uri=sqlite:///{store}", f"hydra.sweep.dir={tmp_path}/s"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    artifacts, deadline = tmp_path / "mlartifacts", time.time() + 240
    while time.time() < deadline and not (_half_written(artifacts) and job_runs(store, "FINISHED")):
        time.sleep(0.05)
    halves = {p.parent.name for p in _half_written(artifacts)}
    assert halves
    if sig == signal.SIGINT:
        os.killpg(sweep.pid, sig)  # as a terminal's Ctrl-C: the whole process group
    else:
        sweep.send_signal(sig)  # the sweep's process alone: its writer must die with it
    _, err = sweep.communicate(timeout=120)
    assert sweep.returncode == (130 if sig == signal.SIGINT else -signal.SIGKILL), err[-2000:]
    time.sleep(0.5)
    assert _session_alive(sweep.pid) == []  # no writer left behind
    c = client(store)
    (experiment,) = [e.experiment_id for e in c.search_experiments() if e.name == "writer"]
    if sig == signal.SIGKILL:
        assert tracking.reconcile(c, experiment) >= 2  # the parent and the runs the writer held
    runs = [r for r in c.search_runs([experiment]) if "mlflow.parentRunId" in r.data.tags]
    statuses = Counter(r.info.status for r in runs)
    assert set(statuses) == {"FINISHED", "KILLED"} and statuses["KILLED"] >= 2, statuses
    for run in runs:
        folder = artifacts / run.info.run_id / "artifacts"
        assert run.info.status == "KILLED" or _complete(folder), (run.info.run_id, sorted(folder.rglob("*")))
    half_runs = [r for r in runs if r.info.run_id in halves]
    assert len(half_runs) == len(halves)
    assert {r.info.status for r in half_runs} == {"KILLED"}  # Ctrl-C: their files may be complete, the stop came first


def _writer_of(pid: int, deadline: float) -> int:
    """The run writer process (a spawned child) of process ``pid``, once it exists."""
    while time.monotonic() < deadline:
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, IndexError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                cmdline = (stat.parent / "cmdline").read_bytes()
                if int(fields[1]) == pid and b"multiprocessing.spawn" in cmdline:
                    return int(stat.parent.name)
        time.sleep(0.05)
    raise AssertionError(f"no run writer under process {pid}")


@pytest.mark.fault(
    "`kill -9` of the run writer while it holds a run (a single run, and a sweep of six jobs)",
    "the run's own process writes what the writer held: every run FINISHED with all its files, exit 0, no traceback",
)
@pytest.mark.parametrize("sweep", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["run", "sweep"])
def test_a_run_writer_killed_loses_no_run(tmp_path: Path, sweep: bool) -> None:
    store = tmp_path / "mlflow.db"
    shape = ["--multirun", "seed=0,1,2,3,4,5"] if sweep else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", *shape, "tracking.writer=always", *SMALL, "metrics.n_boot=0",
         f"tracking.uri=sqlite:///{store}", f"hydra.run.dir={tmp_path}/run", f"hydra.sweep.dir={tmp_path}/sweep"],
        cwd=REPO_ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 180
    writer = _writer_of(proc.pid, deadline)
    # it holds a run: the single run's, once opened; a sweep's, once it has taken a job's results
    while time.monotonic() < deadline and not (store.exists() and _statuses(store)["RUNNING"] >= (2 if sweep else 1)):
        time.sleep(0.02)
    os.kill(writer, signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0 and "Traceback" not in err, err[-3000:]
    assert _statuses(store) == Counter({"FINISHED": 7 if sweep else 1})
    runs = [p for p in (store.parent / "mlartifacts").glob("*/artifacts") if (p / "predictions").exists()]
    assert len(runs) == (6 if sweep else 1) and all(_complete(p) for p in runs)


@pytest.mark.fault(
    "the store's own disk fills up mid-sweep (a 4 MB tmpfs holding only the store, 300 kB left)",
    "exit 1, no traceback, the last line `error: disk full ...`; the sweep stops instead of launching every "
    "remaining job; finished jobs' results kept in `unlogged/`",
)
@pytest.mark.slow  # a ten-job sweep on a tmpfs: about 25 s
def test_a_full_disk_under_the_store_stops_the_sweep_in_one_line(tmp_path: Path) -> None:
    with _tmpfs("4m") as disk:
        store = disk / "mlflow.db"
        tracking.client_for(f"sqlite:///{store}").create_experiment(
            "full-store", artifact_location=(tmp_path / "artifacts").as_uri()
        )
        free = shutil.disk_usage(disk).free
        (disk / "filler").write_bytes(b"\0" * (free - 300_000))
        done = subprocess.run(
            [sys.executable, "-m", "pipeline", "--multirun", "seed=0,1,2,3,4,5,6,7,8,9", *FAST, "study=full-store",
             f"tracking.uri=sqlite:///{store}", f"hydra.sweep.dir={tmp_path}/sweep"],
            cwd=REPO_ROOT, env=_env(), capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    said = [
        line for line in done.stderr.replace("\r", "\n").splitlines() if "job/s" not in line and "s/job" not in line
    ]
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert said[-1] == "error: disk full (the store's disk is full); free space, then rerun with resume=true"
    assert len(list((tmp_path / "sweep").glob("[0-9]*"))) < 10  # it stopped


@pytest.mark.fault(
    "`kill -9` of one joblib worker while it runs a job",
    "exit 1, one line (no traceback) that says to resume; no run left RUNNING",
)
@pytest.mark.slow  # a joblib sweep: about 25 s
def test_a_joblib_worker_killed_is_one_line(tmp_path: Path) -> None:
    store = tmp_path / "mlflow.db"
    sweep = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "--multirun", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
         "seed=0,1,2,3,4,5,6,7", *FAST, f"tracking.uri=sqlite:///{store}", f"hydra.sweep.dir={tmp_path}/sweep"],
        cwd=REPO_ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 180
    while job_runs(store, "RUNNING") < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    with contextlib.closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=20)) as db:
        (pid,) = db.execute("select t.value from runs r join tags t on t.run_uuid = r.run_uuid and t.key = 'pid' "
                            "join tags p on p.run_uuid = r.run_uuid and p.key = 'mlflow.parentRunId' "
                            "where r.status = 'RUNNING' limit 1").fetchone()  # a job's: a worker's pid  # fmt: skip
    os.kill(int(pid), signal.SIGKILL)
    _, err = sweep.communicate(timeout=300)
    said = [line for line in err.replace("\r", "\n").splitlines() if line.strip() and "job/" not in line
            and "s/job" not in line]  # fmt: skip
    assert sweep.returncode == 1 and "Traceback" not in err, err[-3000:]
    assert said == ["error: a launcher worker died (kill -9, or out of memory) while it ran a job; the sweep stopped: "
                    "rerun it with resume=true to run what is left"]  # fmt: skip
    assert _statuses(store)["RUNNING"] == 0
