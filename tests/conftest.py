"""Shared fixtures: composed configs (Hydra's compose API) and the real CLI in a subprocess.

Everything a test writes goes under its ``tmp_path``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from pipeline import server
from pipeline.paths import CONF_DIR, REPO_ROOT

#: blobs2d, smaller: enough positives at 5% for every split part, fast to fit.
SMALL = ["dataset.n_samples=4000", "imbalance.positive_rate=0.1", "split.min_positives=10"]


@pytest.fixture
def make_cfg() -> Iterator[Callable[..., DictConfig]]:
    """Compose the app's config with overrides, as ``python -m pipeline`` would (sans Hydra's run dir)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):

        def _compose(*overrides: str) -> DictConfig:
            return compose("config", overrides=["hydra.callbacks={}", "tracking=off", *overrides])

        yield _compose
    GlobalHydra.instance().clear()


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``python -m pipeline`` for real, tracking to a SQLite store under ``tmp_path``."""

    def _run(*args: str, store: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        store = store or tmp_path / "mlflow.db"
        overrides = [
            f"tracking.uri=sqlite:///{store}",
            f"hydra.run.dir={tmp_path}/run",
            f"hydra.sweep.dir={tmp_path}/sweep",
        ]
        env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
        env.pop("MLFLOW_TRACKING_URI", None)
        return subprocess.run(
            [sys.executable, "-m", "pipeline", *args, *overrides],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return _run


def client(store: Path):  # type: ignore[no-untyped-def]
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{store}")


def job_runs(store: Path, status: str) -> int:
    """How many of a sweep's job runs (those with a parent run) have ``status`` now, read
    without writing; 0 while the store is not made yet."""
    import contextlib
    import sqlite3

    query = ("select count(*) from runs r join tags t on t.run_uuid = r.run_uuid "
             "and t.key = 'mlflow.parentRunId' where r.status = ?")  # fmt: skip
    try:
        with contextlib.closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=20)) as db:
            return int(db.execute(query, (status,)).fetchone()[0])
    except sqlite3.OperationalError:  # no store, or no tables in it yet
        return 0


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[server.Server]:
    """One PostgreSQL cluster and one ``mlflow server`` on it for the whole test session."""
    try:
        server.pg_program("initdb")
    except SystemExit:
        if os.environ.get("CI"):
            raise
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    # not under pytest's own temporary folder (mode 700): the postgres user must reach its cluster
    root = Path(tempfile.mkdtemp(prefix="imbalance-lab-pg-"))
    root.chmod(0o755)
    srv = server.Server(root, free_port(), free_port())
    try:
        server.start(srv)
        yield srv
    finally:
        server.stop(srv)
        shutil.rmtree(root, ignore_errors=True)
