"""One run: data -> fix + model on train -> calibrate and choose a threshold on calib -> score test.

``run(cfg)`` is a plain function of the composed config; it knows nothing of MLflow.
Objects are built from their config nodes with ``hydra.utils.instantiate``.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from sklearn.utils._param_validation import InvalidParameterError

from pipeline import curves, data, fixes, metrics, models
from pipeline.compat import check_compatible
from pipeline.decision import Costs, Decider, Decision
from pipeline.errors import ConfigError
from pipeline.result import RunResult

log = logging.getLogger(__name__)

#: Keys of an option node that describe it rather than being constructor arguments.
META_KEYS = ("name", "scale", "needs", "kind", "prior_known")


def build(node: DictConfig, meta: tuple[str, ...] = META_KEYS) -> Any:
    """Instantiate an option node, leaving out its descriptive ``meta`` keys (``name``, ``scale``)."""
    kwargs = {k: v for k, v in node.items() if k not in meta}
    try:
        return instantiate(OmegaConf.create(kwargs), _convert_="all")
    except InstantiationException as err:
        if isinstance(err.__cause__, ConfigError):  # the object refused its arguments: say why
            raise err.__cause__ from None
        raise


#: Top-level keys that do not decide a run's numbers: where it is tracked, how it is named and
#: shown, whether it may be resumed, and Hydra's own node in a sweep's composed job config.
NOT_HASHED = ("tracking", "study", "resume", "leaderboard", "hydra")


_LIBRARY_ERROR = re.compile(
    r"The '(?P<key>\w+)' parameter of (?P<owner>\w+) must be (?P<accepted>.+?)\. Got (?P<value>.+?) instead", re.S
)


def library_error(err: Exception, built: dict[str, Any]) -> Exception:
    """scikit-learn's and imbalanced-learn's ``InvalidParameterError`` (raised at ``fit``) as the
    config key that set the parameter (``fix.k_neighbors=0 is not accepted; accepted: an int in
    the range [1, inf) ...``). ``built`` maps each config group to the object built from it."""
    found = _LIBRARY_ERROR.search(str(err))
    if found is None:
        return err
    key, owner = found["key"], found["owner"]
    by_owner = [g for g, obj in built.items() if type(obj).__name__ == owner]
    by_key = [g for g, obj in built.items() if key in obj.get_params(deep=False)]
    group = (by_owner or by_key or [owner])[0]
    # the libraries print sets of strings in hash order, which changes from one process to the next
    accepted = re.sub(r"\{('[^{}]*')\}", lambda m: "{" + ", ".join(sorted(m[1].split(", "))) + "}", found["accepted"])
    return ConfigError(f"{group}.{key}", found["value"].strip("'\""), accepted)


def config_hash(cfg: DictConfig) -> str:
    """A short hash of everything that decides a run's numbers: a job's identity for resume."""
    keep = {k: cfg[k] for k in cfg if k not in NOT_HASHED}
    whole = {k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v for k, v in keep.items()}
    return hashlib.sha256(OmegaConf.to_yaml(OmegaConf.create(whole)).encode()).hexdigest()[:12]


def prepare(cfg: DictConfig) -> data.Splits:
    """The splits of (dataset, positive rate, split, seed); made once per process and reused."""
    if cfg.split.name == "cv":
        raise ConfigError("split", "cv", "split=default here", why="the DVC stages hold one train / calib / test split")
    return _prepare(OmegaConf.to_yaml(cfg.dataset), cfg.imbalance.positive_rate, OmegaConf.to_yaml(cfg.split), cfg.seed)


def fingerprint(cfg: DictConfig) -> str:
    """The data fingerprint a run of ``cfg`` tags: its split parts', or (``split=cv``) the whole
    dataset's at its positive rate."""
    if cfg.split.name == "cv":
        from pipeline import crossval

        return data.fingerprint([crossval.dataset(cfg)])
    return prepare(cfg).fingerprint


@functools.lru_cache(maxsize=8)
def _prepare(dataset_yaml: str, rate: float | None, split_yaml: str, seed: int) -> data.Splits:
    split = OmegaConf.create(split_yaml)
    data.check_numbers(split, ("calib", "test"), ("min_positives",))
    dataset = data.set_positive_rate(_load(dataset_yaml), rate, seed)
    splits = data.split(dataset, split.calib, split.test, seed)
    data.check_positives(splits, split.min_positives, rate)
    return splits


