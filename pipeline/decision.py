"""Decision threshold policies, chosen on the calib split and applied to test."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.model_selection import FixedThresholdClassifier

from pipeline.errors import ConfigError


@dataclass(frozen=True)
class Costs:
    """Cost of one false positive and of one false negative."""

    fp: float
    fn: float

    def __post_init__(self) -> None:
        for key, value in (("costs.fp", self.fp), ("costs.fn", self.fn)):
            if not 0 <= value < float("inf"):
                raise ConfigError(key, value, "a finite cost >= 0, with costs.fp + costs.fn > 0")
        if self.fp + self.fn <= 0:
            raise ConfigError("costs.fp+costs.fn", self.fp + self.fn, "a sum > 0")

    @property
    def bayes_threshold(self) -> float:
        """cFP / (cFP + cFN): the cost-optimal threshold on calibrated probabilities."""
        return self.fp / (self.fp + self.fn)


@dataclass(frozen=True)
class Decision:
    """The chosen threshold (predict positive when score >= threshold) and what led to it."""

    threshold: float
    info: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ThresholdTable:
    """Confusion counts at every distinct score, highest first: predicting positive at
    ``score >= thresholds[i]`` gives ``tp[i]`` and ``fp[i]``. The last row predicts nothing.
    Policies choose a row and return its ``cuts`` value, the middle of the row's plateau."""

    thresholds: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    n_pos: int
    n_neg: int

    @classmethod
    def of(cls, y: np.ndarray, scores: np.ndarray) -> ThresholdTable:
        order = np.argsort(-scores, kind="stable")
        s, t = scores[order], np.asarray(y)[order] == 1
        last_of_value = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
        tp, fp = np.cumsum(t)[last_of_value], np.cumsum(~t)[last_of_value]
        above_all = np.nextafter(s[0], np.inf)
        return cls(np.r_[s[last_of_value], above_all], np.r_[tp, 0], np.r_[fp, 0], int(t.sum()), int((~t).sum()))

    @property
    def cuts(self) -> np.ndarray:
        """For each row, the threshold in the middle of its plateau: every threshold in
        ``(thresholds[i + 1], thresholds[i]]`` gives the same calib result, so the midpoint of
        that interval leans on neither neighbouring score. The lowest score has no lower
        neighbour and stays itself; the predict-nothing row stays just above the highest score."""
        t = self.thresholds
        upper, lower = t[:-2], t[1:-1]
        mid = (upper + lower) / 2
        mid = np.where(mid > lower, mid, upper)  # neighbours one float apart: no room between them
        return np.r_[mid, t[-2:]]

    @property
    def recall(self) -> np.ndarray:
        return self.tp / max(self.n_pos, 1)

    @property
    def precision(self) -> np.ndarray:
        predicted = self.tp + self.fp
        return np.divide(self.tp, predicted, out=np.ones_like(self.recall), where=predicted > 0)

    def cost(self, costs: Costs) -> np.ndarray:
        """Expected cost per case at each threshold."""
        return (costs.fp * self.fp + costs.fn * (self.n_pos - self.tp)) / (self.n_pos + self.n_neg)


class Fixed:
    """A fixed threshold (0.5 by default)."""

    def __init__(self, value: float = 0.5) -> None:
        self.value = value

    def choose(self, y: np.ndarray, scores: np.ndarray, costs: Costs) -> Decision:
        if not 0.0 <= self.value <= 1.0:
            raise ConfigError("threshold.value", self.value, "a number in [0, 1]")
        return Decision(float(self.value))


class MaxFBeta:
    """The threshold that maximises F-beta on calib (beta = 1: F1, beta = 2: F2)."""

    def __init__(self, beta: float = 1.0) -> None:
        self.beta = beta

    def choose(self, y: np.ndarray, scores: np.ndarray, costs: Costs) -> Decision:
        if not self.beta > 0:
            raise ConfigError("threshold.beta", self.beta, "a number > 0")
        table = ThresholdTable.of(y, scores)
        b2, p, r = self.beta**2, table.precision, table.recall
        f = np.divide((1 + b2) * p * r, b2 * p + r, out=np.zeros_like(r), where=(b2 * p + r) > 0)
        best = int(np.argmax(f))
        return Decision(float(table.cuts[best]), {"calib/f_beta": float(f[best])})


