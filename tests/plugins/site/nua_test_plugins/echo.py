"""A plugin namespace: echo.*"""

from __future__ import annotations

from typing import Any

from orchestrator.rpc.registry import Namespace, public


class EchoMethods(Namespace):
    namespace = "echo"

    @public
    def back(self, value: Any = None) -> Any:
        """Return `value` unchanged."""
        return value

    @public
    def unserialisable(self) -> Any:
        """Return something JSON cannot encode (a set)."""
        return {1, 2}

    def not_public(self) -> str:
        return "never callable"


def not_a_namespace() -> str:
    return "an entry point that is not a Namespace class"
