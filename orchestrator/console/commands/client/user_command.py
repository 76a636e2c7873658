"""The base of `nua user ...` commands: how a user is shown."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from orchestrator.console.client_command import ClientCommand


def when(stamp: Any) -> str:
    """An ISO timestamp as `YYYY-MM-DD HH:MM:SS` in UTC (as given when it is not one)."""
    if not isinstance(stamp, str):
        return "-" if stamp is None else str(stamp)
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def yes_no(flag: Any) -> str:
    return "yes" if flag else "no"


class UserCommand(ClientCommand):
    """A command on the host's users (the `user.*` RPC namespace)."""

    LIST_HEADERS = ("USERNAME", "EMAIL", "ROLE", "PASSWORD", "CREATED (UTC)")

    def list_row(self, user: dict[str, Any]) -> list[str]:
        return [
            str(user.get("username")),
            str(user.get("email")),
            str(user.get("role")),
            yes_no(user.get("has_password")),
            when(user.get("created_at")),
        ]

    def summary(self, user: dict[str, Any]) -> str:
        """`alice (alice@example.com, role user)`: one user in a sentence."""
        return f"{user.get('username')} ({user.get('email')}, role {user.get('role')})"

    def write_user(self, user: dict[str, Any]) -> None:
        """Every field of a user, one per line (or the user as JSON with --json)."""
        if self.json_wanted():
            self.write_json(user)
            return
        self.write_fields(
            [
                ("username", str(user.get("username"))),
                ("email", str(user.get("email"))),
                ("role", str(user.get("role"))),
                ("password", "set" if user.get("has_password") else "not set"),
                ("id", str(user.get("id"))),
                ("created", f"{when(user.get('created_at'))} UTC"),
                ("updated", f"{when(user.get('updated_at'))} UTC"),
            ]
        )
