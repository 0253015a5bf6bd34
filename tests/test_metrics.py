"""The metric suite against hand-computed values on tiny inputs and against scikit-learn."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from pipeline import curves, metrics
from pipeline.decision import Costs


def test_ece_by_hand() -> None:
    # one case per bin: bins 1, 3, 10, 13 of 15; |y - p| = .1, .2, .3, .1
    assert metrics.ece(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.7, 0.9])) == pytest.approx(0.175)
    # two cases in bin 4: |mean y - mean p| = |0.5 - 0.305|, bin share 1
    assert metrics.ece(np.array([1, 0]), np.array([0.30, 0.31])) == pytest.approx(0.195)
    # a score of exactly 1.0 lands in the last bin, not past it
    assert metrics.ece(np.array([1, 1]), np.array([1.0, 0.94])) == pytest.approx(0.03)


def test_ece_bins_are_fifteen_equal_widths() -> None:
    # 0.02 and 0.05 share bin 0 ([0, 1/15)); with 20 bins 0.05 opens bin 1
    y, p = np.array([1, 0]), np.array([0.02, 0.05])
    assert metrics.ece(y, p) == pytest.approx(abs(0.5 - 0.035))
    assert metrics.ece(y, p, n_bins=20) == pytest.approx((0.98 + 0.05) / 2)


def test_recall_at_precision_by_hand() -> None:
    y = np.array([1, 1, 0, 1, 0, 0])
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    assert metrics.recall_at_precision(y, p, 0.9) == pytest.approx(2 / 3)
    assert metrics.recall_at_precision(y, p, 0.75) == pytest.approx(1.0)
    assert metrics.recall_at_precision(np.array([0, 1]), np.array([0.9, 0.1]), 0.9) == 0.0


def test_expected_cost_by_hand() -> None:
    y, pred = np.array([1, 0, 1, 0]), np.array([0, 1, 1, 0])
    assert metrics.expected_cost(y, pred, Costs(fp=1, fn=10)) == pytest.approx(11 / 4)


@pytest.mark.parametrize("seed", range(6))
def test_suite_matches_scikit_learn_and_baseline(seed: int) -> None:
    """The suite counts once; each value is scikit-learn's to rounding: random scores, scores
    with ties (rounded), a threshold nothing reaches and one everything reaches."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 3000))
    y = (rng.random(n) < rng.uniform(0.02, 0.5)).astype(int)
    p = np.clip(0.3 * y + rng.random(n) * 0.7, 0, 1).round([12, 2, 1, 12, 3, 12][seed])
    threshold = [0.5, 0.3, 0.5, 1.5, 0.7, 0.0][seed]
    out = metrics.suite(y, p, threshold, Costs(fp=1, fn=5))
    pred = (p >= threshold).astype(int)
    same = functools.partial(pytest.approx, rel=1e-12, abs=1e-15)
    assert out["accuracy"] == same(skm.accuracy_score(y, pred))
    assert out["baseline_accuracy"] == same(max(y.mean(), 1 - y.mean()))
    assert out["balanced_accuracy"] == same(skm.balanced_accuracy_score(y, pred))
    assert out["precision"] == same(skm.precision_score(y, pred, zero_division=0))
    assert out["recall"] == same(skm.recall_score(y, pred, zero_division=0))
    assert out["f1"] == same(skm.f1_score(y, pred, zero_division=0))
    assert out["f2"] == same(skm.fbeta_score(y, pred, beta=2, zero_division=0))
    assert out["mcc"] == same(skm.matthews_corrcoef(y, pred))
    assert out["pr_auc"] == same(skm.average_precision_score(y, p))
    assert out["roc_auc"] == same(skm.roc_auc_score(y, p))
    assert out["brier"] == same(skm.brier_score_loss(y, p))
    assert out["log_loss"] == same(skm.log_loss(y, p, labels=[0, 1]))
    assert out["expected_cost"] == same(((pred == 1) & (y == 0)).sum() / n + 5 * ((pred == 0) & (y == 1)).sum() / n)
    precision, recall, _ = skm.precision_recall_curve(y, p)
    assert out["recall_at_p90"] == pytest.approx(
        max((r for pr, r in zip(precision, recall, strict=True) if pr >= 0.9 and r > 0), default=0.0)
    )


def test_constant_majority_predictor_wins_accuracy_and_nothing_else() -> None:
    y = np.r_[np.zeros(99), np.ones(1)].astype(int)
    out = metrics.suite(y, np.full(100, 0.01), 0.5, Costs(fp=1, fn=10))
    assert out["accuracy"] == out["baseline_accuracy"] == 0.99
    assert out["recall"] == 0 and out["f1"] == 0 and out["mcc"] == 0
    assert out["expected_cost"] == pytest.approx(0.1)


