"""Calibration after resampling, the calibration metrics, subgroups, and the three studies."""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import DictConfig
from sklearn.linear_model import LogisticRegression

from pipeline import calibration, experiment, fixes, metrics
from pipeline.decision import Costs, PrecisionAtRecall
from pipeline.paths import REPO_ROOT
from tests.conftest import SMALL


def test_prior_correction_is_dal_pozzolos_closed_form_after_random_undersampling(
    make_cfg: Callable[..., DictConfig],
) -> None:
    cfg = make_cfg("fix=random_under", "calibration=prior_correction")
    splits = experiment.prepare(cfg)
    fitted = experiment.fit(cfg, splits)
    y = splits.train.y
    beta = y.sum() / (len(y) - y.sum())  # share of negatives kept: down to as many as positives
    p_s = fitted.pipe.predict_proba(splits.test.X)[:, 1]
    closed_form = beta * p_s / (beta * p_s - p_s + 1)
    assert fitted.fit_positive_rate == pytest.approx(0.5)
    assert np.allclose(fitted.model.predict_proba(splits.test.X)[:, 1], closed_form, atol=1e-12)


def test_prior_correction_undoes_class_weights_like_refitting_without_them() -> None:
    rng = np.random.default_rng(0)
    n = 200_000
    y = (rng.random(n) < 0.05).astype(int)
    X = rng.standard_normal((n, 2)) + 1.5 * y[:, None]  # equal covariances: the posterior is logistic
    plain = LogisticRegression(C=1e6).fit(X, y)
    weighted = fixes.Reweight(LogisticRegression(C=1e6), positive_weight="balanced").fit(X, y)
    corrected = calibration.PriorCorrected(weighted, y.mean(), weighted.fit_positive_rate_).fit()
    grid = rng.standard_normal((2000, 2)) + 0.75
    gap = np.abs(corrected.predict_proba(grid)[:, 1] - plain.predict_proba(grid)[:, 1])
    # equal in the limit for a well-specified model; the weighted fit's own sampling noise
    # (its slopes differ by ~1% here) leaves a small gap, largest in the tails
    assert np.median(gap) < 0.001 and np.percentile(gap, 99) < 0.01 and gap.max() < 0.02


def test_isotonic_on_few_calib_positives_warns_and_tags(make_cfg: Callable[..., DictConfig]) -> None:
    cfg = make_cfg(
        "dataset.n_samples=4000", "imbalance.positive_rate=0.05", "split.min_positives=10", "calibration=isotonic"
    )
    result = experiment.run(cfg)
    assert "isotonic calibration on" in result.info["warning"] and "(< 50)" in result.info["warning"]
    assert "warning" not in experiment.run(make_cfg(*SMALL, "calibration=platt")).info


def test_then_is_only_for_prior_correction(make_cfg: Callable[..., DictConfig]) -> None:
    with pytest.raises(Exception, match=r"calibration\.then=isotonic"):
        experiment.run(make_cfg(*SMALL, "calibration=platt", "calibration.then=isotonic"))


def test_adaptive_ece_by_hand() -> None:
    y, p = np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.7, 0.9])
    assert metrics.adaptive_ece(y, p, n_bins=2) == pytest.approx((0.3 + 0.4) / 4)


def test_adaptive_ece_keeps_tied_scores_in_one_bin() -> None:
    # 6 rows in 2 equal-mass bins would cut after the 3rd row, inside the run of 0.5s: the cut
    # moves down to the run's start, so the bins are {0.2} and {0.5, 0.5, 0.5, 0.9, 0.9}
    y, p = np.array([0, 1, 0, 1, 1, 0]), np.array([0.2, 0.5, 0.5, 0.5, 0.9, 0.9])
    assert metrics.adaptive_ece(y, p, n_bins=2) == pytest.approx((0.2 + abs(3 - 3.3)) / 6)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 6)), min_size=1, max_size=60), st.randoms())
def test_adaptive_ece_does_not_depend_on_row_order(rows: list[tuple[int, int]], rnd: random.Random) -> None:
    shuffled = rows[:]
    rnd.shuffle(shuffled)
    values = [
        metrics.adaptive_ece(np.array([y for y, _ in r]), np.array([s / 6 for _, s in r])) for r in (rows, shuffled)
    ]
    assert values[0] == pytest.approx(values[1], abs=1e-15)


