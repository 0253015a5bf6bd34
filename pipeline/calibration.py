"""Calibration of a fitted model on the calib split."""

from __future__ import annotations

from typing import Any

from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator

from pipeline.errors import ConfigError

METHODS = (None, "sigmoid", "isotonic", "temperature")


class Calibrator:
    """Map a fitted model's scores to calibrated probabilities.

    Parameters
    ----------
    method : None, "sigmoid" (Platt), "isotonic" or "temperature"
        None returns the model unchanged.
    """

    def __init__(self, method: str | None = None) -> None:
        self.method = method

    def fit(self, model: Any, X: Any, y: Any) -> Any:
        """The model, frozen, with a calibrator fitted on ``(X, y)``; it is never refitted."""
        if self.method not in METHODS:
            raise ConfigError("calibration.method", self.method, ", ".join(map(str, METHODS)))
        if self.method is None:
            return model
        return CalibratedClassifierCV(FrozenEstimator(model), method=self.method).fit(X, y)
