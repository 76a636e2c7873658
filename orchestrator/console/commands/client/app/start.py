"""nua app start LABEL"""

from __future__ import annotations

from cleo.helpers import argument

from orchestrator.console.commands.client.app_command import AppCommand


class AppStartCommand(AppCommand):
    name = "app start"
    changes = True
    description = "Start an app; it stays running across orchestrator restarts."
    arguments = [argument("label", "The app's label (see `nua apps`).")]

    def handle(self) -> int:
        self.write_app_state(self.rpc("app.start", {"label": self.argument("label")}))
        return 0
