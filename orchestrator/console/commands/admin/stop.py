"""nua-orchestrator stop"""

from __future__ import annotations

from cleo.helpers import option

from orchestrator.console.application import NuaCommand
from orchestrator.services import lifecycle


class StopCommand(NuaCommand):
    name = "stop"
    description = "Stop every program and supervisord; return when all are gone."
    help = (
        "Asks supervisord to shut down through its XML-RPC interface, waits until "
        "supervisord and every program are gone and the sockets removed, and cleans "
        "what a crashed run left. Not running: says so and exits 0."
    )
    options = [option("json", None, "Print the result as JSON.")]

    def handle(self) -> int:
        result = lifecycle.stop(self.locations())
        if self.option("json"):
            self.write_json(
                {
                    "status": "stopped" if result.was_running else "not running",
                    "pid": result.pid,
                    "cleaned": result.cleaned.describe() or None,
                    "forced": result.forced,
                }
            )
            return 0
        for line in result.forced:
            self.line_error(f"warning: {line}")
        if result.was_running:
            self.line(f"stopped (pid {result.pid})")
        else:
            self.line("not running")
        if result.cleaned:
            self.line(f"cleaned what a crashed run left: {result.cleaned.describe()}")
        return 0
