"""Alembic environment for the Nua orchestrator.

Called two ways:
- by `nua-orchestrator start`, which passes its own connection, already in
  the migration transaction, in `config.attributes["connection"]` while it
  holds the instance lock;
- by hand (`alembic upgrade head`, `alembic current`, `alembic check` from the
  repository root), which resolves the database the same way start does and
  takes the instance lock itself. Commands that only read (current, check)
  create nothing: without a database they say so.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from logging.config import fileConfig
from pathlib import Path

from alembic import context
from alembic.util import CommandError
from sqlalchemy import Connection

from orchestrator.db.models import Base

config = context.config
target_metadata = Base.metadata


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        transaction_per_migration=False,
        # SQLite's DDL is transactional; the whole run commits or none of it.
        transactional_ddl=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline(url: str) -> None:
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


# Alembic's commands that change the database, by the function they hand to env.py.
WRITING = frozenset({"upgrade", "downgrade", "do_stamp", "do_ensure_version"})


def writes() -> bool:
    """Whether this command changes the database (upgrade, downgrade, stamp)."""
    # The EnvironmentContext the command set up (`alembic.context` proxies it).
    environment = getattr(context, "_proxy", None)
    fn = getattr(environment, "context_opts", {}).get("fn")
    # An unknown caller is taken to write: it gets the locations and the lock.
    return fn is None or getattr(fn, "__name__", "") in WRITING


def run_standalone() -> None:
    """`alembic ...` from a shell: resolve the database and hold the instance lock.

    Errors are one line (Alembic prints a CommandError as `FAILED: ...`).
    """
    from orchestrator.errors import NuaError

    if config.config_file_name is not None:
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    try:
        _run_standalone()
    except NuaError as exc:
        raise CommandError(str(exc)) from exc


def _run_standalone() -> None:
    from orchestrator.db.schema import check_sqlite_file, ensure_sqlite_file, migration_transaction
    from orchestrator.db.url import database_url
    from orchestrator.host import locations
    from orchestrator.host.instance_lock import InstanceLock
    from orchestrator.services.database import checked_engine, checked_sqlite_path

    where = locations.resolve()
    url = config.get_main_option("sqlalchemy.url") or database_url(where)
    if context.is_offline_mode():
        run_offline(url)
        return
    os.umask(0o077)
    path = checked_sqlite_path(url)
    if not writes():
        # current, check, history -i: they read, and must not create a database.
        if path is not None:
            _refuse_missing(path)
            check_sqlite_file(path)  # foreign, damaged or newer than the code: one line
        lock = InstanceLock(where.lock_file) if where.runtime.is_dir() else nullcontext()
        with lock:
            _read(url if path is None else f"sqlite:///file:{path.absolute()}?mode=ro&uri=true")
        return
    where.ensure()
    with InstanceLock(where.lock_file):
        if path is not None:
            ensure_sqlite_file(path)
        engine = checked_engine(url)
        try:
            with engine.connect() as connection, migration_transaction(connection):
                run_on(connection)
        finally:
            engine.dispose()


def _refuse_missing(path: Path) -> None:
    if not os.path.lexists(path) or (path.is_file() and path.stat().st_size == 0):
        raise CommandError(
            f"no database at {path}: nothing to read; `nua-orchestrator start` or "
            "`alembic upgrade head` creates it (check NUA_HOME and NUA_DATABASE_URL)"
        )


def _read(url: str) -> None:
    """Run a read-only command; SQLite files are opened read-only."""
    from sqlalchemy import create_engine

    from orchestrator.services.database import checked_engine

    # make_engine would set WAL (a write) on every connection: a plain engine reads.
    engine = create_engine(url) if url.startswith("sqlite:///file:") else checked_engine(url)
    try:
        with engine.connect() as connection:
            run_on(connection)
    finally:
        engine.dispose()


connection = config.attributes.get("connection")
if connection is not None:
    run_on(connection)
else:
    run_standalone()
