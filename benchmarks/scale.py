"""6. Studies at scale: the 75 seed_demo jobs under the basic, joblib and Ray launchers (2
workers each); 200 jobs from 8 joblib workers into a fresh SQLite store and into the
PostgreSQL-backed ``mlflow server``; and resuming a finished 75-job sweep against running it."""

from __future__ import annotations

import shutil
import socket
import tempfile
from pathlib import Path

from benchmarks.common import ENV, Row, scratch, timed
from pipeline.paths import REPO_ROOT

SEED_DEMO = ["experiments=seed_demo"]
#: A local Ray instance with 2 workers and no dashboard.
RAY = ["hydra/launcher=ray", "+hydra.launcher.ray.init.num_cpus=2", "+hydra.launcher.ray.init.include_dashboard=false"]
#: seed_demo with 8 seeds: 5 rates x 5 fixes x 8 seeds = 200 jobs.
TWO_HUNDRED = ["experiments=seed_demo", "seed=0,1,2,3,4,5,6,7"]


def sweep(out: Path, name: str, *args: str, env: dict[str, str] | None = None) -> float:
    """Wall seconds of one ``python -m pipeline`` sweep (start-up included), which must succeed."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "pipeline", *args, f"hydra.sweep.dir={out / name}"]

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(cmd, cwd=REPO_ROOT, env={**ENV, **(env or {})}, capture_output=True, text=True,
                              timeout=3600)  # fmt: skip

    seconds, done = timed(run)
    if done.returncode != 0:
        raise RuntimeError(f"{name} exited {done.returncode}: {done.stderr[-2000:]}")
    return seconds


def finished(uri: str, experiment: str) -> int:
    from mlflow import MlflowClient

    c = MlflowClient(uri)
    runs = c.search_runs([c.get_experiment_by_name(experiment).experiment_id], max_results=5000)
    return sum(r.info.status == "FINISHED" and "mlflow.parentRunId" in r.data.tags for r in runs)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def throughput(out: Path) -> tuple[list[Row], str]:
    basic_uri = f"sqlite:///{out / 'basic.db'}"
    basic = sweep(out, "basic", *SEED_DEMO, f"tracking.uri={basic_uri}")
    joblib = sweep(out, "joblib", *SEED_DEMO, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                   f"tracking.uri=sqlite:///{out / 'joblib.db'}")  # fmt: skip
    ray = sweep(out, "ray", *SEED_DEMO, *RAY, f"tracking.uri=sqlite:///{out / 'ray.db'}")
    rows = [
        Row("6 scale", "75 seed_demo jobs, wall s (2 workers)", f"basic {basic:.1f}", f"joblib {joblib:.1f}",
            basic / joblib, ">= 1.5 (basic / joblib)", basic / joblib >= 1.5),
        Row("6 scale", "75 seed_demo jobs, wall s (2 workers)", f"basic {basic:.1f}", f"Ray {ray:.1f}",
            basic / ray, ">= 1.5 (basic / Ray)", basic / ray >= 1.5),
    ]  # fmt: skip
    return rows, basic_uri


def resumed(out: Path, basic_uri: str, basic_seconds: float) -> Row:
    again = sweep(out, "resumed", *SEED_DEMO, "resume=any_code", f"tracking.uri={basic_uri}")
    return Row("6 scale", "resume a finished 75-job sweep, wall s", f"run it {basic_seconds:.1f}",
               f"resume {again:.1f}", again / basic_seconds, "< 0.05", again / basic_seconds < 0.05)  # fmt: skip


def under_load(out: Path) -> list[Row]:
    from pipeline import server

    parallel = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=8", "metrics.n_boot=0"]
    sqlite_uri = f"sqlite:///{out / 'load.db'}"
    lite = sweep(out, "load-sqlite", *TWO_HUNDRED, *parallel, f"tracking.uri={sqlite_uri}")
    lite_kept = finished(sqlite_uri, "seed_demo")
    root = Path(tempfile.mkdtemp(prefix="imbalance-lab-bench-pg-"))
    root.chmod(0o755)
    srv = server.Server(root, _port(), _port())
    try:
        server.start(srv)
        served = sweep(out, "load-server", *TWO_HUNDRED, *parallel, "tracking=server",
                       env={"MLFLOW_TRACKING_URI": srv.url})  # fmt: skip
        served_kept = finished(srv.url, "seed_demo")
    finally:
        server.stop(srv)
        shutil.rmtree(root, ignore_errors=True)
    return [
        Row("6 scale", "200 jobs, 8 joblib workers: runs kept", "fresh SQLite", f"{lite_kept}/200",
            lite_kept / 200, "200/200", lite_kept == 200),
        Row("6 scale", "200 jobs, 8 joblib workers: runs kept", "PostgreSQL server", f"{served_kept}/200",
            served_kept / 200, "200/200", served_kept == 200),
        Row("6 scale", "200 jobs, 8 workers: runs per s", f"SQLite {200 / lite:.2f}",
            f"PostgreSQL server {200 / served:.2f}", lite / served, ""),
    ]  # fmt: skip


def main() -> list[Row]:
    out = scratch("scale")
    rows, basic_uri = throughput(out)
    basic_seconds = float(rows[0].baseline.split()[1])
    rows.append(resumed(out, basic_uri, basic_seconds))
    return rows + under_load(out)


if __name__ == "__main__":
    for row in main():
        print(row)
