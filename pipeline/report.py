"""Sweep leaderboard and cross-run charts, from the per-job records of a sweep."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from pipeline import plots

#: Leaderboard columns: accuracy always beside the majority-class baseline it must beat.
COLUMNS = ("test/pr_auc", "test/recall", "test/f1", "test/accuracy", "test/baseline_accuracy", "test/ece")


def records_frame(records: list[dict]) -> pd.DataFrame:
    """One row per finished job (run now, or kept from an earlier sweep): params and metrics."""
    rows = [{**r["params"], **r["metrics"]} for r in records if r["status"] in ("FINISHED", "KEPT")]
    return pd.DataFrame(rows)


def leaderboard(frame: pd.DataFrame, by: list[str], columns: tuple[str, ...] = COLUMNS) -> pd.DataFrame:
    """Mean and std over seeds of each metric, one row per combination of the ``by`` keys.

    Columns: the ``by`` keys, ``seeds`` (jobs averaged), then ``<metric>/mean`` and ``<metric>/std``.
    Rows are sorted by the ``by`` keys, the positive rate descending (rarer and rarer).
    """
    columns = tuple(c for c in columns if c in frame.columns)
    grouped = frame.groupby(by, sort=False, dropna=False)  # a null positive rate is "natural"
    table = grouped[list(columns)].agg(["mean", "std"])
    table.columns = ["/".join(c) for c in table.columns]
    table.insert(0, "seeds", grouped.size())
    ascending = [key != "imbalance.positive_rate" for key in by]
    return table.sort_index(level=by, ascending=ascending).reset_index()


def formatted(table: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """The leaderboard with ``mean +- std`` strings, one column per metric."""
    metrics = [c.removesuffix("/mean") for c in table.columns if c.endswith("/mean")]
    out = table.drop(columns=[f"{m}/{s}" for m in metrics for s in ("mean", "std")])
    if "imbalance.positive_rate" in out:
        out["imbalance.positive_rate"] = out["imbalance.positive_rate"].map(lambda r: "natural" if pd.isna(r) else r)
    for metric in metrics:
        mean, std = table[f"{metric}/mean"], table[f"{metric}/std"].fillna(0.0)
        out[metric.removeprefix("test/")] = [
            f"{m:.{digits}f} +- {s:.{digits}f}" for m, s in zip(mean, std, strict=True)
        ]
    return out


def markdown(table: pd.DataFrame) -> str:
    return str(formatted(table).to_markdown(index=False))


@dataclass
class SweepSummary:
    """What a finished sweep shows: terminal text, parent-run metrics and note."""

    text: str
    metrics: dict[str, float]
    note: str


def _numeric(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Param columns arrive as text; make the numeric ones sort as numbers ("None" -> NaN)."""
    for col in columns:
        converted = pd.to_numeric(frame[col].replace("None", "nan"), errors="coerce")
        if converted.notna().sum() == frame[col].ne("None").sum():
            frame[col] = converted
    return frame


def sweep_report(records: list[dict], by: list[str], out: Path, columns: tuple[str, ...] = COLUMNS) -> SweepSummary:
    """Leaderboard (CSV, Markdown) and metric-vs-positive-rate chart in ``out``; a summary."""
    out.mkdir(parents=True, exist_ok=True)
    refused = sum(r["status"] == "REFUSED" for r in records)
    failed = sum(r["status"] == "FAILED" for r in records)
    kept = sum(r["status"] == "KEPT" for r in records)
    frame = records_frame(records)
    finished = len(records) - failed - refused
    counts = (
        f"{finished} finished" + (f" ({kept} kept from earlier runs)" if kept else "") + f", {failed} failed"
        + (f", {refused} refused" if refused else "")
    )  # fmt: skip
    metrics = {"jobs/finished": float(finished), "jobs/failed": float(failed), "jobs/refused": float(refused),
               "jobs/kept": float(kept)}  # fmt: skip
    if frame.empty:
        (out / "leaderboard.md").write_text(f"No job finished ({counts}).\n")
        return SweepSummary(f"No job finished ({counts}).", metrics, f"Sweep: {counts}.")
    by = [b for b in by if b in frame.columns]
    frame = _numeric(frame, by)
    table = leaderboard(frame, by, columns)
    table.to_csv(out / "leaderboard.csv", index=False)
    text = markdown(table)
    (out / "leaderboard.md").write_text(text + "\n")
    shown = tuple(c for c in columns if f"{c}/mean" in table)[:3]
    if "imbalance.positive_rate" in by:
        plots.save(plots.rate_figure(table, by, shown), out / "metric_vs_positive_rate.png")
    else:
        plots.save(plots.bars_figure(table, by, shown), out / "metrics_by_config.png")
    best = frame.iloc[int(frame["test/pr_auc"].to_numpy().argmax())]
    metrics["best/test/pr_auc"] = float(best["test/pr_auc"])
    metrics.update({f"mean/{c}": float(frame[c].mean()) for c in columns if c in frame.columns})
    note = f"Sweep over {', '.join(by)}: {counts}. Best PR-AUC {best['test/pr_auc']:.3f}.\n\n{text}"
    terminal = f"{formatted(table).to_string(index=False)}\n{counts}"
    versus = against_control(records, columns)
    if versus is not None:
        versus.to_csv(out / "vs_control.csv", index=False)
        title = f"Against the control ({_CONTROL_TEXT}), paired on (dataset, rate, model, seed): mean difference "
        title += "[95% interval] and share of cells won"
        table_md = str(versus.to_markdown(index=False))
        (out / "leaderboard.md").write_text(f"{text}\n\n{title}\n\n{table_md}\n")
        note += f"\n\n{title}\n\n{table_md}"
        terminal += f"\n\n{title}:\n{versus.to_string(index=False)}"
    return SweepSummary(terminal, metrics, note)


