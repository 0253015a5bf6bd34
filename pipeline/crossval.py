"""``split=cv``: repeated stratified k-fold for data with a few dozen positives.

In each fold the training part is split again, stratified, into the part the fix and model see
and the part calibration and the threshold are chosen on; the held-out fold is only scored.
One run per configuration: each metric is the mean over the folds, its per-fold values are the
run's ``history`` (step = fold), ``<metric>_std`` beside the test metrics; the prediction table
holds every out-of-fold prediction with its ``fold``. The logged model is fitted the same way
on all rows (the folds estimate how it performs).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig
from sklearn.model_selection import RepeatedStratifiedKFold, train_test_split

from pipeline import data, experiment
from pipeline.errors import ConfigError

#: Metrics whose per-fold values are logged as their history (the rest are logged as means).
HISTORY_PREFIXES = ("test/", "calib/")
#: The most folds and repeats a cv split takes (the field's protocols use 5x2 to 10x10).
MAX_FOLDS, MAX_REPEATS = 50, 100


def settings(cfg: DictConfig) -> tuple[int, int, float, int]:
    """``(folds, repeats, calib, min_positives)`` of a cv split, each checked."""
    split = cfg.split
    data.check_numbers(split, ("calib",), ("folds", "repeats", "min_positives"))
    # bounded: a run fits folds x repeats times, and a typo of a million must not run for days
    for key, low, high in (("folds", 2, MAX_FOLDS), ("repeats", 1, MAX_REPEATS), ("min_positives", 1, None)):
        if split[key] < low or (high is not None and split[key] > high):
            raise ConfigError(
                f"split.{key}", split[key], f"an integer in [{low}, {high}]" if high else f"an integer >= {low}"
            )
    if not 0 < split.calib < 1:
        raise ConfigError("split.calib", split.calib, "a fraction in (0, 1) of each fold's training part")
    return split.folds, split.repeats, float(split.calib), split.min_positives


def dataset(cfg: DictConfig) -> data.Dataset:
    """The whole dataset at the run's positive rate (every row is scored once per repeat)."""
    return data.set_positive_rate(experiment.load(cfg), cfg.imbalance.positive_rate, cfg.seed)


def folds(whole: data.Dataset, cfg: DictConfig) -> Iterator[tuple[int, data.Splits]]:
    """``(fold, splits)`` for each of ``folds x repeats`` folds: train (what the fix and model
    see) and calib from the fold's training part, test = the held-out fold."""
    n_folds, repeats, calib, min_positives = settings(cfg)
    positives, negatives = int(whole.y.sum()), int(len(whole.y) - whole.y.sum())
    if min(positives, negatives) < n_folds:
        raise ConfigError(
            "split.folds", n_folds, f"at most {min(positives, negatives)} folds for this data",
            why=f"each fold needs a positive: {positives} positives, {negatives} negatives",
        )  # fmt: skip
    # each calib part needs min_positives, and train at least 2 (a fix needs some to work on)
    held_in = positives - -(-positives // n_folds)
    if round(held_in * calib) < min_positives or held_in - round(held_in * calib) < 2:
        raise ConfigError(
            "split.calib", calib, f"a share of each fold's {held_in} training positives that leaves >= "
            f"{min_positives} in calib (split.min_positives) and >= 2 to train on",
            why=f"{positives} positives in {n_folds} folds",
        )  # fmt: skip
    splitter = RepeatedStratifiedKFold(n_splits=n_folds, n_repeats=repeats, random_state=cfg.seed)
    for fold, (rest, test_rows) in enumerate(splitter.split(np.zeros(len(whole.y)), whole.y)):
        yield fold, _split(whole, rest, test_rows, calib, cfg.seed + fold)


def _split(whole: data.Dataset, rest: np.ndarray, test_rows: np.ndarray | None, calib: float, seed: int) -> data.Splits:
    train_rows, calib_rows = train_test_split(rest, test_size=calib, stratify=whole.y[rest], random_state=seed)
    parts = [whole.take(np.sort(r)) for r in (train_rows, calib_rows, test_rows if test_rows is not None else rest)]
    return data.Splits(parts[0], parts[1], parts[2], fingerprint=data.fingerprint(parts))


def run(cfg: DictConfig) -> experiment.RunResult:
    """Every fold fitted and scored, the metrics averaged; the model refitted on all rows."""
    clock = {"start": time.perf_counter()}
    whole = dataset(cfg)
    clock["prepared"] = time.perf_counter()
    per_fold, predictions = [], []
    for fold, splits in folds(whole, cfg):
        fitted = experiment.fit(cfg, splits, quiet=True)  # the model fitted on all rows says them once
        result = experiment.evaluate(cfg, fitted, splits.test, curves=False)
        per_fold.append(result.metrics)
        predictions.append(result.predictions.assign(fold=np.int16(fold)))
    final = experiment.fit(cfg, _split(whole, np.arange(len(whole.y)), None, settings(cfg)[2], cfg.seed))
    clock["fitted"] = time.perf_counter()
    pooled = pd.concat(predictions)
    means, history = aggregate(per_fold)
    y, p = pooled["y_true"].to_numpy(), pooled["score"].to_numpy()
    threshold = float(np.mean(history["calib/threshold"]))
    decision = final.decision
    scored = whole.take(whole.X.index.get_indexer(pooled.index))  # the rows of the pooled predictions
    plots = experiment.curves_of(y, p, threshold, experiment.costs_of(cfg), scored, final, cfg.seed)
    info = {"config_hash": experiment.config_hash(cfg), "cv_folds": str(len(per_fold))}
    if final.warnings:
        info["warning"] = "; ".join(final.warnings)
    means["model/threshold"] = float(decision.threshold)
    result = experiment.RunResult(means, plots, pooled, final.model, decision, info, example=whole.X.head(5))
    result.history = history
    clock["evaluated"] = time.perf_counter()
    result.metrics.update(experiment.timings(clock))
    result.info["data_fingerprint"] = experiment.fingerprint(cfg)
    result.inputs = [{**part, "part": "all", "dataset": cfg.dataset.name} for part in _describe(whole)]
    return result


def aggregate(per_fold: list[dict[str, float]]) -> tuple[dict[str, float], dict[str, list[float]]]:
    """The mean of each metric over the folds that have it, ``test/<metric>_std`` (sample std)
    beside each test metric, and the per-fold values of the test and calib metrics."""
    frame = pd.DataFrame(per_fold)
    means = {str(k): float(v) for k, v in frame.mean().items()}
    means.update({f"{k}_std": float(v) for k, v in frame.std(ddof=1).items() if str(k).startswith("test/")})
    history = {str(k): frame[k].tolist() for k in frame.columns if str(k).startswith(HISTORY_PREFIXES)}
    return means, history


def _describe(whole: data.Dataset) -> list[dict[str, Any]]:
    empty = whole.take(np.arange(0))
    described = data.describe(data.Splits(whole, empty, empty, fingerprint=""))
    return described[:1]
