"""Which database: `NUA_DATABASE_URL`, or the SQLite file in the data location."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from orchestrator.host.locations import Locations

DATABASE_URL_ENV = "NUA_DATABASE_URL"


def database_url(locations: Locations, environ: Mapping[str, str] | None = None) -> str:
    """The SQLAlchemy URL of the database, resolved the same way by start and by alembic."""
    env = os.environ if environ is None else environ
    return env.get(DATABASE_URL_ENV) or f"sqlite:///{locations.database}"


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL, or None for another backend or an in-memory database."""
    plain = url.removeprefix("sqlite:///")
    if plain != url and plain and "?" not in plain and plain != ":memory:":
        return Path(plain)  # the default, without importing SQLAlchemy
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    if parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def display_url(url: str) -> str:
    """The URL with any password hidden, for status and logs."""
    if "@" not in url:
        return url
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
