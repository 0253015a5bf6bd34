"""The bare script that benchmark 2 runs against the pipeline: what a competent user writes
with imbalanced-learn and scikit-learn alone for the same work: the same synthetic data, the
same stratified train / calib / test split, SMOTE + logistic regression, isotonic calibration
on calib, the minimum-expected-cost threshold chosen on calib, and the headline metrics.

Run: python -m benchmarks.bare_fraud [n_rows]   (prints one JSON line of metrics)
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
from imblearn.over_sampling import SMOTE
from imblearn.pipeline import make_pipeline
from sklearn import metrics
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from pipeline.datasets import fraud_synth

FP, FN, SEED = 1.0, 10.0, 0


def min_cost_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The score threshold with the lowest total cost on (y, p)."""
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    tp, fp = np.cumsum(ys), np.cumsum(1 - ys)
    cost = FP * fp + FN * (ys.sum() - tp)
    last = np.r_[np.flatnonzero(np.diff(ps)), len(ps) - 1]
    best = last[np.argmin(cost[last])]
    return float(ps[best])


def main(n_rows: int = 284_807) -> dict[str, float]:
    start = time.perf_counter()
    data = fraud_synth(n_rows=n_rows)
    X, y = data.X, data.y
    rest, X_test, y_rest, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=SEED)
    X_train, X_calib, y_train, y_calib = train_test_split(
        rest, y_rest, test_size=0.2 / 0.7, stratify=y_rest, random_state=SEED
    )
    model = make_pipeline(StandardScaler(), SMOTE(random_state=SEED), LogisticRegression(max_iter=1000))
    model.fit(X_train, y_train)
    calibrated = CalibratedClassifierCV(FrozenEstimator(model), method="isotonic").fit(X_calib, y_calib)
    threshold = min_cost_threshold(np.asarray(y_calib), calibrated.predict_proba(X_calib)[:, 1])
    p = calibrated.predict_proba(X_test)[:, 1]
    pred = (p >= threshold).astype(int)
    return {
        "pr_auc": metrics.average_precision_score(y_test, p),
        "roc_auc": metrics.roc_auc_score(y_test, p),
        "brier": metrics.brier_score_loss(y_test, p),
        "recall": metrics.recall_score(y_test, pred),
        "precision": metrics.precision_score(y_test, pred, zero_division=0),
        "f1": metrics.f1_score(y_test, pred),
        "expected_cost": float(
            (FP * ((pred == 1) & (y_test == 0)).sum() + FN * ((pred == 0) & (y_test == 1)).sum()) / len(y_test)
        ),
        "threshold": threshold,
        "work_s": time.perf_counter() - start,  # after the imports: data, split, fit, calibration, metrics
    }


if __name__ == "__main__":
    print(json.dumps(main(*map(int, sys.argv[1:]))))
