"""Spies built through the config (``fix._target_=tests.spies.SpySampler``): they record the
rows each step of a run is shown, so the no-leakage invariant is checked on the real run."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from imblearn.over_sampling import RandomOverSampler

from pipeline.calibration import Calibrator
from pipeline.decision import Costs, Decision, MaxFBeta


class SpySampler(RandomOverSampler):
    """A random over-sampler that records the row index of every frame it resamples."""

    seen: ClassVar[list[np.ndarray]] = []

    def fit_resample(self, X: Any, y: Any, **params: Any) -> Any:
        SpySampler.seen.append(np.asarray(X.index))
        return super().fit_resample(X, y, **params)


class SpyCalibrator(Calibrator):
    """Platt scaling that records the rows it calibrates on and every row scored afterwards."""

    seen_fit: ClassVar[list[np.ndarray]] = []

    def fit(self, model: Any, X: Any, y: Any, train_prior: float, fit_prior: float) -> Any:
        SpyCalibrator.seen_fit.append(np.asarray(X.index))
        return super().fit(model, X, y, train_prior, fit_prior)


class SpyThreshold(MaxFBeta):
    """Max-F1 that records the labels it chooses the threshold on."""

    seen: ClassVar[list[np.ndarray]] = []

    def choose(self, y: np.ndarray, scores: np.ndarray, costs: Costs) -> Decision:
        SpyThreshold.seen.append(np.asarray(y).copy())
        return super().choose(y, scores, costs)
