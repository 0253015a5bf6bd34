"""``python -m pipeline.promote EXPERIMENT --metric test/expected_cost``: the best configuration's
best run, registered in the MLflow Model Registry with the alias ``champion``, if it beats the
control (no fix, threshold tuned on calib) on the same data by more than the seeds' spread.

A configuration is a run's params less the seed (and where it was tracked). Its runs are paired
with the control's runs on the same cell: every param outside the control's groups (``fix``,
``threshold`` by default) equal, seed included. The margin is the mean paired improvement; the
spread, the standard deviation of the paired improvements (two seeds at least).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline import credentials, store
from pipeline.errors import ConfigError

#: Which way is better, by the metric's last name part (``test/expected_cost`` -> expected_cost).
HIGHER_IS_BETTER = frozenset(
    [
        "pr_auc",
        "roc_auc",
        "f1",
        "f2",
        "recall",
        "precision",
        "mcc",
        "balanced_accuracy",
        "accuracy",
        "recall_at_p90",
        "brier_resolution",
    ]
)
LOWER_IS_BETTER = frozenset(
    ["expected_cost", "expected_cost_at_bayes", "brier", "log_loss", "ece", "adaptive_ece", "brier_reliability"]
)
DEFAULT_CONTROL = "fix.name=none,threshold.name=max_f1"


def direction(metric: str) -> float:
    """+1 where higher is better, -1 where lower is; a metric with no direction is refused."""
    last = metric.rpartition("/")[2]
    if last in HIGHER_IS_BETTER:
        return 1.0
    if last in LOWER_IS_BETTER:
        return -1.0
    known = ", ".join(sorted(HIGHER_IS_BETTER | LOWER_IS_BETTER))
    raise ConfigError("--metric", metric, f"a metric whose better direction is known: <split>/ one of {known}")


def parse_control(text: str) -> dict[str, str]:
    """``fix.name=none,threshold.name=max_f1`` -> {"fix.name": "none", "threshold.name": "max_f1"}."""
    pairs = [part.split("=", 1) for part in text.split(",") if part]
    if not pairs or any(len(p) != 2 or not p[0] or "." not in p[0] for p in pairs):
        raise ConfigError("--control", text, "comma-separated group.key=value pairs, e.g. " + DEFAULT_CONTROL)
    return {k: v for k, v in pairs}


@dataclass
class Comparison:
    """The best configuration against the control on matched cells."""

    run: pd.Series  # the run to register: the best configuration's best seed
    control_value: float  # the control's value on that run's cell (NaN if none)
    margin: float  # mean paired improvement, in the better direction
    spread: float  # standard deviation of the paired improvements (NaN under two pairs)
    pairs: int
    refusal: str  # why it does not beat the control ("" when it does)


def compare(runs: pd.DataFrame, metric: str, control: dict[str, str]) -> Comparison:
    """Pick the configuration with the best mean over seeds and pair its runs with the control's."""
    column, sign = f"metrics.{metric}", direction(metric)
    if column not in runs or runs[column].isna().all():
        logged = sorted(c.removeprefix("metrics.") for c in runs.columns if c.startswith("metrics.test/"))
        raise ConfigError("--metric", metric, "a metric the runs logged: " + (", ".join(logged) or "(no run)"))
    runs = runs[runs[column].notna()]
    keys = store.config_columns(runs)
    runs = runs.assign(**{c: runs[c].fillna("") for c in keys})  # a key of another option: absent
    groups = tuple(k.split(".", 1)[0] + "." for k in control)
    cell = [c for c in keys if not c.removeprefix("params.").startswith(groups)]
    runs = runs.assign(_config=_joined(runs, [c for c in keys if c != "params.seed"]), _cell=_joined(runs, cell))
    score = sign * runs[column]
    best = runs[runs["_config"] == score.groupby(runs["_config"]).mean().idxmax()]
    top = best.iloc[int(np.argmax(score[best.index].to_numpy()))]
    is_control = pd.Series(
        np.logical_and.reduce(
            [runs.get(f"params.{k}", pd.Series("", index=runs.index)) == v for k, v in control.items()]
        ),
        index=runs.index,
    )
    control_by_cell = runs[is_control].groupby("_cell")[column].mean()
    paired = best[best["_cell"].isin(control_by_cell.index)]
    gains = sign * (paired[column].to_numpy() - control_by_cell[paired["_cell"]].to_numpy())
    margin = float(gains.mean()) if len(gains) else float("nan")
    spread = float(np.std(gains, ddof=1)) if len(gains) > 1 else float("nan")
    refusal = _refusal(bool(is_control[best.index].all()), len(gains), margin, spread, control)
    return Comparison(top, float(control_by_cell.get(top["_cell"], np.nan)), margin, spread, len(gains), refusal)


