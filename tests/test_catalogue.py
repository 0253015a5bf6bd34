"""Every option of fix/ and model/ runs end to end on small data, and says what it fitted under."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from imblearn.under_sampling import TomekLinks
from omegaconf import DictConfig
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks

from pipeline import experiment, fixes
from pipeline.paths import CONF_DIR
from tests.conftest import SMALL

FIXES = sorted(p.stem for p in (CONF_DIR / "fix").glob("*.yaml"))
MODELS = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))
#: Fixes meant to reach positives / negatives = 1 (the default sampling_strategy).
BALANCING = {"random_over", "random_under", "smote", "borderline_smote", "borderline_smote2", "svm_smote",
             "adasyn", "near_miss", "cluster_centroids", "class_weight"}  # fmt: skip


@pytest.mark.parametrize("fix", FIXES)
def test_every_fix_runs_end_to_end(make_cfg: Callable[..., DictConfig], fix: str) -> None:
    m = experiment.run(make_cfg(*SMALL, f"fix={fix}", "metrics.n_boot=0")).metrics
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
    assert m["test/roc_auc"] > 0.8 and m["test/pr_auc"] > 2 * m["test/prevalence"]


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
