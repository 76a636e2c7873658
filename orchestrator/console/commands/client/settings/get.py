"""nua settings get KEY"""

from __future__ import annotations

from cleo.helpers import argument

from orchestrator.console.commands.client.settings_command import SettingsCommand


class SettingsGetCommand(SettingsCommand):
    name = "settings get"
    description = "Show one setting."
    arguments = [argument("key", "The setting, like sentinel.interval.")]

    def handle(self) -> int:
        self.write_setting(self.rpc("settings.get", {"key": self.argument("key")}))
        return 0
