"""Fixtures shared by unit tests of the database layer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from orchestrator.db.engine import make_engine
from orchestrator.db.schema import upgrade


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite database, with a short busy timeout so a held lock is felt at once."""
    engine = make_engine(f"sqlite:///{tmp_path / 'nua.db'}", busy_timeout_ms=100)
    with engine.connect() as connection:
        upgrade(connection)
    yield engine
    engine.dispose()
