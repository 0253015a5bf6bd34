"""``python -m pipeline.explain EXPERIMENT_OR_PARENT_RUN``: one offline HTML page over a sweep's
real runs. Slide the positive rate, toggle the fix, move the costs; every number on the page is
one a run logged, and the cost sliders recompute from the run's logged test scores.

The page is self-contained (its script and data are inline, nothing is fetched), so it opens
from disk and in MLflow's artifact viewer. It is logged to the sweep's parent run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline import credentials, store
from pipeline.errors import ConfigError
from pipeline.paths import CONF_DIR, REPO_ROOT, owned_file

#: The axes a page can vary, in the order its controls appear.
AXES = (
    "dataset.name",
    "imbalance.positive_rate",
    "fix.name",
    "model.name",
    "calibration.name",
    "threshold.name",
    "seed",
)
#: Metrics the page shows, as logged.
SHOWN = (
    "accuracy",
    "baseline_accuracy",
    "recall",
    "precision",
    "f1",
    "f2",
    "pr_auc",
    "roc_auc",
    "ece",
    "expected_cost",
)
TEMPLATE = Path(__file__).with_name("explainer.html")
#: In the head of every page written: ``--out`` overwrites such a page and no other file.
SIGNATURE = '<meta name="generator" content="imbalance-lab explain">'
#: Points drawn per curve, scores kept per class for the cost sliders (rounded to this many decimals).
CURVE_POINTS, SCORE_DECIMALS, GRID_STEP = 160, 3, 3


def option_doc(group: str, name: str) -> str:
    """The leading comment of ``conf/<group>/<name>.yaml``: each option documents itself once."""
    path = CONF_DIR / group / f"{name}.yaml"
    if not path.is_file():
        return ""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("# ").rstrip())
    return " ".join(lines)


def sweep_runs(mlflow: Any, name: str) -> tuple[pd.DataFrame, str | None]:
    """The job runs (any status) of a sweep: ``name`` is a parent run id, or an experiment, whose
    latest sweep is taken (or all its runs, when none of them came from a sweep)."""
    found = mlflow.get_experiment_by_name(name)
    if found is None:
        return store.leaf_runs(mlflow, [name], status=""), name
    parents = mlflow.search_runs([found.experiment_id], "tags.sweep = 'true'", order_by=["attributes.start_time DESC"])
    if not parents:
        return store.leaf_runs(mlflow, [name], status=""), None
    parent = parents[0].info.run_id
    return store.leaf_runs(mlflow, [parent], status=""), parent


def _thin(xs: list[float], ys: list[float], n: int = CURVE_POINTS) -> tuple[list[float], list[float]]:
    if len(xs) <= n:
        return [round(x, 5) for x in xs], [round(y, 5) for y in ys]
    keep = np.unique(np.r_[np.linspace(0, len(xs) - 1, n).astype(int), len(xs) - 1])
    return [round(xs[i], 5) for i in keep], [round(ys[i], 5) for i in keep]


def _pooled_scores(pred: pd.DataFrame) -> list[list[float]]:
    """[score, negatives, positives] per distinct test score (rounded): what the cost sliders need."""
    rounded = pred.score.round(SCORE_DECIMALS)
    table = pd.crosstab(rounded, pred.y_true).reindex(columns=[0, 1], fill_value=0)
    return [[float(s), int(n), int(p)] for s, (n, p) in zip(table.index, table.to_numpy(), strict=True)]


def _boundary(curve: dict[str, Any]) -> dict[str, Any]:
    """The score grid, coarser; the test points go to the page's ``points`` once per data set."""
    score = np.asarray(curve["score"])[::GRID_STEP, ::GRID_STEP]
    return {
        "columns": curve["columns"],
        "x": [round(v, 4) for v in curve["x"][::GRID_STEP]],
        "y": [round(v, 4) for v in curve["y"][::GRID_STEP]],
        "score": np.round(score, 3).tolist(),
    }


