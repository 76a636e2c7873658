"""nua app remove LABEL [--purge]"""

from __future__ import annotations

from cleo.helpers import argument, option

from orchestrator.console.commands.client.app_command import AppCommand


class AppRemoveCommand(AppCommand):
    name = "app remove"
    changes = True
    description = "Stop and remove an app; its data folder is kept unless --purge."
    arguments = [argument("label", "The app's label (see `nua apps`).")]
    options = [option("purge", None, "Delete the app's data folder too.")]

    def handle(self) -> int:
        label = self.argument("label")
        purge = bool(self.option("purge"))
        answer = self.rpc("app.remove", {"label": label, "purge": purge})
        if self.json_wanted():
            self.write_json(answer)
            return 0
        label = answer.get("label") or label
        if answer.get("data_kept"):
            self.out(f"removed {label}; its data is kept in {answer['data_kept']}")
        elif purge:
            self.out(f"removed {label} and purged its data")
        else:
            self.out(f"removed {label} (it had no data folder)")
        return 0
