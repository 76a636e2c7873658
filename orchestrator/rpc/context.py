"""What RPC methods may use: the database (reads, and writes through the writer)."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from orchestrator.db.prepared import Statements
from orchestrator.rpc.writer import Writer

T = TypeVar("T")


@dataclass
class WorkerContext:
    """Shared by every namespace of one worker."""

    engine: Engine
    writer: Writer
    database: str
    endpoint: str
    schema_revision: str | None
    settings: dict[str, Any] = field(default_factory=dict)
    # Set once every namespace is registered (system.list_methods reads it).
    registry: Any = None
    # The locations, and the apps service (orchestrator/apps/service.py) of app.* and job.*.
    locations: Any = None
    apps: Any = None
    # The worker's threads, for slow work of methods that run on the loop (in_thread).
    threads: Executor | None = None

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading (a deferred transaction: it never blocks the writer)."""
        with Session(
            self.engine.execution_options(sqlite_begin="DEFERRED"), expire_on_commit=False
        ) as session:
            yield session

    def write(self, job: Callable[[Session], T]) -> T:
        """Run `job(session)` in the writer's next commit; return its result once on disk.

        The job's result must be JSON data: for a changing method it is the
        answer stored for retries with the same idempotency key.
        """
        return self.writer.write(job)

    def in_thread(self, work: Callable[[], T]) -> Future[T]:
        """Run `work` on one of the worker's threads, with this call's context (its key).

        For the slow part of an `inline` method (a password hash): the loop
        must not wait for it. `work` may itself return a Future (a write).
        """
        if self.threads is None:
            raise RuntimeError("this worker context has no threads for slow work")
        return self.threads.submit(contextvars.copy_context().run, work)

    def submit_write(self, job: Callable[[Statements], T]) -> Future[T]:
        """Queue a statements job and return at once: a method may return this Future.

        The worker answers the call when the job is committed, without holding
        a thread meanwhile (so an `inline` method may write).
        """
        return self.writer.submit(job, statements=True)
