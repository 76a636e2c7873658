"""`nua`: talk to the orchestrator's rpc worker.

Commands are imported only when they run (or when `list`/`--help` describes
them), so this module and theirs import nothing heavy; a plain `nua ping`
is answered without cleo at all (quick_ping.py).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from orchestrator.console.lazy_commands import lazy

if TYPE_CHECKING:
    from orchestrator.console.application import NuaApplication

CLIENT = "orchestrator.console.commands.client"
COMMANDS = {
    "ping": lazy(f"{CLIENT}.ping", "PingCommand"),
    "methods": lazy(f"{CLIENT}.methods", "MethodsCommand"),
    "call": lazy(f"{CLIENT}.call", "CallCommand"),
    "user add": lazy(f"{CLIENT}.user.add", "UserAddCommand"),
    "user list": lazy(f"{CLIENT}.user.list", "UserListCommand"),
    "user show": lazy(f"{CLIENT}.user.show", "UserShowCommand"),
    "user update": lazy(f"{CLIENT}.user.update", "UserUpdateCommand"),
    "user delete": lazy(f"{CLIENT}.user.delete", "UserDeleteCommand"),
    "user passwd": lazy(f"{CLIENT}.user.passwd", "UserPasswdCommand"),
    "settings list": lazy(f"{CLIENT}.settings.list", "SettingsListCommand"),
    "settings get": lazy(f"{CLIENT}.settings.get", "SettingsGetCommand"),
    "settings set": lazy(f"{CLIENT}.settings.set", "SettingsSetCommand"),
    "settings reset": lazy(f"{CLIENT}.settings.reset", "SettingsResetCommand"),
    "install": lazy(f"{CLIENT}.install", "InstallCommand"),
    "apps": lazy(f"{CLIENT}.apps", "AppsCommand"),
    "app start": lazy(f"{CLIENT}.app.start", "AppStartCommand"),
    "app stop": lazy(f"{CLIENT}.app.stop", "AppStopCommand"),
    "app restart": lazy(f"{CLIENT}.app.restart", "AppRestartCommand"),
    "app logs": lazy(f"{CLIENT}.app.logs", "AppLogsCommand"),
    "app rollback": lazy(f"{CLIENT}.app.rollback", "AppRollbackCommand"),
    "app env": lazy(f"{CLIENT}.app.env", "AppEnvCommand"),
    "app remove": lazy(f"{CLIENT}.app.remove", "AppRemoveCommand"),
}


def application() -> NuaApplication:
    from orchestrator.console.application import NuaApplication

    return NuaApplication("nua", COMMANDS)


def main() -> int:
    from orchestrator.console import quick_ping

    answered = quick_ping.run(sys.argv[1:])
    if answered is not None:
        return answered
    from orchestrator.console.application import run

    return run(application())


if __name__ == "__main__":
    sys.exit(main())
