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
import struct
import time
from typing import Any

import zmq

from orchestrator.json_strict import scan_first
from orchestrator.rpc import frames

IDEMPOTENCY_PARAM = "idempotency_key"
# Built once (json.dumps with options builds an encoder per call); NaN is not JSON.
_ENCODE = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
_DECODE = scan_first(json.JSONDecoder())


def new_idempotency_key() -> str:
    """32 hex digits: the time in milliseconds (48 bits), then 80 random bits.

    Time first, as in UUIDv7: the worker's index of stored answers then grows
    at its end, so the answers of one group commit share a page instead of
    each dirtying a random one (a write, then a flush, per call). 80 random
    bits keep keys made in the same millisecond apart. os.urandom is what
    secrets.token_hex uses; importing secrets costs 4 ms.
    """
    return f"{time.time_ns() // 1_000_000 & 0xFFFF_FFFF_FFFF:012x}{os.urandom(10).hex()}"


class ClientError(Exception):
    """Base of the errors a call can raise."""


class NotRunningError(ClientError):
    """No answer from the endpoint before the deadline, or the worker went away with the call.

    For a changing call (`idempotency_key` set) the outcome is unknown: the
    worker may have applied the change and restarted before answering.
    Calling again with the same `idempotency_key` applies it at most once.
    """

    def __init__(
        self,
        endpoint: str,
        timeout: float,
        idempotency_key: str | None = None,
        lost: bool = False,
    ) -> None:
        if lost:
            message = (
                f"the orchestrator at {endpoint} went away while serving this call "
                f"(it may have restarted) and gave no answer within {timeout:g}s"
            )
        else:
            message = (
                f"the orchestrator is not running or not answering: no answer from "
                f"{endpoint} within {timeout:g}s (start it with `nua-orchestrator start`)"
            )
        if idempotency_key is not None:
            message += f"; {UNKNOWN_OUTCOME} (idempotency key {idempotency_key})"
        elif lost:
            message += (
                "; if the call changes state, it may or may not have been applied "
                "(pass named params: the call then carries an idempotency key and is "
                "retried safely)"
            )
        super().__init__(message)
        self.endpoint = endpoint
        self.timeout = timeout
        self.idempotency_key = idempotency_key
        self.lost = lost


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


class ParseError(RemoteError):
    """The worker could not read the message as JSON."""


class InvalidRequestError(RemoteError):
    """The message is not a valid request (too large, a bad batch...)."""


class InternalError(RemoteError):
    """The worker failed unexpectedly; `data["error_id"]` finds the details in its log."""


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
    -32700: ParseError,
    -32600: InvalidRequestError,
    -32603: InternalError,
    -32601: MethodNotFoundError,
    -32602: InvalidParamsError,
    -32001: NotFoundError,
    -32002: AlreadyExistsError,
    -32003: InvalidArgumentError,
    -32004: ConflictError,
    -32005: PermissionDeniedError,
    -32006: UnavailableError,
}


class NoAnswerError(NotRunningError):
    """The worker took the call but gave no answer before the deadline: busy or hung.

    The call may still complete; for a changing call, calling again with the
    same `idempotency_key` applies it at most once.
    """

    def __init__(self, endpoint: str, timeout: float, idempotency_key: str | None = None) -> None:
        super().__init__(endpoint, timeout, idempotency_key)
        message = (
            f"the orchestrator at {endpoint} took the call but gave no answer within "
            f"{timeout:g}s: it is busy or hung (see `nua-orchestrator status`; "
            "a longer timeout may help)"
        )
        if idempotency_key is not None:
            message += (
                f"; the call may still complete: calling again with idempotency key "
                f"{idempotency_key} applies it at most once"
            )
        self.args = (message,)


class EncodingError(ClientError, ValueError):
    """The params cannot be sent: they are not JSON (NaN, Infinity, a set...)."""


# Why an attempt ended without an answer.
_LOST = "lost"  # the worker went away with the call: another attempt may succeed
_LATE = "late"  # the worker is there but did not answer in time
_ABSENT = "absent"  # nothing answered at the endpoint


