"""Models: the steps around the estimator, and how the final scores are read."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

Steps = list[tuple[str, Any]]


def preprocessing(scale: bool, numeric: list[str], categorical: list[str], impute: str | None) -> tuple[Steps, Steps]:
    """Steps before the fix and after it.

    Before: impute (if asked) and standardise the numeric columns (for penalised models and
    SMOTE's distances). After: one-hot encode the categorical columns, so that samplers see
    them as categories and the model sees numbers. All are fitted on train rows only.
    """
    if not categorical and not impute:
        return ([("scale", StandardScaler())] if scale else []), []
    numeric_steps = [SimpleImputer(strategy=impute)] if impute else []
    numeric_steps += [StandardScaler()] if scale else []
    parts = [("numeric", make_pipeline(*numeric_steps) if numeric_steps else "passthrough", numeric)]
    if categorical:
        parts.append(("categorical", SimpleImputer(strategy="most_frequent") if impute else "passthrough", categorical))
    before = ColumnTransformer(parts, verbose_feature_names_out=False).set_output(transform="pandas")
    if not categorical:
        return [("prepare", before)], []
    onehot = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    after = ColumnTransformer([("onehot", onehot, categorical)], remainder="passthrough")
    return [("prepare", before)], [("encode", after)]


class AnomalyClassifier(ClassifierMixin, BaseEstimator):
    """The anomaly-detection frame: fit ``detector`` on the training negatives only and score
    how anomalous each row is. ``predict_proba`` is a logistic squashing of the standardised
    anomaly score: it ranks, but it is not a probability until the calibration step makes it one
    (use ``calibration=platt`` or ``isotonic``).
    """

    def __init__(self, detector: Any = None) -> None:
        self.detector = detector

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> AnomalyClassifier:
        X, y = validate_data(self, X, y)
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        normal = y == self.classes_[0]
        self.detector_ = clone(self.detector)
        if sample_weight is None:
            self.detector_.fit(X[normal])
        else:
            self.detector_.fit(X[normal], sample_weight=np.asarray(sample_weight)[normal])
        train = -self.detector_.score_samples(X[normal])
        self.centre_, self.spread_ = float(np.mean(train)), float(np.std(train) or 1.0)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        p = expit((-self.detector_.score_samples(X) - self.centre_) / self.spread_)
        return np.column_stack([1 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)])


def positive_scores(model: Any, X: Any) -> np.ndarray:
    """Probability of the positive class (label 1) from a fitted classifier."""
    proba = np.asarray(model.predict_proba(X))
    column = int(np.flatnonzero(np.asarray(model.classes_) == 1)[0])
    return proba[:, column].astype(np.float64)
