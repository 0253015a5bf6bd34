"""Generative oversampling: fit a density model on the training positives and draw new ones.

Off-distribution synthetic rows are the risk, so every fit measures how far they sit from the
real ones: a classifier two-sample AUC (0.5: indistinguishable; 1.0: plainly fake), reported in
``diagnostics_`` and logged as ``fix/two_sample_auc``.
"""

from __future__ import annotations

from numbers import Integral
from typing import Any, ClassVar

import numpy as np
from imblearn.over_sampling.base import BaseOverSampler
from scipy import sparse
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import cross_val_predict
from sklearn.utils import check_random_state

from pipeline.errors import ConfigError


class GaussianMixtureOverSampler(BaseOverSampler):
    """Draw synthetic minority rows from a Gaussian mixture fitted on the minority rows.

    Parameters
    ----------
    sampling_strategy : as for imblearn's over-samplers.
    n_components : int, mixture components (capped at the number of minority rows).
    covariance_type : "full", "tied", "diag" or "spherical".
    random_state : int, RandomState or None.
    """

    _parameter_constraints: ClassVar[dict] = {
        **BaseOverSampler._parameter_constraints,
        "random_state": ["random_state"],
    }
    COVARIANCES = ("full", "tied", "diag", "spherical")

    def __init__(
        self,
        sampling_strategy: Any = "auto",
        n_components: int = 3,
        covariance_type: str = "full",
        random_state: Any = None,
    ) -> None:
        super().__init__(sampling_strategy=sampling_strategy)
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.random_state = random_state

    def _fit_resample(self, X: Any, y: np.ndarray) -> tuple[Any, np.ndarray]:
        if not (isinstance(self.n_components, Integral) and self.n_components >= 1):
            raise ConfigError("fix.n_components", self.n_components, "a whole number >= 1")
        if self.covariance_type not in self.COVARIANCES:
            raise ConfigError("fix.covariance_type", self.covariance_type, ", ".join(self.COVARIANCES))
        rng = check_random_state(self.random_state)
        dense = X.toarray() if sparse.issparse(X) else X  # the mixture is fitted on dense rows
        parts, labels, self.diagnostics_ = [], [y], {}
        for label, n_new in self.sampling_strategy_.items():
            real = dense[y == label]
            if n_new == 0 or len(real) < 2:
                continue
            mixture = GaussianMixture(
                min(self.n_components, len(real)), covariance_type=self.covariance_type, reg_covar=1e-4,
                random_state=rng.randint(2**31),
            ).fit(real)  # fmt: skip
            synthetic = mixture.sample(n_new)[0].astype(dense.dtype, copy=False)
            self.diagnostics_["two_sample_auc"] = two_sample_auc(real, synthetic, rng.randint(2**31))
            parts.append(synthetic)
            labels.append(np.full(n_new, label, dtype=y.dtype))
        if sparse.issparse(X):
            return sparse.vstack([X, *map(sparse.csr_matrix, parts)], format=X.format), np.concatenate(labels)
        return np.vstack([X, *parts]), np.concatenate(labels)


def two_sample_auc(real: np.ndarray, synthetic: np.ndarray, seed: int) -> float:
    """Cross-validated AUC of a random forest told to separate real from synthetic rows
    (synthetic subsampled to as many as the real ones)."""
    rng = np.random.default_rng(seed)
    synthetic = synthetic[rng.choice(len(synthetic), size=min(len(real), len(synthetic)), replace=False)]
    X = np.vstack([real, synthetic])
    y = np.r_[np.zeros(len(real)), np.ones(len(synthetic))]
    forest = RandomForestClassifier(n_estimators=100, min_samples_leaf=3, random_state=seed)
    folds = min(5, len(real), len(synthetic))
    scores = cross_val_predict(forest, X, y, cv=folds, method="predict_proba")[:, 1]
    return float(roc_auc_score(y, scores))
