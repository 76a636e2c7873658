"""The database at start: look at it without writing, then upgrade it and merge settings.

`preview` reads what start must know before it changes anything (is the URL
usable, is the file ours, which settings are stored), so that bad input is
refused while the database is still untouched; `prepare` then upgrades the
schema and merges the defaults.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.db.readonly import open_readonly, table_names
from orchestrator.db.revision import HEAD
from orchestrator.db.schema import check_sqlite_file, ensure_sqlite_file
from orchestrator.db.url import DATABASE_URL_ENV, database_url, display_url, sqlite_path
from orchestrator.errors import DamagedDatabaseError, DatabaseError
from orchestrator.host.locations import Locations
from orchestrator.settings.defaults import SettingValue
from orchestrator.settings.merge import MergePlan, plan_merge

# SQLAlchemy and Alembic are imported where they are used: a SQLite database
# already at HEAD with nothing to merge (most starts) needs neither.
if TYPE_CHECKING:
    from sqlalchemy import Engine

# A password in a URL that SQLAlchemy cannot parse (so cannot hide) for us.
URL_PASSWORD = re.compile(r"(://[^:/@]*:)[^@/]*@")


@dataclass(frozen=True)
class DatabasePreview:
    """What start knows about the database before it changes anything."""

    url: str
    path: Path | None  # the SQLite file; None for another backend
    # The stored settings as `prepare` will leave them, newer defaults merged.
    stored_settings: dict[str, Any]
    revision: str | None = None  # the SQLite file's schema revision (None: new)
    merge: MergePlan | None = None  # what prepare's merge of the defaults will change

    @property
    def up_to_date(self) -> bool:
        """An existing SQLite file at HEAD whose settings need no merge: nothing to write."""
        return (
            self.path is not None
            and self.revision == HEAD
            and self.merge is not None
            and not self.merge.changes_anything
        )


@dataclass(frozen=True)
class PreparedDatabase:
    url: str
    revision: str | None
    created: bool
    merge: MergePlan
    stored_settings: dict[str, Any]


def preview(locations: Locations, defaults: dict[str, SettingValue]) -> DatabasePreview:
    """Check the URL and the database, and read its settings, writing nothing.

    Refuses a URL SQLAlchemy cannot use, and a database file that is foreign,
    damaged or newer than the code.
    """
    url = database_url(locations)
    path = checked_sqlite_path(url)
    revision = None
    if path is not None:
        try:
            revision = check_sqlite_file(path)
        except DamagedDatabaseError as exc:
            from orchestrator.services.backup import restore_advice

            raise DamagedDatabaseError(f"{exc.message}; {restore_advice(locations)}") from None
        pairs = _read_sqlite_settings(path)
    else:
        pairs = _read_settings(url)
    plan = plan_merge(pairs, defaults)
    return DatabasePreview(
        url=url,
        path=path,
        stored_settings=_after_merge(pairs, plan),
        revision=revision,
        merge=plan,
    )


def prepare(
    locations: Locations,
    defaults: dict[str, SettingValue],
    seen: DatabasePreview | None = None,
) -> PreparedDatabase:
    """Check the database (touching nothing if it is not ours), upgrade it, merge settings.

    Call with the instance lock held. `seen` is this start's `preview`, which
    has already checked the database.
    """
    seen = seen or preview(locations, defaults)
    url, path = seen.url, seen.path
    if seen.up_to_date and seen.merge is not None:
        # Checked by preview, under the same lock: nothing to upgrade or merge.
        return PreparedDatabase(
            url=url,
            revision=seen.revision,
            created=False,
            merge=seen.merge,
            stored_settings=seen.stored_settings,
        )
    from alembic.util import CommandError
    from sqlalchemy.exc import OperationalError, SQLAlchemyError

    from orchestrator.db.schema import current_revision, upgrade
    from orchestrator.settings import store

    # An existing file was checked by preview; only a missing one is created (0600).
    created = ensure_sqlite_file(path) if path is not None and not os.path.lexists(path) else False
    engine = checked_engine(url)
    try:
        with engine.connect() as conn:
            upgrade(conn)
            merge = store.bootstrap(conn, defaults)
            stored = store.read_all(conn)
            revision = current_revision(conn)
    except DatabaseError:
        raise
    except CommandError as exc:
        # SQLite files are checked first; another backend at a revision this code
        # does not know ends here.
        raise DatabaseError(
            f"database {display_url(url)} could not be upgraded: {exc}; nothing was changed: "
            "it was probably written by a newer nua-orchestrator: upgrade nua-orchestrator "
            f"or check {DATABASE_URL_ENV}"
        ) from None
    except OperationalError as exc:
        raise DatabaseError(
            f"database {display_url(url)} could not be upgraded: {exc.orig}; nothing was changed"
        ) from None
    except SQLAlchemyError as exc:
        raise DatabaseError(f"database {display_url(url)}: {exc}") from None
    finally:
        engine.dispose()
    return PreparedDatabase(
        url=url, revision=revision, created=created, merge=merge, stored_settings=stored
    )


def _after_merge(pairs: dict[str, tuple[Any, Any]], plan: MergePlan) -> dict[str, Any]:
    """The stored values once `store.bootstrap` has carried out `plan` (see its rules)."""
    values = {key: value for key, (value, _default) in pairs.items()}
    values.update(plan.added)
    values.update(plan.followed)
    return values


def _read_sqlite_settings(path: Path) -> dict[str, tuple[Any, Any]]:
    """Stored (value, default) pairs of a checked SQLite file, through a read-only connection."""
    if not path.exists() or path.stat().st_size == 0:
        return {}
    try:
        conn = open_readonly(path)
        try:
            if "settings" not in table_names(conn):
                return {}
            rows = conn.execute('SELECT key, value, "default" FROM settings').fetchall()
        finally:
            conn.close()
        return {key: (json.loads(value), json.loads(default)) for key, value, default in rows}
    except (sqlite3.Error, ValueError) as exc:
        raise DatabaseError(
            f"database {path}: its settings cannot be read ({exc}); nothing was changed: "
            "run nua-orchestrator db check"
        ) from None


def _read_settings(url: str) -> dict[str, tuple[Any, Any]]:
    """Stored (value, default) pairs of another backend; reads only."""
    from sqlalchemy import inspect, select
    from sqlalchemy.exc import SQLAlchemyError

    from orchestrator.db.models import Setting

    engine = checked_engine(url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table(Setting.__tablename__):
                return {}
            rows = conn.execute(select(Setting.key, Setting.value, Setting.default)).all()
            return {key: (value, default) for key, value, default in rows}
    except SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc
        raise DatabaseError(
            f"database {display_url(url)} cannot be read: {reason}; nothing was changed: "
            f"check that it runs and that {DATABASE_URL_ENV} is right"
        ) from None
    finally:
        engine.dispose()


def checked_sqlite_path(url: str) -> Path | None:
    """`db.url.sqlite_path`, with a URL that cannot be parsed as a DatabaseError naming it."""
    try:
        return sqlite_path(url)
    except Exception as exc:
        # Imported only now: importing sqlalchemy.exc imports all of SQLAlchemy.
        from sqlalchemy.exc import ArgumentError

        if isinstance(exc, ArgumentError | ValueError):
            raise _bad_url(url, exc) from None
        raise


def checked_engine(url: str) -> Engine:
    """`db.engine.make_engine`, with a bad URL or a missing driver as a DatabaseError."""
    from sqlalchemy.exc import ArgumentError

    from orchestrator.db.engine import make_engine

    try:
        return make_engine(url)
    except ImportError as exc:
        raise DatabaseError(
            f"{_source(url)}: its database driver is not installed ({exc}); install it "
            f"where nua-orchestrator runs, or change {DATABASE_URL_ENV}"
        ) from None
    except (ArgumentError, ValueError) as exc:
        raise _bad_url(url, exc) from None


def _bad_url(url: str, exc: Exception) -> DatabaseError:
    return DatabaseError(
        f"{_source(url)} is not a database URL SQLAlchemy can use ({exc}); set "
        f"{DATABASE_URL_ENV} to a URL like sqlite:////path/to/nua.db, or unset it"
    )


def _source(url: str) -> str:
    """Where the URL came from, with any password hidden."""
    from sqlalchemy.exc import ArgumentError

    try:
        shown = display_url(url)
    except (ArgumentError, ValueError):
        shown = URL_PASSWORD.sub(r"\1***@", url)
    if os.environ.get(DATABASE_URL_ENV) == url:
        return f"{DATABASE_URL_ENV}={shown!r}"
    return f"database URL {shown!r}"
