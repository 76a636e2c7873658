"""nua apps"""

from __future__ import annotations

from orchestrator.console.commands.client.app_command import AppCommand, ports_text, uptime_text


class AppsCommand(AppCommand):
    name = "apps"
    description = "List the installed apps: version, state, ports, health, uptime."

    HEADERS = ("LABEL", "APP", "VERSION", "STATE", "PORTS", "HEALTH", "UPTIME")

    def handle(self) -> int:
        apps = self.rpc("app.list")
        if self.json_wanted():
            self.write_json(apps)
            return 0
        if not apps:
            self.out("no apps installed (nua install PATH installs one)")
            return 0
        rows = [
            [
                str(app.get("label")),
                str(app.get("app_id")),
                str(app.get("version")),
                str(app.get("state")),
                ports_text(app.get("ports")),
                str(app.get("health") or "-"),
                uptime_text(app.get("uptime")),
            ]
            for app in apps
        ]
        self.write_table(rows, headers=self.HEADERS)
        return 0
