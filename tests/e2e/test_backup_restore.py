"""backup, backups, restore and db check against a real, serving orchestrator."""

from __future__ import annotations

import re
import sqlite3
import stat
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest

from orchestrator.rpc.client import NotFoundError, RpcClient
from tests.e2e.test_fault_migrations import HEAD, REVISIONS, assert_rows_kept, build_at, populate
from tests.support.badinput import db_fingerprint, error_line, write_private
from tests.support.lock_race import run_with_rival_start
from tests.support.orchestrator import Orchestrator
from tests.support.polling import wait_for

pytestmark = pytest.mark.e2e


def _usernames(path: Path) -> set[str]:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return {row[0] for row in conn.execute("SELECT username FROM users")}


def _integrity(path: Path) -> list[tuple[str]]:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return conn.execute("PRAGMA integrity_check").fetchall()


def _served_usernames(client: RpcClient) -> set[str]:
    """Every username the orchestrator serves, page by page through user.list."""
    names: list[str] = []
    offset: int | None = 0
    while offset is not None:
        page = client.call("user.list", {"limit": 1000, "offset": offset})
        names += [user["username"] for user in page["users"]]
        offset = page["next_offset"]
    assert len(names) == len(set(names)), "a username is served twice"
    return set(names)


def _add(client: RpcClient, name: str) -> None:
    client.call("user.add", {"username": name, "email": f"{name}@example.com"})


