"""nua settings reset KEY"""

from __future__ import annotations

from cleo.helpers import argument

from orchestrator.console.commands.client.settings_command import SettingsCommand


class SettingsResetCommand(SettingsCommand):
    name = "settings reset"
    changes = True
    description = "Put a setting back to its default."
    arguments = [argument("key", "The setting, like sentinel.interval.")]

    def handle(self) -> int:
        self.write_setting(self.rpc("settings.reset", {"key": self.argument("key")}))
        return 0
