"""Ctrl-C and SIGTERM as KeyboardInterrupt, held back while a run is being opened or ended.

Python runs signal handlers in the main thread whichever thread the kernel picked, so blocking
signals per thread (``pthread_sigmask``) does not shield anything once MLflow or tqdm have
started threads; the shield is kept here instead. Every signal is also recorded: an interrupt
raised while Python runs a weakref callback or a ``__del__`` is printed and dropped, so sweeps
call ``stop_if_interrupted`` between jobs.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import Any

_received: list[int] = []
_depth = [0]
_deferred: list[int] = []


def handler(signum: int, frame: Any) -> None:
    """The SIGINT / SIGTERM handler: raise now, or at the end of the shielded section."""
    _received.append(signum)
    if _depth[0]:
        _deferred.append(signum)
        return
    raise KeyboardInterrupt(f"signal {signum}")


def install() -> None:
    _received.clear()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """A section no signal interrupts; one that arrived meanwhile is raised as it ends."""
    _depth[0] += 1
    try:
        yield
    finally:
        _depth[0] -= 1
    if not _depth[0] and _deferred:
        signum = _deferred.pop()
        _deferred.clear()
        raise KeyboardInterrupt(f"signal {signum}")


def received() -> bool:
    """Whether a signal arrived. An interrupt can surface as another error (Hydra and OmegaConf
    turn one raised while composing a job's config into a config error): after a signal, any
    failure is the interruption."""
    return bool(_received)


def stop_if_interrupted() -> None:
    """Raise KeyboardInterrupt if a signal arrived, in case its first interrupt was dropped."""
    if _received:
        raise KeyboardInterrupt(f"signal {_received[0]}")
