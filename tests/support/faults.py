"""What the fault tests share: an orchestrator with the fault plugin, and database probes."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

from tests.support.orchestrator import Orchestrator

PLUGINS = Path(__file__).resolve().parents[1] / "plugins" / "site"


def faulty_orchestrator(home: Path, **env: str) -> Orchestrator:
    """An orchestrator whose worker has the test plugins (fault.*, ledger.*, echo.*)."""
    return Orchestrator(home, extra_env={"PYTHONPATH": str(PLUGINS), **env})


def _read(database: Path, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)) as conn:
        return conn.execute(sql).fetchall()


def integrity(database: Path) -> list[str]:
    return [row[0] for row in _read(database, "PRAGMA integrity_check")]


def usernames(database: Path) -> list[str]:
    """Every username in the database, duplicates kept (there must be none)."""
    return [row[0] for row in _read(database, "SELECT username FROM users ORDER BY id")]


def write_lock_held(database: Path) -> bool:
    """Whether another connection holds the database's write lock right now."""
    with closing(sqlite3.connect(str(database), timeout=0, isolation_level=None)) as conn:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            return "locked" in str(exc)
        conn.execute("ROLLBACK")
        return False


class Call(threading.Thread):
    """One call run in the background, recording its outcome and how long it took."""

    def __init__(self, run_call: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.run_call = run_call
        self.result: Any = None
        self.error: BaseException | None = None
        self.took = 0.0

    def run(self) -> None:
        began = time.monotonic()
        try:
            self.result = self.run_call()
        except BaseException as exc:
            self.error = exc
        finally:
            self.took = time.monotonic() - began
