"""Fixes: weights, resampling ratios, applicability, and scikit-learn's estimator checks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from imblearn.over_sampling import SMOTE, RandomOverSampler
from imblearn.under_sampling import RandomUnderSampler
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks

from pipeline import fixes
from pipeline.errors import ConfigError


class WeightSpy(ClassifierMixin, BaseEstimator):
    """Records the sample weights it was fitted with."""

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> WeightSpy:
        self.classes_, self.sample_weight_ = np.unique(y), sample_weight
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        return np.full((len(X), 2), 0.5)


X10 = np.arange(20.0).reshape(10, 2)
Y10 = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0])


def test_balanced_weight_is_negatives_over_positives() -> None:
    fitted = fixes.Reweight(WeightSpy(), positive_weight="balanced").fit(X10, Y10)
    assert fitted.estimator_.sample_weight_.tolist() == [4.0, 4.0] + [1.0] * 8
    assert fitted.fit_positive_rate_ == pytest.approx(0.5)


def test_unit_weight_fits_unweighted_and_records_the_prior() -> None:
    fitted = fixes.Reweight(WeightSpy(), positive_weight=1.0).fit(X10, Y10)
    assert fitted.estimator_.sample_weight_ is None
    assert fitted.fit_positive_rate_ == pytest.approx(0.2)


@pytest.mark.parametrize("weight", [0, -1.0, "heavy"])
def test_bad_positive_weight_is_refused(weight: Any) -> None:
    with pytest.raises(ConfigError, match=r"fix\.positive_weight"):
        fixes.Reweight(WeightSpy(), positive_weight=weight).fit(X10, Y10)


def test_positive_ratio_adds_positives_or_drops_negatives() -> None:
    y = np.r_[np.ones(10), np.zeros(90)]
    assert fixes.PositiveRatio(0.5, "over-sampling")(y) == {1: 45}
    assert fixes.PositiveRatio(0.5, "under-sampling")(y) == {0: 20}
    balanced = np.r_[np.ones(51), np.zeros(50)]
    assert fixes.PositiveRatio(1.0, "over-sampling")(balanced) == {1: 51}  # already there: no-op
    assert fixes.PositiveRatio(1.0, "under-sampling")(balanced) == {0: 50}


@pytest.mark.parametrize("sampler", [RandomOverSampler(), RandomUnderSampler(), SMOTE(k_neighbors=3)])
@pytest.mark.parametrize("ratio", [1.0, 0.5])
def test_resampled_training_prior_is_the_requested_ratio(sampler: Any, ratio: float) -> None:
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(400, 2)), (rng.random(400) < 0.1).astype(int)
    pipe = fixes.compose(sampler.set_params(sampling_strategy=ratio), [], LogisticRegression(), seed=0)
    pipe.fit(X, y)
    assert pipe.named_steps["model"].fit_positive_rate_ == pytest.approx(ratio / (1 + ratio), abs=0.01)


def test_compose_seeds_every_random_state() -> None:
    pipe = fixes.compose(SMOTE(), [], LogisticRegression(), seed=7)
    states = {k: v for k, v in pipe.get_params().items() if k.endswith("random_state")}
    assert states and set(states.values()) == {7}


def test_smote_with_too_few_positives_is_refused_before_fitting() -> None:
    with pytest.raises(ConfigError, match=r"fix.k_neighbors=5 .*at most 3"):
        fixes.check_applicable(SMOTE(k_neighbors=5), np.r_[np.ones(4), np.zeros(50)])
    fixes.check_applicable(SMOTE(k_neighbors=3), np.r_[np.ones(4), np.zeros(50)])


@parametrize_with_checks([fixes.Reweight(LogisticRegression()), fixes.Reweight(LogisticRegression(), "balanced")])
def test_reweight_is_a_scikit_learn_estimator(estimator: Any, check: Any) -> None:
    check(estimator)
