"""SQLAlchemy 2 typed models. Alembic (migrations/) owns the schema they describe."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, Index, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from orchestrator.db.types import JsonText

# Stable constraint names, so that batch migrations on SQLite can find them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Setting(Base):
    """One setting: its current value and the default it was last merged from."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[Any] = mapped_column(JsonText, nullable=False)
    # The shipped default in force when this row was last merged; a value equal
    # to it was not changed by the operator and follows newer defaults.
    default: Mapped[Any] = mapped_column(JsonText, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )


class IdempotencyRecord(Base):
    """The answer given to a changing call, returned again to its retries."""

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    method: Mapped[str] = mapped_column(String(200), nullable=False)
    result: Mapped[Any] = mapped_column(JsonText, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, index=True
    )


USER_ROLES = ("admin", "user")


class User(Base):
    """A person who may use this host; `role` says what they may do."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('admin', 'user')", name="role"),
        # user.list pages: each ordering, alone and within a role, is an index
        # walk that stops after `limit` rows instead of a sort of every user.
        # username and email are ordered by their unique constraints' indexes.
        Index("ix_users_created_at_id", "created_at", "id"),
        Index("ix_users_role_username", "role", "username"),
        Index("ix_users_role_email", "role", "email"),
        Index("ix_users_role_created_at_id", "role", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(32), nullable=False, unique=True)
    # Lower-cased on the way in, so that uniqueness ignores case.
    email: Mapped[str] = mapped_column(String(254), nullable=False, unique=True)
    role: Mapped[str] = mapped_column(String(16), nullable=False, default="user")
    # An Argon2id hash in PHC format; None: this user cannot log in with a password.
    password_hash: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )
