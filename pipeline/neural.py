"""Torch models and the fixes that only make sense for them (focal loss, balanced minibatches).

torch is imported inside ``fit`` and the functions that need it, never at module import:
``--help``, ``--cfg job`` and every run without a torch model stay torch-free.

- ``MLPClassifier``: a scikit-learn classifier (fit / predict_proba), seeded and deterministic
  on the CPU, early stopping on a stratified slice of train; ``device="auto"`` uses CUDA when
  there is one. Sample weights that are constant within each class (``fix=class_weight``,
  ``cost_weight``) become BCE's ``pos_weight``; any others weight each row's loss.
- ``FocalLoss`` and ``BalancedBatches``: fixes that wrap a torch classifier and change how it
  trains; any other model is refused with a ConfigError.
- ``AutoencoderDetector``: an anomaly detector (fit on negatives, ``score_samples`` = minus the
  reconstruction error) for ``models.AnomalyClassifier``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, OutlierMixin, clone
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from pipeline.errors import ConfigError
from pipeline.fixes import BinaryOnly

LOSSES = ("bce", "focal")


def focal_loss(logits: Any, y: Any, gamma: float, alpha: float, weight: Any = None) -> Any:
    """Mean focal loss (Lin et al. 2017): FL = -alpha_t (1 - p_t)^gamma log p_t, where p_t is the
    probability given to the true class and alpha_t = alpha for positives, 1 - alpha for negatives.

    Computed from logits in log space (no log of a rounded probability). ``weight``, when given,
    multiplies each row's loss before the mean.
    """
    import torch
    import torch.nn.functional as F

    log_p = -F.softplus(-logits)  # log sigmoid(z)
    log_q = -F.softplus(logits)  # log (1 - sigmoid(z))
    log_pt = torch.where(y > 0.5, log_p, log_q)
    alpha_t = torch.where(y > 0.5, logits.new_tensor(alpha), logits.new_tensor(1.0 - alpha))
    loss = -alpha_t * (1.0 - log_pt.exp()).pow(gamma) * log_pt
    return (loss * weight).mean() if weight is not None else loss.mean()


def resolve_device(device: str) -> Any:
    """``auto``: CUDA when torch sees a GPU, else the CPU; otherwise the device named."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError:
        raise ConfigError("model.device", device, "auto, cpu, cuda or cuda:<n>") from None


