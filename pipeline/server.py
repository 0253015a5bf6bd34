"""A tracking server on a real database: PostgreSQL and ``mlflow server`` on it, both on 127.0.0.1.

    python -m pipeline.server start   # (make server) a cluster under .server/, then mlflow server
    python -m pipeline.server stop    # (make server-stop)

PostgreSQL is Debian's (``apt-get install postgresql``). It refuses to run as root, so as root
its programs run as the ``postgres`` user (``runuser``), with the cluster's folders theirs.
Artifacts are proxied by the server (``mlflow-artifacts:``), so clients need no access to its
disk; MLflow's job runner is off. Sweeps reach it with ``tracking=server`` and
``MLFLOW_TRACKING_URI=http://127.0.0.1:5000``.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline import credentials
from pipeline.paths import REPO_ROOT
from pipeline.ui import wait_healthy

DEFAULT_DIR = REPO_ROOT / ".server"


@dataclass(frozen=True)
class Server:
    """Where a server's files live and the ports it listens on (127.0.0.1 only)."""

    root: Path = DEFAULT_DIR
    pg_port: int = 5433
    port: int = 5000

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/mlflow"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def pg_program(name: str) -> str:
    """A PostgreSQL program: on PATH, or in Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if found is None:
        raise SystemExit(f"error: PostgreSQL's {name} is missing; install it: apt-get install postgresql")
    return found


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _own(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


def start_postgres(server: Server) -> None:
    """Initialise the cluster once (trust auth, listening on 127.0.0.1 only), start it, create
    the ``mlflow`` database."""
    data, sockets = server.root / "pgdata", server.root / "pgsock"
    _own(server.root)
    _own(sockets)
    if not (data / "PG_VERSION").exists():
        _own(data)
        _run(_as_postgres([pg_program("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]))
    options = f"-h 127.0.0.1 -p {server.pg_port} -k {sockets}"
    log = server.root / "postgres.log"
    _run(_as_postgres([pg_program("pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start"]))
    exists = subprocess.run(
        [pg_program("psql"), "-h", "127.0.0.1", "-p", str(server.pg_port), "-U", "postgres", "-tAc",
         "select 1 from pg_database where datname = 'mlflow'"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    if not exists:
        _run([pg_program("createdb"), "-h", "127.0.0.1", "-p", str(server.pg_port), "-U", "postgres", "mlflow"])


def stop_postgres(server: Server) -> None:
    data = server.root / "pgdata"
    if (data / "postmaster.pid").exists():
        _run(_as_postgres([pg_program("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]))


def start_mlflow(server: Server, timeout: float = 120) -> None:
    """``mlflow server`` on the database, artifacts proxied to ``<root>/artifacts``, job runner off."""
    mlflow = Path(sys.executable).with_name("mlflow")
    cmd = [str(mlflow), "server", "--backend-store-uri", server.dsn,
           "--artifacts-destination", str(server.root / "artifacts"), "--serve-artifacts",
           "--host", "127.0.0.1", "--port", str(server.port), "--workers", "2"]  # fmt: skip
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    log = server.root / "mlflow-server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    (server.root / "mlflow-server.pid").write_text(str(proc.pid))
    _children[proc.pid] = proc
    wait_healthy(server.url, proc, log, timeout)


#: Servers this process started: it must reap them itself (an unreaped child looks alive).
_children: dict[int, subprocess.Popen[bytes]] = {}


def stop_mlflow(server: Server) -> None:
    pid_file = server.root / "mlflow-server.pid"
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text())
    try:
        os.killpg(pid, signal.SIGTERM)
        for _ in range(100):
            if pid in _children and _children[pid].poll() is not None:
                break
            os.killpg(pid, 0)
            time.sleep(0.2)
        else:
            os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # it has ended
    _children.pop(pid, None)
    pid_file.unlink()


def start(server: Server) -> None:
    start_postgres(server)
    start_mlflow(server)


def stop(server: Server) -> None:
    stop_mlflow(server)
    stop_postgres(server)


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:]
        raise SystemExit(credentials.mask(f"error: {' '.join(cmd)} failed: {last}"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.server", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="cluster, artifacts and logs (default .server/)")
    parser.add_argument("--pg-port", type=int, default=5433)
    parser.add_argument("--port", type=int, default=5000, help="the MLflow server's port")
    args = parser.parse_args(argv)
    server = Server(args.dir.resolve(), args.pg_port, args.port)
    if args.action == "start":
        start(server)
        database = credentials.mask(server.dsn)
        print(f"MLflow tracking server on {server.url} (PostgreSQL {database}); send sweeps there with")
        print(f"  MLFLOW_TRACKING_URI={server.url} python -m pipeline tracking=server ...")
    else:
        stop(server)
        print("stopped")


if __name__ == "__main__":
    main()
