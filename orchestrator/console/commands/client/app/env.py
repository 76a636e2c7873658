"""nua app env LABEL [KEY=VALUE ...] [--unset KEY ...]"""

from __future__ import annotations

from typing import Any

from cleo.helpers import argument, option

from orchestrator.console.client_command import UsageError
from orchestrator.console.commands.client.app_command import (
    AppCommand,
    check_env_name,
    parse_assignments,
)


class AppEnvCommand(AppCommand):
    name = "app env"
    description = "Show or change an app's environment overrides (applied at its next restart)."
    arguments = [
        argument("label", "The app's label (see `nua apps`)."),
        argument("assignments", "KEY=VALUE pairs to set.", optional=True, multiple=True),
    ]
    options = [
        option("unset", None, "A variable to remove (repeatable).", flag=False, multiple=True),
    ]
    help = (
        "Without KEY=VALUE or --unset: the app's overrides of its config's [run] env.\n"
        "Changes apply at the next restart: <comment>nua app restart LABEL</comment>."
    )

    # Set by handle(): only a run that sets or unsets changes state.
    _changing = False

    @property
    def changes(self) -> bool:  # type: ignore[override]
        return self._changing

    def handle(self) -> int:
        label = self.argument("label")
        assigned = parse_assignments(self.argument("assignments") or [], "assignment")
        unset = list(dict.fromkeys(self.option("unset") or []))
        for key in unset:
            check_env_name(key, key, "--unset")
            if key in assigned:
                raise UsageError(f"{key} is both set and unset", field="unset")
        params: dict[str, Any] = {"label": label}
        if assigned:
            params["set"] = assigned
        if unset:
            params["unset"] = unset
        self._changing = len(params) > 1
        answer = self.rpc("app.env", params)
        if self.json_wanted():
            self.write_json(answer)
            return 0
        label = answer.get("label") or label
        env = answer.get("env") or {}
        if env:
            for key in sorted(env):
                self.out(f"{key}={env[key]}")
        else:
            self.out(f"{label} has no environment overrides")
        if self._changing:
            self.out(f"applies at the next restart: nua app restart {label}")
        elif not env:
            self.out(f"(nua app env {label} KEY=VALUE sets one)")
        return 0
