"""status: what runs, whether the worker answers, where everything is."""

from __future__ import annotations

import http.client
import xmlrpc.client
from dataclasses import asdict, dataclass, field
from typing import Any

import psutil

from orchestrator.errors import ExitCode
from orchestrator.host.locations import Locations
from orchestrator.rpc.client import ClientError, NotRunningError, RpcClient
from orchestrator.supervisor import control
from orchestrator.supervisor.daemon import Supervisord

RPC_PROGRAM = f"{control.ORCHESTRATOR_GROUP}:rpc"


@dataclass
class StatusReport:
    running: bool
    supervisord_pid: int | None = None
    programs: list[control.ProgramInfo] = field(default_factory=list)
    worker: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)
    leftovers: str | None = None
    locations: dict[str, str] = field(default_factory=dict)

    @property
    def exit_code(self) -> ExitCode:
        if not self.running:
            return ExitCode.NOT_RUNNING
        return ExitCode.ERROR if self.problems else ExitCode.OK

    @property
    def health(self) -> str:
        if not self.running:
            return "not running"
        return "degraded" if self.problems else "healthy"

    def to_json(self) -> dict[str, Any]:
        return {
            "health": self.health,
            "running": self.running,
            "supervisord_pid": self.supervisord_pid,
            "programs": [asdict(p) for p in self.programs],
            "worker": self.worker,
            "problems": self.problems,
            "leftovers": self.leftovers,
            "locations": self.locations,
            "exit_code": int(self.exit_code),
        }


def collect(locations: Locations, timeout: float = 3.0) -> StatusReport:
    """Ask supervisord and the worker how things are; never changes anything."""
    daemon = Supervisord(locations)
    report = StatusReport(running=False, locations=locations.as_dict())
    ident = daemon.running()
    if ident is None:
        found = daemon.leftovers()
        if found:
            report.leftovers = found.describe()
        return report
    report.running = True
    report.supervisord_pid = ident.pid
    try:
        report.programs = control.programs(daemon.proxy(timeout=timeout))
    except (OSError, xmlrpc.client.Error, http.client.HTTPException) as exc:
        report.problems.append(
            f"supervisord (pid {ident.pid}) does not answer on {locations.supervisor_socket} "
            f"within {timeout:g}s ({exc}){_advice(ident.pid, 'nua-orchestrator restart')}"
        )
        return report
    for program in report.programs:
        # Apps (groups app-*) are stopped or failing on their own account: `nua apps` says.
        in_core = program.name.split(":", 1)[0] == control.ORCHESTRATOR_GROUP
        if in_core and not program.is_up:
            report.problems.append(f"{program.name} is {program.state}")
    try:
        report.worker = RpcClient(locations.rpc_endpoint, timeout=timeout, retries=1).call(
            "system.version"
        )
    except ClientError as exc:
        reason = f"no answer within {timeout:g}s" if isinstance(exc, NotRunningError) else exc
        rpc = next((p for p in report.programs if p.name == RPC_PROGRAM and p.pid), None)
        who = f"{RPC_PROGRAM} (pid {rpc.pid})" if rpc else RPC_PROGRAM
        fix = f"supervisorctl -c {locations.supervisor_conf} restart {RPC_PROGRAM}"
        report.problems.append(
            f"the rpc worker {who} does not answer on {locations.rpc_endpoint} ({reason})"
            + _advice(rpc.pid if rpc else None, fix)
        )
    return report


def _advice(pid: int | None, fix: str) -> str:
    """What to do about a process that does not answer: resume it if it is stopped."""
    try:
        stopped = pid is not None and psutil.Process(pid).status() == psutil.STATUS_STOPPED
    except psutil.Error:
        stopped = False
    if stopped:
        return f"; it is stopped (SIGSTOP): kill -CONT {pid} resumes it"
    return f"; if it stays so, run `{fix}`"
