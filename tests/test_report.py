"""``python -m pipeline.report``: the verdict against the control, checked against numbers
computed here, independently, from the store's runs; and the KEEL study's short version."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats

from pipeline.paths import REPO_ROOT
from tests.conftest import client

SETS = ("glass0", "ecoli1", "yeast4", "glass2")
#: The KEEL study cut to four sets, three fixes, logreg and 3 folds: 24 runs.
SHORT = [
    "experiments=fixes_across_keel", "hydra.launcher.n_jobs=1", f"dataset.name={','.join(SETS)}",
    "fix=none,random_under,smote", "model=logreg", "split.folds=3", "split.repeats=1", "tracking.log_model=false",
]  # fmt: skip
METRICS = "test/pr_auc,test/f1,test/brier"


def _run(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The short study, run for real into its own SQLite store; the folder holding it."""
    where = tmp_path_factory.mktemp("keel")
    done = _run(
        "-m",
        "pipeline",
        "--multirun",
        *SHORT,
        f"tracking.uri=sqlite:///{where}/mlflow.db",
        f"hydra.sweep.dir={where}/sweep",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return where


def report(store: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return _run(
        "-m", "pipeline.report", "--experiment", "fixes_across_keel", "--tracking-uri", f"sqlite:///{store}",
        "--out", str(out), "--metrics", METRICS, *extra,
    )  # fmt: skip


def _runs(store: Path) -> pd.DataFrame:
    """Every finished job run of the study: its params and run-level metrics, read directly."""
    mlflow = client(store)
    experiment = mlflow.get_experiment_by_name("fixes_across_keel").experiment_id
    rows = []
    for run in mlflow.search_runs([experiment], "attributes.status = 'FINISHED'"):
        if run.data.tags.get("sweep") == "true" or run.data.tags.get("kind") == "report":
            continue
        p = run.data.params
        control = p["fix.name"] == "none" and p["threshold.name"] == "max_f1"
        label = "control" if control else f"fix={p['fix.name']} threshold={p['threshold.name']}"
        rows.append({"run_id": run.info.run_id, "run_name": f"{p['fix.name']}-{p['threshold.name']}",
                     "dataset": p["dataset.name"], "config": label, **run.data.metrics})  # fmt: skip
    return pd.DataFrame(rows)


def test_ranks_and_friedman_equal_scipy_on_the_stores_runs(study: Path, tmp_path: Path) -> None:
    done = report(study / "mlflow.db", tmp_path / "report")
    assert done.returncode == 0, done.stderr
    runs = _runs(study / "mlflow.db")
    assert len(runs) == len(SETS) * 3 * 2
    friedman = pd.read_csv(tmp_path / "report" / "friedman.csv").set_index(["group", "metric"])
    ranks = pd.read_csv(tmp_path / "report" / "ranks.csv")
    # PR-AUC and Brier are the scores' alone: a fix is one configuration whatever its threshold
    scores = runs[runs["run_name"].str.endswith("max_f1")]
    scores = scores.assign(config=scores["config"].str.split(" ").str[0])  # "fix=smote", "control"
    for metric, larger_is_better, frame, k in (
        ("test/pr_auc", True, scores, 3), ("test/brier", False, scores, 3), ("test/f1", True, runs, 6)
    ):  # fmt: skip
        table = frame.pivot(index="dataset", columns="config", values=metric)
        chi2, p = stats.friedmanchisquare(*(table[c] for c in table))
        row = friedman.loc[("logreg", metric)]
        assert (row["friedman_chi2"], row["p_value"]) == pytest.approx((chi2, p), rel=1e-9)
        assert row["datasets"] == len(SETS) and row["dropped"] == 0 and row["configurations"] == k == table.shape[1]
        expected = pd.DataFrame(
            [stats.rankdata(-v if larger_is_better else v) for v in table.to_numpy()], columns=table.columns
        ).mean()
        got = ranks[(ranks["group"] == "logreg") & (ranks["metric"] == metric)].set_index("config")["average_rank"]
        assert got.sort_index().to_numpy() == pytest.approx(expected.sort_index().to_numpy(), abs=1e-12)
    for name in ("report.md", "cells.csv", "paired.csv", "cd_logreg_pr_auc.png", "auc_vs_positive_rate.png"):
        assert (tmp_path / "report" / name).stat().st_size > 0


def test_paired_differences_are_on_matched_cells_only(study: Path, tmp_path: Path) -> None:
    """One run missing (smote + max_f1 on glass2): its dataset drops out of that configuration's
    comparison and out of the Friedman test, and nothing else changes."""
    store = tmp_path / "copy.db"
    shutil.copy(study / "mlflow.db", store)
    runs = _runs(store)
    config = "fix=smote threshold=max_f1"
    missing = runs[(runs["dataset"] == "glass2") & (runs["config"] == config)]["run_id"].item()
    client(store).delete_run(missing)
    done = report(store, tmp_path / "report")
    assert done.returncode == 0, done.stderr
    paired = pd.read_csv(tmp_path / "report" / "paired.csv").set_index(["config", "metric"])
    row = paired.loc[(config, "test/f1")]  # F1 depends on the threshold: smote + max_f1 is its own configuration
    assert row["cells"] == 3 * 3 and row["datasets"] == 3  # three datasets x three folds
    table = runs.pivot(index="dataset", columns="config", values="test/f1").drop(index="glass2")
    differences = (table[config] - table["control"]).to_numpy()  # each run's value is its folds' mean
    assert row["mean"] == pytest.approx(differences.mean(), abs=1e-12)
    low, high = stats.t.interval(0.95, len(differences) - 1, differences.mean(), stats.sem(differences))
    assert (row["low"], row["high"]) == pytest.approx((low, high), abs=1e-12)
    other = paired.loc[("fix=smote threshold=fixed", "test/f1")]
    assert other["cells"] == 4 * 3 and other["datasets"] == 4
    # PR-AUC: smote's scores on glass2 are still there (its run with the fixed threshold)
    assert paired.loc[("fix=smote", "test/pr_auc"), "cells"] == 4 * 3
    friedman = pd.read_csv(tmp_path / "report" / "friedman.csv").set_index(["group", "metric"])
    assert friedman.loc[("logreg", "test/f1"), "dropped"] == 1
    assert friedman.loc[("logreg", "test/f1"), "datasets"] == 3
    assert friedman.loc[("logreg", "test/pr_auc"), "dropped"] == 0


def test_the_report_is_a_run_the_ui_can_filter_and_the_next_report_leaves_it_out(study: Path, tmp_path: Path) -> None:
    store = tmp_path / "copy.db"
    shutil.copy(study / "mlflow.db", store)
    mlflow = client(store)
    experiment = mlflow.get_experiment_by_name("fixes_across_keel").experiment_id
    before = len(mlflow.search_runs([experiment], "tags.kind = 'report'"))  # other tests report on the study
    first, second = report(store, tmp_path / "a"), report(store, tmp_path / "b")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert "24 runs, 72 cells" in first.stdout and "24 runs, 72 cells" in second.stdout
    reports = mlflow.search_runs([experiment], "tags.kind = 'report'", order_by=["attributes.start_time DESC"])
    assert len(reports) == before + 2 and {r.info.status for r in reports} == {"FINISHED"}
    note = reports[0].data.tags["mlflow.note.content"]
    assert note.startswith("Against the control") and note in second.stdout
    logged = {a.path for a in mlflow.list_artifacts(reports[0].info.run_id)}
    assert {"report.md", "paired.csv", "friedman.csv", "cd_logreg_pr_auc.png"} <= logged


SLOW = pytest.mark.slow  # the other cases of a kind run in make test


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--control", "fix.name=nope"], "error: --control=fix.name=nope is not accepted; accepted: pairs some runs"),
        pytest.param(
            ["--control", "fix.name"],
            "error: --control=fix.name is not accepted; accepted: key=value pairs",
            marks=SLOW,
        ),
        (["--control", "model.name=logreg"], "error: --control=model.name=logreg is not accepted (they match 6"),
        pytest.param(
            ["--metrics", "test/nope"], "error: --metrics=test/nope is not accepted; accepted: metric keys", marks=SLOW
        ),
    ],
)
def test_bad_report_input_is_one_line_and_exit_2(study: Path, tmp_path: Path, args: list[str], line: str) -> None:
    done = report(study / "mlflow.db", tmp_path / "report", *args)
    assert done.returncode == 2 and done.stderr.startswith(line) and done.stderr.count("\n") == 1, done.stderr
    assert not (tmp_path / "report").exists()