def test_calibration_line_leaves_out_scores_without_a_logit() -> None:
    """Rows at exactly 0 or 1 neither move the line (no clip constant decides it) nor vanish
    unreported: the suite gives their share."""
    rng = np.random.default_rng(2)
    p = rng.uniform(0.02, 0.98, 3000)
    y = (rng.random(3000) < p**1.5).astype(int)
    line = metrics.calibration_line(y, p)
    reference = LogisticRegression(C=np.inf, solver="newton-cg", tol=1e-12, max_iter=1000)
    reference.fit((np.log(p) - np.log1p(-p))[:, None], y)
    assert line[1] == pytest.approx(reference.coef_[0, 0], abs=1e-6)
    certain = np.r_[np.zeros(800), np.ones(200)]
    y_all, p_all = np.r_[y, [0] * 798, [1, 1], [1] * 199, [0]], np.r_[p, certain]
    assert metrics.calibration_line(y_all, p_all) == pytest.approx(line, abs=1e-12)
    assert metrics.calibration(y_all, p_all)["calibration_excluded_share"] == pytest.approx(1000 / 4000)
    assert np.isnan(metrics.calibration_line(np.array([0, 1, 0]), np.array([0.3, 1.0, 0.6]))[1])  # one class inside


def test_calibration_line_matches_an_unpenalised_logistic_fit() -> None:
    rng = np.random.default_rng(1)
    p = rng.uniform(0.02, 0.98, 5000)
    y = (rng.random(5000) < p).astype(int)
    intercept, slope = metrics.calibration_line(y, p)
    reference = LogisticRegression(penalty=None, solver="newton-cg", tol=1e-12, max_iter=1000)
    reference.fit(np.log(p / (1 - p))[:, None], y)
    assert slope == pytest.approx(reference.coef_[0, 0], abs=1e-6)
    assert intercept == pytest.approx(reference.intercept_[0], abs=1e-6)
    assert slope == pytest.approx(1, abs=0.1) and intercept == pytest.approx(0, abs=0.1)
    over = 1 / (1 + np.exp(-3 * np.log(p / (1 - p))))  # over-confident scores
    assert metrics.calibration_line(y, over)[1] == pytest.approx(1 / 3, abs=0.05)


def test_brier_parts_add_up_when_scores_are_constant_per_bin() -> None:
    y = np.array([0, 1, 0, 0, 1, 1, 1, 0])
    p = np.array([0.1, 0.1, 0.1, 0.1, 0.8, 0.8, 0.8, 0.8])
    parts = metrics.brier_parts(y, p)
    # bins: 0.1 holds y mean 0.25, 0.8 holds 0.75; base rate 0.5
    assert parts["brier_reliability"] == pytest.approx(0.5 * 0.15**2 + 0.5 * 0.05**2)
    assert parts["brier_resolution"] == pytest.approx(0.25**2)
    assert parts["brier_uncertainty"] == pytest.approx(0.25)
    brier = np.mean((p - y) ** 2)
    assert brier == pytest.approx(parts["brier_reliability"] - parts["brier_resolution"] + parts["brier_uncertainty"])


def test_subgroup_metrics_by_hand_and_their_intervals() -> None:
    y, p = np.array([0, 1, 0, 0]), np.array([0.2, 0.6, 0.1, 0.3])
    out = metrics.by_group(y, p, 0.5, np.array(["a", "a", "b", "b"]))
    assert out["a/fpr"] == 0 and out["b/fpr"] == 0 and out["a/recall"] == 1
    assert out["ece_gap"] == pytest.approx(0.1) and "recall_gap" not in out  # b has no positives
    rng = np.random.default_rng(0)
    groups = rng.choice(["x", "y"], 2000)
    y2 = (rng.random(2000) < np.where(groups == "x", 0.1, 0.3)).astype(int)
    p2 = np.clip(rng.normal(0.2, 0.05, 2000), 0, 1)
    with_ci = metrics.by_group(y2, p2, 0.25, groups, n_boot=100, seed=3)
    assert with_ci == metrics.by_group(y2, p2, 0.25, groups, n_boot=100, seed=3)  # seeded
    for g in "xy":
        for m in ("prevalence", "ece", "recall", "fpr", "pr_auc", "calibration_slope", "brier"):
            assert with_ci[f"{g}/{m}_lo"] <= with_ci[f"{g}/{m}"] <= with_ci[f"{g}/{m}_hi"], (g, m)
    assert with_ci["y/prevalence_lo"] > with_ci["x/prevalence_hi"]  # the groups differ, visibly


