"""Fault 8: migrations keep every row, and kill -9 during one leaves the old or the new revision.

(a) From every revision Alembic knows (and from an empty database), with
rows in every table that exists at that revision, an upgrade to head keeps
every row, column for column. The revisions come from Alembic's script
directory, so a new migration is covered without touching this file; a new
table is not: it needs a row factory in ROW_FACTORIES, and the test says so.

(b) The product's own migration code runs in a child process whose every SQL
statement is slowed down by an SQLAlchemy event listener (the only thing the
test changes), from an empty database, the oldest revision and the newest
before head (the one with the most tables filled: users, and apps with their
releases once a migration follows 0004_apps). The child is killed with
SIGKILL at statements spread across the run. After each kill the database
is sound, at the starting revision or at head (the whole run is one
transaction), with exactly that revision's tables and every row; then a
real `nua-orchestrator start` completes it.
From the oldest revision, that start is also (a) through the real command:
the populated rows survive every migration and start's settings merge.
"""

from __future__ import annotations

import contextlib
import graphlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory

from orchestrator.db.engine import make_engine
from orchestrator.db.schema import (
    alembic_config,
    ensure_sqlite_file,
    head_revision,
    migration_transaction,
    upgrade,
)
from tests.support.badinput import scratch_dir
from tests.support.orchestrator import Orchestrator
from tests.support.polling import wait_for

pytestmark = pytest.mark.e2e

HEAD = head_revision()
# Oldest first; None is the empty database of a first start.
REVISIONS: list[str] = [
    script.revision
    for script in reversed(list(ScriptDirectory.from_config(alembic_config()).walk_revisions()))
]
STARTS: list[str | None] = [None, *REVISIONS]
# Where the kill -9 test starts: an empty database, the oldest revision, and the newest
# before head, which has the most tables to fill (users, and apps with their releases once
# a migration follows 0004_apps).
KILL_STARTS: list[str | None] = list(dict.fromkeys([None, REVISIONS[0], *REVISIONS[-2:-1]]))
ROWS_PER_TABLE = 30
# Each SQL statement of the killed migrations waits this long first, so that
# a kill lands between two statements of a run that is still in flight.
STATEMENT_DELAY = 0.025
KILL_POINTS = 6


def _rev_id(revision: str | None) -> str:
    return revision or "empty"


# -- rows for every table ----------------------------------------------------------------


Row = dict[str, object]
RowFactory = Callable[[int], Row]


def _timestamp() -> str:
    """Now, as SQLAlchemy stores a DateTime in SQLite (recent: the worker keeps it)."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def settings_row(i: int) -> Row:
    """A setting whose key no defaults file has, so start's merge leaves it alone."""
    values: list[object] = [i, i + 0.5, f"text {i} é", i % 2 == 0, [i, "x"], None]
    value = values[i % len(values)]
    return {
        "key": f"fixture.migration.k{i:03d}",
        "value": json.dumps(value),
        "default": json.dumps(values[(i + 1) % len(values)]),
        "updated_at": _timestamp(),
    }


def idempotency_row(i: int) -> Row:
    """A recorded answer, young enough not to be forgotten by the worker at start."""
    return {
        "key": f"fixture-key-{i:04d}",
        "method": "user.add",
        "result": json.dumps({"id": i, "username": f"fixture{i}"}),
        "created_at": _timestamp(),
    }


def users_row(i: int) -> Row:
    """A user; one in three has no password hash (a NULL is a value to keep too)."""
    return {
        "id": i + 1,
        "username": f"fixture{i:03d}",
        "email": f"fixture{i:03d}@example.com",
        "role": "admin" if i % 5 == 0 else "user",
        "password_hash": None if i % 3 == 0 else f"$argon2id$v=19$m=65536,t=3,p=4$c2FsdA${i:040d}",
        "created_at": _timestamp(),
        "updated_at": _timestamp(),
    }


def apps_row(i: int) -> Row:
    """An app that is stopped and has no release: start renders nothing to run for it."""
    return {
        "id": i + 1,
        "label": f"fixture-app-{i:03d}",
        "app_id": f"fixture-{i % 4}",
        "desired": "stopped",
        "current_release": None,
        "previous_release": None,
        "ports": json.dumps({"web": 40000 + i}),
        "env": json.dumps({"K": f"v{i}"}),
        "created_at": _timestamp(),
        "updated_at": _timestamp(),
    }


