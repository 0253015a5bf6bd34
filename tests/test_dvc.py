"""DVC for real, in a temporary copy of the repository with its own git (never the working tree)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from pipeline.paths import REPO_ROOT
from pipeline.stages.params import compose_params
from tests.conftest import client

Run = Callable[..., subprocess.CompletedProcess[str]]


def test_committed_params_yaml_is_the_composed_default_config(tmp_path: Path) -> None:
    compose_params(tmp_path / "params.yaml")
    committed = (REPO_ROOT / "params.yaml").read_text()
    assert yaml.safe_load(committed) == yaml.safe_load((tmp_path / "params.yaml").read_text()), (
        "params.yaml has drifted from conf/: run `make params`"
    )


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Run]:
    """A copy of the project's files (what git would commit) in a fresh git repository."""
    root = tmp_path_factory.mktemp("dvc") / "repo"
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True,
    ).stdout.split("\0")  # fmt: skip
    outputs = ("dvc.lock", "data/", "models/", "reports/")  # a working tree's own repro results
    for name in filter(None, listed):
        if (REPO_ROOT / name).is_file() and not name.startswith(outputs):
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / name, root / name)
    venv_bin = str(Path(sys.executable).parent)
    # XDG_CONFIG_HOME: where the model-signing key is made (pipeline.trusted), not the user's own
    env = {**os.environ, "PATH": f"{venv_bin}:{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1",
           "XDG_CONFIG_HOME": str(root.parent / "config")}  # fmt: skip
    env.pop("MLFLOW_TRACKING_URI", None)

    def run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=600)
        if check:
            assert done.returncode == 0, f"{cmd}:\n{done.stdout}\n{done.stderr}"
        return done

    run("git", "init", "-q", "-b", "main")
    run("git", "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A")
    run("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy")
    return root, run


def _runs(store: Path) -> list:  # type: ignore[type-arg]
    c = client(store)
    return c.search_runs([c.get_experiment_by_name("adhoc").experiment_id])


def test_dvc_repro_gives_the_numbers_python_m_pipeline_logs(repo: tuple[Path, Run]) -> None:
    root, run = repo
    run("dvc", "repro")
    from_dvc = json.loads((root / "reports" / "metrics.json").read_text())
    run(sys.executable, "-m", "pipeline", f"hydra.run.dir={root}/outputs/run")
    runs = _runs(root / "mlflow.db")  # both land in the store at the copy's root
    by_source = {r.data.tags.get("source", "cli"): r for r in runs}
    assert set(by_source) == {"dvc", "cli"}
    logged = {k: v for k, v in by_source["cli"].data.metrics.items() if not k.startswith("time/")}
    assert from_dvc == pytest.approx(logged, rel=0, abs=1e-12)
    assert by_source["dvc"].data.metrics == pytest.approx(from_dvc, rel=0, abs=1e-12)
    assert by_source["dvc"].data.tags["data_fingerprint"] == by_source["cli"].data.tags["data_fingerprint"]
    for name in ("pr", "roc", "reliability", "cost"):
        assert (root / "reports" / "plots" / f"{name}.png").stat().st_size > 1000
    header = (root / "reports" / "tables" / "pr.csv").read_text().splitlines()[0]
    assert header == "recall,precision"


@pytest.mark.slow  # 12 s; dvc repro stays in the default run
def test_second_repro_does_nothing_and_a_calibration_change_skips_prepare(repo: tuple[Path, Run]) -> None:
    root, run = repo
    run("dvc", "repro")
    again = run("dvc", "repro").stdout
    assert all(f"Stage '{s}' didn't change, skipping" in again for s in ("prepare", "train", "evaluate"))
    assert "Running stage" not in again
    original = (root / "params.yaml").read_text()
    params = yaml.safe_load(original)
    params["calibration"].update(name="platt", method="sigmoid")
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        changed = run("dvc", "repro").stdout
    finally:
        (root / "params.yaml").write_text(original)
    assert "Stage 'prepare' didn't change, skipping" in changed
    assert "Running stage 'train'" in changed and "Running stage 'evaluate'" in changed


@pytest.mark.slow  # two `dvc exp run`s (about 30 s)
def test_experiments_show_and_plots_diff_overlay_both_pr_curves(repo: tuple[Path, Run]) -> None:
    root, run = repo
    run("dvc", "exp", "run", "-n", "exp-smote", "-S", "fix=smote", "-S", "imbalance.positive_rate=0.1")
    run("dvc", "exp", "run", "--temp", "-n", "exp-under", "-S", "fix=random_under")
    shown = json.loads(run("dvc", "exp", "show", "--json").stdout)
    rows = {rev["name"]: rev["data"] for base in shown for exp in base.get("experiments") or [] for rev in exp["revs"]}
    assert {"exp-smote", "exp-under"} <= set(rows)
    smote_metrics = rows["exp-smote"]["metrics"]["reports/metrics.json"]["data"]
    assert smote_metrics["fix/train_positive_rate"] == pytest.approx(0.5, abs=0.01)
    assert rows["exp-smote"]["params"]["params.yaml"]["data"]["fix"]["name"] == "smote"

    out = root.parent / "plots_diff"
    run("dvc", "plots", "diff", "exp-smote", "exp-under", "--targets", "reports/tables/pr.csv", "-o", str(out))
    page = (out / "index.html").read_text()
    assert "exp-smote" in page and "exp-under" in page and '"recall"' in page and '"precision"' in page

    # the --temp experiment ran in a copy under .dvc/tmp, yet logged to the store at the repo root
    tagged = [r for r in _runs(root / "mlflow.db") if r.data.tags.get("dvc.experiment") == "exp-under"]
    assert len(tagged) == 1 and tagged[0].data.params["fix.name"] == "random_under"
    assert not list((root / ".dvc" / "tmp").rglob("mlflow.db"))


class _Crafted:
    """A pickle that runs a command when it is loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


@pytest.mark.fault(
    "a crafted pickle in place of the DVC model file",
    "evaluate exits 2 with one line, never unpickles it (the code in it does not run), writes nothing",
)
def test_evaluate_refuses_a_model_file_the_train_stage_did_not_write(repo: tuple[Path, Run]) -> None:
    """Trust boundary: a replaced ``model.joblib`` is never unpickled (it would run code)."""
    import pickle

    root, run = repo
    run("dvc", "repro")
    assert (root / "models" / "model.joblib.sig").is_file()
    model = root / "models" / "model.joblib"
    original, marker = model.read_bytes(), root / "pwned"
    try:
        model.write_bytes(pickle.dumps(_Crafted(marker)))
        cmd = [sys.executable, "-m", "pipeline.stages.evaluate", "--data", "data/prepared", "--model", str(model),
               "--out", "reports-crafted"]  # fmt: skip
        done = run(*cmd, check=False)
        (root / "models" / "model.joblib.sig").unlink()
        missing = run(*cmd, check=False)
    finally:
        model.write_bytes(original)
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        f"error: --model={model} is not accepted (its signature in model.joblib.sig does not match); accepted: "
        "a model file written by this project's train stage with this machine's key (see pipeline/trusted.py)"
    ]
    assert missing.returncode == 2 and "model.joblib.sig is missing" in missing.stderr
    assert not marker.exists() and not (root / "reports-crafted").exists()
    run("dvc", "repro")  # the stage signs again what it writes
