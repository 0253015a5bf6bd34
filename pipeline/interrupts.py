"""Ctrl-C and SIGTERM as KeyboardInterrupt, held back while a run is being opened or ended.

Python runs signal handlers in the main thread whichever thread the kernel picked, so blocking
signals per thread (``pthread_sigmask``) does not shield anything once MLflow or tqdm have
started threads; the shield is kept here instead. Every signal is also recorded: an interrupt
raised while Python runs a weakref callback or a ``__del__`` is printed and dropped, so sweeps
call ``stop_if_interrupted`` between jobs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, NoReturn

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


_watching: list[int] = []


def die_with_parent(every: float = 0.5, grace: float = 20.0) -> None:
    """In a launcher's worker process (joblib, Ray): take SIGINT and SIGTERM as interrupts, as the
    main process does, and interrupt this process when the one that started it is gone (killed
    with ``kill -9``), so that a worker ends its run KILLED and starts no further job instead of
    working on for a dead sweep. The worker exits once it holds no open run (an idle worker
    waits in C code, where an interrupt does not reach it), or after ``grace`` seconds, ending
    the runs it still holds KILLED."""
    if _watching:
        return
    install()
    _watching.append(os.getppid())

    def watch() -> None:
        while os.getppid() == _watching[0]:
            time.sleep(every)
        os.kill(os.getpid(), signal.SIGTERM)
        idle = 0
        for _ in range(int(grace / every)):
            time.sleep(every)
            tracking = sys.modules.get("pipeline.tracking")
            idle = idle + 1 if not _depth[0] and not (tracking and tracking.open_runs()) else 0
            if idle >= 2:
                break
        if tracking:  # still open after the grace: end them here rather than leave them RUNNING
            tracking.end_open_runs("KILLED", "")
        os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


def quick_exit(code: int) -> NoReturn:
    """Leave now with ``code``, after what ``atexit`` holds (log handlers, multiprocessing's
    children, MLflow's), without the interpreter's teardown: freeing every module and object
    of the scientific stack one by one takes about 0.45 s, and the system frees the memory at
    once. Only with no other thread that would be waited for: otherwise a normal exit."""
    import atexit

    if any(t.is_alive() and not t.daemon and t is not threading.main_thread() for t in threading.enumerate()):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):  # closed, or a broken pipe
            stream.flush()
    os._exit(code)
