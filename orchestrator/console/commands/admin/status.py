"""nua-orchestrator status"""

from __future__ import annotations

from cleo.helpers import option

from orchestrator.console.application import NuaCommand
from orchestrator.services.status import StatusReport, collect


def _uptime(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    clock = f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{days}d {clock}" if days else clock


class StatusCommand(NuaCommand):
    name = "status"
    description = "Show programs, the worker's answer and the locations."
    help = (
        "Exit codes: 0 healthy; 1 running but degraded (the reasons are listed); "
        "3 not running (and whether a crashed run left anything)."
    )
    options = [option("json", None, "Print the status as JSON.")]

    def handle(self) -> int:
        report = collect(self.locations())
        if self.option("json"):
            self.write_json(report.to_json())
        else:
            self._print(report)
        return int(report.exit_code)

    def _print(self, report: StatusReport) -> None:
        self.line(f"nua-orchestrator: <info>{report.health}</info>")
        if not report.running:
            if report.leftovers:
                self.line(
                    f"a crashed run left: {report.leftovers} "
                    "(`nua-orchestrator start` or `stop` cleans it)"
                )
        else:
            self.line(f"supervisord pid {report.supervisord_pid}")
            if report.programs:
                width = max(len(p.name) for p in report.programs)
                self.line(f"  {'PROGRAM':<{width}}  {'STATE':<9} {'PID':>7}  UPTIME")
                for p in report.programs:
                    pid = str(p.pid) if p.pid else "-"
                    self.line(f"  {p.name:<{width}}  {p.state:<9} {pid:>7}  {_uptime(p.uptime)}")
            if report.worker:
                w = report.worker
                self.line(
                    f"worker: version {w.get('version')}, schema {w.get('schema_revision')}, "
                    f"pid {w.get('pid')}"
                )
                self.line(f"  database  {w.get('database')}")
                self.line(f"  endpoint  {w.get('endpoint')}")
            for problem in report.problems:
                self.line(f"<comment>problem:</comment> {problem}")
        self.line("locations:")
        for name, path in report.locations.items():
            self.line(f"  {name:<16} {path}")
