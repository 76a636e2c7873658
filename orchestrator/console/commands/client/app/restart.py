"""nua app restart LABEL"""

from __future__ import annotations

from cleo.helpers import argument

from orchestrator.console.commands.client.app_command import AppCommand


class AppRestartCommand(AppCommand):
    name = "app restart"
    changes = True
    description = "Stop, then start an app (environment changes apply)."
    arguments = [argument("label", "The app's label (see `nua apps`).")]

    def handle(self) -> int:
        self.write_app_state(self.rpc("app.restart", {"label": self.argument("label")}))
        return 0
