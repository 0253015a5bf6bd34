"""Run a module as ``python -m`` would and write its peak resident memory (KiB) to a file.

``python -m benchmarks.peak OUT -m pipeline ...``. The peak is the larger of this program's own
VmHWM from /proc/self/status, read at exit (it belongs to this program alone: ``wait4``'s
ru_maxrss would also count the parent's pages at the moment of the fork, which for a benchmark
holding large arrays is more than a small child ever uses), and the largest sum of resident
memory over this program and the processes it started (a single run's writer), sampled every
20 ms, with the process tree looked up every 250 ms. Written second: the largest sum of
proportional set sizes (Pss, /proc/PID/smaps_rollup) over the same tree, in which a page that
several processes map (the shared libraries that both a run and its writer load: NumPy, pandas,
Arrow, SciPy) counts once in all, not once per process as in the sum of resident sizes."""

from __future__ import annotations

import atexit
import os
import re
import runpy
import sys
import threading
from pathlib import Path

_tree_peak = [0, 0]  # KiB: resident, proportional


def _status_kib(pid: int, field: str) -> int:
    try:
        found = re.search(rf"{field}:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    except OSError:  # gone meanwhile
        return 0
    return int(found.group(1)) if found else 0


def _pss_kib(pid: int) -> int:
    try:
        found = re.search(r"Pss:\s+(\d+) kB", Path(f"/proc/{pid}/smaps_rollup").read_text())
    except OSError:  # gone meanwhile
        return 0
    return int(found.group(1)) if found else 0


def _descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def _sample(stop: threading.Event) -> None:
    me, tree, ticks = os.getpid(), [], 0
    while not stop.wait(0.02):
        if ticks % 12 == 0:
            tree = _descendants(me)
        ticks += 1
        _tree_peak[0] = max(_tree_peak[0], sum(_status_kib(pid, "VmRSS") for pid in [me, *tree]))
        _tree_peak[1] = max(_tree_peak[1], sum(_pss_kib(pid) for pid in [me, *tree]))


def _write_peak(out: Path, stop: threading.Event) -> None:
    stop.set()
    out.write_text(f"{max(_status_kib(os.getpid(), 'VmHWM'), _tree_peak[0])} {_tree_peak[1]}")


if __name__ == "__main__":
    out, flag, module, *rest = sys.argv[1:]
    assert flag == "-m", "usage: python -m benchmarks.peak OUT -m MODULE [ARGS...]"
    stop = threading.Event()
    threading.Thread(target=_sample, args=(stop,), daemon=True).start()
    atexit.register(_write_peak, Path(out), stop)
    sys.argv = [module, *rest]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
