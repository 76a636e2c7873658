"""nua-orchestrator backup"""

from __future__ import annotations

from pathlib import Path

from cleo.helpers import option

from orchestrator.console.application import NuaCommand
from orchestrator.services import backup


class BackupCommand(NuaCommand):
    name = "backup"
    description = "Back up the database while the orchestrator keeps serving."
    help = (
        "Copies the database with SQLite's backup API (never a file copy) into "
        "<comment><data>/backups/nua-YYYYmmddTHHMMSSZ.db</comment>, or to "
        "<comment>--to PATH</comment> (a new file in an existing folder). The file is "
        "0600, written under a temporary name and renamed only once "
        "<comment>PRAGMA integrity_check</comment> says ok. After a backup to the default "
        "folder, backups beyond the setting <comment>backup.keep</comment> are deleted, "
        "oldest first."
    )
    options = [
        option("to", None, "Write the backup to this new file.", flag=False),
        option("json", None, "Print the result as JSON."),
    ]

    def handle(self) -> int:
        to = self.option("to")
        result = backup.backup(self.locations(), to=Path(to) if to else None)
        if self.option("json"):
            self.write_json(result.to_json())
            return 0
        self.line(
            f"backed up to {result.path} ({result.size} bytes, schema {result.revision}) "
            f"in {result.seconds:.2f}s"
        )
        for path in result.pruned:
            self.line(f"  deleted old backup {path.name} (backup.keep)")
        return 0
