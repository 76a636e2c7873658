"""Fixtures shared by unit and end-to-end tests."""

from __future__ import annotations

import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.orchestrator import Orchestrator


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C as a terminal sends it, whoever started the tests.

    A shell without job control starts a background command (`bash .ci/run &`)
    with SIGINT ignored, and an ignored signal is inherited across exec: the
    tests of Ctrl-C would see it ignored, in this process and in every command
    they run.
    """
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def short_home() -> Iterator[Path]:
    """A fresh, short temporary folder (unix socket paths are limited to 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="nua"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def orch(short_home: Path) -> Iterator[Orchestrator]:
    """An orchestrator home; whatever it started is stopped, and leaks fail the test."""
    o = Orchestrator(short_home)
    yield o
    leaked = o.kill_everything()
    assert not leaked, f"processes leaked from {short_home}: {leaked}"
