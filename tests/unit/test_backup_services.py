"""orchestrator/services: backup, list, retention, db check and restore's verification."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cleo.testers.application_tester import ApplicationTester

from orchestrator.console import admin_app
from orchestrator.db.engine import make_engine
from orchestrator.db.schema import head_revision, upgrade
from orchestrator.host.locations import Locations, resolve
from orchestrator.services import backup, db_check, restore
from orchestrator.services.backup import BACKUP_NAME, BackupError
from orchestrator.services.restore import RestoreError
from orchestrator.settings import store
from orchestrator.settings.defaults import load_defaults

pytestmark = pytest.mark.timeout(30)

T0 = datetime(2024, 1, 31, 12, 0, 0, tzinfo=UTC)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return conn.execute(sql).fetchall()


def _execute(path: Path, *statements: str, params: list[tuple[object, ...]] | None = None) -> None:
    """Run `statements`; with `params`, run the single statement once per row."""
    with closing(sqlite3.connect(path)) as conn:
        for statement in statements:
            if params is None:
                conn.execute(statement)
            else:
                conn.executemany(statement, params)
        conn.commit()


def _make_database(path: Path, keep: int | None = None) -> None:
    """A database at head with the default settings stored, as start leaves it."""
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            upgrade(conn)
            store.bootstrap(conn, load_defaults())
    finally:
        engine.dispose()
    path.chmod(0o600)
    if keep is not None:
        _execute(
            path,
            "UPDATE settings SET value = ? WHERE key = 'backup.keep'",
            params=[(json.dumps(keep),)],
        )


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in [v for v in os.environ if v.startswith("NUA_")]:
        monkeypatch.delenv(var)


@pytest.fixture
def where(tmp_path: Path) -> Locations:
    locations = resolve(tmp_path / "home")
    locations.data.mkdir(mode=0o700, parents=True)
    _make_database(locations.database)
    return locations


# -- backup -------------------------------------------------------------------------


def test_backup_is_private_sound_and_holds_the_rows(where: Locations) -> None:
    _execute(
        where.database,
        """INSERT INTO settings (key, value, "default", updated_at)
           VALUES ('extras.note', '"hello"', '"hello"', '2024-01-01 00:00:00')""",
    )
    expected = _rows(where.database, "SELECT key, value FROM settings ORDER BY key")
    assert ("extras.note", '"hello"') in expected

    result = backup.backup(where, now=T0)

    folder = where.data / "backups"
    assert result.path == folder / "nua-20240131T120000Z.db"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(result.path.stat().st_mode) == 0o600
    assert result.size == result.path.stat().st_size > 0
    assert result.revision == head_revision()
    assert _rows(result.path, "PRAGMA integrity_check") == [("ok",)]
    assert _rows(result.path, "SELECT key, value FROM settings ORDER BY key") == expected
    # A standalone file: nothing but the backup itself, no temporary file left.
    assert sorted(p.name for p in folder.iterdir()) == [result.path.name]


def test_backup_to_a_path_and_its_refusals(where: Locations, tmp_path: Path) -> None:
    target = tmp_path / "copy.db"
    result = backup.backup(where, to=target)
    assert result.path == target
    assert result.pruned == []
    assert stat.S_IMODE(target.stat().st_mode) == 0o600

    with pytest.raises(BackupError, match="already exists"):
        backup.backup(where, to=target)
    link = tmp_path / "link.db"
    link.symlink_to(tmp_path / "nowhere.db")
    with pytest.raises(BackupError, match="is a symlink"):
        backup.backup(where, to=link)
    assert not (tmp_path / "nowhere.db").exists()
    with pytest.raises(BackupError, match="does not exist; create it first"):
        backup.backup(where, to=tmp_path / "missing" / "x.db")


def _break_an_index(path: Path) -> None:
    """Point an index at another index's empty tree: readable, so the backup API copies it
    page for page, but `integrity_check` finds rows missing from the index."""
    _execute(
        path,
        "CREATE TABLE notes (text TEXT)",
        "CREATE INDEX ix_notes ON notes (text)",
        "CREATE TABLE spare (text TEXT)",
        "CREATE INDEX ix_spare ON spare (text)",
    )
    _execute(path, "INSERT INTO notes VALUES (?)", params=[(f"n{i}",) for i in range(50)])
    root = _rows(path, "SELECT rootpage FROM sqlite_master WHERE name = 'ix_spare'")[0][0]
    _execute(
        path,
        "PRAGMA writable_schema=ON",
        f"UPDATE sqlite_master SET rootpage = {root} WHERE name = 'ix_notes'",  # noqa: S608
    )


def test_a_backup_that_fails_its_integrity_check_is_refused_and_leaves_nothing(
    where: Locations, tmp_path: Path
) -> None:
    _break_an_index(where.database)
    before = _sha256(where.database)

    with pytest.raises(BackupError) as refused:
        backup.backup(where, now=T0)

    message = str(refused.value)
    assert "failed its integrity check (" in message
    assert "it was discarded: run `nua-orchestrator db check`" in message
    assert list((where.data / "backups").iterdir()) == []
    assert backup.list_backups(where) == []
    target = tmp_path / "elsewhere.db"
    with pytest.raises(BackupError, match="failed its integrity check"):
        backup.backup(where, to=target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]
    assert _sha256(where.database) == before

    tester = ApplicationTester(admin_app.application())
    assert tester.execute(f"backup --home {where.home}") == 1
    assert "failed its integrity check" in tester.io.fetch_error()
    assert list((where.data / "backups").iterdir()) == []


def test_backup_and_backups_human_output(where: Locations) -> None:
    tester = ApplicationTester(admin_app.application())
    folder = where.data / "backups"

    assert tester.execute(f"backups --home {where.home}") == 0
    assert tester.io.fetch_output() == (
        f"no backups in {folder} (`nua-orchestrator backup` makes one)\n"
    )

    assert tester.execute(f"backup --home {where.home}") == 0
    [made] = backup.list_backups(where)
    [line] = tester.io.fetch_output().splitlines()
    assert re.fullmatch(
        rf"backed up to {re.escape(str(made.path))} \({made.size} bytes, "
        rf"schema {head_revision()}\) in \d+\.\d\ds",
        line,
    ), line

    junk = folder / "nua-20200101T000000Z.db"
    junk.write_bytes(b"not a database" * 100)
    assert tester.execute(f"backups --home {where.home}") == 0
    width = len(made.name)
    when = made.taken_at.strftime("%Y-%m-%d %H:%M:%S")
    problem = backup.list_backups(where)[1].problem
    assert tester.io.fetch_output().splitlines() == [
        f"{'NAME':<{width}}  {'SIZE':>10}  TIME (UTC)           SCHEMA",
        f"{made.name}  {made.size:>10}  {when}  {head_revision()}",
        f"{junk.name}  {1400:>10}  2020-01-01 00:00:00  ? ({problem})",
        f"in {folder}",
    ]


def test_backup_without_a_database_is_refused(tmp_path: Path) -> None:
    locations = resolve(tmp_path / "empty")
    with pytest.raises(BackupError, match=r"no database at .*nothing to back up"):
        backup.backup(locations)
    assert not (locations.data / "backups").exists()


def test_retention_deletes_only_the_oldest_of_our_pattern(tmp_path: Path) -> None:
    locations = resolve(tmp_path / "home")
    locations.data.mkdir(mode=0o700, parents=True)
    _make_database(locations.database, keep=3)
    folder = locations.data / "backups"
    folder.mkdir(mode=0o700)
    ours = [folder / f"nua-2024010{day}T000000Z.db" for day in (1, 2, 3)]
    for path in ours:
        path.write_bytes(b"old backup")
    outside = tmp_path / "outside.db"
    outside.write_bytes(b"not ours")
    strangers = ["notes.txt", "nua-latest.db", "nua-20230101T000000Z.db.bak", "other.db"]
    for name in strangers:
        (folder / name).write_bytes(b"keep me")
    (folder / "nua-20200101T000000Z.db").symlink_to(outside)

    result = backup.backup(locations, now=T0)

    assert result.pruned == [ours[0]]
    remaining = sorted(p.name for p in folder.iterdir())
    assert remaining == sorted(
        [p.name for p in ours[1:]]
        + strangers
        + ["nua-20200101T000000Z.db", "nua-20240131T120000Z.db"]
    )
    assert outside.read_bytes() == b"not ours"


def test_a_name_freed_by_retention_is_not_reused_within_the_same_second(tmp_path: Path) -> None:
    # nua-T.db was pruned while nua-T-1.db and nua-T-2.db remain: a new backup that
    # second took nua-T.db again, sorted as the oldest, and keep=1 deleted it at once.
    locations = resolve(tmp_path / "home")
    locations.data.mkdir(mode=0o700, parents=True)
    _make_database(locations.database, keep=1)
    folder = locations.data / "backups"
    folder.mkdir(mode=0o700)
    for name in ("nua-20240131T120000Z-1.db", "nua-20240131T120000Z-2.db"):
        (folder / name).write_bytes(b"older backup")

    result = backup.backup(locations, now=T0)

    assert result.path.name == "nua-20240131T120000Z-3.db"
    assert result.path.exists()
    assert sorted(p.name for p in folder.iterdir()) == ["nua-20240131T120000Z-3.db"]


def test_keep_zero_keeps_every_backup(tmp_path: Path) -> None:
    locations = resolve(tmp_path / "home")
    locations.data.mkdir(mode=0o700, parents=True)
    _make_database(locations.database, keep=0)
    for minute in range(3):
        backup.backup(locations, now=T0 + timedelta(minutes=minute))
    assert len(backup.list_backups(locations)) == 3


def test_list_is_newest_first_with_fields(where: Locations) -> None:
    backup.backup(where, now=T0 + timedelta(hours=1))
    backup.backup(where, now=T0)
    backup.backup(where, now=T0 + timedelta(hours=1))  # same second: gets a -1 suffix
    junk = where.data / "backups" / "nua-20240201T000000Z.db"
    junk.write_bytes(b"garbage that is not a database" * 100)

    infos = backup.list_backups(where)

    assert [i.name for i in infos] == [
        "nua-20240201T000000Z.db",
        "nua-20240131T130000Z-1.db",
        "nua-20240131T130000Z.db",
        "nua-20240131T120000Z.db",
    ]
    assert infos[0].revision is None
    assert infos[0].problem is not None and "cannot be read" in infos[0].problem
    for info in infos[1:]:
        assert info.revision == head_revision()
        assert info.problem is None
        assert info.size == info.path.stat().st_size
    assert infos[1].to_json()["time"] == "2024-01-31T13:00:00Z"
    assert infos[3].taken_at == T0
    assert all(BACKUP_NAME.match(i.name) for i in infos)


# -- db check -----------------------------------------------------------------------


def test_db_check_on_a_good_database(where: Locations) -> None:
    report = db_check.check(where)
    assert report.ok, report.findings
    assert report.revision == report.head == head_revision()
    assert report.checks == {
        "file": "ok",
        "integrity": "ok",
        "foreign_keys": "ok",
        "schema": "ok",
    }

    tester = ApplicationTester(admin_app.application())
    assert tester.execute(f"db check --json --home {where.home}") == 0
    assert json.loads(tester.io.fetch_output())["ok"] is True


def test_db_check_on_an_unknown_revision(where: Locations) -> None:
    _execute(where.database, "UPDATE alembic_version SET version_num = 'ffffffffffff'")

    report = db_check.check(where)

    assert not report.ok
    [finding] = report.findings
    assert finding.check == "schema"
    assert "ffffffffffff" in finding.problem and "newer" in finding.problem
    assert "upgrade nua-orchestrator" in finding.advice
    assert "nua-orchestrator restore" in finding.advice
    tester = ApplicationTester(admin_app.application())
    assert tester.execute(f"db check --home {where.home}") == 1
    assert "what to do: upgrade nua-orchestrator" in tester.io.fetch_output()


def test_db_check_on_an_older_revision_says_to_start(where: Locations) -> None:
    _execute(where.database, "UPDATE alembic_version SET version_num = '0002_idempotency'")
    [finding] = db_check.check(where).findings
    assert "older" in finding.problem
    assert "nua-orchestrator start" in finding.advice


def test_db_check_on_a_garbled_database_changes_nothing(where: Locations) -> None:
    _execute(
        where.database,
        """INSERT INTO users (username, email, role, created_at, updated_at)
           VALUES (?, ?, 'user', '2024', '2024')""",
        params=[(f"u{i}", f"u{i}@example.com") for i in range(2000)],
    )
    page = _rows(where.database, "PRAGMA page_size")[0][0]
    assert isinstance(page, int)
    assert where.database.stat().st_size > 4 * page
    with open(where.database, "r+b") as fh:
        fh.seek(page)
        fh.write(os.urandom(3 * page))
    before = _sha256(where.database)

    report = db_check.check(where)

    assert not report.ok
    assert report.findings[0].check == "integrity"
    assert "nua-orchestrator restore" in report.findings[0].advice
    assert _sha256(where.database) == before


def test_db_check_finds_a_row_pointing_at_a_missing_parent(where: Locations) -> None:
    # sqlite3 leaves foreign keys off: the row goes in as a damaged or hand-edited file has it.
    _execute(
        where.database,
        """INSERT INTO releases (id, label, number, version, config, path, created_at)
           VALUES (7, 'ghost', 1, '1.0.0', '{}', '/nowhere', '2024-01-01 00:00:00')""",
    )
    before = _sha256(where.database)

    report = db_check.check(where)

    assert not report.ok
    [finding] = report.findings
    assert finding.check == "foreign_keys"
    assert finding.problem == (
        "1 row(s) point at rows that do not exist "
        "(first: releases row 7: label 'ghost' is not in apps.label)"
    )
    assert "nua-orchestrator restore PATH" in finding.advice
    assert "delete them with the orchestrator stopped" in finding.advice
    assert report.checks == {
        "file": "ok",
        "integrity": "ok",
        "foreign_keys": "problem",
        "schema": "ok",
    }
    assert _sha256(where.database) == before

    tester = ApplicationTester(admin_app.application())
    assert tester.execute(f"db check --home {where.home}") == 1
    output = tester.io.fetch_output()
    assert f"problem: {finding.problem}" in output
    assert f"  what to do: {finding.advice}" in output
    assert tester.execute(f"db check --json --home {where.home}") == 1
    reported = json.loads(tester.io.fetch_output())
    assert reported["ok"] is False
    assert reported["findings"] == [finding.to_json()]


def test_db_check_without_a_database(tmp_path: Path) -> None:
    [finding] = db_check.check(resolve(tmp_path / "none")).findings
    assert "no database" in finding.problem
    assert "nua-orchestrator start" in finding.advice


# -- restore: verification ------------------------------------------------------------


@pytest.fixture
def good_backup(where: Locations) -> Path:
    return backup.backup(where, now=T0).path


def test_verify_accepts_our_backup(good_backup: Path) -> None:
    verified = restore.verify(good_backup)
    assert verified.revision == head_revision()
    assert verified.path == good_backup


def test_verify_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"hello, not SQLite\n" * 100)
    with pytest.raises(RestoreError, match="not an SQLite database; nothing was stopped"):
        restore.verify(path)


def test_verify_refuses_a_foreign_sqlite_database(tmp_path: Path) -> None:
    path = tmp_path / "foreign.db"
    _execute(path, "CREATE TABLE settings (key TEXT)", "INSERT INTO settings VALUES ('x')")
    with pytest.raises(RestoreError, match="not a Nua database"):
        restore.verify(path)


def test_verify_refuses_a_newer_revision(good_backup: Path) -> None:
    _execute(good_backup, "UPDATE alembic_version SET version_num = 'ffffffffffff'")
    with pytest.raises(RestoreError, match="ffffffffffff, newer than this nua-orchestrator"):
        restore.verify(good_backup)


def test_verify_refuses_a_symlink(good_backup: Path, tmp_path: Path) -> None:
    link = tmp_path / "link.db"
    link.symlink_to(good_backup)
    with pytest.raises(RestoreError, match="is a symlink; refusing to follow it"):
        restore.verify(link)


def test_verify_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RestoreError, match="does not exist"):
        restore.verify(tmp_path / "missing.db")


# -- restore: while not running --------------------------------------------------------


def test_restore_while_not_running_swaps_and_keeps_the_old(short_home: Path) -> None:
    locations = resolve(short_home)
    locations.ensure()
    _make_database(locations.database)
    saved = backup.backup(locations, now=T0).path
    _execute(
        locations.database,
        """INSERT INTO users (username, email, role, created_at, updated_at)
           VALUES ('late', 'late@example.com', 'user', '2024', '2024')""",
    )

    result = restore.restore(locations, saved, now=T0 + timedelta(hours=1))

    assert not result.was_running and result.started_pid is None
    assert result.replaced == locations.data / "replaced" / "nua-20240131T130000Z.db"
    assert stat.S_IMODE(result.replaced.parent.stat().st_mode) == 0o700
    assert _rows(result.replaced, "SELECT username FROM users") == [("late",)]
    assert _rows(locations.database, "SELECT username FROM users") == []
    assert stat.S_IMODE(locations.database.stat().st_mode) == 0o600
    assert _content(locations.database) == _content(saved)
    assert result.revision_before == result.revision_backup == head_revision()
    assert result.revision_after == head_revision() and not result.upgraded
    assert not [p for p in locations.data.iterdir() if p.name.endswith(".tmp")]


def _older_backup(folder: Path, revision: str = "0003_users") -> Path:
    """A backup at an older schema revision, with users and a setting of the operator's."""
    path = folder / "older.db"
    _at_revision(path, revision)
    _add_users(path, ["older-1", "older-2"])
    _execute(
        path,
        """INSERT INTO settings (key, value, "default", updated_at)
           VALUES ('extras.note', '"kept"', '"kept"', '2024-01-01 00:00:00')""",
    )
    return path


