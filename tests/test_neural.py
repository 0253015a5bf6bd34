"""The torch parts: the focal loss against its formula, the MLP's determinism, weights and
early stopping, the fixes that need a torch model, the autoencoder and the VAE sampler."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from omegaconf import DictConfig
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from pipeline import experiment, generative, models, neural
from pipeline.errors import ConfigError, Refused
from tests.conftest import SMALL

torch = pytest.importorskip("torch")


def _imbalanced(n: int = 2000, seed: int = 0, rate: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < rate).astype(int)
    return rng.normal(size=(n, 3)) + 1.5 * y[:, None], y


def _focal_by_hand(z: float, y: int, gamma: float, alpha: float) -> float:
    p = 1 / (1 + np.exp(-z))
    p_t, alpha_t = (p, alpha) if y == 1 else (1 - p, 1 - alpha)
    return float(-alpha_t * (1 - p_t) ** gamma * np.log(p_t))


POINTS = [(0.0, 1), (0.0, 0), (2.0, 1), (2.0, 0), (-3.0, 1), (-3.0, 0), (8.0, 0)]


@pytest.mark.parametrize(("gamma", "alpha"), [(0.0, 0.5), (2.0, 0.25), (1.0, 0.9), (5.0, 0.5)])
def test_focal_loss_matches_the_formula_at_fixed_points(gamma: float, alpha: float) -> None:
    z = torch.tensor([p[0] for p in POINTS], dtype=torch.float64)
    y = torch.tensor([float(p[1]) for p in POINTS], dtype=torch.float64)
    expected = [_focal_by_hand(zi, yi, gamma, alpha) for zi, yi in POINTS]
    for i in range(len(POINTS)):  # each point alone, then the mean of them all
        got = neural.focal_loss(z[i : i + 1], y[i : i + 1], gamma, alpha).item()
        assert got == pytest.approx(expected[i], rel=1e-9, abs=1e-15)
    assert neural.focal_loss(z, y, gamma, alpha).item() == pytest.approx(np.mean(expected), rel=1e-9)


def test_focal_loss_with_gamma_0_and_alpha_half_is_half_the_cross_entropy() -> None:
    z, y = torch.tensor([0.3, -1.2, 2.5]), torch.tensor([1.0, 0.0, 0.0])
    bce = torch.nn.functional.binary_cross_entropy_with_logits(z, y)
    assert neural.focal_loss(z, y, 0.0, 0.5).item() == pytest.approx(0.5 * bce.item(), rel=1e-6)


def test_focal_loss_down_weights_easy_rows() -> None:
    z, y = torch.tensor([4.0, 0.1]), torch.tensor([1.0, 1.0])  # easy positive, hard positive
    easy, hard = (neural.focal_loss(z[i : i + 1], y[i : i + 1], 2.0, 0.5).item() for i in range(2))
    bce_easy, bce_hard = -np.log(1 / (1 + np.exp(-4.0))), -np.log(1 / (1 + np.exp(-0.1)))
    assert easy / hard < 0.01 * bce_easy / bce_hard


def test_mlp_is_seeded_and_deterministic_on_the_cpu() -> None:
    X, y = _imbalanced()
    a = neural.MLPClassifier(random_state=3, device="cpu").fit(X, y)
    b = neural.MLPClassifier(random_state=3, device="cpu").fit(X, y)
    c = neural.MLPClassifier(random_state=4, device="cpu").fit(X, y)
    assert np.array_equal(a.predict_proba(X), b.predict_proba(X))
    assert not np.array_equal(a.predict_proba(X), c.predict_proba(X))
    Xt, yt = _imbalanced(seed=1)
    assert roc_auc_score(yt, a.predict_proba(Xt)[:, 1]) > 0.85


def test_mlp_stops_early_and_keeps_its_best_epoch() -> None:
    X, y = _imbalanced()
    model = neural.MLPClassifier(epochs=500, patience=3, random_state=0, device="cpu").fit(X, y)
    curve = model.loss_curve_
    assert len(curve) < 500
    best = int(np.argmin(curve))
    assert len(curve) - 1 - best == 3  # stopped patience epochs after the best one


def test_class_constant_weights_become_pos_weight() -> None:
    weight = np.array([1.0, 1.0, 5.0, 5.0])
    target = np.array([0.0, 0.0, 1.0, 1.0], dtype=np.float32)
    assert neural._split_weights(weight, target) == (5.0, None)
    pos_weight, rows = neural._split_weights(np.array([1.0, 2.0, 5.0, 5.0]), target)
    assert pos_weight == 1.0 and rows is not None and rows.mean() == pytest.approx(1.0)


def test_pos_weight_raises_the_scores_of_positives_and_the_reported_prior() -> None:
    X, y = _imbalanced()
    plain = neural.MLPClassifier(random_state=0, device="cpu").fit(X, y)
    weighted = neural.MLPClassifier(random_state=0, device="cpu").fit(X, y, sample_weight=np.where(y == 1, 9.0, 1.0))
    assert weighted.predict_proba(X)[:, 1].mean() > 2 * plain.predict_proba(X)[:, 1].mean()
    rate = y.mean()
    assert plain.fit_positive_rate_ == pytest.approx(rate)
    assert weighted.fit_positive_rate_ == pytest.approx(9 * rate / (9 * rate + 1 - rate))


def test_balanced_batches_draw_each_class_half_the_time() -> None:
    target = np.r_[np.zeros(950), np.ones(50)]
    draw = neural.MLPClassifier(balanced_batches=True)._drawer(target)
    rows = draw(torch.Generator().manual_seed(0), 20000).numpy()
    assert target[rows].mean() == pytest.approx(0.5, abs=0.02)
    X, y = _imbalanced()
    plain = neural.MLPClassifier(random_state=0, device="cpu").fit(X, y)
    model = neural.BalancedBatches(neural.MLPClassifier(random_state=0, device="cpu")).fit(X, y)
    assert model.fit_positive_rate_ == 0.5 and plain.fit_positive_rate_ == pytest.approx(y.mean())
    assert model.predict_proba(X)[:, 1].mean() > 1.5 * plain.predict_proba(X)[:, 1].mean()


def test_torch_fixes_refuse_a_model_that_is_not_torch() -> None:
    X, y = _imbalanced(200)
    with pytest.raises(ConfigError, match=r"fix=focal_loss is not accepted.*LogisticRegression has no loss"):
        neural.FocalLoss(LogisticRegression()).fit(X, y)


@pytest.mark.parametrize("fix", ["focal_loss", "balanced_batches"])
def test_torch_fixes_with_logreg_are_refused_from_the_config(make_cfg: Callable[..., DictConfig], fix: str) -> None:
    with pytest.raises(Refused, match=f"fix={fix} is not accepted .*accepted: model=mlp with fix={fix}"):
        experiment.check_compatible(make_cfg(f"fix={fix}", "model=logreg"))
    experiment.check_compatible(make_cfg(f"fix={fix}", "model=mlp"))  # no error


def test_device_auto_picks_what_torch_has() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert neural.resolve_device("auto").type == expected
    with pytest.raises(ConfigError, match=r"model\.device=gpu0 is not accepted"):
        neural.resolve_device("gpu0")


def test_autoencoder_scores_off_distribution_rows_as_anomalous() -> None:
    X, y = _imbalanced(rate=0.1)
    X[y == 1] += 3.0  # positives far from the negatives the autoencoder learns
    model = models.AnomalyClassifier(neural.AutoencoderDetector(hidden=[8, 2], random_state=0, device="cpu"))
    p = model.fit(X, y).predict_proba(X)[:, 1]
    assert roc_auc_score(y, p) > 0.9


def test_vae_positives_sit_near_the_real_ones_and_off_ones_do_not() -> None:
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (900, 2)), rng.normal(3, 0.5, (100, 2))])
    y = np.r_[np.zeros(900, int), np.ones(100, int)]
    sampler = generative.VAEOverSampler(sampling_strategy=1.0, random_state=0)
    Xr, yr = sampler.fit_resample(X, y)
    assert np.bincount(yr).tolist() == [900, 900] and np.array_equal(Xr[:1000], X)
    synthetic = Xr[1000:]
    assert np.abs(synthetic.mean(axis=0) - 3).max() < 0.3 and 0.2 < synthetic.std(axis=0).mean() < 1.0
    assert sampler.diagnostics_["two_sample_auc"] < 0.75


NOT_EQUIVALENT = {
    "check_sample_weight_equivalence_on_dense_data": "minibatch Adam on repeated rows takes another path than on "
    "weighted rows (the two agree to about 1e-4, not 1e-7)",
}


@parametrize_with_checks(
    [neural.MLPClassifier(hidden=[16], epochs=40, lr=0.01, random_state=0, device="cpu")],
    expected_failed_checks=lambda _: NOT_EQUIVALENT,
)
def test_mlp_is_a_scikit_learn_estimator(estimator: object, check: Callable[[object], None]) -> None:
    check(estimator)


def test_cascade_threshold_keeps_the_asked_recall_on_calib(make_cfg: Callable[..., DictConfig]) -> None:
    cfg = make_cfg(*SMALL, "model=cascade", "model.stage1_recall=0.9", "metrics.n_boot=0")
    splits = experiment.prepare(cfg)
    fitted = experiment.fit(cfg, splits)
    cascade = models.cascade_of(fitted.pipe)
    assert cascade is not None
    calib = cascade.diagnose(models.model_inputs(fitted.pipe, splits.calib.X), splits.calib.y)
    assert calib["stage1_recall_lost"] <= 0.1 and calib["stage1_filtered_share"] > 0.3
    m = experiment.evaluate(cfg, fitted, splits.test).metrics
    assert 0.3 < m["model/test_stage1_filtered_share"] < 1 and m["model/test_stage1_recall_lost"] < 0.25


def test_recall_threshold_is_the_highest_that_keeps_the_recall() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.1, 0.05])
    positive = np.array([True, True, True, True, False, False])
    assert models.recall_threshold(positive, scores, 1.0) == 0.6
    assert models.recall_threshold(positive, scores, 0.75) == 0.7
    assert models.recall_threshold(positive, scores, 0.74) == 0.7
    assert models.recall_threshold(positive, scores, 0.76) == 0.6
