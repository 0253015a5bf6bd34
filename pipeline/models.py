"""Models: what runs before the estimator, and how the final scores are read."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.preprocessing import StandardScaler


def preprocessing(scale: bool) -> list[tuple[str, Any]]:
    """Pipeline steps that go before the fix: standardisation for distance- and
    penalty-sensitive models (logreg, SMOTE's neighbours)."""
    return [("scale", StandardScaler())] if scale else []


def positive_scores(model: Any, X: Any) -> np.ndarray:
    """Probability of the positive class (label 1) from a fitted classifier."""
    proba = np.asarray(model.predict_proba(X))
    column = int(np.flatnonzero(np.asarray(model.classes_) == 1)[0])
    return proba[:, column].astype(np.float64)
