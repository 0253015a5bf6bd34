"""Model files this project wrote, and only those, are unpickled.

Loading a pickle runs whatever code it names, so the DVC train stage signs ``model.joblib``
(HMAC-SHA256 of the file's bytes, in ``model.joblib.sig``) with a key that lives outside the
repository, and the evaluate stage refuses a file whose signature is missing or wrong. The key is
``$IMBALANCE_LAB_MODEL_KEY`` or, made on first use, ``~/.config/imbalance-lab/model-key`` (mode
600); a team that shares a DVC remote shares the key the same way it shares other secrets.
A model from a store or remote you do not control is code: retrain it (``dvc repro``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError

KEY_ENV = "IMBALANCE_LAB_MODEL_KEY"


def _key() -> bytes:
    if os.environ.get(KEY_ENV):
        return os.environ[KEY_ENV].encode()
    home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    path = home / "imbalance-lab" / "model-key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
    return path.read_bytes().strip()


def _signature(content: bytes) -> str:
    return hmac.new(_key(), content, hashlib.sha256).hexdigest()


def _sig_path(path: Path) -> Path:
    return path.with_name(path.name + ".sig")


def dump(obj: Any, path: Path) -> None:
    """``joblib.dump`` and sign the file."""
    import joblib

    joblib.dump(obj, path)
    _sig_path(path).write_text(_signature(path.read_bytes()) + "\n")


def load(path: Path, key: str = "--model") -> Any:
    """``joblib.load`` a file ``dump`` wrote with this key; refuse anything else, unread. The bytes
    checked are the bytes loaded: a file swapped after the check is never read."""
    import io

    import joblib

    accepted = "a model file written by this project's train stage with this machine's key (see pipeline/trusted.py)"
    if not path.is_file():
        raise ConfigError(key, path, accepted, why="no such file")
    sig = _sig_path(path)
    if not sig.is_file():
        raise ConfigError(key, path, accepted, why=f"{sig.name} is missing; a pickle runs code when it is loaded")
    content = path.read_bytes()
    if not hmac.compare_digest(sig.read_text().strip(), _signature(content)):
        raise ConfigError(key, path, accepted, why=f"its signature in {sig.name} does not match")
    return joblib.load(io.BytesIO(content))
