"""`system.*`: liveness and what this worker is."""

from __future__ import annotations

import os
from typing import Any

from orchestrator import __version__
from orchestrator.rpc.registry import Namespace, public


class SystemMethods(Namespace):
    namespace = "system"

    @public
    def ping(self) -> str:
        """Answer "pong": the worker is alive and its loop is turning."""
        return "pong"

    @public
    def version(self) -> dict[str, Any]:
        """The worker's version, schema revision, database and endpoint."""
        ctx = self.context
        return {
            "version": __version__,
            "schema_revision": ctx.schema_revision,
            "database": ctx.database,
            "endpoint": ctx.endpoint,
            "pid": os.getpid(),
        }
