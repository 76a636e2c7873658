"""nua methods [METHOD]"""

from __future__ import annotations

import json
from typing import Any

from cleo.helpers import argument

from orchestrator.console.client_command import ClientCommand


def first_line(doc: str) -> str:
    """The summary line of a docstring."""
    return doc.strip().splitlines()[0] if doc.strip() else ""


class MethodsCommand(ClientCommand):
    name = "methods"
    description = "List the methods the orchestrator serves, or describe one."
    arguments = [argument("method", "A method to describe, like user.add.", optional=True)]
    help = (
        "Without a name: every method (plugins' included) and the first line of its doc.\n"
        "With a name: its parameters, whether it changes state, and its whole doc.\n"
        "Any method can be called with <comment>nua call METHOD [JSON]</comment>."
    )

    def handle(self) -> int:
        name = self.argument("method")
        if name is None:
            described = self.rpc("system.describe")
            if self.json_wanted():
                self.write_json(described)
            else:
                rows = [[m["name"], first_line(m.get("doc") or "")] for m in described]
                self.write_table(rows, headers=["METHOD", "DESCRIPTION"])
            return 0
        described = self.rpc("system.describe", {"method": name})
        if self.json_wanted():
            self.write_json(described)
        else:
            self._print_one(described)
        return 0

    def _print_one(self, method: dict[str, Any]) -> None:
        changes = "changes state" if method.get("changes") else "reads only"
        self.out(f"{method['name']}  ({changes})")
        params = method.get("params") or []
        if params:
            self.out("parameters:")
            rows = []
            for p in params:
                how = "required" if p.get("required") else f"default {json.dumps(p.get('default'))}"
                rows.append([p["name"], p.get("type", "any"), how])
            self.write_table(rows, indent="  ")
        if method.get("returns"):
            self.out(f"returns: {method['returns']}")
        if method.get("doc"):
            self.out()
            self.out(method["doc"].rstrip())
