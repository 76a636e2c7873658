"""nua call METHOD [JSON]"""

from __future__ import annotations

import json
from typing import Any

from cleo.helpers import argument

from orchestrator.console.client_command import ClientCommand, UsageError


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_params(text: str | None) -> list[Any] | dict[str, Any] | None:
    """The params of a call: a JSON array or object (None when not given)."""
    if text is None:
        return None
    try:
        params = json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:
        raise UsageError(f"params are not valid JSON: {exc}", field="params") from None
    if not isinstance(params, list | dict):
        raise UsageError(
            "params must be a JSON array or object, "
            'like \'["alice"]\' or \'{"username": "alice"}\'',
            field="params",
        )
    return params


class CallCommand(ClientCommand):
    name = "call"
    description = "Call any method (plugins' included) and print its result as JSON."
    arguments = [
        argument("method", "The method, like system.version (see `nua methods`)."),
        argument("params", "Its params: a JSON array or object.", optional=True),
    ]
    help = (
        "Raw access to the orchestrator's JSON-RPC API. Examples:\n"
        "  <comment>nua call system.version</comment>\n"
        "  <comment>nua call user.get '[\"alice\"]'</comment>\n"
        "  <comment>nua call settings.set "
        '\'{"key": "sentinel.interval", "value": 2.5}\'</comment>\n'
        "The result is printed as JSON, with or without --json."
    )

    def handle(self) -> int:
        params = parse_params(self.argument("params"))
        self.write_json(self.rpc(self.argument("method"), params))
        return 0
