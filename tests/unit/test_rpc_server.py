"""orchestrator/rpc/server.py: answers finished on other threads all reach their clients.

The serve loop runs in a thread of the test, on a real ipc socket; a DEALER
client sends calls whose answers many threads complete at once, as a group
commit does. One wake-up byte serves every answer queued before the loop
wakes, so a lost wake-up would leave answers waiting forever: here, past the
deadline.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import zmq

from orchestrator.rpc.protocol import Processor
from orchestrator.rpc.registry import Namespace, Registry, public
from orchestrator.rpc.server import Server
from tests.support.polling import wait_for

CALLS = 400
FINISHERS = 16
ROUNDS = 15


class LaterMethods(Namespace):
    """`later` answers with what the test sets on the Future it keeps."""

    namespace = "demo"

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self.lock = threading.Lock()
        self.pending: list[Future[Any]] = []

    @public(inline=True)
    def later(self) -> Future[Any]:
        future: Future[Any] = Future()
        with self.lock:
            self.pending.append(future)
        return future

    def take(self) -> list[Future[Any]]:
        with self.lock:
            taken, self.pending = self.pending, []
        return taken


@dataclass
class Serving:
    server: Server
    loop: threading.Thread
    methods: LaterMethods
    client: zmq.Socket  # type: ignore[type-arg]

    def stop(self) -> None:
        self.server.stop(signal.SIGTERM, None)
        self.loop.join(timeout=10)
        assert not self.loop.is_alive(), "the serve loop did not stop"


@pytest.fixture
def serving(tmp_path: Path):  # type: ignore[no-untyped-def]
    registry = Registry()
    methods = LaterMethods(None)
    registry.add_namespace(methods)
    endpoint = f"ipc://{tmp_path}/rpc.sock"
    server = Server(endpoint)
    assert server.bind()
    pool = ThreadPoolExecutor(2)
    loop = threading.Thread(target=server.serve, args=(Processor(registry), pool, 2))
    loop.start()
    context = zmq.Context()
    client = context.socket(zmq.DEALER)
    client.setsockopt(zmq.LINGER, 0)
    client.connect(endpoint)
    running = Serving(server, loop, methods, client)
    try:
        yield running
    finally:
        client.close()
        context.term()
        if loop.is_alive():
            running.stop()


def _finish_all_at_once(futures: list[Future[Any]]) -> None:
    """Complete the futures from FINISHERS threads released together."""
    start = threading.Barrier(FINISHERS)

    def finish(share: list[Future[Any]]) -> None:
        start.wait()
        for future in share:
            future.set_result(id(future))

    threads = [
        threading.Thread(target=finish, args=(futures[i::FINISHERS],)) for i in range(FINISHERS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _send_later_calls(client: zmq.Socket, ids: range) -> None:
    for rid in ids:
        client.send(json.dumps({"jsonrpc": "2.0", "method": "demo.later", "id": rid}).encode())


def _take(methods: LaterMethods, count: int) -> list[Future[Any]]:
    """The futures of `count` calls, once the loop has started them all."""
    taken: list[Future[Any]] = []
    wait_for(lambda: taken.extend(methods.take()) or len(taken) == count, what=f"{count} calls")
    return taken


def _answers(client: zmq.Socket, count: int, deadline_s: float = 10.0) -> dict[int, Any]:
    answers: dict[int, Any] = {}
    deadline = time.monotonic() + deadline_s
    while len(answers) < count:
        left_ms = int((deadline - time.monotonic()) * 1000)
        if left_ms <= 0 or not client.poll(left_ms):
            break
        reply = json.loads(client.recv())
        answers[reply["id"]] = reply
    return answers


@pytest.mark.timeout(120)
def test_answers_completed_together_on_many_threads_all_arrive(serving: Serving) -> None:
    methods, client = serving.methods, serving.client
    for round_ in range(ROUNDS):
        ids = range(round_ * CALLS, (round_ + 1) * CALLS)
        _send_later_calls(client, ids)
        taken = _take(methods, CALLS)
        _finish_all_at_once(taken)
        answers = _answers(client, CALLS)
        missing = sorted(set(ids) - answers.keys())
        assert not missing, f"round {round_}: {len(missing)} never answered, e.g. {missing[:5]}"
        assert {answer["result"] for answer in answers.values()} == {id(f) for f in taken}


@pytest.mark.timeout(60)
def test_an_answer_finished_long_after_the_others_still_wakes_the_loop(serving: Serving) -> None:
    methods, client = serving.methods, serving.client
    _send_later_calls(client, range(3))
    for n, future in enumerate(_take(methods, 3)):
        future.set_result(n)
        # Each answer alone, after the loop has taken the one before.
        assert _answers(client, 1), f"answer {n} was not sent"


@pytest.mark.timeout(60)
def test_at_stop_calls_in_flight_are_answered_first(serving: Serving) -> None:
    _send_later_calls(serving.client, range(2))
    first, second = _take(serving.methods, 2)
    first.set_result("before")
    assert _answers(serving.client, 1)[0]["result"] == "before"
    serving.server.stop(signal.SIGTERM, None)
    second.set_result("during the stop")
    serving.loop.join(timeout=10)
    assert not serving.loop.is_alive()
    assert _answers(serving.client, 1)[1]["result"] == "during the stop"


@pytest.mark.timeout(60)
def test_a_call_never_answered_holds_the_stop_no_longer_than_its_budget(
    serving: Serving, caplog: pytest.LogCaptureFixture
) -> None:
    serving.server.stop_budget = 0.5
    _send_later_calls(serving.client, range(1))
    _take(serving.methods, 1)  # and never finished
    began = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="nua.rpc"):
        serving.stop()
    # Well under the default 30 s and the 10 s join above; 0.5 s plus a poll.
    assert time.monotonic() - began < 5
    assert "stopping with 1 call(s) unanswered 0.5s after the stop signal" in caplog.text