def _points(curve: dict[str, Any]) -> dict[str, list[float]]:
    pts = curve["points"]
    keep = slice(None, None, max(1, len(pts["x"]) // 1200))
    return {k: [round(v, 3) for v in pts[k][keep]] if k != "label" else pts[k][keep] for k in pts}


def run_view(mlflow: Any, row: pd.Series, tmp: Path) -> dict[str, Any]:
    """What the page shows of one FINISHED run: its logged metrics, curves and pooled scores."""
    local = Path(mlflow.download_artifacts(row["run_id"], "curves", str(tmp / row["run_id"])))
    curves = {p.stem: json.loads(p.read_text()) for p in local.glob("*.json")}
    pred = pd.read_parquet(
        mlflow.download_artifacts(row["run_id"], "predictions/test.parquet", str(tmp / row["run_id"]))
    )
    truth, decided = pred.y_true.to_numpy() == 1, pred.y_pred.to_numpy() == 1
    pr, roc = curves["pr"], curves["roc"]
    view: dict[str, Any] = {
        "run_id": row["run_id"],
        "run_name": row["run_name"],
        "metrics": {k: row.get(f"metrics.test/{k}") for k in SHOWN},
        "threshold": row.get("metrics.calib/threshold"),
        "costs": {"fp": float(row["params.costs.fp"]), "fn": float(row["params.costs.fn"])},
        "confusion": {
            "tp": int((decided & truth).sum()),
            "fp": int((decided & ~truth).sum()),
            "fn": int((~decided & truth).sum()),
            "tn": int((~decided & ~truth).sum()),
        },
        "pr": dict(zip(("recall", "precision"), _thin(pr["recall"], pr["precision"]), strict=True)),
        "prevalence": pr["prevalence"],
        "pr_point": pr["operating_point"],
        "roc": dict(zip(("fpr", "tpr"), _thin(roc["fpr"], roc["tpr"]), strict=True)),
        "roc_point": roc["operating_point"],
        "reliability": curves["reliability"],
        "histogram": curves["scores"],
        "scores": _pooled_scores(pred),
    }
    if "boundary" in curves:
        view["boundary"] = _boundary(curves["boundary"])
        view["points"] = _points(curves["boundary"])  # moved to the page's shared table by page_data
    view["metrics"] = {k: (None if v is None or pd.isna(v) else float(v)) for k, v in view["metrics"].items()}
    return view


def page_data(mlflow: Any, runs: pd.DataFrame, title: str, ui_base: str | None) -> dict[str, Any]:
    """Everything the page needs: the axes that vary, one view per FINISHED run, what is missing."""
    axes = [a for a in AXES if f"params.{a}" in runs and runs[f"params.{a}"].nunique() > 1] or ["fix.name"]
    fixed = {a: str(runs[f"params.{a}"].iloc[0]) for a in AXES if f"params.{a}" in runs and a not in axes}
    finished = runs[runs.status == "FINISHED"].drop_duplicates([f"params.{a}" for a in axes], keep="first")
    values = {a: _ordered(a, runs[f"params.{a}"].astype(str).unique()) for a in axes}
    with tempfile.TemporaryDirectory() as tmp:
        views = [
            {"key": {a: str(r[f"params.{a}"]) for a in axes}, **run_view(mlflow, r, Path(tmp))}
            for _, r in finished.iterrows()
        ]
    points: dict[str, Any] = {}
    for view, (_, r) in zip(views, finished.iterrows(), strict=True):
        if "points" in view:  # runs on the same test rows share one copy of the points
            view["points_key"] = str(r.get("tags.data_fingerprint", view["run_id"]))
            points[view["points_key"]] = view.pop("points")
    present = {tuple(v["key"][a] for a in axes) for v in views}
    failed = runs[runs.status != "FINISHED"]
    missing = [
        {"key": {a: str(r[f"params.{a}"]) for a in axes}, "status": r.status, "error": r.get("tags.error", "")}
        for _, r in failed.iterrows()
        if tuple(str(r[f"params.{a}"]) for a in axes) not in present
    ]
    fixes = sorted({str(v) for v in runs.get("params.fix.name", pd.Series(dtype=str)).dropna()})
    return {
        "title": title,
        "axes": axes,
        "values": values,
        "fixed": fixed,
        "runs": views,
        "points": points,
        "missing": missing,
        "fix_docs": {f: option_doc("fix", f) for f in fixes},
        "ui_base": ui_base,
        "experiment_id": str(runs.experiment_id.iloc[0]),
        "split": "test",
    }


def _ordered(axis: str, values: Any) -> list[str]:
    """Numbers by value (positive rates descending: rarer and rarer), names alphabetically."""
    try:
        return sorted(values, key=float, reverse=axis == "imbalance.positive_rate")
    except ValueError:
        return sorted(values)


#: What may not appear raw inside an inline script: '<' ('</script>', '<!--' which makes the
#: parser look for '-->'), '>' and '&', and the two line separators older engines end strings at.
#: Each becomes its JSON escape, which decodes to the same string.
_SCRIPT_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def render(data: dict[str, Any]) -> str:
    """The page: the template with the data inlined, escaped for the script context (a run's
    subgroup value or name can hold any text)."""
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False)
    for raw, escaped in _SCRIPT_ESCAPES.items():
        payload = payload.replace(raw, escaped)
    return TEMPLATE.read_text().replace("/*DATA*/null", payload)


def explain(uri: str | None, name: str, out: Path | None, log: bool = True) -> Path:
    """Build the page for a sweep, write it, log it to the sweep's parent run; return its path."""
    out = out or REPO_ROOT / "outputs" / "explainer" / f"{_safe(name)}.html"
    owned_file("--out", out, SIGNATURE)
    mlflow = store.client(uri)
    runs, parent = sweep_runs(mlflow, name)
    runs, dropped = store.one_per_identity(runs)
    if dropped:
        print(store.duplicates_line(dropped))
    if runs.empty:
        raise ConfigError("experiment", name, "an experiment or sweep parent run id with job runs")
    if not (runs.status == "FINISHED").any():
        raise ConfigError("experiment", name, "a sweep with at least one FINISHED run")
    ui_base = mlflow.tracking_uri if str(mlflow.tracking_uri).startswith("http") else None
    data = page_data(mlflow, runs, name, ui_base)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(data))
    if log and parent is not None:
        mlflow.log_artifact(parent, str(out), "explainer")
    return out


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.explain", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("experiment", help="experiment name (its latest sweep) or a sweep's parent run id")
    parser.add_argument(
        "--tracking-uri",
        default=None,
        type=credentials.taken,
        help="store (default: $MLFLOW_TRACKING_URI or the repo's)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="where to write it (default outputs/explainer/NAME.html)"
    )
    parser.add_argument("--no-log", action="store_true", help="do not log the page to the sweep's parent run")
    args = parser.parse_args(argv)
    try:
        path = explain(args.tracking_uri, args.experiment, args.out, log=not args.no_log)
    except ConfigError as err:
        print(f"error: {credentials.mask(str(err))}", file=sys.stderr)
        sys.exit(2)
    print(f"Explainer: {path} (open it in a browser; it needs no server)")


if __name__ == "__main__":
    from pipeline.interrupts import quick_exit

    try:
        main()
    except KeyboardInterrupt:  # Ctrl-C: one line, not the traceback of wherever it landed
        print("interrupted", file=sys.stderr)
        quick_exit(130)
    quick_exit(0)  # without the interpreter's teardown (about 0.45 s)
