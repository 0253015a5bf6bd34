"""``run(cfg)`` without MLflow: the design's invariants and the story the seed picture tells."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from omegaconf import DictConfig

from pipeline import experiment
from pipeline.errors import ConfigError
from tests.conftest import SMALL
from tests.spies import SpyCalibrator, SpySampler


def test_same_config_and_seed_give_identical_metrics(make_cfg: Callable[..., DictConfig]) -> None:
    cfg = make_cfg(*SMALL, "fix=smote", "calibration=isotonic", "threshold=min_cost", "model=hgb")
    first = experiment.run(cfg)
    experiment._prepare.cache_clear()
    experiment._load.cache_clear()
    second = experiment.run(cfg)
    timing = [k for k in first.metrics if k.startswith("time/")]
    assert {k: v for k, v in first.metrics.items() if k not in timing} == {
        k: v for k, v in second.metrics.items() if k not in timing
    }
    assert first.predictions.equals(second.predictions)


COMBOS = [
    ("none", "logreg", "none"),
    ("smote", "logreg", "isotonic"),
    ("random_under", "hgb", "platt"),
    ("class_weight", "hgb", "none"),
    ("random_over", "logreg", "platt"),
]


def test_test_split_is_the_same_rows_whatever_the_fix_model_or_calibration(
    make_cfg: Callable[..., DictConfig],
) -> None:
    results = [
        experiment.run(make_cfg(*SMALL, f"fix={f}", f"model={m}", f"calibration={c}", "seed=4")) for f, m, c in COMBOS
    ]
    first = results[0].predictions
    for result in results[1:]:
        assert result.predictions.index.equals(first.index)
        assert np.array_equal(result.predictions.y_true, first.y_true)
        assert result.info["data_fingerprint"] == results[0].info["data_fingerprint"]


def test_no_fix_sees_calib_or_test_rows_and_calibration_never_sees_test(make_cfg: Callable[..., DictConfig]) -> None:
    SpySampler.seen.clear()
    SpyCalibrator.seen_fit.clear()
    cfg = make_cfg(
        *SMALL, "model=hgb", "fix=random_over", "fix._target_=tests.spies.SpySampler",
        "calibration=platt", "calibration._target_=tests.spies.SpyCalibrator",
    )  # fmt: skip
    result = experiment.run(cfg)
    splits = experiment.prepare(cfg)
    assert len(SpySampler.seen) == 1 and set(SpySampler.seen[0]) == set(splits.train.X.index)
    assert len(SpyCalibrator.seen_fit) == 1 and set(SpyCalibrator.seen_fit[0]) == set(splits.calib.X.index)
    assert set(result.predictions.index) == set(splits.test.X.index)
    assert not set(splits.train.X.index) & set(splits.test.X.index)


def test_the_seed_picture_accuracy_hides_poor_recall_and_fixes_pull_it_back(
    make_cfg: Callable[..., DictConfig],
) -> None:
    plain = experiment.run(make_cfg("imbalance.positive_rate=0.05", "fix=none")).metrics
    assert plain["test/accuracy"] == pytest.approx(plain["test/baseline_accuracy"], abs=0.02)
    assert plain["test/recall"] < 0.4
    for fix in ("class_weight", "random_over", "random_under", "smote"):
        fixed = experiment.run(make_cfg("imbalance.positive_rate=0.05", f"fix={fix}")).metrics
        assert fixed["test/recall"] > plain["test/recall"] + 0.3
        assert fixed["fix/train_positive_rate"] == pytest.approx(0.5, abs=0.01)
        assert fixed["test/ece"] > plain["test/ece"]  # the probabilities pay for it


def test_blobs2d_is_calibrated_overall_but_not_per_group(make_cfg: Callable[..., DictConfig]) -> None:
    m = experiment.run(make_cfg("imbalance.positive_rate=0.05", "fix=none")).metrics
    assert m["test/ece"] < 0.02
    assert m["group/b/ece"] > 3 * m["test/ece"]
    assert m["group/b/prevalence"] > m["group/a/prevalence"]


def test_min_cost_logs_the_bayes_threshold_and_its_test_cost(make_cfg: Callable[..., DictConfig]) -> None:
    m = experiment.run(make_cfg(*SMALL, "threshold=min_cost", "calibration=isotonic", "costs.fn=10")).metrics
    assert m["calib/bayes_threshold"] == pytest.approx(1 / 11)
    assert 0 <= m["test/expected_cost_at_bayes"] <= 10


def test_smote_needing_more_positives_than_train_has_is_a_config_error(make_cfg: Callable[..., DictConfig]) -> None:
    cfg = make_cfg(*SMALL, "fix=smote", "fix.k_neighbors=500")
    with pytest.raises(ConfigError, match=r"fix\.k_neighbors=500"):
        experiment.run(cfg)
