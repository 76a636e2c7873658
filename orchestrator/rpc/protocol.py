"""JSON-RPC 2.0 messages: parse and check them, run the calls, render the answer.

Written to the letter of the specification, because no input may stop the
worker or leave a request that carried an id unanswered. tinyrpc 1.1.7's
parser dies or stays silent on some inputs (a batch member such as `1`, a
request without `method`, non-UTF-8 bytes, `"id": null`), so messages are
parsed and checked here; from tinyrpc we keep its `public` marker and its
dispatcher's table of public methods (registry.py), beside which the
registry keeps what this module needs per method (signature, type checks).
Params are checked against the method's type hints (param_types.py).

An unexpected exception becomes a generic "Internal error" with an error id;
the traceback goes to the log only.
"""

from __future__ import annotations

import json
import logging
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from orchestrator.json_strict import NotJson, loads_strict
from orchestrator.rpc.errors import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    SPEC_MESSAGES,
    InvalidArgument,
    RpcError,
)
from orchestrator.rpc.idempotency import IDEMPOTENCY, fingerprint
from orchestrator.rpc.param_types import first_mismatch
from orchestrator.rpc.registry import IDEMPOTENCY_PARAM, Method, Registry

log = logging.getLogger("nua.rpc")

_MISSING = object()
# json.dumps with options builds an encoder per call; these are built once.
_ENCODE = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
_STRING = json.encoder.encode_basestring_ascii
MAX_KEY_LENGTH = 200


@dataclass(slots=True)
class Call:
    """One request of a message, ready to run (or already answered with an error)."""

    id: Any
    notification: bool
    method: Method | None = None
    params: list[Any] | dict[str, Any] = field(default_factory=list)
    reply: dict[str, Any] | None = None  # set when the request is invalid


@dataclass
class Parsed:
    """A message: its calls, whether it was a batch, or one answer for the whole of it."""

    calls: list[Call] = field(default_factory=list)
    batch: bool = False
    reply: dict[str, Any] | None = None


class Processor:
    """Turns request messages into response messages using a method registry."""

    def __init__(self, registry: Registry, max_batch: int = 100) -> None:
        self.registry = registry
        self.max_batch = max_batch

    # -- the three steps -----------------------------------------------------------

    def parse(self, data: bytes) -> Parsed:
        """Decode and check a message; never raises."""
        try:
            message = loads_strict(data.decode("utf-8"))
        except NotJson as exc:
            return Parsed(reply=_error(None, PARSE_ERROR, data={"reason": str(exc)}))
        except (UnicodeDecodeError, ValueError):
            return Parsed(reply=_error(None, PARSE_ERROR))
        except RecursionError:
            return Parsed(reply=_error(None, PARSE_ERROR, data={"reason": "nested too deeply"}))
        if isinstance(message, list):
            if not message:
                return Parsed(reply=_error(None, INVALID_REQUEST))
            if len(message) > self.max_batch:
                reason = f"a batch holds at most {self.max_batch} requests"
                return Parsed(reply=_error(None, INVALID_REQUEST, data={"reason": reason}))
            return Parsed(calls=[self._check(item) for item in message], batch=True)
        return Parsed(calls=[self._check(message)])

    def execute(self, call: Call) -> str | Future[str] | None:
        """Run one call; its answer as JSON text, or None for a notification.

        A method may return a Future (a queued write): its answer is then a
        Future of the text, set by whichever thread completes the method's.
        """
        if call.notification and call.reply is None:
            self._run(call)
            return None
        if call.reply is not None:
            return None if call.notification else _ENCODE(call.reply)
        return self._run(call)

    def render(self, parsed: Parsed, replies: list[str | None]) -> bytes | None:
        """The response message, or None when there is nothing to send."""
        if parsed.reply is not None:
            return _dump(parsed.reply)
        if not parsed.batch:  # one call: its answer, or nothing for a notification
            return None if replies[0] is None else replies[0].encode()
        answers = [r for r in replies if r is not None]
        if not answers:
            return None
        return f"[{','.join(answers)}]".encode()

    def process(self, data: bytes) -> bytes | None:
        """All three steps in this thread (the worker hands slow calls to threads)."""
        parsed = self.parse(data)
        replies = [self.execute(call) for call in parsed.calls]
        return self.render(parsed, [r.result() if isinstance(r, Future) else r for r in replies])

    # -- checking and running ------------------------------------------------------

    def _check(self, request: Any) -> Call:
        if not isinstance(request, dict):
            return Call(id=None, notification=False, reply=_error(None, INVALID_REQUEST))
        rid = request.get("id", _MISSING)
        valid_id = rid is _MISSING or rid is None or _is_id(rid)
        reply_id = rid if valid_id and rid is not _MISSING else None
        method_name = request.get("method")
        params = request.get("params", _MISSING)
        if (
            request.get("jsonrpc") != "2.0"
            or not isinstance(method_name, str)
            or not valid_id
            or not (params is _MISSING or isinstance(params, list | dict))
        ):
            # An invalid request is answered even without an id: it is not a notification.
            return Call(id=reply_id, notification=False, reply=_error(reply_id, INVALID_REQUEST))
        call = Call(
            id=reply_id,
            notification=rid is _MISSING,
            method=self.registry.get(method_name),
            params=[] if params is _MISSING else params,
        )
        if call.method is None:
            call.reply = _error(reply_id, METHOD_NOT_FOUND)
        return call

    def _run(self, call: Call) -> str | Future[str]:
        method = call.method
        assert method is not None
        args, kwargs, key = _split(call.params)
        if args or kwargs or method.needs_arguments:
            arguments = None if args else method.keyword_arguments(kwargs)
            if arguments is None:
                try:
                    arguments = method.signature.bind(*args, **kwargs).arguments
                except TypeError as exc:
                    return _ENCODE(_error(call.id, INVALID_PARAMS, data={"reason": str(exc)}))
            mismatch = first_mismatch(method.signature, method.checks, arguments)
            if mismatch is not None:
                field, reason = mismatch
                data = {"field": field, "reason": reason}
                return _ENCODE(_error(call.id, INVALID_PARAMS, data=data))
        token = None
        try:
            if key is not None and method.changes:
                # The writer answers a retry with the stored answer, inside the
                # same transaction that would apply the change: race-free.
                _check_key(key)
                token = IDEMPOTENCY.set((key, method.name, fingerprint(method.name, kwargs)))
            result = method.func(*args, **kwargs)
        except Exception as exc:
            return _failure(call, method, exc)
        finally:
            if token is not None:
                IDEMPOTENCY.reset(token)
        if isinstance(result, Future):
            return _answer_later(call, method, result)
        return _success(call, method, result)


