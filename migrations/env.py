"""Alembic environment for the Nua orchestrator.

Called two ways:
- by `nua-orchestrator start`, which passes its own connection, already in
  the migration transaction, in `config.attributes["connection"]` while it
  holds the instance lock;
- by hand (`alembic upgrade head`, `alembic current`, `alembic check` from the
  repository root), which resolves the database the same way start does and
  takes the instance lock itself.
"""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
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


def run_standalone() -> None:
    """`alembic ...` from a shell: resolve the database and hold the instance lock."""
    from orchestrator.db.engine import make_engine
    from orchestrator.db.schema import ensure_sqlite_file, migration_transaction
    from orchestrator.db.url import database_url, sqlite_path
    from orchestrator.host import locations
    from orchestrator.host.instance_lock import InstanceLock

    if config.config_file_name is not None:
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    where = locations.resolve()
    url = config.get_main_option("sqlalchemy.url") or database_url(where)
    if context.is_offline_mode():
        run_offline(url)
        return
    os.umask(0o077)
    where.ensure()
    with InstanceLock(where.lock_file):
        path = sqlite_path(url)
        if path is not None:
            ensure_sqlite_file(path)
        engine = make_engine(url)
        try:
            with engine.connect() as connection, migration_transaction(connection):
                run_on(connection)
        finally:
            engine.dispose()


connection = config.attributes.get("connection")
if connection is not None:
    run_on(connection)
else:
    run_standalone()
