"""The real CLI against a real SQLite MLflow store, read back with MlflowClient."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from sklearn import metrics as skm

from pipeline import experiment
from pipeline.paths import CONF_DIR, REPO_ROOT
from tests.conftest import client

ONE_RUN = [
    "dataset=blobs2d", "imbalance.positive_rate=0.05", "fix=smote", "model=logreg",
    "calibration=isotonic", "threshold=min_cost", "costs.fn=10", "costs.fp=1", "seed=3",
]  # fmt: skip
Cli = Callable[..., subprocess.CompletedProcess[str]]
FEWER_ROWS = ["dataset.n_samples=4000", "split.min_positives=10"]


@pytest.fixture(scope="module")
def one_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The issue's one-run command, tracked to a fresh store (shared by the tests below)."""
    tmp = tmp_path_factory.mktemp("one_run")
    store = tmp / "mlflow.db"
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", *ONE_RUN, f"tracking.uri=sqlite:///{store}", f"hydra.run.dir={tmp}/run"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return store, done


def _only_run(store: Path):  # type: ignore[no-untyped-def]
    c = client(store)
    experiment_ = c.get_experiment_by_name("adhoc")
    runs = c.search_runs([experiment_.experiment_id])
    assert len(runs) == 1
    return c, experiment_, runs[0]


