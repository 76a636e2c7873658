"""orchestrator/rpc/protocol.py: JSON-RPC 2.0 to the letter of the specification.

The examples are those of https://www.jsonrpc.org/specification#examples, with our
method names. Replies are compared as parsed JSON, never as strings.
"""

from __future__ import annotations

import json
import logging
import os
from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any, Literal

import pytest

from orchestrator import __version__
from orchestrator.rpc.errors import NotFound
from orchestrator.rpc.methods.system import SystemMethods
from orchestrator.rpc.protocol import Processor
from orchestrator.rpc.registry import Namespace, Registry, public

PARSE_ERROR = {"code": -32700, "message": "Parse error"}
INVALID_REQUEST = {"code": -32600, "message": "Invalid Request"}
METHOD_NOT_FOUND = {"code": -32601, "message": "Method not found"}


class DemoMethods(Namespace):
    """Methods to exercise the processor: the spec's examples and every kind of failure."""

    namespace = "demo"

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self.hellos: list[Any] = []
        self.pending: list[Future[Any]] = []

    @public
    def subtract(self, minuend: float, subtrahend: float) -> float:
        """Subtract `subtrahend` from `minuend`."""
        return minuend - subtrahend

    @public
    def sum(self, *numbers: float) -> float:
        return sum(numbers)

    @public
    def notify_hello(self, value: Any) -> None:
        self.hellos.append(value)

    @public
    def get_data(self) -> list[Any]:
        return ["hello", 5]

    @public
    def typed(
        self,
        name: str,
        count: int = 1,
        tags: list[str] | None = None,
        mode: Literal["fast", "safe"] = "safe",
        extra: dict[str, int] | None = None,
        anything: Any = None,
    ) -> str:
        """Takes one parameter of each kind of hint the processor checks."""
        return f"{name}:{count}"

    @public
    def find(self, name: str) -> None:
        raise NotFound(f"no user {name}", field="name")

    @public
    def crash(self) -> None:
        raise ValueError("secret detail from deep inside")

    @public
    def unserialisable(self) -> object:
        return object()

    @public
    def not_a_number(self) -> float:
        return float("nan")

    @public(inline=True)
    def later(self) -> Future[Any]:
        """Answers with what the test sets on the Future it keeps (like a queued write)."""
        future: Future[Any] = Future()
        self.pending.append(future)
        return future

    @public
    def _private(self) -> str:
        return "private"

    def helper(self) -> str:
        """Not marked public: not callable."""
        return "helper"


@pytest.fixture
def demo() -> DemoMethods:
    return DemoMethods(None)


@pytest.fixture
def processor(demo: DemoMethods) -> Processor:
    registry = Registry()
    context = SimpleNamespace(
        schema_revision="0001_settings", database="sqlite:///x.db", endpoint="ipc:///r.sock"
    )
    registry.add_namespace(SystemMethods(context))
    registry.add_namespace(demo)
    return Processor(registry, max_batch=10)


def _strict_loads(data: bytes) -> Any:
    """Parse as RFC 8259 JSON: NaN and Infinity are not JSON."""

    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    return json.loads(data.decode("utf-8"), parse_constant=refuse)


def call(processor: Processor, message: Any) -> Any:
    """Send `message` (JSON-encoded unless bytes or str); the parsed reply, or None."""
    if isinstance(message, bytes):
        data = message
    elif isinstance(message, str):
        data = message.encode("utf-8")
    else:
        data = json.dumps(message).encode("utf-8")
    reply = processor.process(data)
    return None if reply is None else _strict_loads(reply)


def _unordered(replies: list[dict[str, Any]]) -> list[str]:
    # The specification lets a batch's replies come in any order.
    return sorted(json.dumps(r, sort_keys=True) for r in replies)


# -- the specification's examples ----------------------------------------------------


def test_positional_parameters(processor: Processor) -> None:
    assert call(
        processor, {"jsonrpc": "2.0", "method": "demo.subtract", "params": [42, 23], "id": 1}
    ) == {"jsonrpc": "2.0", "result": 19, "id": 1}
    assert call(
        processor, {"jsonrpc": "2.0", "method": "demo.subtract", "params": [23, 42], "id": 2}
    ) == {"jsonrpc": "2.0", "result": -19, "id": 2}


