"""supervisord's XML-RPC interface over its unix socket, with a deadline on every call.

supervisor's own transport has no timeout; a hung supervisord must not hang
`status` or the sentinel, so this one sets one on the socket.
"""

from __future__ import annotations

import http.client
import socket
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# supervisord's process states (supervisor.states.ProcessStates), by name.
RUNNING = "RUNNING"
FATAL = "FATAL"
STARTING = "STARTING"
BACKOFF = "BACKOFF"


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class _UnixTransport(xmlrpc.client.Transport):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__()
        self._path = path
        self._timeout = timeout

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        return _UnixHTTPConnection(self._path, self._timeout)


def connect(socket_path: Path, timeout: float = 5.0) -> Any:
    """An XML-RPC proxy to supervisord (`proxy.supervisor.getState()`, ...)."""
    transport = _UnixTransport(str(socket_path), timeout)
    return xmlrpc.client.ServerProxy("http://localhost/RPC2", transport=transport)


@dataclass(frozen=True)
class ProgramInfo:
    """One program as supervisord reports it."""

    name: str  # group:name, as supervisorctl spells it
    state: str
    pid: int
    uptime: float | None  # seconds, while RUNNING
    description: str
    exit_status: int
    # Never exited under this supervisord: a STARTING program on its first start
    # (within its startsecs), not one that crashed and is being retried.
    first_start: bool = False

    @classmethod
    def from_xmlrpc(cls, info: dict[str, Any]) -> ProgramInfo:
        running = info["statename"] == RUNNING
        return cls(
            name=f"{info['group']}:{info['name']}",
            state=info["statename"],
            pid=int(info["pid"]),
            uptime=float(info["now"] - info["start"]) if running else None,
            description=str(info.get("description", "")),
            exit_status=int(info.get("exitstatus", 0)),
            first_start=int(info.get("stop", 0)) == 0,
        )

    @property
    def is_up(self) -> bool:
        """RUNNING, or alive on its first start and not yet past supervisord's startsecs."""
        return self.state == RUNNING or (self.state == STARTING and self.first_start)


def programs(proxy: Any, group: str | None = None) -> list[ProgramInfo]:
    """Every program supervisord manages, or those of one group ("nua": the orchestrator's)."""
    found = [ProgramInfo.from_xmlrpc(i) for i in proxy.supervisor.getAllProcessInfo()]
    if group is not None:
        found = [p for p in found if p.name.split(":", 1)[0] == group]
    return found


ORCHESTRATOR_GROUP = "nua"


def is_answering(socket_path: Path, timeout: float = 2.0) -> bool:
    """Whether supervisord answers on its socket and says it is RUNNING."""
    try:
        state = connect(socket_path, timeout).supervisor.getState()
    except (OSError, xmlrpc.client.Error, http.client.HTTPException):
        return False
    return state.get("statename") == "RUNNING"
