"""The schema revision this code brings the database to, known without Alembic.

`start` compares it with the database's `alembic_version` to skip loading
SQLAlchemy and Alembic (a quarter of a second) when there is nothing to
upgrade. tests/unit/test_schema.py checks it against Alembic's own head, so
a new migration that forgets to update it fails the tests.
"""

from __future__ import annotations

HEAD = "0005_idempotency_fingerprint"