def test_restore_while_not_running_upgrades_an_older_backup(short_home: Path) -> None:
    locations = _home_with_database(short_home)
    older = _older_backup(short_home)

    result = restore.restore(locations, older, now=T0)

    assert result.revision_before == head_revision()
    assert result.revision_backup == "0003_users"
    assert result.revision_after == head_revision() and result.upgraded
    assert result.to_json()["schema_revision_backup"] == "0003_users"
    assert result.to_json()["upgraded"] is True
    assert _rows(locations.database, "SELECT version_num FROM alembic_version") == [
        (head_revision(),)
    ]
    assert _rows(locations.database, "SELECT username FROM users ORDER BY username") == [
        ("older-1",),
        ("older-2",),
    ]
    assert ("extras.note", '"kept"') in _rows(locations.database, "SELECT key, value FROM settings")
    assert db_check.check(locations).ok


def test_restore_human_output_says_what_it_did(short_home: Path) -> None:
    locations = _home_with_database(short_home)
    older = _older_backup(short_home)
    tester = ApplicationTester(admin_app.application())

    code = tester.execute(f"restore {older} --home {locations.home}")

    assert code == 0, tester.io.fetch_error()
    [replaced] = (locations.data / "replaced").iterdir()
    assert tester.io.fetch_output().splitlines() == [
        f"restored {older} to {locations.database}",
        f"  the database it replaced (schema {head_revision()}) is kept at {replaced}",
        f"  schema upgraded from 0003_users to {head_revision()}",
        "  not started (it was not running)",
    ]