def load(cfg: DictConfig) -> data.Dataset:
    """The whole dataset of the run's config (loaded once per process)."""
    return _load(OmegaConf.to_yaml(cfg.dataset))


@functools.lru_cache(maxsize=4)
def _load(dataset_yaml: str) -> data.Dataset:
    node = OmegaConf.create(dataset_yaml)
    assert isinstance(node, DictConfig)
    dataset: data.Dataset = build(node, meta=())  # a dataset's name is an argument (keel's set)
    return dataset


@dataclass
class Fitted:
    """What training produces: one ``Decider``, the fix + model pipeline fitted on train,
    calibrated on calib, with the threshold chosen on calib. It is what a run logs and the DVC
    train stage writes; the rest is read from it."""

    model: Decider

    @property
    def pipe(self) -> Any:
        return self.model.inner

    @property
    def decision(self) -> Decision:
        return self.model.decision

    @property
    def warnings(self) -> list[str]:
        return list(self.model.warnings or [])

    @property
    def fit_positive_rate(self) -> float:
        return fit_prior(self.pipe)


def fit_prior(pipe: Any) -> float:
    """The (weighted) positive rate a fitted pipeline's model learnt under, after the fix."""
    return float(pipe.named_steps["model"].fit_positive_rate_)


def costs_of(cfg: DictConfig) -> Costs:
    return Costs(fp=float(cfg.costs.fp), fn=float(cfg.costs.fn))


def fit(cfg: DictConfig, splits: data.Splits, quiet: bool = False) -> Fitted:
    """Fit fix + model on train only; calibrate and choose the threshold on calib only.
    Calibration's warnings are logged unless ``quiet`` (they are kept on the result)."""
    check_compatible(cfg)
    train = splits.train
    numeric = [str(c) for c in train.X.columns if c not in train.categorical]
    fix = fixes.for_categorical(build(cfg.fix), numeric, train.categorical)
    fixes.check_applicable(fix, train.y, train.categorical, cfg.fix.name)
    scale, impute = cfg.model.get("scale", False), cfg.dataset.get("impute")
    before, after = models.preprocessing(scale, numeric, train.categorical, impute)
    model = build(cfg.model)
    pipe = fixes.compose(fix, before, model, cfg.seed, after)
    try:
        pipe.fit(train.X, train.y)
    except InvalidParameterError as err:  # raised at fit: say which config key set the parameter
        raise library_error(err, {"fix": fix, "model": model}) from None
    calibrator, calib = build(cfg.calibration), splits.calib
    cascade = models.cascade_of(pipe)
    if cascade is not None:  # stage 1's threshold is set on calib, like the calibration
        cascade.tune(models.model_inputs(pipe, calib.X), calib.y)
    calibrated = calibrator.fit(pipe, calib.X, calib.y, float(train.y.mean()), fit_prior(pipe))
    notes = calibrator.warnings(int(calib.y.sum()))
    for note in [] if quiet else notes:
        log.warning(note)
    decision = build(cfg.threshold).choose(calib.y, models.positive_scores(calibrated, calib.X), costs_of(cfg))
    policy = str(cfg.threshold.name)
    return Fitted(Decider(calibrated, threshold=decision.threshold, policy=policy, info=decision.info, warnings=notes))


def evaluate(
    cfg: DictConfig,
    fitted: Fitted,
    test: data.Dataset,
    curves: bool = True,
    on_curves: Callable[[dict[str, Any]], None] | None = None,
) -> RunResult:
    """Score the test split: metrics, curves (unless ``curves`` is false) and the prediction
    table (test rows only here). ``on_curves`` gets the curves as soon as they are computed,
    before the metrics' bootstrap (a single run's writer draws them meanwhile)."""
    p, costs = models.positive_scores(fitted.model, test.X), costs_of(cfg)
    plots = curves_of(test.y, p, fitted.decision.threshold, costs, test, fitted, cfg.seed) if curves else {}
    if plots and on_curves is not None:
        on_curves(plots)
    scores = _metrics(test, p, fitted.decision, costs, cfg)
    scores["fix/train_positive_rate"] = fitted.fit_positive_rate
    sampler = fitted.pipe.named_steps.get("fix")
    scores.update({f"fix/{k}": float(v) for k, v in getattr(sampler, "diagnostics_", {}).items()})
    cascade = models.cascade_of(fitted.pipe)
    if cascade is not None:
        scores.update({f"model/{k}": float(v) for k, v in cascade.diagnostics_.items()})
        test_share = cascade.diagnose(models.model_inputs(fitted.pipe, test.X), test.y)
        scores.update({f"model/test_{k}": v for k, v in test_share.items()})
    info = {"config_hash": config_hash(cfg)}
    if fitted.warnings:
        info["warning"] = "; ".join(fitted.warnings)
    predictions = _predictions(test, p, fitted.model.predict(test.X))
    return RunResult(scores, plots, predictions, fitted.model, fitted.decision, info, example=test.X.head(5))


