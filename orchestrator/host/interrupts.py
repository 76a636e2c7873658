"""Ctrl-C and SIGTERM in the middle of a command that must undo what it started.

Python turns SIGINT into KeyboardInterrupt, but SIGTERM's default is to die on
the spot, skipping every `finally`. Where a command has launched something it
must stop again if it does not finish (start's readiness wait), SIGTERM is
turned into an exception too, and both signals are held off while it cleans up.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Terminated(BaseException):
    """SIGTERM arrived (raised only inside `sigterm_raises`)."""


class Interrupted(BaseException):
    """A command was stopped by a signal after it had cleaned up; exit 128 + signum."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = signum
        self.message = message

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def __str__(self) -> str:
        return self.message


def _in_main_thread() -> bool:
    # Python runs signal handlers, and lets them be set, in the main thread only.
    return threading.current_thread() is threading.main_thread()


def _raise_terminated(_signum: int, _frame: FrameType | None) -> None:
    raise Terminated


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within, SIGTERM raises `Terminated` (as SIGINT raises KeyboardInterrupt)."""
    if not _in_main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def held_off() -> Iterator[None]:
    """Within, SIGINT and SIGTERM are ignored: a cleanup runs to its end."""
    if not _in_main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def signal_of(exc: BaseException) -> int | None:
    """The signal behind `exc`: SIGINT for KeyboardInterrupt, SIGTERM for Terminated."""
    if isinstance(exc, KeyboardInterrupt):
        return signal.SIGINT
    if isinstance(exc, Terminated):
        return signal.SIGTERM
    return None
