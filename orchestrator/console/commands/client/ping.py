"""nua ping"""

from __future__ import annotations

import time

from cleo.helpers import option

from orchestrator.console.application import NuaCommand
from orchestrator.errors import NotRunningError
from orchestrator.rpc.client import NotRunningError as ClientNotRunning
from orchestrator.rpc.client import RpcClient


class PingCommand(NuaCommand):
    name = "ping"
    description = "Check that the orchestrator's rpc worker answers."
    options = [
        option("timeout", "t", "Seconds to wait for an answer.", flag=False, default="5"),
        option("json", None, "Print the result as JSON."),
    ]

    def handle(self) -> int:
        endpoint = self.locations().rpc_endpoint
        try:
            timeout = float(self.option("timeout"))
        except ValueError:
            self.line_error(f"--timeout {self.option('timeout')!r} is not a number of seconds")
            return 2
        began = time.perf_counter()
        try:
            answer = RpcClient(endpoint, timeout=timeout).call("system.ping")
        except ClientNotRunning as exc:
            raise NotRunningError(str(exc)) from None
        ms = (time.perf_counter() - began) * 1000
        if self.option("json"):
            self.write_json({"result": answer, "ms": round(ms, 3), "endpoint": endpoint})
        else:
            self.line(f"{answer} from {endpoint} in {ms:.1f} ms")
        return 0
