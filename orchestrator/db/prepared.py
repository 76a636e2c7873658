"""Statements compiled once and run straight on the driver's connection.

SQLAlchemy's Session spends about 0.3 ms per statement (cache key, execution
context, ORM bulk insert path); the statement itself takes 0.02 ms on SQLite.
The writer runs every change of the host one after another, so that cost is
its throughput. A `Prepared` statement is a Core statement compiled once per
dialect with the bind processors of its column types (the stored form of a
datetime or a JSON value is the one SQLAlchemy would store); `Statements`
runs it on the DBAPI connection of the writer's transaction, and turns driver
errors into SQLAlchemy's (IntegrityError, OperationalError), so that callers
handle one kind of error whatever path ran the statement.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Dialect
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.sql import Executable


@dataclass(frozen=True)
class _Form:
    """A statement compiled for one dialect: its text and how its parameters are passed."""

    sql: str
    names: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]
    positional: bool


class Prepared:
    """A Core statement compiled once per dialect, for `Statements.run`.

    `columns`: for an INSERT, the columns it sets (every one must be given:
    Python-side column defaults are not applied on this path).
    """

    def __init__(self, statement: Executable, columns: tuple[str, ...] | None = None) -> None:
        self.statement = statement
        self.columns = columns
        self._forms: dict[str, _Form] = {}

    def form(self, dialect: Dialect) -> _Form:
        """The statement compiled for `dialect` (compiled on first use)."""
        found = self._forms.get(dialect.name)
        if found is None:
            found = self._forms[dialect.name] = self._compile(dialect)
        return found

    def _compile(self, dialect: Dialect) -> _Form:
        keys = list(self.columns) if self.columns is not None else None
        compiled = self.statement.compile(dialect=dialect, column_keys=keys)  # type: ignore[attr-defined]
        names = tuple(compiled.positiontup or ()) if compiled.positional else tuple(compiled.binds)
        types = [compiled.binds[name].type.dialect_impl(dialect) for name in names]
        processors = tuple(kind.bind_processor(dialect) for kind in types)
        return _Form(compiled.string, names, processors, bool(compiled.positional))


class Statements:
    """Runs prepared statements on one DBAPI connection, inside the caller's transaction."""

    def __init__(self, dbapi_connection: Any, dialect: Dialect) -> None:
        self.connection = dbapi_connection
        self.dialect = dialect

    def run(self, prepared: Prepared, params: Mapping[str, Any] | None = None) -> Any:
        """Execute `prepared` with `params`; the DBAPI cursor, to fetch from."""
        form = prepared.form(self.dialect)
        return self._execute(form.sql, _bind(form, params or {}))

    def run_many(self, prepared: Prepared, rows: list[Mapping[str, Any]]) -> None:
        """Execute `prepared` once per row of params, in one driver call (executemany)."""
        form = prepared.form(self.dialect)
        self._execute(form.sql, [_bind(form, row) for row in rows], many=True)

    def scalar(self, prepared: Prepared, params: Mapping[str, Any] | None = None) -> Any:
        """The first column of the first row `prepared` returns, or None without a row."""
        row = self.run(prepared, params).fetchone()
        return None if row is None else row[0]

    @contextmanager
    def savepoint(self, name: str = "nua_job") -> Iterator[None]:
        """Undo what the block did if it raises; keep it otherwise."""
        self._execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException as exc:
            try:
                self._execute(f"ROLLBACK TO SAVEPOINT {name}")
                self._execute(f"RELEASE SAVEPOINT {name}")
            except OperationalError:
                # The database ended the whole transaction (a full disk, an I/O
                # error): the caller must not go on in it. The first error says why.
                if isinstance(exc, OperationalError):
                    raise exc from exc.__cause__
                raise
            raise
        self._execute(f"RELEASE SAVEPOINT {name}")

    def _execute(self, sql: str, params: Any = (), many: bool = False) -> Any:
        cursor = self.connection.cursor()
        try:
            if many:
                cursor.executemany(sql, params)
            else:
                cursor.execute(sql, params)
        except self.dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(
                sql,
                None,
                exc,
                self.dialect.loaded_dbapi.Error,
                hide_parameters=True,
                dialect=self.dialect,
            ) from exc
        return cursor


def _bind(form: _Form, given: Mapping[str, Any]) -> Any:
    """The parameters of one execution of `form`, through its bind processors."""
    values = [
        given[name] if process is None or given[name] is None else process(given[name])
        for name, process in zip(form.names, form.processors, strict=True)
    ]
    return values if form.positional else dict(zip(form.names, values, strict=True))