def _joined(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    return frame[columns].astype(str).agg("\x1f".join, axis=1) if columns else pd.Series("", index=frame.index)


def _refusal(is_control: bool, pairs: int, margin: float, spread: float, control: dict[str, str]) -> str:
    if is_control:
        return f"the control itself ({_spec(control)}) is the best configuration"
    if pairs == 0:
        return f"no control run ({_spec(control)}) ran on the same data as the best configuration"
    if pairs == 1:
        return "only one seed pairs with the control, so the seeds' spread is unknown"
    if not margin > spread:
        return f"its mean gain {margin:.4g} over the control is within the seeds' spread {spread:.4g} ({pairs} seeds)"
    return ""


def _spec(control: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in control.items())


def promote(uri: str | None, experiment: str, metric: str, name: str | None, control: str, force: bool) -> str:
    """Register the winner and return what to print; ``ConfigError`` when it is refused."""
    mlflow = store.client(uri)
    runs, dropped = store.one_per_identity(store.leaf_runs(mlflow, [experiment]))
    if runs.empty:
        raise ConfigError("experiment", experiment, "an experiment or sweep with FINISHED runs")
    found = compare(runs, metric, parse_control(control))
    if found.refusal and not force:
        raise ConfigError("--metric", metric, "a configuration that beats the control by more than the seeds' spread, "
                          "or --force", why=found.refusal)  # fmt: skip
    run, column = found.run, f"metrics.{metric}"
    if not mlflow.list_artifacts(str(run["run_id"]), "model"):  # models:/NAME@champion would not load
        raise ConfigError("experiment", experiment, "runs that logged their model (tracking.log_model=true)",
                          why=f"the best run {run['run_name']} logged no model")  # fmt: skip
    tags = {
        "metric": metric, "value": repr(float(run[column])), "control": control,
        "control_value": repr(found.control_value), "margin": repr(found.margin), "spread": repr(found.spread),
        "seeds_paired": str(found.pairs), "config_hash": str(run.get("tags.config_hash", "")),
        "run_name": str(run["run_name"]), "forced": str(bool(found.refusal)).lower(),
    }  # fmt: skip
    name = name or str(mlflow.get_experiment(run["experiment_id"]).name)
    version = store.register(mlflow, str(run["run_id"]), name, tags, "champion")
    verdict = (
        found.refusal or f"beats the control by {found.margin:.4g} (spread {found.spread:.4g}, {found.pairs} seeds)"
    )
    said = (
        f"registered {name} version {version.version} from run {run['run_name']} ({run['run_id']}): "
        f"{metric} {run[column]:.4g}, control {found.control_value:.4g} on the same data; {verdict}. "
        f"Load it with models:/{name}@champion"
    )
    return "\n".join(filter(None, [store.duplicates_line(dropped), said]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.promote", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("experiment", help="experiment name or a sweep's parent run id")
    parser.add_argument("--metric", default="test/expected_cost", help="metric to rank by (direction known per metric)")
    parser.add_argument("--name", default=None, help="registered model name (default: the experiment's)")
    parser.add_argument(
        "--tracking-uri",
        default=None,
        type=credentials.taken,
        help="store (default: $MLFLOW_TRACKING_URI or the repo's)",
    )
    parser.add_argument("--control", default=DEFAULT_CONTROL, help="the control's params (default: %(default)s)")
    parser.add_argument(
        "--force", action="store_true", help="register the best run even if it does not beat the control"
    )
    args = parser.parse_args(argv)
    try:
        print(promote(args.tracking_uri, args.experiment, args.metric, args.name, args.control, args.force))
    except ConfigError as err:
        print(f"error: {credentials.mask(str(err))}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    from pipeline.interrupts import quick_exit

    main()
    quick_exit(0)  # without the interpreter's teardown (about 0.45 s)
