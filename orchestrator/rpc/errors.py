"""JSON-RPC error codes: the specification's, and one table for application errors.

Application errors live in -32000..-32099 and carry a stable name in `data`
so that clients can tell them apart without parsing messages.
"""

from __future__ import annotations

from typing import Any

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

SPEC_MESSAGES = {
    PARSE_ERROR: "Parse error",
    INVALID_REQUEST: "Invalid Request",
    METHOD_NOT_FOUND: "Method not found",
    INVALID_PARAMS: "Invalid params",
    INTERNAL_ERROR: "Internal error",
}


class RpcError(Exception):
    """An error to send to the client as a JSON-RPC error object."""

    code: int = INTERNAL_ERROR
    name: str = "internal_error"

    def __init__(self, message: str, field: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.data: dict[str, Any] = {"name": self.name, **extra}
        if field is not None:
            self.data["field"] = field

    def to_error(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "data": self.data}


class NotFound(RpcError):
    code, name = -32001, "not_found"


class AlreadyExists(RpcError):
    code, name = -32002, "already_exists"


class InvalidArgument(RpcError):
    code, name = -32003, "invalid_argument"


class Conflict(RpcError):
    code, name = -32004, "conflict"


class PermissionDenied(RpcError):
    code, name = -32005, "permission_denied"


class Unavailable(RpcError):
    code, name = -32006, "unavailable"


APPLICATION_ERRORS: dict[int, type[RpcError]] = {
    cls.code: cls
    for cls in (NotFound, AlreadyExists, InvalidArgument, Conflict, PermissionDenied, Unavailable)
}