#: The control a sweep's leaderboard compares with when the sweep ran it: no fix, threshold tuned for F1.
CONTROL = {"fix.name": "none", "threshold.name": "max_f1"}
_CONTROL_TEXT = "fix=none, threshold=max_f1"


def against_control(records: list[dict], columns: tuple[str, ...]) -> pd.DataFrame | None:
    """When the sweep ran the control: its mean per model, and each other configuration's paired
    difference from it on the same (dataset, rate, model, seed); None without a control."""
    from pipeline import verdict
    from pipeline.errors import ConfigError

    done = [r for r in records if r["status"] in ("FINISHED", "KEPT")]
    params = pd.DataFrame([r["params"] for r in done])
    if params.empty or any(k not in params for k in CONTROL):
        return None
    try:
        cells = cell_frame(params, CONTROL)
    except ConfigError:  # no control among the jobs, or several configurations match it
        return None
    values = pd.DataFrame([r["metrics"] for r in done])
    shown = [c for c in columns if c in values and c not in ("test/baseline_accuracy",)]
    cells = cells.assign(fold=0, **{c: values[c].to_numpy() for c in shown})
    extra = [c for c in cells.columns if c.startswith(CELL_PREFIXES[2:])]
    rows = verdict.paired_frame(verdict.paired(cells, shown, extra, float(cells["test_share"].mean())))
    control = cells[cells["config"] == verdict.CONTROL_LABEL].groupby("model")[shown].mean()
    table = [{"model": m, "config": "control", **{verdict.short(c): f"{v[c]:.3f}" for c in shown}}
             for m, v in control.iterrows()]  # fmt: skip
    for (model, config), part in rows.groupby(["model", "config"], sort=True):
        by_metric = part.set_index("metric")
        table.append({"model": model, "config": config, **{
            verdict.short(str(c)): f"{r['mean']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}] {r['wins']:.0%}"
            for c, r in by_metric.iterrows()}})  # fmt: skip
    return pd.DataFrame(table)


def describe(cfg: DictConfig, result: Any) -> str:
    """A run's Markdown note: the config in one line, headline metrics, accuracy against its
    baseline, and the threshold with the policy that chose it."""
    m, rate = result.metrics, cfg.imbalance.positive_rate
    lines = [
        f"**{cfg.fix.name}** + **{cfg.model.name}**, calibration **{cfg.calibration.name}**, "
        f"threshold **{cfg.threshold.name}** on `{cfg.dataset.name}` at positive rate "
        f"{'natural' if rate is None else rate}, seed {cfg.seed}.",
        "",
        "| PR-AUC | ROC-AUC | recall | precision | F1 | ECE | expected cost |",
        "|---|---|---|---|---|---|---|",
        "| " + " | ".join(f"{m[f'test/{k}']:.3f}" for k in _HEADLINE) + " |",
        "",
        f"Accuracy {m['test/accuracy']:.3f} against {m['test/baseline_accuracy']:.3f} for always "
        f"predicting the majority class.",
        f"Threshold {m.get('model/threshold', m['calib/threshold']):.6g}, chosen by `{cfg.threshold.name}` on the "
        "calib split and applied by the logged model's `predict`"
        + (f" (Bayes threshold {m['calib/bayes_threshold']:.3g})." if "calib/bayes_threshold" in m else "."),
    ]
    if "model/threshold" in m:
        folds = result.info.get("cv_folds", "?")
        lines += [
            f"The metrics are means over {folds} held-out folds (`split=cv`; each fold's value is in the metric's "
            f"history); the folds' thresholds average {m['calib/threshold']:.6g}. The logged model is fitted the "
            "same way on all rows.",
        ]
    return "\n".join(lines)


