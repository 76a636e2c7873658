"""nua-orchestrator restart"""

from __future__ import annotations

from cleo.helpers import option

from orchestrator.console.application import NuaCommand
from orchestrator.services import lifecycle


class RestartCommand(NuaCommand):
    name = "restart"
    description = "Stop, then start with a freshly rendered supervisord.conf."
    options = [option("json", None, "Print the result as JSON.")]

    def handle(self) -> int:
        where = self.locations()
        stopped = lifecycle.stop(where)
        started = lifecycle.start(where, report=self.line_error)
        if self.option("json"):
            self.write_json(
                {
                    "status": "restarted",
                    "stopped_pid": stopped.pid,
                    "pid": started.pid,
                    "seconds": round(started.seconds, 3),
                }
            )
            return 0
        before = f"stopped (pid {stopped.pid})" if stopped.was_running else "was not running"
        self.line(f"{before}; started (pid {started.pid}) in {started.seconds:.1f}s")
        return 0