def test_named_parameters(processor: Processor) -> None:
    for params in ({"subtrahend": 23, "minuend": 42}, {"minuend": 42, "subtrahend": 23}):
        reply = call(
            processor, {"jsonrpc": "2.0", "method": "demo.subtract", "params": params, "id": 3}
        )
        assert reply == {"jsonrpc": "2.0", "result": 19, "id": 3}


def test_notification_is_not_answered_but_runs(processor: Processor, demo: DemoMethods) -> None:
    assert call(processor, {"jsonrpc": "2.0", "method": "demo.notify_hello", "params": [7]}) is None
    assert demo.hellos == [7]


def test_notification_of_an_unknown_method_is_not_answered(processor: Processor) -> None:
    assert call(processor, {"jsonrpc": "2.0", "method": "foobar"}) is None


def test_non_existent_method(processor: Processor) -> None:
    reply = call(processor, {"jsonrpc": "2.0", "method": "foobar", "id": "1"})
    assert reply == {"jsonrpc": "2.0", "error": METHOD_NOT_FOUND, "id": "1"}


def test_invalid_json(processor: Processor) -> None:
    reply = call(processor, '{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]')
    assert reply == {"jsonrpc": "2.0", "error": PARSE_ERROR, "id": None}


def test_invalid_request_object(processor: Processor) -> None:
    reply = call(processor, {"jsonrpc": "2.0", "method": 1, "params": "bar"})
    assert reply == {"jsonrpc": "2.0", "error": INVALID_REQUEST, "id": None}


def test_batch_with_invalid_json(processor: Processor) -> None:
    reply = call(
        processor,
        '[{"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},'
        '{"jsonrpc": "2.0", "method"]',
    )
    assert reply == {"jsonrpc": "2.0", "error": PARSE_ERROR, "id": None}


def test_empty_array(processor: Processor) -> None:
    assert call(processor, []) == {"jsonrpc": "2.0", "error": INVALID_REQUEST, "id": None}


def test_invalid_batch_of_one(processor: Processor) -> None:
    assert call(processor, [1]) == [{"jsonrpc": "2.0", "error": INVALID_REQUEST, "id": None}]


def test_invalid_batch(processor: Processor) -> None:
    assert (
        call(processor, [1, 2, 3]) == [{"jsonrpc": "2.0", "error": INVALID_REQUEST, "id": None}] * 3
    )


def test_mixed_batch(processor: Processor, demo: DemoMethods) -> None:
    reply = call(
        processor,
        [
            {"jsonrpc": "2.0", "method": "demo.sum", "params": [1, 2, 4], "id": "1"},
            {"jsonrpc": "2.0", "method": "demo.notify_hello", "params": [7]},
            {"jsonrpc": "2.0", "method": "demo.subtract", "params": [42, 23], "id": "2"},
            {"foo": "boo"},
            {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
            {"jsonrpc": "2.0", "method": "demo.get_data", "id": "9"},
        ],
    )
    assert isinstance(reply, list)
    assert _unordered(reply) == _unordered(
        [
            {"jsonrpc": "2.0", "result": 7, "id": "1"},
            {"jsonrpc": "2.0", "result": 19, "id": "2"},
            {"jsonrpc": "2.0", "error": INVALID_REQUEST, "id": None},
            {"jsonrpc": "2.0", "error": METHOD_NOT_FOUND, "id": "5"},
            {"jsonrpc": "2.0", "result": ["hello", 5], "id": "9"},
        ]
    )
    assert demo.hellos == [7]


def test_all_notification_batch_is_not_answered(processor: Processor, demo: DemoMethods) -> None:
    reply = call(
        processor,
        [
            {"jsonrpc": "2.0", "method": "demo.notify_hello", "params": [1, 2, 4]},
            {"jsonrpc": "2.0", "method": "demo.notify_hello", "params": [7]},
        ],
    )
    assert reply is None
    # The first has the wrong arity: not run, and (a notification) not answered.
    assert demo.hellos == [7]


# -- ids -----------------------------------------------------------------------------------


def test_id_null_is_answered(processor: Processor) -> None:
    reply = call(processor, {"jsonrpc": "2.0", "method": "system.ping", "id": None})
    assert reply == {"jsonrpc": "2.0", "result": "pong", "id": None}


@pytest.mark.parametrize("rid", ["abc", 0, -7, 1.5, ""])
def test_valid_ids_are_echoed(processor: Processor, rid: Any) -> None:
    reply = call(processor, {"jsonrpc": "2.0", "method": "system.ping", "id": rid})
    assert reply == {"jsonrpc": "2.0", "result": "pong", "id": rid}


@pytest.mark.parametrize("rid", [{}, True, False, [1], {"a": 1}])
def test_id_of_a_wrong_type_is_an_invalid_request_with_id_null(
    processor: Processor, rid: Any
) -> None:
    reply = call(processor, {"jsonrpc": "2.0", "method": "system.ping", "id": rid})
    assert reply == {"jsonrpc": "2.0", "error": INVALID_REQUEST, "id": None}


# -- malformed requests ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_",
    [
        {"method": "system.ping", "id": 1},  # no jsonrpc member
        {"jsonrpc": "1.0", "method": "system.ping", "id": 1},
        {"jsonrpc": 2.0, "method": "system.ping", "id": 1},
        {"jsonrpc": "2.0", "id": 1},  # no method
        {"jsonrpc": "2.0", "method": None, "id": 1},
        {"jsonrpc": "2.0", "method": "system.ping", "params": "x", "id": 1},
        {"jsonrpc": "2.0", "method": "system.ping", "params": 3, "id": 1},
        {"jsonrpc": "2.0", "method": "system.ping", "params": None, "id": 1},
    ],
)
def test_invalid_request_keeps_a_valid_id(processor: Processor, request_: dict[str, Any]) -> None:
    reply = call(processor, request_)
    assert reply == {"jsonrpc": "2.0", "error": INVALID_REQUEST, "id": 1}


