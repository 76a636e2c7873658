"""A JSON-RPC client for the worker: a deadline on every call, Lazy Pirate retries.

A REQ socket is unusable after a timeout, so a timed-out attempt closes it
and the next one opens a fresh socket (close, reopen, retry a bounded number
of times). Calls with named parameters carry an idempotency key, the same
for every retry of the call, so that a retried change is applied once.
Imports nothing the worker alone needs: CLIs and plugins can use it cheaply.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import time
from typing import Any

import zmq

IDEMPOTENCY_PARAM = "idempotency_key"


class ClientError(Exception):
    """Base of the errors a call can raise."""


class NotRunningError(ClientError):
    """No answer from the endpoint before the deadline.

    For a changing call (`idempotency_key` set) the outcome is unknown: the
    worker may have applied the change and restarted before answering.
    Calling again with the same `idempotency_key` applies it at most once.
    """

    def __init__(self, endpoint: str, timeout: float, idempotency_key: str | None = None) -> None:
        message = (
            f"the orchestrator is not running or not answering: no answer from {endpoint} "
            f"within {timeout:g}s (start it with `nua-orchestrator start`)"
        )
        if idempotency_key is not None:
            message += f"; {UNKNOWN_OUTCOME} (idempotency key {idempotency_key})"
        super().__init__(message)
        self.endpoint = endpoint
        self.timeout = timeout
        self.idempotency_key = idempotency_key


UNKNOWN_OUTCOME = (
    "if the orchestrator restarted while serving this call, a change it made may or may "
    "not have been applied: calling again with the same idempotency key applies it at "
    "most once"
)


class RemoteError(ClientError):
    """The worker answered with a JSON-RPC error object."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    @property
    def name(self) -> str | None:
        """The stable name of an application error (not_found, ...), None for spec errors."""
        return self.data.get("name") if isinstance(self.data, dict) else None

    @property
    def field(self) -> str | None:
        """The offending parameter, when the worker named one."""
        return self.data.get("field") if isinstance(self.data, dict) else None


class MethodNotFoundError(RemoteError):
    pass


class InvalidParamsError(RemoteError):
    pass


class NotFoundError(RemoteError):
    pass


class AlreadyExistsError(RemoteError):
    pass


class InvalidArgumentError(RemoteError):
    pass


class ConflictError(RemoteError):
    pass


class PermissionDeniedError(RemoteError):
    pass


class UnavailableError(RemoteError):
    pass


ERRORS_BY_CODE: dict[int, type[RemoteError]] = {
    -32601: MethodNotFoundError,
    -32602: InvalidParamsError,
    -32001: NotFoundError,
    -32002: AlreadyExistsError,
    -32003: InvalidArgumentError,
    -32004: ConflictError,
    -32005: PermissionDeniedError,
    -32006: UnavailableError,
}


class RpcClient:
    """Calls methods of the worker at `endpoint`. One client per thread."""

    _ids = itertools.count(1)

    def __init__(
        self, endpoint: str, timeout: float = 5.0, retries: int = 2, reconnect_ms: int = 100
    ) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.retries = retries
        # How soon ZeroMQ tries again to connect to an endpoint not bound yet
        # (its default, 100 ms; a waiter for a starting worker wants less).
        self.reconnect_ms = reconnect_ms
        self._context = zmq.Context.instance()
        self._sock: zmq.Socket[bytes] | None = None
        self._rcvtimeo = -1

    def call(self, method: str, params: list[Any] | dict[str, Any] | None = None) -> Any:
        """Call `method` and return its result, within `timeout` seconds in all."""
        request_id = f"{os.getpid()}-{next(self._ids)}"
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": request_id}
        key: str | None = None
        if isinstance(params, dict):
            if IDEMPOTENCY_PARAM not in params:
                params = {**params, IDEMPOTENCY_PARAM: secrets.token_hex(16)}
            key = params[IDEMPOTENCY_PARAM]
        if params is not None:
            message["params"] = params
        payload = json.dumps(message).encode("utf-8")
        deadline = time.monotonic() + self.timeout
        attempts = self.retries + 1
        for attempt in range(attempts):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            reply = self._attempt(payload, request_id, remaining / (attempts - attempt))
            if reply is not None:
                return _result(reply)
        raise NotRunningError(self.endpoint, self.timeout, key if isinstance(key, str) else None)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None

    def __enter__(self) -> RpcClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _attempt(self, payload: bytes, request_id: str, timeout: float) -> dict[str, Any] | None:
        if self._sock is None:
            self._sock = self._context.socket(zmq.REQ)
            self._rcvtimeo = -1
            self._sock.setsockopt(zmq.LINGER, 0)
            if self.reconnect_ms != 100:
                self._sock.setsockopt(zmq.RECONNECT_IVL, self.reconnect_ms)
            self._sock.connect(self.endpoint)
        sock = self._sock
        sock.send(payload)
        # A receive timeout on the socket costs less than a poll before recv.
        wait_ms = max(1, int(timeout * 1000))
        if wait_ms != self._rcvtimeo:  # setsockopt costs as much as the JSON work
            sock.setsockopt(zmq.RCVTIMEO, wait_ms)
            self._rcvtimeo = wait_ms
        try:
            reply = json.loads(sock.recv())
        except (zmq.Again, ValueError):
            reply = None
        if isinstance(reply, dict) and reply.get("id") == request_id:
            return reply
        # Lazy Pirate: a REQ socket that missed its reply cannot send again.
        self.close()
        return None


def _result(reply: dict[str, Any]) -> Any:
    if "error" in reply:
        error = reply["error"] if isinstance(reply["error"], dict) else {}
        code = int(error.get("code", 0))
        cls = ERRORS_BY_CODE.get(code, RemoteError)
        raise cls(code, str(error.get("message", "")), error.get("data"))
    return reply.get("result")
