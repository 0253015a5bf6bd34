"""1. Tracking overhead: the seed_demo study's jobs in one process, with full tracking, with
tracking off, and as the straightforward script a competent MLflow user would write (one
``log_param`` / ``log_metric`` call per key, ``log_figure`` per plot, ``mlflow.sklearn.log_model``
with its defaults but for a pickle format, which imblearn pipelines need)."""

from __future__ import annotations

import itertools
import time
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


def _block(cfgs: list[Any], deferred: bool) -> tuple[list[float], float]:
    """Each job's seconds, and the block's wall time, the prepared data not cached at its start.
    ``deferred``: as a sweep under the basic launcher runs them, each run handed to the run
    writer; the wall time includes waiting for the writer to finish every run."""
    from pipeline import app, experiment, writer

    experiment._prepare.cache_clear()
    experiment._load.cache_clear()
    start = time.perf_counter()
    if deferred:
        writer.enable()
    seconds = [timed(lambda cfg=cfg: app.run_job(cfg))[0] for cfg in cfgs]
    if deferred:
        failed = writer.finish()
        assert not failed, failed
    return seconds, time.perf_counter() - start


def main(naive_jobs: int = 10, jobs_limit: int | None = None) -> list[Row]:
    """Per-job medians and the wall time of all the jobs: full tracking (runs written by the
    sweep's run writer, as under the basic launcher) against tracking off, each in a block that
    starts with no prepared data cached; the naive script on ``naive_jobs`` jobs spread over the
    study, against full tracking on those same jobs (written synchronously, as a single run is).
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
    app.run_job(off_cfgs[0])  # imports and first-call costs paid before either block
    off, off_wall = _block(off_cfgs, deferred=False)
    full, full_wall = _block(full_cfgs, deferred=True)
    mlflow.set_tracking_uri(f"sqlite:///{out / 'naive.db'}")
    mlflow.set_experiment("naive")
    picked = list(range(0, len(jobs), max(1, len(jobs) // naive_jobs)))[:naive_jobs]
    naive = [timed(lambda i=i: naive_job(naive_cfgs[i]))[0] for i in picked]
    single = [timed(lambda i=i: app.run_job(full_cfgs[i]))[0] for i in picked]
    full_m, off_m, naive_m, single_m = median(full), median(off), median(naive), median(single)
    full_same = median([full[i] for i in picked])
    n = len(jobs)
    return [
        Row("1 tracking", f"median s/job over {n} seed_demo jobs (runs written by the sweep's writer)",
            f"off {off_m:.3f}", f"full {full_m:.3f}", full_m / off_m, "<= 1.3", full_m / off_m <= 1.3),
        Row("1 tracking", f"wall s, all {n} jobs, every run written and ended", f"off {off_wall:.1f}",
            f"full {full_wall:.1f}", full_wall / off_wall, "(report)"),
        Row("1 tracking", f"median s/job, the same {len(picked)} jobs", f"naive script {naive_m:.3f}",
            f"full {full_same:.3f}", naive_m / full_same, ">= 30 (naive / full)", naive_m / full_same >= 30),
        Row("1 tracking", f"median s/job, the same {len(picked)} jobs, each written before it returns (one run)",
            f"naive script {naive_m:.3f}", f"full {single_m:.3f}", naive_m / single_m, "(report)"),
    ]  # fmt: skip


if __name__ == "__main__":
    import sys

    for row in main(*map(int, sys.argv[1:])):
        print(row)
