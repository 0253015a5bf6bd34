"""Fixes: how a fix and a model compose into one leakage-safe imblearn Pipeline.

A fix is either an imblearn sampler (a step before the model: it acts in ``fit`` only, so it
never touches calib or test rows) or a meta-estimator with an ``estimator`` parameter that
wraps the model (re-weighting now; MetaCost and cascades later).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from imblearn.pipeline import Pipeline
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from pipeline.errors import ConfigError


class Reweight(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """Fit ``estimator`` with every positive row weighted ``positive_weight`` (negatives weigh 1).

    Parameters
    ----------
    estimator : classifier accepting ``sample_weight`` in ``fit``.
    positive_weight : float or "balanced"
        "balanced" means N_neg / N_pos of the data ``fit`` sees; 1.0 fits unweighted.

    Attributes
    ----------
    fit_positive_rate_ : float
        The weighted positive rate the estimator was fitted under: the prior that
        calibration by prior correction must undo.
    """

    def __init__(self, estimator: Any = None, positive_weight: float | str = 1.0) -> None:
        self.estimator = estimator
        self.positive_weight = positive_weight

    def fit(self, X: Any, y: Any) -> Reweight:
        X, y = validate_data(self, X, y, ensure_all_finite=False, dtype=None)
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        if self.estimator is None:
            raise ConfigError("fix.estimator", None, "a classifier to wrap")
        weights = self._weights(y)
        self.estimator_ = clone(self.estimator)
        if weights is None:
            self.estimator_.fit(X, y)
        else:
            self.estimator_.fit(X, y, sample_weight=weights)
        # a model that balances its own samples (self_paced_ensemble, ...) reports the prior it learnt
        learnt = getattr(self.estimator_, "fit_positive_rate_", None)
        if learnt is None:
            learnt = resampling_prior(self.estimator_)
        if learnt is None:
            learnt = np.average(y == self.classes_[-1], weights=weights)
        self.fit_positive_rate_ = float(learnt)
        return self

    def _weights(self, y: np.ndarray) -> np.ndarray | None:
        positive = y == self.classes_[-1]
        if self.positive_weight == "balanced":
            weight = (~positive).sum() / max(positive.sum(), 1)
        elif isinstance(self.positive_weight, (int, float)) and self.positive_weight > 0:
            weight = float(self.positive_weight)
        else:
            raise ConfigError("fix.positive_weight", self.positive_weight, '"balanced" or a number > 0')
        return None if weight == 1.0 else np.where(positive, weight, 1.0)

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, ensure_all_finite=False, dtype=None)
        return np.asarray(self.estimator_.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        return np.asarray(self.classes_[np.argmax(self.predict_proba(X), axis=1)])


def resampling_prior(estimator: Any) -> float | None:
    """The positive rate the members of an imbalanced-learn bagging ensemble learn under: each
    draws an under-sampled sample to its ``sampling_strategy`` (balanced for the string forms,
    minority / majority = r for a number r). None for anything else. RUSBoost is left out: its
    boosted scores are no posterior to correct, so use platt or isotonic with it."""
    from imblearn.ensemble import BalancedBaggingClassifier, BalancedRandomForestClassifier, EasyEnsembleClassifier

    if not isinstance(estimator, (BalancedBaggingClassifier, BalancedRandomForestClassifier, EasyEnsembleClassifier)):
        return None
    strategy = estimator.sampling_strategy
    if isinstance(strategy, str) and strategy in ("auto", "all", "majority", "not minority"):
        return 0.5
    if isinstance(strategy, (int, float)) and not isinstance(strategy, bool) and strategy > 0:
        return float(strategy) / (1.0 + float(strategy))
    return None  # a dict or a callable: the prior depends on the data; not guessed


class PositiveRatio:
    """A ``sampling_strategy`` callable: resample until positives / negatives = ``ratio``.

    Over-samplers add positives, under-samplers drop negatives; where the training data
    already meets the ratio they leave it as it is (imblearn's float strategy raises there).
    """

    def __init__(self, ratio: float, sampling_type: str) -> None:
        self.ratio = ratio
        self.sampling_type = sampling_type

    def __call__(self, y: np.ndarray) -> dict[int, int]:
        n_pos, n_neg = int(np.sum(y == 1)), int(np.sum(y == 0))
        if self.sampling_type == "over-sampling":
            return {1: max(n_pos, round(self.ratio * n_neg))}
        return {0: min(n_neg, max(round(n_pos / self.ratio), 1))}

    def __repr__(self) -> str:
        return f"PositiveRatio({self.ratio})"


def with_positive_ratio(sampler: Any) -> Any:
    """The sampler with a numeric ``sampling_strategy`` read as positives / negatives after resampling."""
    ratio = getattr(sampler, "sampling_strategy", None)
    kind = getattr(sampler, "_sampling_type", "")
    if (
        isinstance(ratio, bool)
        or not isinstance(ratio, (int, float))
        or kind not in ("over-sampling", "under-sampling")
    ):
        return sampler
    if not ratio > 0:
        raise ConfigError("fix.sampling_strategy", ratio, "a ratio positives / negatives > 0")
    return clone(sampler).set_params(sampling_strategy=PositiveRatio(float(ratio), kind))


class CostWeight(Reweight):
    """Cost-sensitive learning: each positive row weighs ``fn / fp`` (a missed positive costs
    ``fn``, a false alarm ``fp``).

    Parameters
    ----------
    estimator : classifier accepting ``sample_weight`` in ``fit``.
    fp, fn : float
        The costs (``costs.fp``, ``costs.fn``); both > 0.
    """

    def __init__(self, estimator: Any = None, fp: float = 1.0, fn: float = 1.0) -> None:
        self.estimator = estimator
        self.fp = fp
        self.fn = fn

    def _weights(self, y: np.ndarray) -> np.ndarray | None:
        if not (self.fp > 0 and self.fn > 0):
            raise ConfigError("costs.fp/costs.fn", f"{self.fp}/{self.fn}", "two costs > 0 for cost_weight")
        weight = self.fn / self.fp
        return None if weight == 1.0 else np.where(y == self.classes_[-1], weight, 1.0)


class BinaryOnly:
    """Mixin for classifiers of exactly two classes: the estimator tag, and the checks every
    ``fit`` starts with (``_binary_data``)."""

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()  # type: ignore[misc]
        tags.classifier_tags.multi_class = False
        return tags

    def _binary_data(self, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        X, y = validate_data(self, X, y)
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        if len(self.classes_) == 1:
            raise ValueError(f"{type(self).__name__} needs both classes in y; it has one class")
        if len(self.classes_) > 2:
            raise ValueError("Only binary classification is supported.")
        return X, y


class MetaCost(BinaryOnly, MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """MetaCost (Domingos 1999): estimate P(positive) for every training row by bagging
    ``estimator``, relabel each row to its minimum-expected-cost class (positive when
    P * fn > (1 - P) * fp), and fit ``estimator`` on the relabelled rows.

    Attributes
    ----------
    relabelled_ : ndarray, the labels the final estimator was fitted on.
    fit_positive_rate_ : float, their positive rate (the prior the model learnt).
    """

    def __init__(
        self, estimator: Any = None, fp: float = 1.0, fn: float = 1.0, n_bags: int = 10, random_state: Any = None
    ) -> None:
        self.estimator = estimator
        self.fp = fp
        self.fn = fn
        self.n_bags = n_bags
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> MetaCost:
        X, y = self._binary_data(X, y)  # costs are for a false positive and a false negative
        if not (self.fp > 0 and self.fn > 0 and self.n_bags >= 1):
            raise ConfigError(
                "fix.fp/fix.fn/fix.n_bags", f"{self.fp}/{self.fn}/{self.n_bags}", "costs > 0, n_bags >= 1"
            )
        rng = np.random.default_rng(check_random_state(self.random_state).randint(2**31))
        p = np.zeros(len(y))
        for _ in range(self.n_bags):
            rows = rng.integers(0, len(y), len(y))
            bag = clone(self.estimator).fit(X[rows], y[rows])
            p += np.asarray(bag.predict_proba(X))[:, -1] if len(np.unique(y[rows])) > 1 else float(y[rows][0] == 1)
        p /= self.n_bags
        self.relabelled_ = np.where(p * self.fn > (1 - p) * self.fp, self.classes_[-1], self.classes_[0])
        if len(np.unique(self.relabelled_)) < 2:
            raise ConfigError(
                "costs.fn/costs.fp", f"{self.fn}/{self.fp}", "costs under which both classes keep some rows",
                why="MetaCost relabelled every training row to one class",
            )  # fmt: skip
        self.estimator_ = clone(self.estimator).fit(X, self.relabelled_)
        self.fit_positive_rate_ = float(np.mean(self.relabelled_ == self.classes_[-1]))
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        return np.asarray(self.estimator_.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        return np.asarray(self.classes_[np.argmax(self.predict_proba(X), axis=1)])


def for_categorical(fix: Any, numeric: list[str], categorical: list[str]) -> Any:
    """SMOTE on data with categorical columns becomes SMOTENC (SMOTEN when every column is
    categorical), with the same neighbours and ratio; anything else is returned as it is."""
    from imblearn.over_sampling import SMOTE, SMOTEN, SMOTENC

    if not categorical or type(fix) is not SMOTE:
        return fix
    kwargs = {
        "sampling_strategy": fix.sampling_strategy,
        "k_neighbors": fix.k_neighbors,
        "random_state": fix.random_state,
    }
    return SMOTEN(**kwargs) if not numeric else SMOTENC(categorical_features=categorical, **kwargs)


def _measures_distances(sampler: Any) -> bool:
    if hasattr(sampler, "euclidean"):  # samplers of our own say so
        return bool(sampler.euclidean)
    if any(cls.__name__ == "TomekLinks" for cls in type(sampler).__mro__):  # nearest neighbours, no parameter
        return True
    params = sampler.get_params()
    return any(key.endswith(("k_neighbors", "n_neighbors", "smote", "enn", "estimator")) for key in params)


def is_sampler(fix: Any) -> bool:
    """True for an imblearn-style resampler (a pipeline step), False for a model wrapper."""
    return hasattr(fix, "fit_resample")


def compose(
    fix: Any, before: list[tuple[str, Any]], estimator: Any, seed: int, after: list[tuple[str, Any]] | None = None
) -> Pipeline:
    """``before -> [sampler] -> after -> model`` with every ``random_state`` inside set to ``seed``.

    Samplers come after ``before`` (imputation, scaling: SMOTE's neighbours use scaled
    distances) and before ``after`` (one-hot encoding: samplers see categories, not dummies).
    The model is always wrapped (``Reweight`` by default) so the fitted prior is recorded.
    """
    after = after or []
    if is_sampler(fix):
        steps = [*before, ("fix", with_positive_ratio(fix)), *after, ("model", Reweight(estimator))]
    else:
        steps = [*before, *after, ("model", clone(fix).set_params(estimator=estimator))]
    pipe = Pipeline(steps)
    seeds = {key: seed for key in pipe.get_params() if key.endswith("random_state")}
    return pipe.set_params(**seeds)


def check_applicable(fix: Any, y_train: np.ndarray, categorical: list[str] | None = None, name: str = "") -> None:
    """Refuse, before fitting, a fix that cannot work on this training data."""
    handles_categories = type(fix).__name__ in ("SMOTENC", "SMOTEN")
    if categorical and is_sampler(fix) and not handles_categories and _measures_distances(fix):
        raise ConfigError(
            "fix",
            name or type(fix).__name__,
            "smote (it becomes SMOTENC) or a fix that measures no distances (none, class_weight, random_over, ...)",
            why=f"it interpolates or compares Euclidean features; categorical columns: {', '.join(categorical)}",
        )
    k = getattr(fix, "k_neighbors", None)
    n_pos = int(np.sum(y_train == 1))
    if isinstance(k, int) and n_pos < k + 1:
        raise ConfigError(
            "fix.k_neighbors",
            k,
            f"at most {n_pos - 1} (the training split has {n_pos} positives; SMOTE needs k + 1)",
        )
