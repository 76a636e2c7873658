"""nua user add USERNAME --email EMAIL [--role ROLE] [--password-stdin | --ask-password]"""

from __future__ import annotations

from typing import Any

from cleo.helpers import argument, option

from orchestrator.console.client_command import UsageError
from orchestrator.console.commands.client.user_command import UserCommand


class UserAddCommand(UserCommand):
    name = "user add"
    changes = True
    description = "Add a user."
    arguments = [argument("username", "The new user's name.")]
    options = [
        option("email", None, "The user's email address (required).", flag=False),
        option("role", None, "The user's role (the orchestrator's default: user).", flag=False),
        option("password-stdin", None, "Read a password from the first line of stdin."),
        option("ask-password", None, "Ask for a password, twice, without echo."),
    ]
    help = (
        "Without --password-stdin or --ask-password the user has no password;\n"
        "<comment>nua user passwd USERNAME</comment> sets one later. "
        "A password is never taken from the command line."
    )

    def handle(self) -> int:
        email = self.option("email")
        if not email:
            raise UsageError("--email is required", field="email")
        from_stdin, ask = self.option("password-stdin"), self.option("ask-password")
        if from_stdin and ask:
            raise UsageError("give --password-stdin or --ask-password, not both")
        params: dict[str, Any] = {"username": self.argument("username"), "email": email}
        if self.option("role") is not None:
            params["role"] = self.option("role")
        if from_stdin or ask:
            params["password"] = self.read_password(from_stdin=from_stdin)
        user = self.rpc("user.add", params)
        if self.json_wanted():
            self.write_json(user)
        else:
            self.out(f"added user {self.summary(user)}")
        return 0
