"""The client module against a scripted ZeroMQ peer: deadlines, retries, answers, errors.

The peer is a real ROUTER socket on a real ipc endpoint, answering as the
test says (late, never, with `"id": null`, or going away with the call):
what the worker does is covered end to end in tests/e2e/test_rpc_client.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from orchestrator.rpc.client import (
    EncodingError,
    InternalError,
    InvalidParamsError,
    InvalidRequestError,
    NoAnswerError,
    NotFoundError,
    NotRunningError,
    ParseError,
    RpcClient,
    _decode,
    new_idempotency_key,
)

Handler = Callable[[dict[str, Any]], Any]


class Peer:
    """A ROUTER socket on `endpoint` run by a thread; `handler` makes each reply (None: none)."""

    def __init__(self, endpoint: str, handler: Handler) -> None:
        self.endpoint = endpoint
        self.handler = handler
        self.received: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._bound = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        assert self._bound.wait(5), "the peer did not bind"

    def _serve(self) -> None:
        sock = zmq.Context.instance().socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.bind(self.endpoint)
        self._bound.set()
        try:
            while not self._stop.is_set():
                if not sock.poll(20):
                    continue
                *envelope, payload = sock.recv_multipart()
                request = json.loads(payload)
                self.received.append(request)
                reply = self.handler(request)
                if reply is not None:
                    sock.send_multipart([*envelope, json.dumps(reply).encode()])
        finally:
            sock.close(linger=0)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        assert not self._thread.is_alive()


@pytest.fixture
def endpoint(short_home: Path) -> str:
    return f"ipc://{short_home}/rpc.sock"


@pytest.fixture
def peers() -> Iterator[list[Peer]]:
    made: list[Peer] = []
    yield made
    for peer in made:
        peer.close()


def serve(peers: list[Peer], endpoint: str, handler: Handler) -> Peer:
    peer = Peer(endpoint, handler)
    peers.append(peer)
    return peer


def result(value: Any) -> Handler:
    return lambda request: {"jsonrpc": "2.0", "result": value, "id": request["id"]}


def test_a_call_returns_the_result_and_sends_a_key_with_named_params(
    peers: list[Peer], endpoint: str
) -> None:
    peer = serve(peers, endpoint, result("done"))
    with RpcClient(endpoint, timeout=5) as client:
        assert client.call("user.add", {"username": "a"}) == "done"
        assert client.call("system.ping") == "done"
        assert client.call("user.get", ["a"]) == "done"
    named, bare, positional = peer.received
    assert re.fullmatch("[0-9a-f]{32}", named["params"]["idempotency_key"])
    assert "params" not in bare
    assert positional["params"] == ["a"]


@pytest.mark.parametrize(
    ("code", "error_class"),
    [
        (-32700, ParseError),
        (-32600, InvalidRequestError),
        (-32602, InvalidParamsError),
        (-32603, InternalError),
        (-32001, NotFoundError),
    ],
)
def test_errors_are_typed_even_when_the_worker_could_not_read_the_id(
    peers: list[Peer], endpoint: str, code: int, error_class: type[Exception]
) -> None:
    # A message too large or not JSON is answered with "id": null: that answer is ours.
    serve(
        peers,
        endpoint,
        lambda _req: {"jsonrpc": "2.0", "error": {"code": code, "message": "m"}, "id": None},
    )
    began = time.monotonic()
    with RpcClient(endpoint, timeout=5) as client, pytest.raises(error_class) as raised:
        client.call("system.ping")
    assert time.monotonic() - began < 1.0, "the answer was not taken at once"
    assert raised.value.code == code  # type: ignore[attr-defined]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), {1, 2}])
def test_params_that_are_not_json_are_refused_before_anything_is_sent(
    peers: list[Peer], endpoint: str, value: Any
) -> None:
    peer = serve(peers, endpoint, result("done"))
    with RpcClient(endpoint, timeout=5) as client, pytest.raises(EncodingError) as raised:
        client.call("echo.back", [value])
    assert "cannot be sent as JSON" in str(raised.value)
    assert peer.received == []


def test_a_slow_answer_within_the_deadline_is_waited_for_not_sent_again(
    peers: list[Peer], endpoint: str
) -> None:
    # The worker holds the connection: a busy worker is not a dead one.
    def slow(request: dict[str, Any]) -> dict[str, Any]:
        time.sleep(2.0)
        return {"jsonrpc": "2.0", "result": "late but here", "id": request["id"]}

    peer = serve(peers, endpoint, slow)
    with RpcClient(endpoint, timeout=5, retries=2) as client:
        assert client.call("user.add", {"username": "slow"}) == "late but here"
    assert len(peer.received) == 1


def test_a_worker_that_takes_the_call_and_never_answers_is_busy_or_hung(
    peers: list[Peer], endpoint: str
) -> None:
    peer = serve(peers, endpoint, lambda _req: None)
    began = time.monotonic()
    with RpcClient(endpoint, timeout=1.0, retries=2) as client, pytest.raises(NoAnswerError) as e:
        client.call("user.add", {"username": "x", "idempotency_key": "k-9"})
    took = time.monotonic() - began
    assert 0.9 <= took < 1.5, took
    assert len(peer.received) == 1, "a call the worker holds is not sent again"
    assert "busy or hung" in str(e.value)
    assert "k-9" in str(e.value)
    assert isinstance(e.value, NotRunningError)  # nua: exit 3, not answering


def test_a_call_lost_with_its_worker_is_sent_again_with_the_same_key(
    peers: list[Peer], endpoint: str
) -> None:
    first = serve(peers, endpoint, lambda _req: None)
    outcome: dict[str, Any] = {}

    def call() -> None:
        with RpcClient(endpoint, timeout=10, retries=2) as client:
            outcome["result"] = client.call("user.add", {"username": "z"})

    caller = threading.Thread(target=call)
    caller.start()
    deadline = time.monotonic() + 5
    while not first.received and time.monotonic() < deadline:
        time.sleep(0.01)
    first.close()  # the worker dies with the call
    second = serve(peers, endpoint, result("applied once"))
    caller.join(10)
    assert outcome == {"result": "applied once"}
    (lost,) = first.received
    (again,) = second.received
    assert again["params"]["idempotency_key"] == lost["params"]["idempotency_key"]
    assert again["id"] == lost["id"]


def test_a_positional_call_lost_with_its_worker_is_not_sent_again(
    peers: list[Peer], endpoint: str
) -> None:
    first = serve(peers, endpoint, lambda _req: None)
    outcome: dict[str, Any] = {}

    def call() -> None:
        try:
            with RpcClient(endpoint, timeout=5, retries=2) as client:
                outcome["result"] = client.call("user.delete", ["z"])
        except NotRunningError as exc:
            outcome["error"] = exc

    caller = threading.Thread(target=call)
    caller.start()
    deadline = time.monotonic() + 5
    while not first.received and time.monotonic() < deadline:
        time.sleep(0.01)
    first.close()
    second = serve(peers, endpoint, result("applied twice?"))
    caller.join(10)
    error = outcome["error"]
    assert error.lost
    assert "may or may not have been applied" in str(error)
    assert second.received == []


def test_nothing_listening_is_not_running_within_the_deadline(endpoint: str) -> None:
    began = time.monotonic()
    with RpcClient(endpoint, timeout=0.5, retries=2) as client, pytest.raises(NotRunningError) as e:
        client.call("system.ping")
    assert 0.45 <= time.monotonic() - began < 1.0
    assert not isinstance(e.value, NoAnswerError)
    assert endpoint in str(e.value)
    assert "nua-orchestrator start" in str(e.value)


def test_the_client_module_imports_nothing_the_worker_alone_needs() -> None:
    probe = (
        "import sys, orchestrator.rpc.client\n"
        "heavy = [m for m in ('sqlalchemy', 'alembic', 'argon2', 'tinyrpc', 'cleo')"
        " if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=30
    )
    assert out.stdout.strip() == "[]"


def test_the_connection_monitor_does_not_depend_on_file_descriptor_numbers(
    peers: list[Peer], endpoint: str
) -> None:
    """pyzmq names a monitor after its socket's file descriptor by default; a closed
    socket's monitor can keep that name a while, and the next socket on the same
    descriptor then cannot monitor ("Address already in use")."""
    serve(peers, endpoint, result("pong"))
    # One socket holds every name the default scheme could pick in this process.
    squatter = zmq.Context.instance().socket(zmq.PAIR)
    for fd in range(4096):
        squatter.bind(f"inproc://monitor.s-{fd}")
    try:
        with RpcClient(endpoint, timeout=5) as client:
            assert client.call("system.ping") == "pong"
    finally:
        squatter.close(linger=0)


def test_idempotency_keys_are_unique_and_ordered_by_time() -> None:
    # Time-ordered keys land at the end of the worker's key index (one page per commit).
    keys = [new_idempotency_key() for _ in range(2000)]
    assert len(set(keys)) == len(keys)
    stamps = [int(key[:12], 16) for key in keys]
    assert stamps == sorted(stamps)
    now_ms = time.time_ns() // 1_000_000
    assert now_ms - 60_000 < stamps[-1] <= now_ms
    assert all(re.fullmatch("[0-9a-f]{32}", key) for key in keys)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'{"id":"1-1","result":1}', {"id": "1-1", "result": 1}),
        (b' \n{"id":"1-1"}\t ', {"id": "1-1"}),  # whitespace around: the decoder's path
        (b'{"id":"1-1"} {"id":"1-2"}', None),  # trailing data
        (b'{"id":"1-1"', None),  # cut short
        (b'[{"id":"1-1"}]', None),  # not an object
        (b"\xff\xfe", None),  # not UTF-8
        (b"", None),
    ],
)
def test_a_reply_is_read_only_when_it_is_one_json_object(data: bytes, expected: Any) -> None:
    assert _decode(data) == expected
