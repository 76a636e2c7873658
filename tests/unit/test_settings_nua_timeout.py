"""How long `nua` waits: --timeout, else NUA_TIMEOUT, else 5 seconds.

It used to be a setting (rpc.client_timeout) that nothing read: nua cannot
read the database, and it hard-coded 5. The setting is gone; the environment
variable is what an operator sets for their shell or scripts.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cleo.testers.application_tester import ApplicationTester

from orchestrator.console import client_app
from orchestrator.console.client_command import ClientCommand
from orchestrator.host.locations import resolve
from orchestrator.settings.defaults import DEFAULTS_FILE, load_defaults
from orchestrator.settings.overrides import env_overrides

NUA = Path(sys.executable).parent / "nua"


def _run(args: str) -> tuple[int, str, str]:
    tester = ApplicationTester(client_app.application())
    code = tester.execute(args)
    return code, tester.io.fetch_output(), tester.io.fetch_error()


@pytest.fixture
def timeouts(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The timeout each call would have used; the calls answer without a worker."""
    seen: list[float] = []

    def rpc(command: ClientCommand, method: str, params: Any = None) -> Any:
        seen.append(command.timeout())
        return "pong"

    monkeypatch.setattr(ClientCommand, "rpc", rpc)
    monkeypatch.delenv("NUA_TIMEOUT", raising=False)
    return seen


def test_the_default_is_5_seconds(timeouts: list[float], short_home: Path) -> None:
    assert _run(f"call system.ping --home {short_home}")[0] == 0
    assert timeouts == [5.0]


def test_nua_timeout_sets_the_default(
    timeouts: list[float], short_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NUA_TIMEOUT", "12.5")
    assert _run(f"call system.ping --home {short_home}")[0] == 0
    monkeypatch.setenv("NUA_TIMEOUT", " ")  # set but blank: as if unset
    assert _run(f"call system.ping --home {short_home}")[0] == 0
    assert timeouts == [12.5, 5.0]


def test_the_option_wins_over_the_environment(
    timeouts: list[float], short_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NUA_TIMEOUT", "not even a number")
    assert _run(f"call system.ping --home {short_home} --timeout 0.5")[0] == 0
    assert timeouts == [0.5]


@pytest.mark.parametrize("raw", ["soon", "0", "-1", "nan", "inf"])
def test_a_bad_nua_timeout_is_a_usage_error_naming_the_variable(
    timeouts: list[float], short_home: Path, monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv("NUA_TIMEOUT", raw)
    code, out, err = _run(f"call system.ping --home {short_home}")
    assert (code, out) == (2, "")
    assert err == (
        f"error: NUA_TIMEOUT={raw!r} is not a number of seconds; fix it or give --timeout\n"
    )
    assert timeouts == []  # refused before anything was sent


def test_nua_gives_up_within_nua_timeout_when_nothing_answers(short_home: Path) -> None:
    """The real binary, nothing listening: exit 3 within NUA_TIMEOUT, not 5 s."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUA_")}
    env.update(NUA_TIMEOUT="0.3", NUA_HOME=str(short_home))
    began = time.monotonic()
    done = subprocess.run(
        [str(NUA), "ping"], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    took = time.monotonic() - began
    assert done.returncode == 3, done.stderr
    endpoint = resolve(short_home, environ={}).rpc_endpoint
    assert f"no answer from {endpoint} within 0.3s" in done.stderr
    assert took < 4.0, took  # the old hard-coded 5 s would not fit


def test_the_setting_that_nothing_read_is_gone() -> None:
    # `nua settings set rpc.client_timeout 30` stored a value that changed nothing.
    assert "rpc.client_timeout" not in load_defaults(DEFAULTS_FILE)


def test_nua_timeout_is_not_reported_as_an_unknown_setting() -> None:
    found, unknown = env_overrides(load_defaults(DEFAULTS_FILE), {"NUA_TIMEOUT": "10"})
    assert (found, unknown) == ({}, [])
