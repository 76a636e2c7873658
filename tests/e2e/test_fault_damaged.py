"""Issue 4, fault test 7: a damaged database is refused, the newest good backup is named."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.rpc.client import RpcClient
from tests.support.badinput import assert_refused, db_fingerprint, write_private
from tests.support.faults import integrity
from tests.support.orchestrator import Orchestrator

pytestmark = pytest.mark.e2e
USERS = 120


def _page_size(db: Path) -> int:
    raw = int.from_bytes(db.read_bytes()[16:18], "big")
    return 65536 if raw == 1 else raw


def _not_a_database(db: Path) -> None:
    db.write_bytes(b"these bytes were never a database\n" * 200)


def _truncated(db: Path) -> None:
    size = db.stat().st_size
    os.truncate(db, size // 2)


def _flipped_bytes(db: Path) -> None:
    """Flip the b-tree header of every page after the first (as a bad disk sector would)."""
    page = _page_size(db)
    data = bytearray(db.read_bytes())
    for offset in range(page, len(data), page):
        for i in range(offset, offset + 12):
            data[i] ^= 0xFF
    db.write_bytes(bytes(data))


DAMAGE: dict[str, Callable[[Path], None]] = {
    "not-a-database": _not_a_database,
    "truncated": _truncated,
    "flipped-bytes": _flipped_bytes,
}


def _seed_with_backups(orch: Orchestrator) -> Path:
    """Users and two good backups (plus a broken newer one); returns the newest good one."""
    orch.start()
    client = RpcClient(orch.locations.rpc_endpoint, timeout=10)
    try:
        for i in range(USERS):
            client.call("user.add", {"username": f"user{i}", "email": f"user{i}@example.com"})
        first = orch.run("backup", "--json")
        assert first.returncode == 0, first.stderr
        second = orch.run("backup", "--json")
        assert second.returncode == 0, second.stderr
    finally:
        client.close()
    orch.stop()
    newest_good = Path(second.json()["path"])
    # A newer file in the backups folder that is not a good backup must be passed over.
    bad = newest_good.with_name("nua-29991231T235959Z.db")
    write_private(bad, b"not a backup\n" * 100)
    return newest_good


@pytest.mark.parametrize("damage", DAMAGE)
@pytest.mark.timeout(120)
def test_a_damaged_database_is_refused_naming_the_newest_good_backup(
    orch: Orchestrator, damage: str
) -> None:
    newest_good = _seed_with_backups(orch)
    db = orch.locations.database
    DAMAGE[damage](db)
    damaged_copy = orch.home / "damaged-copy"
    shutil.copyfile(db, damaged_copy)
    before = db_fingerprint(db)

    refused = orch.run("start")

    line = assert_refused(orch, refused, f"database {db}", "nothing was changed")
    assert f"the newest good backup is {newest_good}" in line, line
    assert f"nua-orchestrator restore {newest_good}" in line
    assert db_fingerprint(db) == before
    assert db.read_bytes() == damaged_copy.read_bytes()
    # Refused again, still untouched: a second attempt never "repairs" it either.
    assert orch.run("start").returncode == 1
    assert db.read_bytes() == damaged_copy.read_bytes()

    # The named backup brings the orchestrator back, the damaged file kept aside.
    restored = orch.run("restore", str(newest_good), "--json")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    report = restored.json()
    assert Path(report["replaced"]).read_bytes() == damaged_copy.read_bytes()
    assert report["was_running"] is False and report["started"] is False
    orch.start()
    assert orch.status().returncode == 0
    client = RpcClient(orch.locations.rpc_endpoint, timeout=10)
    try:
        assert client.call("user.count") == USERS
    finally:
        client.close()
    assert integrity(db) == ["ok"]


def test_without_a_good_backup_the_refusal_says_so(orch: Orchestrator) -> None:
    orch.start()
    orch.stop()
    db = orch.locations.database
    _truncated(db)
    before = db_fingerprint(db)

    refused = orch.run("start")

    line = assert_refused(orch, refused, f"database {db}")
    assert f"no good backup in {orch.locations.data / 'backups'}" in line
    assert db_fingerprint(db) == before
