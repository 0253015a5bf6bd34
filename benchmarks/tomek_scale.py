"""3. Tomek links at scale: imbalanced-learn's TomekLinks against pipeline.tomek.FastTomekLinks
on the training split of fraud_synth (scaled, as the pipeline hands it to the fix), for
``tomek_links`` (few positives: the fast search asks about them only) and ``smote_tomek``
(balanced after SMOTE: half the rows are positives, so the exact search saves less; float32
distances are reported beside it, with whether they remove the same rows)."""

from __future__ import annotations

import numpy as np
from imblearn.over_sampling import SMOTE
from imblearn.under_sampling import TomekLinks
from sklearn.preprocessing import StandardScaler

from benchmarks.common import Row, composed, timed
from pipeline import experiment
from pipeline.tomek import FastTomekLinks


def training_rows(n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """fraud_synth's training split at ``n_rows`` rows, standardised, as a fix receives it."""
    with composed() as compose:
        cfg = compose("dataset=fraud_synth", f"dataset.n_rows={n_rows}", "imbalance=natural", "tracking.enabled=false")
    train = experiment.prepare(cfg).train
    return StandardScaler().fit_transform(train.X.to_numpy()), np.asarray(train.y)


def compare(X: np.ndarray, y: np.ndarray, strategy: str) -> tuple[float, float, bool, int]:
    """Seconds for imblearn and for ours, whether the kept rows are identical, and our query count."""
    theirs, ours = TomekLinks(sampling_strategy=strategy), FastTomekLinks(sampling_strategy=strategy)
    t_theirs = timed(lambda: theirs.fit_resample(X, y))[0]
    t_ours = timed(lambda: ours.fit_resample(X, y))[0]
    return t_theirs, t_ours, bool(np.array_equal(theirs.sample_indices_, ours.sample_indices_)), ours.n_queries_


def main(full_rows: int = 284_807, smote_rows: int = 100_000) -> list[Row]:
    X, y = training_rows(full_rows)
    theirs, ours, same, queries = compare(X, y, "auto")
    rows = [
        Row("3 tomek_links", f"s, train split of {full_rows:,} rows ({len(y):,} x {X.shape[1]}); "
            f"{queries:,} queries, same rows: {same}", f"imblearn {theirs:.1f}", f"fast {ours:.2f}", theirs / ours,
            ">= 100, identical", same and theirs / ours >= 100),
    ]  # fmt: skip
    Xs, ys = SMOTE(random_state=0).fit_resample(*training_rows(smote_rows))
    theirs, ours, same, queries = compare(Xs, ys, "all")
    f32 = FastTomekLinks(sampling_strategy="all")
    t32 = timed(lambda: f32.fit_resample(Xs.astype(np.float32), ys))[0]
    reference = FastTomekLinks(sampling_strategy="all")
    reference.fit_resample(Xs, ys)
    same32 = bool(np.array_equal(f32.sample_indices_, reference.sample_indices_))
    label = f"s, SMOTE'd train split of {smote_rows:,} rows ({len(ys):,} rows)"
    rows.append(Row("3 smote_tomek", f"{label}; {queries:,} queries, same rows: {same}", f"imblearn {theirs:.1f}",
                    f"fast {ours:.1f}", theirs / ours, "faster, identical", same and theirs > ours))  # fmt: skip
    rows.append(Row("3 smote_tomek", f"{label}, float32 distances; same rows as float64: {same32}",
                    f"imblearn {theirs:.1f}", f"fast float32 {t32:.1f}", theirs / t32, "(report)", None))  # fmt: skip
    return rows


if __name__ == "__main__":
    import sys

    for row in main(*map(int, sys.argv[1:])):
        print(row)
