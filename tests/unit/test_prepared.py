"""orchestrator/db/prepared.py: statements run on the driver store what the ORM would."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, insert, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from orchestrator.db.models import IdempotencyRecord, User
from orchestrator.db.prepared import Prepared, Statements

MOMENT = datetime(2026, 12, 4, 18, 45, 57, 123456, tzinfo=UTC)
USER_COLUMNS = ("username", "email", "role", "password_hash", "created_at", "updated_at")
INSERT_USER = Prepared(insert(User).returning(User.id), USER_COLUMNS)
RECORD = Prepared(
    insert(IdempotencyRecord), ("key", "method", "fingerprint", "result", "created_at")
)


def _row(name: str) -> dict[str, object]:
    return {
        "username": name,
        "email": f"{name}@example.org",
        "role": "user",
        "password_hash": None,
        "created_at": MOMENT,
        "updated_at": MOMENT,
    }


@contextmanager
def _in_transaction(engine: Engine) -> Iterator[tuple[Session, Statements]]:
    """A writer's transaction: its Session, and Statements on the same connection."""
    with Session(engine) as session, session.begin():
        driver = session.connection().connection.driver_connection
        yield session, Statements(driver, engine.dialect)


def _stored(engine: Engine, sql: str) -> list[tuple[object, ...]]:
    """Rows as SQLite holds them (no SQLAlchemy type processing)."""
    with engine.connect() as connection:
        return [tuple(row) for row in connection.exec_driver_sql(sql)]


def test_rows_are_stored_exactly_as_the_orm_stores_them(engine: Engine) -> None:
    with _in_transaction(engine) as (session, statements):
        new_id = statements.scalar(INSERT_USER, _row("prepared"))
        session.execute(insert(User), [_row("orm")])
        record = {"method": "m", "fingerprint": None, "result": {"a": [1, 2.0]}}
        statements.run(RECORD, {"key": "k1", "created_at": MOMENT, **record})
        session.execute(insert(IdempotencyRecord), [{"key": "k2", "created_at": MOMENT, **record}])
    assert isinstance(new_id, int)
    users = _stored(engine, "SELECT created_at, updated_at FROM users ORDER BY username")
    assert users[0] == users[1]  # the datetime's text, as SQLAlchemy's SQLite type writes it
    records = _stored(engine, "SELECT result, created_at FROM idempotency_keys ORDER BY key")
    assert records[0] == records[1]
    assert records[0][0] == '{"a":[1,2.0]}'  # JSON text, the float kept a float
    with Session(engine) as session:
        read = session.scalars(select(User).where(User.id == new_id)).one()
    assert read.created_at.replace(tzinfo=UTC) == MOMENT


def test_a_unique_violation_is_sqlalchemys_integrity_error_without_the_values(
    engine: Engine,
) -> None:
    with _in_transaction(engine) as (_session, statements):
        statements.run(INSERT_USER, _row("alice"))
        with pytest.raises(IntegrityError) as info:
            statements.run(INSERT_USER, {**_row("alice"), "password_hash": "secret-hash"})
        assert isinstance(info.value.orig, sqlite3.IntegrityError)
        assert "users.username" in str(info.value.orig)
        assert "secret-hash" not in str(info.value)


def test_a_savepoint_undoes_its_block_alone_and_passes_the_error_on(engine: Engine) -> None:
    with _in_transaction(engine) as (_session, statements):
        statements.run(INSERT_USER, _row("kept"))
        with pytest.raises(ValueError, match="the job's own error"), statements.savepoint():
            statements.run(INSERT_USER, _row("undone"))
            raise ValueError("the job's own error")
        with statements.savepoint():
            statements.run(INSERT_USER, _row("also-kept"))
    assert _stored(engine, "SELECT username FROM users ORDER BY id") == [("kept",), ("also-kept",)]


def test_a_savepoint_whose_transaction_is_gone_stops_the_caller(engine: Engine) -> None:
    # If the database ends the whole transaction, going on would run the next
    # jobs outside it (each committed alone): the error must reach the writer.
    with pytest.raises(OperationalError), Session(engine) as session, session.begin():
        statements = Statements(session.connection().connection.driver_connection, engine.dialect)
        with statements.savepoint():
            statements.run(INSERT_USER, _row("gone"))
            session.connection().exec_driver_sql("ROLLBACK")
            raise ValueError("the job failed after its transaction ended")
    assert _stored(engine, "SELECT count(*) FROM users") == [(0,)]


def test_an_operational_error_keeps_its_own_cause_when_the_rollback_fails_too(
    engine: Engine,
) -> None:
    with pytest.raises(OperationalError, match="no such table"), Session(engine) as session:
        session.begin()
        statements = Statements(session.connection().connection.driver_connection, engine.dialect)
        with statements.savepoint():
            session.connection().exec_driver_sql("ROLLBACK")
            statements.run(Prepared(text("INSERT INTO nowhere VALUES (1)")))


def test_a_missing_column_value_is_a_key_error_not_a_default(engine: Engine) -> None:
    row = _row("partial")
    del row["created_at"]
    with (
        _in_transaction(engine) as (_session, statements),
        pytest.raises(KeyError, match="created"),
    ):
        statements.run(INSERT_USER, row)


def test_a_statement_is_compiled_once_per_dialect(engine: Engine) -> None:
    prepared = Prepared(insert(User).returning(User.id), USER_COLUMNS)
    first = prepared.form(engine.dialect)
    assert prepared.form(engine.dialect) is first
    assert first.sql.startswith("INSERT INTO users")
    assert first.names == USER_COLUMNS