_HEADLINE = ("pr_auc", "roc_auc", "recall", "precision", "f1", "ece", "expected_cost")


# ---------------------------------------------------------------------------------------------
# python -m pipeline.report: the verdict across runs, from any store
# ---------------------------------------------------------------------------------------------

#: The metrics the report compares unless ``--metrics`` says otherwise.
REPORT_METRICS = ("test/pr_auc", "test/f1", "test/roc_auc", "test/brier", "test/ece")
#: What the charts need besides the compared metrics: AUCs against each dataset's positive rate.
CHARTED = ("test/prevalence", "test/pr_auc", "test/roc_auc")
#: Params that name a cell (what a configuration must share with its control), not a configuration.
CELL_PREFIXES = ("dataset.", "imbalance.", "split.", "costs.", "metrics.")
#: Params that describe how a run was tracked or shown, not what it computed.
IGNORED_PREFIXES = ("tracking.", "study", "resume", "leaderboard", "hydra")


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


def cell_frame(params: pd.DataFrame, control: dict[str, str], key: str = "--control") -> pd.DataFrame:
    """One row per run (``params``: its flattened config, as text): the cell columns and the
    configuration's label, ``control`` for the runs matching every ``control`` pair."""
    from pipeline.errors import ConfigError
    from pipeline.verdict import CONTROL_LABEL

    params = params.fillna("-").astype(str)
    varying = [c for c in params.columns if params[c].nunique() > 1 and not c.startswith(IGNORED_PREFIXES)]
    config_keys = [c for c in varying if not c.startswith(CELL_PREFIXES) and c not in ("model.name", "seed")]
    labels = pd.Series([_label(row, config_keys, params) for _, row in params.iterrows()], index=params.index)
    wanted = ",".join(f"{k}={v}" for k, v in control.items())
    is_control = pd.Series(True, index=params.index)
    for name, value in control.items():
        if name not in params:
            raise ConfigError(key, f"{name}={value}", f"keys the runs have, such as {', '.join(config_keys)}")
        is_control &= params[name] == value
    if not is_control.any():
        raise ConfigError(key, wanted, "pairs some runs match")
    found = sorted(set(labels[is_control]))
    if len(found) > 1:
        why = f"they match {len(found)}: {'; '.join(found)}"
        raise ConfigError(key, wanted, "pairs that pick one configuration", why=why)
    return pd.DataFrame(
        {
            "config": labels.where(~is_control, CONTROL_LABEL),
            "dataset": [_dataset(p, varying) for _, p in params.iterrows()],
            "positive_rate": params["imbalance.positive_rate"].map(_rate),
            "model": params["model.name"],
            "seed": params["seed"].astype(int),
            "split": params.get("split.name", pd.Series("default", index=params.index)),
            "test_share": [_test_share(p) for _, p in params.iterrows()],
            **{k: params[k] for k in varying if k.startswith(CELL_PREFIXES[2:])},
        },
        index=params.index,
    )


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


def _label(row: pd.Series, keys: list[str], params: pd.DataFrame) -> str:
    """``fix=smote threshold=max_f1``: the group names that vary, and the other keys that vary
    among runs of the same option (``fix.k_neighbors=3``)."""
    parts = []
    for key in keys:
        group, _, leaf = key.partition(".")
        if leaf == "name":
            parts.append(f"{group}={row[key]}")
        elif row[key] != "-":
            option = params.get(f"{group}.name", pd.Series("", index=params.index))
            same = params[option == row.get(f"{group}.name", "")]
            if same[key].nunique() > 1:
                parts.append(f"{key}={row[key]}")
    return " ".join(parts) or "default"


