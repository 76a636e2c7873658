"""nua user show USERNAME"""

from __future__ import annotations

from cleo.helpers import argument

from orchestrator.console.commands.client.user_command import UserCommand


class UserShowCommand(UserCommand):
    name = "user show"
    description = "Show one user."
    arguments = [argument("username", "The user's name.")]

    def handle(self) -> int:
        self.write_user(self.rpc("user.get", {"username": self.argument("username")}))
        return 0
