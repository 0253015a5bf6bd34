"""Figures drawn from curve data (see curves.py); nothing is computed here.

Figures use matplotlib's object API on an Agg canvas: no pyplot state, no display needed.
A sweep draws the same six figures for every run, so ``write_all`` keeps one canvas per figure
with its axes already drawn and draws only each run's curves on it (about 5 ms a figure
instead of 40); curves with many points are thinned for drawing, never in their JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

SIZE, DPI = (5.0, 4.2), 90
#: Curves with more points than this are thinned before drawing (their JSON keeps every point).
MAX_DRAWN_POINTS = 4000


def thin(x: Any, y: Any, buckets: int = MAX_DRAWN_POINTS // 4) -> tuple[np.ndarray, np.ndarray]:
    """A curve over a monotone ``x`` cut to at most 4 points per x-bucket: the first, last,
    lowest and highest of each (M4), which draws the same picture at this size."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) <= 4 * buckets:
        return x, y
    span = (x.max() - x.min()) or 1.0
    bucket = np.minimum(((x - x.min()) / span * buckets).astype(int), buckets - 1)
    run = np.r_[0, np.cumsum(np.diff(bucket) != 0)]  # runs of one bucket, numbered along the curve
    starts = np.r_[0, np.flatnonzero(np.diff(run)) + 1]
    ends = np.r_[starts[1:], len(x)]
    by_y = np.lexsort((y, run))  # within each run, rows from lowest to highest y
    keep = np.unique(np.concatenate([starts, ends - 1, by_y[starts], by_y[ends - 1]]))
    return x[keep], y[keep]


# Each figure is a static part (axes, labels, reference lines and the legend: drawn once per
# process and kept as pixels) and a dynamic part (the run's curves and a title with its numbers:
# drawn on those pixels for each run; the legend's pixels are put back on top). A static part
# returns the artists that must stay on top. ``figure(name, c)`` draws both on a fresh Figure.


def _legend(ax: Axes, entries: list[tuple[str, dict[str, Any]]], **kwargs: Any) -> Any:
    """A legend of proxy lines, so that it can be drawn before the curves it describes."""
    handles = [Line2D([], [], **style) for _, style in entries]
    return ax.legend(handles, [label for label, _ in entries], fontsize=8, framealpha=1.0, **kwargs)


def _pr_static(fig: Figure, ax: Axes, c: dict[str, Any]) -> list[Any]:
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
    entries = [("model", {"color": "C0"}), ("random (prevalence)", {"color": "grey", "ls": "--"}),
               ("threshold", {"color": "crimson", "marker": "o", "ls": ""})]  # fmt: skip
    return [_legend(ax, entries, loc="upper right")]


def _pr_dynamic(ax: Axes, c: dict[str, Any]) -> list[Any]:
    x, y = thin(c["recall"], c["precision"])
    drawn: list[Any] = [*ax.step(x, y, where="post", color="C0")]
    drawn.append(ax.axhline(c["prevalence"], ls="--", c="grey"))
    op = c["operating_point"]
    drawn += ax.plot(op["recall"], op["precision"], "o", c="crimson")
    title = f"Precision-recall: AP {c['pr_auc']:.3f}, prevalence {c['prevalence']:.3f}, threshold {op['threshold']:.3g}"
    return [*drawn, _title(ax, title)]


def _roc_static(fig: Figure, ax: Axes, c: dict[str, Any]) -> list[Any]:
    ax.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1.02))
    ax.plot([0, 1], [0, 1], ls="--", c="grey")
    entries = [("random", {"color": "grey", "ls": "--"}), ("model", {"color": "C0"}),
               ("operating point", {"color": "crimson", "marker": "o", "ls": ""})]  # fmt: skip
    return [_legend(ax, entries, loc="lower right")]


def _roc_dynamic(ax: Axes, c: dict[str, Any]) -> list[Any]:
    x, y = thin(c["fpr"], c["tpr"])
    drawn: list[Any] = [*ax.plot(x, y, color="C0", zorder=1.9)]
    op = c["operating_point"]
    drawn += ax.plot(op["fpr"], op["tpr"], "o", c="crimson")
    return [*drawn, _title(ax, f"ROC: AUC {c['roc_auc']:.3f}")]


def _reliability_labels(c: dict[str, Any]) -> tuple[str, ...]:
    return tuple(name if name == "overall" else f"group {name}" for name in c)


