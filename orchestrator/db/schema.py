"""The schema, owned by Alembic: check a database before touching it, then upgrade it.

`alembic upgrade head` runs programmatically at every start, on one
connection, with foreign keys off for batch migrations and in a single
transaction, so that a crash leaves the old revision or the new, never one
in between.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator import resources
from orchestrator.db.readonly import SQLITE_MAGIC
from orchestrator.db.revision import HEAD
from orchestrator.errors import DamagedDatabaseError, DatabaseError

# Alembic and SQLAlchemy are imported by the functions that use them: checking
# a database already at HEAD (every start but the first after an upgrade) needs neither.
if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Connection


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config pointing at our migrations (no alembic.ini needed)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.migrations_dir()))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str:
    """The newest revision this code knows."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise DatabaseError("this installation has no migrations; reinstall nua-orchestrator")
    return head


def known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    return {rev.revision for rev in script.walk_revisions()}


def check_sqlite_file(path: Path) -> str | None:
    """Refuse a file that is not ours to upgrade; return its revision (None when new).

    Reads only: a database that is foreign, corrupt or newer than the code is
    reported and left exactly as it was.
    """
    try:
        st = path.lstat()
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        raise DatabaseError(f"database {path} is a symlink; refusing to follow it")
    if not stat.S_ISREG(st.st_mode):
        raise DatabaseError(f"database {path} is not a regular file")
    if st.st_mode & 0o077:
        raise DatabaseError(
            f"database {path} has mode {stat.S_IMODE(st.st_mode):04o}; it holds secrets "
            f"and must be private: run chmod 600 {path}"
        )
    if st.st_size == 0:
        return None
    with open(path, "rb") as fh:
        header = fh.read(len(SQLITE_MAGIC))
    if header != SQLITE_MAGIC:
        raise DamagedDatabaseError(
            f"database {path} is not an SQLite database; nothing was changed: "
            "move it aside or restore a backup"
        )
    revision = _read_revision(path)
    if revision is not None and revision != HEAD and revision not in known_revisions():
        raise DatabaseError(
            f"database {path} is at schema revision {revision}, newer than this "
            f"nua-orchestrator (head {head_revision()}); nothing was changed: "
            "upgrade nua-orchestrator or restore a backup"
        )
    return revision


def ensure_sqlite_file(path: Path) -> bool:
    """Check the database file, and create it 0600 if missing; True when created.

    SQLite would create it with the process umask; creating it first means
    it is never readable by others, whoever runs the migration.
    """
    check_sqlite_file(path)
    if path.exists():
        return False
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    os.close(fd)
    return True


def _read_revision(path: Path) -> str | None:
    """The file's revision, after a structural check of every page (`quick_check`)."""
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            problems = [str(r[0]) for r in conn.execute("PRAGMA quick_check(5)")]
            if problems != ["ok"]:
                raise DamagedDatabaseError(
                    f"database {path} is damaged ({_first_problem(problems)}); "
                    "nothing was changed: restore a backup"
                )
            tables = {
                row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if "alembic_version" not in tables:
                if tables:
                    raise DatabaseError(
                        f"database {path} has tables but no alembic_version: it is not a "
                        "Nua database; nothing was changed"
                    )
                return None
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            return row[0] if row else None
    except sqlite3.DatabaseError as exc:
        raise DamagedDatabaseError(
            f"database {path} cannot be read ({exc}); nothing was changed: "
            "restore a backup or move it aside"
        ) from None


def _first_problem(problems: list[str]) -> str:
    """The first line of SQLite's check report that names a problem."""
    lines = [
        line.strip()
        for text in problems
        for line in text.splitlines()
        if line.strip() and not line.startswith("***")
    ]
    return lines[0] if lines else "unknown problem"


@contextmanager
def migration_transaction(connection: Connection) -> Iterator[None]:
    """One transaction for a whole migration run, with foreign keys off on SQLite.

    SQLite ignores `PRAGMA foreign_keys` inside a transaction, so it is turned
    off on the raw connection first, and the foreign keys are checked before
    the migration commits.
    """
    from sqlalchemy import text

    sqlite = connection.dialect.name == "sqlite"
    raw = connection.connection.dbapi_connection if sqlite else None
    if raw is not None:
        raw.execute("PRAGMA foreign_keys=OFF")
    try:
        with connection.begin():
            yield
            if sqlite:
                broken = connection.execute(text("PRAGMA foreign_key_check")).fetchall()
                if broken:
                    raise DatabaseError(
                        f"migration left {len(broken)} rows breaking foreign keys "
                        f"(first: {tuple(broken[0])}); rolled back, nothing was changed"
                    )
    finally:
        if raw is not None:
            raw.execute("PRAGMA foreign_keys=ON")


def upgrade(connection: Connection) -> None:
    """Bring the schema to head on `connection`, in one transaction."""
    from alembic import command

    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    with migration_transaction(connection):
        command.upgrade(cfg, "head")


def current_revision(connection: Connection) -> str | None:
    """The revision recorded in the database, or None before the first migration.

    Read with one query, as Alembic records it (one row: the schema is linear),
    so that the worker does not import Alembic to start.
    """
    from sqlalchemy import inspect, text

    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
