"""Send raw bytes to the worker and read raw answers: for conformance tests."""

from __future__ import annotations

import json
from typing import Any

import zmq

# A probe that the worker runs on its thread pool (echo.back comes from the
# test plugins): with one thread (NUA_RPC_THREADS=1) it is answered after
# every call of the message sent before it.
PROBE = b'{"jsonrpc":"2.0","method":"echo.back","params":["probe"],"id":"__probe__"}'
PROBE_REPLY = {"jsonrpc": "2.0", "result": "probe", "id": "__probe__"}


class RawClient:
    """A DEALER socket: any bytes out, every answer back, in order."""

    def __init__(self, endpoint: str) -> None:
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)

    def close(self) -> None:
        self.sock.close()

    def send(self, payload: bytes | str) -> None:
        self.sock.send(payload.encode() if isinstance(payload, str) else payload)

    def recv(self, timeout: float = 5.0) -> bytes:
        if not self.sock.poll(int(timeout * 1000), zmq.POLLIN):
            raise AssertionError(f"no answer within {timeout:g}s")
        return self.sock.recv()

    def exchange(self, payload: bytes | str, timeout: float = 5.0) -> Any:
        """Send a message and return its parsed answer, or None if none came.

        A probe follows every message: the first answer is the message's own
        unless it is the probe's, so silence is shown without waiting.
        """
        self.send(payload)
        self.send(PROBE)
        first = json.loads(self.recv(timeout))
        if first == PROBE_REPLY:
            return None
        probe = json.loads(self.recv(timeout))
        assert probe == PROBE_REPLY, probe
        return first
