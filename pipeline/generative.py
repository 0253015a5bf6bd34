"""Generative oversampling: fit a density model on the training positives and draw new ones.

Two density models: a Gaussian mixture (scikit-learn) and a small variational autoencoder
(torch, imported only when it is used).

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


class DensityOverSampler(BaseOverSampler):
    """Base: for each class to grow, fit a density model on its rows (``_draw``) and add the
    rows it draws; record the two-sample AUC of real against synthetic in ``diagnostics_``."""

    _parameter_constraints: ClassVar[dict] = {
        **BaseOverSampler._parameter_constraints,
        "random_state": ["random_state"],
    }
    #: Densities over continuous features: refused on categorical columns (fixes.check_applicable).
    euclidean = True

    def _check(self) -> None:
        """Refuse bad parameters with a ConfigError (before anything is fitted)."""

    def _draw(self, real: np.ndarray, n_new: int, seed: int) -> np.ndarray:
        raise NotImplementedError

    def _fit_resample(self, X: Any, y: np.ndarray) -> tuple[Any, np.ndarray]:
        self._check()
        rng = check_random_state(getattr(self, "random_state", None))
        dense = X.toarray() if sparse.issparse(X) else X  # the density is fitted on dense rows
        parts, labels, self.diagnostics_ = [], [y], {}
        for label, n_new in self.sampling_strategy_.items():
            real = dense[y == label]
            if n_new == 0 or len(real) < 2:
                continue
            synthetic = self._draw(real, n_new, rng.randint(2**31)).astype(dense.dtype, copy=False)
            self.diagnostics_["two_sample_auc"] = two_sample_auc(real, synthetic, rng.randint(2**31))
            parts.append(synthetic)
            labels.append(np.full(n_new, label, dtype=y.dtype))
        if sparse.issparse(X):
            return sparse.vstack([X, *map(sparse.csr_matrix, parts)], format=X.format), np.concatenate(labels)
        return np.vstack([X, *parts]), np.concatenate(labels)


class GaussianMixtureOverSampler(DensityOverSampler):
    """Draw synthetic minority rows from a Gaussian mixture fitted on the minority rows.

    Parameters
    ----------
    sampling_strategy : as for imblearn's over-samplers.
    n_components : int, mixture components (capped at the number of minority rows).
    covariance_type : "full", "tied", "diag" or "spherical".
    random_state : int, RandomState or None.
    """

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

    def _check(self) -> None:
        if not (isinstance(self.n_components, Integral) and self.n_components >= 1):
            raise ConfigError("fix.n_components", self.n_components, "a whole number >= 1")
        if self.covariance_type not in self.COVARIANCES:
            raise ConfigError("fix.covariance_type", self.covariance_type, ", ".join(self.COVARIANCES))

    def _draw(self, real: np.ndarray, n_new: int, seed: int) -> np.ndarray:
        mixture = GaussianMixture(
            min(self.n_components, len(real)), covariance_type=self.covariance_type, reg_covar=1e-4,
            random_state=seed,
        ).fit(real)  # fmt: skip
        return np.asarray(mixture.sample(n_new)[0])


class VAEOverSampler(DensityOverSampler):
    """Draw synthetic minority rows from a small torch variational autoencoder fitted on the
    (standardised) minority rows: decode latent draws z ~ N(0, I) and add Gaussian noise with
    each feature's reconstruction spread. torch is imported only when it is fitted.

    Parameters
    ----------
    sampling_strategy : as for imblearn's over-samplers.
    latent_dim : int, size of the latent space.
    hidden : widths of the encoder's hidden layers (the decoder mirrors them).
    epochs, lr, beta : training (full batch, Adam); beta weighs the KL term.
    random_state : int, RandomState or None.
    """

    def __init__(
        self,
        sampling_strategy: Any = "auto",
        latent_dim: int = 2,
        hidden: Any = (32,),
        epochs: int = 300,
        lr: float = 0.005,
        beta: float = 1.0,
        random_state: Any = None,
    ) -> None:
        super().__init__(sampling_strategy=sampling_strategy)
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.epochs = epochs
        self.lr = lr
        self.beta = beta
        self.random_state = random_state

    def _check(self) -> None:
        for key in ("latent_dim", "epochs"):
            value = getattr(self, key)
            if not (isinstance(value, Integral) and int(value) >= 1):
                raise ConfigError(f"fix.{key}", value, "a whole number >= 1")
        if not (self.lr > 0 and self.beta >= 0):
            raise ConfigError("fix.lr/fix.beta", f"{self.lr}/{self.beta}", "lr > 0 and beta >= 0")

    def _draw(self, real: np.ndarray, n_new: int, seed: int) -> np.ndarray:

        from pipeline.neural import threads

        with threads(1):
            return self._train_and_draw(real, n_new, seed)

    def _train_and_draw(self, real: np.ndarray, n_new: int, seed: int) -> np.ndarray:
        import torch

        from pipeline.neural import _network

        torch.manual_seed(seed)
        centre, spread = real.mean(axis=0), real.std(axis=0) + 1e-8
        x = torch.as_tensor((real - centre) / spread, dtype=torch.float32)
        encoder = _network(x.shape[1], list(self.hidden), 2 * self.latent_dim)
        decoder = _network(self.latent_dim, list(self.hidden)[::-1], x.shape[1])
        optimiser = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=self.lr)
        for _ in range(self.epochs):
            optimiser.zero_grad()
            mu, log_var = encoder(x).chunk(2, dim=1)
            z = mu + torch.randn_like(mu) * (0.5 * log_var).exp()
            recon = (decoder(z) - x).pow(2).sum(dim=1).mean()
            kl = -0.5 * (1 + log_var - mu.pow(2) - log_var.exp()).sum(dim=1).mean()
            (recon + self.beta * kl).backward()
            optimiser.step()
        with torch.no_grad():
            noise = (decoder(encoder(x).chunk(2, dim=1)[0]) - x).std(dim=0)
            z = torch.randn(n_new, self.latent_dim)
            synthetic = decoder(z) + torch.randn(n_new, x.shape[1]) * noise
        return synthetic.double().numpy() * spread + centre


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