# -- restore: the swap, interrupted at every step ------------------------------------------


def _add_users(path: Path, names: list[str]) -> None:
    _execute(
        path,
        """INSERT INTO users (username, email, role, created_at, updated_at)
           VALUES (?, ?, 'user', '2024', '2024')""",
        params=[(name, f"{name}@example.com") for name in names],
    )


# A writer that commits, then dies without closing: its commits are only in the WAL.
CRASHED_WRITER = """
import os, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA journal_mode=WAL")
conn.execute("PRAGMA wal_autocheckpoint=0")
for name in sys.argv[2:]:
    conn.execute(
        "INSERT INTO users (username, email, role, created_at, updated_at) "
        "VALUES (?, ?, 'user', '2024', '2024')",
        (name, name + "@example.com"),
    )
os._exit(0)
"""


def _commit_into_wal_and_crash(path: Path, names: list[str]) -> None:
    subprocess.run([sys.executable, "-c", CRASHED_WRITER, str(path), *names], check=True)
    wal = path.with_name(path.name + "-wal")
    assert wal.exists() and wal.stat().st_size > 0, "the writer left no WAL behind"


Content = tuple[list[str], list[tuple[object, ...]]]


def _content(path: Path) -> Content:
    """Open `path` as the next start would (replaying a WAL beside it); check it; read it."""
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        users = [r[0] for r in conn.execute("SELECT username FROM users ORDER BY username")]
        settings = conn.execute("SELECT key, value FROM settings ORDER BY key").fetchall()
    return users, settings


