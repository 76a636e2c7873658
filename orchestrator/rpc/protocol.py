"""JSON-RPC 2.0 message handling: bytes in, bytes (or nothing, for notifications) out.

Written to the letter of the specification, because no input may stop the
worker or leave a request that carried an id unanswered. An unexpected
exception becomes a generic "Internal error" with an error id; the traceback
goes to the log only.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from orchestrator.rpc.errors import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    SPEC_MESSAGES,
    RpcError,
)
from orchestrator.rpc.registry import Registry

log = logging.getLogger(__name__)

_MISSING = object()


class Processor:
    """Turns a request message into a response message using a method registry."""

    def __init__(self, registry: Registry, max_batch: int = 100) -> None:
        self.registry = registry
        self.max_batch = max_batch

    def process(self, data: bytes) -> bytes | None:
        """The response to `data`, or None when nothing is to be sent back."""
        try:
            message = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return _dump(_error(None, PARSE_ERROR))
        if isinstance(message, list):
            if not message:
                return _dump(_error(None, INVALID_REQUEST))
            if len(message) > self.max_batch:
                return _dump(
                    _error(None, INVALID_REQUEST, data={"reason": f"batch over {self.max_batch}"})
                )
            replies = [r for r in (self._one(item) for item in message) if r is not None]
            return _dump(replies) if replies else None
        reply = self._one(message)
        return _dump(reply) if reply is not None else None

    def _one(self, request: Any) -> dict[str, Any] | None:
        if not isinstance(request, dict):
            return _error(None, INVALID_REQUEST)
        rid = request.get("id", _MISSING)
        valid_id = rid is _MISSING or rid is None or _is_id(rid)
        reply_id = rid if valid_id and rid is not _MISSING else None
        method = request.get("method")
        params = request.get("params", _MISSING)
        if (
            request.get("jsonrpc") != "2.0"
            or not isinstance(method, str)
            or not valid_id
            or not (params is _MISSING or isinstance(params, list | dict))
        ):
            return _error(reply_id, INVALID_REQUEST)
        notification = rid is _MISSING
        reply = self._call(reply_id, method, [] if params is _MISSING else params)
        return None if notification else reply

    def _call(self, rid: Any, name: str, params: list[Any] | dict[str, Any]) -> dict[str, Any]:
        method = self.registry.get(name)
        if method is None:
            return _error(rid, METHOD_NOT_FOUND)
        try:
            if isinstance(params, list):
                method.signature.bind(*params)
            else:
                method.signature.bind(**params)
        except TypeError as exc:
            return _error(rid, INVALID_PARAMS, data={"reason": str(exc)})
        try:
            result = method.func(*params) if isinstance(params, list) else method.func(**params)
            json.dumps(result, allow_nan=False)
        except RpcError as exc:
            return {"jsonrpc": "2.0", "error": exc.to_error(), "id": rid}
        except Exception:
            error_id = uuid.uuid4().hex[:12]
            log.exception("error %s in %s", error_id, name)
            return _error(rid, INTERNAL_ERROR, data={"error_id": error_id})
        return {"jsonrpc": "2.0", "result": result, "id": rid}


def _is_id(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _error(rid: Any, code: int, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": SPEC_MESSAGES[code]}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "error": error, "id": rid}


def _dump(reply: Any) -> bytes:
    return json.dumps(reply, separators=(",", ":"), allow_nan=False).encode("utf-8")
