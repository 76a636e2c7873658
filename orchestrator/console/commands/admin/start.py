"""nua-orchestrator start"""

from __future__ import annotations

from cleo.helpers import option

from orchestrator.console.application import NuaCommand
from orchestrator.db.url import display_url
from orchestrator.services import lifecycle


class StartCommand(NuaCommand):
    name = "start"
    description = "Start supervisord, the rpc worker and the sentinel; wait until ready."
    help = (
        "Creates the locations, upgrades the database schema, stores the default "
        "settings at first launch, renders supervisord.conf and starts supervisord. "
        "Returns once the rpc worker answers <comment>system.ping</comment>. "
        "Already running: says so and exits 0."
    )
    options = [option("json", None, "Print the result as JSON.")]

    def handle(self) -> int:
        result = lifecycle.start(self.locations(), report=self.line_error)
        if self.option("json"):
            self.write_json(
                {
                    "status": "already running" if result.already_running else "started",
                    "pid": result.pid,
                    "programs": [f"nua:{p}" for p in result.programs],
                    "seconds": round(result.seconds, 3),
                    "schema_revision": result.database.revision if result.database else None,
                }
            )
            return 0
        if result.already_running:
            self.line(f"already running (pid {result.pid})")
            return 0
        programs = ", ".join(f"nua:{p}" for p in result.programs)
        self.line(f"started (pid {result.pid}) in {result.seconds:.1f}s: {programs}")
        where = self.locations()
        self.line(f"  endpoint  {where.rpc_endpoint}")
        if result.database:
            db = result.database
            created = " (created)" if db.created else ""
            self.line(f"  database  {display_url(db.url)}{created}, schema {db.revision}")
            if db.merge.added:
                self.line(f"  settings  {len(db.merge.added)} new default(s) stored")
            if db.merge.followed:
                self.line(f"  settings  {len(db.merge.followed)} default(s) updated")
        if result.settings and result.settings.overridden:
            names = ", ".join(sorted(result.settings.overridden))
            self.line(f"  overridden by the environment for this run: {names}")
        return 0
