"""A sweep's leaderboard (mean +- std over seeds per combination, the control and the paired
differences when the sweep ran it) and each run's Markdown note."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig

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
    from pipeline import plots  # matplotlib: only where a figure is drawn (a job with tracking off draws none)

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
_CONTROL_TEXT = ", ".join(f"{key.removesuffix('.name')}={value}" for key, value in CONTROL.items())


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
        cells = verdict.cell_frame(params, CONTROL)
    except ConfigError:  # no control among the jobs, or several configurations match it
        return None
    values = pd.DataFrame([r["metrics"] for r in done])
    shown = [c for c in columns if c in values and c not in ("test/baseline_accuracy",)]
    cells = cells.assign(fold=0, **{c: values[c].to_numpy() for c in shown})
    extra = [c for c in cells.columns if c.startswith(verdict.CELL_PREFIXES[2:])]
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
