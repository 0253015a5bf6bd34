"""Model files this project wrote, and only those, are unpickled.

Loading a pickle runs whatever code it names, so the DVC train stage signs ``model.joblib``
(HMAC-SHA256 of the file's bytes, in ``model.joblib.sig``) with a key that lives outside the
repository, and the evaluate stage refuses a file whose signature is missing or wrong. The key is
``$IMBALANCE_LAB_MODEL_KEY`` or, made on first use, ``~/.config/imbalance-lab/model-key`` (mode
600); a team that shares a DVC remote shares the key the same way it shares other secrets.
A model from a store or remote you do not control is code: retrain it (``dvc repro``).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError

KEY_ENV = "IMBALANCE_LAB_MODEL_KEY"
#: The shortest key accepted: 32 bytes (made keys are 64 hex characters, 256 bits).
MIN_KEY = 32
KEY_RULE = f"at least {MIN_KEY} characters, in a file only its owner can read and write (mode 600)"


def key_path() -> Path:
    home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return home / "imbalance-lab" / "model-key"


def _key() -> bytes:
    """The signing key: ``$IMBALANCE_LAB_MODEL_KEY``, else the key file, made on first use. A key
    anyone could guess (empty, short) or change (a file others can write) would let them sign a
    pickle that runs their code, so it is refused, not used."""
    if KEY_ENV in os.environ:
        key = os.environ[KEY_ENV].encode()
        if len(key) < MIN_KEY:
            raise ConfigError(KEY_ENV, f"<{len(key)} characters>", KEY_RULE, why="too short to keep a secret")
        return key
    path = key_path()
    if not path.exists():
        _make_key(path)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise ConfigError(str(path), f"mode {mode:o}", KEY_RULE, why="others can read or change it: chmod 600 it")
    key = path.read_bytes().strip()
    if len(key) < MIN_KEY:
        raise ConfigError(str(path), f"<{len(key)} characters>", KEY_RULE, why="too short to keep a secret")
    return key


def check_key() -> None:
    """Refuse a key that cannot sign safely (``ConfigError``), making it first if there is none."""
    _key()


def _make_key(path: Path) -> None:
    """Write a new key whole into a private temporary file, then link it into place: processes
    that make it at once all end up reading the one key that was linked first, never a partial one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):  # another process linked its key first: use that one
            os.link(part, path)
    finally:
        part.unlink(missing_ok=True)


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