def _success(call: Call, method: Method, result: Any) -> str:
    try:
        # Encoded here, once: a result JSON cannot carry is an error with the call's id.
        encoded = _ENCODE(result)
    except Exception as exc:
        return _failure(call, method, exc)
    return f'{{"jsonrpc":"2.0","result":{encoded},"id":{_id_json(call.id)}}}'


def _failure(call: Call, method: Method, exc: Exception) -> str:
    if isinstance(exc, RpcError):
        return _ENCODE({"jsonrpc": "2.0", "error": exc.to_error(), "id": call.id})
    error_id = uuid.uuid4().hex[:12]
    log.error("error %s in %s", error_id, method.name, exc_info=exc)
    return _ENCODE(_error(call.id, INTERNAL_ERROR, data={"error_id": error_id}))


def _answer_later(call: Call, method: Method, result: Future[Any]) -> Future[str]:
    """The answer of a method that returned a Future (a queued write), once it is done."""
    answer: Future[str] = Future()

    def done(finished: Future[Any]) -> None:
        exc = finished.exception()
        if exc is None and isinstance(finished.result(), Future):
            finished.result().add_done_callback(done)  # work on a thread that queued a write
        elif exc is None:
            answer.set_result(_success(call, method, finished.result()))
        elif isinstance(exc, Exception):
            answer.set_result(_failure(call, method, exc))
        else:
            answer.set_exception(exc)

    result.add_done_callback(done)
    return answer


def _split(params: list[Any] | dict[str, Any]) -> tuple[list[Any], dict[str, Any], Any]:
    if isinstance(params, list):
        return params, {}, None
    kwargs = dict(params)
    key = kwargs.pop(IDEMPOTENCY_PARAM, None)
    return [], kwargs, key


def _check_key(key: Any) -> None:
    if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_LENGTH:
        raise InvalidArgument(
            f"{IDEMPOTENCY_PARAM} must be a string of 1 to {MAX_KEY_LENGTH} characters",
            field=IDEMPOTENCY_PARAM,
        )


def _id_json(rid: Any) -> str:
    """An id (a string, a number or null, as _check let through) as JSON text."""
    if rid is None:
        return "null"
    if type(rid) is str:
        return _STRING(rid)
    return repr(rid)  # int or finite float: Python's repr is JSON's


def _is_id(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _error(rid: Any, code: int, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": SPEC_MESSAGES[code]}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "error": error, "id": rid}


def _dump(reply: Any) -> bytes:
    return _ENCODE(reply).encode("utf-8")


def oversized(limit: int) -> bytes:
    """The answer to a message over `limit` bytes (its id cannot be read cheaply)."""
    reason = f"a message holds at most {limit} bytes (setting rpc.max_message_bytes)"
    return _dump(_error(None, INVALID_REQUEST, data={"reason": reason}))


def unrenderable() -> bytes:
    """A generic error for an answer that could not be encoded; the traceback is logged."""
    error_id = uuid.uuid4().hex[:12]
    log.exception("error %s while encoding an answer", error_id)
    return _dump(_error(None, INTERNAL_ERROR, data={"error_id": error_id}))
