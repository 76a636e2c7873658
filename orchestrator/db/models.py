"""SQLAlchemy 2 typed models. Alembic (migrations/) owns the schema they describe."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
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
    # sha256 of the method and its params (writer.fingerprint): the same key with
    # other params is a conflict. None for answers stored before revision 0005.
    fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
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


APP_STATES = ("running", "stopped")


class App(Base):
    """An installed app under a label: its current release, ports, env and wanted state."""

    __tablename__ = "apps"
    __table_args__ = (CheckConstraint("desired IN ('running', 'stopped')", name="desired"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[str] = mapped_column(String(63), nullable=False, unique=True)
    # The id from the app's nua-config.toml ([metadata] id).
    app_id: Mapped[str] = mapped_column(String(63), nullable=False)
    desired: Mapped[str] = mapped_column(String(16), nullable=False, default="running")
    # Release numbers of this app (releases.number), the running one and the one before.
    current_release: Mapped[int | None] = mapped_column(Integer, nullable=True)
    previous_release: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # {"web": 20001}: named ports allocated to the app.
    ports: Mapped[Any] = mapped_column(JsonText, nullable=False, default=dict)
    # The operator's environment overrides (nua install --env, nua app env).
    env: Mapped[Any] = mapped_column(JsonText, nullable=False, default=dict)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )


class Release(Base):
    """One unpacked and built version of an app, kept for rollback."""

    __tablename__ = "releases"
    __table_args__ = (UniqueConstraint("label", "number", name="uq_releases_label_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[str] = mapped_column(
        String(63),
        ForeignKey("apps.label", ondelete="CASCADE", onupdate="CASCADE"),
        nullable=False,
    )
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    version: Mapped[str] = mapped_column(String(64), nullable=False)
    # The validated nua-config.toml, as data.
    config: Mapped[Any] = mapped_column(JsonText, nullable=False)
    path: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )


JOB_STATES = ("running", "succeeded", "failed")


class Job(Base):
    """A long operation on an app (install, upgrade, rollback), its steps and outcome."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint("state IN ('running', 'succeeded', 'failed')", name="state"),
        Index("ix_jobs_label_id", "label", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    label: Mapped[str] = mapped_column(String(63), nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default="running")
    # [{"name", "state", "started_at", "ended_at"}]
    steps: Mapped[Any] = mapped_column(JsonText, nullable=False, default=list)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    failed_step: Mapped[str | None] = mapped_column(String(32), nullable=True)
    log_tail: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )
