"""idempotency fingerprint: a key reused with other parameters is a conflict

Revision ID: 0005_idempotency_fingerprint
Revises: 0004_apps
Create Date: 2026-12-05

The sha256 of the method and its canonical JSON params (secrets left out),
stored with the answer. Rows from before have none: they are answered as
before, without the check.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_idempotency_fingerprint"
down_revision: str | None = "0004_apps"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.add_column(sa.Column("fingerprint", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_column("fingerprint")
