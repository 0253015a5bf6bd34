"""Run a module as ``python -m`` would and write its peak resident memory (KiB) to a file.

``python -m benchmarks.peak OUT -m pipeline ...``. The peak is VmHWM from /proc/self/status,
read at exit: it belongs to this program alone. (``wait4``'s ru_maxrss would also count the
parent's pages at the moment of the fork, which for a benchmark holding large arrays is more
than a small child ever uses.)"""

from __future__ import annotations

import atexit
import re
import runpy
import sys
from pathlib import Path


def _write_peak(out: Path) -> None:
    status = Path("/proc/self/status").read_text()
    found = re.search(r"VmHWM:\s+(\d+) kB", status)
    out.write_text(found.group(1) if found else "")


if __name__ == "__main__":
    out, flag, module, *rest = sys.argv[1:]
    assert flag == "-m", "usage: python -m benchmarks.peak OUT -m MODULE [ARGS...]"
    atexit.register(_write_peak, Path(out))
    sys.argv = [module, *rest]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
