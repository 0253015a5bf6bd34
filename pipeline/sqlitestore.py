"""The SQLite store file: made whole or not at all, opened under a bounded lock, left checkpointed.

- **Made atomically.** MLflow creates a new store by running some thirty migrations in place; a
  Ctrl-C or ``kill -9`` among them leaves a file on which every later run fails (``table ...
  already exists``). Here a new store is built under a temporary name beside it and renamed into
  place, so the store path holds a complete store or nothing.
- **A bounded lock.** Processes that open a store at once take turns under a file lock (one
  creates it, the others find it made). A process stopped while holding it (Ctrl-Z) would make
  every other wait for ever, so a wait ends after ``$IMBALANCE_LAB_LOCK_WAIT`` seconds (default
  120) in one line naming the holder.
- **Checkpointed.** The store runs in WAL mode: committed runs may live in ``mlflow.db-wal``
  until a checkpoint. SQLite checkpoints when the last connection closes, which a process that
  leaves without its teardown (``interrupts.quick_exit``) never does; so every process that opened
  a store checkpoints it at exit, and a copy of ``mlflow.db`` alone is whole once commands end.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

from pipeline.errors import ConfigError

LOCK_WAIT_ENV = "IMBALANCE_LAB_LOCK_WAIT"
ACCEPTED = "a SQLite store in a folder this user can write"
#: Stores this process opened: checkpointed at exit.
_checkpoint: set[Path] = set()


def open_store(path: Path, uri: str) -> None:
    """Create the store at ``path`` if it is missing (atomically), check it can be written and
    is whole, let MLflow migrate an older schema, switch it to WAL. ``ConfigError`` naming
    ``tracking.uri`` when it cannot be used."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(path, uri):
            if not path.exists() or path.stat().st_size == 0:
                _create(path)
            check_writable(path)
            _check_whole(path, uri)
            _client(f"sqlite:///{path}").search_experiments(max_results=1)  # migrates an older schema
            with closing(sqlite3.connect(path, timeout=60)) as db:
                db.execute("PRAGMA journal_mode=WAL")
    except (OSError, sqlite3.Error) as err:
        raise unwritable(uri, err) from None
    remember(path)


def remember(path: Path) -> None:
    """Checkpoint ``path``'s write-ahead log when this process exits."""
    if not _checkpoint:
        atexit.register(_checkpoint_all)
    _checkpoint.add(path)


def check_writable(path: Path) -> None:
    """A store that cannot be written fails here, not after minutes of MLflow's retries."""
    if path.exists():
        with closing(sqlite3.connect(path, timeout=60)) as db:
            db.execute("BEGIN IMMEDIATE")
            db.rollback()
    elif not os.access(path.parent, os.W_OK):
        raise PermissionError(13, "Permission denied", str(path.parent))


def unwritable(uri: str, err: BaseException) -> ConfigError:
    """The one line for a store this process cannot use."""
    if isinstance(err, ConfigError):
        return err
    why = getattr(err, "strerror", None) or str(err)
    if isinstance(err, sqlite3.DatabaseError) and not isinstance(err, sqlite3.OperationalError):
        why = f"{why}: the file is damaged, truncated or not an SQLite store; move it away or restore a backup"
        return ConfigError("tracking.uri", uri, "an MLflow SQLite store, or a path where none exists yet", why=why)
    return ConfigError("tracking.uri", uri, ACCEPTED, why=why)


def _client(uri: str):  # type: ignore[no-untyped-def]
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _create(path: Path) -> None:
    """Build a new store beside ``path`` and rename it into place. Under the lock, any
    ``.part`` left beside it is a dead creator's."""
    for stale in path.parent.glob(f".{path.name}.*.part*"):
        stale.unlink(missing_ok=True)
    part = path.with_name(f".{path.name}.{os.getpid()}.part")
    client = _client(f"sqlite:///{part}")
    client.search_experiments(max_results=1)  # creates and migrates the schema
    client._tracking_client.store.engine.dispose()  # no connection may outlive the rename
    with closing(sqlite3.connect(part)) as db:
        db.execute("PRAGMA journal_mode=WAL")
    os.replace(part, path)


def _check_whole(path: Path, uri: str) -> None:
    """Refuse a store an older version left half-made (its schema version never written)."""
    with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=60)) as db:
        tables = {row[0] for row in db.execute("select name from sqlite_master where type = 'table'")}
        if not tables:
            return  # an empty database: MLflow creates its tables
        made = "alembic_version" in tables and db.execute("select count(*) from alembic_version").fetchone()[0]
        if made:
            return
        runs = db.execute("select count(*) from runs").fetchone()[0] if "runs" in tables else 0
    why = f"a half-made store (its creation was interrupted; it holds {runs} runs): move it away"
    raise ConfigError("tracking.uri", uri, "a whole MLflow store, or a path where none exists yet", why=why)


@contextlib.contextmanager
def _locked(path: Path, uri: str) -> Iterator[None]:
    """Hold ``<store>-lock`` exclusively, waiting at most ``$IMBALANCE_LAB_LOCK_WAIT`` seconds."""
    wait = float(os.environ.get(LOCK_WAIT_ENV) or 120)
    lock_path = path.with_name(path.name + "-lock")
    with open(lock_path, "a+") as lock:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    why = f"{lock_path.name} held for {wait:g} s by {_holder(lock)}"
                    raise ConfigError("tracking.uri", uri, "a store no other process holds locked", why=why) from None
                time.sleep(0.05)
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        yield


def _holder(lock: object) -> str:
    """Who holds the lock, as far as its file says: a pid, and whether that process is stopped."""
    try:
        pid = int(Path(lock.name).read_text().strip())  # type: ignore[attr-defined]
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, ValueError, IndexError):
        return "another process"
    return f"process {pid}" + (" (stopped: resume it with fg or kill it)" if state in ("T", "t") else "")


def _checkpoint_all() -> None:
    for path in _checkpoint:
        with contextlib.suppress(sqlite3.Error, OSError), closing(sqlite3.connect(path, timeout=1)) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
