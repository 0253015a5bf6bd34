"""Studies at scale, with real parts: resume after a real ``kill -9``, dead runs reconciled,
8 joblib workers and 8 processes on a fresh SQLite store, Ray, and a sweep into ``mlflow server``
on a real PostgreSQL."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from pipeline import resume, server, tracking
from pipeline.paths import REPO_ROOT
from tests.conftest import SMALL, client, free_port, job_runs

FAST = [*SMALL, "metrics.n_boot=0", "tracking.log_model=false"]
SWEEP = ["--multirun", "fix=none,smote", "seed=0,1,2", *FAST, "study=scale"]


def _pipeline(*args: str, cwd: Path = REPO_ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=cwd, env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=600)  # fmt: skip


def _leaves(store: Path, name: str) -> list:  # type: ignore[type-arg]
    c = client(store)
    return [
        r for r in c.search_runs([c.get_experiment_by_name(name).experiment_id]) if r.data.tags.get("sweep") != "true"
    ]


@pytest.mark.fault(
    "`kill -9` of a sweep",
    (
        "the next start ends the dead runs KILLED (`reconciled=true`); `resume=true` keeps the FINISHED "
        "jobs, one FINISHED run per job"
    ),
)
def test_resume_after_kill_9_keeps_finished_jobs_and_reconciles_the_dead(tmp_path: Path) -> None:
    store = tmp_path / "mlflow.db"
    where = [f"tracking.uri=sqlite:///{store}"]
    sweep = subprocess.Popen(
        [sys.executable, "-m", "pipeline", *SWEEP, *where, f"hydra.sweep.dir={tmp_path}/s1"],
        cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    deadline = time.time() + 300
    while job_runs(store, "FINISHED") < 2 and time.time() < deadline:  # written and ended by the run writer
        time.sleep(0.05)
    os.killpg(sweep.pid, signal.SIGKILL)
    sweep.wait()
    c = client(store)
    before = Counter(r.info.status for e in c.search_experiments() for r in c.search_runs([e.experiment_id]))
    assert before["RUNNING"] >= 1  # at least the parent: nothing could end it
    kept = before["FINISHED"]
    assert 2 <= kept < 6

    done = _pipeline(*SWEEP, *where, "resume=any_code", f"hydra.sweep.dir={tmp_path}/s2")
    assert done.returncode == 0, done.stderr
    assert f"reconciled: {before['RUNNING']} run(s) left RUNNING by dead processes ended KILLED" in done.stderr
    assert f"resuming: {kept} finished runs kept, {6 - kept} to run" in done.stderr
    assert f"6 finished ({kept} kept from earlier runs), 0 failed" in done.stdout
    every = [r for e in c.search_experiments() for r in c.search_runs([e.experiment_id])]
    assert not [r for r in every if r.info.status == "RUNNING"]
    reconciled = [r for r in every if r.data.tags.get("reconciled") == "true"]
    assert len(reconciled) == before["RUNNING"] and {r.info.status for r in reconciled} == {"KILLED"}
    finished = Counter(r.data.tags["config_hash"] for r in _leaves(store, "scale") if r.info.status == "FINISHED")
    assert len(finished) == 6 and set(finished.values()) == {1}  # one FINISHED run per job, no duplicate
    parent = next(r for r in every if r.data.tags.get("sweep") == "true" and r.info.status == "FINISHED")
    assert parent.data.metrics["jobs/finished"] == 6 and parent.data.metrics["jobs/kept"] == kept

    # a changed sweep reruns only what changed: one more seed, two more jobs
    grown = [a if not a.startswith("seed=") else "seed=0,1,2,3" for a in SWEEP]
    done = _pipeline(*grown, *where, "resume=any_code", f"hydra.sweep.dir={tmp_path}/s3")
    assert done.returncode == 0, done.stderr
    assert "resuming: 6 finished runs kept, 2 to run" in done.stderr
    finished = Counter(r.data.tags["config_hash"] for r in _leaves(store, "scale") if r.info.status == "FINISHED")
    assert len(finished) == 8 and set(finished.values()) == {1}


def test_runs_of_other_code_are_reused_only_with_any_code() -> None:
    here = {"mlflow.source.git.commit": "abc", "git_dirty": "false"}
    assert resume.same_code({"mlflow.source.git.commit": "abc", "git_dirty": "false"}, here)
    assert not resume.same_code({"mlflow.source.git.commit": "abd", "git_dirty": "false"}, here)
    assert not resume.same_code({"mlflow.source.git.commit": "abc", "git_dirty": "true"}, here)
    assert not resume.same_code(
        {"mlflow.source.git.commit": "abc", "git_dirty": "false"}, {**here, "git_dirty": "true"}
    )
    found = resume.Finished(reusable={"h1": ["run"]}, other_code={"h2": ["run"], "h1": ["old"]})
    assert resume.plan_line(["h1", "h2", "h3"], found) == (
        "resuming: 1 finished runs kept, 2 to run; 1 job(s) have FINISHED runs made by other code "
        "(another commit or a dirty tree), not reused: resume=any_code reuses them"
    )


@pytest.mark.fault(
    "RUNNING runs of dead and of live processes",
    "only the dead processes' runs are ended",
)
def test_reconcile_ends_dead_processes_runs_and_never_a_live_one(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    c = tracking.client_for(uri)
    experiment = c.create_experiment("zombies")
    gone = subprocess.Popen([sys.executable, "-c", "import os; print(os.getpid())"], stdout=subprocess.PIPE, text=True)
    pid = gone.communicate()[0].strip()
    alive = c.create_run(experiment, tags=tracking.liveness_tags()).info.run_id
    dead = c.create_run(experiment, tags={**tracking.liveness_tags(), "pid": pid}).info.run_id
    reused = c.create_run(experiment, tags={**tracking.liveness_tags(), "pid_started": "1"}).info.run_id  # pid reused
    elsewhere = c.create_run(experiment, tags={**tracking.liveness_tags(), "host": "another-host", "pid": pid})
    untagged = c.create_run(experiment).info.run_id
    assert tracking.reconcile(c, experiment) == 2
    status = {r.info.run_id: r.info.status for r in c.search_runs([experiment])}
    assert status[dead] == status[reused] == "KILLED"
    assert status[alive] == status[elsewhere.info.run_id] == status[untagged] == "RUNNING"
    assert c.get_run(dead).data.tags["reconciled"] == "true"


def _integrity(store: Path) -> tuple[str, str]:
    with sqlite3.connect(store) as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0], db.execute("PRAGMA journal_mode").fetchone()[0]


@pytest.mark.fault(
    "8 joblib workers on a store that does not exist yet (`slow`)",
    "all runs FINISHED, the store intact (WAL)",
)
@pytest.mark.slow  # 8 worker processes importing the stack on 2 cores (about 45 s)
def test_eight_joblib_workers_on_a_fresh_store_lose_nothing(tmp_path: Path) -> None:
    store = tmp_path / "fresh" / "mlflow.db"
    done = _pipeline("--multirun", "hydra/launcher=joblib", "hydra.launcher.n_jobs=8",
                     "fix=none,smote,class_weight,random_under", "seed=0,1", *FAST, "study=joblib8",
                     f"tracking.uri=sqlite:///{store}", f"hydra.sweep.dir={tmp_path}/s")  # fmt: skip
    assert done.returncode == 0, done.stderr
    runs = _leaves(store, "joblib8")
    assert len(runs) == 8 and {r.info.status for r in runs} == {"FINISHED"}
    assert len({r.data.tags["pid"] for r in runs}) > 1  # the jobs really ran in several workers
    assert _integrity(store) == ("ok", "wal")


@pytest.mark.fault(
    "8 processes started at once on a store that does not exist yet (`slow`)",
    "all 8 runs FINISHED, `PRAGMA integrity_check` ok",
)
@pytest.mark.slow  # 8 cold starts of the CLI on 2 cores (about 40 s)
def test_eight_processes_starting_at_once_on_a_fresh_store(tmp_path: Path) -> None:
    store = tmp_path / "fresh" / "mlflow.db"
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}

    def start(i: int) -> subprocess.Popen[str]:
        args = [
            f"seed={i}",
            *FAST,
            "study=crowd",
            f"tracking.uri=sqlite:///{store}",
            f"hydra.run.dir={tmp_path}/run{i}",
        ]
        return subprocess.Popen([sys.executable, "-m", "pipeline", *args], cwd=REPO_ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip

    procs = [start(i) for i in range(8)]
    errors = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, errors
    runs = _leaves(store, "crowd")
    assert sorted(r.data.params["seed"] for r in runs) == [str(i) for i in range(8)]
    assert {r.info.status for r in runs} == {"FINISHED"} and _integrity(store) == ("ok", "wal")


def _launcher_sweep(tmp_path: Path, name: str, *launcher: str) -> dict[str, dict[str, float]]:
    """Each FINISHED job run's metrics (but timings) of a two-job sweep under ``launcher``."""
    store = tmp_path / f"{name}.db"
    done = _pipeline("--multirun", *launcher, "fix=none,smote", *FAST, "study=ray",
                     f"tracking.uri=sqlite:///{store}", f"hydra.sweep.dir={tmp_path}/{name}")  # fmt: skip
    assert done.returncode == 0, done.stderr
    c = client(store)
    runs = c.search_runs([c.get_experiment_by_name("ray").experiment_id])
    parents = [r for r in runs if r.data.tags.get("sweep") == "true"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    return {
        r.info.run_name: {k: v for k, v in r.data.metrics.items() if not k.startswith("time/")}
        for r in runs
        if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id and r.info.status == "FINISHED"
    }


@pytest.mark.slow  # 28 s; joblib stays in the default run with the kill -9 fault test
def test_a_joblib_sweep_gives_the_basic_launchers_runs_and_metrics(tmp_path: Path) -> None:
    """The same config and seed give the same metrics whichever launcher ran the job (the basic
    launcher's jobs hand their runs to the run writer; joblib's workers write their own)."""
    basic = _launcher_sweep(tmp_path, "basic")
    assert set(basic) == {"none-logreg-none-p0.1-s0", "smote-logreg-none-p0.1-s0"}
    assert _launcher_sweep(tmp_path, "joblib", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2") == basic


@pytest.mark.slow  # Ray's start-up on 2 cores (about 40 s)
def test_a_ray_sweep_gives_the_basic_launchers_runs_and_metrics(tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_ray_launcher")
    basic = _launcher_sweep(tmp_path, "basic")
    assert _launcher_sweep(tmp_path, "ray", "hydra/launcher=ray", "+hydra.launcher.ray.init.num_cpus=2",
                           "+hydra.launcher.ray.init.include_dashboard=false") == basic  # fmt: skip


def test_sweep_into_mlflow_server_on_postgresql(postgres_server: server.Server, tmp_path: Path) -> None:
    env = {"MLFLOW_TRACKING_URI": postgres_server.url}
    done = _pipeline("--multirun", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "tracking=server",
                     "fix=none,smote", "seed=0,1", *SMALL, "metrics.n_boot=0", "study=served_pg",
                     f"hydra.sweep.dir={tmp_path}/s", cwd=tmp_path, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    from mlflow import MlflowClient

    c = MlflowClient(postgres_server.url)
    runs = c.search_runs([c.get_experiment_by_name("served_pg").experiment_id])
    assert len(runs) == 5 and {r.info.status for r in runs} == {"FINISHED"}
    child = next(r for r in runs if "mlflow.parentRunId" in r.data.tags)
    assert child.info.artifact_uri.startswith("mlflow-artifacts:")
    assert {"model", "predictions", "plots"} <= {a.path for a in c.list_artifacts(child.info.run_id)}
    rows = subprocess.run(
        [server.pg_program("psql"), "-h", "127.0.0.1", "-p", str(postgres_server.pg_port), "-U", "postgres", "mlflow",
         "-tAc", "select count(*) from runs where status = 'FINISHED'"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert int(rows.stdout) >= 5  # the runs are rows of the PostgreSQL database itself
    assert not (tmp_path / "mlflow.db").exists() and not (REPO_ROOT / "served_pg").exists()


@pytest.mark.fault(
    "nothing listening at the tracking server's address",
    "exit 2 within seconds, one line, no job started, the URI's password not printed",
)
@pytest.mark.parametrize("sweep", [False, True])
def test_an_unreachable_server_is_refused_before_any_job(tmp_path: Path, sweep: bool) -> None:
    started = time.time()
    args = ["--multirun", "fix=none,smote", f"hydra.sweep.dir={tmp_path}/s"] if sweep else []
    done = _pipeline(*args, "tracking=server", f"hydra.run.dir={tmp_path}/run",
                     env={"MLFLOW_TRACKING_URI": f"http://user:secret@127.0.0.1:{free_port()}"})  # fmt: skip
    assert done.returncode == 2 and time.time() - started < 60
    assert done.stderr.startswith("error: tracking.uri=http://127.0.0.1:") and "secret" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not list(tmp_path.glob("s/*/result.json"))  # no job ran


def test_every_job_of_a_sweep_lands_in_its_one_folder(tmp_path: Path) -> None:
    """The sweep folder's ${now:} is read once: jobs composed once and copied for the launcher
    keep the sweep's timestamp (microseconds here, so a second reading would differ)."""
    done = _pipeline("--multirun", "fix=none,smote,class_weight", *FAST, "tracking=off",
                     f"hydra.sweep.dir={tmp_path}/" + "${now:%H-%M-%S-%f}")  # fmt: skip
    assert done.returncode == 0, done.stderr
    (folder,) = tmp_path.iterdir()
    assert sorted(p.parent.name for p in folder.glob("*/result.json")) == ["0", "1", "2"]
    assert "3 finished, 0 failed" in done.stdout
