"""The bad-input catalogue: each case ends as ``python -m pipeline`` ends it, with one line that
names the key (and the value), exit status 2, and no traceback. Composed and run in-process, as
``app.main`` does, so the catalogue stays fast; ``test_the_cli_agrees`` runs a few for real."""

from __future__ import annotations

import functools
import itertools
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf.errors import OmegaConfBaseException

from pipeline import app
from pipeline.errors import ConfigError
from pipeline.paths import CONF_DIR, REPO_ROOT
from tests.conftest import SMALL

QUICK = ["metrics.n_boot=0", "tracking=off"]

#: (case, overrides, what the line must contain). Tables are written by the ``tables`` fixture.
CASES = [
    ("unknown fix", ["fix=smot"], "fix=smot"),
    ("unknown model", ["model=forest"], "model=forest"),
    ("unknown calibration", ["calibration=beta"], "calibration=beta"),
    ("unknown threshold", ["threshold=youden"], "threshold=youden"),
    ("unknown dataset", ["dataset=mnist"], "dataset=mnist"),
    ("unknown top-level key", ["colour=red"], "colour"),
    ("unknown fix key", ["fix.gamma=2"], "fix.gamma"),
    ("unknown model key", ["model.depth=3"], "model.depth"),
    ("seed not a number", ["seed=abc"], "seed"),
    ("seed negative", ["seed=-1"], "seed=-1"),
    ("seed too large", ["seed=4294967296"], "seed=4294967296"),
    ("rate 0", ["imbalance.positive_rate=0"], "imbalance.positive_rate"),
    ("rate 1", ["imbalance.positive_rate=1"], "imbalance.positive_rate"),
    ("rate above 1", ["imbalance.positive_rate=1.5"], "imbalance.positive_rate"),
    ("rate negative", ["imbalance.positive_rate=-0.1"], "imbalance.positive_rate"),
    ("rate not a number", ["imbalance.positive_rate=lots"], "imbalance.positive_rate"),
    ("rate too rare to evaluate", ["imbalance.positive_rate=0.001"], "imbalance.positive_rate"),
    ("cost negative", ["costs.fp=-1"], "costs.fp"),
    ("cost fn negative", ["costs.fn=-2"], "costs.fn"),
    ("costs both zero", ["costs.fp=0", "costs.fn=0"], "costs.fp+costs.fn"),
    ("cost infinite", ["costs.fn=inf"], "costs.fn=inf"),
    ("cost nan", ["costs.fp=nan"], "costs.fp"),
    ("split too large", ["split.calib=0.6", "split.test=0.5"], "split"),
    ("split fraction not a number", ["split.calib=abc"], "split.calib=abc"),
    ("cv key on the default split", ["split.folds=5"], "split.folds"),
    ("cv folds not whole", ["split=cv", "split.folds=2.5"], "split.folds=2.5"),
    ("cv folds above the positives", ["dataset=keel", "dataset.name=zoo_3", "split.folds=6"], "split.folds=6"),
    ("cv calib leaves no positive", ["dataset=keel", "split.calib=0.01"], "split.calib=0.01"),
    ("fixed threshold above 1", ["threshold.value=1.5"], "threshold.value"),
    ("F-beta beta 0", ["threshold=max_f1", "threshold.beta=0"], "threshold.beta"),
    ("precision target 0", ["threshold=recall_at_precision", "threshold.min_precision=0"], "threshold.min_precision"),
    ("recall target above 1", ["threshold=precision_at_recall", "threshold.min_recall=1.5"], "threshold.min_recall"),
    ("calibration method", ["calibration=platt", "calibration.method=beta"], "calibration.method"),
    ("then without prior correction", ["calibration=platt", "calibration.then=isotonic"], "calibration.then"),
    ("torch fix on logreg", ["fix=focal_loss"], "fix=focal_loss"),
    ("balanced batches on hgb", ["fix=balanced_batches", "model=hgb"], "fix=balanced_batches"),
    ("logreg C negative", ["model.C=-1"], "model.C=-1"),
    ("hgb max_iter 0", ["model=hgb", "model.max_iter=0"], "model.max_iter=0"),
    ("hgb learning rate negative", ["model=hgb", "model.learning_rate=-0.1"], "model.learning_rate"),
    ("smote k_neighbors 0", ["fix=smote", "fix.k_neighbors=0"], "fix.k_neighbors=0"),
    ("smote k_neighbors above positives", ["fix=smote", "fix.k_neighbors=500"], "fix"),
    ("near_miss version 7", ["fix=near_miss", "fix.version=7"], "fix.version=7"),
    ("adasyn n_neighbors 0", ["fix=adasyn", "fix.n_neighbors=0"], "fix.n_neighbors=0"),
    ("smote strategy not a ratio", ["fix=smote", "fix.sampling_strategy=lots"], "fix.sampling_strategy=lots"),
    ("random_over strategy negative", ["fix=random_over", "fix.sampling_strategy=-1"], "fix.sampling_strategy"),
    ("unknown keel set", ["dataset=keel", "dataset.name=nope"], "dataset.name=nope"),
    ("empty study", ["study="], "study"),
    ("study outside the repository", ["study=../.."], "study=../.."),
    ("study with a slash", ["study=a/b"], "study=a/b"),
    ("tracking uri scheme", ["tracking=sqlite", "tracking.uri=garbage://x"], "tracking.uri=garbage://x"),
    ("tracking uri plain path", ["tracking=sqlite", "tracking.uri=/tmp/store"], "tracking.uri=/tmp/store"),
    ("tracking uri file store", ["tracking=sqlite", "tracking.uri=file:///tmp/mlruns"], "tracking.uri=file:"),
    ("run writer unknown", ["tracking.writer=sometimes"], "tracking.writer=sometimes"),
    ("resume not a mode", ["resume=maybe"], "resume=maybe"),
    ("table missing file", ["dataset=table", "dataset.path=/nonexistent/x.csv", "dataset.target=y"], "dataset.path"),
    ("table missing target", ["dataset=table", "dataset.path={ok}", "dataset.target=nope"], "dataset.target=nope"),
    ("table group missing", ["dataset=table", "dataset.path={ok}", "dataset.target=y", "dataset.group=[nope]"],
     "dataset.group=nope"),
    ("table drop missing", ["dataset=table", "dataset.path={ok}", "dataset.target=y", "dataset.drop=[nope]"],
     "dataset.drop=nope"),
    ("table three classes", ["dataset=table", "dataset.path={three}", "dataset.target=y"], "dataset.target"),
    ("table one class", ["dataset=table", "dataset.path={one}", "dataset.target=y"], "dataset.target"),
    ("table with NaN", ["dataset=table", "dataset.path={nan}", "dataset.target=y"], "dataset.impute"),
    ("table empty", ["dataset=table", "dataset.path={empty}", "dataset.target=y"], "dataset.path"),
    ("table not a table", ["dataset=table", "dataset.path={garbage}", "dataset.target=y"], "dataset.path"),
    ("table unknown categorical", ["dataset=table", "dataset.path={ok}", "dataset.target=y",
                                   "dataset.categorical=[zzz]"], "dataset.categorical=zzz"),
    ("impute method", ["dataset=table", "dataset.path={nan}", "dataset.target=y", "dataset.impute=magic"],
     "dataset.impute=magic"),
    ("smote on categorical columns",
     ["dataset=table", "dataset.path={cats}", "dataset.target=y", "fix=borderline_smote"], "fix=borderline_smote"),
    ("tomek links on categorical columns",
     ["dataset=table", "dataset.path={cats}", "dataset.target=y", "fix=tomek_links"], "fix=tomek_links"),
    ("numbers with junk strings", ["dataset=table", "dataset.path={junk}", "dataset.target=y"], "not numbers"),
    ("identifier column", ["dataset=table", "dataset.path={ids}", "dataset.target=y"], "dataset.drop"),
    ("duplicate column names", ["dataset=table", "dataset.path={dups}", "dataset.target=y"], "dataset.path"),
    ("target as a subgroup", ["dataset=table", "dataset.path={ok}", "dataset.target=y", "dataset.group=[y]"],
     "dataset.group=y"),
    ("target dropped", ["dataset=table", "dataset.path={ok}", "dataset.target=y", "dataset.drop=[y]"],
     "dataset.drop=y"),
    ("table with inf", ["dataset=table", "dataset.path={inf}", "dataset.target=y"], "dataset.path"),
    ("table with 5 rows", ["dataset=table", "dataset.path={five}", "dataset.target=y"], "imbalance.positive_rate"),
    ("table with only the target", ["dataset=table", "dataset.path={target_only}", "dataset.target=y"],
     "dataset.path"),
    ("appended top-level key", ["+foo=1"], "+foo=1"),
    ("appended model key", ["++model.depth=3"], "++model.depth=3"),
    ("prior correction on rusboost", ["model=rusboost", "calibration=prior_correction"],
     "calibration=prior_correction"),
    ("experiment name outside the repository", ["tracking.experiment=.."], "tracking.experiment=.."),
    ("experiment name of 1000 characters", ["tracking.experiment=" + "e" * 1000], "tracking.experiment=eee"),
    ("cv repeats a million", ["split=cv", "split.repeats=1000000"], "split.repeats=1000000"),
    ("cv folds a thousand", ["split=cv", "split.folds=1000"], "split.folds=1000"),
    ("calib part too small for a row of each class", ["split.calib=1e-9"], "split.calib=1e-09"),
    ("values too large for a float", ["dataset=table", "dataset.path={huge}", "dataset.target=y"], "dataset.path"),
]  # fmt: skip


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return write_tables(tmp_path_factory.mktemp("tables"))


