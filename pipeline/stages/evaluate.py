"""DVC stage: the metric suite on test -> ``<out>/metrics.json``, plot tables for ``dvc plots``,
the same plots as PNG (DVC's HTML loads its JavaScript from the web), the prediction table;
and one MLflow run (tag ``source=dvc``) in the same store the sweeps use."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline import data, experiment, leaderboard, plots, tracking, trusted
from pipeline.errors import ConfigError
from pipeline.stages import arguments, load_params


def tables(curves: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """The curves as row-per-point tables, the shape ``dvc plots`` reads."""
    pr, roc, cost = curves["pr"], curves["roc"], curves["cost"]
    reliability = curves["reliability"]["overall"]
    return {
        "pr": pd.DataFrame({"recall": pr["recall"], "precision": pr["precision"]}),
        "roc": pd.DataFrame({"fpr": roc["fpr"], "tpr": roc["tpr"]}),
        "reliability": pd.DataFrame({k: reliability[k] for k in ("mean_score", "observed", "count")}),
        "cost": pd.DataFrame({"threshold": cost["threshold"], "expected_cost": cost["expected_cost"]}),
    }


def write(result: experiment.RunResult, out: Path) -> None:
    (out / "tables").mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(result.metrics, indent=1, sort_keys=True))
    for name, table in tables(result.curves).items():
        table.to_csv(out / "tables" / f"{name}.csv", index=False)
    plots.write_all(result.curves, out)
    result.predictions.to_parquet(out / "predictions.parquet")


def main() -> None:
    args = arguments(__doc__ or "", "data", "model", "out")
    cfg = load_params(args.params)
    try:
        model = trusted.load(args.model)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    splits = data.read_splits(args.data)
    result = experiment.evaluate(cfg, experiment.Fitted(model), splits.test)
    result.attach_data(splits, cfg.dataset.name)
    write(result, args.out)
    if cfg.tracking.enabled:
        tags = {
            "source": "dvc",
            "mlflow.source.name": "dvc repro",
            "dvc.experiment": os.environ.get("DVC_EXP_NAME", ""),
        }
        tracking.track(cfg, lambda: result, lambda r: leaderboard.describe(cfg, r), tags=tags)


if __name__ == "__main__":
    from pipeline.interrupts import quick_exit

    main()
    quick_exit(0)  # without the interpreter's teardown (about 0.45 s)