def test_by_group_by_hand() -> None:
    y, p = np.array([0, 1, 0, 0]), np.array([0.2, 0.6, 0.1, 0.3])
    out = metrics.by_group(y, p, 0.5, np.array(["a", "a", "b", "b"]))
    slope = out.pop("a/calibration_slope")  # a's two rows are separable: the fitted slope is steep
    assert slope > 1
    assert out == pytest.approx(
        {
            "a/n": 2, "a/prevalence": 0.5, "a/ece": 0.3, "a/brier": 0.1, "a/pr_auc": 1.0, "a/recall": 1.0, "a/fpr": 0.0,
            "b/n": 2, "b/prevalence": 0.0, "b/ece": 0.2, "b/brier": 0.05, "b/fpr": 0.0, "ece_gap": 0.1,
        }
    )  # fmt: skip


def test_reliability_curve_by_hand() -> None:
    """Non-empty bins only, in bin order; a score of 1.0 falls in the last bin."""
    y, p = np.array([0, 1, 0, 1, 1]), np.array([0.05, 0.02, 0.5, 0.55, 1.0])
    curve = curves.reliability(y, p, n_bins=10)
    assert curve["count"] == [2, 2, 1]
    assert curve["mean_score"] == pytest.approx([0.035, 0.525, 1.0])
    assert curve["observed"] == pytest.approx([0.5, 0.5, 1.0])


def test_metric_key_sanitises_group_values() -> None:
    # "/" would nest the name in MLflow's UI: it is replaced like any other unsafe character
    assert metrics.metric_key("north/east (EU)") == "north_east _EU_"
    assert metrics.metric_key("") == "_"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.floats(0, 1)), min_size=2, max_size=60))
def test_ece_is_bounded_and_zero_when_scores_are_bin_frequencies(cases: list[tuple[bool, float]]) -> None:
    y = np.array([int(c[0]) for c in cases])
    p = np.array([c[1] for c in cases])
    assert 0.0 <= metrics.ece(y, p) <= 1.0
    bins = np.minimum((p * 15).astype(int), 14)
    frequencies = np.array([y[bins == b].mean() for b in bins])
    matched = np.clip(frequencies, bins / 15, np.nextafter((bins + 1) / 15, 0))
    if np.allclose(matched, frequencies):
        assert metrics.ece(y, frequencies) == pytest.approx(0.0, abs=1e-12)


def _loop_bootstrap(y: np.ndarray, p: np.ndarray, threshold: float, n_boot: int, seed: int) -> dict[str, list[float]]:
    """The bootstrap written plainly: resample rows, call group_metrics."""
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {}
    for _ in range(n_boot):
        rows = rng.integers(0, len(y), len(y))
        for m, v in metrics.group_metrics(y[rows], p[rows], threshold).items():
            draws.setdefault(m, []).append(v)
    return draws


@pytest.mark.parametrize("seed", range(8))
def test_vectorised_bootstrap_is_the_plain_loop_over_the_same_resamples(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(200, 3000))
    y = (rng.random(n) < rng.uniform(0.03, 0.4)).astype(int)
    p = np.clip(rng.beta(1, 5, n) + 0.3 * y * rng.random(n), 0, 1).round(int(rng.integers(1, 5)))  # ties too
    draws = _loop_bootstrap(y, p, 0.3, 60, seed)
    rows = np.random.default_rng(seed)
    counts = np.stack([np.bincount(rows.integers(0, n, n), minlength=n) for _ in range(60)]).astype(float)
    fast = metrics.bootstrap_metrics(y, p, 0.3, counts)
    for m, values in draws.items():
        got = fast[m][~np.isnan(fast[m])]
        assert got == pytest.approx(np.asarray(values), rel=1e-7, abs=1e-9), m
    point = metrics.group_metrics(y, p, 0.3)
    intervals = metrics._intervals(y, p, 0.3, point, 60, np.random.default_rng(seed))
    for m, values in draws.items():
        assert intervals[f"{m}_lo"] == pytest.approx(np.percentile(values, 2.5), rel=1e-7, abs=1e-9)
        assert intervals[f"{m}_hi"] == pytest.approx(np.percentile(values, 97.5), rel=1e-7, abs=1e-9)


def test_bootstrap_leaves_undefined_metrics_out_per_resample() -> None:
    y, p = np.array([0, 0, 0, 1]), np.array([0.1, 0.2, 0.3, 0.9])
    counts = np.array([[1.0, 1, 2, 0], [1, 1, 1, 1], [0, 0, 0, 4]])  # no positive; both; no negative
    fast = metrics.bootstrap_metrics(y, p, 0.5, counts)
    assert np.isnan(fast["pr_auc"][[0, 2]]).all() and fast["pr_auc"][1] == 1.0
    assert np.isnan(fast["fpr"][2]) and fast["fpr"][0] == 0.0
    assert fast["prevalence"].tolist() == [0.0, 0.25, 1.0]
