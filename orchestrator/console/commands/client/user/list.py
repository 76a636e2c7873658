"""nua user list [--role R] [--search S] [--order-by F] [--desc] [--limit N] [--offset N]"""

from __future__ import annotations

import shlex
from typing import Any

from cleo.helpers import option

from orchestrator.console.client_command import UsageError
from orchestrator.console.commands.client.user_command import UserCommand


class UserListCommand(UserCommand):
    name = "user list"
    description = "List users, a page at a time."
    options = [
        option("role", None, "Only users with this role.", flag=False),
        option("search", None, "Only users whose name or email contains this text.", flag=False),
        option("order-by", None, "Sort by this field (default: username).", flag=False),
        option("desc", None, "Sort in descending order."),
        option("limit", None, "At most this many users (default: 50).", flag=False),
        option("offset", None, "Skip this many users first.", flag=False),
    ]

    def handle(self) -> int:
        params: dict[str, Any] = {}
        for name in ("role", "search"):
            if self.option(name) is not None:
                params[name] = self.option(name)
        if self.option("order-by") is not None:
            params["order_by"] = self.option("order-by")
        if self.option("desc"):
            params["descending"] = True
        for name in ("limit", "offset"):
            if self.option(name) is not None:
                params[name] = self._count(name)
        page = self.rpc("user.list", params)
        if self.json_wanted():
            self.write_json(page)
            return 0
        users = page.get("users", [])
        if users:
            self.write_table([self.list_row(u) for u in users], headers=self.LIST_HEADERS)
        else:
            self.out("no users")
        if page.get("next_offset") is not None:
            self.out(f"more: {self._next_page(page['next_offset'])}")
        return 0

    def _next_page(self, offset: int) -> str:
        """The command that lists the next page."""
        words = ["nua", "user", "list"]
        for name in ("home", "role", "search", "order-by", "limit"):
            if self.option(name) is not None:
                words += [f"--{name}", self.option(name)]
        if self.option("desc"):
            words.append("--desc")
        words += ["--offset", str(offset)]
        return shlex.join(words)

    def _count(self, name: str) -> int:
        raw = self.option(name)
        try:
            return int(raw)
        except ValueError:
            raise UsageError(f"--{name} {raw!r} is not a whole number", field=name) from None
