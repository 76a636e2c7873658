"""Preparing the database at start: check it, upgrade it, bootstrap settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import OperationalError, SQLAlchemyError

from orchestrator.db.engine import make_engine
from orchestrator.db.schema import current_revision, ensure_sqlite_file, upgrade
from orchestrator.db.url import database_url, display_url, sqlite_path
from orchestrator.errors import DamagedDatabaseError, DatabaseError
from orchestrator.host.locations import Locations
from orchestrator.settings import store
from orchestrator.settings.defaults import SettingValue
from orchestrator.settings.store import MergePlan


@dataclass(frozen=True)
class PreparedDatabase:
    url: str
    revision: str | None
    created: bool
    merge: MergePlan
    stored_settings: dict[str, Any]


def prepare(locations: Locations, defaults: dict[str, SettingValue]) -> PreparedDatabase:
    """Check the database (touching nothing if it is not ours), upgrade it, merge settings.

    Call with the instance lock held.
    """
    url = database_url(locations)
    path = sqlite_path(url)
    try:
        created = ensure_sqlite_file(path) if path is not None else False
    except DamagedDatabaseError as exc:
        from orchestrator.services.backup import restore_advice

        raise DamagedDatabaseError(f"{exc.message}; {restore_advice(locations)}") from None
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            upgrade(conn)
            merge = store.bootstrap(conn, defaults)
            stored = store.read_all(conn)
            revision = current_revision(conn)
    except DatabaseError:
        raise
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
