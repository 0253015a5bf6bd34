"""The typed top level of the config. Groups whose options build different objects
(dataset, fix, model, calibration, threshold) stay open here; their keys are fixed by
their option files and Hydra's struct mode, so an unknown key still fails at compose time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ImbalanceConf:
    name: str = "rate"
    positive_rate: float | None = 0.05


@dataclass
class CostsConf:
    name: str = "default"
    fp: float = 1.0
    fn: float = 10.0


@dataclass
class TrackingConf:
    name: str = "sqlite"
    enabled: bool = True
    uri: str | None = None
    experiment: str | None = None
    log_model: bool = True
    #: When the store stops answering mid-sweep: go on with the next job, or stop the sweep.
    on_unreachable: str = "continue"
    #: The run writer (pipeline/writer.py): auto (sweeps of 8 jobs or more run by the basic
    #: launcher, and single runs on a machine with a core to spare), always, or never (each
    #: job, and a single run, writes its run itself before it returns).
    writer: str = "auto"


@dataclass
class MetricsConf:
    n_boot: int = 200


@dataclass
class Config:
    dataset: Any = None
    imbalance: ImbalanceConf = field(default_factory=ImbalanceConf)
    #: default (train / calib / test) or cv (repeated stratified k-fold): their keys differ.
    split: Any = None
    fix: Any = None
    model: Any = None
    calibration: Any = None
    threshold: Any = None
    costs: CostsConf = field(default_factory=CostsConf)
    tracking: TrackingConf = field(default_factory=TrackingConf)
    metrics: MetricsConf = field(default_factory=MetricsConf)
    seed: int = 0
    study: str = "adhoc"
    #: false, true (keep the jobs this code already FINISHED) or any_code (whatever code made them).
    resume: Any = False
    #: The metrics a sweep's leaderboard shows (mean +- std over seeds); studies set their own.
    leaderboard: list[str] = field(
        default_factory=lambda: [
            "test/pr_auc", "test/recall", "test/f1", "test/accuracy", "test/baseline_accuracy", "test/ece",
        ]
    )  # fmt: skip
