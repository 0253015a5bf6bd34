"""2. Fraud scale: fraud_synth at 284,807 rows, logreg + smote + isotonic + min_cost, end to
end through ``python -m pipeline`` (tracked to a SQLite store that already exists), against
``benchmarks/bare_fraud.py``, the same split, fit, calibration and metrics written with
imbalanced-learn and scikit-learn alone. Each runs as its own process, three times,
alternating; the medians of wall time and of peak resident memory are compared."""

from __future__ import annotations

from pathlib import Path

from benchmarks.common import Row, last_json, median, run_child, scratch

JOB = ["dataset=fraud_synth", "imbalance=natural", "fix=smote", "model=logreg", "calibration=isotonic",
       "threshold=min_cost"]  # fmt: skip


def run_seconds(store: Path) -> list[float]:
    """How long each tracked run took, from opening its MLflow run to ending it, oldest first."""
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{store}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], order_by=["start_time ASC"])
    return [(r.info.end_time - r.info.start_time) / 1000 for r in runs]


def main(repeats: int = 3) -> list[Row]:
    out = scratch("fraud")
    store = f"tracking.uri=sqlite:///{out / 'mlflow.db'}"
    where = f"hydra.run.dir={out / 'run'}"
    # the store and its experiment exist before the clock starts, as they do after a first run
    run_child(["-m", "pipeline", *JOB, "dataset.n_rows=20000", "split.min_positives=2", store, where])
    ours, off, bare, bare_work = [], [], [], []
    for _ in range(repeats):
        wall, peak, printed, pss = run_child(["-m", "benchmarks.bare_fraud"])
        bare.append((wall, peak, pss))
        bare_work.append(last_json(printed)["work_s"])
        wall, peak, _, pss = run_child(["-m", "pipeline", *JOB, store, where])
        ours.append((wall, peak, pss))
        wall, peak, _, pss = run_child(["-m", "pipeline", *JOB, "tracking=off", where])
        off.append((wall, peak, pss))
    work = median(run_seconds(out / "mlflow.db")[-repeats:])
    runs = {"ours": ours, "off": off, "bare": bare}
    wall, peak, pss = ({name: median([r[i] for r in rows]) for name, rows in runs.items()} for i in range(3))
    return [
        Row("2 fraud scale", f"wall s, 284,807 rows, median of {repeats} processes", f"bare {wall['bare']:.2f}",
            f"pipeline {wall['ours']:.2f}", wall["ours"] / wall["bare"], "<= 1.3", wall["ours"] / wall["bare"] <= 1.3),
        Row("2 fraud scale", "s after start-up: the tracked run (data to last artifact) / the bare work",
            f"bare {median(bare_work):.2f}", f"pipeline {work:.2f}", work / median(bare_work), "(report)", None),
        Row("2 fraud scale", "wall s, the same with tracking=off", f"bare {wall['bare']:.2f}",
            f"pipeline {wall['off']:.2f}", wall["off"] / wall["bare"], "(report)", None),
        Row("2 fraud scale", "peak resident MiB (a run and its writer summed)", f"bare {peak['bare']:.0f}",
            f"pipeline {peak['ours']:.0f}", peak["ours"] / peak["bare"], "<= 1.3", peak["ours"] / peak["bare"] <= 1.3),
        Row("2 fraud scale", "peak proportional MiB (Pss: shared library pages counted once)",
            f"bare {pss['bare']:.0f}", f"pipeline {pss['ours']:.0f}", pss["ours"] / pss["bare"], "(report)", None),
        Row("2 fraud scale", "peak resident MiB, tracking=off", f"bare {peak['bare']:.0f}",
            f"pipeline {peak['off']:.0f}", peak["off"] / peak["bare"], "(report)", None),
    ]  # fmt: skip


if __name__ == "__main__":
    import sys

    for row in main(*map(int, sys.argv[1:])):
        print(row)
