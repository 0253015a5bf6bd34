"""blobs2d, the positive rate, the split, and the invariants that hold them together."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import data
from pipeline.errors import ConfigError


@pytest.fixture(scope="module")
def blobs() -> data.Dataset:
    return data.make_blobs2d()


def test_blobs2d_shape_rate_and_groups(blobs: data.Dataset) -> None:
    assert blobs.X.shape == (20000, 2) and list(blobs.X.columns) == ["x1", "x2"]
    assert blobs.y.mean() == pytest.approx(0.3, abs=0.01)
    group = blobs.groups["group"].to_numpy()
    assert set(group) == {"a", "b"} and (group == "b").mean() == pytest.approx(0.3, abs=0.01)
    odds = {g: blobs.y[group == g].mean() / (1 - blobs.y[group == g].mean()) for g in "ab"}
    assert odds["b"] / odds["a"] == pytest.approx(5.0, rel=0.15)
    # group b sits lower on x2 for both classes
    for label in (0, 1):
        rows = blobs.y == label
        assert blobs.X.x2[rows & (group == "b")].mean() < blobs.X.x2[rows & (group == "a")].mean() - 0.5


def test_blobs2d_is_deterministic(blobs: data.Dataset) -> None:
    again = data.make_blobs2d()
    assert again.X.equals(blobs.X) and np.array_equal(again.y, blobs.y)


@pytest.mark.parametrize("rate", [0.5, 0.2, 0.05, 0.01])
def test_set_positive_rate_hits_the_rate_and_keeps_the_other_class(blobs: data.Dataset, rate: float) -> None:
    out = data.set_positive_rate(blobs, rate, seed=0)
    assert out.y.mean() == pytest.approx(rate, abs=1 / len(out.y))
    kept_whole = 0 if rate < blobs.y.mean() else 1
    assert np.sum(out.y == kept_whole) == np.sum(blobs.y == kept_whole)
    assert out.X.index.is_monotonic_increasing and set(out.X.index) <= set(blobs.X.index)


@pytest.mark.parametrize("rate", [0.0, 1.0, -0.1, 1.5])
def test_positive_rate_outside_open_interval_is_refused(blobs: data.Dataset, rate: float) -> None:
    with pytest.raises(ConfigError, match=r"imbalance.positive_rate=.*\(0, 1\)"):
        data.set_positive_rate(blobs, rate, seed=0)


@pytest.mark.parametrize("seed", range(5))
def test_one_percent_leaves_twenty_positives_in_calib_and_test(blobs: data.Dataset, seed: int) -> None:
    splits = data.split(data.set_positive_rate(blobs, 0.01, seed), 0.2, 0.3, seed)
    assert splits.calib.y.sum() >= 20 and splits.test.y.sum() >= 20
    data.check_positives(splits, 20, 0.01)


def test_split_is_a_stratified_partition(blobs: data.Dataset) -> None:
    ds = data.set_positive_rate(blobs, 0.05, 1)
    s = data.split(ds, 0.2, 0.3, seed=1)
    parts = [s.train.X.index, s.calib.X.index, s.test.X.index]
    assert sum(map(len, parts)) == len(ds.y) and len(set().union(*map(set, parts))) == len(ds.y)
    assert len(s.test.y) == pytest.approx(0.3 * len(ds.y), abs=1)
    assert len(s.calib.y) == pytest.approx(0.2 * len(ds.y), abs=1)
    for part in (s.train, s.calib, s.test):
        assert part.y.sum() == pytest.approx(0.05 * len(part.y), abs=1)
        assert np.array_equal(part.y, ds.y[np.searchsorted(ds.X.index, part.X.index)])


def test_split_is_seeded(blobs: data.Dataset) -> None:
    ds = data.set_positive_rate(blobs, 0.1, 0)
    a, b, c = (data.split(ds, 0.2, 0.3, seed) for seed in (0, 0, 1))
    assert a.test.X.index.equals(b.test.X.index) and a.fingerprint == b.fingerprint
    assert not a.test.X.index.equals(c.test.X.index) and a.fingerprint != c.fingerprint


def test_too_few_positives_is_refused_with_the_counts(blobs: data.Dataset) -> None:
    splits = data.split(data.set_positive_rate(blobs, 0.001, 0), 0.2, 0.3, 0)
    with pytest.raises(ConfigError, match=r"imbalance.positive_rate=0.001 .*'calib': 3"):
        data.check_positives(splits, 20, 0.001)


@pytest.mark.parametrize("calib,test", [(0.5, 0.5), (0.0, 0.3), (0.2, 1.0)])
def test_bad_split_fractions_are_refused(blobs: data.Dataset, calib: float, test: float) -> None:
    with pytest.raises(ConfigError, match=r"split\.calib"):
        data.split(blobs, calib, test, 0)
