"""nua user passwd USERNAME [--password-stdin]"""

from __future__ import annotations

from cleo.helpers import argument, option

from orchestrator.console.commands.client.user_command import UserCommand


class UserPasswdCommand(UserCommand):
    name = "user passwd"
    changes = True
    description = "Set a user's password."
    arguments = [argument("username", "The user's name.")]
    options = [option("password-stdin", None, "Read the password from the first line of stdin.")]
    help = (
        "Asks for the password twice, without echo, or reads one line of stdin with\n"
        "--password-stdin (for scripts). A password is never taken from the command line."
    )

    def handle(self) -> int:
        username = self.argument("username")
        password = self.read_password(from_stdin=self.option("password-stdin"))
        answer = self.rpc("user.set_password", {"username": username, "password": password})
        if self.json_wanted():
            self.write_json(answer)
        else:
            self.out(f"password set for {answer.get('username', username)}")
        return 0