def test_unknown_experiment_lists_the_stores(study: Path) -> None:
    done = _run("-m", "pipeline.report", "--experiment", "nope", "--tracking-uri", f"sqlite:///{study}/mlflow.db")
    assert done.returncode == 2 and done.stderr.startswith("error: --experiment=nope is not accepted; accepted: ")
    assert "fixes_across_keel" in done.stderr


def test_the_sweeps_leaderboard_shows_the_control_and_paired_differences(study: Path) -> None:
    (board,) = study.glob("sweep/report/vs_control.csv")
    table = pd.read_csv(board).set_index("config")
    runs = _runs(study / "mlflow.db")
    control = runs[runs["config"] == "control"]["test/pr_auc"].mean()
    assert float(table.loc["control", "pr_auc"]) == pytest.approx(control, abs=5e-4)
    smote = runs.pivot(index="dataset", columns="config", values="test/pr_auc")
    expected = (smote["fix=smote threshold=fixed"] - smote["control"]).mean()
    assert table.loc["fix=smote threshold=fixed", "pr_auc"].startswith(f"{expected:+.3f} [")
    assert len(table) == 6  # the control and five configurations
    assert "Against the control" in (study / "sweep" / "report" / "leaderboard.md").read_text()


@pytest.mark.slow
def test_the_whole_keel_study_and_its_report(tmp_path: Path) -> None:
    """experiments/fixes_across_keel.yaml as it stands: 756 runs, about 25 minutes on 2 cores."""
    store = tmp_path / "mlflow.db"
    done = _run("-m", "pipeline", "experiments=fixes_across_keel", f"tracking.uri=sqlite:///{store}",
                f"hydra.sweep.dir={tmp_path}/sweep")  # fmt: skip
    assert done.returncode in (0, 1), done.stderr[-3000:]  # 1: some (dataset, fix) pairs cannot run
    runs = _runs(store)
    assert len(runs) >= 700 and runs["dataset"].nunique() == 21
    out = report(store, tmp_path / "report")
    assert out.returncode == 0, out.stderr
    assert "Ranked on pr_auc over" in (tmp_path / "report" / "report.md").read_text()


