"""Read-only looks at an SQLite file: integrity, tables, schema revision.

Backups, restores and `db check` open databases with these and never write:
`mode=ro` makes SQLite refuse any change, whoever else has the file open.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

# Kept here, free of SQLAlchemy and Alembic, so that backup, backups and status
# start fast; the engine and the schema checks import them from here.
SQLITE_MAGIC = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 10_000
# integrity_check stops after this many problems; enough to say what is wrong.
MAX_INTEGRITY_ERRORS = 20


def open_readonly(path: Path) -> sqlite3.Connection:
    """A connection that cannot change `path` (raises sqlite3.Error if unreadable)."""
    conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return conn


def integrity_errors(conn: sqlite3.Connection) -> list[str]:
    """What `PRAGMA integrity_check` found; empty when the file is sound."""
    rows = [str(r[0]) for r in conn.execute(f"PRAGMA integrity_check({MAX_INTEGRITY_ERRORS})")]
    return [] if rows == ["ok"] else rows


def foreign_key_errors(conn: sqlite3.Connection) -> list[str]:
    """Rows that break a foreign key, as `table rowid -> parent`."""
    return [
        f"{t} row {rowid} -> {parent}"
        for t, rowid, parent, _fk in conn.execute("PRAGMA foreign_key_check")
    ]


def table_names(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def revision(conn: sqlite3.Connection) -> str | None:
    """The Alembic revision recorded in the file; None without alembic_version."""
    if "alembic_version" not in table_names(conn):
        return None
    row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return str(row[0]) if row else None


def has_sqlite_header(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
