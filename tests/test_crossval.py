"""``split=cv``: small KEEL sets at their natural rate, fold by fold, without leakage."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import DictConfig
from sklearn.metrics import average_precision_score

from pipeline import crossval, experiment
from pipeline.errors import ConfigError
from tests.conftest import client
from tests.spies import SpyCalibrator, SpySampler, SpyThreshold

YEAST4 = ["dataset=keel", "dataset.name=yeast4"]


def test_yeast4_runs_at_its_natural_rate_with_default_settings(
    cli: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    done = cli(*YEAST4)
    assert done.returncode == 0, done.stderr
    store = client(tmp_path / "mlflow.db")
    (run,) = store.search_runs([store.get_experiment_by_name("adhoc").experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["split.name"] == "cv" and run.data.params["imbalance.positive_rate"] == "None"
    # every row scored once per repeat, in folds 0..9
    local = Path(run.info.artifact_uri.removeprefix("file://"))
    predictions = pd.read_parquet(local / "predictions" / "test.parquet")
    assert len(predictions) == 2 * 1484 and predictions["y_true"].sum() == 2 * 51
    assert sorted(predictions["fold"].unique()) == list(range(10))
    assert (predictions.groupby("fold").size() >= 296).all()
    # test/pr_auc is the mean of the folds' values, each at its fold's step; the mean last
    history = store.get_metric_history(run.info.run_id, "test/pr_auc")
    steps = {m.step: m.value for m in history}
    assert sorted(steps) == list(range(11))
    per_fold = [
        average_precision_score(part["y_true"], part["score"]) for _, part in predictions.groupby("fold", sort=True)
    ]
    assert [steps[k] for k in range(10)] == pytest.approx(per_fold, abs=1e-12)
    assert run.data.metrics["test/pr_auc"] == pytest.approx(np.mean(per_fold), abs=1e-12) == steps[10]
    assert run.data.metrics["test/pr_auc_std"] == pytest.approx(np.std(per_fold, ddof=1), abs=1e-12)
    assert run.data.tags["cv_folds"] == "10"


def test_no_fold_lets_its_test_rows_reach_a_fix_calibrator_or_threshold(make_cfg: Callable[..., DictConfig]) -> None:
    for spy in (SpySampler.seen, SpyCalibrator.seen_fit, SpyThreshold.seen):
        spy.clear()
    cfg = make_cfg(
        *YEAST4, "split.repeats=1", "model=hgb", "model.max_iter=20",
        "fix=random_over", "fix._target_=tests.spies.SpySampler",
        "calibration=platt", "calibration._target_=tests.spies.SpyCalibrator",
        "threshold=max_f1", "threshold._target_=tests.spies.SpyThreshold",
    )  # fmt: skip
    result = experiment.run(cfg)
    whole = crossval.dataset(cfg)
    folds = list(crossval.folds(whole, cfg))
    assert len(folds) == 5 and len(SpySampler.seen) == 6  # five folds and the model fitted on all rows
    for (fold, splits), fixed, calibrated, chosen in zip(
        folds, SpySampler.seen, SpyCalibrator.seen_fit, SpyThreshold.seen, strict=False
    ):
        test_rows = set(splits.test.X.index)
        assert not test_rows & set(fixed) and not test_rows & set(calibrated)
        assert set(fixed) == set(splits.train.X.index) and set(calibrated) == set(splits.calib.X.index)
        assert np.array_equal(chosen, splits.calib.y)  # the threshold is chosen on calib's labels
        assert set(result.predictions.index[result.predictions["fold"] == fold]) == test_rows
    # the folds partition the rows; train and calib partition the rest
    assert sorted(i for _, s in folds for i in s.test.X.index) == sorted(whole.X.index)
    for _, s in folds:
        assert len(s.train.y) + len(s.calib.y) + len(s.test.y) == len(whole.y)


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["dataset.name=zoo_3", "split.folds=6"], "split.folds=6"),  # 5 positives cannot fill 6 folds
        (["split.folds=1"], "split.folds=1"),
        (["split.calib=1.5"], "split.calib=1.5"),
        (["split.calib=0.01"], "split.calib=0.01"),  # leaves no calib positive
        (["split.repeats=two"], "split.repeats=two"),
    ],
)
def test_a_split_that_cannot_work_says_why(make_cfg: Callable[..., DictConfig], overrides: list[str], key: str) -> None:
    cfg = make_cfg(*YEAST4, *overrides)
    with pytest.raises(ConfigError) as err:
        experiment.run(cfg)
    assert str(err.value).startswith(f"{key} is not accepted")


def test_the_smallest_keel_sets_run_with_default_settings(make_cfg: Callable[..., DictConfig]) -> None:
    """zoo_3 and winequality_white_9_vs_4 hold 5 positives: one per fold."""
    for name in ("zoo_3", "winequality_white_9_vs_4"):
        m = experiment.run(make_cfg("dataset=keel", f"dataset.name={name}", "threshold=max_f1")).metrics
        assert 0 < m["test/pr_auc"] <= 1 and np.isfinite(m["test/pr_auc_std"])


def test_dvc_stages_refuse_cv(make_cfg: Callable[..., DictConfig]) -> None:
    refused = (
        r"^split=cv is not accepted \(the DVC stages hold one train / calib / test split\); accepted: split=default"
    )
    with pytest.raises(ConfigError, match=refused):
        experiment.prepare(make_cfg(*YEAST4))


@pytest.mark.slow  # 16 s; resume stays in the default run (test_scale)
def test_a_cross_validated_sweep_resumes(cli: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    sweep = ["--multirun", *YEAST4[:1], "dataset.name=yeast4,glass2", "split.repeats=1", "tracking.log_model=false"]
    first = cli(*sweep)
    assert first.returncode == 0, first.stderr
    again = cli(*sweep, "resume=any_code")  # the tree under test may be dirty
    assert again.returncode == 0, again.stderr
    assert "resuming: 2 finished runs kept, 0 to run" in again.stderr
    store = client(tmp_path / "mlflow.db")
    runs = store.search_runs([store.get_experiment_by_name("adhoc").experiment_id])
    assert len([r for r in runs if r.data.tags.get("sweep") != "true"]) == 2