class RpcClient:
    """Calls methods of the worker at `endpoint`. One client per thread.

    An attempt waits for its answer until the call's deadline while the
    worker holds the connection (a slow call is not a dead worker); when the
    connection drops (the worker died or restarted), the call is sent again
    on a fresh socket, at most `retries` times. Calls with named parameters
    carry an idempotency key, the same for every attempt, so a change is
    applied once; calls with positional parameters are not sent again after
    the worker went away with them, since their outcome is unknown.
    """

    _ids = itertools.count(1)
    _monitors = itertools.count(1)
    # How often a waiting call looks for news of the connection (a dropped worker).
    WATCH_MS = 50
    # A call sent within this long of the last answer does not first read the news.
    FRESH_S = 0.005

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
        self._monitor: zmq.Socket[bytes] | None = None
        self._connected = False
        self._rcvtimeo = -1
        self._answered_at = float("-inf")
        self._pid = os.getpid()

    def call(self, method: str, params: list[Any] | dict[str, Any] | None = None) -> Any:
        """Call `method` and return its result, within `timeout` seconds in all."""
        request_id = f"{self._pid}-{next(self._ids)}"
        key: str | None = None
        if isinstance(params, dict):
            if IDEMPOTENCY_PARAM not in params:
                params = {**params, IDEMPOTENCY_PARAM: new_idempotency_key()}
            key = params[IDEMPOTENCY_PARAM]
            key = key if isinstance(key, str) else None
        payload = _request(method, params, request_id)
        deadline = time.monotonic() + self.timeout
        resend = not isinstance(params, list)
        outcome = _ABSENT
        for _ in range(self.retries + 1):
            reply, outcome = self._attempt(payload, request_id, deadline)
            if reply is not None:
                return _result(reply)
            if outcome != _LOST or not resend or time.monotonic() >= deadline:
                break
        if outcome == _LATE:
            raise NoAnswerError(self.endpoint, self.timeout, key)
        raise NotRunningError(self.endpoint, self.timeout, key, lost=outcome == _LOST)

    def close(self) -> None:
        if self._sock is not None:
            if self._monitor is not None:
                self._sock.disable_monitor()
                self._monitor.close(linger=0)
                self._monitor = None
            self._sock.close(linger=0)
            self._sock = None

    def __enter__(self) -> RpcClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _open(self) -> zmq.Socket[bytes]:
        sock = self._context.socket(zmq.REQ)
        self._rcvtimeo = -1
        self._connected = False
        sock.setsockopt(zmq.LINGER, 0)
        if self.reconnect_ms != 100:
            sock.setsockopt(zmq.RECONNECT_IVL, self.reconnect_ms)
        # Connection news tells a busy worker from one that went away with the call.
        # Its address is ours alone: pyzmq's default names it after the socket's
        # file descriptor, which a socket closed a moment ago may still hold
        # (libzmq closes in the background): "Address already in use".
        self._monitor = sock.get_monitor_socket(
            zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED,
            addr=f"inproc://nua-client-monitor-{self._pid}-{next(self._monitors)}",
        )
        sock.connect(self.endpoint)
        self._sock = sock
        return sock

    def _attempt(
        self, payload: bytes, request_id: str, deadline: float
    ) -> tuple[dict[str, Any] | None, str]:
        sock = self._sock or self._open()
        if time.monotonic() - self._answered_at > self.FRESH_S:
            # News from before this call is not about it. Reading it costs a syscall
            # (7 us, a twentieth of a ping), so a call sent right after an answer
            # skips it: a drop in between, if any, at worst makes it sent again.
            self._connection_dropped()
        frames.send(sock, payload)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            # A receive timeout on the socket costs less than a poll before recv;
            # it is set again only for the last, shorter wait.
            wait_ms = int(remaining * 1000)
            if not 1 <= wait_ms <= self.WATCH_MS:  # clamped (min and max cost more)
                wait_ms = 1 if wait_ms < 1 else self.WATCH_MS
            if wait_ms != self._rcvtimeo:
                sock.setsockopt(zmq.RCVTIMEO, wait_ms)
                self._rcvtimeo = wait_ms
            try:
                data = frames.recv(sock)
            except zmq.Again:
                if self._connection_dropped():
                    self.close()
                    return None, _LOST
                continue
            reply = _decode(data)
            if reply is not None and _answers(reply, request_id):
                self._answered_at = time.monotonic()
                return reply, ""
            break  # not an answer to this call: this socket cannot be trusted again
        # Lazy Pirate: a REQ socket that missed its reply cannot send again.
        self._connection_dropped()
        outcome = _LATE if self._connected else _ABSENT
        self.close()
        return None, outcome

    def _connection_dropped(self) -> bool:
        """Read the monitor's news; whether the worker went away since it was last read."""
        monitor = self._monitor
        dropped = False
        while monitor is not None and frames.readable(monitor):
            event = _monitor_event(monitor.recv_multipart())
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._connected = True
            elif event == zmq.EVENT_DISCONNECTED and self._connected:
                self._connected = False
                dropped = True
        return dropped


def _monitor_event(frames: list[bytes]) -> int:
    """The event number of a ZeroMQ monitor message (zmq.utils.monitor imports asyncio)."""
    return int(struct.unpack_from("=H", frames[0])[0])


def _request(method: str, params: list[Any] | dict[str, Any] | None, request_id: str) -> bytes:
    """The request as JSON bytes (its envelope formatted, not encoded: this runs per call).

    `request_id` is ours (digits and a hyphen): it needs no escaping.
    """
    try:
        head = f'{{"jsonrpc":"2.0","method":{_ENCODE(method)},"id":"{request_id}"'
        if params is None:
            return f"{head}}}".encode()
        return f'{head},"params":{_ENCODE(params)}}}'.encode()
    except (TypeError, ValueError) as exc:
        raise EncodingError(f"the params cannot be sent as JSON: {exc}") from None


def _decode(data: bytes) -> dict[str, Any] | None:
    """The reply as a dict; None if it is not a JSON object."""
    try:
        reply = _DECODE(data.decode("utf-8"))
    except ValueError:
        return None
    return reply if isinstance(reply, dict) else None


def _answers(reply: dict[str, Any], request_id: str) -> bool:
    """Whether `reply` answers our request: its id, or an error about a message we sent.

    The worker answers with `"id": null` when it could not read the id (a
    message too large, or not JSON); on a REQ socket that answer is ours.
    """
    rid = reply.get("id")
    return rid == request_id or (rid is None and "error" in reply)


def _result(reply: dict[str, Any]) -> Any:
    if "error" in reply:
        error = reply["error"] if isinstance(reply["error"], dict) else {}
        code = int(error.get("code", 0))
        cls = ERRORS_BY_CODE.get(code, RemoteError)
        raise cls(code, str(error.get("message", "")), error.get("data"))
    return reply.get("result")
