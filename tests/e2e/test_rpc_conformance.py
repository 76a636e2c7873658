"""JSON-RPC 2.0 over the real ipc socket: the specification's examples, edge cases, plugins."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from orchestrator.rpc.client import MethodNotFoundError, RpcClient
from tests.support.orchestrator import Orchestrator
from tests.support.polling import wait_for
from tests.support.raw_rpc import RawClient

pytestmark = pytest.mark.e2e


@pytest.fixture
def raw(served: Orchestrator) -> Iterator[RawClient]:
    client = RawClient(served.locations.rpc_endpoint)
    yield client
    client.close()


def by_id(replies: list[dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    return {r["id"]: r for r in replies}


# The Examples section of https://www.jsonrpc.org/specification, verbatim.
SINGLE_EXAMPLES = [
    ('{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}',
     {"jsonrpc": "2.0", "result": 19, "id": 1}),
    ('{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}',
     {"jsonrpc": "2.0", "result": -19, "id": 2}),
    ('{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}',
     {"jsonrpc": "2.0", "result": 19, "id": 3}),
    ('{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42, "subtrahend": 23}, "id": 4}',
     {"jsonrpc": "2.0", "result": 19, "id": 4}),
    ('{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}', None),
    ('{"jsonrpc": "2.0", "method": "foobar"}', None),
    ('{"jsonrpc": "2.0", "method": "foobar", "id": "1"}',
     {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "1"}),
    ('{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]',
     {"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": None}),
    ('{"jsonrpc": "2.0", "method": 1, "params": "bar"}',
     {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None}),
    ('[\n  {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},\n'
     '  {"jsonrpc": "2.0", "method"\n]',
     {"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": None}),
    ("[]", {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None}),
    ("[1]", [{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None}]),
    ("[1,2,3]", [
        {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None},
        {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None},
        {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None},
    ]),
    ('[{"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},'
     ' {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}]', None),
]  # fmt: skip


@pytest.mark.parametrize(("request_text", "expected"), SINGLE_EXAMPLES)
def test_specification_examples(raw: RawClient, request_text: str, expected: Any) -> None:
    assert raw.exchange(request_text) == expected


def test_specification_mixed_batch(raw: RawClient) -> None:
    reply = raw.exchange(
        """[
        {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
        {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
        {"foo": "boo"},
        {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
        {"jsonrpc": "2.0", "method": "get_data", "id": "9"}
    ]"""
    )
    assert isinstance(reply, list) and len(reply) == 5
    invalid = [r for r in reply if r["id"] is None]
    assert invalid == [
        {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None}
    ]
    assert by_id([r for r in reply if r["id"] is not None]) == {
        "1": {"jsonrpc": "2.0", "result": 7, "id": "1"},
        "2": {"jsonrpc": "2.0", "result": 19, "id": "2"},
        "5": {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"},
              "id": "5"},
        "9": {"jsonrpc": "2.0", "result": ["hello", 5], "id": "9"},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("request_text", "code"),
    [
        ('{"jsonrpc": "2.0", "method": "system.ping", "id": null}', None),
        ('{"jsonrpc": "2.0", "method": "system.ping", "id": {"a": 1}}', -32600),
        ('{"jsonrpc": "2.0", "method": "system.ping", "id": true}', -32600),
        ('{"jsonrpc": "2.0", "method": "system.ping", "id": [1]}', -32600),
        ('{"jsonrpc": "2.0", "id": 7}', -32600),
        ('{"jsonrpc": "1.0", "method": "system.ping", "id": 7}', -32600),
        ('{"method": "system.ping", "id": 7}', -32600),
        ('{"jsonrpc": "2.0", "method": "system.ping", "params": 3, "id": 7}', -32600),
        ('{"jsonrpc": "2.0", "method": "system.__class__", "id": 7}', -32601),
        ('{"jsonrpc": "2.0", "method": "system._private", "id": 7}', -32601),
        ('{"jsonrpc": "2.0", "method": "system.ping.__call__", "id": 7}', -32601),
        ('{"jsonrpc": "2.0", "method": "echo.not_public", "id": 7}', -32601),
        ('{"jsonrpc": "2.0", "method": "__init__", "id": 7}', -32601),
        ('{"jsonrpc": "2.0", "method": "system.ping", "params": [1], "id": 7}', -32602),
        ('{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 1}, "id": 7}', -32602),
        ('{"jsonrpc": "2.0", "method": "subtract", "params": {"x": 1, "y": 2}, "id": 7}', -32602),
        ('{"jsonrpc": "2.0", "method": "subtract", "params": ["a", 1], "id": 7}', -32602),
        ('{"jsonrpc": "2.0", "method": "user.get", "params": [5], "id": 7}', -32602),
        ('{"jsonrpc": "2.0", "method": "user.list", "params": {"limit": "9"}, "id": 7}', -32602),
        ("\xff\xfe not utf-8", -32700),
        ("[" * 100_000 + "]" * 100_000, -32700),
    ],
)
def test_edge_cases(raw: RawClient, request_text: str, code: int | None) -> None:
    payload = request_text.encode("latin-1") if "\xff" in request_text else request_text
    reply = raw.exchange(payload)
    if code is None:
        assert reply == {"jsonrpc": "2.0", "result": "pong", "id": None}
    else:
        assert reply["error"]["code"] == code, reply
        assert "Traceback" not in json.dumps(reply)


def test_an_unserialisable_result_is_a_generic_error_with_an_id(
    raw: RawClient, served: Orchestrator
) -> None:
    reply = raw.exchange('{"jsonrpc": "2.0", "method": "echo.unserialisable", "id": 1}')
    assert reply["id"] == 1
    assert reply["error"]["code"] == -32603
    assert set(reply["error"]["data"]) == {"error_id"}
    # The worker logs before it answers, but supervisord copies its output to
    # rpc.log on its own time: the line may land just after the answer.
    error_id = reply["error"]["data"]["error_id"]
    wait_for(lambda: error_id in served.log("rpc"), what=f"error {error_id} in rpc.log")


@pytest.mark.parametrize(
    "request_text",
    [
        '{"jsonrpc": "2.0", "method": "system.ping", "id": Infinity}',
        '{"jsonrpc": "2.0", "id": -Infinity}',
        '{"jsonrpc": "2.0", "method": "system.ping", "id": NaN}',
        '{"jsonrpc": "2.0", "method": "system.ping", "id": 1e400}',
        '{"jsonrpc": "2.0", "method": "echo.back", "params": [1e400], "id": 1}',
        '[{"jsonrpc": "2.0", "method": "system.ping", "id": 1}, NaN]',
    ],
)
def test_numbers_json_cannot_carry_are_a_parse_error(raw: RawClient, request_text: str) -> None:
    # Python's json module accepts NaN, Infinity and numbers beyond a double;
    # JSON has no such values, and an answer could not carry such an id back.
    reply = raw.exchange(request_text)
    assert reply["error"]["code"] == -32700, reply
    assert reply["id"] is None
    assert raw.exchange('{"jsonrpc": "2.0", "method": "system.ping", "id": 2}')["result"] == "pong"


def test_oversized_batch_and_message_are_refused_with_a_reason(raw: RawClient) -> None:
    batch = json.dumps([{"jsonrpc": "2.0", "method": "system.ping", "id": i} for i in range(101)])
    reply = raw.exchange(batch)
    assert reply["error"]["code"] == -32600
    assert "at most 100" in reply["error"]["data"]["reason"]
    big = json.dumps(
        {"jsonrpc": "2.0", "method": "echo.back", "params": ["x" * 1_100_000], "id": 1}
    )
    reply = raw.exchange(big)
    assert reply["error"]["code"] == -32600
    assert "rpc.max_message_bytes" in reply["error"]["data"]["reason"]


def test_plugins_are_listed_and_callable_and_broken_ones_skipped(served: Orchestrator) -> None:
    client = RpcClient(served.locations.rpc_endpoint)
    methods = client.call("system.list_methods")
    assert {"echo.back", "subtract", "system.ping", "system.describe"} <= set(methods)
    assert client.call("echo.back", ["hi"]) == "hi"
    described = client.call("system.describe", {"method": "subtract"})
    assert [p["name"] for p in described["params"]] == ["minuend", "subtrahend"]
    assert described["params"][0]["type"] == "int"
    with pytest.raises(MethodNotFoundError):
        client.call("echo.not_public")
    log = served.log("rpc")
    assert "plugin broken-import" in log and "failed to load; skipped" in log
    assert "plugin not-a-namespace" in log
    assert "Traceback" in log  # the traceback goes to the log, never to the client


def test_system_describe_documents_every_method(served: Orchestrator) -> None:
    client = RpcClient(served.locations.rpc_endpoint)
    every = client.call("system.describe")
    names = [d["name"] for d in every]
    assert names == client.call("system.list_methods")
    for description in every:
        assert description["doc"], f"{description['name']} has no doc"
        assert all({"name", "type", "required"} <= set(p) for p in description["params"])
