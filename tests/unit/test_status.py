"""orchestrator/services/status.py: how a status report maps to health and exit codes."""

from __future__ import annotations

import pytest

from orchestrator.errors import ExitCode
from orchestrator.services.status import StatusReport
from orchestrator.supervisor.control import ProgramInfo


def _program(name: str, state: str) -> ProgramInfo:
    return ProgramInfo(name=name, state=state, pid=42, uptime=1.0, description="", exit_status=0)


@pytest.mark.parametrize(
    ("report", "health", "code"),
    [
        (StatusReport(running=False), "not running", ExitCode.NOT_RUNNING),
        # What a crashed run left does not make it running.
        (
            StatusReport(running=False, leftovers="stale supervisord.pid"),
            "not running",
            ExitCode.NOT_RUNNING,
        ),
        # Problems without a running supervisord cannot happen, but would not hide it.
        (StatusReport(running=False, problems=["x"]), "not running", ExitCode.NOT_RUNNING),
        (
            StatusReport(
                running=True,
                supervisord_pid=7,
                programs=[_program("nua:rpc", "RUNNING")],
                worker={"version": "1"},
            ),
            "healthy",
            ExitCode.OK,
        ),
        (
            StatusReport(running=True, supervisord_pid=7, problems=["nua:sentinel is STOPPED"]),
            "degraded",
            ExitCode.ERROR,
        ),
        (
            StatusReport(running=True, supervisord_pid=7, problems=["a", "b"]),
            "degraded",
            ExitCode.ERROR,
        ),
    ],
    ids=["stopped", "leftovers", "not-running-wins", "healthy", "one-problem", "two-problems"],
)
def test_exit_code_and_health(report: StatusReport, health: str, code: ExitCode) -> None:
    assert report.health == health
    assert report.exit_code == code
    data = report.to_json()
    assert data["health"] == health
    assert data["exit_code"] == int(code)
    assert data["running"] is report.running


def test_the_documented_codes() -> None:
    """README, Exit codes: 0 healthy, 1 running but degraded, 3 not running."""
    assert (ExitCode.OK, ExitCode.ERROR, ExitCode.NOT_RUNNING) == (0, 1, 3)


def test_json_lists_programs_problems_and_locations() -> None:
    report = StatusReport(
        running=True,
        supervisord_pid=7,
        programs=[_program("nua:rpc", "FATAL")],
        problems=["nua:rpc is FATAL"],
        locations={"data": "/d"},
    )
    data = report.to_json()
    assert data["programs"][0]["name"] == "nua:rpc"
    assert data["programs"][0]["state"] == "FATAL"
    assert data["problems"] == ["nua:rpc is FATAL"]
    assert data["locations"] == {"data": "/d"}
    assert data["supervisord_pid"] == 7
