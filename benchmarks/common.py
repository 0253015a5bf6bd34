"""What the benchmarks share: composing job configs, timing, child processes' peak memory,
and the rows of the final table."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.paths import CONF_DIR, REPO_ROOT

ENV = {**os.environ, "DVC_NO_ANALYTICS": "1", "PYTHONPATH": str(REPO_ROOT)}
ENV.pop("MLFLOW_TRACKING_URI", None)


@dataclass
class Row:
    """One line of the table: ``ours`` against ``baseline``, as a ratio (and the target)."""

    benchmark: str
    measure: str
    baseline: str
    ours: str
    ratio: float
    target: str = ""
    met: bool | None = None

    def cells(self) -> list[str]:
        met = "" if self.met is None else ("yes" if self.met else "NO")
        return [self.benchmark, self.measure, self.baseline, self.ours, f"{self.ratio:.3g}", self.target, met]


@contextmanager
def composed() -> Iterator[Callable[..., Any]]:
    """Compose the app's config with overrides, as ``python -m pipeline`` would."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        yield lambda *overrides: compose("config", overrides=["hydra.callbacks={}", *overrides])
    GlobalHydra.instance().clear()


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def median(values: list[float]) -> float:
    return statistics.median(values)


def run_child(args: list[str], timeout: float = 3600) -> tuple[float, float, str, float]:
    """Run ``python -m MODULE ARGS`` as a child process; its wall time (s), its peak resident
    memory (MiB: see benchmarks/peak.py), its stdout and its peak proportional memory (MiB,
    shared pages counted once over the process and its children)."""
    import tempfile

    assert args[0] == "-m", "run_child runs modules: ['-m', module, ...]"
    with tempfile.NamedTemporaryFile(suffix=".peak") as peak:
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.peak", peak.name, *args], cwd=REPO_ROOT, env=ENV,
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}")
        kib = Path(peak.name).read_text().split()
    rss, pss = (float(k) / 1024 for k in kib) if len(kib) == 2 else (float("nan"), float("nan"))
    return wall, rss, done.stdout, pss


def last_json(text: str) -> dict[str, Any]:
    """The last line of a child's stdout that is a JSON object."""
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            return dict(json.loads(line))
    raise ValueError("no JSON line in the output")


def scratch(name: str) -> Path:
    """A fresh folder under outputs/bench for one benchmark's stores and files."""
    import shutil

    path = REPO_ROOT / "outputs" / "bench" / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path
