"""1. Tracking overhead: the seed_demo study's jobs in one process, with full tracking, with
tracking off, and as the straightforward script a competent MLflow user would write (one
``log_param`` / ``log_metric`` call per key, ``log_figure`` per plot, ``mlflow.sklearn.log_model``
with its defaults but for a pickle format, which imblearn pipelines need)."""

from __future__ import annotations

import itertools
from typing import Any

from omegaconf import OmegaConf

from benchmarks.common import Row, composed, median, scratch, timed
from pipeline.paths import REPO_ROOT


def study_overrides(study: str = "seed_demo") -> list[list[str]]:
    """Each job of the study, as the overrides Hydra's basic sweeper gives it."""
    node = OmegaConf.load(REPO_ROOT / "experiments" / f"{study}.yaml")
    params = node.hydra.sweeper.params
    axes = [[f"{key}={value}" for value in str(values).split(",")] for key, values in params.items()]
    return [[f"experiments={study}", *job] for job in itertools.product(*axes)]


def naive_job(cfg: Any) -> None:
    """The straightforward script: the same fits and plots, logged one call at a time."""
    import mlflow
    import mlflow.sklearn

    from pipeline import experiment, plots, tracking

    with mlflow.start_run(run_name=tracking.run_name(cfg)):
        for key, value in tracking.flatten(cfg).items():
            mlflow.log_param(key, value)
        splits = experiment.prepare(cfg)
        fitted = experiment.fit(cfg, splits)
        result = experiment.evaluate(cfg, fitted, splits.test)
        for key, value in result.metrics.items():
            mlflow.log_metric(key, value)
        for name, data in result.curves.items():
            if name in plots.KINDS:
                mlflow.log_figure(plots.figure(name, data), f"plots/{name}.png")
        mlflow.sklearn.log_model(fitted.model, name="model", serialization_format="cloudpickle")


def main(naive_jobs: int = 10, jobs_limit: int | None = None) -> list[Row]:
    """Per-job medians: full tracking and tracking off over every job (alternating which goes
    first, so that neither always finds the prepared data cached), and the naive script on
    ``naive_jobs`` jobs spread over the study, against full tracking on those same jobs.
    Configs are composed before the clock starts: the three do the same composition."""
    import mlflow

    from pipeline import app, tracking

    out = scratch("tracking")
    jobs = study_overrides()[:jobs_limit]
    full_uri = f"sqlite:///{out / 'full.db'}"
    with composed() as compose:
        full_cfgs = [compose(*job, f"tracking.uri={full_uri}") for job in jobs]
        off_cfgs = [compose(*job, "tracking.enabled=false") for job in jobs]
        naive_cfgs = [compose(*job) for job in jobs]
    tracking.prepare(full_cfgs[0])  # the store is made once, first (as a sweep's parent run does)
    full, off = [0.0] * len(jobs), [0.0] * len(jobs)
    for i, (f_cfg, o_cfg) in enumerate(zip(full_cfgs, off_cfgs, strict=True)):
        order = [("full", f_cfg), ("off", o_cfg)] if i % 2 else [("off", o_cfg), ("full", f_cfg)]
        for kind, cfg in order:
            seconds = timed(lambda cfg=cfg: app.run_job(cfg))[0]
            (full if kind == "full" else off)[i] = seconds
    mlflow.set_tracking_uri(f"sqlite:///{out / 'naive.db'}")
    mlflow.set_experiment("naive")
    picked = list(range(0, len(jobs), max(1, len(jobs) // naive_jobs)))[:naive_jobs]
    naive = [timed(lambda i=i: naive_job(naive_cfgs[i]))[0] for i in picked]
    full_m, off_m, naive_m = median(full), median(off), median(naive)
    full_same = median([full[i] for i in picked])
    n = len(jobs)
    return [
        Row("1 tracking", f"median s/job over {n} seed_demo jobs", f"off {off_m:.3f}", f"full {full_m:.3f}",
            full_m / off_m, "<= 2", full_m / off_m <= 2),
        Row("1 tracking", f"median s/job, the same {len(picked)} jobs", f"naive script {naive_m:.3f}",
            f"full {full_same:.3f}", naive_m / full_same, ">= 10 (naive / full)", naive_m / full_same >= 10),
    ]  # fmt: skip


if __name__ == "__main__":
    import sys

    for row in main(*map(int, sys.argv[1:])):
        print(row)
