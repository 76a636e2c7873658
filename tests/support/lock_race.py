"""Run an admin command in this process with a rival `start` fired at its first lock release.

Commands that stop then start (restart, restore) must hold the instance lock
across both; a rival start in between would run an orchestrator of its own.
"""

from __future__ import annotations

import os

import pytest
from cleo.testers.application_tester import ApplicationTester

from orchestrator.console import admin_app
from orchestrator.host.instance_lock import InstanceLock
from tests.support.orchestrator import Orchestrator, Result


def run_with_rival_start(
    orch: Orchestrator,
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    env: dict[str, str] | None = None,
) -> tuple[int, str, Result]:
    """Exit code and output of `command`, and the rival start's result."""
    for var in [v for v in os.environ if v.startswith("NUA_")]:
        monkeypatch.delenv(var)
    for var, value in {**orch.env, **(env or {})}.items():
        if var.startswith("NUA_"):
            monkeypatch.setenv(var, value)
    rival: list[Result] = []
    release = InstanceLock.release

    def release_then_start(lock: InstanceLock) -> None:
        release(lock)
        if not rival and lock.path == orch.locations.lock_file:
            rival.append(orch.run("start"))

    monkeypatch.setattr(InstanceLock, "release", release_then_start)
    tester = ApplicationTester(admin_app.application())
    code = tester.execute(command)
    output = tester.io.fetch_output() + tester.io.fetch_error()
    assert rival, f"{command} never released the instance lock"
    return code, output, rival[0]
