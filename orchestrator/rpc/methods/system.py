"""`system.*`: liveness, what this worker is, and what it can do."""

from __future__ import annotations

import os
from typing import Any

from orchestrator import __version__
from orchestrator.rpc.errors import InvalidArgument, NotFound
from orchestrator.rpc.registry import Namespace, public


class SystemMethods(Namespace):
    namespace = "system"

    @public(inline=True)
    def ping(self) -> str:
        """Answer "pong": the worker is alive and its loop is turning."""
        return "pong"

    @public(inline=True)
    def version(self) -> dict[str, Any]:
        """The worker's version, schema revision, database, endpoint and pid."""
        ctx = self.context
        return {
            "version": __version__,
            "schema_revision": ctx.schema_revision,
            "database": ctx.database,
            "endpoint": ctx.endpoint,
            "pid": os.getpid(),
        }

    @public(inline=True)
    def list_methods(self) -> list[str]:
        """The names of every callable method, plugins' included, sorted."""
        return sorted(self.context.registry.methods)

    @public(inline=True)
    def describe(self, method: str | None = None) -> dict[str, Any] | list[dict[str, Any]]:
        """Name, parameters (with types, defaults, required), doc and whether it changes state.

        Without `method`, every method is described.
        """
        methods = self.context.registry.methods
        if method is None:
            return [methods[name].describe() for name in sorted(methods)]
        if not isinstance(method, str):
            raise InvalidArgument("method must be a string", field="method")
        found = methods.get(method)
        if found is None:
            raise NotFound(f"no method {method!r}", field="method")
        return found.describe()
