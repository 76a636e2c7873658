"""orchestrator/host/interrupts.py: SIGTERM as an exception, signals held off for a cleanup."""

from __future__ import annotations

import os
import signal

import pytest
from cleo.testers.application_tester import ApplicationTester

from orchestrator.console.application import NuaApplication, NuaCommand
from orchestrator.host.interrupts import (
    Interrupted,
    Terminated,
    held_off,
    signal_of,
    sigterm_raises,
)


def test_sigterm_raises_inside_and_the_handler_comes_back() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated), sigterm_raises():
        os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is before


def test_held_off_ignores_both_signals_until_the_end() -> None:
    with held_off():
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)


def test_signal_of() -> None:
    assert signal_of(KeyboardInterrupt()) == signal.SIGINT
    assert signal_of(Terminated()) == signal.SIGTERM
    assert signal_of(RuntimeError()) is None


class _Interrupted(NuaCommand):
    name = "wait"

    def handle(self) -> int:
        raise Interrupted(signal.SIGTERM, "start was interrupted by SIGTERM; stopped")


class _CtrlC(NuaCommand):
    name = "loop"

    def handle(self) -> int:
        raise KeyboardInterrupt


@pytest.mark.parametrize(
    ("command", "code", "line"),
    [
        ("wait", 143, "interrupted: start was interrupted by SIGTERM; stopped"),
        ("loop", 130, "interrupted"),
    ],
)
def test_the_application_exits_128_plus_the_signal(command: str, code: int, line: str) -> None:
    app = NuaApplication("t", {"wait": _Interrupted, "loop": _CtrlC})
    tester = ApplicationTester(app)
    assert tester.execute(command) == code
    assert tester.io.fetch_error().splitlines() == [line]
