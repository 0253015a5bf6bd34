"""Directories, named once, and what a command may do to a path. Everything else asks here.

No command deletes or overwrites anything it did not make: a folder a command replaces holds
that command's marker file, a file it overwrites is one it wrote (``owned_file``), and every
name that becomes a path (a study, an experiment, a report) is one plain folder name.
"""

import os
import re
import shutil
from pathlib import Path

from pipeline.errors import ConfigError

#: The repository root: `conf/`, `experiments/` and the default MLflow store live here.
REPO_ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = REPO_ROOT / "conf"

#: A name that becomes a folder or a file name: no separators, no '..', not hidden, not too long.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
NAME_RULE = "a name of letters, digits, '-', '_' and '.' (at most 100, no '..') that starts with a letter or digit"


def default_store() -> Path:
    """The SQLite store at the repository root. Under DVC it is the root DVC names in
    ``$DVC_ROOT``: for a queued or ``--temp`` experiment that is the parent repository, not
    the temporary copy the stage runs in, so every run lands in the one store."""
    return Path(os.environ.get("DVC_ROOT") or REPO_ROOT).resolve() / "mlflow.db"


def check_name(key: str, value: object) -> str:
    """``value`` if it is a plain folder name (``NAME``), else ``ConfigError`` naming ``key``."""
    text = str(value)
    if not NAME.match(text) or ".." in text:
        raise ConfigError(key, text[:120], NAME_RULE)
    return text


def claim_folder(key: str, folder: Path, marker: str) -> None:
    """Make ``folder`` empty and ours: a new folder, an empty one, or one holding ``marker`` (the
    file a command leaves in every folder it writes, so that it may replace its own output and
    nothing else). Anything else is refused before a file is touched."""
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise ConfigError(key, folder, f"a new folder, or one this command wrote (it holds {marker})",
                          why="it is a file or a link")  # fmt: skip
    if folder.is_dir() and any(folder.iterdir()):
        if not (folder / marker).is_file():
            raise ConfigError(key, folder, f"a new or empty folder, or one this command wrote (it holds {marker})",
                              why="it holds files this command did not write")  # fmt: skip
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / marker).write_text("written by imbalance-lab; this folder is replaced when the command runs again\n")


def owned_file(key: str, path: Path, signature: str) -> None:
    """Refuse to overwrite ``path`` unless it is new or holds ``signature`` (what this command
    writes into every such file)."""
    if path.is_symlink() or path.is_dir():
        raise ConfigError(key, path, "a new file, or one this command wrote", why="it is a folder or a link")
    if path.exists():
        with open(path, "rb") as head:
            start = head.read(4096)
        if signature.encode() not in start:
            raise ConfigError(key, path, "a new file, or one this command wrote", why="it exists and is not its output")
