"""The data behind every plot, as plain JSON-ready dicts (plots.py only draws them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from pipeline.decision import Costs, ThresholdTable
from pipeline.metrics import N_BINS


def pr_curve(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, Any]:
    """Precision-recall curve, the prevalence line (a random model) and the operating point."""
    precision, recall, thresholds = skm.precision_recall_curve(y, p)
    pred = p >= threshold
    tp = float(np.sum(pred & (y == 1)))
    return {
        "recall": recall.tolist(),
        "precision": precision.tolist(),
        "thresholds": thresholds.tolist(),
        "prevalence": float(np.mean(y)),
        "pr_auc": float(skm.average_precision_score(y, p)),
        "operating_point": {
            "threshold": threshold,
            "recall": tp / max(float(np.sum(y == 1)), 1.0),
            "precision": tp / float(pred.sum()) if pred.any() else 1.0,
        },
    }


def roc_curve(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, Any]:
    """ROC curve and the operating point."""
    fpr, tpr, thresholds = skm.roc_curve(y, p)
    pred = p >= threshold
    return {
        "fpr": fpr.tolist(),
        "tpr": tpr.tolist(),
        "thresholds": np.nan_to_num(thresholds, posinf=1.0).tolist(),
        "roc_auc": float(skm.roc_auc_score(y, p)),
        "operating_point": {"fpr": float(pred[y == 0].mean()), "tpr": float(pred[y == 1].mean())},
    }


def cost_curve(y: np.ndarray, p: np.ndarray, costs: Costs, threshold: float) -> dict[str, Any]:
    """Expected cost per case at every distinct score used as threshold, with the chosen
    threshold and the Bayes threshold cFP / (cFP + cFN) marked."""
    table = ThresholdTable.of(y, p)
    last = len(table.thresholds) - 1  # the table's last row (predict nothing) has the highest threshold
    order = np.r_[last, np.arange(last)]  # so put it first: thresholds fall along the curve
    return {
        "threshold": np.minimum(table.thresholds, 1.0)[order].tolist(),
        "expected_cost": table.cost(costs)[order].tolist(),
        "chosen": threshold,
        "bayes": costs.bayes_threshold,
        "costs": {"fp": costs.fp, "fn": costs.fn},
    }


def score_histogram(y: np.ndarray, p: np.ndarray, n_bins: int = 30) -> dict[str, Any]:
    """Counts of test scores per class in ``n_bins`` equal-width bins over [0, 1]."""
    edges = np.linspace(0, 1, n_bins + 1)
    return {
        "edges": edges.tolist(),
        "negative": np.histogram(p[y == 0], edges)[0].tolist(),
        "positive": np.histogram(p[y == 1], edges)[0].tolist(),
    }


def reliability(y: np.ndarray, p: np.ndarray, n_bins: int = N_BINS) -> dict[str, Any]:
    """Mean score, observed positive rate and count per non-empty equal-width bin."""
    bins = np.minimum((np.asarray(p) * n_bins).astype(int), n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    used = count > 0
    score_sum, positives = np.bincount(bins, p, n_bins)[used], np.bincount(bins, y, n_bins)[used]
    return {
        "n_bins": n_bins,
        "mean_score": (score_sum / count[used]).tolist(),
        "observed": (positives / count[used]).tolist(),
        "count": count[used].tolist(),
    }


def reliability_by_group(y: np.ndarray, p: np.ndarray, subgroups: list[tuple[str, np.ndarray]]) -> dict[str, Any]:
    """The overall reliability curve and one per value of each subgroup column."""
    curves = {"overall": reliability(y, p)}
    for prefix, values in subgroups:
        for value in pd.unique(values):
            curves[f"{prefix}{value}"] = reliability(y[values == value], p[values == value])
    return curves


def boundary(
    score: Callable[[pd.DataFrame], np.ndarray], X: pd.DataFrame, y: np.ndarray, threshold: float, seed: int
) -> dict[str, Any] | None:
    """Scores on a 120 x 120 grid over two numeric features, plus a sample of the points.

    Returns None unless the data has exactly two numeric columns.
    """
    if X.shape[1] != 2 or not all(pd.api.types.is_numeric_dtype(t) for t in X.dtypes):
        return None
    lo, hi = X.min().to_numpy(), X.max().to_numpy()
    # 5% margins, out to a multiple of a round step: runs on the same data share axes (and plots.py
    # reuses one drawn canvas for them)
    step = 10.0 ** np.floor(np.log10(np.maximum(hi - lo, 1e-12))) / 2
    lo, hi = np.floor((lo - 0.05 * (hi - lo)) / step) * step, np.ceil((hi + 0.05 * (hi - lo)) / step) * step
    xs, ys = np.linspace(lo[0], hi[0], 120), np.linspace(lo[1], hi[1], 120)
    gx, gy = np.meshgrid(xs, ys)
    grid = pd.DataFrame({X.columns[0]: gx.ravel(), X.columns[1]: gy.ravel()})
    sample = _sample_points(y, 3000, seed)
    return {
        "columns": list(map(str, X.columns)),
        "x": xs.tolist(),
        "y": ys.tolist(),
        "score": score(grid).reshape(gx.shape).round(5).tolist(),
        "threshold": threshold,
        "points": {"x": X.iloc[sample, 0].tolist(), "y": X.iloc[sample, 1].tolist(), "label": y[sample].tolist()},
    }


def _sample_points(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """All positives and enough negatives to total ``n`` rows, so the rare class stays visible."""
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    rng = np.random.default_rng(seed)
    neg = rng.choice(neg, size=min(len(neg), max(n - len(pos), 0)), replace=False)
    return np.sort(np.concatenate([pos[:n], neg]))