def run(cfg: DictConfig, on_curves: Callable[[dict[str, Any]], None] | None = None) -> RunResult:
    """Run one configuration end to end and return its metrics, curves and predictions
    (``on_curves``: see ``evaluate``; not for a cross-validated run, whose curves come last)."""
    if cfg.split.name == "cv":
        from pipeline import crossval

        return crossval.run(cfg)
    clock = {"start": time.perf_counter()}
    splits = prepare(cfg)
    clock["prepared"] = time.perf_counter()
    fitted = fit(cfg, splits)
    clock["fitted"] = time.perf_counter()
    result = evaluate(cfg, fitted, splits.test, on_curves=on_curves)
    clock["evaluated"] = time.perf_counter()
    result.metrics.update(timings(clock))
    result.attach_data(splits, cfg.dataset.name)
    return result


def _metrics(test: data.Dataset, p: np.ndarray, decision: Decision, costs: Costs, cfg: DictConfig) -> dict[str, float]:
    out = {f"test/{k}": float(v) for k, v in metrics.suite(test.y, p, decision.threshold, costs).items()}
    out["calib/threshold"] = decision.threshold
    out.update(decision.info)
    if "calib/bayes_threshold" in decision.info:
        bayes = p >= costs.bayes_threshold
        out["test/expected_cost_at_bayes"] = metrics.expected_cost(test.y, bayes.astype(int), costs)
    for prefix, values in test.subgroups():
        groups = metrics.by_group(test.y, p, decision.threshold, values, prefix, cfg.metrics.n_boot, cfg.seed)
        out.update({f"group/{k}": v for k, v in groups.items()})
    return out


def curves_of(
    y: np.ndarray, p: np.ndarray, threshold: float, costs: Costs, test: data.Dataset, fitted: Fitted, seed: int
) -> dict[str, Any]:
    """PR, ROC, reliability per subgroup, cost and score histogram of scores ``p`` on ``y``
    (``test``'s labels); the decision boundary of ``fitted`` over its points where it has two
    features."""
    out: dict[str, Any] = {
        "pr": curves.pr_curve(y, p, threshold),
        "roc": curves.roc_curve(y, p, threshold),
        "reliability": curves.reliability_by_group(y, p, test.subgroups()),
        "cost": curves.cost_curve(y, p, costs, threshold),
        "scores": curves.score_histogram(y, p),
    }
    score = functools.partial(models.positive_scores, fitted.model)
    grid = curves.boundary(score, test.X, test.y, threshold, seed)
    if grid is not None:
        out["boundary"] = grid
    return out


def _predictions(test: data.Dataset, p: np.ndarray, decided: np.ndarray) -> pd.DataFrame:
    """One row per test case: enough to recompute any metric later. ``y_pred`` is what the
    logged model's ``predict`` gives. The subgroup is column ``group`` (``group.<column>`` each
    where there are several)."""
    frame = pd.DataFrame(
        {"y_true": test.y.astype(np.int8), "score": p, "y_pred": np.asarray(decided).astype(np.int8)},
        index=test.X.index,
    )
    if test.groups is None:
        frame["group"] = None
        return frame.rename_axis("row")
    for col in test.groups.columns:
        several = test.groups.shape[1] > 1
        frame[f"group.{col}" if several else "group"] = test.groups[col].astype(str).to_numpy()
    return frame.rename_axis("row")


def timings(clock: dict[str, float]) -> dict[str, float]:
    return {f"time/{name}_s": t - prev for (_, prev), (name, t) in itertools.pairwise(clock.items())}