def test_one_run_logs_params_metrics_tags_and_artifacts(one_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    store, done = one_run
    c, exp, run = _only_run(store)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    assert run.info.status == "FINISHED" and run.info.run_name == "smote-logreg-isotonic-p0.05-s3"
    p = run.data.params
    assert (p["fix.name"], p["model.name"], p["calibration.name"], p["threshold.name"]) == (
        "smote", "logreg", "isotonic", "min_cost",
    )  # fmt: skip
    assert p["imbalance.positive_rate"] == "0.05" and p["costs.fn"] == "10.0" and p["seed"] == "3"
    m = run.data.metrics
    for key in ("test/pr_auc", "test/recall_at_p90", "test/expected_cost", "test/ece", "test/accuracy",
                "test/baseline_accuracy", "calib/threshold", "calib/bayes_threshold", "test/expected_cost_at_bayes",
                "group/a/ece", "group/b/ece", "group/b/pr_auc", "fix/train_positive_rate"):  # fmt: skip
        assert key in m, key
    assert m["calib/bayes_threshold"] == pytest.approx(1 / 11)
    tags = run.data.tags
    assert len(tags["mlflow.source.git.commit"]) in (40, len("unknown"))
    assert tags["git_dirty"] in ("true", "false") and len(tags["config_hash"]) == 12
    assert len(tags["data_fingerprint"]) == 16 and "Threshold" in tags["mlflow.note.content"]
    files = _artifacts(c, run.info.run_id)
    for name in ("pr", "roc", "reliability", "boundary"):
        assert f"plots/{name}.png" in files and f"curves/{name}.json" in files
    assert {"predictions/test.parquet", "model/MLmodel", "config.yaml"} <= files
    assert "Open the MLflow UI" in done.stdout and str(store) in done.stdout


def _artifacts(c, run_id: str, path: str = "") -> set[str]:  # type: ignore[no-untyped-def]
    out: set[str] = set()
    for item in c.list_artifacts(run_id, path):
        out |= _artifacts(c, run_id, item.path) if item.is_dir else {item.path}
    return out


def test_metrics_recompute_from_the_logged_predictions(
    one_run: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    c, _, run = _only_run(one_run[0])
    local = c.download_artifacts(run.info.run_id, "predictions/test.parquet", str(tmp_path))
    pred = pd.read_parquet(local)
    assert list(pred.columns) == ["y_true", "score", "y_pred", "group"]
    m, y, s = run.data.metrics, pred.y_true.to_numpy(), pred.score.to_numpy()
    assert m["test/pr_auc"] == pytest.approx(skm.average_precision_score(y, s), abs=1e-9)
    assert m["test/roc_auc"] == pytest.approx(skm.roc_auc_score(y, s), abs=1e-9)
    assert m["test/brier"] == pytest.approx(skm.brier_score_loss(y, s), abs=1e-9)
    assert m["test/f1"] == pytest.approx(skm.f1_score(y, pred.y_pred), abs=1e-9)
    assert np.array_equal(pred.y_pred, (s >= m["calib/threshold"]).astype(int))
    b = pred.group == "b"
    assert m["group/b/n"] == b.sum() and m["group/b/prevalence"] == pytest.approx(y[b].mean(), abs=1e-12)


def test_the_logged_model_reproduces_the_logged_scores(
    one_run: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    c, _, run = _only_run(one_run[0])
    model = mlflow.sklearn.load_model(c.download_artifacts(run.info.run_id, "model", str(tmp_path)))
    pred = pd.read_parquet(c.download_artifacts(run.info.run_id, "predictions/test.parquet", str(tmp_path)))
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[*ONE_RUN, "hydra.callbacks={}"])
    GlobalHydra.instance().clear()
    test = experiment.prepare(cfg).test
    assert test.X.index.equals(pred.index)
    assert np.allclose(model.predict_proba(test.X)[:, 1], pred.score, atol=1e-12)


def _statuses(store: Path) -> list[str]:
    if not store.exists():
        return []
    c = client(store)
    return [r.info.status for e in c.search_experiments() for r in c.search_runs([e.experiment_id])]


def test_unknown_fix_exits_2_with_one_line_listing_the_fixes(cli: Cli, tmp_path: Path) -> None:
    done = cli("fix=smot")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    every_fix = ", ".join(sorted(p.stem for p in (REPO_ROOT / "conf" / "fix").glob("*.yaml")))
    assert "fix=smot" in lines[0] and lines[0].endswith(f"accepted: {every_fix}")
    assert "RUNNING" not in _statuses(tmp_path / "mlflow.db")


def test_bad_value_ends_its_run_failed_with_the_error_line(cli: Cli, tmp_path: Path) -> None:
    done = cli("costs.fp=-2")
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0
    assert "costs.fp=-2.0" in done.stderr and ">= 0" in done.stderr
    _, _, run = _only_run(tmp_path / "mlflow.db")
    assert run.info.status == "FAILED" and run.data.tags["error"] == done.stderr.strip().removeprefix("error: ")


#: ``python -m pipeline`` that says at exit whether its own process imported MLflow.
WATCHED = (
    "import atexit, runpy, sys; "
    "atexit.register(lambda: print('imported mlflow:', 'mlflow' in sys.modules, file=sys.stderr)); "
    "sys.argv[0] = 'pipeline'; runpy.run_module('pipeline', run_name='__main__')"
)


def _watched(*args: str, tmp_path: Path, store: Path, new_session: bool = False) -> subprocess.Popen[str]:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.Popen(
        [sys.executable, "-c", WATCHED, *args, f"tracking.uri=sqlite:///{store}", f"hydra.run.dir={tmp_path}/run"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=new_session,
    )  # fmt: skip


def test_a_single_runs_writer_opens_and_writes_its_run(tmp_path: Path) -> None:
    """A single run's own process never imports MLflow: its writer, started first, opens the
    store and the run while the job computes, then writes everything and ends the run, which
    belongs to the run's process (its liveness tags). ``tracking.writer=never``: the process
    does it all itself. Both log the same numbers and files. (``auto``, the default, is
    ``always`` when the machine has a core to spare: see ``writer.spare_core``.) The writer
    gets the model pickled (``result.portable``): the logged model loads as the same model,
    with the same signature and metadata, and decides on the test rows as the run did. It
    draws the curves while the job computes its metrics (``writer.Draw``): the same files."""
    found, models, drawn = {}, {}, {}
    for setting in ("always", "never"):
        store = tmp_path / setting / "mlflow.db"
        proc = _watched(*ONE_RUN, *FEWER_ROWS, f"tracking.writer={setting}", tmp_path=tmp_path / setting, store=store)
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert f"imported mlflow: {setting == 'never'}" in err
        assert "Open the MLflow UI" in out and "/#/experiments/1?" in out
        c, _, run = _only_run(store)
        assert run.info.status == "FINISHED" and run.data.tags["pid"] == str(proc.pid)
        assert run.data.params["tracking.writer"] == setting
        files = _artifacts(c, run.info.run_id)
        assert {"plots/pr.png", "curves/pr.json", "predictions/test.parquet", "model/MLmodel", "config.yaml"} <= files
        found[setting] = {k: v for k, v in run.data.metrics.items() if not k.startswith("time/")}
        local = c.download_artifacts(run.info.run_id, "model", str(tmp_path / setting))
        model, meta = mlflow.sklearn.load_model(local), mlflow.models.Model.load(local)
        assert type(model).__name__ == "Decider" and meta.metadata["threshold"] == model.threshold
        table = c.download_artifacts(run.info.run_id, "predictions/test.parquet", str(tmp_path / setting))
        test = pd.read_parquet(table)
        example = meta.load_input_example(local)
        assert np.array_equal(model.predict(example), test["y_pred"].to_numpy()[: len(example)])
        models[setting] = (meta.signature.to_dict(), meta.metadata, model.predict_proba(example))
        figures = sorted(f for f in files if f.startswith(("plots/", "curves/")))
        drawn[setting] = {f: Path(c.download_artifacts(run.info.run_id, f, str(tmp_path / setting))).read_bytes()
                          for f in figures}  # fmt: skip
    assert found["always"] == found["never"]
    assert models["always"][:2] == models["never"][:2]
    assert np.array_equal(models["always"][2], models["never"][2])
    assert len(drawn["always"]) >= 10 and drawn["always"] == drawn["never"]


@pytest.mark.slow  # 10 s: a job long enough to be interrupted
@pytest.mark.fault(
    "Ctrl-C to a single run while its job computes (its writer opened the run meanwhile)",
    "exit 130, the run KILLED, none RUNNING, no process left",
)
def test_ctrl_c_to_a_single_run_ends_its_run_killed(tmp_path: Path) -> None:
    store = tmp_path / "mlflow.db"
    big = ["dataset.n_samples=1000000", "fix=none", "model=logreg", "metrics.n_boot=400", "tracking.writer=always"]
    proc = _watched(*big, tmp_path=tmp_path, store=store, new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:  # the run is open and its params are in
        if _open_with_params(store):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the job ended before the run was seen open"
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the terminal's whole process group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert _statuses(store) == ["KILLED"]
    left_until = time.time() + 10  # the writer, and multiprocessing's resource tracker, go too
    while time.time() < left_until and _group_alive(proc.pid):
        time.sleep(0.1)
    assert not _group_alive(proc.pid)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _open_with_params(store: Path) -> bool:
    """Whether a run is RUNNING with its params logged, read with sqlite3 alone: an MLflow client
    on a store the writer is still creating would run the schema's migrations a second time."""
    if not store.exists():
        return False
    with contextlib.closing(sqlite3.connect(store, timeout=5)) as db:
        try:
            query = "select count(*) from runs join params on params.run_uuid = runs.run_uuid where status = 'RUNNING'"
            return bool(db.execute(query).fetchone()[0])
        except sqlite3.OperationalError:  # the schema is being made
            return False


def test_sweep_with_a_failing_job_on_a_new_store(cli: Cli, tmp_path: Path) -> None:
    store = tmp_path / "new" / "mlflow.db"
    done = cli("--multirun", "imbalance.positive_rate=0.2,0.1,0.05,0.001", "study=four", store=store)
    assert done.returncode == 2, done.stderr  # the one failure is a bad input
    assert "imbalance.positive_rate=0.001" in done.stderr
    c = client(store)
    runs = c.search_runs([c.get_experiment_by_name("four").experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}
    assert sorted(r.info.status for r in children) == ["FAILED", "FINISHED", "FINISHED", "FINISHED"]
    failed = next(r for r in children if r.info.status == "FAILED")
    assert failed.data.params["imbalance.positive_rate"] == "0.001" and "calib" in failed.data.tags["error"]
    parent = parents[0]
    assert parent.data.metrics["jobs/failed"] == 1 and parent.data.metrics["jobs/finished"] == 3
    files = _artifacts(c, parent.info.run_id)
    assert {"leaderboard.csv", "leaderboard.md", "metric_vs_positive_rate.png"} <= files
    board = pd.read_csv(c.download_artifacts(parent.info.run_id, "leaderboard.csv", str(tmp_path)))
    assert board["imbalance.positive_rate"].tolist() == [0.2, 0.1, 0.05]
    finished = {float(r.data.params["imbalance.positive_rate"]): r for r in children if r.info.status == "FINISHED"}
    for _, row in board.iterrows():
        assert row["test/pr_auc/mean"] == pytest.approx(
            finished[row["imbalance.positive_rate"]].data.metrics["test/pr_auc"]
        )


def test_a_sweep_refuses_torch_only_fixes_with_logreg_before_any_run_starts(cli: Cli, tmp_path: Path) -> None:
    """The issue's `fix=glob(*) model=logreg` in small: the torch-only fixes are refused up
    front (no run opened for them), the rest finish, and the sweep exits 0."""
    store = tmp_path / "mlflow.db"
    fixes = "fix=glob([none,focal_loss,balanced_batches,smote])"
    done = cli("--multirun", fixes, "study=mixed", "dataset.n_samples=3000")
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    first = lines.index("refused before any run starts: 2 of 4 jobs")
    refused = lines[first + 1 : first + 3]
    assert all(
        "model=logreg calibration=none (1 job(s)): fix=" in line and "accepted: model=mlp with fix=" in line
        for line in refused
    )
    assert {"balanced_batches", "focal_loss"} == {line.split("fix=")[1].split(" ")[0] for line in refused}
    assert "2 finished, 0 failed, 2 refused" in done.stdout
    c = client(store)
    runs = c.search_runs([c.get_experiment_by_name("mixed").experiment_id])
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert sorted(r.data.params["fix.name"] for r in children) == ["none", "smote"]
    assert {r.info.status for r in runs} == {"FINISHED"}
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    assert parent.data.metrics["jobs/refused"] == 2 and parent.data.metrics["jobs/finished"] == 2


def test_a_torch_only_fix_alone_with_logreg_exits_2_and_opens_no_run(cli: Cli, tmp_path: Path) -> None:
    done = cli("fix=focal_loss")
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0, done.stderr
    assert done.stderr.startswith("error: fix=focal_loss is not accepted (it needs a torch_classifier")
    assert _statuses(tmp_path / "mlflow.db") == []  # no run was opened


@pytest.mark.fault(
    "SIGTERM to a sweep (basic launcher) (`slow`: Ctrl-C while its runs are written takes the same path)",
    "exit 130, runs KILLED or FINISHED, none RUNNING",
)
@pytest.mark.slow
def test_sigterm_ends_every_run_killed_never_running(cli: Cli, tmp_path: Path) -> None:
    store = tmp_path / "mlflow.db"
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "--multirun", "seed=range(0,40)", "study=term",
         f"tracking.uri=sqlite:///{store}", f"hydra.sweep.dir={tmp_path}/sweep"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    # watch the job records, not the store: a second process opening a store that is being
    # created can corrupt it
    deadline = time.time() + 120
    while len(list(tmp_path.glob("sweep/*/result.json"))) < 2 and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (proc.returncode, err[-3000:])
    statuses = _statuses(store)
    assert "RUNNING" not in statuses and "KILLED" in statuses and 3 <= len(statuses) < 41


def test_help_and_cfg_do_not_import_the_heavy_libraries() -> None:
    probe = (
        "import sys; sys.argv = ['pipeline', '--cfg', 'job']\n"
        "from pipeline.app import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'mlflow', 'torch', 'imblearn', 'sklearn'})\n"
        "print('HEAVY=' + json.dumps(heavy))"
    )
    done = subprocess.run(
        [sys.executable, "-c", "import json\n" + probe], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert "fix:" in done.stdout  # it printed the config
    assert json.loads(done.stdout.split("HEAVY=")[1]) == []


def test_help_lists_the_config_groups_and_no_folder_of_the_repository() -> None:
    """`experiments/` is found at the repository root, and nothing else there is a config group
    (a plain file:// source made every folder one: --help walked .venv and outputs/ for minutes)."""
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "--help"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    section = done.stdout.split("== Configuration groups ==")[1].split("== Config ==")[0]
    groups = {line.split(":")[0] for line in section.splitlines()[2:] if ":" in line}
    expected = {p.name for p in (REPO_ROOT / "conf").iterdir() if p.is_dir()} | {"experiments"}
    assert groups == expected
    assert "seed_demo" in section


@pytest.mark.parametrize(
    ("argv", "single"),
    [
        ([], True),
        (["fix=smote", "tracking.uri=sqlite:///x.db"], True),
        (["--multirun", "fix=none,smote"], False),
        (["-m", "fix=none,smote"], False),
        (["--cfg", "job"], False),
        (["--help"], False),
        (["tracking=off"], False),
        (["tracking.writer=never"], False),
        (["resume=true"], False),
        (["hydra.mode=MULTIRUN"], False),
    ],
)
def test_a_writer_starts_before_hydra_only_for_what_looks_like_a_single_tracked_run(
    argv: list[str], single: bool
) -> None:
    from pipeline import writer

    assert writer.looks_single(argv) is single
