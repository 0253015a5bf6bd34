"""Models: the steps around the estimator, and how the final scores are read."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

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


def positive_scores(model: Any, X: Any) -> np.ndarray:
    """Probability of the positive class (label 1) from a fitted classifier."""
    proba = np.asarray(model.predict_proba(X))
    column = int(np.flatnonzero(np.asarray(model.classes_) == 1)[0])
    return proba[:, column].astype(np.float64)