@pytest.mark.parametrize("message", ['"a string"', "42", "null", "true"])
def test_a_scalar_is_an_invalid_request(processor: Processor, message: str) -> None:
    assert call(processor, message) == {"jsonrpc": "2.0", "error": INVALID_REQUEST, "id": None}


@pytest.mark.parametrize(
    "data", [b"\xff\xfe\x00", b'{"jsonrpc": "2.0", "method": "caf\xe9", "id": 1}', b"", b"   "]
)
def test_bytes_that_are_not_utf8_json_are_a_parse_error(processor: Processor, data: bytes) -> None:
    assert call(processor, data) == {"jsonrpc": "2.0", "error": PARSE_ERROR, "id": None}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"jsonrpc": "2.0", "method": "system.ping", "id": Infinity}', "Infinity is not JSON"),
        (b'{"jsonrpc": "2.0", "method": "system.ping", "id": NaN}', "NaN is not JSON"),
        (b'{"jsonrpc": "2.0", "id": -Infinity}', "-Infinity is not JSON"),
        (b'{"jsonrpc": "2.0", "method": "system.ping", "id": 1e400}', "out of range"),
        (b'{"jsonrpc": "2.0", "method": "demo.get_data", "params": [-1e999], "id": 1}', "range"),
    ],
)
def test_numbers_json_cannot_carry_are_a_parse_error(
    processor: Processor, data: bytes, reason: str
) -> None:
    reply = call(processor, data)
    assert reply["error"]["code"] == PARSE_ERROR["code"]
    assert reply["id"] is None
    assert reason in reply["error"]["data"]["reason"]


def test_large_finite_numbers_are_still_accepted(processor: Processor) -> None:
    reply = call(processor, b'{"jsonrpc": "2.0", "method": "system.ping", "id": 1.5e300}')
    assert reply == {"jsonrpc": "2.0", "result": "pong", "id": 1.5e300}


@pytest.mark.parametrize("depth", [100_000, 1_000_000])
def test_deeply_nested_json_is_an_error_not_a_crash(processor: Processor, depth: int) -> None:
    reply = call(processor, b"[" * depth + b"]" * depth)
    assert {**reply, "error": {k: reply["error"][k] for k in ("code", "message")}} == {
        "jsonrpc": "2.0",
        "error": PARSE_ERROR,
        "id": None,
    }
    assert reply["error"]["data"] == {"reason": "nested too deeply"}


def test_deeply_nested_params_are_an_error_not_a_crash(processor: Processor) -> None:
    nested = "[" * 100_000 + "]" * 100_000
    reply = call(
        processor, f'{{"jsonrpc": "2.0", "method": "demo.get_data", "params": {nested}, "id": 1}}'
    )
    assert reply["error"]["code"] == PARSE_ERROR["code"]
    assert reply["id"] is None