def test_subgroup_metrics_recompute_from_the_prediction_table(make_cfg: Callable[..., DictConfig]) -> None:
    result = experiment.run(make_cfg("fix=smote", "calibration=isotonic", "metrics.n_boot=0"))
    pred, m = result.predictions, result.metrics
    for g in ("a", "b"):
        rows = pred[pred.group == g]
        assert m[f"group/{g}/ece"] == pytest.approx(
            metrics.ece(rows.y_true.to_numpy(), rows.score.to_numpy()), abs=1e-12
        )
        assert m[f"group/{g}/recall"] == pytest.approx(rows.y_pred[rows.y_true == 1].mean(), abs=1e-12)
    assert m["group/ece_gap"] == pytest.approx(abs(m["group/a/ece"] - m["group/b/ece"]))


def test_precision_at_recall_by_hand() -> None:
    y = np.array([1, 1, 0, 1, 0, 0])
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    decision = PrecisionAtRecall(0.9).choose(y, p, Costs(1, 1))
    assert decision.threshold == pytest.approx(0.55) and decision.info["calib/precision"] == pytest.approx(0.75)


def _study(tmp_path: Path, *args: str) -> pd.DataFrame:
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "tracking=off", "metrics.n_boot=0", *args, f"hydra.sweep.dir={tmp_path}/s"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "s" / "report" / "metrics_by_config.png").stat().st_size > 5000  # the study's chart
    return pd.read_csv(tmp_path / "s" / "report" / "leaderboard.csv").set_index(list(_axes(args)))


def _axes(args: tuple[str, ...]) -> list[str]:
    return [
        a.split("=")[0] + (".name" if "." not in a.split("=")[0] else "") for a in args if "," in a and "seed" not in a
    ]


def test_calibration_after_resampling_shows_what_the_literature_reports(tmp_path: Path) -> None:
    board = _study(
        tmp_path, "experiments=calibration_after_resampling", "fix=none,random_under,smote",
        "calibration=none,prior_correction,isotonic", "seed=0,1",
    )  # fmt: skip
    m = lambda fix, cal, metric: board.loc[(fix, cal), f"test/{metric}/mean"]  # noqa: E731
    for fix in ("random_under", "smote"):
        assert m(fix, "none", "roc_auc") == pytest.approx(m("none", "none", "roc_auc"), abs=0.01)
        assert m(fix, "none", "ece") > 5 * m("none", "none", "ece")
        assert m(fix, "none", "brier") > 1.5 * m("none", "none", "brier")
        for fixer in ("prior_correction", "isotonic"):
            assert m(fix, fixer, "ece") < 0.2 * m(fix, "none", "ece")
            assert m(fix, fixer, "brier") < m(fix, "none", "brier")


def test_threshold_falls_and_recall_rises_as_missed_positives_cost_more(tmp_path: Path) -> None:
    board = _study(tmp_path, "experiments=threshold_vs_cost", "costs.fn=1,5,20,100", "seed=0")
    board = board.sort_index()
    assert board["calib/threshold/mean"].is_monotonic_decreasing
    assert board["test/recall/mean"].is_monotonic_increasing
    assert np.allclose(board["calib/bayes_threshold/mean"], [1 / 2, 1 / 6, 1 / 21, 1 / 101])


def test_subgroup_miscalibration_survives_overall_calibration(tmp_path: Path) -> None:
    board = _study(
        tmp_path, "experiments=subgroup_calibration", "fix=none,smote", "calibration=none,isotonic", "seed=0"
    )
    calibrated = board.loc[("smote", "isotonic")]
    assert calibrated["test/ece/mean"] < 0.02
    assert calibrated["group/b/ece/mean"] > 3 * calibrated["test/ece/mean"]
    assert calibrated["group/ece_gap/mean"] > 0.03


def test_prior_correction_keeps_a_saturated_score_a_probability() -> None:
    """(r + 1) - 1 is not r in floating point: a score of exactly 1 came out 1.0000000000000036,
    and scikit-learn's metrics refused it (16 runs of the KEEL study on page_blocks0 failed)."""
    from pipeline.calibration import prior_correct

    p = np.array([0.0, 0.5, 1 - 2**-53, 1.0])
    for train in np.linspace(0.01, 0.9, 90):
        q = prior_correct(p, float(train), 0.5)
        assert (q >= 0).all() and (q <= 1).all() and q[-1] == 1.0 and q[0] == 0.0
