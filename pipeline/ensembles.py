"""Recursive under-sampling ensembles, as small scikit-learn classifiers of our own
(imbalanced-ensemble has them but pins scikit-learn 1.6 and imports openml and minio).

Both fit each base learner on all positives plus as many negatives, chosen by what the
ensemble so far finds hard, and predict the mean of the learners' probabilities. Every learner
sees a balanced sample, so ``fit_positive_rate_`` is 0.5: prior correction knows the shift.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from imblearn.ensemble import EasyEnsembleClassifier
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from pipeline.fixes import BinaryOnly


class _BalancedEnsemble(BinaryOnly, ClassifierMixin, BaseEstimator):
    """Shared fit loop: ``_pick_negatives`` says which negatives the next learner sees."""

    def fit(self, X: Any, y: Any) -> _BalancedEnsemble:
        X, y = self._binary_data(X, y)
        if not (isinstance(self.n_estimators, int) and self.n_estimators >= 1):
            raise ValueError(f"n_estimators must be a whole number >= 1, got {self.n_estimators!r}")
        rng = check_random_state(self.random_state)
        counts = np.bincount(np.searchsorted(self.classes_, y))
        self.minority_ = self.classes_[int(np.argmin(counts))]
        pos, neg = np.flatnonzero(y == self.minority_), np.flatnonzero(y != self.minority_)
        self.estimators_: list[Any] = []
        for i in range(self.n_estimators):
            chosen = self._pick_negatives(X, neg, len(pos), i, rng)
            rows = np.concatenate([pos, chosen])
            base = self.estimator if self.estimator is not None else DecisionTreeClassifier()
            learner = clone(base).set_params(**_seeded(base, rng))
            self.estimators_.append(learner.fit(X[rows], y[rows]))
        self.fit_positive_rate_ = 0.5
        return self

    def _pick_negatives(self, X: Any, neg: np.ndarray, n: int, i: int, rng: np.random.RandomState) -> np.ndarray:
        raise NotImplementedError

    def _minority_proba(self, X: Any) -> np.ndarray:
        column = [int(np.flatnonzero(e.classes_ == self.minority_)[0]) for e in self.estimators_]
        return np.mean([e.predict_proba(X)[:, c] for e, c in zip(self.estimators_, column, strict=True)], axis=0)

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        p = self._minority_proba(X)
        return np.column_stack([1 - p, p]) if self.minority_ == self.classes_[1] else np.column_stack([p, 1 - p])

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        return np.asarray(self.classes_[np.argmax(self.predict_proba(X), axis=1)])


def _seeded(estimator: Any, rng: np.random.RandomState) -> dict[str, int]:
    return {"random_state": int(rng.randint(2**31))} if "random_state" in estimator.get_params() else {}


class SelfPacedEnsemble(_BalancedEnsemble):
    """Self-paced ensemble (Liu et al. 2020): negatives are binned by hardness (|p - y| under the
    ensemble so far); each bin is sampled in proportion to 1 / (mean hardness + alpha), where the
    self-paced factor alpha = tan(i pi / 2n) grows over the rounds, moving from hard negatives
    towards an even spread.
    """

    def __init__(self, estimator: Any = None, n_estimators: int = 10, k_bins: int = 10, random_state: Any = None):
        self.estimator = estimator
        self.n_estimators = n_estimators
        self.k_bins = k_bins
        self.random_state = random_state

    def _pick_negatives(self, X: Any, neg: np.ndarray, n: int, i: int, rng: np.random.RandomState) -> np.ndarray:
        if i == 0 or len(neg) <= n:
            return rng.choice(neg, size=min(n, len(neg)), replace=False)
        hardness = self._minority_proba(X[neg])  # a negative's error is its minority probability
        edges = np.linspace(hardness.min(), hardness.max() + 1e-12, self.k_bins + 1)
        bins = np.clip(np.digitize(hardness, edges) - 1, 0, self.k_bins - 1)
        alpha = np.tan(np.pi * i / (2 * self.n_estimators))
        mean = np.array([hardness[bins == b].mean() if (bins == b).any() else np.inf for b in range(self.k_bins)])
        weight = np.where(np.isfinite(mean), 1 / (mean + alpha), 0.0)
        quota = np.minimum(np.round(n * weight / weight.sum()).astype(int), np.bincount(bins, minlength=self.k_bins))
        picks = [rng.choice(neg[bins == b], size=q, replace=False) for b, q in enumerate(quota) if q > 0]
        return np.concatenate(picks)


class BalanceCascade(_BalancedEnsemble):
    """Balance cascade (Liu et al. 2009): after each round, the negatives the ensemble already
    rejects most confidently leave the pool, keeping a share f = (n_pos / n_neg) ** (1 / (T - 1))
    per round, so later learners face ever harder negatives.
    """

    def __init__(self, estimator: Any = None, n_estimators: int = 10, random_state: Any = None):
        self.estimator = estimator
        self.n_estimators = n_estimators
        self.random_state = random_state

    def _pick_negatives(self, X: Any, neg: np.ndarray, n: int, i: int, rng: np.random.RandomState) -> np.ndarray:
        if i == 0:
            self.pool_ = neg
        else:
            keep_share = (n / len(neg)) ** (1 / max(self.n_estimators - 1, 1))
            keep = max(int(np.ceil(len(self.pool_) * keep_share)), min(n, len(self.pool_)))
            scores = self.estimators_[-1].predict_proba(X[self.pool_])[:, int(np.flatnonzero(
                self.estimators_[-1].classes_ == self.minority_)[0])]  # fmt: skip
            self.pool_ = self.pool_[np.argsort(-scores, kind="stable")[:keep]]  # the hardest stay
        return rng.choice(self.pool_, size=min(n, len(self.pool_)), replace=False)


class EasyEnsemble(EasyEnsembleClassifier):
    """``fix=easy_ensemble``: imbalanced-learn's EasyEnsemble around the run's model
    (``estimator``) instead of AdaBoost. Every learner sees a balanced sample, so
    ``fit_positive_rate_`` is 0.5, the prior that prior correction undoes."""

    def fit(self, X: Any, y: Any, **params: Any) -> EasyEnsemble:
        super().fit(X, y, **params)
        self.fit_positive_rate_ = 0.5
        return self
