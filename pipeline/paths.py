"""Directories, named once. Everything else asks here."""

from pathlib import Path

#: The repository root: `conf/`, `experiments/` and the default MLflow store live here.
REPO_ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = REPO_ROOT / "conf"
DEFAULT_STORE = REPO_ROOT / "mlflow.db"
DEFAULT_ARTIFACTS = REPO_ROOT / "mlartifacts"
