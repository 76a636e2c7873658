"""`nua-orchestrator`: run and inspect the orchestrator of this host."""

from __future__ import annotations

import sys

from orchestrator.console.application import NuaApplication, run
from orchestrator.console.lazy_commands import lazy

ADMIN = "orchestrator.console.commands.admin"
COMMANDS = {
    "start": lazy(f"{ADMIN}.start", "StartCommand"),
    "stop": lazy(f"{ADMIN}.stop", "StopCommand"),
    "restart": lazy(f"{ADMIN}.restart", "RestartCommand"),
    "status": lazy(f"{ADMIN}.status", "StatusCommand"),
    "backup": lazy(f"{ADMIN}.backup", "BackupCommand"),
    "backups": lazy(f"{ADMIN}.backups", "BackupsCommand"),
    "restore": lazy(f"{ADMIN}.restore", "RestoreCommand"),
    "db check": lazy(f"{ADMIN}.db.check", "DbCheckCommand"),
}


def application() -> NuaApplication:
    return NuaApplication("nua-orchestrator", COMMANDS)


def main() -> int:
    return run(application())


if __name__ == "__main__":
    sys.exit(main())
