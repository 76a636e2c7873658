"""The single writer: group commits, a failing job alone, busy retries, idempotency."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from orchestrator.db.prepared import Prepared, Statements
from orchestrator.rpc.errors import Conflict, Unavailable
from orchestrator.rpc.idempotency import IDEMPOTENCY, Answers, fingerprint
from orchestrator.rpc.writer import Writer
from tests.support.polling import wait_for


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


@contextmanager
def _keyed(*idempotency: str) -> Iterator[None]:
    """Run the block as a call carrying (key, method[, fingerprint])."""
    token = IDEMPOTENCY.set(idempotency)  # type: ignore[arg-type]
    try:
        yield
    finally:
        IDEMPOTENCY.reset(token)


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
        with _keyed("key-1", "user.add"):
            assert writer.write(_add("once")) == "once"
            # The retry's job would fail (same username); the stored answer comes back.
            assert writer.write(_add("once")) == "once"
        with _keyed("key-1", "user.delete"), pytest.raises(Conflict):
            writer.write(_add("other"))
    finally:
        writer.stop()
    assert _count(engine) == 1


# -- statements jobs (run on the driver connection, orchestrator/db/prepared.py) ------------

_INSERT_NAMED = Prepared(
    text(
        "INSERT INTO users (username, email, role, created_at, updated_at) "
        "VALUES (:n, :e, 'user', '2026-01-01', '2026-01-01')"
    )
)


def _add_statements(name: str, twice: bool = False):  # returns a job: Statements -> result
    def job(statements: Statements) -> str:
        statements.run(_INSERT_NAMED, {"n": name, "e": f"{name}@example.com"})
        if twice:  # the same username again: this job's first row must roll back with it
            statements.run(_INSERT_NAMED, {"n": name, "e": f"{name}2@example.com"})
        return name

    return job


def test_statements_and_session_jobs_share_a_commit_and_a_failing_one_fails_alone(
    engine: Engine,
) -> None:
    writer = _start(Writer(engine))
    gate = threading.Event()
    try:
        first = writer.submit(lambda session: gate.wait(10))
        wait_for(lambda: writer._queue.empty(), timeout=5, what="the blocker to run")
        futures = [
            writer.submit(_add_statements("s1"), statements=True),
            writer.submit(_add("orm1")),
            writer.submit(_add_statements("dup", twice=True), statements=True),
            writer.submit(_add_statements("s2"), statements=True),
            writer.submit(_add("orm2")),
        ]
        assert not any(f.done() for f in futures)  # answered only once committed
        gate.set()
        first.result(timeout=10)
        with pytest.raises(IntegrityError, match="UNIQUE"):
            futures[2].result(timeout=10)
        assert [futures[i].result(timeout=10) for i in (0, 1, 3, 4)] == ["s1", "orm1", "s2", "orm2"]
    finally:
        writer.stop()
    with engine.connect() as conn:
        names = [n for (n,) in conn.execute(text("SELECT username FROM users ORDER BY id"))]
    assert names == ["s1", "orm1", "s2", "orm2"]
    assert writer.commits == 2


def test_a_statements_job_with_a_key_applies_once_and_returns_the_first_answer(
    engine: Engine,
) -> None:
    writer = _start(Writer(engine))
    try:
        with _keyed("key-s", "user.add", fingerprint("user.add", {"n": "once"})):
            assert writer.write_statements(_add_statements("once")) == "once"
            assert writer.write_statements(_add_statements("once")) == "once"
        other = fingerprint("user.add", {"n": "other"})
        with _keyed("key-s", "user.add", other), pytest.raises(Conflict):
            writer.write_statements(_add_statements("other"))
    finally:
        writer.stop()
    assert _count(engine) == 1
    assert _keys(engine) == ["key-s"]


def test_a_statements_job_that_fails_on_the_database_aborts_its_batch(engine: Engine) -> None:
    # An OperationalError is the database's trouble, not the job's: nothing of
    # the batch is committed, and every caller is told the change was not saved.
    writer = _start(Writer(engine, busy_retry_seconds=0))
    broken = Prepared(text("INSERT INTO no_such_table VALUES (1)"))
    gate = threading.Event()
    try:
        first = writer.submit(lambda session: gate.wait(10))
        wait_for(lambda: writer._queue.empty(), timeout=5, what="the blocker to run")
        fine = writer.submit(_add_statements("fine"), statements=True)
        bad = writer.submit(lambda statements: statements.run(broken), statements=True)
        gate.set()
        first.result(timeout=10)
        for future in (fine, bad):
            with pytest.raises(Unavailable):
                future.result(timeout=10)
    finally:
        writer.stop()
    assert _count(engine) == 0


# -- idempotency answers age out -----------------------------------------------------------


class Clock:
    """A clock the test moves by hand: wall time (datetime) or monotonic seconds."""

    def __init__(self, start: Any) -> None:
        self.now = start

    def __call__(self) -> Any:
        return self.now


T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _answers(wall: Clock, mono: Clock) -> Answers:
    return Answers(hours=1.0, prune_every=600.0, clock=wall, monotonic=mono)


def _keys(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [k for (k,) in conn.execute(text("SELECT key FROM idempotency_keys ORDER BY key"))]


def _write_with_key(writer: Writer, key: str, job: Any) -> Any:
    with _keyed(key, "user.add"):
        return writer.write(job)


def test_an_answer_older_than_the_window_is_not_returned(engine: Engine) -> None:
    wall, mono = Clock(T0), Clock(0.0)
    writer = _start(Writer(engine, answers=_answers(wall, mono)))
    try:
        assert _write_with_key(writer, "k", _add("first")) == "first"
        wall.now = T0 + timedelta(minutes=59)
        # Within the window (and before any pruning): the first answer, nothing applied.
        assert _write_with_key(writer, "k", _add("second")) == "first"
        assert _count(engine) == 1
        wall.now = T0 + timedelta(minutes=61)
        # No prune is due (the monotonic clock stood still), yet the old answer is ignored:
        # the key is new again, its call is applied, and its answer replaces the old one.
        assert _write_with_key(writer, "k", _add("third")) == "third"
        assert _write_with_key(writer, "k", _add("fourth")) == "third"
    finally:
        writer.stop()
    assert _count(engine) == 2
    assert _keys(engine) == ["k"]


def test_old_answers_are_pruned_while_the_writer_runs(engine: Engine) -> None:
    wall, mono = Clock(T0), Clock(0.0)
    answers = _answers(wall, mono)
    writer = _start(Writer(engine, answers=answers))
    try:
        _write_with_key(writer, "k1", _add("u1"))  # the first commit prunes (nothing yet)
        wait_for(lambda: answers.last_prune == 0.0, timeout=5, what="the first prune")
        _write_with_key(writer, "k2", _add("u2"))
        wall.now, mono.now = T0 + timedelta(hours=2), 100.0
        _write_with_key(writer, "k3", _add("u3"))
        # Not due yet: at most one prune every prune_every seconds.
        assert _keys(engine) == ["k1", "k2", "k3"]
        mono.now = 700.0
        _write_with_key(writer, "k4", _add("u4"))
        wait_for(lambda: _keys(engine) == ["k3", "k4"], timeout=5, what="k1 and k2 pruned")
    finally:
        writer.stop()
    assert answers.pruned == 2
    assert answers.last_prune == 700.0
    assert _count(engine) == 4  # pruning forgets answers, never the changes they made


def test_a_failed_prune_is_logged_and_the_writer_goes_on(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    wall, mono = Clock(T0), Clock(0.0)
    answers = _answers(wall, mono)

    def broken(_engine: Engine) -> int:
        answers.last_prune = mono()
        raise OperationalError("DELETE", {}, sqlite3.OperationalError("database is locked"))

    answers.prune = broken  # type: ignore[method-assign]
    writer = _start(Writer(engine, answers=answers))
    try:
        with caplog.at_level(logging.WARNING, logger="nua.rpc.idempotency"):
            assert _write_with_key(writer, "k1", _add("u1")) == "u1"
            wait_for(lambda: answers.last_prune == 0.0, timeout=5, what="the prune attempt")
            assert _write_with_key(writer, "k2", _add("u2")) == "u2"
    finally:
        writer.stop()
    assert "pruning old idempotency answers failed" in caplog.text
    assert _count(engine) == 2


def test_prune_deletes_only_answers_older_than_the_window(engine: Engine) -> None:
    wall, mono = Clock(T0), Clock(0.0)
    answers = _answers(wall, mono)
    writer = _start(Writer(engine, answers=answers))
    try:
        _write_with_key(writer, "old", _add("u1"))
        wall.now = T0 + timedelta(minutes=30)
        _write_with_key(writer, "recent", _add("u2"))
    finally:
        writer.stop()
    wall.now = T0 + timedelta(minutes=75)
    assert answers.prune(engine) == 1
    assert _keys(engine) == ["recent"]


# -- a reused key with other parameters is a conflict -------------------------------------


def test_a_key_reused_with_other_params_is_a_conflict_and_changes_nothing(engine: Engine) -> None:
    writer = _start(Writer(engine))
    first_params = {"username": "once", "email": "once@example.com"}
    other_params = {"username": "twice", "email": "twice@example.com"}

    def call(params: dict[str, Any], job: Any) -> Any:
        with _keyed("k", "user.add", fingerprint("user.add", params)):
            return writer.write(job)

    try:
        assert call(first_params, _add("once")) == "once"
        # The same params in another order: the same request, the first answer.
        assert call(dict(reversed(first_params.items())), _add("again")) == "once"
        with pytest.raises(Conflict) as conflict:
            call(other_params, _add("twice"))
    finally:
        writer.stop()
    error = conflict.value.to_error()
    assert error["code"] == -32004
    assert error["data"] == {"name": "conflict", "field": "idempotency_key"}
    assert "with other parameters" in error["message"]
    assert _count(engine) == 1


def test_an_answer_stored_without_a_fingerprint_is_returned_as_before(engine: Engine) -> None:
    """Rows from before revision 0005 have no fingerprint: nothing to compare with."""
    writer = _start(Writer(engine))
    try:
        assert _write_with_key(writer, "k", _add("old")) == "old"  # (key, method): none stored
        with _keyed("k", "user.add", fingerprint("user.add", {"username": "x"})):
            assert writer.write(_add("new")) == "old"
    finally:
        writer.stop()
    assert _count(engine) == 1


def test_fingerprint_is_canonical_and_leaves_secrets_out() -> None:
    base = fingerprint("user.add", {"username": "a", "email": "a@example.com", "role": "user"})
    assert len(base) == 64
    assert base == fingerprint(
        "user.add", {"role": "user", "email": "a@example.com", "username": "a"}
    )
    assert base != fingerprint("user.add", {"username": "a", "email": "b@example.com"})
    assert base != fingerprint(
        "user.update", {"username": "a", "email": "a@example.com", "role": "user"}
    )
    assert fingerprint("user.add", {"n": 1}) != fingerprint("user.add", {"n": "1"})
    assert fingerprint("user.add", {"tags": [1, 2]}) != fingerprint("user.add", {"tags": [2, 1]})
    # A password never reaches a fast hash stored in the database.
    assert fingerprint("user.set_password", {"username": "a", "password": "one"}) == (
        fingerprint("user.set_password", {"username": "a", "password": "two"})
    )
    # Any text JSON can carry, lone surrogates included, can be fingerprinted.
    assert len(fingerprint("user.add", {"username": "\ud800\u00e9"})) == 64


# -- a batch runs together, or one job at a time after a failure -----------------------------


@contextmanager
def _sql_seen(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements run on connections opened by `engine` inside the block."""
    seen: list[str] = []

    def trace(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.set_trace_callback(seen.append)

    event.listen(engine, "connect", trace)
    engine.dispose()  # connections opened from now on are traced
    try:
        yield seen
    finally:
        event.remove(engine, "connect", trace)
        engine.dispose()


def _run_batch(writer: Writer, jobs: list[tuple[tuple[str, ...] | None, Any]]) -> list[Any]:
    """Queue `jobs` ((idempotency, statements job)) behind a blocker, so that they form one
    batch; their futures."""
    gate = threading.Event()
    first = writer.submit(lambda session: gate.wait(10))
    wait_for(lambda: writer._queue.empty(), timeout=5, what="the blocker to run")
    futures = []
    for idempotency, job in jobs:
        token = IDEMPOTENCY.set(idempotency)  # type: ignore[arg-type]
        try:
            futures.append(writer.submit(job, statements=True))
        finally:
            IDEMPOTENCY.reset(token)
    gate.set()
    first.result(timeout=10)
    for future in futures:
        future.exception(timeout=10)
    return futures


def _savepoints(seen: list[str], name: str = "") -> int:
    return sum(sql.startswith(f"SAVEPOINT {name}") for sql in seen)


def test_a_batch_without_failures_commits_without_savepoints_and_stores_every_answer(
    engine: Engine,
) -> None:
    writer = _start(Writer(engine))
    try:
        with _sql_seen(engine) as seen:
            futures = _run_batch(
                writer, [((f"k{i}", "user.add"), _add_statements(f"t{i}")) for i in range(5)]
            )
            assert [f.result() for f in futures] == [f"t{i}" for i in range(5)]
            assert _savepoints(seen) == 0
            # The answers go in with one executemany, not one statement each.
            assert sum("INSERT INTO idempotency_keys" in sql for sql in seen) == 5
            assert writer.reruns == 0
            # Each key now returns its first answer and changes nothing more.
            with _keyed("k3", "user.add"):
                assert writer.write_statements(_add_statements("t3")) == "t3"
    finally:
        writer.stop()
    assert _count(engine) == 5
    assert _keys(engine) == [f"k{i}" for i in range(5)]


def test_a_failing_job_reruns_its_batch_one_by_one_and_fails_alone(engine: Engine) -> None:
    writer = _start(Writer(engine))
    try:
        with _sql_seen(engine) as seen:
            futures = _run_batch(
                writer,
                [
                    (("a", "user.add"), _add_statements("a")),
                    (("bad", "user.add"), _add_statements("bad", twice=True)),
                    (("c", "user.add"), _add_statements("c")),
                ],
            )
            assert futures[0].result() == "a" and futures[2].result() == "c"
            with pytest.raises(IntegrityError, match="UNIQUE"):
                futures[1].result()
            assert writer.reruns == 1
            assert _savepoints(seen, "nua_job") == 3  # the rerun: one savepoint per job
            # The next batch runs one by one too; being clean, the one after runs together.
            writer.write_statements(_add_statements("d"))
            assert _savepoints(seen, "nua_job") == 4
            writer.write_statements(_add_statements("e"))
            assert _savepoints(seen, "nua_job") == 4
            assert writer.reruns == 1
    finally:
        writer.stop()
    assert _count(engine) == 4
    assert _keys(engine) == ["a", "c"]  # a failed call's key keeps no answer


def test_a_retry_in_a_batch_gets_the_first_answer_and_applies_once(engine: Engine) -> None:
    writer = _start(Writer(engine))
    try:
        with _keyed("first", "user.add"):
            assert writer.write_statements(_add_statements("one")) == "one"
        futures = _run_batch(
            writer,
            [
                (("first", "user.add"), _add_statements("one")),  # a retry of a stored call
                (("twice", "user.add"), _add_statements("two")),  # sent twice in one batch
                (("twice", "user.add"), _add_statements("two")),
                (("other", "user.add"), _add_statements("three")),
            ],
        )
        assert [f.result() for f in futures] == ["one", "two", "two", "three"]
        assert writer.reruns == 1
    finally:
        writer.stop()
    assert _count(engine) == 3
    assert _keys(engine) == ["first", "other", "twice"]
