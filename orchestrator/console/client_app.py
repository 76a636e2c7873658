"""`nua`: talk to the orchestrator's rpc worker."""

from __future__ import annotations

import sys

from orchestrator.console.application import NuaApplication, lazy, run

CLIENT = "orchestrator.console.commands.client"
COMMANDS = {
    "ping": lazy(f"{CLIENT}.ping", "PingCommand"),
}


def application() -> NuaApplication:
    return NuaApplication("nua", COMMANDS)


def main() -> int:
    return run(application())


if __name__ == "__main__":
    sys.exit(main())
