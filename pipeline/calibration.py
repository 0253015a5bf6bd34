"""Calibration of a fitted model: on the calib split, or from the priors alone."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.utils.validation import check_is_fitted

from pipeline.errors import ConfigError

METHODS = (None, "sigmoid", "isotonic", "temperature", "prior_correction")
#: Isotonic regression with fewer calib positives than this overfits (a step per positive).
ISOTONIC_MIN_POSITIVES = 50


def prior_correct(p: np.ndarray, train_prior: float, fit_prior: float) -> np.ndarray:
    """Undo a shifted prior: multiply the odds by odds(train_prior) / odds(fit_prior).

    ``fit_prior`` is the positive rate the model was fitted under (after resampling or
    weighting), ``train_prior`` the rate of the data it should speak for. For random
    undersampling this is Dal Pozzolo et al. (2015), p = beta p_s / (beta p_s - p_s + 1), with
    beta the share of negatives kept.
    """
    ratio = (train_prior / (1 - train_prior)) / (fit_prior / (1 - fit_prior))
    # (1 - p) first: (r p + 1) - p is not r p for p = 1 in floating point (it gave 1.0000000000000036)
    return np.clip(np.asarray(ratio * p / (ratio * p + (1 - p))), 0.0, 1.0)


class PriorCorrected(ClassifierMixin, BaseEstimator):
    """A fitted classifier whose probabilities are prior-corrected; ``fit`` only checks it."""

    def __init__(self, estimator: Any = None, train_prior: float = 0.5, fit_prior: float = 0.5) -> None:
        self.estimator = estimator
        self.train_prior = train_prior
        self.fit_prior = fit_prior

    def fit(self, X: Any = None, y: Any = None) -> PriorCorrected:
        for key, prior in (("train_prior", self.train_prior), ("fit_prior", self.fit_prior)):
            if not 0 < prior < 1:
                raise ConfigError(f"calibration.{key}", prior, "a positive rate in (0, 1)")
        self.classes_ = np.asarray(self.estimator.classes_)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        p = prior_correct(np.asarray(self.estimator.predict_proba(X))[:, 1], self.train_prior, self.fit_prior)
        return np.column_stack([1 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)])


class Calibrator:
    """Map a fitted model's scores to calibrated probabilities.

    Parameters
    ----------
    method : None, "sigmoid" (Platt), "isotonic", "temperature" or "prior_correction"
        Fitted on the calib split, except prior_correction (no data needed) and None.
    then : None, "sigmoid" or "isotonic"
        With prior_correction: a second step fitted on calib.
    """

    def __init__(self, method: str | None = None, then: str | None = None) -> None:
        self.method = method
        self.then = then

    def fit(self, model: Any, X: Any, y: Any, train_prior: float, fit_prior: float) -> Any:
        """The model, frozen, with its calibration fitted; it is never refitted."""
        if self.method not in METHODS:
            raise ConfigError("calibration.method", self.method, ", ".join(map(str, METHODS)))
        if self.then not in (None, "sigmoid", "isotonic") or (self.then and self.method != "prior_correction"):
            raise ConfigError("calibration.then", self.then, "null, or sigmoid / isotonic after prior_correction")
        if self.method is None:
            return model
        if self.method == "prior_correction":
            corrected = PriorCorrected(model, train_prior, fit_prior).fit()
            return corrected if self.then is None else _on_calib(corrected, self.then, X, y)
        return _on_calib(model, self.method, X, y)

    def warnings(self, calib_positives: int) -> list[str]:
        """What the run should carry as a warning tag (and the log should say)."""
        if "isotonic" in (self.method, self.then) and calib_positives < ISOTONIC_MIN_POSITIVES:
            return [f"isotonic calibration on {calib_positives} calib positives (< {ISOTONIC_MIN_POSITIVES}) overfits"]
        return []


def _on_calib(model: Any, method: str, X: Any, y: Any) -> Any:
    return CalibratedClassifierCV(FrozenEstimator(model), method=method).fit(X, y)