def _copy_with_side_files(source: Path, target: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        side = source.with_name(source.name + suffix)
        if side.exists():
            shutil.copyfile(side, target.with_name(target.name + suffix))
            target.with_name(target.name + suffix).chmod(0o600)


class Interrupted(BaseException):
    """The process died here: this call and every later one never reach the disk."""


# The calls that change what is on disk, in the order a swap makes them.
DISK_CALLS = ("link", "unlink", "rename", "replace", "fsync")


@contextmanager
def dies_at(monkeypatch: pytest.MonkeyPatch, step: int | None) -> Iterator[list[str]]:
    """Record every disk-changing call; from call number `step` on, each one dies."""
    calls: list[str] = []

    def dying(name: str, real: Callable[..., object]) -> Callable[..., object]:
        def call(*args: object, **kwargs: object) -> object:
            calls.append(f"{name} {Path(str(args[0])).name}" if name != "fsync" else name)
            if step is not None and len(calls) >= step:
                raise Interrupted(calls[-1])
            return real(*args, **kwargs)

        return call

    with monkeypatch.context() as patched:
        for name in DISK_CALLS:
            patched.setattr(os, name, dying(name, getattr(os, name)))
        yield calls


@pytest.fixture
def old_and_new(short_home: Path) -> tuple[Path, Path]:
    """An old database whose last commits are only in its WAL, and a backup of another one."""
    scratch = short_home / "scratch"
    scratch.mkdir(mode=0o700)
    old = scratch / "old.db"
    _make_database(old)
    _add_users(old, ["old-checkpointed"])
    _commit_into_wal_and_crash(old, ["old-in-wal-1", "old-in-wal-2"])
    source = resolve(short_home / "src")
    source.data.mkdir(mode=0o700, parents=True)
    _make_database(source.database)
    _add_users(source.database, ["new-1", "new-2"])
    saved = backup.backup(source, to=scratch / "saved.db").path
    return old, saved


def test_restore_interrupted_at_any_step_leaves_the_old_or_the_new_database(
    short_home: Path, old_and_new: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    old, saved = old_and_new
    reference = short_home / "reference.db"
    _copy_with_side_files(old, reference)
    expected_old = _content(reference)
    expected_new = _content(saved)
    assert "old-in-wal-2" in expected_old[0] and expected_new[0] == ["new-1", "new-2"]

    def home(name: str) -> Locations:
        locations = resolve(short_home / name)
        locations.ensure()
        _copy_with_side_files(old, locations.database)
        return locations

    whole = home("whole")
    with dies_at(monkeypatch, None) as calls:
        restore.restore(whole, saved, now=T0)
    steps = list(calls)

    outcomes: list[str] = []
    for step in range(1, len(steps) + 1):
        locations = home(f"h{step}")
        with pytest.raises(Interrupted), dies_at(monkeypatch, step):
            restore.restore(locations, saved, now=T0)
        database = locations.database
        assert database.exists(), f"no database after dying at step {step} ({steps[step - 1]})"
        found = _content(database)
        assert found in (expected_old, expected_new), (
            f"dying at step {step} ({steps[step - 1]}) left neither the old nor the new "
            f"database: {found[0]}"
        )
        outcomes.append("old" if found == expected_old else "new")
    # Dying at step N means steps 1 to N-1 happened: the switch is the one rename over the
    # database, and nothing after it goes back.
    switch = outcomes.index("new")
    assert steps[switch - 1].startswith("replace .nua.db.restore-"), (steps, outcomes)
    assert outcomes == ["old"] * switch + ["new"] * (len(steps) - switch), outcomes
    assert "link nua.db" in steps[: switch - 1], "the old database is kept aside before the switch"


def test_restore_keeps_the_old_database_whole_in_replaced(
    short_home: Path, old_and_new: tuple[Path, Path]
) -> None:
    old, saved = old_and_new
    reference = short_home / "reference.db"
    _copy_with_side_files(old, reference)
    locations = resolve(short_home / "home")
    locations.ensure()
    _copy_with_side_files(old, locations.database)

    result = restore.restore(locations, saved, now=T0)

    assert result.replaced is not None
    assert _content(result.replaced) == _content(reference)
    assert stat.S_IMODE(result.replaced.stat().st_mode) == 0o600
    assert _content(locations.database) == _content(saved)
    # Nothing of the old database is left beside the new one, and no temporary copy.
    assert sorted(p.name for p in locations.data.iterdir()) == ["nua.db", "replaced"]


def test_restore_keeps_a_damaged_database_and_its_wal_aside_byte_for_byte(
    short_home: Path, old_and_new: tuple[Path, Path]
) -> None:
    _old, saved = old_and_new
    locations = resolve(short_home / "home")
    locations.ensure()
    database = locations.database
    _make_database(database)
    _add_users(database, [f"u{i}" for i in range(2000)])
    _commit_into_wal_and_crash(database, ["in-wal"])
    page = _rows(database, "PRAGMA page_size")[0][0]
    assert isinstance(page, int)
    with open(database, "r+b") as fh:  # pages 2 to 4: far from what the WAL rewrote
        fh.seek(page)
        fh.write(os.urandom(3 * page))
    wal = database.with_name("nua.db-wal")
    damaged, damaged_wal = _sha256(database), _sha256(wal)
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as conn:
        assert conn.execute("PRAGMA quick_check(1)").fetchall() != [("ok",)]

    result = restore.restore(locations, saved, now=T0)

    # Not written to: the damaged file and its WAL are kept aside exactly as they were.
    assert result.replaced is not None
    assert _sha256(result.replaced) == damaged
    assert _sha256(result.replaced.with_name(result.replaced.name + "-wal")) == damaged_wal
    assert not wal.exists(), "the damaged database's WAL would be replayed into the new one"
    assert _content(database) == _content(saved)


def test_restore_of_a_file_that_is_not_a_database_keeps_it_aside(
    short_home: Path, old_and_new: tuple[Path, Path]
) -> None:
    _old, saved = old_and_new
    locations = resolve(short_home / "home")
    locations.ensure()
    locations.database.write_bytes(b"not a database at all" * 200)
    locations.database.chmod(0o600)

    result = restore.restore(locations, saved, now=T0)

    assert result.replaced is not None
    assert result.replaced.read_bytes() == b"not a database at all" * 200
    assert result.revision_before is None
    assert _content(locations.database) == _content(saved)


def test_restore_copies_the_old_database_aside_where_hard_links_fail(
    short_home: Path, old_and_new: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    old, saved = old_and_new
    locations = resolve(short_home / "home")
    locations.ensure()
    _copy_with_side_files(old, locations.database)
    expected = _content(locations.database)  # folds the WAL in: the copy must hold it too

    def no_links(*_args: object, **_kwargs: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    result = restore.restore(locations, saved, now=T0)

    assert result.replaced is not None
    assert result.replaced.stat().st_nlink == 1
    assert stat.S_IMODE(result.replaced.stat().st_mode) == 0o600
    assert _content(result.replaced) == expected
    assert _content(locations.database) == _content(saved)


def test_restore_refuses_while_another_process_has_the_database_open(
    short_home: Path, old_and_new: tuple[Path, Path]
) -> None:
    old, saved = old_and_new
    locations = resolve(short_home / "home")
    locations.ensure()
    _copy_with_side_files(old, locations.database)
    other = sqlite3.connect(locations.database)
    try:
        before = _content(locations.database)
        other.execute("SELECT count(*) FROM users").fetchone()
        with pytest.raises(RestoreError, match=r"another process has the database .* open"):
            restore.restore(locations, saved, now=T0)
    finally:
        other.close()
    assert _content(locations.database) == before
    assert not (locations.data / "replaced").exists() or not any(
        (locations.data / "replaced").iterdir()
    )
    assert not [p for p in locations.data.iterdir() if p.name.endswith(".tmp")]


def test_restore_removes_the_copy_an_interrupted_restore_left(
    short_home: Path, old_and_new: tuple[Path, Path]
) -> None:
    old, saved = old_and_new
    locations = resolve(short_home / "home")
    locations.ensure()
    _copy_with_side_files(old, locations.database)
    stale = locations.data / ".nua.db.restore-0badc0de.tmp"
    stale.write_bytes(b"half a copy")

    restore.restore(locations, saved, now=T0)

    assert not stale.exists()


# -- restore: the copy that goes into service is checked too --------------------------------


def _at_revision(path: Path, revision: str) -> None:
    """A database at an older `revision`, made by the product's migrations."""
    from alembic import command

    from orchestrator.db.schema import alembic_config, migration_transaction

    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection, migration_transaction(connection):
            cfg = alembic_config()
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, revision)
    finally:
        engine.dispose()
    path.chmod(0o600)


def _home_with_database(short_home: Path) -> Locations:
    locations = resolve(short_home / "home")
    locations.ensure()
    _make_database(locations.database)
    _add_users(locations.database, ["current"])
    return locations


def _assert_nothing_restored(locations: Locations, fingerprint: str) -> None:
    assert _sha256(locations.database) == fingerprint
    replaced = locations.data / "replaced"
    assert not replaced.exists() or not any(replaced.iterdir())
    assert sorted(p.name for p in locations.data.iterdir() if p.name != "replaced") == ["nua.db"]


def test_restore_refuses_a_copy_that_fails_its_integrity_check(
    short_home: Path, old_and_new: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _old, saved = old_and_new
    _add_users(saved, [f"u{i}" for i in range(2000)])  # pages enough to damage one
    locations = _home_with_database(short_home)
    fingerprint = _sha256(locations.database)
    real_copy = restore._copy_private

    def copy_badly(source: Path, target: Path) -> None:
        """A copy damaged on its way (a bad sector, a file changed while read)."""
        real_copy(source, target)
        page = _rows(source, "PRAGMA page_size")[0][0]
        assert isinstance(page, int)
        with open(target, "r+b") as fh:
            fh.seek(page)
            fh.write(os.urandom(3 * page))

    monkeypatch.setattr(restore, "_copy_private", copy_badly)
    damaged = r"the copy of backup .* (fails its integrity check|cannot be read)"
    with pytest.raises(RestoreError, match=damaged + ".*nothing was restored"):
        restore.restore(locations, saved, now=T0)
    _assert_nothing_restored(locations, fingerprint)


@pytest.mark.parametrize(
    ("swapped_in", "refusal"),
    [
        ("older", r"changed during the restore: its copy is at schema revision 0003_users"),
        ("foreign", r"the copy of backup .* is not a Nua database"),
    ],
)
def test_restore_refuses_a_backup_that_changed_after_it_was_verified(
    short_home: Path,
    old_and_new: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    swapped_in: str,
    refusal: str,
) -> None:
    _old, saved = old_and_new
    locations = _home_with_database(short_home)
    fingerprint = _sha256(locations.database)
    real_verify = restore.verify

    def verify_then_change(path: Path) -> restore.VerifiedBackup:
        verified = real_verify(path)
        other = short_home / "other.db"
        if swapped_in == "older":
            _at_revision(other, "0003_users")
        else:
            _execute(other, "CREATE TABLE notes (text TEXT)")
        other.replace(path)
        return verified

    monkeypatch.setattr(restore, "verify", verify_then_change)
    with pytest.raises(RestoreError, match=refusal):
        restore.restore(locations, saved, now=T0)
    _assert_nothing_restored(locations, fingerprint)


def test_restore_says_when_the_upgrade_fails_and_starts_nothing(
    short_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.errors import DatabaseError
    from orchestrator.services import database as database_service

    locations = _home_with_database(short_home)
    older = _older_backup(short_home)

    def failing(*_args: object, **_kwargs: object) -> None:
        raise DatabaseError("database x could not be upgraded: disk I/O error; nothing was changed")

    monkeypatch.setattr(database_service, "prepare", failing)
    with pytest.raises(RestoreError) as refused:
        restore.restore(locations, older, now=T0)

    message = str(refused.value)
    assert f"restored {older} to {locations.database}, but its schema could not be" in message
    assert "upgraded from 0003_users: database x could not be upgraded" in message
    assert "the database it replaced is kept at" in message
    assert "nothing was started" in message and "nua-orchestrator db check" in message
    assert _rows(locations.database, "SELECT version_num FROM alembic_version") == [("0003_users",)]
    assert not locations.supervisor_pidfile.exists()
