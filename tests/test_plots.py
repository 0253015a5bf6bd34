"""Figures: the reused canvas draws what a fresh figure draws; thinning keeps a curve's shape."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from omegaconf import DictConfig
from PIL import Image

from pipeline import experiment, plots
from tests.conftest import SMALL


def test_thin_keeps_each_buckets_first_last_lowest_and_highest_point() -> None:
    rng = np.random.default_rng(0)
    x = np.sort(rng.random(50_000))[::-1]  # monotone, falling, as a PR curve's recall
    y = rng.random(50_000)
    y[12_345] = 5.0  # a spike that must survive
    tx, ty = plots.thin(x, y, buckets=100)
    assert len(tx) <= 400 and tx[0] == x[0] and tx[-1] == x[-1] and 5.0 in ty
    assert np.all(np.diff(tx) <= 0)  # still in curve order
    for b in range(100):  # per bucket, the extremes of y are kept
        inside = np.minimum((x - x.min()) / (x.max() - x.min()) * 100, 99).astype(int) == b
        kept = np.minimum((tx - x.min()) / (x.max() - x.min()) * 100, 99).astype(int) == b
        if inside.any():
            assert ty[kept].max() == y[inside].max() and ty[kept].min() == y[inside].min()
    short = np.arange(10.0)
    assert [list(a) for a in plots.thin(short, short)] == [list(short), list(short)]


@pytest.mark.parametrize(
    ("value", "top"), [(0.93, 1.0), (0.96, 2.0), (0.3, 0.5), (4.9, 10.0), (0.0, 1.0), (0.012, 0.02)]
)
def test_nice_ceiling_by_hand(value: float, top: float) -> None:
    assert plots.nice_ceiling(value) == pytest.approx(top)


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def test_the_reused_canvas_draws_what_a_fresh_figure_draws(make_cfg: Callable[..., DictConfig], tmp_path: Path) -> None:
    first = experiment.run(make_cfg(*SMALL, "metrics.n_boot=0")).curves
    second = experiment.run(make_cfg(*SMALL, "metrics.n_boot=0", "fix=smote", "seed=1")).curves
    assert set(second) == set(plots.KINDS)  # blobs2d has two features: the boundary too
    for name, data in second.items():
        plots.render_png(name, first[name], tmp_path / f"{name}-first.png")  # the canvas has drawn another run
        plots.render_png(name, data, tmp_path / f"{name}-reused.png")
        plots.figure(name, data).savefig(tmp_path / f"{name}-fresh.png")
        reused, fresh = _pixels(tmp_path / f"{name}-reused.png"), _pixels(tmp_path / f"{name}-fresh.png")
        assert reused.shape == fresh.shape
        differing = (np.abs(reused - fresh).max(axis=2) > 40).mean()
        assert differing < 0.005, (name, differing)  # antialiasing at the edges of curves, no more
        assert np.abs(_pixels(tmp_path / f"{name}-first.png") - reused).max() > 0  # it did redraw
