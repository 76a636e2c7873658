"""nua user delete USERNAME"""

from __future__ import annotations

from cleo.helpers import argument

from orchestrator.console.commands.client.user_command import UserCommand


class UserDeleteCommand(UserCommand):
    name = "user delete"
    changes = True
    description = "Delete a user."
    arguments = [argument("username", "The user's name.")]

    def handle(self) -> int:
        answer = self.rpc("user.delete", {"username": self.argument("username")})
        if self.json_wanted():
            self.write_json(answer)
        else:
            self.out(f"deleted user {answer.get('deleted')}")
        return 0
