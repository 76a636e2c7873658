"""orchestrator/supervisor/control.py: programs as supervisord's getProcessInfo reports them."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.supervisor.control import ProgramInfo


def info(state: str, *, start: int = 100, stop: int = 0, now: int = 103) -> dict[str, Any]:
    """What supervisord's getProcessInfo answers for `nua:rpc` (the keys we read)."""
    return {
        "group": "nua",
        "name": "rpc",
        "statename": state,
        "pid": 4242 if state in ("RUNNING", "STARTING") else 0,
        "start": start,
        "stop": stop,
        "now": now,
        "description": "",
        "exitstatus": 0,
    }


def test_a_running_program_has_its_uptime_and_is_up() -> None:
    program = ProgramInfo.from_xmlrpc(info("RUNNING"))
    assert (program.name, program.pid, program.uptime) == ("nua:rpc", 4242, 3.0)
    assert program.is_up


def test_a_first_start_within_startsecs_is_up() -> None:
    program = ProgramInfo.from_xmlrpc(info("STARTING", stop=0))
    assert program.first_start and program.is_up
    assert program.uptime is None


def test_a_program_starting_again_after_an_exit_is_not_up() -> None:
    # It crashed (laststop set) and supervisord is retrying it: not healthy yet.
    program = ProgramInfo.from_xmlrpc(info("STARTING", stop=101))
    assert not program.first_start
    assert not program.is_up


@pytest.mark.parametrize("state", ["BACKOFF", "FATAL", "EXITED", "STOPPED", "STOPPING"])
def test_other_states_are_not_up(state: str) -> None:
    assert not ProgramInfo.from_xmlrpc(info(state)).is_up
