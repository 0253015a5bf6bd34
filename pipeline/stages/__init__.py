"""Thin DVC stage entry points over the functions ``python -m pipeline`` calls.

Each stage reads ``params.yaml`` (composed from ``conf/`` by DVC) and writes only the outputs
``dvc.yaml`` declares; ``dvc.yaml`` names every path once and passes it in.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from omegaconf import DictConfig, OmegaConf


def arguments(description: str, *paths: str) -> argparse.Namespace:
    """``--params`` plus one ``--<name>`` path option per name in ``paths``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    for name in paths:
        parser.add_argument(f"--{name}", type=Path, required=True)
    return parser.parse_args()


def load_params(path: Path) -> DictConfig:
    cfg = OmegaConf.load(path)
    assert isinstance(cfg, DictConfig), f"{path} must hold a mapping"
    return cfg