def releases_row(i: int) -> Row:
    """A release of one of the fixture apps (a foreign-key child of apps)."""
    return {
        "id": i + 1,
        "label": f"fixture-app-{i % 10:03d}",
        "number": i,
        "version": f"1.{i}.0",
        "config": json.dumps({"metadata": {"id": "fixture", "version": f"1.{i}.0"}}),
        "path": f"/nonexistent/fixture/{i}",
        "created_at": _timestamp(),
    }


def jobs_row(i: int) -> Row:
    """A finished job."""
    return {
        "id": i + 1,
        "kind": "install",
        "label": f"fixture-app-{i % 10:03d}",
        "state": "succeeded" if i % 2 else "failed",
        "steps": json.dumps([{"name": "unpack", "state": "done"}]),
        "error": None if i % 2 else f"failed {i}",
        "failed_step": None if i % 2 else "build",
        "log_tail": f"line {i}",
        "created_at": _timestamp(),
        "updated_at": _timestamp(),
    }


# One factory per table of the schema, at any revision. A factory may give
# columns a table does not have yet (at an older revision): they are left out.
ROW_FACTORIES: dict[str, RowFactory] = {
    "settings": settings_row,
    "idempotency_keys": idempotency_row,
    "users": users_row,
    "apps": apps_row,
    "releases": releases_row,
    "jobs": jobs_row,
}


# -- looking at an SQLite file ------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str
    notnull: bool
    has_default: bool
    pk: bool


@dataclass(frozen=True)
class ForeignKey:
    columns: tuple[str, ...]
    parent: str
    parent_columns: tuple[str | None, ...]


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def _tables(conn: sqlite3.Connection) -> list[str]:
    """The application's tables: Alembic's bookkeeping and SQLite's own are not rows to keep."""
    return sorted(
        name
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if name != "alembic_version" and not name.startswith("sqlite_")
    )


def _columns(conn: sqlite3.Connection, table: str) -> list[Column]:
    return [
        Column(name, bool(notnull), default is not None, bool(pk))
        for _cid, name, _type, notnull, default, pk in conn.execute(f'PRAGMA table_info("{table}")')
    ]


def _foreign_keys(conn: sqlite3.Connection, table: str) -> list[ForeignKey]:
    grouped: dict[int, list[tuple[str, str, str | None]]] = {}
    for fk_id, _seq, parent, column, parent_column, *_rest in conn.execute(
        f'PRAGMA foreign_key_list("{table}")'
    ):
        grouped.setdefault(fk_id, []).append((parent, column, parent_column))
    return [
        ForeignKey(
            columns=tuple(c for _p, c, _pc in parts),
            parent=parts[0][0],
            parent_columns=tuple(pc for _p, _c, pc in parts),
        )
        for _id, parts in sorted(grouped.items())
    ]


def _parents_first(conn: sqlite3.Connection) -> list[str]:
    """The tables ordered so that every table comes after the tables its foreign keys name."""
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for table in _tables(conn):
        parents = {fk.parent for fk in _foreign_keys(conn, table)} - {table}
        sorter.add(table, *sorted(parents))
    return list(sorter.static_order())


def _revision(conn: sqlite3.Connection) -> str | None:
    names = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "alembic_version" not in names:
        return None
    rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    assert len(rows) <= 1, f"alembic_version holds {len(rows)} rows: {rows}"
    return rows[0][0] if rows else None


def _schema(conn: sqlite3.Connection) -> frozenset[tuple[str, str, str, str | None]]:
    """Every table and index, with the SQL that made it."""
    return frozenset(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))


def _typed(value: object) -> tuple[str, object]:
    # 1, 1.0 and True are equal in Python; a value that changed type has changed.
    return (type(value).__name__, value)


@dataclass(frozen=True)
class TableRows:
    columns: tuple[str, ...]
    rows: Counter[tuple[tuple[str, object], ...]]


Snapshot = dict[str, TableRows]