def test_nested_batch_item_is_invalid(processor: Processor) -> None:
    reply = call(processor, [[{"jsonrpc": "2.0", "method": "system.ping", "id": 1}]])
    assert reply == [{"jsonrpc": "2.0", "error": INVALID_REQUEST, "id": None}]


def test_batch_over_the_limit_is_refused_whole(processor: Processor) -> None:
    batch = [{"jsonrpc": "2.0", "method": "system.ping", "id": i} for i in range(11)]
    reply = call(processor, batch)
    assert reply["error"]["code"] == -32600
    assert reply["id"] is None
    assert len(call(processor, batch[:10])) == 10


# -- parameters and errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [[1], [1, 2, 3], {"minuend": 1}, {"minuend": 1, "subtrahend": 2, "extra": 3}, {"self": 1}],
)
def test_wrong_parameters_are_invalid_params(processor: Processor, params: Any) -> None:
    reply = call(
        processor, {"jsonrpc": "2.0", "method": "demo.subtract", "params": params, "id": 4}
    )
    assert reply["id"] == 4
    assert reply["error"]["code"] == -32602
    assert reply["error"]["message"] == "Invalid params"
    assert isinstance(reply["error"]["data"]["reason"], str)


def test_application_error_carries_its_code_and_name(processor: Processor) -> None:
    reply = call(processor, {"jsonrpc": "2.0", "method": "demo.find", "params": ["ann"], "id": 5})
    assert reply == {
        "jsonrpc": "2.0",
        "error": {
            "code": -32001,
            "message": "no user ann",
            "data": {"name": "not_found", "field": "name"},
        },
        "id": 5,
    }


@pytest.mark.parametrize("method", ["demo.crash", "demo.unserialisable"])
def test_internal_error_has_an_error_id_and_no_traceback(
    processor: Processor, method: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="orchestrator.rpc.protocol"):
        raw = processor.process(json.dumps({"jsonrpc": "2.0", "method": method, "id": 6}).encode())
    assert raw is not None
    reply = _strict_loads(raw)
    assert reply["id"] == 6
    assert reply["error"]["code"] == -32603
    assert reply["error"]["message"] == "Internal error"
    error_id = reply["error"]["data"]["error_id"]
    assert isinstance(error_id, str) and len(error_id) == 12
    assert set(reply["error"]["data"]) == {"error_id"}
    for leak in (b"Traceback", b"secret detail", b"ValueError", b"TypeError", b".py"):
        assert leak not in raw
    # The traceback goes to the log, under the same error id.
    [record] = [r for r in caplog.records if error_id in r.getMessage()]
    assert record.exc_info is not None


def test_error_ids_differ_between_errors(processor: Processor) -> None:
    ids = {
        call(processor, {"jsonrpc": "2.0", "method": "demo.crash", "id": i})["error"]["data"][
            "error_id"
        ]
        for i in range(5)
    }
    assert len(ids) == 5


def test_a_nan_result_does_not_produce_invalid_json(processor: Processor) -> None:
    reply = call(processor, {"jsonrpc": "2.0", "method": "demo.not_a_number", "id": 7})
    assert reply["id"] == 7
    assert reply["error"]["code"] == -32603


def test_internal_error_in_a_batch_does_not_stop_the_others(processor: Processor) -> None:
    reply = call(
        processor,
        [
            {"jsonrpc": "2.0", "method": "demo.crash", "id": 1},
            {"jsonrpc": "2.0", "method": "system.ping", "id": 2},
        ],
    )
    by_id = {r["id"]: r for r in reply}
    assert by_id[1]["error"]["code"] == -32603
    assert by_id[2]["result"] == "pong"


# -- what is callable ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "system._x",
        "system.__class__",
        "system.__init__",
        "system.ping.__call__",
        "system.context",
        "system",
        "ping",
        "",
        "demo._private",
        "demo.helper",
        "demo.__dict__",
        "demo.subtract.__globals__",
        "demo.hellos",
    ],
)
def test_only_public_methods_are_callable(processor: Processor, name: str) -> None:
    reply = call(processor, {"jsonrpc": "2.0", "method": name, "id": 8})
    assert reply == {"jsonrpc": "2.0", "error": METHOD_NOT_FOUND, "id": 8}


