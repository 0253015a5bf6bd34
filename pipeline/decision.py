"""Decision threshold policies, chosen on the calib split and applied to test."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.errors import ConfigError


@dataclass(frozen=True)
class Costs:
    """Cost of one false positive and of one false negative."""

    fp: float
    fn: float

    def __post_init__(self) -> None:
        for key, value in (("costs.fp", self.fp), ("costs.fn", self.fn)):
            if not value >= 0:
                raise ConfigError(key, value, "a cost >= 0, with costs.fp + costs.fn > 0")
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
    ``score >= thresholds[i]`` gives ``tp[i]`` and ``fp[i]``. The last row predicts nothing."""

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
        return Decision(float(table.thresholds[best]), {"calib/f_beta": float(f[best])})


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
        return Decision(float(table.thresholds[best]), {**info, "calib/precision_target_met": float(ok.any())})


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
        return Decision(float(table.thresholds[best]), info)


class MinCost:
    """The threshold with the lowest expected cost on calib; also reports the Bayes threshold."""

    def choose(self, y: np.ndarray, scores: np.ndarray, costs: Costs) -> Decision:
        table = ThresholdTable.of(y, scores)
        cost = table.cost(costs)
        best = int(np.argmin(cost))
        info = {"calib/expected_cost": float(cost[best]), "calib/bayes_threshold": costs.bayes_threshold}
        return Decision(float(table.thresholds[best]), info)
