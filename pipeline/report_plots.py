"""The report's figures, drawn from the tables ``pipeline.verdict`` computed."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pipeline.verdict import CONTROL_LABEL, Ranking, short


def _figure(width: float, height: float, cols: int = 1) -> tuple[Figure, list]:
    fig = Figure(figsize=(width, height), dpi=90, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, list(np.atleast_1d(fig.subplots(1, cols)))


def critical_difference(ranking: Ranking) -> Figure:
    """Average ranks on a line, bars joining configurations Nemenyi cannot tell apart (0.05)."""
    import scikit_posthocs

    fig, (ax,) = _figure(7.5, 0.9 + 0.22 * ranking.table.shape[1])
    matrix = ranking.nemenyi
    assert matrix is not None
    labels = list(ranking.table.columns)
    matrix = matrix.set_axis(labels, axis=0).set_axis(labels, axis=1)
    scikit_posthocs.critical_difference_diagram(ranking.average, matrix, ax=ax, label_props={"fontsize": 8})
    ax.set_title(
        f"{short(ranking.metric)}, {ranking.group}: average rank over {len(ranking.table)} datasets "
        f"(Friedman p = {ranking.p_value:.2g}, CD = {ranking.critical_difference:.2f})",
        fontsize=9,
    )
    return fig


def auc_against_rate(cells: pd.DataFrame) -> Figure:
    """PR-AUC and ROC-AUC of every configuration against each dataset's positive rate: ROC-AUC
    stays high while PR-AUC falls with the rate. The control is drawn in black."""
    fig, axes = _figure(10, 4.2, cols=2)
    means = cells.groupby(["dataset", "positive_rate", "model", "config"], dropna=False).mean(numeric_only=True)
    means = means.reset_index()
    for ax, metric in zip(axes, ("test/pr_auc", "test/roc_auc"), strict=True):
        for (model, config), part in means.groupby(["model", "config"]):
            part = part.sort_values("test/prevalence")
            control = config == CONTROL_LABEL
            ax.plot(
                part["test/prevalence"], part[metric], "o-" if control else ".", ms=5 if control else 3,
                color="black" if control else None, alpha=1.0 if control else 0.35, lw=1,
                label=f"{model} {config}" if control else None,
            )  # fmt: skip
        ax.set_xscale("log")
        ax.set_xlabel("positive rate of the dataset (log)")
        ax.set_ylabel(short(metric))
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0].plot([], [], ".", color="grey", label="other configurations")
    axes[0].legend(fontsize=7, loc="lower right")
    return fig


def calibration_against_control(paired: pd.DataFrame) -> Figure:
    """Each configuration's paired difference in ECE and Brier from the control, with its 95%
    interval; left of zero is better calibrated than the control."""
    metrics = [m for m in ("test/ece", "test/brier") if m in set(paired["metric"])]
    shown = paired[paired["metric"].isin(metrics)][["model", "config"]].drop_duplicates()
    fig, axes = _figure(10, 1.2 + 0.24 * len(shown), cols=len(metrics))
    for ax, metric in zip(axes, metrics, strict=True):
        part = paired[paired["metric"] == metric].sort_values(["model", "config"])
        labels = (part["model"] + " " + part["config"]).tolist()
        y = np.arange(len(part))
        colour = part["outcome"].map({"better": "tab:green", "worse": "tab:red"}).fillna("grey")
        errors = [part["mean"] - part["low"], part["high"] - part["mean"]]
        ax.errorbar(part["mean"], y, xerr=errors, fmt="none", ecolor=colour.tolist(), elinewidth=1.5)
        ax.scatter(part["mean"], y, c=colour.tolist(), s=14, zorder=3)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(y, labels, fontsize=7)
        ax.set_xlabel(f"{short(metric)} minus the control's (lower is better)")
        ax.grid(axis="x", alpha=0.3)
    return fig
