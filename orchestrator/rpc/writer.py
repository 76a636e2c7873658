"""The single writer: changes from concurrent requests share one transaction.

With `synchronous=FULL` every commit waits for the disk; committing each
request alone caps writes at the disk's flush rate. The writer thread takes
every job waiting in its queue, runs each in its own SAVEPOINT (a failing
job is rolled back alone), commits once, and only then answers them all:
an acknowledged write is on disk.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Engine, bindparam, insert, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from orchestrator.db.models import IdempotencyRecord, utcnow
from orchestrator.rpc.errors import Conflict, Unavailable

log = logging.getLogger("nua.rpc.writer")
T = TypeVar("T")

# (key, method) of the changing call being served by this thread, if it carries a key.
IDEMPOTENCY: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "idempotency", default=None
)


@dataclass
class _Job:
    run: Callable[[Session], Any]
    idempotency: tuple[str, str] | None
    future: Future[Any] = field(default_factory=Future)


_ANSWER = select(IdempotencyRecord.method, IdempotencyRecord.result).where(
    IdempotencyRecord.key == bindparam("key")
)


def stored_answer(session: Session, key: str, method: str) -> Any:
    """The stored answer for `key`, `_MISSING` if none; Conflict if it was for another method."""
    row = session.execute(_ANSWER, {"key": key}).first()
    if row is None:
        return MISSING
    if row.method != method:
        raise Conflict(f"idempotency key already used for {row.method}", field="idempotency_key")
    return row.result


MISSING = object()


class Writer:
    """Runs write jobs on one connection, grouping concurrent ones into one commit."""

    def __init__(self, engine: Engine, max_batch: int = 256) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="nua-writer", daemon=True)
        self.commits = 0
        self.jobs = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the jobs already queued, then stop."""
        self._queue.put(None)
        self._thread.join(timeout)

    def write(self, job: Callable[[Session], T]) -> T:
        """Run `job(session)` in the next group commit; return its result once committed."""
        item = _Job(job, IDEMPOTENCY.get())
        self._queue.put(item)
        return item.future.result()

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[_Job]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        try:
            with Session(self.engine, expire_on_commit=False) as session, session.begin():
                for item in batch:
                    outcomes.append(self._run_one(session, item))
        except Exception as exc:
            log.exception("group commit of %d job(s) failed", len(batch))
            error = _commit_error(exc)
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

    def _run_one(self, session: Session, item: _Job) -> tuple[bool, Any]:
        try:
            with session.begin_nested():
                if item.idempotency is not None:
                    key, method = item.idempotency
                    previous = stored_answer(session, key, method)
                    if previous is not MISSING:
                        return True, previous
                result = item.run(session)
                session.flush()
                if item.idempotency is not None:
                    key, method = item.idempotency
                    session.execute(
                        insert(IdempotencyRecord),
                        {"key": key, "method": method, "result": result, "created_at": utcnow()},
                    )
                return True, result
        except Exception as exc:  # the job's own error, for its caller alone
            return False, exc


def _commit_error(exc: Exception) -> Exception:
    if isinstance(exc, OperationalError) and "full" in str(exc.orig).lower():
        return Unavailable("storage full: the change was not saved", reason="storage_full")
    return Unavailable("the change could not be saved; it was not applied")
