"""Reliability and security: no command deletes what it did not make, a store survives a
Ctrl-C at its birth, no password reaches a file or a line, the model-signing key cannot be
forged, no wait is unbounded, a copied store is whole."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from pipeline import credentials, server, trusted
from pipeline.errors import ConfigError
from pipeline.paths import REPO_ROOT
from tests.conftest import SMALL

FAST = [*SMALL, "metrics.n_boot=0", "tracking.log_model=false"]
SECRET = "s3cr3t-t0ken"
REPORTED = ["--control", "fix.name=none", "--metrics", "test/pr_auc"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING")}
    return {**env, "DVC_NO_ANALYTICS": "1", **extra}


def _pipeline(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300):  # type: ignore[no-untyped-def]
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=cwd, env=env or _env(),
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


# --- credentials -------------------------------------------------------------------------------

#: RFC 3986 spellings: what urllib says the userinfo is, independently of our parser.
ESCAPED = [
    "http://alice:pw@127.0.0.1:5000",
    "https://alice:p%2Fw%40rd@mlflow.example.org/prefix",
    "postgresql://bob:x%3Ay@db:5432/mlflow",
    "postgresql+psycopg://bob:pw@db/mlflow?sslmode=require",
    "http://token@host:5000",
]


@pytest.mark.parametrize("uri", ESCAPED)
def test_the_userinfo_taken_is_the_one_urllib_parses(uri: str) -> None:
    parts = urlsplit(uri)
    clean, userinfo = credentials.split(uri)
    assert userinfo == parts.netloc.rpartition("@")[0]
    assert clean == parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


@pytest.mark.parametrize(
    ("given", "clean"),
    [
        ("http://alice:p/w@rd@127.0.0.1:5000", "http://127.0.0.1:5000"),  # '/' and '@' unescaped
        ("HTTP://alice:pw@h:5000", "http://h:5000"),  # a scheme in capitals
        ('"http://alice:pw@h:5000"', '"http://h:5000"'),  # Hydra's quotes
        ("'postgresql://bob:a@b/c@db/mlflow'", "'postgresql://db/mlflow'"),
        ("sqlite:////data/a@b/mlflow.db", "sqlite:////data/a@b/mlflow.db"),  # no authority: no userinfo
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    ],
)
def test_every_spelling_loses_its_password(given: str, clean: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", credentials.USERINFO_ENV):
        monkeypatch.delenv(key, raising=False)
    assert credentials.take(given) == clean
    shown = credentials.mask(f"error: tracking.uri={given} is not accepted")  # the scheme as typed
    assert shown.lower() == f"error: tracking.uri={clean} is not accepted".lower()
    if clean != given and "postgresql" in clean:  # a database's goes back as the driver parses it
        assert credentials.put_back("postgresql://db/mlflow") == "postgresql://bob:a%40b%2Fc@db/mlflow"
    elif clean != given:
        assert os.environ["MLFLOW_TRACKING_USERNAME"] == "alice"
        assert os.environ["MLFLOW_TRACKING_PASSWORD"] == ("p/w@rd" if "p/w" in given else "pw")


@pytest.mark.fault(
    "`--tracking-uri http://user:password@server` given to explain, report, promote and relog",
    "the password is on no printed line, in no page, report file or logged artifact",
)
@pytest.mark.slow  # a sweep into the server and five commands: about a minute
def test_readers_of_the_store_keep_the_password_out(postgres_server: server.Server, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    env = _env(MLFLOW_TRACKING_URI=postgres_server.url)
    done = _pipeline("--multirun", "fix=none,smote", "tracking=server", *FAST, "study=leak-readers",
                     f"hydra.sweep.dir={tmp_path}/sweep", cwd=tmp_path, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    secret_uri = postgres_server.url.replace("http://", f"http://alice:{SECRET}@")
    kept = tmp_path / "job" / "unlogged"  # what a job keeps when the store is away, for relog
    (kept / "artifacts").mkdir(parents=True)
    record = {"run_id": "0" * 32, "experiment": "leak-readers", "uri": "sqlite:///x.db", "run_name": "kept",
              "params": {}, "metrics": {}, "tags": {}}  # fmt: skip
    (kept / "run.json").write_text(json.dumps(record))
    outputs = []
    for module, args in [
        ("pipeline.explain", ["leak-readers", "--out", str(tmp_path / "page.html")]),
        ("pipeline.report", ["--experiment", "leak-readers", "--out", str(tmp_path / "report"), *REPORTED]),
        ("pipeline.report", ["--experiment", "no-such-study", "--out", str(tmp_path / "nothing")]),
        ("pipeline.promote", ["leak-readers", "--metric", "test/pr_auc"]),  # refused: no model logged
        ("pipeline.relog", [str(kept)]),
    ]:
        run = subprocess.run([sys.executable, "-m", module, *args, "--tracking-uri", secret_uri], cwd=tmp_path,
                             env=_env(), capture_output=True, text=True, timeout=300)  # fmt: skip
        outputs.append(run)
    assert [r.returncode for r in outputs] == [0, 0, 2, 2, 0], [r.stderr[-1500:] for r in outputs]
    assert [r for r in outputs if SECRET in r.stdout + r.stderr or "alice" in r.stdout + r.stderr] == []
    assert [p for p in tmp_path.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()] == []
    c = MlflowClient(postgres_server.url)
    experiment = c.get_experiment_by_name("leak-readers").experiment_id
    written = [
        *c.search_runs([experiment], "tags.sweep = 'true'"),
        *c.search_runs([experiment], "tags.kind = 'report'"),
    ]
    assert len(written) == 2
    for run in written:
        got = Path(c.download_artifacts(run.info.run_id, "", str(tmp_path / "dl" / run.info.run_id)))
        assert [p for p in got.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()] == []
        assert len(list(got.rglob("*.html")) + list(got.rglob("report.md"))) >= 1


# --- what a command may delete -----------------------------------------------------------------


@pytest.mark.fault(
    "`make clean` in a project whose folders hold files of the user's (`reports/notes.md`, `data/mine.csv`, "
    "the store `mlflow.db`)",
    "every such file survives; the run outputs it names are gone",
)
def test_make_clean_removes_only_run_outputs(tmp_path: Path) -> None:
    shutil.copy(REPO_ROOT / "Makefile", tmp_path / "Makefile")
    mine = ["reports/notes.md", "data/mine.csv", "mlflow.db", "docs/keep.md", "conf/mine.yaml"]
    made = ["outputs/runs/x.txt", "multirun/y.txt", "data/prepared/train.parquet", "models/model.joblib",
            "reports/plots/pr.png", "reports/curves/pr.json"]  # fmt: skip
    for name in mine + made:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    done = subprocess.run(["make", "clean"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert [n for n in mine if (tmp_path / n).read_text() != n] == []
    assert [n for n in made if (tmp_path / n).exists()] == []


# --- the store ---------------------------------------------------------------------------------


def _whole(store: Path) -> bool:
    """The store holds MLflow's schema, its version stamped (what a half-made one lacks)."""
    with contextlib.closing(sqlite3.connect(f"{store.as_uri()}?mode=ro", uri=True)) as db:
        return bool(db.execute("select count(*) from alembic_version").fetchone()[0])


