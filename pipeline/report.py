"""``python -m pipeline.report``: the verdict across runs, from any store. Every configuration
against a control on matched cells, ranks across datasets (Friedman, Nemenyi) and the charts,
written to ``reports/<name>/`` and logged as a run tagged ``kind=report``. The statistics are in
``pipeline.verdict``, the figures in ``pipeline.report_plots``."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline import credentials, plots
from pipeline.paths import check_name, claim_folder
from pipeline.verdict import CELL_PREFIXES, cell_frame

#: The file every report folder holds: ``--out`` or ``reports/<name>`` is replaced only when it is there.
MARKER = ".imbalance-lab-report"
#: The metrics the report compares unless ``--metrics`` says otherwise.
REPORT_METRICS = ("test/pr_auc", "test/f1", "test/roc_auc", "test/brier", "test/ece")
#: What the charts need besides the compared metrics: AUCs against each dataset's positive rate.
CHARTED = ("test/prevalence", "test/pr_auc", "test/roc_auc")


def parse_control(text: str) -> dict[str, str]:
    """``fix.name=none,threshold.name=max_f1`` as a dict; refused in one line otherwise."""
    from pipeline.errors import ConfigError

    pairs = [p.split("=", 1) for p in text.split(",") if p.strip()]
    if not pairs or any(len(p) != 2 or not p[0].strip() for p in pairs):
        accepted = "key=value pairs joined by commas, e.g. fix.name=none,threshold.name=max_f1"
        raise ConfigError("--control", text, accepted)
    return {k.strip(): v.strip() for k, v in pairs}


def fetch_runs(client: Any, experiments: list[str], parents: list[str]) -> list[Any]:
    """The FINISHED job runs of the experiments (by name) and of the sweeps (parent run ids):
    no sweep parents, no earlier reports."""
    from mlflow.entities import ViewType

    from pipeline.errors import ConfigError

    ids = []
    for name in experiments:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            known = ", ".join(sorted(e.name for e in client.search_experiments(view_type=ViewType.ACTIVE_ONLY)))
            raise ConfigError("--experiment", name, f"an experiment in the store: {known or 'there is none'}")
        ids.append(experiment.experiment_id)
    filters = [("", ids)] if ids else []
    for parent in parents:
        try:
            run = client.get_run(parent)
        except Exception:
            raise ConfigError("--parent", parent, "the run id of a sweep's parent run in the store") from None
        filters.append((f" and tags.mlflow.parentRunId = '{parent}'", [run.info.experiment_id]))
    runs: dict[str, Any] = {}
    for extra, where in filters:
        token = None
        while True:
            query = f"attributes.status = 'FINISHED'{extra}"
            page = client.search_runs(where, query, max_results=5000, page_token=token)
            runs.update((r.info.run_id, r) for r in page)
            token = page.token
            if not token:
                break
    return [r for r in runs.values() if r.data.tags.get("sweep") != "true" and r.data.tags.get("kind") != "report"]


def one_per_identity(runs: list[Any]) -> tuple[list[Any], int]:
    """The runs with each identity once (``store.one_per_identity``), and how many were dropped."""
    from pipeline import store

    frame = pd.DataFrame(
        [
            {"start_time": r.info.start_time, **{k: r.data.tags.get(k.removeprefix("tags.")) for k in store.IDENTITY}}
            for r in runs
        ]
    )
    kept, dropped = store.one_per_identity(frame)
    return [runs[i] for i in kept.index], dropped


def cells_from_runs(client: Any, runs: list[Any], metrics: list[str], control: dict[str, str]) -> pd.DataFrame:
    """One row per (run, fold): ``cell_frame``'s columns, the run id and the metrics (a
    cross-validated run's per-fold values from each metric's history)."""
    from concurrent.futures import ThreadPoolExecutor

    cells = cell_frame(pd.DataFrame([r.data.params for r in runs]), control)

    def rows(i: int) -> list[dict[str, Any]]:
        run = runs[i]
        base = {"run_id": run.info.run_id, **{str(k): v for k, v in cells.iloc[i].items()}}
        values = {m: run.data.metrics.get(m, np.nan) for m in metrics}
        charted = {m: run.data.metrics.get(m, np.nan) for m in CHARTED if m not in values}  # the run's mean
        folds = int(run.data.tags.get("cv_folds", 0))
        if not folds:
            return [{**base, "fold": 0, **values, **charted}]
        history = {m: {h.step: h.value for h in client.get_metric_history(run.info.run_id, m)} for m in values}
        return [{**base, "fold": k, **{m: history[m].get(k, np.nan) for m in values}, **charted} for k in range(folds)]

    with ThreadPoolExecutor(8) as pool:
        table = [row for part in pool.map(rows, range(len(runs))) for row in part]
    return pd.DataFrame(table)


@dataclass
class Verdict:
    cells: pd.DataFrame
    paired: pd.DataFrame
    rankings: list[Any]
    text: str


def verdict_of(cells: pd.DataFrame, metrics: list[str], control: str) -> Verdict:
    """Paired differences against the control, and ranks per model and (several models) overall."""
    from pipeline import verdict

    extra = [c for c in cells.columns if c.startswith(CELL_PREFIXES[2:])]
    # a configuration run twice on the same cell (two sweeps, no resume) counts once: the newest
    # run (the store lists runs newest first)
    cells = cells.drop_duplicates([*verdict.CELL, *extra, "label"])
    share = float(cells["test_share"].mean())
    rows, rankings = [], []
    for metric in metrics:
        # the metrics of the scores alone compare fixes, not the thresholds applied to their scores
        table = verdict.without_threshold(cells) if metric in verdict.SCORE_ONLY else cells
        rows += verdict.paired(table, [metric], extra, share)
        for model, part in table.groupby("model", sort=True):
            rankings.append(verdict.rank(part, metric, "config", extra, str(model)))
        if table["model"].nunique() > 1:
            both = table.assign(entry=table["model"] + " " + table["config"])
            rankings.append(verdict.rank(both, metric, "entry", extra, "all models"))
    text = verdict.sentences(rows, rankings, control, metrics)
    return Verdict(cells, verdict.paired_frame(rows), rankings, text)


def write_report(result: Verdict, out: Path, title: str, control: str) -> list[Path]:
    """``report.md``, the CSVs and the PNGs in ``out``; the files written."""
    from pipeline import report_plots
    from pipeline.verdict import short

    claim_folder("--out", out, MARKER)
    result.cells.to_csv(out / "cells.csv", index=False)
    result.paired.to_csv(out / "paired.csv", index=False)
    lines = [
        f"# {title}",
        "",
        result.text,
        "",
        f"Control: `{control}`, compared on matched cells "
        "(dataset, positive rate, model, seed, fold). 95% intervals: " + _interval_note(result.paired),
        "",
    ]
    if len(result.paired):
        shown = result.paired.assign(
            metric=result.paired["metric"].map(short),
            difference=[
                f"{m:+.3f} [{lo:+.3f}, {hi:+.3f}]" for m, lo, hi in result.paired[["mean", "low", "high"]].to_numpy()
            ],
            wins=result.paired["wins"].map(lambda w: f"{w:.0%}"),
        )
        columns = ["model", "config", "control_model", "metric", "difference", "wins", "cells", "datasets", "outcome"]
        lines += ["## Against the control", "", shown[columns].to_markdown(index=False), ""]
    ranks, tests = [], []
    for ranking in result.rankings:
        avg = ranking.average
        ranks += [
            {"group": ranking.group, "metric": ranking.metric, "config": c, "average_rank": r} for c, r in avg.items()
        ]
        tests.append(
            {
                "group": ranking.group,
                "metric": ranking.metric,
                "datasets": len(ranking.table),
                "dropped": ranking.dropped,
                "configurations": ranking.table.shape[1],
                "friedman_chi2": ranking.statistic,
                "p_value": ranking.p_value,
                "critical_difference": ranking.critical_difference,
            }
        )
        if ranking.nemenyi is not None:
            name = f"cd_{ranking.group.replace(' ', '_')}_{short(ranking.metric)}.png"
            plots.save(report_plots.critical_difference(ranking), out / name)
            lines += [f"![{name}]({name})", ""]
    pd.DataFrame(ranks).to_csv(out / "ranks.csv", index=False)
    friedman = pd.DataFrame(tests)
    friedman.to_csv(out / "friedman.csv", index=False)
    if len(friedman):
        table = friedman.to_markdown(index=False, floatfmt=".3g")
        lines += ["## Ranks across datasets (Friedman, Nemenyi)", "", table, ""]
    if {"test/pr_auc", "test/roc_auc"} <= set(result.cells.columns):
        plots.save(report_plots.auc_against_rate(result.cells), out / "auc_vs_positive_rate.png")
        lines += ["![PR-AUC and ROC-AUC against the positive rate](auc_vs_positive_rate.png)", ""]
    if len(result.paired) and result.paired["metric"].isin(["test/ece", "test/brier"]).any():
        plots.save(report_plots.calibration_against_control(result.paired), out / "calibration_vs_control.png")
        lines += ["![ECE and Brier against the control](calibration_vs_control.png)", ""]
    (out / "report.md").write_text("\n".join(lines))
    return sorted(out.iterdir())


def _interval_note(paired: pd.DataFrame) -> str:
    kinds = sorted(set(paired["interval"].str.replace(r"\d+ ", "", regex=True))) if len(paired) else []
    return "; ".join(kinds) or "none (no matched cells)"


def log_report(client: Any, experiment_id: str, out: Path, title: str, result: Verdict, params: dict[str, str]) -> str:
    """The report as a FINISHED run tagged ``kind=report`` (filter ``tags.kind = 'report'``)."""
    from mlflow.entities import Param

    from pipeline import tracking

    tags = {**tracking.git_tags(), "kind": "report", "mlflow.note.content": result.text}
    run_id = str(client.create_run(experiment_id, run_name=title, tags=tags).info.run_id)
    with tracking._ending(client, run_id):  # FINISHED, FAILED, or KILLED on Ctrl-C, as every run
        p_values = {
            f"friedman/{r.group}/{r.metric.removeprefix('test/')}/p".replace(" ", "_"): r.p_value
            for r in result.rankings
            if not np.isnan(r.p_value)
        }
        tracking.log_metrics(client, run_id, p_values, {})
        client.log_batch(run_id, params=[Param(k, v[:6000]) for k, v in params.items()])
        client.log_artifacts(run_id, str(out))
    return run_id


def main(argv: list[str] | None = None) -> None:
    import argparse
    import sys

    from pipeline import tracking
    from pipeline.errors import ConfigError

    parser = argparse.ArgumentParser(
        prog="python -m pipeline.report",
        description="The verdict across runs: every configuration against a control on matched cells, ranks "
        "across datasets (Friedman, Nemenyi), the AUC-against-rate and calibration charts.",
    )
    parser.add_argument("--experiment", action="append", default=[], help="an experiment (study) name; repeatable")
    parser.add_argument("--parent", action="append", default=[], help="a sweep's parent run id; repeatable")
    parser.add_argument(
        "--tracking-uri", default=None, type=credentials.taken, help="the store (default: as the CLI, sqlite mlflow.db)"
    )
    parser.add_argument("--control", default="fix.name=none,threshold.name=max_f1", help="params of the control")
    parser.add_argument("--metrics", default=",".join(REPORT_METRICS), help="comma-separated metric keys")
    parser.add_argument("--name", default=None, help="the report's name (default: the first source)")
    parser.add_argument("--out", type=Path, default=None, help="its folder (default: reports/<name>/)")
    args = parser.parse_args(argv)
    try:
        if not args.experiment and not args.parent:
            raise ConfigError("--experiment", None, "one or more experiment names or --parent run ids")
        name = check_name("--name", args.name or (args.experiment or args.parent)[0])
        out = args.out or Path("reports") / name
        control = parse_control(args.control)
        metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
        uri = tracking.resolve_uri(args.tracking_uri)
        tracking.check_uri(uri)
        client = tracking.client_for(uri)
        runs, dropped = one_per_identity(fetch_runs(client, args.experiment, args.parent))
        if not runs:
            raise ConfigError("--experiment", ",".join(args.experiment + args.parent), "sources with FINISHED runs")
        cells = cells_from_runs(client, runs, metrics, control)
        unknown = [m for m in metrics if cells[m].isna().all()]
        if unknown:
            raise ConfigError("--metrics", ",".join(unknown), "metric keys the runs logged, such as test/pr_auc")
        claim_folder("--out" if args.out else "--name", out, MARKER)
    except ConfigError as err:
        print(f"error: {credentials.mask(str(err))}", file=sys.stderr)
        sys.exit(2)
    title = f"report: {name}"
    result = verdict_of(cells, metrics, args.control)
    write_report(result, out, title, args.control)
    sources = {"experiments": ",".join(args.experiment), "parents": ",".join(args.parent)}
    params = {"control": args.control, "metrics": ",".join(metrics), **{k: v for k, v in sources.items() if v}}
    run_id = log_report(client, runs[0].info.experiment_id, out, title, result, params)
    print(result.text)
    if dropped:
        from pipeline.store import duplicates_line

        print(duplicates_line(dropped))
    print(f"\n{len(runs)} runs, {len(cells)} cells -> {out}/report.md; logged as run {run_id} (tags.kind = 'report')")


if __name__ == "__main__":
    from pipeline.interrupts import quick_exit

    try:
        main()
    except KeyboardInterrupt:  # Ctrl-C: one line, not the traceback of wherever it landed
        print("interrupted", file=sys.stderr)
        quick_exit(130)
    quick_exit(0)  # without the interpreter's teardown (about 0.45 s)
