"""nua-orchestrator restart"""

from __future__ import annotations

from cleo.helpers import option

from orchestrator.console.application import NuaCommand
from orchestrator.services import lifecycle


class RestartCommand(NuaCommand):
    name = "restart"
    description = "Stop, then start with a freshly rendered supervisord.conf."
    help = (
        "Holds the instance lock from the stop to the end of the start, so that no "
        "other command can start the orchestrator in between."
    )
    options = [option("json", None, "Print the result as JSON.")]

    def handle(self) -> int:
        # One hold of the instance lock for both: no other command starts it in between.
        stopped, started = lifecycle.restart(self.locations(), report=self.line_error)
        # Cannot happen under the one lock; if it did, say so rather than "started".
        after = (
            f"already running (pid {started.pid}), not started by this restart"
            if started.already_running
            else f"started (pid {started.pid}) in {started.seconds:.1f}s"
        )
        if self.option("json"):
            self.write_json(
                {
                    "status": "already running" if started.already_running else "restarted",
                    "stopped_pid": stopped.pid,
                    "pid": started.pid,
                    "seconds": round(started.seconds, 3),
                }
            )
            return 0
        before = f"stopped (pid {stopped.pid})" if stopped.was_running else "was not running"
        self.line(f"{before}; {after}")
        return 0
