"""The single writer: group commits, a failing job alone, busy retries, idempotency."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from orchestrator.db.engine import make_engine
from orchestrator.db.schema import upgrade
from orchestrator.rpc.errors import Conflict, Unavailable
from orchestrator.rpc.writer import IDEMPOTENCY, Writer
from tests.support.polling import wait_for


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    # A short busy timeout, so that a held lock is felt within the test.
    engine = make_engine(f"sqlite:///{tmp_path / 'nua.db'}", busy_timeout_ms=100)
    with engine.connect() as connection:
        upgrade(connection)
    yield engine
    engine.dispose()


def _add(name: str):  # returns a job: Session -> result
    def job(session: Session) -> str:
        session.execute(
            text(
                "INSERT INTO users (username, email, role, created_at, updated_at) "
                "VALUES (:n, :e, 'user', '2026-01-01', '2026-01-01')"
            ),
            {"n": name, "e": f"{name}@example.com"},
        )
        return name

    return job


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM users")).scalar_one()


def _start(writer: Writer) -> Writer:
    writer.start()
    return writer


def test_concurrent_writes_share_commits_and_a_failing_job_fails_alone(engine: Engine) -> None:
    writer = _start(Writer(engine))
    gate = threading.Event()

    def blocker(session: Session) -> None:
        gate.wait(10)  # holds the writer so that the next jobs queue up together

    def failing(session: Session) -> None:
        _add("dup")(session)
        _add("dup")(session)  # unique username: this job's two rows roll back together

    try:
        with ThreadPoolExecutor(8) as pool:
            first = pool.submit(writer.write, blocker)
            wait_for(lambda: writer._queue.empty(), timeout=5, what="the blocker to run")
            futures = [pool.submit(writer.write, _add(f"u{i}")) for i in range(6)]
            bad = pool.submit(writer.write, failing)
            wait_for(lambda: writer._queue.qsize() == 7, timeout=5, what="jobs to queue")
            gate.set()
            first.result(timeout=10)
            assert sorted(f.result(timeout=10) for f in futures) == [f"u{i}" for i in range(6)]
            with pytest.raises(Exception, match="UNIQUE"):
                bad.result(timeout=10)
    finally:
        writer.stop()
    assert _count(engine) == 6
    assert writer.jobs == 8 and writer.commits == 2


def _hold_write_lock(path: str, release: threading.Event, held: threading.Event) -> None:
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("BEGIN IMMEDIATE")
        held.set()
        release.wait(10)
        conn.execute("COMMIT")


def test_a_write_lock_held_by_another_process_is_waited_out(engine: Engine) -> None:
    writer = _start(Writer(engine, busy_retry_seconds=10))
    release, held = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(engine.url.database, release, held))
    holder.start()
    try:
        held.wait(5)
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(writer.write, _add("patient"))
            # Several busy timeouts (100 ms each) pass while the lock is held.
            wait_for(lambda: writer._queue.empty(), timeout=5, what="the job to start")
            with pytest.raises(TimeoutError):
                pending.result(timeout=0.5)
            release.set()
            assert pending.result(timeout=10) == "patient"
    finally:
        release.set()
        holder.join(10)
        writer.stop()
    assert _count(engine) == 1


def test_a_lock_held_past_the_retry_budget_is_a_clear_unavailable_error(engine: Engine) -> None:
    writer = _start(Writer(engine, busy_retry_seconds=0.3))
    release, held = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(engine.url.database, release, held))
    holder.start()
    try:
        held.wait(5)
        with pytest.raises(Unavailable) as busy:
            writer.write(_add("impatient"))
    finally:
        release.set()
        holder.join(10)
        writer.stop()
    assert busy.value.data["reason"] == "busy"
    assert "locked" not in busy.value.message
    assert _count(engine) == 0


def test_the_same_idempotency_key_applies_once_and_returns_the_first_answer(
    engine: Engine,
) -> None:
    writer = _start(Writer(engine))
    try:
        token = IDEMPOTENCY.set(("key-1", "user.add"))
        try:
            assert writer.write(_add("once")) == "once"
            # The retry's job would fail (same username); the stored answer comes back.
            assert writer.write(_add("once")) == "once"
        finally:
            IDEMPOTENCY.reset(token)
        token = IDEMPOTENCY.set(("key-1", "user.delete"))
        try:
            with pytest.raises(Conflict):
                writer.write(_add("other"))
        finally:
            IDEMPOTENCY.reset(token)
    finally:
        writer.stop()
    assert _count(engine) == 1