def _quoted(name: str) -> str:
    """An SQL identifier; names come from sqlite_master, not from input."""
    return '"' + name.replace('"', '""') + '"'


def _read(conn: sqlite3.Connection, table: str, columns: tuple[str, ...]) -> TableRows:
    names = ", ".join(_quoted(c) for c in columns)
    rows = conn.execute(f"SELECT {names} FROM {_quoted(table)}").fetchall()  # noqa: S608
    return TableRows(columns, Counter(tuple(_typed(v) for v in row) for row in rows))


# -- populating and checking -------------------------------------------------------------


def populate(
    path: Path,
    revision: str | None,
    factories: dict[str, RowFactory] = ROW_FACTORIES,
    count: int = ROWS_PER_TABLE,
) -> Snapshot:
    """Fill every table with `count` rows, parents before children; return what was stored.

    A table without a factory fails the test: its rows would go unchecked.
    Foreign-key columns are pointed at rows of the parent table, whatever the
    factory says, so that children are always valid.
    """
    snapshot: Snapshot = {}
    with closing(_connect(path)) as conn:
        stored: dict[str, list[Row]] = {}
        for table in _parents_first(conn):
            factory = factories.get(table)
            if factory is None:
                pytest.fail(
                    f"table {table!r} exists at revision {revision} but has no row factory: "
                    f"add one to ROW_FACTORIES in {Path(__file__).name} so that its rows are "
                    "checked across every migration"
                )
            columns = _columns(conn, table)
            foreign_keys = _foreign_keys(conn, table)
            pk = [c.name for c in columns if c.pk]
            rows: list[Row] = []
            for i in range(count):
                made = factory(i)
                row = {c.name: made[c.name] for c in columns if c.name in made}
                for fk in foreign_keys:
                    if fk.parent == table:
                        # Self-reference: the previous row, and the first row itself.
                        source = rows[i - 1] if i else row
                    else:
                        parents = stored[fk.parent]
                        source = parents[i % len(parents)]
                    parent_pk = [c.name for c in _columns(conn, fk.parent) if c.pk]
                    for column, parent_column in zip(fk.columns, fk.parent_columns, strict=True):
                        key = parent_column or parent_pk[fk.columns.index(column)]
                        row[column] = source[key]
                missing = [
                    c.name for c in columns if c.notnull and not c.has_default and c.name not in row
                ]
                if missing and not (missing == pk and len(pk) == 1):
                    pytest.fail(
                        f"the row factory of table {table!r} gives no value for NOT NULL "
                        f"column(s) {missing} (revision {revision}): update ROW_FACTORIES"
                    )
                names = list(row)
                columns_sql = ", ".join(_quoted(n) for n in names)
                marks = ", ".join("?" for _ in names)
                conn.execute(
                    f"INSERT INTO {_quoted(table)} ({columns_sql}) VALUES ({marks})",  # noqa: S608
                    [row[n] for n in names],
                )
                rows.append(row)
            stored[table] = rows
            snapshot[table] = _read(conn, table, tuple(c.name for c in columns))
            assert sum(snapshot[table].rows.values()) == count, table
        broken = conn.execute("PRAGMA foreign_key_check").fetchall()
        assert broken == [], f"the populated rows break foreign keys: {broken}"
    return snapshot


def assert_rows_kept(conn: sqlite3.Connection, before: Snapshot) -> None:
    """Every row stored before is still there, with the same value in every old column."""
    tables = set(_tables(conn))
    for table, kept in before.items():
        assert table in tables, f"table {table} is gone"
        now = {c.name for c in _columns(conn, table)}
        gone = [c for c in kept.columns if c not in now]
        assert not gone, f"columns {gone} of table {table} are gone"
        after = _read(conn, table, kept.columns)
        lost = kept.rows - after.rows
        if lost:
            sample = [dict(zip(kept.columns, row, strict=True)) for row in list(lost)[:3]]
            pytest.fail(
                f"{sum(lost.values())} of {sum(kept.rows.values())} rows of table {table} "
                f"were lost or changed; for example: {sample}"
            )


