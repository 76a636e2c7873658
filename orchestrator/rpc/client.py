"""A JSON-RPC client for the worker: a deadline on every call, Lazy Pirate retries.

A REQ socket is unusable after a timeout, so each attempt uses a fresh one
(close, reopen, retry a bounded number of times). Imports nothing the worker
alone needs: CLIs and plugins can use it cheaply.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from typing import Any

import zmq


class ClientError(Exception):
    """Base of the errors a call can raise."""


class NotRunningError(ClientError):
    """No answer from the endpoint before the deadline."""

    def __init__(self, endpoint: str, timeout: float) -> None:
        super().__init__(
            f"the orchestrator is not running: no answer from {endpoint} within {timeout:g}s"
        )
        self.endpoint = endpoint
        self.timeout = timeout


class RemoteError(ClientError):
    """The worker answered with a JSON-RPC error object."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{message} ({code})")
        self.code = code
        self.message = message
        self.data = data

    @property
    def name(self) -> str | None:
        return self.data.get("name") if isinstance(self.data, dict) else None


class RpcClient:
    """Calls methods of the worker at `endpoint`."""

    _ids = itertools.count(1)

    def __init__(self, endpoint: str, timeout: float = 5.0, retries: int = 2) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.retries = retries
        self._context = zmq.Context.instance()

    def call(self, method: str, params: list[Any] | dict[str, Any] | None = None) -> Any:
        """Call `method` and return its result, within `timeout` seconds in all."""
        request_id = f"{os.getpid()}-{next(self._ids)}"
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": request_id}
        if params is not None:
            message["params"] = params
        payload = json.dumps(message).encode("utf-8")
        deadline = time.monotonic() + self.timeout
        attempts = self.retries + 1
        for attempt in range(attempts):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            share = remaining / (attempts - attempt)
            reply = self._attempt(payload, request_id, share)
            if reply is not None:
                return _result(reply)
        raise NotRunningError(self.endpoint, self.timeout)

    def _attempt(self, payload: bytes, request_id: str, timeout: float) -> dict[str, Any] | None:
        sock = self._context.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        try:
            sock.connect(self.endpoint)
            sock.send(payload)
            end = time.monotonic() + timeout
            while (left := end - time.monotonic()) > 0:
                if not sock.poll(max(1, int(left * 1000)), zmq.POLLIN):
                    return None
                try:
                    reply = json.loads(sock.recv())
                except ValueError:
                    return None
                if isinstance(reply, dict) and reply.get("id") == request_id:
                    return reply
                return None
            return None
        finally:
            sock.close()


def _result(reply: dict[str, Any]) -> Any:
    if "error" in reply:
        error = reply["error"] if isinstance(reply["error"], dict) else {}
        raise RemoteError(
            int(error.get("code", 0)), str(error.get("message", "")), error.get("data")
        )
    return reply.get("result")
