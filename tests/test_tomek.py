"""The fast Tomek-link sampler removes exactly the rows imbalanced-learn's removes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from imblearn.combine import SMOTETomek
from imblearn.under_sampling import TomekLinks
from imblearn.utils.estimator_checks import parametrize_with_checks as imblearn_checks
from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

from pipeline.tomek import FastTomekLinks

#: Above this many rows the fast path runs (below it the full query is as cheap).
FAST_FROM = 4 * 256 * _openmp_effective_n_threads() + 1


def _data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random data full of ties: integer grids, coarsely rounded normals, duplicated rows
    (some with the other label); 1 to 3 features use a tree search, 20 and 31 the brute one."""
    rng = np.random.default_rng(seed)
    n, d = int(rng.integers(FAST_FROM, FAST_FROM + 3000)), int(rng.choice([1, 2, 3, 20, 31]))
    if seed % 3 == 1:
        X = rng.integers(0, 4, (n, d)).astype(float)
    else:
        X = rng.normal(size=(n, d)).round(int(rng.integers(0, 3)))
    if seed % 3 == 0:
        X = np.vstack([X, X[: n // 4]])
    y = (rng.random(len(X)) < rng.uniform(0.01, 0.3)).astype(int)
    return X, y


@pytest.mark.parametrize("seed", range(24))
@pytest.mark.parametrize("strategy", ["auto", "all"])
def test_fast_tomek_removes_exactly_what_imblearn_removes(seed: int, strategy: str) -> None:
    X, y = _data(seed)
    reference, fast = TomekLinks(sampling_strategy=strategy), FastTomekLinks(sampling_strategy=strategy)
    Xr, yr = reference.fit_resample(X, y)
    Xf, yf = fast.fit_resample(X, y)
    assert np.array_equal(fast.sample_indices_, reference.sample_indices_)
    assert np.array_equal(Xf, Xr) and np.array_equal(yf, yr)
    assert fast.n_queries_ < len(y)  # the fast path ran
    if strategy == "auto":
        assert yf.sum() == y.sum()  # only the majority class is cleaned


def test_only_rows_near_a_tie_are_asked_in_the_full_querys_shape() -> None:
    """Continuous data (brute search, 25 features) with some rows duplicated: most rows get
    their answer from the plain query, the duplicated ones from the exact one; same rows kept."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(FAST_FROM + 1500, 25))
    X[-40:] = X[:40]  # duplicates, some across the classes
    y = (rng.random(len(X)) < 0.05).astype(int)
    y[:20] = 1
    reference, fast = TomekLinks(), FastTomekLinks()
    reference.fit_resample(X, y)
    fast.fit_resample(X, y)
    assert np.array_equal(fast.sample_indices_, reference.sample_indices_)
    assert 0 < fast.n_exact_ < fast.n_queries_ / 4


def test_few_rows_or_three_classes_take_the_full_query_and_agree() -> None:
    rng = np.random.default_rng(0)
    X = rng.integers(0, 3, (300, 2)).astype(float)
    for y in ((rng.random(300) < 0.2).astype(int), rng.integers(0, 3, 300)):
        fast = FastTomekLinks()
        fast.fit_resample(X, y)
        assert np.array_equal(fast.sample_indices_, _reference(X, y))
        assert fast.n_queries_ == len(y)


def _reference(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    sampler = TomekLinks()
    sampler.fit_resample(X, y)
    return np.asarray(sampler.sample_indices_)


def test_smote_tomek_with_the_fast_search_gives_the_same_rows() -> None:
    X, y = _data(5)
    ours = SMOTETomek(tomek=FastTomekLinks(sampling_strategy="all"), random_state=0).fit_resample(X, y)
    theirs = SMOTETomek(random_state=0).fit_resample(X, y)
    assert np.array_equal(ours[0], theirs[0]) and np.array_equal(ours[1], theirs[1])


@imblearn_checks([FastTomekLinks()])
def test_fast_tomek_passes_imblearns_checks(estimator: object, check: Callable[[object], None]) -> None:
    check(estimator)
