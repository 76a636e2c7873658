"""nua app stop LABEL"""

from __future__ import annotations

from cleo.helpers import argument

from orchestrator.console.commands.client.app_command import AppCommand


class AppStopCommand(AppCommand):
    name = "app stop"
    changes = True
    description = "Stop an app; it stays stopped across orchestrator restarts."
    arguments = [argument("label", "The app's label (see `nua apps`).")]

    def handle(self) -> int:
        self.write_app_state(self.rpc("app.stop", {"label": self.argument("label")}))
        return 0
