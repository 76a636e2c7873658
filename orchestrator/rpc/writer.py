"""The single writer: changes from concurrent requests share one transaction.

With `synchronous=FULL` every commit waits for the disk; committing each
request alone caps writes at the disk's flush rate. The writer thread takes
every job waiting in its queue, runs them (together; or, when one fails,
again each in its own SAVEPOINT, so that a failing job is rolled back
alone), commits once, and only then answers them all: an acknowledged
write is on disk.

A job is given either the batch's ORM Session (`write`) or, when it only
runs prepared statements, the driver connection (`write_statements`,
orchestrator/db/prepared.py): a write the host makes often (user.add) should
not pay the ORM's per-statement cost in the one thread every change waits on.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from orchestrator.db.prepared import Statements
from orchestrator.rpc.idempotency import (
    IDEMPOTENCY,
    MISSING,
    RECORD_ANSWER,
    Answers,
    Idempotency,
    answer_row,
    is_key_taken,
    stored_answer,
)
from orchestrator.rpc.write_errors import commit_error, is_busy

log = logging.getLogger("nua.rpc.writer")
T = TypeVar("T")


@dataclass
class _Job:
    run: Callable[[Any], Any]  # given a Session, or Statements when `statements`
    idempotency: Idempotency | None
    statements: bool = False
    future: Future[Any] = field(default_factory=Future)


# How long a batch may wait for the callers of the last commit to come back:
# a share of what that commit took (mostly its flush), and never longer than this.
GATHER_SHARE = 0.5
GATHER_MAX = 0.005


class Writer:
    """Runs write jobs on one connection, grouping concurrent ones into one commit."""

    def __init__(
        self,
        engine: Engine,
        max_batch: int = 256,
        busy_retry_seconds: float = 30.0,
        answers: Answers | None = None,
    ) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self.answers = answers or Answers()
        # How long a batch is retried while another process holds the write lock
        # (each attempt already waits the connection's busy timeout).
        self.busy_retry_seconds = busy_retry_seconds
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="nua-writer", daemon=True)
        self.commits = 0
        self.jobs = 0
        # Batches run again one job at a time, after a failing job or a stored key.
        self.reruns = 0
        # Whether the next batch runs one savepoint per job (after a failure).
        self._one_by_one = False

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the jobs already queued, then stop."""
        self._queue.put(None)
        self._thread.join(timeout)

    def write(self, job: Callable[[Session], T]) -> T:
        """Run `job(session)` in the next group commit; return its result once committed."""
        return self.submit(job).result()

    def write_statements(self, job: Callable[[Statements], T]) -> T:
        """Like `write`, for a job that only runs prepared statements: `job(statements)`.

        Such a job must not use the ORM: its savepoint is the driver's, which
        the Session does not know of.
        """
        return self.submit(job, statements=True).result()

    def submit(self, job: Callable[[Any], T], *, statements: bool = False) -> Future[T]:
        """Queue `job` (a Session job, or a statements job); its result once committed.

        The caller's idempotency key (IDEMPOTENCY) is taken now.
        """
        item = _Job(job, IDEMPOTENCY.get(), statements=statements)
        self._queue.put(item)
        return item.future

    def _loop(self) -> None:
        answered = 0  # how many callers the last commit answered
        commit_took = 0.0
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, stop = self._gather(first, answered, commit_took)
            began = time.monotonic()
            self._commit(batch)
            commit_took = time.monotonic() - began
            answered = len(batch)
            self.answers.prune_if_due(self.engine)
            if stop:
                return

    def _gather(self, first: _Job, answered: int, commit_took: float) -> tuple[list[_Job], bool]:
        """The next batch: what waits now, and the callers just answered if they come back soon.

        Callers answered by a commit send their next change a moment later;
        taking only what is queued when the first arrives would split them
        into two alternating half batches, each paying a flush. So the batch
        waits for as many jobs as the last commit answered, at most a fraction
        of what that commit took (GATHER_SHARE, capped by GATHER_MAX): one
        caller at a time never waits.
        """
        batch = [first]
        deadline = time.monotonic() + min(commit_took * GATHER_SHARE, GATHER_MAX)
        while len(batch) < self.max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if len(batch) >= answered or remaining <= 0:
                    break
                try:
                    item = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _commit(self, batch: list[_Job]) -> None:
        give_up = time.monotonic() + self.busy_retry_seconds
        delay = 0.01
        while True:
            try:
                outcomes = self._try_commit(batch)
                break
            except Exception as exc:
                if is_busy(exc) and time.monotonic() + delay < give_up:
                    # Another process holds the write lock past the busy timeout:
                    # nothing was applied, so the whole batch can run again.
                    log.warning("database busy; retrying %d job(s) in %.2fs", len(batch), delay)
                    time.sleep(delay)
                    delay = min(delay * 2, 1.0)
                    continue
                error = commit_error(exc)
                if error.data.get("reason") == "storage_full":
                    log.error(
                        "group commit of %d job(s) failed: %s",
                        len(batch),
                        getattr(exc, "orig", exc),
                    )
                else:
                    log.exception("group commit of %d job(s) failed", len(batch))
                for item in batch:
                    item.future.set_exception(error)
                return
        self.commits += 1
        self.jobs += len(batch)
        for item, (ok, value) in zip(batch, outcomes, strict=True):
            if ok:
                item.future.set_result(value)
            else:
                item.future.set_exception(value)

    def _try_commit(self, batch: list[_Job]) -> list[tuple[bool, Any]]:
        """Commit `batch`: all together when no job fails, else one savepoint per job.

        Jobs rarely fail, so a batch first runs without savepoints and records
        its idempotency answers in one statement. A job's error, or a key
        stored already (a retry), rolls that attempt back, and the batch runs
        again one savepoint per job, which isolates the failure and finds the
        stored answers. After a failure the next batches run that way until
        one has no failed job, so that a run of failing calls is not paid twice.
        """
        if not self._one_by_one:
            try:
                return self._commit_together(batch)
            except _RunOneByOne:
                self.reruns += 1
                self._one_by_one = True
        outcomes = self._commit_one_by_one(batch)
        self._one_by_one = not all(ok for ok, _value in outcomes)
        return outcomes

    @contextmanager
    def _transaction(self) -> Iterator[tuple[Session, Statements]]:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            # The connection of this transaction (BEGIN IMMEDIATE is sent now).
            driver = session.connection().connection.driver_connection
            yield session, Statements(driver, self.engine.dialect)

    def _commit_together(self, batch: list[_Job]) -> list[tuple[bool, Any]]:
        """Every job, then every answer in one executemany; _RunOneByOne if any fails."""
        results: list[Any] = []
        with self._transaction() as (session, statements):
            for item in batch:
                try:
                    results.append(self._run_job(session, statements, item))
                except OperationalError:
                    raise
                except Exception as exc:
                    raise _RunOneByOne from exc
            now = self.answers.clock()
            answers = [
                answer_row(item.idempotency, result, now)
                for item, result in zip(batch, results, strict=True)
                if item.idempotency is not None
            ]
            if answers:
                try:
                    statements.run_many(RECORD_ANSWER, answers)
                except IntegrityError as exc:  # a key stored already, or twice in the batch
                    raise _RunOneByOne from exc
        return [(True, result) for result in results]

    def _commit_one_by_one(self, batch: list[_Job]) -> list[tuple[bool, Any]]:
        with self._transaction() as (session, statements):
            return [self._run_one(session, statements, item) for item in batch]

    def _run_one(self, session: Session, statements: Statements, item: _Job) -> tuple[bool, Any]:
        try:
            if item.idempotency is None:
                with self._savepoint(session, statements, item):
                    result = self._run_job(session, statements, item)
                return True, result
            return True, self._run_keyed(session, statements, item)
        except OperationalError:
            raise  # the database's trouble (busy, full, I/O), not the job's: abort the batch
        except Exception as exc:  # the job's own error, for its caller alone
            return False, exc

    @staticmethod
    def _savepoint(session: Session, statements: Statements, item: _Job) -> Any:
        return statements.savepoint() if item.statements else session.begin_nested()

    @staticmethod
    def _run_job(session: Session, statements: Statements, item: _Job) -> Any:
        """Run the job; an ORM job's changes are flushed, so that its errors are its own."""
        if item.statements:
            return item.run(statements)
        result = item.run(session)
        session.flush()
        return result

    def _run_keyed(self, session: Session, statements: Statements, item: _Job) -> Any:
        """A change with an idempotency key: applied once, a retry gets the first answer.

        Optimistic, since retries are rare: the change and its answer go in
        one savepoint, and the key's uniqueness (not a read before each
        change) finds a retry; the retry's savepoint is rolled back and the
        stored answer returned. Jobs are pure database work, so running one
        again (an expired key, or a batch retried while the database is busy)
        is safe.
        """
        assert item.idempotency is not None
        key, method, *params = item.idempotency
        fingerprint = params[0] if params else None
        try:
            return self._apply(session, statements, item, key, method, fingerprint)
        except OperationalError:
            raise
        except Exception as first_error:
            with session.begin_nested():
                cutoff = self.answers.cutoff()
                previous = stored_answer(session, key, method, cutoff, fingerprint)
            if previous is not MISSING:
                return previous
            if not is_key_taken(first_error):
                raise
        # The key's answer had expired (stored_answer just forgot it): a new change.
        return self._apply(session, statements, item, key, method, fingerprint)

    def _apply(
        self,
        session: Session,
        statements: Statements,
        item: _Job,
        key: str,
        method: str,
        fingerprint: str | None,
    ) -> Any:
        with self._savepoint(session, statements, item):
            result = self._run_job(session, statements, item)
            statements.run(
                RECORD_ANSWER, answer_row((key, method, fingerprint), result, self.answers.clock())
            )
        return result


class _RunOneByOne(Exception):
    """A batch run together met a failing job or a stored key: run it one job at a time."""
