"""Directories, named once. Everything else asks here."""

import os
from pathlib import Path

#: The repository root: `conf/`, `experiments/` and the default MLflow store live here.
REPO_ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = REPO_ROOT / "conf"


def default_store() -> Path:
    """The SQLite store at the repository root. Under DVC it is the root DVC names in
    ``$DVC_ROOT``: for a queued or ``--temp`` experiment that is the parent repository, not
    the temporary copy the stage runs in, so every run lands in the one store."""
    return Path(os.environ.get("DVC_ROOT") or REPO_ROOT).resolve() / "mlflow.db"
