"""Issue 4, fault test 5: the worker, two CLI clients and a third process writing at once."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing

import pytest

from orchestrator.rpc.client import ClientError, RpcClient
from tests.support.faults import integrity, usernames
from tests.support.orchestrator import Orchestrator

pytestmark = pytest.mark.e2e
SECONDS = float(os.environ.get("NUA_CONTENTION_SECONDS", "30"))

# The third writer: another process holding the database's write lock again and again,
# as a script or a maintenance job would. It prints the sequence number of each commit.
DIRECT_WRITER = """
import sqlite3, sys, time
db, seconds = sys.argv[1], float(sys.argv[2])
conn = sqlite3.connect(db, timeout=30, isolation_level=None)
conn.execute("CREATE TABLE IF NOT EXISTS hammer (seq INTEGER PRIMARY KEY)")
end, seq = time.monotonic() + seconds, 0
while time.monotonic() < end:
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO hammer (seq) VALUES (?)", (seq,))
    time.sleep(0.01)  # hold the lock a while, as a real transaction does
    conn.execute("COMMIT")
    print(seq, flush=True)
    seq += 1
    time.sleep(0.01)
"""


class Operations(threading.Thread):
    """One client's stream of adds and deletes; records what was acknowledged, in order."""

    def __init__(self, name: str, call: object) -> None:
        super().__init__(daemon=True)
        self.prefix = name
        self.call = call
        self.acked: list[tuple[str, str]] = []
        self.failures: list[str] = []
        self.deadline = time.monotonic() + SECONDS

    def run(self) -> None:
        i = 0
        while time.monotonic() < self.deadline:
            name = f"{self.prefix}{i}"
            self._do("add", name)
            if i % 3 == 2:  # delete one user in three, so that the state is not just a log
                self._do("delete", f"{self.prefix}{i - 1}")
            i += 1

    def _do(self, op: str, name: str) -> None:
        failure = self.call(op, name)  # type: ignore[operator]
        if failure is None:
            self.acked.append((op, name))
        else:
            self.failures.append(f"{op} {name}: {failure}")


def _cli_op(orch: Orchestrator) -> object:
    def call(op: str, name: str) -> str | None:
        args = ["user", op, name] + (["--email", f"{name}@example.com"] if op == "add" else [])
        done = orch.run(*args, "--json", "--timeout", "30", cli="nua")
        return None if done.returncode == 0 else f"exit {done.returncode}: {done.stderr.strip()}"

    return call


def _rpc_op(client: RpcClient) -> object:
    def call(op: str, name: str) -> str | None:
        try:
            if op == "add":
                client.call("user.add", {"username": name, "email": f"{name}@example.com"})
            else:
                client.call("user.delete", {"username": name})
        except ClientError as exc:
            return str(exc)
        return None

    return call


@pytest.mark.timeout(SECONDS + 120)
def test_concurrent_writers_never_see_a_lock_and_nothing_is_lost(orch: Orchestrator) -> None:
    orch.start()
    db = orch.locations.database
    direct = subprocess.Popen(
        [sys.executable, "-c", DIRECT_WRITER, str(db), str(SECONDS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    client = RpcClient(orch.locations.rpc_endpoint, timeout=30, retries=0)
    streams = [
        Operations("clia", _cli_op(orch)),
        Operations("clib", _cli_op(orch)),
        Operations("rpc", _rpc_op(client)),
    ]
    for stream in streams:
        stream.start()
    try:
        out, err = direct.communicate(timeout=SECONDS + 60)
    finally:
        direct.kill()
    for stream in streams:
        stream.join(SECONDS + 60)
        assert not stream.is_alive()
    client.close()

    failures = [f for s in streams for f in s.failures]
    assert failures == [], failures[:5]
    assert direct.returncode == 0, err
    assert "locked" not in err
    direct_acked = [int(line) for line in out.split()]

    # The acknowledged operations of each client, applied one by one.
    expected: set[str] = set()
    for stream in streams:
        for op, name in stream.acked:
            if op == "add":
                expected.add(name)
            else:
                expected.discard(name)
    cli_ops = sum(len(s.acked) for s in streams[:2])
    rpc_ops = len(streams[2].acked)
    print(
        f"\ncontention for {SECONDS:g}s: {cli_ops} CLI operations, {rpc_ops} client "
        f"operations, {len(direct_acked)} direct commits; busy retries in the worker: "
        f"{orch.log('rpc').count('database busy; retrying')}"
    )
    assert cli_ops >= 20 and rpc_ops >= 100 and len(direct_acked) >= 100
    orch.stop()
    assert integrity(db) == ["ok"]
    found = usernames(db)
    assert len(found) == len(set(found))
    assert set(found) == expected
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        rows = [r[0] for r in conn.execute("SELECT seq FROM hammer ORDER BY seq")]
    assert rows == direct_acked
    assert "locked" not in json.dumps([s.failures for s in streams])
    assert "database is locked" not in orch.log("rpc")
