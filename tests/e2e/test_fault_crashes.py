"""Issue 4, fault tests 1-4: kills and stops of the worker and supervisord around writes."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.host.processes import ProcessId
from orchestrator.rpc.client import NotRunningError, RpcClient
from tests.support.faults import Call, faulty_orchestrator, integrity, usernames, write_lock_held
from tests.support.orchestrator import Orchestrator
from tests.support.polling import wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def faulty(short_home: Path) -> Iterator[Orchestrator]:
    orch = faulty_orchestrator(short_home, NUA_RPC_STOP_TIMEOUT="10")
    yield orch
    leaked = orch.kill_everything()
    assert not leaked, f"processes leaked from {short_home}: {leaked}"


def _worker(orch: Orchestrator) -> ProcessId:
    ident = ProcessId.of(orch.program("nua:rpc").pid)
    assert ident is not None
    return ident


def _new_worker_answers(orch: Orchestrator, old: ProcessId) -> bool:
    info = orch.programs().get("nua:rpc")
    if info is None or info.pid in (0, old.pid) or info.state != "RUNNING":
        return False
    try:
        return orch.ping(timeout=1.0) == "pong"
    except NotRunningError:
        return False


def test_kill_9_between_begin_and_commit_leaves_no_partial_row(faulty: Orchestrator) -> None:
    faulty.start()
    db = faulty.locations.database
    hold = faulty.home / "hold"
    hold.touch()
    worker = _worker(faulty)
    client = RpcClient(faulty.locations.rpc_endpoint, timeout=3.0, retries=0)
    call = Call(
        lambda: client.call(
            "fault.hold_write", {"username": "partial", "seconds": 60, "hold": str(hold)}
        )
    )
    call.start()
    wait_for(lambda: write_lock_held(db), timeout=10, what="the write to be in its transaction")
    os.kill(worker.pid, signal.SIGKILL)
    call.join(10)
    hold.unlink()

    assert isinstance(call.error, NotRunningError), call.error
    assert call.took < 3.0 + 0.5, f"no answer took {call.took:.2f}s, deadline 3s"
    assert "may or may not have been applied" in str(call.error)
    assert "idempotency key" in str(call.error)
    wait_for(lambda: _new_worker_answers(faulty, worker), timeout=20, what="a new worker")
    assert integrity(db) == ["ok"]
    assert "partial" not in usernames(db)
    assert RpcClient(faulty.locations.rpc_endpoint, timeout=5).call("user.count") == 0


def test_kill_9_after_commit_before_reply_then_retry_is_applied_once(
    faulty: Orchestrator,
) -> None:
    faulty.start()
    db = faulty.locations.database
    hold = faulty.home / "hold"
    hold.touch()
    worker = _worker(faulty)
    params = {"username": "once", "seconds": 60, "hold": str(hold), "idempotency_key": "k-1"}
    client = RpcClient(faulty.locations.rpc_endpoint, timeout=3.0, retries=0)
    call = Call(lambda: client.call("fault.answer_late", params))
    call.start()
    wait_for(lambda: "once" in usernames(db), timeout=10, what="the write to commit")
    os.kill(worker.pid, signal.SIGKILL)
    call.join(10)
    hold.unlink()  # the retry must not wait: it is answered from the stored answer

    assert isinstance(call.error, NotRunningError), call.error
    assert call.error.idempotency_key == "k-1"
    wait_for(lambda: _new_worker_answers(faulty, worker), timeout=20, what="a new worker")
    retry = RpcClient(faulty.locations.rpc_endpoint, timeout=5.0, retries=0)
    assert retry.call("fault.answer_late", params) == "once"
    assert retry.call("fault.answer_late", params) == "once"
    assert usernames(db).count("once") == 1
    assert retry.call("user.count") == 1
    assert integrity(db) == ["ok"]


def test_a_call_lost_with_its_worker_is_retried_by_the_client_and_applied_once(
    faulty: Orchestrator,
) -> None:
    # Lazy Pirate with the key the client made itself: the caller just gets its answer.
    faulty.start()
    db = faulty.locations.database
    hold = faulty.home / "hold"
    hold.touch()
    worker = _worker(faulty)
    client = RpcClient(faulty.locations.rpc_endpoint, timeout=30.0, retries=2)
    params = {"username": "retried", "seconds": 60, "hold": str(hold)}
    call = Call(lambda: client.call("fault.answer_late", params))
    call.start()
    wait_for(lambda: "retried" in usernames(db), timeout=10, what="the write to commit")
    os.kill(worker.pid, signal.SIGKILL)
    hold.unlink()  # the retry is answered from the stored answer, not by running again
    call.join(30)

    assert call.error is None, call.error
    assert call.result == "retried"
    # Sent again once the worker was seen to go away, not after waiting out the deadline.
    assert call.took < 30.0 / 3, f"the retried call took {call.took:.1f}s"
    assert usernames(db).count("retried") == 1
    assert integrity(db) == ["ok"]
    assert _worker(faulty).pid != worker.pid


def test_kill_9_of_supervisord_with_a_call_stuck_in_the_worker(faulty: Orchestrator) -> None:
    faulty.start()
    db = faulty.locations.database
    hold = faulty.home / "hold"
    hold.touch()
    supervisord = ProcessId.of(faulty.supervisord_pid())
    sentinel = ProcessId.of(faulty.program("nua:sentinel").pid)
    worker = _worker(faulty)
    assert supervisord is not None and sentinel is not None
    client = RpcClient(faulty.locations.rpc_endpoint, timeout=3.0, retries=0)
    call = Call(
        lambda: client.call(
            "fault.hold_write", {"username": "stuck", "seconds": 120, "hold": str(hold)}
        )
    )
    call.start()
    wait_for(lambda: write_lock_held(db), timeout=10, what="the write to be in its transaction")
    try:
        os.kill(supervisord.pid, signal.SIGKILL)
        wait_for(lambda: not supervisord.is_alive(), timeout=10, what="supervisord to die")
        wait_for(lambda: not sentinel.is_alive(), timeout=10, what="the sentinel to exit")
        # The worker got SIGTERM too, but waits for its stuck call: a program left behind.
        assert worker.is_alive()

        status = faulty.status()
        assert status.returncode == 3
        assert f"pid {worker.pid}" in status.json()["leftovers"]
        human = faulty.run("status")
        assert human.returncode == 3
        assert "not running" in human.stdout + human.stderr
        assert "orphaned program" in human.stdout + human.stderr

        began = time.monotonic()
        ping = faulty.run("ping", "--timeout", "1", cli="nua")
        took = time.monotonic() - began
        assert ping.returncode == 3, ping.stdout + ping.stderr
        assert faulty.locations.rpc_endpoint in ping.stderr
        assert took < 1.0 + 3.0, f"nua ping took {took:.2f}s with --timeout 1"
        call.join(10)
        assert isinstance(call.error, NotRunningError), call.error

        started = faulty.start()
        assert "cleaned what a previous run left" in started.stderr
        assert not worker.is_alive()
        workers = [p for p in faulty.processes() if "orchestrator.rpc.worker" in p.cmdline()]
        assert len(workers) == 1
        assert faulty.ping() == "pong"
        assert "stuck" not in usernames(db)
        assert integrity(db) == ["ok"]
    finally:
        hold.unlink(missing_ok=True)


def test_sigterm_with_a_write_in_flight_commits_and_exits_0(faulty: Orchestrator) -> None:
    faulty.start()
    db = faulty.locations.database
    wal = db.with_name(db.name + "-wal")
    client = RpcClient(faulty.locations.rpc_endpoint, timeout=15.0, retries=0)
    call = Call(lambda: client.call("fault.hold_write", {"username": "inflight", "seconds": 1.0}))
    call.start()
    wait_for(lambda: write_lock_held(db), timeout=10, what="the write to be in its transaction")
    began = time.monotonic()
    stopped = faulty.supervisorctl("stop", "nua:rpc")
    took = time.monotonic() - began
    call.join(10)

    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert took < 10, f"stopping took {took:.1f}s, beyond the stop timeout"
    # In flight when SIGTERM came: finished, committed, answered.
    assert call.error is None, call.error
    assert call.result == "inflight"
    assert usernames(db) == ["inflight"]
    supervisord_log = faulty.log("supervisord")
    assert "stopped: rpc (exit status 0)" in supervisord_log, supervisord_log[-2000:]
    # The last connection closed: the WAL was checkpointed into the database file.
    assert not wal.exists() or wal.stat().st_size == 0
    assert integrity(db) == ["ok"]


def _hold_a_write(orch: Orchestrator, hold: Path) -> Call:
    """A user.add of "held" in its transaction, holding the writer while `hold` exists."""
    hold.touch()
    holder = RpcClient(orch.locations.rpc_endpoint, timeout=30.0, retries=0)
    held = Call(
        lambda: holder.call(
            "fault.hold_write", {"username": "held", "seconds": 30, "hold": str(hold)}
        )
    )
    held.start()
    wait_for(
        lambda: write_lock_held(orch.locations.database),
        timeout=10,
        what="the write to be in its transaction",
    )
    return held


def test_sigterm_answers_a_write_queued_behind_the_one_in_flight(faulty: Orchestrator) -> None:
    # user.add runs on the loop and answers when its commit is done, holding no
    # thread: at SIGTERM the worker must still wait for that commit and answer it.
    faulty.start()
    db = faulty.locations.database
    hold = faulty.home / "hold"
    held = _hold_a_write(faulty, hold)
    endpoint = faulty.locations.rpc_endpoint
    second = RpcClient(endpoint, timeout=30.0, retries=0)
    queued = Call(lambda: second.call("user.add", {"username": "queued", "email": "q@example.com"}))
    queued.start()
    probe = RpcClient(endpoint, timeout=5.0)
    wait_for(lambda: probe.call("fault.queued_writes") == 1, timeout=10, what="user.add to queue")
    probe.close()
    stop = Call(lambda: faulty.supervisorctl("stop", "nua:rpc"))
    stop.start()
    wait_for(
        lambda: "received SIGTERM" in faulty.log("rpc"),
        timeout=10,
        what="the worker to get SIGTERM",
    )
    hold.unlink()
    stop.join(20)
    held.join(10)
    queued.join(10)

    assert stop.error is None and stop.result.returncode == 0, stop.error or stop.result.stdout
    assert held.error is None and held.result == "held", held.error
    assert queued.error is None, queued.error
    assert queued.result["username"] == "queued"
    assert usernames(db) == ["held", "queued"]
    assert "stopped: rpc (exit status 0)" in faulty.log("supervisord")
    assert "unanswered" not in faulty.log("rpc")
    assert integrity(db) == ["ok"]


def test_adds_waiting_for_their_commit_hold_no_thread(short_home: Path) -> None:
    # Two threads: one is taken by a held write. Twelve user.add calls still all
    # queue for the next group commit (they wait without a thread), and the loop
    # still answers ping meanwhile.
    orch = faulty_orchestrator(short_home, NUA_RPC_THREADS="2")
    hold = orch.home / "hold"
    try:
        orch.start()
        held = _hold_a_write(orch, hold)
        endpoint = orch.locations.rpc_endpoint
        adds = [
            Call(
                lambda n=n: RpcClient(endpoint, timeout=30.0, retries=0).call(
                    "user.add", {"username": f"user{n}", "email": f"u{n}@example.com"}
                )
            )
            for n in range(12)
        ]
        for add in adds:
            add.start()
        probe = RpcClient(endpoint, timeout=5.0)
        wait_for(
            lambda: probe.call("fault.queued_writes") == 12, timeout=10, what="12 adds to queue"
        )
        assert probe.call("system.ping") == "pong"
        assert all(add.is_alive() for add in adds)  # none answered before its commit
        hold.unlink()
        for add in [held, *adds]:
            add.join(15)
            assert add.error is None, add.error
        assert sorted(a.result["username"] for a in adds) == sorted(f"user{n}" for n in range(12))
        assert sorted(usernames(orch.locations.database)) == sorted(
            ["held", *(f"user{n}" for n in range(12))]
        )
        probe.close()
    finally:
        hold.unlink(missing_ok=True)
        leaked = orch.kill_everything()
        assert not leaked, f"processes leaked from {short_home}: {leaked}"