def _reliability_static(fig: Figure, ax: Axes, c: dict[str, Any]) -> list[Any]:
    ax.set(xlabel="mean predicted probability", ylabel="observed positive rate", xlim=(0, 1), ylim=(0, 1.02))
    ax.plot([0, 1], [0, 1], ls="--", c="grey")
    entries: list[tuple[str, dict[str, Any]]] = [("perfectly calibrated", {"color": "grey", "ls": "--"})]
    entries += [(label, {"color": f"C{i}", "marker": "o", "ms": 3}) for i, label in enumerate(_reliability_labels(c))]
    return [_legend(ax, entries, loc="upper left")]


def _reliability_dynamic(ax: Axes, c: dict[str, Any]) -> list[Any]:
    drawn: list[Any] = []
    for i, curve in enumerate(c.values()):
        drawn += ax.plot(curve["mean_score"], curve["observed"], "o-", ms=3, color=f"C{i}")
    return [*drawn, _title(ax, "Reliability (test)")]


def _cost_top(c: dict[str, Any]) -> float:
    return nice_ceiling(max(c["expected_cost"], default=1.0))


def _cost_static(fig: Figure, ax: Axes, c: dict[str, Any]) -> list[Any]:
    ax.set(xlabel="threshold", ylabel="expected cost per case", xlim=(0, 1), ylim=(0, _cost_top(c)))
    entries = [("test", {"color": "C0"}), ("chosen threshold", {"color": "crimson"}),
               ("Bayes threshold cFP/(cFP+cFN)", {"color": "grey", "ls": "--"})]  # fmt: skip
    return [_legend(ax, entries, loc="upper right")]


def _cost_dynamic(ax: Axes, c: dict[str, Any]) -> list[Any]:
    x, y = thin(c["threshold"], c["expected_cost"])
    drawn: list[Any] = [*ax.plot(x, y, drawstyle="steps-post", color="C0")]
    drawn.append(ax.axvline(c["chosen"], c="crimson", ls="-"))
    drawn.append(ax.axvline(c["bayes"], c="grey", ls="--"))
    costs = c["costs"]
    title = f"Cost (cFP={costs['fp']:g}, cFN={costs['fn']:g}): chosen {c['chosen']:.3g}, Bayes {c['bayes']:.3g}"
    return [*drawn, _title(ax, title)]


def _shares(c: dict[str, Any]) -> dict[str, list[float]]:
    return {name: [k / max(sum(c[name]), 1) for k in c[name]] for name in ("negative", "positive")}


def _scores_top(c: dict[str, Any]) -> float:
    return nice_ceiling(max(max(v, default=0.0) for v in _shares(c).values()))


SCORE_COLOURS = {"negative": "#3060a0", "positive": "#c02020"}


def _scores_static(fig: Figure, ax: Axes, c: dict[str, Any]) -> list[Any]:
    ax.set(xlabel="score", ylabel="share of the class", xlim=(0, 1), ylim=(0, _scores_top(c)))
    handles = [Patch(color=colour, alpha=0.45) for colour in SCORE_COLOURS.values()]
    return [ax.legend(handles, list(SCORE_COLOURS), fontsize=8, framealpha=1.0, loc="upper center")]


def _scores_dynamic(ax: Axes, c: dict[str, Any]) -> list[Any]:
    drawn: list[Any] = []
    for name, shares in _shares(c).items():
        drawn.append(ax.stairs(shares, c["edges"], fill=True, alpha=0.45, color=SCORE_COLOURS[name]))
    title = f"Test scores by class: {sum(c['negative'])} negative, {sum(c['positive'])} positive"
    return [*drawn, _title(ax, title)]


def _boundary_static(fig: Figure, ax: Axes, c: dict[str, Any]) -> list[Any]:
    ax.set(xlabel=c["columns"][0], ylabel=c["columns"][1], xlim=(c["x"][0], c["x"][-1]), ylim=(c["y"][0], c["y"][-1]))
    bar = fig.colorbar(ScalarMappable(norm=Normalize(0, 1), cmap="RdBu_r"), ax=ax, label="P(positive)")
    if bar.solids is not None:
        bar.solids.set_alpha(0.55)  # as the filled contours
    return []


def _boundary_dynamic(ax: Axes, c: dict[str, Any]) -> list[Any]:
    drawn: list[Any] = [ax.contourf(c["x"], c["y"], c["score"], levels=20, cmap="RdBu_r", alpha=0.55, vmin=0, vmax=1)]
    drawn.append(ax.contour(c["x"], c["y"], c["score"], levels=[c["threshold"]], colors="k", linewidths=1.5))
    pts = c["points"]
    label = np.asarray(pts["label"])
    px, py = np.asarray(pts["x"]), np.asarray(pts["y"])
    drawn.append(ax.scatter(px[label == 0], py[label == 0], s=3, c="#3060a0", alpha=0.4, rasterized=True))
    drawn.append(ax.scatter(px[label == 1], py[label == 1], s=8, c="#c02020", rasterized=True))
    return [*drawn, _title(ax, "Scores and decision boundary (test points)")]


