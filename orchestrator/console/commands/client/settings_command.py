"""The base of `nua settings ...` commands: how a setting is shown."""

from __future__ import annotations

import json
from typing import Any

from orchestrator.console.client_command import ClientCommand


def value_text(value: Any) -> str:
    """A setting's value as JSON, so that "" and "5" read differently from 5."""
    return json.dumps(value, ensure_ascii=False)


class SettingsCommand(ClientCommand):
    """A command on the host's settings (the `settings.*` RPC namespace)."""

    def write_setting(self, setting: dict[str, Any]) -> None:
        """`key = value  (type, default D[, changed])`, or the setting as JSON with --json."""
        if self.json_wanted():
            self.write_json(setting)
            return
        notes = [str(setting.get("type")), f"default {value_text(setting.get('default'))}"]
        if setting.get("changed"):
            notes.append("changed")
        self.out(f"{setting.get('key')} = {value_text(setting.get('value'))}  ({', '.join(notes)})")
