"""A plugin namespace for fault tests: fault.*

Each method does what a real changing method does (a write through the
worker's writer, with idempotency), then waits at a chosen point, so that a
test can kill or stop the worker exactly there.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from orchestrator.db.models import utcnow
from orchestrator.rpc.registry import Namespace, public

_INSERT = text(
    "INSERT INTO users (username, email, role, created_at, updated_at) "
    "VALUES (:username, :email, 'user', :now, :now)"
)


def _insert(session: Session, username: str) -> None:
    session.execute(
        _INSERT, {"username": username, "email": f"{username}@example.com", "now": utcnow()}
    )


def _wait(seconds: float, hold: str | None) -> None:
    """Wait `seconds`; with `hold`, only while that file exists (at most `seconds`)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and (hold is None or Path(hold).exists()):
        time.sleep(0.01)


class FaultMethods(Namespace):
    namespace = "fault"

    @public(inline=True)
    def queued_writes(self) -> int:
        """How many write jobs wait for the writer (behind the one it runs)."""
        return self.context.writer._queue.qsize()

    @public(changes=True)
    def hold_write(self, username: str, seconds: float, hold: str | None = None) -> str:
        """Add user `username`, then wait inside the transaction, before COMMIT.

        It waits `seconds`, or with `hold` while that file exists (at most `seconds`).
        """

        def job(session: Session) -> str:
            _insert(session, username)
            session.flush()
            _wait(seconds, hold)
            return username

        return self.context.write(job)

    @public(changes=True)
    def answer_late(self, username: str, seconds: float, hold: str | None = None) -> Any:
        """Add user `username` (committed), then wait before answering, as hold_write."""

        def job(session: Session) -> str:
            _insert(session, username)
            return username

        done = self.context.write(job)
        _wait(seconds, hold)
        return done