class Writer(threading.Thread):
    """Adds users as fast as the worker acknowledges them, recording when each was."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(daemon=True)
        self.client = RpcClient(endpoint, timeout=5.0, retries=2)
        self.acked: list[tuple[str, float]] = []
        self.errors: list[BaseException] = []
        self.halt = threading.Event()

    def run(self) -> None:
        i = 0
        try:
            while not self.halt.is_set():
                name = f"during{i}"
                _add(self.client, name)
                self.acked.append((name, time.monotonic()))
                i += 1
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            self.client.close()


def test_backup_while_serving_then_restore(orch: Orchestrator) -> None:
    orch.start()
    check = orch.run("db", "check")
    assert check.returncode == 0, check.stdout + check.stderr
    client = RpcClient(orch.locations.rpc_endpoint, timeout=5.0, retries=2)
    before = [f"before{i}" for i in range(20)]
    for name in before:
        _add(client, name)

    writer = Writer(orch.locations.rpc_endpoint)
    writer.start()
    try:
        wait_for(
            lambda: len(writer.acked) >= 20 or writer.errors,
            timeout=10,
            what="20 writes acknowledged before the backup",
            every=0.01,
        )
        assert writer.errors == [] and len(writer.acked) >= 20, writer.errors
        began = time.monotonic()
        made = orch.run("backup", "--json")
        ended = time.monotonic()
    finally:
        writer.halt.set()
        writer.join(timeout=30)
    assert not writer.is_alive()
    assert writer.errors == []
    assert made.returncode == 0, made.stdout + made.stderr
    assert any(began <= t <= ended for _n, t in writer.acked), "no write during the backup"

    result = made.json()
    path = Path(result["path"])
    assert path.parent == orch.locations.data / "backups"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert result["size"] == path.stat().st_size
    assert _integrity(path) == [("ok",)]
    in_backup = _usernames(path)
    acked_before = set(before) | {n for n, t in writer.acked if t < began}
    assert acked_before <= in_backup, sorted(acked_before - in_backup)[:5]
    # and nothing that was never acknowledged (the writer's last call was answered before it
    # stopped, so every committed write is in `acked`).
    invoked = set(before) | {n for n, _t in writer.acked}
    assert in_backup <= invoked, sorted(in_backup - invoked)[:5]

    listed = orch.run("backups", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [b["name"] for b in listed.json()] == [path.name]
    assert listed.json()[0]["schema_revision"] == result["schema_revision"]

    after = [f"after{i}" for i in range(5)]
    for name in after:
        _add(client, name)
    pid = orch.supervisord_pid()

    # A bad file is refused before anything stops: same supervisord, same database.
    bad = orch.home / "bad.db"
    write_private(bad, b"this is not a database\n" * 50)
    fingerprint = db_fingerprint(orch.locations.database)
    refused = orch.run("restore", str(bad))
    assert refused.returncode == 1
    assert "not an SQLite database" in error_line(refused)
    assert orch.supervisord_pid() == pid
    assert orch.status().returncode == 0
    assert db_fingerprint(orch.locations.database) == fingerprint

    restored = orch.run("restore", str(path), "--json")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    report = restored.json()
    assert report["was_running"] is True and report["started"] is True
    replaced = Path(report["replaced"])
    assert replaced.parent == orch.locations.data / "replaced"
    assert stat.S_IMODE(replaced.parent.stat().st_mode) == 0o700
    assert set(after) <= _usernames(replaced)

    assert orch.status().returncode == 0
    assert orch.supervisord_pid() != pid
    fresh = RpcClient(orch.locations.rpc_endpoint, timeout=5.0, retries=2)
    try:
        for name in before:
            assert fresh.call("user.get", [name])["username"] == name
        for name in after:
            with pytest.raises(NotFoundError):
                fresh.call("user.get", [name])
        served = _served_usernames(fresh)
        assert served == in_backup, (sorted(served - in_backup)[:5], sorted(in_backup - served)[:5])
        assert fresh.call("user.count") == len(in_backup)
    finally:
        fresh.close()
        client.close()
    assert orch.run("db", "check").returncode == 0


def test_restore_of_an_older_backup_upgrades_it_and_keeps_every_row(orch: Orchestrator) -> None:
    older = REVISIONS[-2]  # the newest revision before head: the most tables to fill
    path = orch.home / "older.db"
    build_at(path, older)
    snapshot = populate(path, older)
    assert "users" in snapshot
    orch.start()
    client = RpcClient(orch.locations.rpc_endpoint, timeout=5.0, retries=2)
    try:
        _add(client, "current")
    finally:
        client.close()

    restored = orch.run("restore", str(path), "--json")

    assert restored.returncode == 0, restored.stdout + restored.stderr
    report = restored.json()
    assert report["schema_revision_before"] == HEAD
    assert report["schema_revision_backup"] == older
    assert report["schema_revision_after"] == HEAD
    assert report["upgraded"] is True
    assert report["was_running"] is True and report["started"] is True
    assert orch.status().returncode == 0
    with closing(sqlite3.connect(f"file:{orch.locations.database}?mode=ro", uri=True)) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD,)]
        assert_rows_kept(conn, snapshot)
    fresh = RpcClient(orch.locations.rpc_endpoint, timeout=5.0, retries=2)
    try:
        assert fresh.call("user.count") == sum(snapshot["users"].rows.values())
        assert fresh.call("user.get", ["fixture001"])["email"] == "fixture001@example.com"
        with pytest.raises(NotFoundError):
            fresh.call("user.get", ["current"])
    finally:
        fresh.close()
    check = orch.run("db", "check", "--json")
    assert check.returncode == 0, check.stdout
    assert check.json()["schema_revision"] == HEAD


def test_backup_to_retention_and_human_output_through_the_cli(orch: Orchestrator) -> None:
    orch.start()
    folder = orch.locations.data / "backups"
    kept = orch.run("settings", "set", "backup.keep", "2", cli="nua")
    assert kept.returncode == 0, kept.stdout + kept.stderr

    made: list[Path] = []
    for _ in range(3):
        done = orch.run("backup")
        assert done.returncode == 0, done.stdout + done.stderr
        match = re.fullmatch(
            r"backed up to (\S+) \(\d+ bytes, schema (\S+)\) in \d+\.\d\ds",
            done.stdout.splitlines()[0],
        )
        assert match, done.stdout
        assert match.group(2) == HEAD
        made.append(Path(match.group(1)))
    # The third went past backup.keep: the oldest of the folder was deleted, and said so.
    assert done.stdout.splitlines()[1:] == [f"  deleted old backup {made[0].name} (backup.keep)"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in made[1:])

    listed = orch.run("backups")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["NAME", "SIZE", "TIME", "(UTC)", "SCHEMA"]
    assert [line.split()[0] for line in lines[1:-1]] == [made[2].name, made[1].name]
    assert all(line.split()[-1] == HEAD for line in lines[1:-1])
    assert lines[-1] == f"in {folder}"

    # NUA_BACKUP_KEEP is over the stored setting.
    one = orch.run("backup", env={"NUA_BACKUP_KEEP": "1"})
    assert one.returncode == 0, one.stdout + one.stderr
    assert len(list(folder.iterdir())) == 1

    # --to: a new file anywhere, 0600, outside the folder's retention.
    client = RpcClient(orch.locations.rpc_endpoint, timeout=5.0, retries=2)
    try:
        _add(client, "in-the-copy")
    finally:
        client.close()
    target = orch.home / "elsewhere" / "copy.db"
    target.parent.mkdir(mode=0o700)
    to = orch.run("backup", "--to", str(target))
    assert to.returncode == 0, to.stdout + to.stderr
    assert to.stdout.startswith(f"backed up to {target} (")
    assert "deleted old backup" not in to.stdout
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert _integrity(target) == [("ok",)]
    assert "in-the-copy" in _usernames(target)
    assert len(list(folder.iterdir())) == 1
    again = orch.run("backup", "--to", str(target))
    assert again.returncode == 1
    assert "already exists; refusing to overwrite it" in error_line(again)

    # restore, in words, while running.
    pid = orch.supervisord_pid()
    restored = orch.run("restore", str(target))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    [replaced] = (orch.locations.data / "replaced").iterdir()
    new_pid = orch.supervisord_pid()
    assert new_pid != pid
    assert restored.stdout.splitlines() == [
        f"restored {target} to {orch.locations.database}",
        f"  the database it replaced (schema {HEAD}) is kept at {replaced}",
        f"  schema {HEAD} (no upgrade needed)",
        f"  started again (pid {new_pid})",
    ]


def test_restore_holds_the_lock_so_nothing_starts_in_between(
    orch: Orchestrator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A start run the moment restore releases the instance lock finds restore's supervisord.

    Released between its stop and its start, a rival start would run the
    orchestrator on the old database while restore swapped it.
    """
    orch.start()
    backed_up = orch.run("backup", "--json")
    assert backed_up.returncode == 0, backed_up.stderr
    path = backed_up.json()["path"]
    old = orch.supervisord_pid()

    code, output, after = run_with_rival_start(orch, monkeypatch, f"restore {path}")

    assert code == 0, output
    new = orch.supervisord_pid()
    assert new != old
    assert after.returncode == 0, after.stderr
    assert after.stdout.strip() == f"already running (pid {new})"
    assert len([p for p in orch.processes() if "supervisor.supervisord" in p.cmdline()]) == 1
