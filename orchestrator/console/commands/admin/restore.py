"""nua-orchestrator restore"""

from __future__ import annotations

from pathlib import Path

from cleo.helpers import argument, option

from orchestrator.console.application import NuaCommand
from orchestrator.services import restore


class RestoreCommand(NuaCommand):
    name = "restore"
    description = "Put a backup in place of the database; the old one is kept aside."
    help = (
        "Verifies the file first (a sound SQLite file, a Nua database, a schema this code "
        "knows); a bad file changes nothing. Then stops the orchestrator if it runs, moves "
        "the database to <comment><data>/replaced/</comment>, puts the backup in its place "
        "with one rename, upgrades an older schema as start does, and starts again if it "
        "was running."
    )
    arguments = [argument("path", "The backup file to restore.")]
    options = [option("json", None, "Print the result as JSON.")]

    def handle(self) -> int:
        result = restore.restore(
            self.locations(), Path(self.argument("path")), report=self.line_error
        )
        if self.option("json"):
            self.write_json(result.to_json())
            return 0
        self.line(f"restored {result.source} to {result.database}")
        if result.replaced:
            self.line(
                f"  the database it replaced (schema {result.revision_before or 'unreadable'}) "
                f"is kept at {result.replaced}"
            )
        if result.upgraded:
            self.line(f"  schema upgraded from {result.revision_backup} to {result.revision_after}")
        else:
            self.line(f"  schema {result.revision_after} (no upgrade needed)")
        if result.started_pid is not None:
            self.line(f"  started again (pid {result.started_pid})")
        else:
            self.line("  not started (it was not running)")
        return 0
