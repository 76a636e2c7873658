"""nua ping"""

from __future__ import annotations

import time

from orchestrator.console.client_command import ClientCommand


class PingCommand(ClientCommand):
    name = "ping"
    description = "Check that the orchestrator's rpc worker answers."

    def handle(self) -> int:
        with self.client() as client:
            began = time.perf_counter()
            answer = client.call("system.ping")
            ms = (time.perf_counter() - began) * 1000
        if self.json_wanted():
            self.write_json({"result": answer, "ms": round(ms, 3), "endpoint": client.endpoint})
        else:
            self.out(f"{answer} from {client.endpoint} in {ms:.1f} ms")
        return 0
