"""Threshold policies: hand-worked cases and brute-force invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from pipeline.decision import Costs, Fixed, MaxFBeta, MinCost, RecallAtPrecision, ThresholdTable
from pipeline.errors import ConfigError

Y = np.array([1, 1, 0, 1, 0, 0])
P = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
UNIT = Costs(fp=1, fn=1)


def test_threshold_table_merges_ties() -> None:
    table = ThresholdTable.of(np.array([1, 0, 1, 0]), np.array([0.8, 0.8, 0.6, 0.2]))
    assert table.thresholds[:3].tolist() == [0.8, 0.6, 0.2] and table.thresholds[3] > 0.8
    assert table.tp.tolist() == [1, 2, 2, 0]
    assert table.fp.tolist() == [1, 1, 2, 0]
    # the middle of each plateau: (0.8+0.6)/2, (0.6+0.2)/2; the lowest score has no lower neighbour
    assert table.cuts[:3] == pytest.approx([0.7, 0.4, 0.2]) and table.cuts[3] == table.thresholds[3]


def test_cut_between_neighbouring_floats_stays_on_the_upper_one() -> None:
    low = 0.3
    high = float(np.nextafter(low, 1.0))
    table = ThresholdTable.of(np.array([1, 0]), np.array([high, low]))
    assert table.cuts[0] == high  # no float lies strictly between: the midpoint would round down to low


def test_max_f1_and_f2_by_hand() -> None:
    f1 = MaxFBeta(1.0).choose(Y, P, UNIT)
    # F1 peaks predicting the top four (scores >= 0.6); any threshold in (0.5, 0.6] does that
    assert f1.threshold == pytest.approx(0.55) and f1.info["calib/f_beta"] == pytest.approx(6 / 7)
    f2 = MaxFBeta(2.0).choose(Y, P, UNIT)
    assert f2.threshold == pytest.approx(0.55) and f2.info["calib/f_beta"] == pytest.approx(0.9375)


def test_min_cost_by_hand_follows_the_costs() -> None:
    missed_positive_is_dear = MinCost().choose(Y, P, Costs(fp=1, fn=10))
    assert missed_positive_is_dear.threshold == pytest.approx(0.55)
    assert missed_positive_is_dear.info["calib/expected_cost"] == pytest.approx(1 / 6)
    assert missed_positive_is_dear.info["calib/bayes_threshold"] == pytest.approx(1 / 11)
    false_alarm_is_dear = MinCost().choose(Y, P, Costs(fp=10, fn=1))
    assert false_alarm_is_dear.threshold == pytest.approx(0.75)


def test_recall_at_precision_by_hand() -> None:
    assert RecallAtPrecision(0.9).choose(Y, P, UNIT).threshold == pytest.approx(0.75)
    assert RecallAtPrecision(0.75).choose(Y, P, UNIT).threshold == pytest.approx(0.55)
    unreachable = RecallAtPrecision(1.0).choose(np.array([0, 1, 0]), np.array([0.9, 0.5, 0.1]), UNIT)
    assert unreachable.info["calib/precision_target_met"] == 0.0


def test_bayes_threshold() -> None:
    assert Costs(fp=1, fn=10).bayes_threshold == pytest.approx(1 / 11)
    assert Costs(fp=3, fn=1).bayes_threshold == pytest.approx(0.75)


@pytest.mark.parametrize("fp,fn", [(-1, 1), (1, -0.5), (0, 0), (float("nan"), 1)])
def test_bad_costs_are_refused(fp: float, fn: float) -> None:
    with pytest.raises(ConfigError, match="costs"):
        Costs(fp=fp, fn=fn)


def test_fixed_threshold_out_of_range_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"threshold.value=1.5"):
        Fixed(1.5).choose(Y, P, UNIT)


cases = st.lists(st.tuples(st.booleans(), st.integers(0, 20)), min_size=2, max_size=40).filter(
    lambda c: 0 < sum(b for b, _ in c) < len(c)
)


@settings(max_examples=80, deadline=None)
@given(cases, st.floats(0.1, 20), st.floats(0.1, 20))
def test_min_cost_is_the_brute_force_minimum(c: list[tuple[bool, int]], fp: float, fn: float) -> None:
    y, p = np.array([int(b) for b, _ in c]), np.array([s / 20 for _, s in c])
    costs = Costs(fp=fp, fn=fn)
    chosen = MinCost().choose(y, p, costs).threshold
    cost = lambda t: (fp * np.sum((p >= t) & (y == 0)) + fn * np.sum((p < t) & (y == 1))) / len(y)  # noqa: E731
    assert cost(chosen) == pytest.approx(min(cost(t) for t in [*np.unique(p), 2.0]))


@settings(max_examples=80, deadline=None)
@given(cases, st.sampled_from([0.5, 1.0, 2.0]))
def test_max_fbeta_is_the_brute_force_maximum(c: list[tuple[bool, int]], beta: float) -> None:
    y, p = np.array([int(b) for b, _ in c]), np.array([s / 20 for _, s in c])
    decision = MaxFBeta(beta).choose(y, p, UNIT)
    f = lambda t: skm.fbeta_score(y, (p >= t).astype(int), beta=beta, zero_division=0)  # noqa: E731
    assert f(decision.threshold) == pytest.approx(max(f(t) for t in np.unique(p)))
    assert decision.info["calib/f_beta"] == pytest.approx(f(decision.threshold))


@settings(max_examples=80, deadline=None)
@given(cases, st.sampled_from(["f1", "cost"]))
def test_chosen_threshold_sits_inside_its_plateau(c: list[tuple[bool, int]], policy: str) -> None:
    """The chosen threshold gives the calib result of the best row, and lies strictly above the
    next lower distinct score and at most at the row's own score: the middle, not an edge."""
    y, p = np.array([int(b) for b, _ in c]), np.array([s / 20 for _, s in c])
    chooser = MaxFBeta(1.0) if policy == "f1" else MinCost()
    t = chooser.choose(y, p, Costs(fp=1, fn=5)).threshold
    distinct = np.unique(p)
    above = distinct[distinct >= t]
    below = distinct[distinct < t]
    if len(above) and len(below):
        assert below.max() < t < above.min() and t == pytest.approx((below.max() + above.min()) / 2)
