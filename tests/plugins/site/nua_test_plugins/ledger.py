"""A plugin namespace: ledger.*, an append-only table for the history checker.

Each `ledger.append` adds one row. (client, seq) is deliberately NOT unique:
the database must not hide a change applied twice, so a double application
shows up as two rows for the checker (tests/support/history.py) to find.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select
from sqlalchemy.schema import CreateTable

from orchestrator.rpc.errors import InvalidArgument
from orchestrator.rpc.registry import Namespace, public

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from orchestrator.rpc.context import WorkerContext

# A plugin-owned table, outside Alembic's models: the worker's schema never knows it.
LEDGER = Table(
    "nua_test_ledger",
    MetaData(),
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client", String(64), nullable=False),
    Column("seq", Integer, nullable=False),
    # The worker process that applied the row: tells a retry answered from the
    # idempotency record of a killed worker's commit from a fresh application.
    Column("pid", Integer, nullable=False),
    # AUTOINCREMENT on SQLite: an id is never reused, so an answer names one row for good.
    sqlite_autoincrement=True,
)
CLIENT_MAX = 64


class LedgerMethods(Namespace):
    """An append-only ledger of (client, seq) rows."""

    namespace = "ledger"

    def __init__(self, context: WorkerContext) -> None:
        super().__init__(context)
        with context.engine.begin() as conn:
            conn.execute(CreateTable(LEDGER, if_not_exists=True))

    @public(changes=True)
    def append(self, client: str, seq: int) -> int:
        """Insert one row (client, seq) and return its id; the same pair twice is two rows."""
        if not isinstance(client, str) or not 0 < len(client) <= CLIENT_MAX:
            raise InvalidArgument(
                f"client must be a string of 1 to {CLIENT_MAX} characters", field="client"
            )
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise InvalidArgument("seq must be an integer", field="seq")

        def job(session: Session) -> int:
            inserted = session.execute(
                insert(LEDGER).values(client=client, seq=seq, pid=os.getpid())
            )
            return int(inserted.inserted_primary_key[0])

        return self.context.write(job)

    @public
    def read(self) -> list[dict[str, Any]]:
        """Every row, oldest first: [{"id", "client", "seq", "pid"}, ...]."""
        with self.context.read() as session:
            rows = session.execute(select(LEDGER).order_by(LEDGER.c.id)).all()
        return [{"id": r.id, "client": r.client, "seq": r.seq, "pid": r.pid} for r in rows]