def build_at(path: Path, revision: str | None) -> None:
    """A database at `revision`, made by the product's migrations; empty for None."""
    ensure_sqlite_file(path)
    if revision is None:
        return
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection, migration_transaction(connection):
            cfg = alembic_config()
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, revision)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def schemas() -> Iterator[dict[str | None, frozenset[tuple[str, str, str, str | None]]]]:
    """What a fresh database holds at each revision: the reference to compare with."""
    with scratch_dir() as folder:
        found = {}
        for revision in STARTS:
            path = folder / f"{_rev_id(revision)}.db"
            build_at(path, revision)
            with closing(_connect(path)) as conn:
                assert _revision(conn) == revision
                found[revision] = _schema(conn)
        yield found


def assert_sound(conn: sqlite3.Connection) -> None:
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


# -- (a) upgrade from every revision ---------------------------------------------------------


@pytest.mark.parametrize("start", STARTS, ids=_rev_id)
def test_upgrade_from_every_revision_keeps_every_row(
    short_home: Path,
    schemas: dict[str | None, frozenset[tuple[str, str, str, str | None]]],
    start: str | None,
) -> None:
    db = short_home / "nua.db"
    build_at(db, start)
    before = populate(db, start)
    with closing(_connect(db)) as conn:
        assert _revision(conn) == start
        assert _schema(conn) == schemas[start]
        assert sorted(before) == _tables(conn), "a table was left empty"
        # Foreign-key children (releases of apps, from 0004_apps on) hold rows that point
        # at real parents, so the upgrade must carry the relations over, not only the rows.
        for child in _children(conn):
            assert sum(before[child].rows.values()) == ROWS_PER_TABLE, child
            for fk in _foreign_keys(conn, child):
                assert _joined(conn, child, fk) == ROWS_PER_TABLE, (child, fk)

    engine = make_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as connection:
            upgrade(connection)
    finally:
        engine.dispose()

    with closing(_connect(db)) as conn:
        assert _revision(conn) == HEAD
        assert _schema(conn) == schemas[HEAD]
        assert_sound(conn)
        assert_rows_kept(conn, before)


def _children(conn: sqlite3.Connection) -> list[str]:
    """The tables with a foreign key to another table."""
    return [t for t in _tables(conn) if any(fk.parent != t for fk in _foreign_keys(conn, t))]


def _joined(conn: sqlite3.Connection, child: str, fk: ForeignKey) -> int:
    """How many rows of `child` find their parent row through `fk`."""
    parent_pk = [c.name for c in _columns(conn, fk.parent) if c.pk]
    on = " AND ".join(
        f"c.{_quoted(column)} = p.{_quoted(target or parent_pk[i])}"
        for i, (column, target) in enumerate(zip(fk.columns, fk.parent_columns, strict=True))
    )
    sql = f"SELECT count(*) FROM {_quoted(child)} c JOIN {_quoted(fk.parent)} p ON {on}"  # noqa: S608
    return int(conn.execute(sql).fetchone()[0])


def test_foreign_key_children_are_filled_at_the_revision_that_has_them(short_home: Path) -> None:
    """releases -> apps.label comes with 0004_apps: from there on, releases get rows."""
    assert "0004_apps" in REVISIONS
    for revision in REVISIONS[REVISIONS.index("0004_apps") :]:
        db = short_home / f"{revision}.db"
        build_at(db, revision)
        before = populate(db, revision)
        with closing(_connect(db)) as conn:
            assert "releases" in _children(conn), revision
            [fk] = [fk for fk in _foreign_keys(conn, "releases") if fk.parent == "apps"]
            assert fk.columns == ("label",) and fk.parent_columns == ("label",)
            assert _joined(conn, "releases", fk) == ROWS_PER_TABLE
        assert sum(before["releases"].rows.values()) == ROWS_PER_TABLE


