"""`settings.*`: read and change the host's settings, stored in the database.

The database is the source of truth (`nua_defaults_settings.toml` only seeds
it). A value keeps the type of its shipped default: a setting that is a
float stays a float, and a boolean is never an integer. `NUA_*` environment
overrides apply to one run of a program and are not shown here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.db.models import Setting, utcnow
from orchestrator.rpc.errors import InvalidArgument, NotFound
from orchestrator.rpc.registry import Namespace, public
from orchestrator.settings import constraints

# The name of each setting type, as `settings.list` reports it.
TYPE_NAMES: dict[type, str] = {bool: "bool", int: "int", float: "float", str: "str"}
EXPECTED: dict[str, str] = {
    "bool": "a boolean (true or false)",
    "int": "an integer",
    "float": "a number",
    "str": "a string",
}


def type_name(default: Any) -> str:
    """The setting type of a default value: bool, int, float or str."""
    return TYPE_NAMES.get(type(default), type(default).__name__)


def same(a: Any, b: Any) -> bool:
    """Equal and of the same type (1 == 1.0 == True in Python, not for a setting)."""
    return type(a) is type(b) and a == b


def coerce(key: str, value: Any, default: Any) -> Any:
    """`value` as the type of `default`, or InvalidArgument naming the expected type."""
    kind = type_name(default)
    if kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "float":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok and not math.isfinite(value):
            raise InvalidArgument(f"{key} must be a finite number", field="value")
        value = float(value) if ok else value
    else:
        ok = isinstance(value, str)
    if not ok:
        got = "null" if value is None else f"{type_name(value)} {json.dumps(value)}"
        raise InvalidArgument(f"{key} takes {EXPECTED.get(kind, kind)}, not {got}", field="value")
    return value


def check_allowed(key: str, value: Any, others: Mapping[str, Any]) -> None:
    """InvalidArgument naming the key, the value and what is allowed, unless `value` is."""
    reason = constraints.problem(key, value)
    hint = ""
    if reason is None:
        reason = constraints.order_problem(key, value, others)
        hint = "; change the other end of the range first"
    if reason is not None:
        raise InvalidArgument(
            f"{key} cannot be {json.dumps(value)}: {reason}{hint}; nothing was changed",
            field="value",
            key=key,
            allowed=constraints.allowed(key),
        )


def _order_partners(session: Session, key: str) -> dict[str, Any]:
    """The stored values of the settings that `key` must stay ordered with."""
    names = [o.high for o in constraints.ORDERS if o.low == key]
    names += [o.low for o in constraints.ORDERS if o.high == key]
    if not names:
        return {}
    rows = session.scalars(select(Setting).where(Setting.key.in_(names)))
    return {row.key: row.value for row in rows}


def describe(row: Setting) -> dict[str, Any]:
    """The JSON form of one setting."""
    return {
        "key": row.key,
        "value": row.value,
        "default": row.default,
        "type": type_name(row.default),
        "changed": not same(row.value, row.default),
    }


def _row(session: Session, key: Any) -> Setting:
    if not isinstance(key, str):
        raise InvalidArgument("key must be a string, like sentinel.interval", field="key")
    row = session.get(Setting, key)
    if row is None:
        raise NotFound(f"no setting {key!r}; `nua settings list` shows them all", field="key")
    return row


class SettingsMethods(Namespace):
    namespace = "settings"

    @public
    def list(self) -> list[dict[str, Any]]:
        """Every setting, sorted by key: value, default, type and whether it was changed."""
        with self.context.read() as session:
            return [describe(row) for row in session.scalars(select(Setting).order_by(Setting.key))]

    @public
    def get(self, key: str) -> dict[str, Any]:
        """One setting: value, default, type and whether it was changed."""
        with self.context.read() as session:
            return describe(_row(session, key))

    @public(changes=True)
    def set(self, key: str, value: Any) -> dict[str, Any]:
        """Store a new value; it must have the type of the setting's default.

        A float setting accepts an integer (stored as a float); an integer
        setting refuses booleans. A value outside what the setting allows (a
        range, a set of words, a shape: `data.allowed` says) is refused, so
        that no value can stop the orchestrator at its next start. It applies
        from the next `nua-orchestrator restart`.
        """

        def job(session: Session) -> dict[str, Any]:
            row = _row(session, key)
            new = coerce(row.key, value, row.default)
            check_allowed(row.key, new, _order_partners(session, row.key))
            if not same(row.value, new):
                row.value = new
                row.updated_at = utcnow()
            return describe(row)

        return self.context.write(job)

    @public(changes=True)
    def reset(self, key: str) -> dict[str, Any]:
        """Put a setting back to its shipped default."""

        def job(session: Session) -> dict[str, Any]:
            row = _row(session, key)
            if not same(row.value, row.default):
                row.value = row.default
                row.updated_at = utcnow()
            return describe(row)

        return self.context.write(job)
