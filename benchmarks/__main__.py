"""``make bench``: the six benchmarks, then one table of ratios (also written to
outputs/bench/table.md). ``python -m benchmarks --only 1,5`` runs some of them."""

from __future__ import annotations

import argparse
import os
import platform
import time

from tabulate import tabulate

from benchmarks import fraud_scale, growth, scale, startup, tomek_scale, tracking_overhead
from benchmarks.common import Row
from pipeline.paths import REPO_ROOT

BENCHMARKS = {
    "1": ("tracking overhead", tracking_overhead.main),
    "2": ("fraud scale", fraud_scale.main),
    "3": ("Tomek links at scale", tomek_scale.main),
    "4": ("growth", growth.main),
    "5": ("start-up", startup.main),
    "6": ("studies at scale", scale.main),
}
HEADERS = ["benchmark", "measure", "baseline", "ours", "ratio", "target", "met"]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated benchmark numbers")
    args = parser.parse_args()
    rows: list[Row] = []
    for number in args.only.split(","):
        name, bench = BENCHMARKS[number.strip()]
        print(f"[{time.strftime('%H:%M:%S')}] benchmark {number}: {name} ...", flush=True)
        rows += bench()
    table = tabulate([row.cells() for row in rows], HEADERS, tablefmt="github")
    text = f"Machine: {machine()}\n\n{table}\n"
    print(text)
    out = REPO_ROOT / "outputs" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(text)


if __name__ == "__main__":
    main()