def write_tables(tmp: Path) -> dict[str, str]:
    """Small CSV files, good and bad, named by the placeholders of ``CASES``."""
    rng = np.random.default_rng(0)
    n = 3000
    y = (rng.random(n) < 0.2).astype(int)
    good = pd.DataFrame({"a": rng.normal(size=n) + y, "b": rng.normal(size=n), "y": y})
    frames = {
        "ok": good,
        "three": good.assign(y=rng.integers(0, 3, n)),
        "one": good.assign(y=0),
        "nan": good.assign(a=good.a.where(rng.random(n) > 0.1)),
        "empty": good.iloc[:0],
        "cats": good.assign(c=rng.choice(["x", "y", "z"], n)),
        "junk": good.assign(a=good.a.round(4).astype(str).where(rng.random(n) > 0.004, "?")),
        "ids": good.assign(customer=[f"c{i:05d}" for i in range(n)]),
        "inf": good.assign(b=good.b.where(rng.random(n) > 0.01, np.inf)),
        "five": good.iloc[:5],
        "target_only": good[["y"]],
        "huge": good.assign(a=good.a * 1e300),  # a*1e300 is finite; squared it is not
    }
    paths = {}
    for name, frame in frames.items():
        paths[name] = str(tmp / f"{name}.csv")
        frame.to_csv(paths[name], index=False)
    paths["dups"] = str(tmp / "dups.csv")
    good.rename(columns={"b": "a"}).to_csv(paths["dups"], index=False)  # header a,a,y
    paths["garbage"] = str(tmp / "garbage.csv")
    Path(paths["garbage"]).write_bytes(b"\x00\xff\xfe not a table \x00" * 50)
    return paths


