"""nua call METHOD [JSON]"""

from __future__ import annotations

import sys
from typing import Any

from cleo.helpers import argument

from orchestrator.console.client_command import ClientCommand, UsageError
from orchestrator.json_strict import loads_strict

# The params argument that means "read them from standard input".
FROM_STDIN = "-"


def parse_params(text: str | None) -> list[Any] | dict[str, Any] | None:
    """The params of a call: a JSON array or object (None when not given)."""
    if text is None:
        return None
    try:
        params = loads_strict(text)
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
        argument(
            "params",
            "Its params: a JSON array or object, or - to read them from standard input.",
            optional=True,
        ),
    ]
    help = (
        "Raw access to the orchestrator's JSON-RPC API. Examples:\n"
        "  <comment>nua call system.version</comment>\n"
        "  <comment>nua call user.get '[\"alice\"]'</comment>\n"
        "  <comment>nua call settings.set "
        '\'{"key": "sentinel.interval", "value": 2.5}\'</comment>\n'
        "The result is printed as JSON, with or without --json.\n"
        "Params holding a secret go through standard input, never the command line:\n"
        "  <comment>nua call user.check_password - < params.json</comment>"
    )

    def handle(self) -> int:
        text = self.argument("params")
        if text == FROM_STDIN:
            text = sys.stdin.read()
        params = parse_params(text)
        self.write_json(self.rpc(self.argument("method"), params))
        return 0
