"""Models: the steps around the estimator, and how the final scores are read."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from pipeline.errors import ConfigError
from pipeline.fixes import BinaryOnly

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


def recall_threshold(positive: np.ndarray, scores: np.ndarray, recall: float) -> float:
    """The highest threshold t with recall(scores >= t) >= ``recall`` on these rows."""
    pos = np.sort(scores[positive])[::-1]
    if len(pos) == 0:
        return float(np.min(scores))
    keep = max(int(np.ceil(recall * len(pos) - 1e-9)), 1)  # positives that must stay above t
    return float(pos[keep - 1])


class Cascade(BinaryOnly, ClassifierMixin, BaseEstimator):
    """Two stages. Stage 1, a cheap model, filters out obvious negatives: rows it scores below
    ``threshold_`` are done; stage 2, an expensive model, scores the rest.

    ``fit`` sets a first threshold from stage 1's out-of-fold training scores (keep recall >=
    ``stage1_recall``) and trains stage 2 on the training rows that pass it (the hard rows, far
    less imbalanced). ``tune`` then sets the threshold on the calibration split, which is what
    the pipeline calls before calibrating. Filtered rows keep stage 1's probability, passed rows
    get stage 2's; the calibration step puts both on one scale.

    Attributes
    ----------
    threshold_ : stage 1's threshold; ``diagnostics_``: calib recall and filtered share.
    """

    def __init__(self, stage1: Any = None, stage2: Any = None, stage1_recall: float = 0.99, cv: int = 3,
                 random_state: Any = None) -> None:  # fmt: skip
        self.stage1 = stage1
        self.stage2 = stage2
        self.stage1_recall = stage1_recall
        self.cv = cv
        self.random_state = random_state

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> Cascade:
        X, y = self._binary_data(X, y)
        if not 0 < self.stage1_recall <= 1:
            raise ConfigError("model.stage1_recall", self.stage1_recall, "a recall in (0, 1]")
        positive = y == self.classes_[1]
        params = {} if sample_weight is None else {"sample_weight": np.asarray(sample_weight)}
        folds = StratifiedKFold(min(self.cv, int(positive.sum()), int((~positive).sum())), shuffle=True,
                                random_state=self.random_state)  # fmt: skip
        oof = cross_val_predict(clone(self.stage1), X, y, cv=folds, method="predict_proba", params=params)[:, 1]
        self.threshold_ = recall_threshold(positive, oof, self.stage1_recall)
        passed = oof >= self.threshold_
        if len(np.unique(y[passed])) < 2:  # stage 1 passes one class only: stage 2 sees everything
            passed[:] = True
        self.stage1_ = clone(self.stage1).fit(X, y, **params)
        rest = {k: v[passed] for k, v in params.items()}
        self.stage2_ = clone(self.stage2).fit(X[passed], y[passed], **rest)
        self.diagnostics_ = {"stage1_train_passed_share": float(passed.mean())}
        return self

    def tune(self, X: Any, y: Any) -> Cascade:
        """Set stage 1's threshold on held-out rows (the calibration split)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        positive = np.asarray(y) == self.classes_[1]
        s1 = self.stage1_.predict_proba(X)[:, 1]
        self.threshold_ = recall_threshold(positive, s1, self.stage1_recall)
        self.diagnostics_["stage1_threshold"] = self.threshold_
        self.diagnostics_.update({f"calib_{k}": v for k, v in self.diagnose(X, y).items()})
        return self

    def diagnose(self, X: Any, y: Any) -> dict[str, float]:
        """The share of rows stage 1 filtered out and the recall that cost (positives filtered)."""
        passed = self._passed(X)
        positive = np.asarray(y) == self.classes_[1]
        lost = float((~passed[positive]).mean()) if positive.any() else 0.0
        return {"stage1_filtered_share": float((~passed).mean()), "stage1_recall_lost": lost}

    def _passed(self, X: Any) -> np.ndarray:
        X = validate_data(self, X, reset=False)
        return np.asarray(self.stage1_.predict_proba(X)[:, 1] >= self.threshold_)

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        p = self.stage1_.predict_proba(X)[:, 1].astype(np.float64)
        passed = p >= self.threshold_
        if passed.any():  # stage 2 only sees the rows stage 1 passes: that is the saving
            p[passed] = self.stage2_.predict_proba(X[passed])[:, 1]
        return np.column_stack([1 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)])


def model_inputs(pipe: Any, X: Any) -> Any:
    """``X`` as the fitted pipeline's model step sees it (samplers act in fit only)."""
    for _, step in pipe.steps[:-1]:
        if step not in (None, "passthrough") and not hasattr(step, "fit_resample"):
            X = step.transform(X)
    return X


def cascade_of(pipe: Any) -> Cascade | None:
    """The fitted Cascade inside the pipeline's model step (under any fix wrapper), if any."""
    model = pipe.named_steps["model"]
    while not isinstance(model, Cascade) and hasattr(model, "estimator_"):
        model = model.estimator_
    return model if isinstance(model, Cascade) else None
