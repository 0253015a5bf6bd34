"""Every option of fix/ and model/ runs end to end on small data, and says what it fitted under."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
from imblearn.base import SamplerMixin
from imblearn.over_sampling import SMOTE, SMOTEN, SMOTENC
from imblearn.under_sampling import TomekLinks
from imblearn.utils.estimator_checks import parametrize_with_checks as imblearn_checks
from omegaconf import DictConfig
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import IsolationForest
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks

from pipeline import ensembles, experiment, fixes, generative, models
from pipeline.errors import ConfigError
from pipeline.paths import CONF_DIR
from tests.conftest import SMALL

FIXES = sorted(p.stem for p in (CONF_DIR / "fix").glob("*.yaml"))
MODELS = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))
#: Fixes meant to reach positives / negatives = 1 (the default sampling_strategy).
BALANCING = {"random_over", "random_under", "smote", "borderline_smote", "borderline_smote2", "svm_smote",
             "adasyn", "near_miss", "cluster_centroids", "class_weight", "gmm_oversample", "vae_oversample",
             "smote_variants", "balanced_batches"}  # fmt: skip
#: Fixes that change how a torch model trains: they run with model=mlp.
TORCH_ONLY = {"focal_loss", "balanced_batches"}


@pytest.mark.parametrize("fix", FIXES)
def test_every_fix_runs_end_to_end(make_cfg: Callable[..., DictConfig], fix: str) -> None:
    model = "mlp" if fix in TORCH_ONLY else "logreg"
    m = experiment.run(make_cfg(*SMALL, f"fix={fix}", f"model={model}", "metrics.n_boot=0")).metrics
    prior = m["fix/train_positive_rate"]
    assert 0 < prior < 1 and m["test/pr_auc"] > 2 * m["test/prevalence"]
    if fix in BALANCING:
        assert prior == pytest.approx(0.5, abs=0.02), prior
    if fix == "tomek_links":
        assert prior == pytest.approx(0.1, abs=0.02)  # cleaning barely moves the ratio
    if fix == "instance_hardness":
        assert prior > 0.12  # it drops the hardest negatives by a threshold, not to an exact ratio


@pytest.mark.parametrize("model", MODELS)
def test_every_model_runs_end_to_end(make_cfg: Callable[..., DictConfig], model: str) -> None:
    m = experiment.run(make_cfg(*SMALL, f"model={model}", "metrics.n_boot=0")).metrics
    # anomaly detectors never see a positive: they rank, far less well than supervised models
    # (the one-class SVM reaches about 0.57 here)
    floor = 0.55 if model in ("isolation_forest", "one_class_svm", "autoencoder") else 0.8
    if model == "cascade":  # stage 2 learns from the rows stage 1 passes: 0.79 here against hgb's 0.86
        floor = 0.75
    assert m["test/roc_auc"] > floor and m["test/pr_auc"] > 1.5 * m["test/prevalence"]


def test_cost_weight_weighs_positives_by_fn_over_fp(make_cfg: Callable[..., DictConfig]) -> None:
    cfg = make_cfg(*SMALL, "fix=cost_weight", "costs.fn=9", "costs.fp=1")
    fitted = experiment.fit(cfg, experiment.prepare(cfg))
    y = experiment.prepare(cfg).train.y
    rate = y.mean()
    assert fitted.fit_positive_rate == pytest.approx(9 * rate / (9 * rate + 1 - rate))


def test_tomek_cleaning_removes_only_negatives_in_links() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 2))
    y = (rng.random(400) < 0.1).astype(int)
    pipe = fixes.compose(TomekLinks(), [], LogisticRegression(), seed=0)
    sampler = pipe.named_steps["fix"]
    _, yr = sampler.fit_resample(X, y)
    assert yr.sum() == y.sum() and 0 < len(y) - len(yr) < 40


@parametrize_with_checks([fixes.CostWeight(LogisticRegression(), fp=1.0, fn=5.0)])
def test_cost_weight_is_a_scikit_learn_estimator(estimator: object, check: Callable[[object], None]) -> None:
    check(estimator)


class FirstColumnIsTheProbability(ClassifierMixin, BaseEstimator):
    """A stub whose P(positive) is the first feature, and which records the labels it was fit on."""

    fitted_on: ClassVar[list[np.ndarray]] = []

    def fit(self, X: Any, y: Any) -> FirstColumnIsTheProbability:
        self.classes_ = np.array([0, 1])
        FirstColumnIsTheProbability.fitted_on.append(np.asarray(y))
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        p = np.asarray(X)[:, 0]
        return np.column_stack([1 - p, p])


def test_metacost_relabels_each_row_to_its_cheapest_class_by_hand() -> None:
    # fn = 4, fp = 1: predicting positive is cheaper when 4 P > 1 - P, i.e. P > 0.2
    X = np.array([[0.10], [0.15], [0.25], [0.30], [0.60], [0.05]])
    y = np.array([0, 0, 0, 1, 1, 0])
    FirstColumnIsTheProbability.fitted_on.clear()
    model = fixes.MetaCost(FirstColumnIsTheProbability(), fp=1, fn=4, n_bags=3, random_state=0).fit(X, y)
    assert model.relabelled_.tolist() == [0, 0, 1, 1, 1, 0]
    assert FirstColumnIsTheProbability.fitted_on[-1].tolist() == [0, 0, 1, 1, 1, 0]  # the final fit
    assert model.fit_positive_rate_ == pytest.approx(0.5)
    with pytest.raises(ConfigError, match="MetaCost relabelled every training row"):
        fixes.MetaCost(FirstColumnIsTheProbability(), fp=1, fn=100, n_bags=2, random_state=0).fit(X, y)


def test_smote_becomes_smotenc_or_smoten_on_categorical_columns() -> None:
    smote = SMOTE(k_neighbors=3, random_state=1)
    assert fixes.for_categorical(smote, ["x"], []) is smote
    nc = fixes.for_categorical(smote, ["x"], ["colour"])
    assert isinstance(nc, SMOTENC) and list(nc.categorical_features) == ["colour"] and nc.k_neighbors == 3
    assert isinstance(fixes.for_categorical(smote, [], ["colour"]), SMOTEN)
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=300), "colour": rng.choice(["red", "blue"], 300)})
    y = (rng.random(300) < 0.1).astype(int)
    Xr, yr = fixes.with_positive_ratio(nc).fit_resample(X, y)
    assert yr.mean() == pytest.approx(0.5, abs=0.01) and set(Xr.colour) == {"red", "blue"}


def test_anomaly_detectors_see_only_the_negatives() -> None:
    seen: list[int] = []

    class Spy(IsolationForest):
        def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> Spy:
            seen.append(len(X))
            return super().fit(X, y, sample_weight)

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(500, 2)), (rng.random(500) < 0.1).astype(int)
    model = models.AnomalyClassifier(Spy(random_state=0)).fit(X, y)
    assert seen == [int((y == 0).sum())]
    p = model.predict_proba(X + 5 * y[:, None])[:, 1]  # shifted positives look anomalous
    assert p[y == 1].mean() > p[y == 0].mean()


@parametrize_with_checks([fixes.MetaCost(LogisticRegression(), fp=1.0, fn=1.0, n_bags=3, random_state=0)])
def test_metacost_is_a_scikit_learn_estimator(estimator: object, check: Callable[[object], None]) -> None:
    check(estimator)


def test_gaussian_mixture_positives_are_hard_to_tell_from_real_ones() -> None:
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (900, 2)), rng.normal(2, 0.5, (100, 2))])
    y = np.r_[np.zeros(900, int), np.ones(100, int)]
    sampler = generative.GaussianMixtureOverSampler(sampling_strategy=1.0, n_components=2, random_state=0)
    Xr, yr = sampler.fit_resample(X, y)
    assert np.bincount(yr).tolist() == [900, 900] and np.array_equal(Xr[:1000], X)  # real rows kept, in order
    assert sampler.diagnostics_["two_sample_auc"] < 0.65
    off_distribution = rng.normal(4, 0.5, (900, 2))  # what a bad generator would draw
    assert generative.two_sample_auc(X[y == 1], off_distribution, seed=0) > 0.95


@pytest.mark.slow  # each check fits the sampler's random-forest two-sample diagnostic many times (about 37 s)
@imblearn_checks([generative.GaussianMixtureOverSampler(random_state=0)])
def test_gaussian_mixture_sampler_passes_imblearns_checks(estimator: object, check: Callable[[object], None]) -> None:
    check(estimator)


@parametrize_with_checks([ensembles.SelfPacedEnsemble(n_estimators=3, random_state=0),
                          ensembles.BalanceCascade(n_estimators=3, random_state=0)])  # fmt: skip
def test_recursive_ensembles_are_scikit_learn_estimators(estimator: object, check: Callable[[object], None]) -> None:
    check(estimator)


def _imbalanced(n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.05).astype(int)
    return rng.normal(size=(n, 2)) + 1.5 * y[:, None], y


def test_balance_cascade_drops_the_easy_negatives_round_by_round() -> None:
    X, y = _imbalanced()
    model = ensembles.BalanceCascade(n_estimators=5, random_state=0).fit(X, y)
    n_pos, n_neg = int(y.sum()), int((y == 0).sum())
    share = (n_pos / n_neg) ** (1 / 4)  # kept per round, so the last pool is about n_pos
    assert len(model.pool_) == pytest.approx(n_neg * share**4, rel=0.05)
    hard = model.pool_
    easy = np.setdiff1d(np.flatnonzero(y == 0), hard)
    assert X[hard].sum(axis=1).mean() > X[easy].sum(axis=1).mean() + 1  # the kept ones sit near positives
    assert model.fit_positive_rate_ == 0.5 and len(model.estimators_) == 5


def test_self_paced_ensemble_ranks_well_and_is_seeded() -> None:
    X, y = _imbalanced()
    Xt, yt = _imbalanced(seed=1)
    a = ensembles.SelfPacedEnsemble(n_estimators=8, random_state=3).fit(X, y)
    b = ensembles.SelfPacedEnsemble(n_estimators=8, random_state=3).fit(X, y)
    assert np.array_equal(a.predict_proba(Xt), b.predict_proba(Xt))
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(yt, a.predict_proba(Xt)[:, 1]) > 0.85


def test_a_model_that_balances_itself_reports_the_prior_to_prior_correction() -> None:
    X, y = _imbalanced()
    wrapped = fixes.Reweight(ensembles.SelfPacedEnsemble(n_estimators=3, random_state=0)).fit(X, y)
    assert wrapped.fit_positive_rate_ == 0.5  # not the data's 5%


def _is_sampler(make_cfg: Callable[..., DictConfig], fix: str) -> bool:
    return fixes.is_sampler(experiment.build(make_cfg(f"fix={fix}").fix))


def test_torch_only_fixes_are_exactly_those_that_declare_it(make_cfg: Callable[..., DictConfig]) -> None:
    assert {f for f in FIXES if make_cfg(f"fix={f}").fix.get("needs") == "torch_classifier"} == TORCH_ONLY


@pytest.mark.parametrize("fix", FIXES)
def test_every_sampler_sees_train_rows_only(
    make_cfg: Callable[..., DictConfig], monkeypatch: pytest.MonkeyPatch, fix: str
) -> None:
    """The no-leakage invariant, sampler by sampler: each resamples the training rows and
    nothing else, and the test rows scored are the same whatever the sampler."""
    if not _is_sampler(make_cfg, fix):
        pytest.skip(f"{fix} wraps the model; it is not a sampler")
    seen: list[pd.Index] = []
    depth = [0]  # samplers made of samplers (smote_tomek, ...) call inner ones on their own output
    original = SamplerMixin.fit_resample

    def spy(self: Any, X: Any, y: Any, **params: Any) -> Any:
        if depth[0] == 0:
            seen.append(X.index)
        depth[0] += 1
        try:
            return original(self, X, y, **params)
        finally:
            depth[0] -= 1

    monkeypatch.setattr(SamplerMixin, "fit_resample", spy)
    # hgb takes the rows as they are (no scaling step), so the sampler sees the frame's row index
    cfg = make_cfg(*SMALL, f"fix={fix}", "model=hgb", "model.max_iter=10", "metrics.n_boot=0")
    result = experiment.run(cfg)
    splits = experiment.prepare(cfg)
    assert len(seen) == 1 and seen[0].equals(splits.train.X.index)
    assert result.predictions.index.equals(splits.test.X.index)


def test_smote_variants_that_make_nothing_are_refused_not_passed_through() -> None:
    from pipeline.variants import SmoteVariants

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(300, 2)), np.r_[np.ones(4, int), np.zeros(296, int)]
    with pytest.raises(ConfigError, match=r"MWMOTE made no synthetic rows from 4 training positives"):
        SmoteVariants("MWMOTE", sampling_strategy=1.0, random_state=0).fit_resample(X, y)
    y = (rng.random(300) < 0.1).astype(int)
    Xr, yr = SmoteVariants("polynom_fit_SMOTE", sampling_strategy=1.0, random_state=0).fit_resample(X, y)
    assert yr.sum() > 2 * y.sum() and np.array_equal(Xr[: len(X)], X)


@pytest.mark.parametrize("model", ["balanced_bagging", "balanced_random_forest", "easy_ensemble"])
def test_bagging_ensembles_report_their_balanced_prior_and_prior_correction_undoes_it(
    make_cfg: Callable[..., DictConfig], model: str
) -> None:
    overrides = (*SMALL, f"model={model}", "model.n_estimators=10", "metrics.n_boot=0")
    raw = experiment.run(make_cfg(*overrides)).metrics
    corrected = experiment.run(make_cfg(*overrides, "calibration=prior_correction")).metrics
    assert raw["fix/train_positive_rate"] == 0.5  # each member learns on a balanced sample
    assert corrected["test/ece"] < raw["test/ece"] / 2, (raw["test/ece"], corrected["test/ece"])


def test_resampling_prior_reads_the_ensembles_sampling_strategy() -> None:
    from imblearn.ensemble import BalancedBaggingClassifier, RUSBoostClassifier

    assert fixes.resampling_prior(BalancedBaggingClassifier(sampling_strategy=0.25)) == pytest.approx(0.2)
    assert fixes.resampling_prior(BalancedBaggingClassifier()) == 0.5
    assert fixes.resampling_prior(RUSBoostClassifier()) is None  # boosted scores: no prior to correct
    assert fixes.resampling_prior(LogisticRegression()) is None