@pytest.mark.fault(
    "Ctrl-C (and `kill -9`) while a first run creates its SQLite store, at three moments of the creation",
    "the store path holds a whole store or nothing; the next run on it exits 0",
)
def test_a_store_interrupted_at_birth_is_whole_or_absent(tmp_path: Path) -> None:
    store = tmp_path / "x.db"
    run = ["tracking.writer=never", f"tracking.uri=sqlite:///{store}", *FAST, f"hydra.run.dir={tmp_path}/run"]
    for sig, delay in [(signal.SIGINT, 0.3), (signal.SIGINT, 0.8), (signal.SIGKILL, 0.4)]:
        proc = subprocess.Popen([sys.executable, "-m", "pipeline", *run], cwd=tmp_path, env=_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
        deadline = time.monotonic() + 120
        # the creation has begun: a file under a temporary name, or (as before) the store itself
        while not (store.exists() or list(tmp_path.glob(".x.db.*.part*"))) and time.monotonic() < deadline:
            assert proc.poll() is None, "the run ended before it created its store"
            time.sleep(0.005)
        time.sleep(delay)
        proc.send_signal(sig)
        proc.communicate(timeout=120)
        assert not store.exists() or _whole(store), (sig, delay)
        if store.exists():
            store.unlink()  # the next round creates it anew
    done = _pipeline(*run, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert _whole(store) and not list(tmp_path.glob(".x.db.*.part*"))


@pytest.mark.fault(
    "a store whose lock is held by a stopped process (Ctrl-Z while it opened the store)",
    "the next run waits at most `$IMBALANCE_LAB_LOCK_WAIT` seconds, then exits 2 in one line naming the "
    "stopped process; nothing is written",
)
def test_a_lock_held_by_a_stopped_process_is_a_bounded_wait(tmp_path: Path) -> None:
    store = tmp_path / "x.db"
    hold = (f"import fcntl, os, signal; f = open('{store}-lock', 'a+'); fcntl.flock(f, fcntl.LOCK_EX); "
            "f.seek(0); f.truncate(); f.write(str(os.getpid())); f.flush(); print('held', flush=True); "
            "os.kill(os.getpid(), signal.SIGSTOP)")  # fmt: skip
    holder = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        env = _env(IMBALANCE_LAB_LOCK_WAIT="2")
        done = _pipeline("tracking.writer=never", f"tracking.uri=sqlite:///{store}", *FAST,
                         f"hydra.run.dir={tmp_path}/run", cwd=tmp_path, env=env)  # fmt: skip
        took = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"error: tracking.uri=sqlite:///{store} is not accepted (x.db-lock held for 2 s "
                                  f"by process {holder.pid} (stopped")  # fmt: skip
    assert took < 60 and not store.exists()


@pytest.mark.fault(
    "the store file is garbage, truncated, or half-made by an older version",
    "exit 2, one line naming `tracking.uri` and what is wrong; the file unchanged",
)
@pytest.mark.parametrize("kind", ["garbage", pytest.param("truncated", marks=pytest.mark.slow), "half-made"])
def test_a_damaged_store_is_refused_in_one_line(tmp_path: Path, kind: str) -> None:
    store = tmp_path / "x.db"
    if kind == "garbage":
        store.write_bytes(os.urandom(8192))
    else:
        from pipeline import tracking

        tracking.client_for(f"sqlite:///{store}")  # a whole store, made as every command makes it
        if kind == "truncated":
            store.write_bytes(store.read_bytes()[:3000])
        else:  # what an interrupted migration left: tables, no schema version
            with contextlib.closing(sqlite3.connect(store)) as db:
                db.execute("delete from alembic_version")
                db.commit()
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # all of it in the file compared below
    before = store.read_bytes()
    done = _pipeline("tracking.writer=never", f"tracking.uri=sqlite:///{store}", *FAST,
                     f"hydra.run.dir={tmp_path}/run", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr[-2000:]
    why = {"garbage": "file is damaged", "truncated": "file is damaged", "half-made": "half-made store"}
    assert (
        done.stderr.startswith(f"error: tracking.uri=sqlite:///{store} is not accepted (") and why[kind] in done.stderr
    )
    assert store.read_bytes() == before


@pytest.mark.fault(
    "`mlflow.db` copied alone (without `-wal` and `-shm`) after a run",
    "the copy holds every run the commands finished",
)
def test_a_store_copied_alone_after_a_run_holds_its_runs(tmp_path: Path) -> None:
    store = tmp_path / "x.db"
    done = _pipeline("tracking.writer=never", f"tracking.uri=sqlite:///{store}", *FAST,
                     f"hydra.run.dir={tmp_path}/run", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    copy = tmp_path / "copy" / "x.db"
    copy.parent.mkdir()
    shutil.copy(store, copy)
    with contextlib.closing(sqlite3.connect(copy)) as db:
        statuses = sorted(s for (s,) in db.execute("select status from runs"))
    assert statuses == ["FINISHED"]


# --- the model-signing key ---------------------------------------------------------------------


@pytest.fixture
def key_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(trusted.KEY_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    return tmp_path / "imbalance-lab" / "model-key"


@pytest.mark.parametrize(
    ("content", "mode", "why"),
    [
        (b"", 0o600, "too short"),
        (b"\n", 0o600, "too short"),
        (b"abc", 0o600, "too short"),
        (b"a" * 64, 0o666, "others can read or change it"),
        (b"a" * 64, 0o644, "others can read or change it"),
    ],
)
def test_a_key_anyone_could_guess_or_change_is_refused(key_home: Path, content: bytes, mode: int, why: str) -> None:
    key_home.parent.mkdir(parents=True)
    key_home.write_bytes(content)
    key_home.chmod(mode)
    with pytest.raises(ConfigError, match=why):
        trusted.dump({"a": 1}, key_home.parent / "m.joblib")
    assert not (key_home.parent / "m.joblib.sig").exists()


def test_a_short_key_in_the_environment_is_refused(key_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(trusted.KEY_ENV, "")
    with pytest.raises(ConfigError, match=f"{trusted.KEY_ENV}=<0 characters> is not accepted"):
        trusted.check_key()


def test_a_pickle_signed_with_an_empty_key_never_runs(key_home: Path, tmp_path: Path) -> None:
    """The forgery of the probe: sign a crafted pickle with the empty key and hand it over."""
    import hashlib
    import hmac
    import pickle

    trusted.check_key()  # this machine's key, made on first use
    crafted = tmp_path / "model.joblib"
    crafted.write_bytes(pickle.dumps(ValueError("ran")))
    (tmp_path / "model.joblib.sig").write_text(hmac.new(b"", crafted.read_bytes(), hashlib.sha256).hexdigest())
    with pytest.raises(ConfigError, match=r"signature in model\.joblib\.sig does not match"):
        trusted.load(crafted)
    key_home.write_bytes(b"")  # and an emptied key file is no way round it
    with pytest.raises(ConfigError, match="too short"):
        trusted.load(crafted)


@pytest.mark.fault(
    "eight processes make the model-signing key at once (five rounds)",
    "all eight read the same 64-character key; none fails",
)
def test_processes_making_the_key_at_once_agree(tmp_path: Path) -> None:
    code = ("import os, sys, time\nfrom pipeline import trusted\n"
            "while not os.path.exists(sys.argv[1]): time.sleep(0.001)\n"
            "print(trusted._key().decode())")  # fmt: skip
    for round_ in range(5):
        home, go = tmp_path / f"home{round_}", tmp_path / f"go{round_}"
        env = {**_env(XDG_CONFIG_HOME=str(home))}
        env.pop(trusted.KEY_ENV, None)
        command = [sys.executable, "-c", code, str(go)]
        procs = [subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(8)]  # fmt: skip
        time.sleep(1.0)  # every process imported and waits
        go.touch()
        answers = [p.communicate(timeout=60) for p in procs]
        assert [err for _, err in answers if err] == []
        keys = {out.strip() for out, _ in answers}
        assert len(keys) == 1 and len(keys.pop()) == 64
        assert (home / "imbalance-lab" / "model-key").stat().st_mode & 0o777 == 0o600
        assert sorted(p.name for p in (home / "imbalance-lab").iterdir()) == ["model-key"]


def test_the_lock_file_names_its_holder(tmp_path: Path) -> None:
    """The holder named in the bounded wait's line is the pid written into the lock file."""
    from pipeline import sqlitestore

    store = tmp_path / "x.db"
    with open(f"{store}-lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        lock.write(str(os.getpid()))
        lock.flush()
        assert sqlitestore._holder(lock) == f"process {os.getpid()}"


# --- item 10: one line, or accepted --------------------------------------------------------------


@pytest.mark.fault(
    "a `postgresql://user:password@` tracking URI with nothing listening, for a single run and a sweep",
    "exit 2 within seconds (no minutes of retries), one line naming `tracking.uri`, no password, no job run",
)
@pytest.mark.parametrize("sweep", [False, True], ids=["run", "sweep"])
def test_an_unreachable_database_is_refused_in_seconds(tmp_path: Path, sweep: bool) -> None:
    from tests.conftest import free_port

    port = free_port()
    uri = f"postgresql://alice:{SECRET}@127.0.0.1:{port}/mlflow"
    shape = ["--multirun", "seed=0,1"] if sweep else []
    started = time.monotonic()
    done = _pipeline(*shape, f"tracking.uri={uri}", *FAST, f"hydra.run.dir={tmp_path}/run",
                     f"hydra.sweep.dir={tmp_path}/sweep", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2 and time.monotonic() - started < 60, done.stderr[-2000:]
    assert done.stderr.splitlines()[-1].startswith(f"error: tracking.uri=postgresql://127.0.0.1:{port}/mlflow is not "
                                                   f"accepted (nothing answers on 127.0.0.1:{port}")  # fmt: skip
    assert "Traceback" not in done.stderr and SECRET not in done.stdout + done.stderr
    assert not list(tmp_path.rglob("result.json")) or sweep is False


@pytest.mark.parametrize(
    ("values", "positives"),
    [([True, False], 600), ([1.0, 0.0], 600), (["yes", "no"], 600), ([1, 0], 600)],
    ids=["bool", "float", "text", "int"],
)
def test_a_binary_target_of_any_spelling_keeps_its_positives(
    tmp_path: Path, values: list[object], positives: int
) -> None:
    """``True``/``False`` and ``1.0``/``0.0`` are 1 and 0 (the probe's file with 600 positives was
    refused as having none); text labels take the minority as the positive class."""
    import numpy as np
    import pandas as pd

    from pipeline import datasets

    rng = np.random.default_rng(0)
    first = np.arange(3000) < positives  # the first value is the positive one, on 600 rows
    frame = pd.DataFrame({"a": rng.normal(size=3000), "y": np.where(first, values[0], values[1])})
    frame["y"] = frame["y"].astype(type(values[0])) if not isinstance(values[0], str) else frame["y"]
    frame.to_csv(tmp_path / "t.csv", index=False)
    got = datasets.table(path=str(tmp_path / "t.csv"), target="y")
    assert int(got.y.sum()) == positives and np.array_equal(got.y.astype(bool), first)


def test_the_explainers_data_cannot_leave_its_script() -> None:
    """A subgroup value like ``<!--<script>`` once blanked the page: every '<', '>' and '&' of
    the data is a JSON escape inside the script, and the data reads back the same."""
    import json

    from pipeline import explain

    data = {"value": "<!--<script>", "end": "</script><b>&amp;", "sep": "\u2028\u2029"}
    page = explain.render(data)
    start = page.index('{"value"')
    payload = page[start : page.index("</script>", start)]
    assert not set("<>&") & set(payload) and json.loads(payload) == data


def test_the_explainer_reads_job_runs_not_a_report(tmp_path: Path) -> None:
    """An experiment holding single runs and a report (no sweep): the report run is not a job."""
    from pipeline import store, tracking

    c = tracking.client_for(f"sqlite:///{tmp_path}/x.db")
    experiment = c.create_experiment("mixed")
    job = c.create_run(experiment, tags={"config_hash": "h", "data_fingerprint": "d"})
    c.log_param(job.info.run_id, "fix.name", "none")
    c.set_terminated(job.info.run_id)
    report = c.create_run(experiment, tags={"kind": "report"})
    c.set_terminated(report.info.run_id)
    runs = store.leaf_runs(c, ["mixed"], status="")
    assert list(runs["run_id"]) == [job.info.run_id]


# --- claims: concurrent resumes split the work -------------------------------------------------


@pytest.mark.fault(
    "two resuming processes of one six-job sweep started at once on a new store",
    "each configuration computed once (six FINISHED job runs, six identities), the jobs split between the "
    "two, both exit 0 with all six in their leaderboards",
)
@pytest.mark.slow  # two sweeps at once: about 30 s (the claim itself: test_a_claim_yields_to_an_older_live_run)
def test_concurrent_resumes_split_the_jobs(tmp_path: Path) -> None:
    """``resume=any_code``: the same claims as ``resume=true``, whatever the work tree's state
    (``true`` keeps only runs of a clean tree at the same commit)."""
    store = tmp_path / "x.db"
    args = ["--multirun", "seed=0,1,2,3,4,5", "resume=any_code", *FAST, f"tracking.uri=sqlite:///{store}",
            "study=split"]  # fmt: skip
    procs = [subprocess.Popen([sys.executable, "-m", "pipeline", *args, f"hydra.sweep.dir={tmp_path}/sweep{i}"],
                              cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]  # fmt: skip
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outputs]
    assert all("6 finished" in out for out, _ in outputs), [out[-1500:] for out, _ in outputs]
    query = ("select r.status, h.value, p.value from runs r join tags h on h.run_uuid = r.run_uuid and "
             "h.key = 'config_hash' join tags p on p.run_uuid = r.run_uuid and p.key = 'mlflow.parentRunId' "
             "where r.lifecycle_stage = 'active'")  # fmt: skip
    with contextlib.closing(sqlite3.connect(store)) as db:
        jobs = db.execute(query).fetchall()
    assert sorted(s for s, _, _ in jobs) == ["FINISHED"] * 6 and len({h for _, h, _ in jobs}) == 6
    assert len({parent for _, _, parent in jobs}) == 2  # both processes computed some of them


@pytest.mark.parametrize("key", ["hydra.run.dir", "hydra.sweep.dir"])
def test_an_output_folder_that_cannot_be_made_is_one_line(tmp_path: Path, key: str) -> None:
    shape = ["--multirun", "seed=0,1"] if key == "hydra.sweep.dir" else []
    done = _pipeline(*shape, f"{key}=/proc/x", "tracking=off", *FAST, cwd=tmp_path, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]  # (a sweep's bar aside)
    assert len(errors) == 1 and errors[0].startswith(f"error: {key}=/proc/x is not accepted (")


# --- the ownership rules themselves ------------------------------------------------------------


@pytest.mark.parametrize("name", ["..", ".", "/abs/dir", "../sibling", "a/b", ".hidden", "", "e" * 101, "a..b"])
def test_a_name_that_is_not_one_plain_folder_name_is_refused(name: str) -> None:
    from pipeline.paths import check_name

    with pytest.raises(ConfigError, match=r"^--name="):
        check_name("--name", name)


def test_a_folder_is_replaced_only_when_it_holds_the_marker(tmp_path: Path) -> None:
    from pipeline.paths import claim_folder

    out = tmp_path / "report"
    claim_folder("--out", out, ".mark")  # new: made, and marked
    (out / "old.md").write_text("old")
    claim_folder("--out", out, ".mark")  # ours: emptied and marked again
    assert sorted(p.name for p in out.iterdir()) == [".mark"]
    for theirs in (tmp_path, tmp_path / "file.txt"):  # a folder with a file of the user's, and a file
        (tmp_path / "file.txt").write_text("keep")
        with pytest.raises(ConfigError, match=r"did not write|is a file"):
            claim_folder("--out", theirs, ".mark")
        assert (tmp_path / "file.txt").read_text() == "keep"
    (tmp_path / "link").symlink_to(out)
    with pytest.raises(ConfigError, match="link"):
        claim_folder("--out", tmp_path / "link", ".mark")
    assert (out / ".mark").is_file()


def test_a_file_is_overwritten_only_when_it_holds_the_signature(tmp_path: Path) -> None:
    from pipeline.paths import owned_file

    page = tmp_path / "page.html"
    owned_file("--out", page, "<meta sig>")  # new: fine
    page.write_text("<html><meta sig></html>")
    owned_file("--out", page, "<meta sig>")  # ours: fine
    page.write_text("<p>mine</p>")
    with pytest.raises(ConfigError, match="not its output"):
        owned_file("--out", page, "<meta sig>")


def test_a_claim_yields_to_an_older_live_run_or_a_finished_one(tmp_path: Path) -> None:
    """``resume.claim`` on a real store: two runs of one identity created "at once" by live
    processes; the later yields to the earlier (by start time, then id), the earlier to nobody; a
    FINISHED run of the identity is yielded to; a dead process's RUNNING run, or another
    identity's, is not."""
    from pipeline import resume, tracking

    c = tracking.client_for(f"sqlite:///{tmp_path}/x.db")
    experiment = c.create_experiment("claims")
    identity = {"config_hash": "abc", "data_fingerprint": "fp"}
    alive = tracking.liveness_tags()
    first = c.create_run(experiment, start_time=1000, tags={**identity, **alive}).info
    second = c.create_run(experiment, start_time=1000, tags={**identity, **alive}).info
    other = c.create_run(experiment, start_time=500, tags={"config_hash": "zzz", "data_fingerprint": "fp", **alive})
    holder = resume.claim("any_code", identity)
    earlier, later = sorted([first, second], key=lambda i: i.run_id)  # same start time: the id decides
    assert holder(c, experiment, earlier) is None and holder(c, experiment, later) == earlier.run_id
    assert other.info.run_id not in {holder(c, experiment, first), holder(c, experiment, second)}
    c.set_tag(earlier.run_id, "pid", "999999999")  # its process is gone: nothing to yield to
    assert holder(c, experiment, later) is None
    c.set_terminated(earlier.run_id, "FINISHED")  # a finished run of the identity is kept instead
    assert holder(c, experiment, later) == earlier.run_id


def test_a_subgroup_column_with_gaps_makes_a_missing_group(tmp_path: Path) -> None:
    """The probe's traceback: a gap in the group column matched no group value (NaN equals
    nothing), so the bootstrap got an empty group. Gaps are now the group ``missing``, and its
    metrics come out with the others."""
    import numpy as np
    import pandas as pd

    from pipeline import datasets, metrics

    rng = np.random.default_rng(0)
    n = 3000
    y = (rng.random(n) < 0.2).astype(int)
    g = pd.Series(rng.choice(["x", "y"], n)).where(rng.random(n) > 0.05)
    pd.DataFrame({"a": rng.normal(size=n) + y, "g": g, "y": y}).to_csv(tmp_path / "t.csv", index=False)
    got = datasets.table(path=str(tmp_path / "t.csv"), target="y", group=["g"])
    assert got.groups is not None and int((got.groups["g"] == "missing").sum()) == int(g.isna().sum()) > 0
    scores = np.clip(got.X["a"].to_numpy() / 4 + 0.2, 0.01, 0.99)
    found = metrics.by_group(got.y, scores, 0.5, got.groups["g"].to_numpy(), "", n_boot=200, seed=0)
    assert found["missing/n"] == g.isna().sum() and "missing/ece" in found and "missing/ece_lo" in found


@pytest.mark.fault(
    "a `postgresql://` tracking URI whose server answers but refuses (no such database)",
    "exit 2 within seconds, one line naming `tracking.uri` with the server's reason (MLflow alone retries for "
    "most of an hour)",
)
def test_a_database_that_refuses_is_one_line(postgres_server: server.Server, tmp_path: Path) -> None:
    uri = f"postgresql://postgres@127.0.0.1:{postgres_server.pg_port}/no_such_database"
    started = time.monotonic()
    done = _pipeline(f"tracking.uri={uri}", *FAST, f"hydra.run.dir={tmp_path}/run", cwd=tmp_path)
    assert done.returncode == 2 and time.monotonic() - started < 60, done.stderr[-2000:]
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    shown = f"postgresql://127.0.0.1:{postgres_server.pg_port}/no_such_database"  # the user, masked too
    assert done.stderr.startswith(f"error: tracking.uri={shown} is not accepted (") and "does not exist" in done.stderr