@contextlib.contextmanager
def threads(n: int) -> Iterator[None]:
    """Run torch on ``n`` CPU threads inside the block. Small networks gain nothing from more,
    and two processes each spinning several threads on the same cores slow down many-fold."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _network(n_in: int, hidden: Any, n_out: int) -> Any:
    import torch

    layers: list[Any] = []
    for width in hidden:
        layers += [torch.nn.Linear(n_in, int(width)), torch.nn.ReLU()]
        n_in = int(width)
    layers.append(torch.nn.Linear(n_in, n_out))
    return torch.nn.Sequential(*layers)


class _TorchTrainer:
    """Seeded minibatch training with early stopping on a held-out slice (shared by the models)."""

    def _check_common(self) -> None:
        p = self.get_params()  # type: ignore[attr-defined]
        if not (isinstance(p["hidden"], (list, tuple)) and all(int(w) >= 1 for w in p["hidden"])):
            raise ConfigError("model.hidden", p["hidden"], "a list of layer widths >= 1, e.g. [64, 32]")
        for key in ("epochs", "batch_size", "patience", "n_threads"):
            if not (isinstance(p[key], int) and p[key] >= 1):
                raise ConfigError(f"model.{key}", p[key], "a whole number >= 1")
        if not 0 < p["validation_fraction"] < 0.5:
            raise ConfigError("model.validation_fraction", p["validation_fraction"], "a fraction in (0, 0.5)")
        if not p["lr"] > 0:
            raise ConfigError("model.lr", p["lr"], "a learning rate > 0")

    def _train(self, net: Any, loss_fn: Any, train: tuple, valid: tuple, draw: Any, seed: int) -> list[float]:
        """Train ``net`` in place; keep the weights of the best validation loss.

        ``train``/``valid`` are tuples of tensors whose first element is the input; ``draw(gen, n)``
        gives one epoch's row order (a permutation, or a class-balanced draw).
        """
        import torch

        gen = torch.Generator().manual_seed(seed)
        optimiser = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)  # type: ignore[attr-defined]
        best, best_state, stale, history = float("inf"), None, 0, []
        n = len(train[0])
        for _ in range(self.epochs):  # type: ignore[attr-defined]
            net.train()
            order = draw(gen, n)
            for start in range(0, n, self.batch_size):  # type: ignore[attr-defined]
                rows = order[start : start + self.batch_size]  # type: ignore[attr-defined]
                optimiser.zero_grad()
                loss_fn(net, *(t[rows] for t in train)).backward()
                optimiser.step()
            net.eval()
            with torch.no_grad():
                current = float(loss_fn(net, *valid))
            history.append(current)
            if current < best - 1e-6:
                best, stale = current, 0
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                stale += 1
                if stale >= self.patience:  # type: ignore[attr-defined]
                    break
        if best_state is not None:
            net.load_state_dict(best_state)
        return history

    def _start(self) -> int:
        """Seed torch for a fit and pick its device (``device_``); the seed for everything else."""
        import torch

        seed = int(check_random_state(self.random_state).randint(2**31))  # type: ignore[attr-defined]
        torch.manual_seed(seed)
        self.device_ = str(resolve_device(self.device))  # type: ignore[attr-defined]
        return seed


class MLPClassifier(BinaryOnly, _TorchTrainer, ClassifierMixin, BaseEstimator):
    """A feed-forward network for two classes, trained with Adam on BCE or focal loss.

    Parameters
    ----------
    hidden : widths of the hidden ReLU layers.
    epochs, batch_size, lr, weight_decay : the optimisation.
    validation_fraction, patience : early stopping on a stratified slice of the training rows;
        the weights of the epoch with the lowest validation loss are kept.
    loss : "bce" or "focal" (``focal_gamma``, ``focal_alpha``; see ``focal_loss``).
    balanced_batches : draw each epoch's rows with replacement so each class is half of
        every minibatch in expectation (the model then learns under a 50% prior).
    device : "auto" (CUDA when available), "cpu", "cuda", ...
    n_threads : torch's CPU threads while fitting and scoring (1: fastest for small networks).
    random_state : seeds the weights, the validation slice and the batch order.

    Attributes
    ----------
    fit_positive_rate_ : the positive rate the loss saw (after weights, pos_weight, alpha and
        balanced batches): the prior that ``calibration=prior_correction`` undoes. The focal
        term (1 - p_t)^gamma is not a prior shift, so with focal loss use platt or isotonic.
    loss_curve_ : validation loss per epoch.
    """

    def __init__(
        self,
        hidden: Any = (64, 32),
        epochs: int = 200,
        batch_size: int = 256,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        validation_fraction: float = 0.1,
        patience: int = 10,
        loss: str = "bce",
        focal_gamma: float = 2.0,
        focal_alpha: float = 0.25,
        balanced_batches: bool = False,
        device: str = "auto",
        n_threads: int = 1,
        random_state: Any = None,
    ) -> None:
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.loss = loss
        self.focal_gamma = focal_gamma
        self.focal_alpha = focal_alpha
        self.balanced_batches = balanced_batches
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPClassifier:
        self._check_common()
        with threads(self.n_threads):
            return self._fit(X, y, sample_weight)

    def _fit(self, X: Any, y: Any, sample_weight: Any) -> MLPClassifier:
        import torch

        X, y = self._binary_data(X, y)
        if self.loss not in LOSSES:
            raise ConfigError("model.loss", self.loss, ", ".join(LOSSES))
        if self.loss == "focal" and not (self.focal_gamma >= 0 and 0 < self.focal_alpha < 1):
            raise ConfigError(
                "fix.gamma/fix.alpha", f"{self.focal_gamma}/{self.focal_alpha}", "gamma >= 0, 0 < alpha < 1"
            )
        target = (y == self.classes_[1]).astype(np.float32)
        weight = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        if not weight.sum() > 0:
            raise ValueError("sample_weight sums to zero: no row would count")
        pos_weight, row_weight = _split_weights(weight, target)
        seed = self._start()
        fit_rows, valid_rows = _holdout(len(target), self.validation_fraction, seed, target)

        def tensors(rows: np.ndarray, balance: bool = False) -> tuple[Any, ...]:
            w = row_weight[rows] if row_weight is not None else None
            if balance:  # judge early stopping by the loss the balanced batches train on
                w = (np.ones(len(rows)) if w is None else w) * _balancing(target[rows])
            parts = [X[rows], target[rows]] + ([w] if w is not None else [])
            return tuple(
                torch.as_tensor(np.ascontiguousarray(p), dtype=torch.float32, device=self.device_) for p in parts
            )

        self.net_ = _network(X.shape[1], self.hidden, 1).to(self.device_)
        pos = torch.as_tensor(pos_weight, device=self.device_)

        def loss_fn(net: Any, xb: Any, yb: Any, wb: Any = None) -> Any:
            logits = net(xb).squeeze(-1)
            if self.loss == "focal":  # class-constant weights scale the positives' terms, as pos_weight does
                w = torch.where(yb > 0.5, pos, 1.0)
                return focal_loss(logits, yb, self.focal_gamma, self.focal_alpha, w if wb is None else w * wb)
            return torch.nn.functional.binary_cross_entropy_with_logits(logits, yb, weight=wb, pos_weight=pos)

        self.loss_curve_ = self._train(
            self.net_,
            loss_fn,
            tensors(fit_rows),
            tensors(valid_rows, self.balanced_batches),
            self._drawer(target[fit_rows]),
            seed,
        )
        self.fit_positive_rate_ = self._prior(target, weight)
        self.net_ = self.net_.double()  # trained in float32; scored in float64, the same whatever the batch
        return self

    def _drawer(self, target: np.ndarray) -> Any:
        import torch

        if not self.balanced_batches:
            return lambda gen, n: torch.randperm(n, generator=gen)
        probs = torch.as_tensor(_balancing(target) / len(target), dtype=torch.float64)
        return lambda gen, n: torch.multinomial(probs, n, replacement=True, generator=gen)

    def _prior(self, target: np.ndarray, weight: np.ndarray) -> float:
        pos, neg = float(weight[target > 0.5].sum()), float(weight[target < 0.5].sum())
        if self.balanced_batches:  # each class drawn equally often, each row's loss still weighted
            pos = float(weight[target > 0.5].mean()) if (target > 0.5).any() else 0.0
            neg = float(weight[target < 0.5].mean()) if (target < 0.5).any() else 0.0
        if self.loss == "focal":
            pos, neg = pos * self.focal_alpha, neg * (1 - self.focal_alpha)
        return pos / (pos + neg)

    def decision_function(self, X: Any) -> np.ndarray:
        import torch

        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        self.net_.eval()
        with torch.no_grad(), threads(self.n_threads):
            xb = torch.as_tensor(np.ascontiguousarray(X, dtype=np.float64), device=self.device_)
            return self.net_(xb).squeeze(-1).cpu().numpy()

    def predict_proba(self, X: Any) -> np.ndarray:
        from scipy.special import expit

        p = expit(self.decision_function(X))
        return np.column_stack([1 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        positive = self.decision_function(X) > 0
        return np.asarray(self.classes_[positive.astype(int)])


def _split_weights(weight: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray | None]:
    """Class-constant weights become one ``pos_weight`` (BCE's own lever); others stay per row."""
    pos, neg = weight[target > 0.5], weight[target < 0.5]
    if len(pos) and len(neg) and np.ptp(pos) == 0 and np.ptp(neg) == 0 and neg[0] > 0:
        return float(pos[0] / neg[0]), None
    return 1.0, (weight / weight.mean()).astype(np.float32)


def _balancing(target: np.ndarray) -> np.ndarray:
    """Per-row factors that give each class half the total weight (mean 1)."""
    n, n_pos = len(target), max(float(target.sum()), 1.0)
    return np.where(target > 0.5, 0.5 * n / n_pos, 0.5 * n / max(n - n_pos, 1.0))


def _holdout(n: int, fraction: float, seed: int, target: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rows to fit on and rows to stop early on (stratified by ``target`` where both classes allow it)."""
    rows = np.arange(n)
    n_valid = round(fraction * n)
    if n_valid < 2 or n - n_valid < 2:  # too few rows to hold any out: judge on the training rows
        return rows, rows
    both = target is not None and min(target.sum(), n - target.sum()) >= 2
    stratify = target if both else None
    fit_rows, valid_rows = train_test_split(rows, test_size=n_valid, random_state=seed, stratify=stratify)
    return np.sort(fit_rows), np.sort(valid_rows)


class TorchFix(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """A fix that changes how a torch classifier trains: it sets ``settings()`` on a clone of
    ``estimator`` and fits it. Any model without those parameters is refused."""

    fix_name = "torch_fix"

    def __init__(self, estimator: Any = None) -> None:
        self.estimator = estimator

    def settings(self) -> dict[str, Any]:
        raise NotImplementedError

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> TorchFix:
        settings = self.settings()
        if self.estimator is None or not set(settings) <= set(self.estimator.get_params()):
            model = type(self.estimator).__name__
            raise ConfigError(
                "fix", self.fix_name, "model=mlp (or another torch classifier)",
                why=f"it changes how a torch model trains; {model} has no {', '.join(settings)}",
            )  # fmt: skip
        self.estimator_ = clone(self.estimator).set_params(**settings)
        self.estimator_.fit(X, y, sample_weight=sample_weight)
        self.classes_ = self.estimator_.classes_
        self.n_features_in_ = self.estimator_.n_features_in_
        self.fit_positive_rate_ = float(self.estimator_.fit_positive_rate_)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        return np.asarray(self.estimator_.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        return np.asarray(self.estimator_.predict(X))


class FocalLoss(TorchFix):
    """Train the torch classifier on the focal loss: ``gamma`` focuses on hard rows, ``alpha``
    weighs the positive class (Lin et al. 2017 use gamma 2, alpha 0.25)."""

    fix_name = "focal_loss"

    def __init__(self, estimator: Any = None, gamma: float = 2.0, alpha: float = 0.25) -> None:
        self.estimator = estimator
        self.gamma = gamma
        self.alpha = alpha

    def settings(self) -> dict[str, Any]:
        return {"loss": "focal", "focal_gamma": self.gamma, "focal_alpha": self.alpha}


class BalancedBatches(TorchFix):
    """Train the torch classifier on class-balanced minibatches (rows drawn with replacement,
    each class half of every batch in expectation)."""

    fix_name = "balanced_batches"

    def settings(self) -> dict[str, Any]:
        return {"balanced_batches": True}


class AutoencoderDetector(_TorchTrainer, OutlierMixin, BaseEstimator):
    """An anomaly detector: an autoencoder trained to reconstruct the rows it is fitted on
    (the training negatives, inside ``AnomalyClassifier``); ``score_samples`` is minus the mean
    squared reconstruction error, so higher means more normal, as in scikit-learn's detectors.
    """

    def __init__(
        self,
        hidden: Any = (32, 8),
        epochs: int = 200,
        batch_size: int = 256,
        lr: float = 1e-3,
        weight_decay: float = 1e-5,
        validation_fraction: float = 0.1,
        patience: int = 10,
        device: str = "auto",
        n_threads: int = 1,
        random_state: Any = None,
    ) -> None:
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> AutoencoderDetector:
        self._check_common()
        with threads(self.n_threads):
            return self._fit(X)

    def _fit(self, X: Any) -> AutoencoderDetector:
        import torch

        X = validate_data(self, X, dtype=np.float32)
        seed = self._start()
        fit_rows, valid_rows = _holdout(len(X), self.validation_fraction, seed)
        widths = list(self.hidden)
        encoder = _network(X.shape[1], widths[:-1], widths[-1])
        decoder = _network(widths[-1], widths[-2::-1], X.shape[1])
        self.net_ = torch.nn.Sequential(encoder, torch.nn.ReLU(), decoder).to(self.device_)

        def as_tensor(part: np.ndarray) -> Any:
            return torch.as_tensor(np.ascontiguousarray(part), device=self.device_)

        def loss_fn(net: Any, xb: Any) -> Any:
            return torch.nn.functional.mse_loss(net(xb), xb)

        self.loss_curve_ = self._train(
            self.net_, loss_fn, (as_tensor(X[fit_rows]),), (as_tensor(X[valid_rows]),),
            lambda gen, n: torch.randperm(n, generator=gen), seed,
        )  # fmt: skip
        self.offset_ = float(np.quantile(self.score_samples(X), 0.01))  # 1% of training rows flagged
        return self

    def score_samples(self, X: Any) -> np.ndarray:
        import torch

        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float32)
        self.net_.eval()
        with torch.no_grad(), threads(self.n_threads):
            xb = torch.as_tensor(np.ascontiguousarray(X), device=self.device_)
            error = (self.net_(xb) - xb).pow(2).mean(dim=1)
        return -error.double().cpu().numpy()

    def decision_function(self, X: Any) -> np.ndarray:
        return self.score_samples(X) - self.offset_

    def predict(self, X: Any) -> np.ndarray:
        return np.where(self.score_samples(X) >= self.offset_, 1, -1)
