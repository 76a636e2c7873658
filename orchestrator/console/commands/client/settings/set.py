"""nua settings set KEY VALUE"""

from __future__ import annotations

from typing import Any

from cleo.helpers import argument

from orchestrator.console.commands.client.settings_command import SettingsCommand
from orchestrator.json_strict import loads_strict


def parse_value(text: str) -> Any:
    """VALUE as JSON when it parses (5, 2.5, true, "5"), else as a plain string."""
    try:
        return loads_strict(text)
    except ValueError:
        return text


class SettingsSetCommand(SettingsCommand):
    name = "settings set"
    changes = True
    description = "Change a setting; the value keeps the type of its default."
    arguments = [
        argument("key", "The setting, like sentinel.interval."),
        argument("value", 'The new value: JSON (5, 2.5, true, "5") or else a plain string.'),
    ]
    help = (
        "VALUE is read as JSON when it is JSON, else as a string: <comment>debug</comment> and\n"
        "<comment>'\"debug\"'</comment> are the same string, <comment>5</comment> is a number and "
        "<comment>'\"5\"'</comment> a string.\n"
        "A negative number goes after --: <comment>nua settings set KEY -- -1</comment>.\n"
        "The orchestrator reads settings when it starts: `nua-orchestrator restart` applies it."
    )

    def handle(self) -> int:
        params = {"key": self.argument("key"), "value": parse_value(self.argument("value"))}
        self.write_setting(self.rpc("settings.set", params))
        return 0
