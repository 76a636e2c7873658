"""Fixtures for end-to-end tests."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.orchestrator import Orchestrator

PLUGINS = Path(__file__).resolve().parents[1] / "plugins" / "site"


@pytest.fixture(scope="module")
def served() -> Iterator[Orchestrator]:
    """One running orchestrator with the test plugins installed, shared by a module."""
    home = Path(tempfile.mkdtemp(prefix="nua"))
    # One thread: calls run in the order they arrive (see RawClient.exchange).
    orch = Orchestrator(home, extra_env={"PYTHONPATH": str(PLUGINS), "NUA_RPC_THREADS": "1"})
    orch.start()
    yield orch
    leaked = orch.kill_everything()
    shutil.rmtree(home, ignore_errors=True)
    assert not leaked, f"processes leaked from {home}: {leaked}"
