"""The methods the JSON-RPC 2.0 specification's examples call, under their bare names."""

from __future__ import annotations

from typing import Any

from orchestrator.rpc.registry import Namespace, public


class SpecExamples(Namespace):
    namespace = ""

    @public
    def subtract(self, minuend: int, subtrahend: int) -> int:
        """minuend - subtrahend."""
        return minuend - subtrahend

    @public
    def sum(self, *numbers: int) -> int:
        """The sum of the numbers."""
        return sum(numbers)

    @public
    def update(self, *values: Any) -> None:
        """Accepts anything (the specification sends it as a notification)."""

    @public
    def notify_hello(self, *values: Any) -> None:
        """Accepts anything (the specification sends it as a notification)."""

    @public
    def get_data(self) -> list[Any]:
        """["hello", 5]."""
        return ["hello", 5]