def _title(ax: Axes, text: str) -> Any:
    ax.set_title(text, fontsize=10)
    return ax.title


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 5 x 10^k at or above ``value`` x 1.05 (an axis top that many runs share)."""
    if not value > 0:
        return 1.0
    target = value * 1.05
    exponent = np.floor(np.log10(target))
    for step in (1, 2, 5, 10):
        if step * 10**exponent >= target:
            return float(step * 10**exponent)
    return float(10 ** (exponent + 1))


@dataclass(frozen=True)
class Kind:
    """How one figure is drawn: its static part, the key under which that part can be reused
    (the axis ranges it depends on) and its dynamic part."""

    static: Callable[[Figure, Axes, dict[str, Any]], list[Any]]
    dynamic: Callable[[Axes, dict[str, Any]], list[Any]]
    key: Callable[[dict[str, Any]], Hashable] = lambda c: None


KINDS: dict[str, Kind] = {
    "pr": Kind(_pr_static, _pr_dynamic),
    "roc": Kind(_roc_static, _roc_dynamic),
    "reliability": Kind(_reliability_static, _reliability_dynamic, _reliability_labels),
    "cost": Kind(_cost_static, _cost_dynamic, _cost_top),
    "scores": Kind(_scores_static, _scores_dynamic, _scores_top),
    "boundary": Kind(
        _boundary_static, _boundary_dynamic, lambda c: (*c["columns"], c["x"][0], c["x"][-1], c["y"][0], c["y"][-1])
    ),
}


def _blank() -> tuple[Figure, FigureCanvasAgg, Axes]:
    fig = Figure(figsize=SIZE, dpi=DPI)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    fig.subplots_adjust(left=0.15)
    return fig, canvas, ax


def figure(name: str, c: dict[str, Any]) -> Figure:
    """The figure ``name`` of curve data ``c`` on a fresh Figure."""
    fig, _, ax = _blank()
    KINDS[name].static(fig, ax, c)
    KINDS[name].dynamic(ax, c)
    return fig


class _Template:
    """One Agg canvas per (figure, key), drawn once with its static part; each render puts
    that background back and draws the dynamic artists on it, then takes them off again."""

    def __init__(self, kind: Kind, c: dict[str, Any]) -> None:
        self.fig, self.canvas, self.ax = _blank()
        on_top = kind.static(self.fig, self.ax, c)
        self.ax.set_autoscale_on(False)
        self.canvas.draw()
        self.background = self.canvas.copy_from_bbox(self.fig.bbox)
        self.on_top = [self.canvas.copy_from_bbox(a.get_window_extent()) for a in on_top]

    def render(self, kind: Kind, c: dict[str, Any]) -> np.ndarray:
        canvas = self.canvas
        canvas.restore_region(self.background)
        self.ax.set_prop_cycle(None)  # each run's curves start at the first colour, as on a fresh figure
        drawn = kind.dynamic(self.ax, c)
        try:
            for artist in drawn:
                self.ax.draw_artist(artist)
            for region in self.on_top:  # the legend's pixels, over the curves
                canvas.restore_region(region)
            return np.array(canvas.buffer_rgba())
        finally:
            for artist in drawn:
                if artist is self.ax.title:
                    artist.set_text("")
                else:
                    artist.remove()


_templates: dict[tuple[str, Hashable], _Template] = {}


def render_png(name: str, c: dict[str, Any], path: Path) -> None:
    """Write figure ``name`` of ``c`` as a PNG, reusing this process's canvas for it."""
    from PIL import Image

    kind = KINDS[name]
    key = (name, kind.key(c))
    if key not in _templates:
        if len(_templates) > 64:  # a long-lived process sweeping many datasets: start again
            _templates.clear()
        _templates[key] = _Template(kind, c)
    # RGB: the figures are opaque, and the alpha channel would be a quarter of the encoding's work
    Image.fromarray(_templates[key].render(kind, c)[..., :3]).save(path, format="png", compress_level=1)


def write_all(curves: dict[str, Any], out: Path) -> None:
    """``out/plots/<name>.png`` for every curve with a figure, and ``out/curves/<name>.json`` for every curve
    (by orjson: 2 ms a seed_demo run against the standard library's 33 ms; a number that is not
    finite is written null, as JSON has no NaN)."""
    (out / "plots").mkdir(parents=True, exist_ok=True)
    (out / "curves").mkdir(parents=True, exist_ok=True)
    for name, data in curves.items():
        (out / "curves" / f"{name}.json").write_bytes(orjson.dumps(data))
        if name in KINDS:
            render_png(name, data, out / "plots" / f"{name}.png")


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
