"""5. Start-up: ``python -m pipeline --help`` and ``--cfg job`` must not import torch, MLflow
or imbalanced-learn. ``python -X importtime`` totals for each, against the imports a run makes."""

from __future__ import annotations

import re

from benchmarks.common import Row, run_child

HEAVY = ("torch", "mlflow", "imblearn")
LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def import_profile(args: list[str]) -> tuple[float, set[str]]:
    """Total import time (ms, the sum of every module's own time) and the top-level packages."""
    import subprocess
    import sys

    from benchmarks.common import ENV
    from pipeline.paths import REPO_ROOT

    done = subprocess.run([sys.executable, "-X", "importtime", *args], cwd=REPO_ROOT, env=ENV,
                          capture_output=True, text=True, check=True)  # fmt: skip
    total, packages = 0, set()
    for match in LINE.finditer(done.stderr):
        total += int(match.group(1))
        packages.add(match.group(4).split(".")[0])
    return total / 1000, packages


def main() -> list[Row]:
    run_imports, _ = import_profile(["-c", "import pipeline.app, pipeline.experiment, pipeline.tracking, mlflow"])
    rows = []
    for flag in ("--help", "--cfg job"):
        took, packages = import_profile(["-m", "pipeline", *flag.split()])
        heavy = sorted(set(HEAVY) & packages)
        wall = run_child(["-m", "pipeline", *flag.split()])[0]
        measure = f"import ms, python -m pipeline {flag} ({wall:.2f} s wall); heavy: {heavy or 'none'}"
        rows.append(Row("5 start-up", measure,
                        f"a run's imports {run_imports:.0f}", f"{flag} {took:.0f}", took / run_imports,
                        "no torch/mlflow/imblearn", not heavy))  # fmt: skip
    return rows


if __name__ == "__main__":
    for row in main():
        print(row)
