"""Signals: deferred inside a shielded section, raised at its end, remembered afterwards."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from pipeline import interrupts


@pytest.fixture
def installed() -> Iterator[None]:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    interrupts.install()
    yield
    interrupts._received.clear()
    for s, h in before.items():
        signal.signal(s, h)


def test_a_signal_outside_a_shield_interrupts_at_once(installed: None) -> None:
    with pytest.raises(KeyboardInterrupt, match="signal 15"):
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(10**6):  # the handler runs between bytecodes, well before this ends
            pass


def test_a_signal_inside_a_shield_is_raised_as_it_ends(installed: None) -> None:
    finished = []
    with pytest.raises(KeyboardInterrupt, match="signal 2"), interrupts.shielded():
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(10**5):
            pass
        with interrupts.shielded():  # nested: still held until the outer one ends
            pass
        finished.append(True)
    assert finished == [True]


def test_a_received_signal_stops_later_checks(installed: None) -> None:
    interrupts.stop_if_interrupted()  # nothing received: no-op
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(10**6):
            pass
    with pytest.raises(KeyboardInterrupt, match="signal 15"):
        interrupts.stop_if_interrupted()


def test_after_a_signal_any_failure_counts_as_the_interruption(installed: None) -> None:
    assert not interrupts.received()

    def compose_like_hydra() -> None:  # libraries may turn the interrupt into an error of their own
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(10**6):
                pass
        except BaseException as err:
            raise ValueError("not a config key") from err

    with pytest.raises(ValueError):
        compose_like_hydra()
    assert interrupts.received()
