"""nua user update USERNAME [--email E] [--role R] [--rename NEW]"""

from __future__ import annotations

from typing import Any

from cleo.helpers import argument, option

from orchestrator.console.client_command import UsageError
from orchestrator.console.commands.client.user_command import UserCommand


class UserUpdateCommand(UserCommand):
    name = "user update"
    changes = True
    description = "Change a user's email, role or name."
    arguments = [argument("username", "The user's current name.")]
    options = [
        option("email", None, "A new email address.", flag=False),
        option("role", None, "A new role.", flag=False),
        option("rename", None, "A new username.", flag=False),
    ]

    def handle(self) -> int:
        username = self.argument("username")
        params: dict[str, Any] = {"username": username}
        for opt, param in (("email", "email"), ("role", "role"), ("rename", "new_username")):
            if self.option(opt) is not None:
                params[param] = self.option(opt)
        if len(params) == 1:
            raise UsageError("nothing to change: give --email, --role or --rename")
        user = self.rpc("user.update", params)
        if self.json_wanted():
            self.write_json(user)
            return 0
        renamed = f", renamed from {username}" if user.get("username") != username else ""
        self.out(f"updated user {self.summary(user)}{renamed}")
        return 0