def outcome(overrides: list[str]) -> tuple[int, str]:
    """(exit status, stderr line) as ``python -m pipeline`` ends a single run with these
    overrides: 0 when it runs, 2 with the one line for bad input, 1 for anything else."""
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            small = [] if any(o.startswith("dataset=") for o in overrides) else SMALL  # blobs2d's keys
            cfg = compose("config", overrides=["hydra.callbacks={}", *QUICK, *small, *overrides])
            app.check_overrides(overrides)  # the CLI reads them from HydraConfig
            app.check_run_config(cfg)
            app.run_job(cfg)
    except (ConfigError, HydraException, OmegaConfBaseException) as err:
        return 2, app._one_line(err)
    except Exception as err:  # what would be a traceback
        return 1, f"{type(err).__name__}: {err}"
    finally:
        GlobalHydra.instance().clear()
    return 0, ""


@functools.cache
def case_outcome(overrides: tuple[str, ...], tables: tuple[tuple[str, str], ...]) -> tuple[int, str]:
    """``outcome`` of a catalogue case, once per test session (the README's table reuses it)."""
    return outcome([o.format(**dict(tables)) for o in overrides])


@pytest.mark.parametrize(("case", "overrides", "key"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_naming_the_key(
    tables: dict[str, str], case: str, overrides: list[str], key: str
) -> None:
    status, line = case_outcome(tuple(overrides), tuple(tables.items()))
    assert status == 2, line
    assert key in line and "\n" not in line and "Traceback" not in line
    assert "accepted" in line or "not an option" in line or "not a config key" in line, line


def test_the_catalogue_is_big_enough() -> None:
    assert len(CASES) >= 60 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("overrides", [["fix=smote", "fix.k_neighbors=0"], ["study=../.."], ["seed=-1"]])
def test_the_cli_agrees(overrides: list[str], tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", *QUICK, *SMALL, *overrides, f"hydra.run.dir={tmp_path}/run"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and done.stderr.startswith("error: "), done.stderr
    assert outcome(overrides) == (2, done.stderr.removeprefix("error: ").strip())


@pytest.fixture(autouse=True)
def _no_hydra_left() -> Iterator[None]:
    yield
    GlobalHydra.instance().clear()


def test_junk_cells_with_impute_become_missing_and_are_counted(tables: dict[str, str]) -> None:
    from pipeline import datasets

    with pytest.warns(UserWarning, match=r"column a of .* holds \d+ cells that are not numbers \('\?'\)"):
        loaded = datasets.table(path=tables["junk"], target="y", impute="median")
    assert pd.api.types.is_float_dtype(loaded.X["a"]) and loaded.categorical == []
    raw = pd.read_csv(tables["junk"], dtype=str)["a"]
    assert int(loaded.X["a"].isna().sum()) == int((raw == "?").sum()) > 0


CELLS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.integers(-3, 3),
    st.sampled_from(["", "?", "n/a", "x", "1e400", "0,5", "\u00e9", " "]),
    st.none(),
)


_example = itertools.count()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.integers(30, 80),  # tiny tables, repeated names: cases of the catalogue
    features=st.lists(st.sampled_from(["a", "b", "c", "id", ""]), min_size=1, max_size=4, unique=True),
    clean=st.lists(st.booleans(), min_size=4, max_size=4),
    labels=st.sampled_from(["binary", "random", "none"]),
    data=st.data(),
)
def test_random_malformed_tables_never_give_a_traceback(
    tmp_path: Path, rows: int, features: list[str], clean: list[bool], labels: str, data: st.DataObject
) -> None:
    """Whatever the file holds, the run either goes ahead or ends with the one line (exit 2).
    Columns are often clean numbers and the target often usable, so that many tables reach the
    fit; the others hold junk cells, inf, gaps, repeated or empty names."""
    import csv

    columns = [*features, "y"] if labels != "none" else features or ["a"]
    body = []
    for i in range(rows):
        row = []
        for j, name in enumerate(columns):
            if name == "y" and labels == "binary":
                row.append(i % 2)
            elif j < len(clean) and clean[j]:
                row.append(data.draw(st.floats(-5, 5)))
            else:
                row.append(data.draw(CELLS))
        body.append(row)
    # a new name each time: the prepared data is cached per config (and so per path) in a process
    path = tmp_path / f"t{next(_example)}.csv"
    with open(path, "w", newline="") as out:
        csv.writer(out).writerows([columns, *[["" if v is None else v for v in row] for row in body]])
    status, line = outcome(
        ["dataset=table", f"dataset.path={path}", "dataset.target=y", "imbalance=natural", "split.min_positives=1"]
    )
    assert status in (0, 2), line
    assert "\n" not in line


def test_the_readme_reliability_table_is_generated_from_these_tests(tables: dict[str, str]) -> None:
    """``python -m tests.reliability`` writes it; a case or fault test added without it fails here."""
    from tests import reliability

    assert reliability.current_block() == reliability.render(tables), "run: python -m tests.reliability"
