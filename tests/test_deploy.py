"""The logged model decides as its run decided (loaded back, served over REST), and promote
registers the winner only when it beats the control. Real SQLite store, real server, real CLI."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from pipeline import app, experiment, promote, store
from pipeline.paths import CONF_DIR, REPO_ROOT
from tests.conftest import SMALL, client

#: A sampler pipeline, a torch model, an anomaly model and the cascade, each with another policy.
ROUND_TRIPS = {
    "smote": ["fix=smote", "model=logreg", "calibration=isotonic", "threshold=min_cost"],
    "mlp": ["fix=class_weight", "model=mlp", "calibration=platt", "threshold=max_f1"],
    "anomaly": ["model=isolation_forest", "calibration=isotonic", "threshold=max_f2"],
    "cascade": ["model=cascade", "calibration=platt", "threshold=recall_at_precision", "threshold.min_precision=0.5"],
}


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, tuple[str, pd.DataFrame]]]]:
    """Each configuration run and tracked once: (store, {case: (run id, test X)})."""
    store = tmp_path_factory.mktemp("deploy") / "mlflow.db"
    found = {}
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        for case, overrides in ROUND_TRIPS.items():
            args = ["hydra.callbacks={}", *SMALL, "metrics.n_boot=0", f"tracking.uri=sqlite:///{store}", *overrides]
            cfg = compose("config", overrides=[*args, f"study={case}"])
            app.run_job(cfg)
            (run,) = client(store).search_runs([client(store).get_experiment_by_name(case).experiment_id])
            found[case] = (run.info.run_id, experiment.prepare(cfg).test.X)
    GlobalHydra.instance().clear()
    yield store, found


def _predictions(store: Path, run_id: str, tmp: Path) -> pd.DataFrame:
    return pd.read_parquet(client(store).download_artifacts(run_id, "predictions/test.parquet", str(tmp)))


@pytest.mark.parametrize("case", list(ROUND_TRIPS))
def test_the_logged_model_decides_exactly_as_its_run(
    logged: tuple[Path, dict[str, tuple[str, pd.DataFrame]]], case: str, tmp_path: Path
) -> None:
    store, runs = logged
    run_id, X = runs[case]
    pred = _predictions(store, run_id, tmp_path)
    local = client(store).download_artifacts(run_id, "model", str(tmp_path))
    decided = mlflow.pyfunc.load_model(local).predict(X)
    assert np.array_equal(np.asarray(decided), pred.y_pred.to_numpy())
    assert np.array_equal(mlflow.sklearn.load_model(local).predict_proba(X)[:, 1], pred.score.to_numpy())
    # the threshold the run logged is the one the model applies, and the one its metadata and note state
    run = client(store).get_run(run_id)
    threshold = run.data.metrics["calib/threshold"]
    meta = mlflow.pyfunc.load_model(local).metadata
    assert meta.metadata["threshold"] == threshold
    assert meta.metadata["threshold_policy"] == run.data.params["threshold.name"]
    assert f"{threshold:.6g}" in run.data.tags["mlflow.note.content"]
    assert 0 < pred.y_pred.sum() < len(pred)  # a threshold that decides something, not a constant
    assert meta.signature is not None and meta.saved_input_example_info is not None


def test_mlflow_models_serve_gives_the_same_decisions_over_rest(
    logged: tuple[Path, dict[str, tuple[str, pd.DataFrame]]], tmp_path: Path
) -> None:
    store, runs = logged
    run_id, X = runs["smote"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # MLflow starts `uvicorn` from PATH: as in an activated virtual environment
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{store}", "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    cmd = [str(Path(sys.executable).with_name("mlflow")), "models", "serve", "-m", f"runs:/{run_id}/model",
           "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]  # fmt: skip
    with open(tmp_path / "serve.log", "w") as log:
        server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for(f"{base}/ping", server, tmp_path / "serve.log")
        body = json.dumps({"dataframe_split": {"columns": list(X.columns), "data": X.to_numpy().tolist()}}).encode()
        request = urllib.request.Request(f"{base}/invocations", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as answer:
            served = json.loads(answer.read())["predictions"]
    finally:
        if server.poll() is None:
            os.killpg(server.pid, 15)
        server.wait(timeout=30)
    assert served == _predictions(store, run_id, tmp_path).y_pred.tolist()


def _wait_for(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, log.read_text()[-2000:]
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer in {timeout} s: {log.read_text()[-2000:]}")


PROMO_SWEEP = ["fix=none,smote", "threshold=max_f1,min_cost", "seed=0,1,2", "metrics.n_boot=0", *SMALL]
# (three seeds: the spread of the paired gains needs two at least, and one more keeps it honest)


@pytest.fixture(scope="module")
def promo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 12-job sweep (study ``promo``) with the control (no fix, max_f1) among its jobs."""
    tmp = tmp_path_factory.mktemp("promo")
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "--multirun", *PROMO_SWEEP, "study=promo",
         f"tracking.uri=sqlite:///{tmp}/mlflow.db", f"hydra.sweep.dir={tmp}/sweep"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return tmp / "mlflow.db"


