"""Datasets, the positive rate, and the stratified train / calib / test split."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from pipeline.errors import ConfigError


@dataclass(frozen=True)
class Dataset:
    """Features, 0/1 labels (1 = the rare class we care about), subgroup columns (not features,
    row-aligned with ``X``) and the names of the categorical feature columns."""

    X: pd.DataFrame
    y: np.ndarray
    groups: pd.DataFrame | None = None
    categorical: list[str] = field(default_factory=list)

    def take(self, rows: np.ndarray) -> Dataset:
        """The dataset restricted to positional ``rows`` (the row index is kept)."""
        groups = None if self.groups is None else self.groups.iloc[rows]
        return Dataset(self.X.iloc[rows], self.y[rows], groups, self.categorical)

    def subgroups(self) -> list[tuple[str, np.ndarray]]:
        """``(prefix, values)`` per subgroup column; the prefix names the column (``channel:``)
        only where there are several, so one column gives metrics ``group/<value>/...``."""
        if self.groups is None:
            return []
        several = self.groups.shape[1] > 1
        return [(f"{col}:" if several else "", self.groups[col].astype(str).to_numpy()) for col in self.groups]


@dataclass(frozen=True)
class Splits:
    """Train / calib / test parts of one (dataset, positive rate, split, seed)."""

    train: Dataset
    calib: Dataset
    test: Dataset
    fingerprint: str


def make_blobs2d(
    name: str = "blobs2d",
    n_samples: int = 20000,
    natural_rate: float = 0.3,
    separation: float = 2.0,
    group_b_share: float = 0.3,
    group_b_odds: float = 5.0,
    random_state: int = 0,
) -> Dataset:
    """Two unit-variance Gaussian blobs in 2-D whose means lie ``separation`` apart.

    Rows fall in group ``b`` with probability ``group_b_share``; there the odds of a positive
    are ``group_b_odds`` times those in group ``a``, yet both its classes sit 0.75 lower on ``x2``
    (they look less risky than they are). The group is not a feature, so a model calibrated
    overall under-predicts group b and over-predicts group a.
    """
    rng = np.random.default_rng(random_state)
    in_b = rng.random(n_samples) < group_b_share
    odds_a = _odds_for_overall_rate(natural_rate, group_b_share, group_b_odds)
    odds = np.where(in_b, odds_a * group_b_odds, odds_a)
    y = (rng.random(n_samples) < odds / (1 + odds)).astype(np.int8)
    centre = separation / np.sqrt(2.0)
    X = rng.standard_normal((n_samples, 2)) + centre * y[:, None]
    X[:, 1] -= 0.75 * in_b
    frame = pd.DataFrame(X, columns=["x1", "x2"])
    return Dataset(frame, y, pd.DataFrame({"group": np.where(in_b, "b", "a")}))


def _odds_for_overall_rate(rate: float, share_b: float, odds_ratio: float) -> float:
    """Group a's odds such that the mixture of both groups has positive rate ``rate``."""
    lo, hi = 1e-9, 1e9
    for _ in range(200):
        mid = np.sqrt(lo * hi)
        p_a, p_b = mid / (1 + mid), mid * odds_ratio / (1 + mid * odds_ratio)
        lo, hi = (mid, hi) if (1 - share_b) * p_a + share_b * p_b < rate else (lo, mid)
    return float(np.sqrt(lo * hi))


def set_positive_rate(data: Dataset, rate: float | None, seed: int) -> Dataset:
    """Subsample one class so that the positive rate is ``rate``, keeping as many rows as possible.

    ``None`` keeps the data's own rate. Rows keep their original order and index.
    """
    if rate is None:
        return data
    if not 0.0 < rate < 1.0:
        raise ConfigError("imbalance.positive_rate", rate, "a number in (0, 1), or null for the data's own rate")
    pos, neg = np.flatnonzero(data.y == 1), np.flatnonzero(data.y == 0)
    rng = np.random.default_rng(seed)
    n_pos, n_neg = len(pos), len(neg)
    if rate < n_pos / len(data.y):
        pos = rng.choice(pos, size=round(rate * n_neg / (1 - rate)), replace=False)
    else:
        neg = rng.choice(neg, size=round(n_pos * (1 - rate) / rate), replace=False)
    if len(pos) < 2 or len(neg) < 2:
        accepted = f"a rate this data reaches by subsampling ({n_pos} positives, {n_neg} negatives)"
        why = f"it would keep {len(pos)} positives and {len(neg)} negatives"
        raise ConfigError("imbalance.positive_rate", rate, accepted, why=why)
    return data.take(np.sort(np.concatenate([pos, neg])))


def check_numbers(node: Any, floats: tuple[str, ...], ints: tuple[str, ...], group: str = "split") -> None:
    """Refuse a key of ``node`` that should be a number and is not (the group's keys are
    untyped in the schema: each split option has its own)."""
    for key in (*floats, *ints):
        value = node.get(key)
        number = (int, float) if key in floats else (int,)
        if isinstance(value, bool) or not isinstance(value, number):
            kind = "a number" if key in floats else "a whole number"
            raise ConfigError(f"{group}.{key}", value, kind)


