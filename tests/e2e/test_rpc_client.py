"""The client module against a real worker: typed errors, deadlines, restarts, idempotency."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from orchestrator.rpc.client import (
    AlreadyExistsError,
    ConflictError,
    InvalidArgumentError,
    InvalidParamsError,
    NotFoundError,
    NotRunningError,
    RpcClient,
)
from tests.support.orchestrator import Orchestrator
from tests.support.polling import wait_for

pytestmark = pytest.mark.e2e


def test_users_through_the_client(orch: Orchestrator) -> None:
    orch.start()
    client = RpcClient(orch.locations.rpc_endpoint)
    alice = client.call("user.add", {"username": "alice", "email": "Alice@Example.com"})
    assert alice["username"] == "alice" and alice["email"] == "alice@example.com"
    assert alice["role"] == "user" and alice["has_password"] is False
    assert "password_hash" not in alice
    client.call("user.add", {"username": "bob", "email": "bob@example.com", "role": "admin",
                             "password": "correct horse"})  # fmt: skip
    assert client.call("user.count") == 2
    page = client.call("user.list", {"order_by": "username", "limit": 1})
    assert [u["username"] for u in page["users"]] == ["alice"] and page["next_offset"] == 1
    assert client.call("user.check_password", {"username": "bob", "password": "correct horse"})[
        "valid"
    ]
    updated = client.call("user.update", {"username": "alice", "role": "admin"})
    assert updated["role"] == "admin"
    assert client.call("user.delete", {"username": "alice"}) == {"deleted": "alice"}

    with pytest.raises(NotFoundError) as missing:
        client.call("user.get", {"username": "alice"})
    assert missing.value.name == "not_found" and missing.value.field == "username"
    with pytest.raises(AlreadyExistsError) as taken:
        client.call("user.add", {"username": "carol", "email": "BOB@example.com"})
    assert taken.value.field == "email" and taken.value.code == -32002
    with pytest.raises(InvalidArgumentError) as bad:
        client.call("user.add", {"username": "dave", "email": "not-an-email"})
    assert bad.value.field == "email"
    with pytest.raises(InvalidParamsError):
        client.call("user.add", {"nickname": "erin"})
    assert client.call("user.count") == 1


def test_settings_through_the_client(orch: Orchestrator) -> None:
    orch.start()
    client = RpcClient(orch.locations.rpc_endpoint)
    before = client.call("settings.get", {"key": "sentinel.failures"})
    assert before["value"] == before["default"] == 3
    assert client.call("settings.set", {"key": "sentinel.failures", "value": 5})["value"] == 5
    with pytest.raises(InvalidArgumentError) as wrong:
        client.call("settings.set", {"key": "sentinel.failures", "value": "five"})
    assert wrong.value.field == "value"
    with pytest.raises(NotFoundError):
        client.call("settings.get", {"key": "no.such"})
    assert client.call("settings.reset", {"key": "sentinel.failures"})["value"] == 3
    # The database is the source of truth at the next start.
    client.call("settings.set", {"key": "programs.start_retries", "value": 8})
    orch.run("restart")
    assert "startretries = 8" in orch.locations.supervisor_conf.read_text()


def test_a_retry_with_the_same_key_is_applied_once(orch: Orchestrator) -> None:
    orch.start()
    client = RpcClient(orch.locations.rpc_endpoint)
    params = {"username": "once", "email": "once@example.com", "idempotency_key": "k-123"}
    first = client.call("user.add", params)
    again = client.call("user.add", params)
    assert again == first
    # The same key with other arguments is another request under a used key: a conflict
    # naming the key (not the first answer, which would hide that nothing was applied).
    with pytest.raises(ConflictError) as reused:
        client.call("user.add", {**params, "username": "twice", "email": "t@example.com"})
    assert reused.value.code == -32004
    assert reused.value.field == "idempotency_key"
    assert "other parameters" in str(reused.value)
    assert client.call("user.count") == 1
    with pytest.raises(NotFoundError):
        client.call("user.get", {"username": "twice"})
    # The same arguments in another order are the same request.
    assert client.call("user.add", dict(reversed(params.items()))) == first
    with pytest.raises(ConflictError) as conflict:
        client.call("user.delete", {"username": "once", "idempotency_key": "k-123"})
    assert conflict.value.field == "idempotency_key"
    assert client.call("user.count") == 1


def test_the_client_gives_up_within_its_deadline_when_nothing_listens(short_home: Path) -> None:
    endpoint = f"ipc://{short_home}/nobody.sock"
    client = RpcClient(endpoint, timeout=0.6, retries=2)
    began = time.monotonic()
    with pytest.raises(NotRunningError) as down:
        client.call("system.ping")
    took = time.monotonic() - began
    assert endpoint in str(down.value)
    assert 0.5 <= took < 1.5, took


def test_the_next_call_succeeds_across_a_worker_restart(orch: Orchestrator) -> None:
    orch.start()
    client = RpcClient(orch.locations.rpc_endpoint, timeout=15, retries=5)
    assert client.call("system.ping") == "pong"
    old = orch.program("nua:rpc").pid
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: orch.program("nua:rpc").pid != old, timeout=15, what="a new worker")
    assert client.call("system.ping") == "pong"
    assert client.call("system.version")["pid"] != old