def test_registry_lists_exactly_the_public_methods(processor: Processor) -> None:
    assert sorted(processor.registry.methods) == [
        "demo.crash",
        "demo.find",
        "demo.get_data",
        "demo.later",
        "demo.not_a_number",
        "demo.notify_hello",
        "demo.subtract",
        "demo.sum",
        "demo.typed",
        "demo.unserialisable",
        "system.describe",
        "system.list_methods",
        "system.ping",
        "system.version",
    ]
    method = processor.registry.get("demo.subtract")
    assert method is not None
    assert list(method.signature.parameters) == ["minuend", "subtrahend"]
    assert method.doc == "Subtract `subtrahend` from `minuend`."


def test_namespace_without_a_valid_name_is_refused() -> None:
    class Nameless(Namespace):
        namespace = "a.b"

    with pytest.raises(ValueError, match="Nameless"):
        Registry().add_namespace(Nameless(None))


def test_system_ping_and_version(processor: Processor) -> None:
    assert call(processor, {"jsonrpc": "2.0", "method": "system.ping", "id": 1})["result"] == "pong"
    reply = call(processor, {"jsonrpc": "2.0", "method": "system.version", "params": [], "id": 2})
    assert reply["result"] == {
        "version": __version__,
        "schema_revision": "0001_settings",
        "database": "sqlite:///x.db",
        "endpoint": "ipc:///r.sock",
        "pid": os.getpid(),
    }


@pytest.mark.parametrize(
    ("params", "field", "reason"),
    [
        ({"name": 5}, "name", "name must be a string, not a number"),
        ({"name": "a", "count": "3"}, "count", "count must be an integer, not a string"),
        ({"name": "a", "count": 1.5}, "count", "count must be an integer, not a number"),
        ({"name": "a", "count": True}, "count", "count must be an integer, not a boolean"),
        ({"name": "a", "tags": "x"}, "tags", "tags must be an array or null, not a string"),
        ({"name": "a", "tags": ["x", 1]}, "tags", "an array of strings or null"),
        ({"name": "a", "mode": "quick"}, "mode", "mode must be one of 'fast', 'safe'"),
        ({"name": "a", "extra": {"k": "v"}}, "extra", "an object of integers or null"),
        (["a", None], "count", "count must be an integer, not null"),
    ],
)
def test_a_param_of_the_wrong_type_is_invalid_params_naming_it(
    processor: Processor, params: Any, field: str, reason: str
) -> None:
    reply = call(processor, {"jsonrpc": "2.0", "method": "demo.typed", "params": params, "id": 3})
    assert reply["id"] == 3
    assert reply["error"]["code"] == -32602
    assert reply["error"]["data"]["field"] == field
    assert reason in reply["error"]["data"]["reason"]


def test_params_of_the_right_types_reach_the_method(processor: Processor) -> None:
    params = {"name": "a", "count": 2, "tags": ["x"], "mode": "fast", "extra": {"k": 1}}
    params["anything"] = {"deep": [1, None]}
    reply = call(processor, {"jsonrpc": "2.0", "method": "demo.typed", "params": params, "id": 4})
    assert reply == {"jsonrpc": "2.0", "result": "a:2", "id": 4}


def test_each_member_of_var_positional_params_is_checked(processor: Processor) -> None:
    reply = call(processor, {"jsonrpc": "2.0", "method": "demo.sum", "params": [1, "2"], "id": 5})
    assert reply["error"]["code"] == -32602
    assert reply["error"]["data"]["field"] == "numbers[1]"
    assert (
        call(processor, {"jsonrpc": "2.0", "method": "demo.sum", "params": [1, 2.5], "id": 6})[
            "result"
        ]
        == 3.5
    )


# -- methods that answer later (a Future: a write answered once committed) -------------


def _later(processor: Processor, demo: DemoMethods, rid: Any = 7) -> tuple[Future[Any], Any]:
    """Run demo.later; the method's Future and the processor's answer (a Future too)."""
    [parsed_call] = processor.parse(
        json.dumps({"jsonrpc": "2.0", "method": "demo.later", "id": rid}).encode()
    ).calls
    answer = processor.execute(parsed_call)
    [method_future] = demo.pending
    return method_future, answer