@pytest.mark.slow  # 14 s: a sweep of its own
def test_a_sweeps_parent_run_selects_its_jobs(study: Path, tmp_path: Path) -> None:
    mlflow = client(study / "mlflow.db")
    experiment = mlflow.get_experiment_by_name("fixes_across_keel").experiment_id
    (parent,) = mlflow.search_runs([experiment], "tags.sweep = 'true'")
    done = _run(
        "-m", "pipeline.report", "--parent", parent.info.run_id, "--tracking-uri", f"sqlite:///{study}/mlflow.db",
        "--out", str(tmp_path / "report"), "--metrics", METRICS,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "24 runs, 72 cells" in done.stdout
    missing = _run("-m", "pipeline.report", "--parent", "0" * 32, "--tracking-uri", f"sqlite:///{study}/mlflow.db")
    assert missing.returncode == 2 and missing.stderr.startswith(f"error: --parent={'0' * 32} is not accepted")


def test_a_configuration_run_twice_on_a_cell_counts_once() -> None:
    from pipeline.report import verdict_of

    rows = [
        {"run_id": f"{config}{dataset}{copy}", "config": config, "label": config, "dataset": dataset,
         "positive_rate": "natural", "model": "logreg", "seed": 0, "fold": 0, "split": "default", "test_share": 0.4,
         "test/f1": value + copy * 0.5}
        for dataset, (c_value, s_value) in {"a": (0.5, 0.6), "b": (0.4, 0.45), "c": (0.7, 0.7)}.items()
        for config, value in (("control", c_value), ("fix=smote", s_value))
        for copy in ((0, 1) if (config, dataset) == ("fix=smote", "a") else (0,))
    ]  # fmt: skip
    result = verdict_of(pd.DataFrame(rows), ["test/f1"], "fix.name=none")
    (row,) = result.paired.to_dict("records")
    assert row["cells"] == 3 and row["mean"] == pytest.approx((0.1 + 0.05 + 0.0) / 3)


@pytest.mark.fault(
    "`pipeline.report` whose `--out` or `--name` names a folder it did not write (`..`, a folder holding a "
    "user's file)",
    "exit 2 in one line naming the option; every file there survives (the rules themselves: "
    "`test_safety.py::test_a_folder_is_replaced_only_when_it_holds_the_marker`)",
)
def test_a_report_refuses_a_folder_a_report_did_not_write(study: Path, tmp_path: Path) -> None:
    store = study / "mlflow.db"
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    done = report(store, mine)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"error: --out={mine} is not accepted (it holds files this command did not write)")
    base = ["-m", "pipeline.report", "--experiment", "fixes_across_keel", "--tracking-uri", f"sqlite:///{store}"]
    done = _run(*base, "--name", "..", cwd=mine)
    assert done.returncode == 2 and done.stderr.startswith("error: --name=.. is not accepted"), done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"] and [p.name for p in mine.iterdir()] == ["notes.txt"]


def test_promote_refuses_a_best_run_that_logged_no_model(study: Path) -> None:
    """The short study runs with ``tracking.log_model=false``: ``models:/NAME@champion`` would
    not load, so nothing is registered."""
    done = _run("-m", "pipeline.promote", "fixes_across_keel", "--metric", "test/pr_auc", "--force",
                "--tracking-uri", f"sqlite:///{study}/mlflow.db")  # fmt: skip
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "logged no model" in done.stderr and done.stderr.startswith("error: experiment=fixes_across_keel")
    assert client(study / "mlflow.db").search_registered_models() == []


def test_ctrl_c_in_a_report_is_one_line(study: Path, tmp_path: Path) -> None:
    import signal
    import time

    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.report", "--experiment", "fixes_across_keel", "--tracking-uri",
         f"sqlite:///{study}/mlflow.db", "--out", str(tmp_path / "r")],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lock = study / "mlflow.db-lock"  # the store's opener writes its pid there: the report is reading it
    deadline = time.monotonic() + 120
    while lock.read_text().strip() != str(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert (proc.returncode, err) == (130, "interrupted\n")
