"""orchestrator/services/database.py: look without writing, then upgrade; errors in one line."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from orchestrator.errors import DatabaseError
from orchestrator.host.locations import Locations, resolve
from orchestrator.services import database
from orchestrator.settings.defaults import DEFAULTS_FILE, load_defaults

UNKNOWN = "ffffffffffff"


@pytest.fixture
def where(short_home: Path, monkeypatch: pytest.MonkeyPatch) -> Locations:
    monkeypatch.delenv("NUA_DATABASE_URL", raising=False)
    locations = resolve(short_home, environ={})
    locations.ensure()
    return locations


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _stamp(path: Path, revision: str) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=WAL")  # as every engine sets it: no change on open
        with conn:
            conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
            conn.execute("INSERT INTO alembic_version VALUES (?)", (revision,))
    finally:
        conn.close()


# -- preview: nothing written ----------------------------------------------------------


def test_preview_of_a_fresh_home_creates_no_database(where: Locations) -> None:
    defaults = load_defaults(DEFAULTS_FILE)
    seen = database.preview(where, defaults)
    assert seen.path == where.database
    assert seen.stored_settings == defaults  # what the first start will store
    assert not where.database.exists()


def test_preview_reads_the_settings_as_the_merge_will_leave_them(where: Locations) -> None:
    shipped = load_defaults(DEFAULTS_FILE)
    database.prepare(where, shipped)
    conn = sqlite3.connect(where.database)
    try:
        with conn:
            # The operator changed one value; another is still the shipped default.
            conn.execute("UPDATE settings SET value = '7' WHERE key = 'sentinel.failures'")
    finally:
        conn.close()
    before = _digest(where.database)
    newer = {
        **shipped,
        "sentinel.failures": 4,  # changed by the operator: kept
        "rpc.threads": 16,  # untouched by the operator: follows the new default
        "extras.note": "new",  # new: added
    }

    seen = database.preview(where, newer)

    assert seen.stored_settings["sentinel.failures"] == 7
    assert seen.stored_settings["rpc.threads"] == 16
    assert seen.stored_settings["extras.note"] == "new"
    assert _digest(where.database) == before
    prepared = database.prepare(where, newer, seen)
    assert prepared.stored_settings == seen.stored_settings


# -- errors: one line, what and where and what to do -----------------------------------


def test_unknown_revision_on_another_backend_is_a_database_error(
    where: Locations, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite files are checked before Alembic runs; another backend meets Alembic's error."""
    _stamp(where.database, UNKNOWN)
    before = _digest(where.database)
    monkeypatch.setattr(database, "sqlite_path", lambda _url: None)

    with pytest.raises(DatabaseError) as info:
        database.prepare(where, load_defaults(DEFAULTS_FILE))

    message = str(info.value)
    assert f"database sqlite:///{where.database} could not be upgraded" in message
    assert UNKNOWN in message
    assert "upgrade nua-orchestrator" in message
    assert "\n" not in message
    assert _digest(where.database) == before


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("not a url", "NUA_DATABASE_URL='not a url' is not a database URL"),
        ("post gres://nua:s3cret@db/nua", "is not a database URL"),
        ("postgresql://nua:s3cret@db:notaport/nua", "NUA_DATABASE_URL='postgresql://nua:***@"),
        ("foo://db/nua", "Can't load plugin: sqlalchemy.dialects:foo"),
        ("postgresql://nua:s3cret@db/nua", "its database driver is not installed"),
    ],
)
def test_a_database_url_that_cannot_be_used(
    where: Locations, monkeypatch: pytest.MonkeyPatch, url: str, expected: str
) -> None:
    monkeypatch.setenv("NUA_DATABASE_URL", url)
    with pytest.raises(DatabaseError) as info:
        database.preview(where, load_defaults(DEFAULTS_FILE))
    message = str(info.value)
    assert expected in message
    assert "NUA_DATABASE_URL" in message
    assert "s3cret" not in message
    assert "\n" not in message
    assert not where.database.exists()