def test_a_table_without_a_row_factory_fails_with_a_clear_message(short_home: Path) -> None:
    db = short_home / "nua.db"
    with closing(_connect(db)) as conn:
        # A table no revision has (so no row factory either), as a new revision would add.
        conn.execute("CREATE TABLE gadgets (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
    with pytest.raises(pytest.fail.Exception, match=r"table 'gadgets' .* has no row factory"):
        populate(db, "9999_gadgets")


def test_children_of_foreign_keys_are_filled_after_their_parents(short_home: Path) -> None:
    """Beyond releases -> apps (0004_apps): a self-reference, and a parent made after its child."""
    db = short_home / "nua.db"
    with closing(_connect(db)) as conn:
        conn.execute(
            "CREATE TABLE installs (id INTEGER PRIMARY KEY, app_id INTEGER NOT NULL "
            "REFERENCES apps(id), parent_id INTEGER REFERENCES installs(id))"
        )
        conn.execute("CREATE TABLE apps (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        assert _parents_first(conn) == ["apps", "installs"]
    factories: dict[str, RowFactory] = {
        "apps": lambda i: {"id": 100 + i, "name": f"app{i}"},
        "installs": lambda i: {"id": i + 1},
    }

    before = populate(db, "synthetic", factories, count=4)

    with closing(_connect(db)) as conn:
        rows = conn.execute("SELECT id, app_id, parent_id FROM installs ORDER BY id").fetchall()
        assert rows == [(1, 100, 1), (2, 101, 1), (3, 102, 2), (4, 103, 3)]
        assert_rows_kept(conn, before)
        conn.execute("UPDATE apps SET name = 'changed' WHERE id = 101")
        with pytest.raises(pytest.fail.Exception, match="1 of 4 rows of table apps"):
            assert_rows_kept(conn, before)


# -- (b) kill -9 during a migration ---------------------------------------------------------

# A fork server: it imports the product once, then for each line `URL DELAY`
# on stdin forks a process that runs the product's migration
# (orchestrator.db.schema.upgrade on an engine made by make_engine, as start
# does) with every SQL statement announced, then slowed down; it reports how
# each one ended. A fork costs milliseconds where a Python start-up with
# SQLAlchemy and Alembic costs a second, and what is killed is still a whole
# process in the middle of the real migration.
FORK_SERVER = """
import os, sys, time, traceback
import alembic.command, alembic.runtime.migration, orchestrator.db.models  # loaded once
from sqlalchemy import event
from orchestrator.db.engine import make_engine
from orchestrator.db.schema import upgrade

def migrate(url, delay):
    engine = make_engine(url)
    count = 0

    @event.listens_for(engine, "before_cursor_execute")
    def slow_down(conn, cursor, statement, parameters, context, executemany):
        nonlocal count
        count += 1
        print(os.getpid(), "statement", count, " ".join(statement.split())[:60], flush=True)
        time.sleep(delay)

    with engine.connect() as connection:
        upgrade(connection)
    engine.dispose()
    print(os.getpid(), "committed", count, flush=True)

for line in sys.stdin:
    url, delay = line.split()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            migrate(url, float(delay))
            code = 0
        except BaseException:
            traceback.print_exc(file=sys.stdout)
        finally:
            sys.stdout.flush()
            os._exit(code)
    print(pid, "forked", flush=True)
    _, status = os.waitpid(pid, 0)
    print(pid, "exited", os.waitstatus_to_exitcode(status), flush=True)
"""


class Migrations:
    """The fork server, and what each migration it forked has announced."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", FORK_SERVER],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def _said(self, pid: int, word: str) -> list[str]:
        prefix = f"{pid} {word}"
        return [line for line in list(self.lines) if line.startswith(prefix)]

    def begin(self, db: Path, delay: float) -> int:
        """Fork a migration of `db`; return its pid."""
        assert self.proc.stdin is not None
        forked = len([line for line in list(self.lines) if line.endswith(" forked")])
        self.proc.stdin.write(f"sqlite:///{db} {delay}\n")
        self.proc.stdin.flush()
        wait_for(
            lambda: (
                len([line for line in list(self.lines) if line.endswith(" forked")]) > forked
                or self.proc.poll() is not None
            ),
            timeout=30,
            what="the fork server to fork a migration",
        )
        assert self.proc.poll() is None, self.output()
        last = [line for line in list(self.lines) if line.endswith(" forked")][-1]
        return int(last.split()[0])

    def statements(self, pid: int) -> int:
        return len(self._said(pid, "statement"))

    def committed(self, pid: int) -> bool:
        return bool(self._said(pid, "committed"))

    def exit_code(self, pid: int) -> int | None:
        said = self._said(pid, "exited")
        return int(said[0].split()[2]) if said else None

    def wait_exit(self, pid: int, timeout: float = 30) -> int:
        wait_for(
            lambda: self.exit_code(pid) is not None,
            timeout=timeout,
            what=f"migration {pid} to end",
        )
        code = self.exit_code(pid)
        assert code is not None
        return code

    def output(self) -> str:
        return "\n".join(self.lines)

    def close(self) -> None:
        """Close stdin (the server ends its loop); kill it by pid if it does not."""
        with contextlib.suppress(OSError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._reader.join(timeout=10)


@pytest.fixture
def migrations(orch: Orchestrator) -> Iterator[Migrations]:
    """A fork server carrying the home in its environment, so that leaks are found."""
    server = Migrations(orch.env)
    yield server
    server.close()


def _statements_in_a_full_run(db: Path, migrations: Migrations) -> int:
    """Run the same migration on a copy to the end: how many statements it takes."""
    with scratch_dir() as folder:
        copy = folder / "nua.db"
        shutil.copyfile(db, copy)
        copy.chmod(0o600)
        pid = migrations.begin(copy, delay=0)
        assert migrations.wait_exit(pid) == 0, migrations.output()
        assert migrations.committed(pid), migrations.output()
        with closing(_connect(copy)) as conn:
            assert _revision(conn) == HEAD
        return migrations.statements(pid)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("start", KILL_STARTS, ids=_rev_id)
def test_kill_9_during_a_migration_leaves_old_or_new_and_start_completes_it(
    orch: Orchestrator,
    migrations: Migrations,
    schemas: dict[str | None, frozenset[tuple[str, str, str, str | None]]],
    start: str | None,
) -> None:
    orch.locations.ensure()
    db = orch.locations.database
    build_at(db, start)
    before = populate(db, start)
    with closing(_connect(db)) as conn:
        assert sorted(before) == _tables(conn), "a table was left empty"
    if start is not None and REVISIONS.index(start) >= REVISIONS.index("0003_users"):
        assert sum(before["users"].rows.values()) == ROWS_PER_TABLE
    if start is not None and REVISIONS.index(start) >= REVISIONS.index("0004_apps"):
        assert sum(before["apps"].rows.values()) == sum(before["releases"].rows.values()) > 0
    total = _statements_in_a_full_run(db, migrations)
    assert total >= KILL_POINTS, f"only {total} statements: too few to spread the kills"
    # From the first statement (BEGIN) to the last (the foreign key check before COMMIT).
    points = sorted({1 + round(j * (total - 1) / (KILL_POINTS - 1)) for j in range(KILL_POINTS)})
    outcomes: list[tuple[int, str | None]] = []

    for point in points:
        pid = migrations.begin(db, STATEMENT_DELAY)
        wait_for(
            lambda pid=pid, point=point: (
                migrations.statements(pid) >= point or migrations.exit_code(pid) is not None
            ),
            timeout=30,
            what=f"the migration to reach statement {point}",
            every=0.002,
        )
        assert migrations.exit_code(pid) is None, f"it ended early:\n{migrations.output()}"
        os.kill(pid, signal.SIGKILL)
        assert migrations.wait_exit(pid) == -signal.SIGKILL, migrations.output()
        with closing(_connect(db)) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            revision = _revision(conn)
            assert revision in (start, HEAD), (
                f"killed at statement {point} of {total}: revision {revision}, "
                f"neither {start} nor {HEAD}\n{migrations.output()}"
            )
            assert _schema(conn) == schemas[revision], f"killed at statement {point}"
            assert_rows_kept(conn, before)
        outcomes.append((point, revision))
        if revision == HEAD:
            break  # committed just before the kill: nothing left to interrupt

    # A kill before COMMIT leaves the old revision: head only once the run is through.
    assert all(rev == start for point, rev in outcomes if point < total), outcomes
    migrations.close()

    started = orch.start()

    assert f"schema {HEAD}" in started.stdout, started.stdout
    orch.stop()
    assert orch.processes() == []
    with closing(_connect(db)) as conn:
        assert _revision(conn) == HEAD
        assert _schema(conn) == schemas[HEAD]
        assert_sound(conn)
        assert_rows_kept(conn, before)
