"""4. Growth: logreg + smote through ``python -m pipeline`` on fraud_synth at 10k, 100k and 1M
rows (natural rate, tracked): wall time and peak memory per row. The per-row ratio from 100k to
1M includes the fixed start-up cost, which flatters the larger size; the marginal ratio,
(t(1M) - t(100k)) / 900k against (t(100k) - t(10k)) / 90k, does not."""

from __future__ import annotations

from benchmarks.common import Row, run_child, scratch

SIZES = (10_000, 100_000, 1_000_000)


def main(sizes: tuple[int, ...] = SIZES) -> list[Row]:
    out = scratch("growth")
    store = f"tracking.uri=sqlite:///{out / 'mlflow.db'}"
    job = ["dataset=fraud_synth", "imbalance=natural", "fix=smote", "model=logreg", "split.min_positives=1",
           store, f"hydra.run.dir={out / 'run'}"]  # fmt: skip
    run_child(["-m", "pipeline", *job, f"dataset.n_rows={sizes[0]}"])  # the store exists before the clock starts
    wall, peak = {}, {}
    for n in sizes:
        wall[n], peak[n], *_ = run_child(["-m", "pipeline", *job, f"dataset.n_rows={n}"])
    small, mid, large = sizes
    per_row = {n: wall[n] / n for n in sizes}
    marginal_mid = (wall[mid] - wall[small]) / (mid - small)
    marginal_large = (wall[large] - wall[mid]) / (large - mid)
    memory = {n: peak[n] * 1024 / n for n in sizes}  # KiB per row
    times = ", ".join(f"{n:,}: {wall[n]:.1f} s / {peak[n]:.0f} MiB" for n in sizes)
    return [
        Row("4 growth", f"s per row ({times})", f"{mid:,}: {per_row[mid] * 1e6:.1f} us",
            f"{large:,}: {per_row[large] * 1e6:.1f} us", per_row[large] / per_row[mid], "< 1.5",
            per_row[large] / per_row[mid] < 1.5),
        Row("4 growth", "marginal s per row", f"{small:,}->{mid:,}: {marginal_mid * 1e6:.1f} us",
            f"{mid:,}->{large:,}: {marginal_large * 1e6:.1f} us", marginal_large / marginal_mid, "(report)", None),
        Row("4 growth", "peak memory per row", f"{mid:,}: {memory[mid]:.2f} KiB", f"{large:,}: {memory[large]:.2f} KiB",
            memory[large] / memory[mid], "(report)", None),
    ]  # fmt: skip


if __name__ == "__main__":
    import sys

    for row in main(tuple(map(int, sys.argv[1:])) or SIZES):
        print(row)
