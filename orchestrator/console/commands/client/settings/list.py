"""nua settings list"""

from __future__ import annotations

from orchestrator.console.commands.client.settings_command import SettingsCommand, value_text


class SettingsListCommand(SettingsCommand):
    name = "settings list"
    description = "List the settings: value, default, type, and whether it was changed."
    help = (
        "The values stored in the database, which the orchestrator reads when it starts.\n"
        "An environment variable (NUA_SENTINEL_INTERVAL for sentinel.interval) overrides\n"
        "a setting for one run of a program and is not shown here."
    )

    def handle(self) -> int:
        settings = self.rpc("settings.list")
        if self.json_wanted():
            self.write_json(settings)
            return 0
        rows = [
            [
                s["key"],
                str(s.get("type")),
                value_text(s.get("value")),
                value_text(s.get("default")),
                "yes" if s.get("changed") else "",
            ]
            for s in settings
        ]
        self.write_table(rows, headers=["KEY", "TYPE", "VALUE", "DEFAULT", "CHANGED"])
        return 0
