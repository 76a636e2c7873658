"""nua-orchestrator backups"""

from __future__ import annotations

from cleo.helpers import option

from orchestrator.console.application import NuaCommand
from orchestrator.services import backup


class BackupsCommand(NuaCommand):
    name = "backups"
    description = "List the backups in the default folder, newest first."
    options = [option("json", None, "Print the list as JSON.")]

    def handle(self) -> int:
        where = self.locations()
        infos = backup.list_backups(where)
        if self.option("json"):
            self.write_json([info.to_json() for info in infos])
            return 0
        folder = backup.backups_dir(where)
        if not infos:
            self.line(f"no backups in {folder} (`nua-orchestrator backup` makes one)")
            return 0
        width = max(len(info.name) for info in infos)
        self.line(f"{'NAME':<{width}}  {'SIZE':>10}  {'TIME (UTC)':<19}  SCHEMA")
        for info in infos:
            when = info.taken_at.strftime("%Y-%m-%d %H:%M:%S")
            schema = f"? ({info.problem})" if info.problem else info.revision or "-"
            self.line(f"{info.name:<{width}}  {info.size:>10}  {when:<19}  {schema}")
        self.line(f"in {folder}")
        return 0
