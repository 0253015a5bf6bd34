"""Every option of every group composes and instantiates; the schema catches wrong keys and types."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig

from pipeline import experiment
from pipeline.paths import CONF_DIR, REPO_ROOT

BUILT = ("dataset", "fix", "model", "calibration", "threshold")
GROUPS = sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir())
OPTIONS = [(g, f.stem) for g in GROUPS for f in sorted((CONF_DIR / g).glob("*.yaml"))]


def test_the_groups_are_the_designed_ones() -> None:
    assert set(GROUPS) == {
        "dataset",
        "imbalance",
        "split",
        "fix",
        "model",
        "calibration",
        "threshold",
        "costs",
        "tracking",
    }


@pytest.mark.parametrize("group,option", OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes_names_itself_and_builds(
    make_cfg: Callable[..., DictConfig], group: str, option: str, tmp_path: Path
) -> None:
    needs = []
    if (group, option) == ("dataset", "table"):  # the user's own file: path and target are mandatory
        (tmp_path / "t.csv").write_text("x,y\n1.0,0\n2.0,1\n")
        needs = [f"dataset.path={tmp_path / 't.csv'}", "dataset.target=y"]
    cfg = make_cfg(f"{group}={option}", *needs)
    assert cfg[group].name  # params read e.g. fix.name=smote in the MLflow UI
    if group in BUILT:
        assert experiment.build(cfg[group]) is not None


@pytest.mark.parametrize("study", sorted(p.stem for p in (REPO_ROOT / "experiments").glob("*.yaml")))
def test_every_study_composes(make_cfg: Callable[..., DictConfig], study: str) -> None:
    cfg = make_cfg(f"experiments={study}")
    assert cfg.study == study


@pytest.mark.parametrize("override", ["fix.k=3", "nonsense=1", "seed=abc", "imbalance.positive_rate=often", "fix=smot"])
def test_wrong_key_type_or_option_fails_at_compose_time(make_cfg: Callable[..., DictConfig], override: str) -> None:
    with pytest.raises(ConfigCompositionException):
        make_cfg(override)


def test_config_hash_ignores_where_a_run_is_tracked(make_cfg: Callable[..., DictConfig]) -> None:
    base = experiment.config_hash(make_cfg())
    assert experiment.config_hash(make_cfg("tracking=sqlite", "study=other")) == base
    assert experiment.config_hash(make_cfg("seed=1")) != base
    assert experiment.config_hash(make_cfg("fix=smote")) != base