def _dataset(p: pd.Series, varying: list[str]) -> str:
    keys = [k for k in varying if k.startswith("dataset.") and k != "dataset.name"]
    extra = [f"{k.removeprefix('dataset.')}={p[k]}" for k in keys]
    return p["dataset.name"] + (f" ({', '.join(extra)})" if extra else "")


def _rate(text: str) -> str:
    return "natural" if text in ("None", "null", "-") else text


def _test_share(p: pd.Series) -> float:
    """Test rows over training rows of one cell (Nadeau and Bengio's n2/n1)."""
    if p.get("split.name") == "cv":
        return 1.0 / (int(p["split.folds"]) - 1)
    test = float(p.get("split.test", 0.3))
    return test / (1.0 - test)


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
    share = float(cells["test_share"].mean())
    rows = verdict.paired(cells, metrics, extra, share)
    rankings = []
    for model, part in cells.groupby("model", sort=True):
        rankings += [verdict.rank(part, m, "config", extra, str(model)) for m in metrics if m in part]
    if cells["model"].nunique() > 1:
        both = cells.assign(entry=cells["model"] + " " + cells["config"])
        rankings += [verdict.rank(both, m, "entry", extra, "all models") for m in metrics if m in both]
    text = verdict.sentences(rows, rankings, control, metrics)
    return Verdict(cells, verdict.paired_frame(rows), rankings, text)


def write_report(result: Verdict, out: Path, title: str, control: str) -> list[Path]:
    """``report.md``, the CSVs and the PNGs in ``out``; the files written."""
    from pipeline import report_plots
    from pipeline.verdict import short

    out.mkdir(parents=True, exist_ok=True)
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
    from mlflow.entities import Metric, Param

    from pipeline import tracking

    tags = {**tracking.git_tags(), "kind": "report", "mlflow.note.content": result.text}
    run_id = str(client.create_run(experiment_id, run_name=title, tags=tags).info.run_id)
    try:
        now = int(time.time() * 1000)
        metrics = [
            Metric(f"friedman/{r.group}/{r.metric.removeprefix('test/')}/p".replace(" ", "_"), r.p_value, now, 0)
            for r in result.rankings
            if not np.isnan(r.p_value)
        ]
        client.log_batch(run_id, metrics=metrics, params=[Param(k, v[:6000]) for k, v in params.items()])
        client.log_artifacts(run_id, str(out))
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
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
    parser.add_argument("--tracking-uri", default=None, help="the store (default: as the CLI, sqlite mlflow.db)")
    parser.add_argument("--control", default="fix.name=none,threshold.name=max_f1", help="params of the control")
    parser.add_argument("--metrics", default=",".join(REPORT_METRICS), help="comma-separated metric keys")
    parser.add_argument("--name", default=None, help="the report's name (default: the first source)")
    parser.add_argument("--out", type=Path, default=None, help="its folder (default: reports/<name>/)")
    args = parser.parse_args(argv)
    try:
        if not args.experiment and not args.parent:
            raise ConfigError("--experiment", None, "one or more experiment names or --parent run ids")
        control = parse_control(args.control)
        metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
        uri = tracking.resolve_uri(args.tracking_uri)
        tracking.check_uri(uri)
        client = tracking.client_for(uri)
        runs = fetch_runs(client, args.experiment, args.parent)
        if not runs:
            raise ConfigError("--experiment", ",".join(args.experiment + args.parent), "sources with FINISHED runs")
        cells = cells_from_runs(client, runs, metrics, control)
        unknown = [m for m in metrics if cells[m].isna().all()]
        if unknown:
            raise ConfigError("--metrics", ",".join(unknown), "metric keys the runs logged, such as test/pr_auc")
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    name = args.name or (args.experiment or args.parent)[0]
    title = f"report: {name}"
    result = verdict_of(cells, metrics, args.control)
    out = args.out or Path("reports") / name
    if out.exists():
        shutil.rmtree(out)
    write_report(result, out, title, args.control)
    sources = {"experiments": ",".join(args.experiment), "parents": ",".join(args.parent)}
    params = {"control": args.control, "metrics": ",".join(metrics), **{k: v for k, v in sources.items() if v}}
    run_id = log_report(client, runs[0].info.experiment_id, out, title, result, params)
    print(result.text)
    print(f"\n{len(runs)} runs, {len(cells)} cells -> {out}/report.md; logged as run {run_id} (tags.kind = 'report')")


if __name__ == "__main__":
    main()