class RecallAtPrecision:
    """The threshold with the highest recall among those with precision >= ``min_precision``
    on calib; if none reaches it, the threshold of highest precision (and the tag says so)."""

    def __init__(self, min_precision: float = 0.9) -> None:
        self.min_precision = min_precision

    def choose(self, y: np.ndarray, scores: np.ndarray, costs: Costs) -> Decision:
        if not 0.0 < self.min_precision <= 1.0:
            raise ConfigError("threshold.min_precision", self.min_precision, "a number in (0, 1]")
        table = ThresholdTable.of(y, scores)
        ok = (table.precision >= self.min_precision) & (table.tp > 0)
        best = int(np.argmax(np.where(ok, table.recall, -1.0))) if ok.any() else int(np.argmax(table.precision[:-1]))
        info = {"calib/precision": float(table.precision[best]), "calib/recall": float(table.recall[best])}
        return Decision(float(table.cuts[best]), {**info, "calib/precision_target_met": float(ok.any())})


class PrecisionAtRecall:
    """The threshold with the highest precision among those with recall >= ``min_recall`` on calib."""

    def __init__(self, min_recall: float = 0.9) -> None:
        self.min_recall = min_recall

    def choose(self, y: np.ndarray, scores: np.ndarray, costs: Costs) -> Decision:
        if not 0.0 < self.min_recall <= 1.0:
            raise ConfigError("threshold.min_recall", self.min_recall, "a number in (0, 1]")
        table = ThresholdTable.of(y, scores)
        ok = table.recall >= self.min_recall
        best = int(np.argmax(np.where(ok, table.precision, -1.0)))
        info = {"calib/precision": float(table.precision[best]), "calib/recall": float(table.recall[best])}
        return Decision(float(table.cuts[best]), info)


class MinCost:
    """The threshold with the lowest expected cost on calib; also reports the Bayes threshold."""

    def choose(self, y: np.ndarray, scores: np.ndarray, costs: Costs) -> Decision:
        table = ThresholdTable.of(y, scores)
        cost = table.cost(costs)
        best = int(np.argmin(cost))
        info = {"calib/expected_cost": float(cost[best]), "calib/bayes_threshold": costs.bayes_threshold}
        return Decision(float(table.cuts[best]), info)


class Decider(FixedThresholdClassifier):
    """A fitted, calibrated model with the threshold its run chose on calib: what a run logs
    and the DVC train stage writes, so that ``predict`` decides as the run measured and
    ``predict_proba`` gives the calibrated probabilities (scikit-learn's own
    ``FixedThresholdClassifier``, which applies ``score >= threshold`` as our metrics do).

    Parameters
    ----------
    estimator : a fitted classifier with ``predict_proba``; it is never refitted.
    threshold : the decision threshold on the positive-class probability.
    policy : the threshold policy that chose it (``threshold.name``).
    info : what the policy reported on calib (``calib/f_beta``, ``calib/bayes_threshold``, ...).
    warnings : notes the run carries (e.g. isotonic calibration on few positives).
    """

    def __init__(
        self,
        estimator: Any = None,
        *,
        threshold: float = 0.5,
        policy: str = "fixed",
        info: dict[str, float] | None = None,
        warnings: list[str] | None = None,
    ) -> None:
        super().__init__(estimator, threshold=threshold, response_method="predict_proba")
        self.policy = policy
        self.info = info
        self.warnings = warnings

    @property
    def decision(self) -> Decision:
        return Decision(float(self.threshold), dict(self.info or {}))

    @property
    def inner(self) -> Any:
        """The fix + model pipeline fitted on train, under the calibration wrappers (each
        of which, frozen, prior-corrected or calibrated, holds its model as ``estimator``)."""
        from imblearn.pipeline import Pipeline

        model = self.estimator
        while not isinstance(model, Pipeline):
            model = model.estimator
        return model