def _promote(store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.promote", "promo", "--tracking-uri", f"sqlite:///{store}", *args],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def _table(store: Path) -> pd.DataFrame:
    c = client(store)
    runs = c.search_runs([c.get_experiment_by_name("promo").experiment_id])
    return pd.DataFrame(
        {"run_id": r.info.run_id, "fix": r.data.params["fix.name"], "threshold": r.data.params["threshold.name"],
         "seed": r.data.params["seed"], "cost": r.data.metrics["test/expected_cost"]}
        for r in runs if "mlflow.parentRunId" in r.data.tags
    )  # fmt: skip


def test_promote_registers_the_best_run_that_beats_the_control(promo: Path) -> None:
    done = _promote(promo, "--metric", "test/expected_cost")
    assert done.returncode == 0, done.stderr
    # independently: the (fix, threshold) with the lowest mean cost, then its cheapest seed
    table = _table(promo)
    assert len(table) == 12
    best = table.groupby(["fix", "threshold"])["cost"].mean().idxmin()
    mine = table[(table.fix == best[0]) & (table.threshold == best[1])]
    chosen = mine.loc[mine.cost.idxmin()]
    control = table[(table.fix == "none") & (table.threshold == "max_f1")].set_index("seed")["cost"]
    gains = control[mine.seed].to_numpy() - mine.cost.to_numpy()
    assert gains.mean() > gains.std(ddof=1)  # the sweep is one where a winner exists
    c = client(promo)
    version = c.get_model_version_by_alias("promo", "champion")
    assert version.run_id == chosen.run_id
    assert float(version.tags["value"]) == chosen.cost
    assert float(version.tags["control_value"]) == control[chosen.seed]
    assert float(version.tags["margin"]) == pytest.approx(gains.mean(), abs=1e-12)
    assert version.tags["config_hash"] == c.get_run(chosen.run_id).data.tags["config_hash"]
    mlflow.set_tracking_uri(f"sqlite:///{promo}")
    try:
        champion = mlflow.sklearn.load_model("models:/promo@champion")
    finally:
        mlflow.set_tracking_uri(None)
    assert float(champion.threshold) == c.get_run(chosen.run_id).data.metrics["calib/threshold"]


SLOW = pytest.mark.slow  # the other cases of a kind run in make test


@pytest.mark.parametrize(
    ("args", "in_line"),
    [
        (["--metric", "test/nope"], "--metric=test/nope"),
        pytest.param(["--metric", "test/accuracy_of_nothing"], "--metric=test/accuracy_of_nothing", marks=SLOW),
        (["--metric", "test/pr_auc"], "--metric=test/pr_auc is not accepted (the control"),  # thresholds move no PR-AUC
        pytest.param(["--control", "fix.name=none,threshold.name=max_f2"], "no control run", marks=SLOW),
        pytest.param(["--control", "nonsense"], "--control=nonsense", marks=SLOW),
    ],
)
def test_promote_refuses_in_one_line(promo: Path, args: list[str], in_line: str) -> None:
    before = len(client(promo).search_model_versions("name='promo'"))
    done = _promote(promo, *args)
    assert done.returncode == 2 and in_line in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert len(client(promo).search_model_versions("name='promo'")) == before  # nothing registered


def test_promote_force_registers_what_does_not_beat_the_control(promo: Path) -> None:
    done = _promote(promo, "--metric", "test/pr_auc", "--force", "--name", "forced")
    assert done.returncode == 0, done.stderr
    version = client(promo).get_model_version_by_alias("forced", "champion")
    assert version.tags["forced"] == "true" and "the control itself" in done.stdout


def test_compare_pairs_matched_cells_only() -> None:
    """The control lacks seed 2: the winner's gain is judged on seeds 0 and 1 alone. Row labels
    are not positions, and where a run was tracked does not split a configuration."""
    rows = [
        ("smote", "min_cost", "0", 0.20), ("smote", "min_cost", "1", 0.22), ("smote", "min_cost", "2", 0.21),
        ("none", "max_f1", "0", 0.30), ("none", "max_f1", "1", 0.33),
        ("none", "min_cost", "0", 0.25), ("none", "min_cost", "1", 0.26), ("none", "min_cost", "2", 0.27),
    ]  # fmt: skip
    frame = pd.DataFrame(
        {"run_id": f"r{i}", "run_name": f"{f}-{t}-s{s}", "experiment_id": "1", "params.fix.name": f,
         "params.threshold.name": t, "params.seed": s, "params.tracking.uri": f"sqlite:///store{i}.db",
         "metrics.test/expected_cost": cost}
        for i, (f, t, s, cost) in enumerate(rows)
    ).set_index(pd.Index([17, 3, 9, 1, 12, 5, 8, 0]))  # fmt: skip
    found = promote.compare(frame, "test/expected_cost", promote.parse_control(promote.DEFAULT_CONTROL))
    assert found.run["run_name"] == "smote-min_cost-s0" and found.control_value == 0.30
    assert found.pairs == 2 and found.margin == pytest.approx(0.105)
    assert found.spread == pytest.approx(np.std([0.10, 0.11], ddof=1)) and found.refusal == ""
    higher = promote.compare(frame.assign(**{"metrics.test/recall": 1 - frame["metrics.test/expected_cost"]}),
                             "test/recall", promote.parse_control(promote.DEFAULT_CONTROL))  # fmt: skip
    assert higher.run["run_name"] == "smote-min_cost-s0"  # the direction flips with the metric


def _cells(rows: list[tuple[str, str, str, float, str, str]]) -> pd.DataFrame:
    """Runs as ``store.leaf_runs`` reads them: (fix, seed, resume, cost, config hash, start time)."""
    return pd.DataFrame(
        {"run_id": f"r{i}", "run_name": f"{f}-s{s}", "experiment_id": "1", "status": "FINISHED",
         "start_time": int(t), "params.fix.name": f, "params.threshold.name": "max_f1" if f == "none" else "min_cost",
         "params.seed": s, "params.resume": r, "metrics.test/expected_cost": cost,
         "tags.config_hash": h, "tags.data_fingerprint": f"data-s{s}"}
        for i, (f, s, r, cost, h, t) in enumerate(rows)
    )  # fmt: skip


def test_a_run_twice_of_one_configuration_is_one_seed_not_two() -> None:
    """Two processes resumed one sweep and each ran the missing smote job: the same identity
    twice. Counted once, one seed pairs with the control, so nothing is promoted."""
    rows = [("none", "0", "False", 0.30, "c0", "1"), ("smote", "0", "False", 0.20, "s0", "2"),
            ("smote", "0", "True", 0.10, "s0", "3")]  # fmt: skip
    kept, dropped = store.one_per_identity(_cells(rows))
    assert dropped == 1 and sorted(kept["run_id"]) == ["r0", "r2"]  # the newest of the two kept
    found = promote.compare(kept, "test/expected_cost", promote.parse_control(promote.DEFAULT_CONTROL))
    assert found.pairs == 1 and found.refusal == "only one seed pairs with the control, so the seeds' spread is unknown"
    assert (
        promote.compare(_cells(rows), "test/expected_cost", promote.parse_control(promote.DEFAULT_CONTROL)).pairs == 2
    )


def test_a_resumed_run_pairs_with_the_control_of_the_first_sweep() -> None:
    """``resume=true`` is how a sweep was started, not what it computed: its runs pair with the
    control run by the first, unresumed, sweep (the same cells, the same numbers)."""
    rows = [("none", "0", "False", 0.30, "c0", "1"), ("none", "1", "False", 0.32, "c1", "2"),
            ("smote", "0", "True", 0.20, "s0", "3"), ("smote", "1", "True", 0.21, "s1", "4")]  # fmt: skip
    found = promote.compare(_cells(rows), "test/expected_cost", promote.parse_control(promote.DEFAULT_CONTROL))
    assert found.pairs == 2 and found.margin == pytest.approx(np.mean([0.10, 0.11])) and found.refusal == ""