def test_a_method_returning_a_future_is_answered_when_it_is_done(
    processor: Processor, demo: DemoMethods
) -> None:
    method_future, answer = _later(processor, demo, rid="a")
    assert isinstance(answer, Future) and not answer.done()
    method_future.set_result({"id": 1, "when": "committed"})
    assert json.loads(answer.result(timeout=1)) == {
        "jsonrpc": "2.0",
        "result": {"id": 1, "when": "committed"},
        "id": "a",
    }


def test_a_future_holding_another_is_answered_with_the_inner_result(
    processor: Processor, demo: DemoMethods
) -> None:
    # A method's slow part ran on a thread, which then queued a write.
    method_future, answer = _later(processor, demo)
    inner: Future[Any] = Future()
    method_future.set_result(inner)
    assert not answer.done()
    inner.set_result("done")
    assert json.loads(answer.result(timeout=1))["result"] == "done"


def test_a_future_failing_with_an_rpc_error_gives_that_error_with_the_id(
    processor: Processor, demo: DemoMethods
) -> None:
    method_future, answer = _later(processor, demo, rid=9)
    method_future.set_exception(NotFound("no user 'x'", field="username"))
    reply = json.loads(answer.result(timeout=1))
    assert reply["id"] == 9
    assert reply["error"]["data"]["field"] == "username"


@pytest.mark.parametrize("outcome", ["crash", "unserialisable"])
def test_a_future_failing_unexpectedly_is_an_internal_error_with_an_id_and_no_traceback(
    processor: Processor, demo: DemoMethods, outcome: str, caplog: pytest.LogCaptureFixture
) -> None:
    method_future, answer = _later(processor, demo)
    with caplog.at_level(logging.ERROR, logger="orchestrator.rpc.protocol"):
        if outcome == "crash":
            method_future.set_exception(ValueError("secret detail from deep inside"))
        else:
            method_future.set_result(object())
        raw = answer.result(timeout=1)
    reply = json.loads(raw)
    assert reply["id"] == 7
    assert reply["error"]["code"] == -32603
    assert "secret" not in raw and "Traceback" not in raw
    error_id = reply["error"]["data"]["error_id"]
    [record] = [r for r in caplog.records if error_id in r.getMessage()]
    assert record.exc_info is not None


def test_a_batch_with_a_later_call_is_answered_whole_once_it_is_done(
    processor: Processor, demo: DemoMethods
) -> None:
    batch = [
        {"jsonrpc": "2.0", "method": "system.ping", "id": 1},
        {"jsonrpc": "2.0", "method": "demo.later", "id": 2},
    ]
    parsed = processor.parse(json.dumps(batch).encode())
    answers = [processor.execute(c) for c in parsed.calls]
    demo.pending[0].set_result("later")
    texts = [a.result(timeout=1) if isinstance(a, Future) else a for a in answers]
    replies = json.loads(processor.render(parsed, texts) or b"")
    assert {r["id"]: r["result"] for r in replies} == {1: "pong", 2: "later"}


def test_describe_gives_what_a_later_method_answers_not_its_future(processor: Processor) -> None:
    method = processor.registry.get("demo.later")
    assert method is not None
    assert method.describe()["returns"] == "Any"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "a"},
        {"count": 2, "name": "a"},
        {"name": "a", "count": 2, "tags": ["x"], "mode": "fast", "extra": {}, "anything": 1},
        {"count": 2},
        {"name": "a", "unknown": 1},
        {},
    ],
)
def test_keyword_arguments_bind_exactly_as_signature_bind_does(
    processor: Processor, kwargs: dict[str, Any]
) -> None:
    # The fast path of the common call; where it declines, Signature.bind decides.
    method = processor.registry.get("demo.typed")
    assert method is not None
    fast = method.keyword_arguments(kwargs)
    try:
        expected = dict(method.signature.bind(**kwargs).arguments)
    except TypeError:
        assert fast is None
    else:
        assert fast is not None and list(fast.items()) == list(expected.items())


def test_keyword_arguments_leave_var_parameters_to_signature_bind(processor: Processor) -> None:
    method = processor.registry.get("demo.sum")
    assert method is not None
    assert method.keyword_arguments({"numbers": [1]}) is None
