"""Figures drawn from curve data (see curves.py); nothing is computed here.

Figures use matplotlib's object API on an Agg canvas: no pyplot state, no display needed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def _axes(title: str, xlabel: str, ylabel: str, square: bool = True) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(5, 4.2), dpi=90)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if square:
        ax.set(xlim=(0, 1), ylim=(0, 1.02))
    return fig, ax


def pr_figure(c: dict[str, Any]) -> Figure:
    fig, ax = _axes(f"Precision-recall (AP = {c['pr_auc']:.3f})", "recall", "precision")
    ax.step(c["recall"], c["precision"], where="post", label="model")
    ax.axhline(c["prevalence"], ls="--", c="grey", label=f"random (prevalence {c['prevalence']:.3f})")
    op = c["operating_point"]
    ax.plot(op["recall"], op["precision"], "o", c="crimson", label=f"threshold {op['threshold']:.3g}")
    ax.legend(loc="upper right", fontsize=8)
    return fig


def roc_figure(c: dict[str, Any]) -> Figure:
    fig, ax = _axes(f"ROC (AUC = {c['roc_auc']:.3f})", "false positive rate", "true positive rate")
    ax.plot(c["fpr"], c["tpr"], label="model")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", label="random")
    ax.plot(c["operating_point"]["fpr"], c["operating_point"]["tpr"], "o", c="crimson", label="operating point")
    ax.legend(loc="lower right", fontsize=8)
    return fig


def reliability_figure(c: dict[str, Any]) -> Figure:
    fig, ax = _axes("Reliability (test)", "mean predicted probability", "observed positive rate")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", label="perfectly calibrated")
    for name, curve in c.items():
        ax.plot(
            curve["mean_score"], curve["observed"], "o-", ms=3, label=name if name == "overall" else f"group {name}"
        )
    ax.legend(loc="upper left", fontsize=8)
    return fig


def cost_figure(c: dict[str, Any]) -> Figure:
    fig, ax = _axes(
        f"Expected cost per case (cFP={c['costs']['fp']:g}, cFN={c['costs']['fn']:g})", "threshold", "cost", False
    )
    ax.plot(c["threshold"], c["expected_cost"], drawstyle="steps-post", label="test")
    ax.axvline(c["chosen"], c="crimson", ls="-", label=f"chosen {c['chosen']:.3g}")
    ax.axvline(c["bayes"], c="grey", ls="--", label=f"Bayes cFP/(cFP+cFN) {c['bayes']:.3g}")
    ax.set_xlim(0, 1)
    ax.legend(fontsize=8)
    return fig


def scores_figure(c: dict[str, Any]) -> Figure:
    fig, ax = _axes("Test scores by class (share of each class)", "score", "share of the class", square=False)
    edges = c["edges"]
    for name, color in (("negative", "#3060a0"), ("positive", "#c02020")):
        counts = c[name]
        total = max(sum(counts), 1)
        ax.stairs([k / total for k in counts], edges, fill=True, alpha=0.45, color=color, label=f"{name} ({total})")
    ax.set_xlim(0, 1)
    ax.legend(fontsize=8)
    return fig


def boundary_figure(c: dict[str, Any]) -> Figure:
    fig, ax = _axes("Scores and decision boundary (test points)", c["columns"][0], c["columns"][1], square=False)
    mesh = ax.contourf(c["x"], c["y"], c["score"], levels=20, cmap="RdBu_r", alpha=0.55, vmin=0, vmax=1)
    fig.colorbar(mesh, ax=ax, label="P(positive)")
    ax.contour(c["x"], c["y"], c["score"], levels=[c["threshold"]], colors="k", linewidths=1.5)
    pts = c["points"]
    neg = [i for i, label in enumerate(pts["label"]) if label == 0]
    pos = [i for i, label in enumerate(pts["label"]) if label == 1]
    ax.scatter([pts["x"][i] for i in neg], [pts["y"][i] for i in neg], s=3, c="#3060a0", alpha=0.4, rasterized=True)
    ax.scatter([pts["x"][i] for i in pos], [pts["y"][i] for i in pos], s=8, c="#c02020", rasterized=True)
    return fig


FIGURES: dict[str, Callable[[dict[str, Any]], Figure]] = {
    "pr": pr_figure,
    "roc": roc_figure,
    "reliability": reliability_figure,
    "cost": cost_figure,
    "scores": scores_figure,
    "boundary": boundary_figure,
}


def write_all(curves: dict[str, Any], out: Path) -> None:
    """``out/plots/<name>.png`` for every curve with a figure, and ``out/curves/<name>.json`` for every curve."""
    (out / "plots").mkdir(parents=True, exist_ok=True)
    (out / "curves").mkdir(parents=True, exist_ok=True)
    for name, data in curves.items():
        (out / "curves" / f"{name}.json").write_text(json.dumps(data))
        if name in FIGURES:
            FIGURES[name](data).savefig(out / "plots" / f"{name}.png")


def rate_figure(
    table: Any, by: list[str], metrics: tuple[str, ...] = ("test/pr_auc", "test/recall", "test/ece")
) -> Figure:
    """Each metric (mean +- std over seeds) against the positive rate, one line per other axis value."""
    fig = Figure(figsize=(4.2 * len(metrics), 3.8), dpi=90)
    FigureCanvasAgg(fig)
    others = [b for b in by if b != "imbalance.positive_rate"]
    lines = list(table.groupby(others, sort=False)) if others else [("all", table)]
    for i, metric in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), i + 1)
        for label, rows in lines:
            rows = rows.sort_values("imbalance.positive_rate")
            mean, std = rows[f"{metric}/mean"], rows[f"{metric}/std"].fillna(0)
            name = "/".join(map(str, label)) if isinstance(label, tuple) else str(label)
            ax.errorbar(rows["imbalance.positive_rate"], mean, yerr=std, marker="o", ms=3, capsize=2, label=name)
        ax.set(xscale="log", xlabel="positive rate", title=metric.removeprefix("test/"))
    fig.axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def bars_figure(table: Any, by: list[str], metrics: tuple[str, ...]) -> Figure:
    """Each metric (mean +- std over seeds) as bars, one per leaderboard row."""
    fig = Figure(figsize=(max(5.0, 0.55 * len(table) + 2), 3.2 * len(metrics)), dpi=90)
    FigureCanvasAgg(fig)
    labels = ["/".join(str(v) for v in row) for row in table[by].itertuples(index=False)]
    for i, metric in enumerate(metrics):
        ax = fig.add_subplot(len(metrics), 1, i + 1)
        ax.bar(range(len(table)), table[f"{metric}/mean"], yerr=table[f"{metric}/std"].fillna(0), capsize=2)
        ax.set(title=metric, xticks=range(len(table)))
        ax.set_xticklabels(labels if i == len(metrics) - 1 else [], rotation=60, ha="right", fontsize=7)
    fig.tight_layout()
    return fig


def save(fig: Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