def split(data: Dataset, calib: float, test: float, seed: int) -> Splits:
    """Stratified, seeded train / calib / test split."""
    if not (0 < calib < 1 and 0 < test < 1 and calib + test < 1):
        raise ConfigError("split.calib+split.test", f"{calib}+{test}", "two fractions in (0, 1) whose sum is below 1")
    rows_in = len(data.y)
    for key, share in (("split.test", test), ("split.calib", calib)):
        if share * rows_in < 2:  # not a row of each class, whatever the rate: the fraction is at fault
            raise ConfigError(key, share, f"a fraction that gives that part at least 2 of the {rows_in} rows",
                              why=f"{share:g} x {rows_in} rows is under 2")  # fmt: skip
    rows = np.arange(len(data.y))
    try:
        rest, test_rows = train_test_split(rows, test_size=test, stratify=data.y, random_state=seed)
        train_rows, calib_rows = train_test_split(
            rest, test_size=calib / (1 - test), stratify=data.y[rest], random_state=seed
        )
    except ValueError as err:  # too few rows of a class to put some in every part
        positives = int(np.sum(data.y))
        raise ConfigError(
            "imbalance.positive_rate", None, "data with enough rows of each class for stratified train, calib and "
            "test parts", why=f"{positives} positives, {len(data.y) - positives} negatives: {str(err).split('.')[0]}",
        ) from None  # fmt: skip
    parts = [data.take(np.sort(r)) for r in (train_rows, calib_rows, test_rows)]
    return Splits(parts[0], parts[1], parts[2], fingerprint=fingerprint(parts))


def check_positives(splits: Splits, min_positives: int, rate: float | None) -> None:
    """Refuse splits whose calib or test part has too few positives to evaluate on."""
    parts = (splits.train, splits.calib, splits.test)
    counts = {name: int(part.y.sum()) for name, part in zip(("train", "calib", "test"), parts, strict=True)}
    if counts["calib"] < min_positives or counts["test"] < min_positives or counts["train"] < 2:
        raise ConfigError(
            "imbalance.positive_rate",
            rate,
            f"a rate, dataset or split leaving >= {min_positives} positives in calib and test "
            f"(split.min_positives) and >= 2 in train",
            why=f"positives per part: {counts}",
        )


def fingerprint(parts: list[Dataset]) -> str:
    """A short hash of the content (features, labels, groups, row ids) of the parts."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(pd.util.hash_pandas_object(part.X, index=True).to_numpy().tobytes())
        digest.update(np.ascontiguousarray(part.y).tobytes())
        if part.groups is not None:
            digest.update(pd.util.hash_pandas_object(part.groups, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


PARTS = ("train", "calib", "test")
#: Reserved column names for the label and the subgroups (a prefix) in a prepared parquet file.
TARGET, GROUP = "_target", "_group:"


def write_splits(splits: Splits, folder: Path) -> None:
    """``folder/{train,calib,test}.parquet``: features, ``_target``, ``_group:<column>``, row index."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "categorical.json").write_text(json.dumps(splits.train.categorical))
    for name in PARTS:
        part: Dataset = getattr(splits, name)
        frame = part.X.assign(**{TARGET: part.y})
        if part.groups is not None:
            for col in part.groups:
                frame[f"{GROUP}{col}"] = part.groups[col].to_numpy()
        frame.to_parquet(folder / f"{name}.parquet", index=True)


def read_part(path: Path, categorical: list[str] | None = None) -> Dataset:
    """One prepared part, as ``write_splits`` wrote it."""
    frame = pd.read_parquet(path)
    group_columns = [c for c in frame.columns if str(c).startswith(GROUP)]
    groups = frame[group_columns].rename(columns=lambda c: c.removeprefix(GROUP)) if group_columns else None
    frame = frame.drop(columns=group_columns)
    return Dataset(frame, frame.pop(TARGET).to_numpy(), groups, categorical or [])


def read_splits(folder: Path) -> Splits:
    categorical = json.loads((folder / "categorical.json").read_text())
    parts = [read_part(folder / f"{name}.parquet", categorical) for name in PARTS]
    return Splits(parts[0], parts[1], parts[2], fingerprint=fingerprint(parts))


def describe(splits: Splits) -> list[dict[str, Any]]:
    """One line per part (train, calib, test): rows, positives, columns and content digest."""
    out = []
    for name in PARTS:
        part: Dataset = getattr(splits, name)
        columns = {str(c): str(t) for c, t in part.X.dtypes.items()}
        rows, positives = len(part.y), int(part.y.sum())
        out.append(
            {"part": name, "digest": fingerprint([part]), "rows": rows, "positives": positives, "columns": columns}
        )
    return out
