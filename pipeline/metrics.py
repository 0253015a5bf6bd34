"""The metric suite: pure functions of labels, scores, a threshold, costs and groups.

Accuracy is never reported alone: ``baseline_accuracy`` (always predicting the majority
class) stands beside it.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from pipeline.decision import Costs, ThresholdTable

N_BINS = 15


def ece(y: np.ndarray, p: np.ndarray, n_bins: int = N_BINS) -> float:
    """Expected calibration error with ``n_bins`` equal-width bins (default 15) on [0, 1] over
    the positive-class probability: sum over bins of (bin share) x |mean label - mean score|.
    A score of exactly 1.0 falls in the last bin."""
    bins = np.minimum((np.asarray(p) * n_bins).astype(int), n_bins - 1)
    gap = np.bincount(bins, weights=np.asarray(y) - p, minlength=n_bins)
    return float(np.abs(gap).sum() / len(p))


def recall_at_precision(y: np.ndarray, p: np.ndarray, min_precision: float) -> float:
    """The highest recall reached at any threshold with precision >= ``min_precision`` (0 if none)."""
    table = ThresholdTable.of(y, p)
    ok = (table.precision >= min_precision) & (table.tp > 0)
    return float(table.recall[ok].max()) if ok.any() else 0.0


def expected_cost(y: np.ndarray, pred: np.ndarray, costs: Costs) -> float:
    """Mean cost per case of the 0/1 decisions ``pred``."""
    fp = np.sum((pred == 1) & (y == 0))
    fn = np.sum((pred == 0) & (y == 1))
    return float((costs.fp * fp + costs.fn * fn) / len(y))


def suite(y: np.ndarray, p: np.ndarray, threshold: float, costs: Costs) -> dict[str, float]:
    """Every headline metric of scores ``p`` on labels ``y`` at ``threshold``."""
    pred = (p >= threshold).astype(int)
    prevalence = float(np.mean(y))
    return {
        "accuracy": skm.accuracy_score(y, pred),
        "baseline_accuracy": max(prevalence, 1 - prevalence),
        "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred, zero_division=0),
        "recall": skm.recall_score(y, pred, zero_division=0),
        "f1": skm.f1_score(y, pred, zero_division=0),
        "f2": skm.fbeta_score(y, pred, beta=2, zero_division=0),
        "mcc": skm.matthews_corrcoef(y, pred),
        "pr_auc": skm.average_precision_score(y, p),
        "roc_auc": skm.roc_auc_score(y, p),
        "recall_at_p90": recall_at_precision(y, p, 0.9),
        "expected_cost": expected_cost(y, pred, costs),
        "brier": skm.brier_score_loss(y, p),
        "log_loss": skm.log_loss(y, p, labels=[0, 1]),
        "ece": ece(y, p),
        "prevalence": prevalence,
        "predicted_positive_rate": float(pred.mean()),
    }


def by_group(y: np.ndarray, p: np.ndarray, threshold: float, values: np.ndarray, prefix: str = "") -> dict[str, float]:
    """Per value ``v`` of the subgroup column ``values``: ``v/n``, ``v/prevalence``, ``v/pr_auc``,
    ``v/recall``, ``v/ece``, ``v/brier`` (keys start with ``prefix``). Metrics undefined in a group
    (pr_auc or recall with no positives) are left out."""
    out: dict[str, float] = {}
    for value in pd.unique(values):
        mask = values == value
        yg, pg = y[mask], p[mask]
        key = metric_key(f"{prefix}{value}")
        out[f"{key}/n"] = float(mask.sum())
        out[f"{key}/prevalence"] = float(yg.mean())
        out[f"{key}/ece"] = ece(yg, pg)
        out[f"{key}/brier"] = float(skm.brier_score_loss(yg, pg, labels=[0, 1]))
        if 0 < yg.sum() < len(yg):
            out[f"{key}/pr_auc"] = float(skm.average_precision_score(yg, pg))
            out[f"{key}/recall"] = float(np.mean(pg[yg == 1] >= threshold))
    return out


def metric_key(text: str) -> str:
    """``text`` made safe for an MLflow metric name."""
    return re.sub(r"[^0-9A-Za-z_\-. ]", "_", text) or "_"
