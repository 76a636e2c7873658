"""The settings table: bootstrap from the defaults file, merge newer defaults, read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from orchestrator.db.models import Setting, utcnow
from orchestrator.settings.defaults import SettingValue


@dataclass
class MergePlan:
    """What merging a defaults file into the stored settings changes."""

    added: dict[str, SettingValue] = field(default_factory=dict)
    # Keys the operator never changed, whose shipped default changed: they follow it.
    followed: dict[str, SettingValue] = field(default_factory=dict)
    # Keys the operator changed: the value stays, only the recorded default moves.
    kept: list[str] = field(default_factory=list)
    obsolete: list[str] = field(default_factory=list)

    @property
    def changes_anything(self) -> bool:
        return bool(self.added or self.followed or self.kept)


def plan_merge(
    stored: Mapping[str, tuple[Any, Any]], defaults: Mapping[str, SettingValue]
) -> MergePlan:
    """Compare stored (value, recorded default) pairs with a defaults file."""
    plan = MergePlan()
    for key, new_default in defaults.items():
        if key not in stored:
            plan.added[key] = new_default
            continue
        value, old_default = stored[key]
        if _same(old_default, new_default):
            continue
        if _same(value, old_default):
            plan.followed[key] = new_default
        else:
            plan.kept.append(key)
    plan.obsolete = sorted(set(stored) - set(defaults))
    return plan


def _same(a: Any, b: Any) -> bool:
    # True == 1 in Python; a setting that changes type has changed.
    return type(a) is type(b) and a == b


def bootstrap(connection: Connection, defaults: Mapping[str, SettingValue]) -> MergePlan:
    """Store new keys, let untouched keys follow newer defaults, keep the operator's values."""
    with Session(connection) as session, session.begin():
        rows = {row.key: row for row in session.scalars(select(Setting))}
        plan = plan_merge({k: (r.value, r.default) for k, r in rows.items()}, defaults)
        now = utcnow()
        for key, value in plan.added.items():
            session.add(Setting(key=key, value=value, default=value, updated_at=now))
        for key, value in plan.followed.items():
            rows[key].value = value
            rows[key].default = value
            rows[key].updated_at = now
        for key in plan.kept:
            rows[key].default = defaults[key]
    return plan


def read_all(connection: Connection) -> dict[str, Any]:
    """Every stored setting's current value."""
    with Session(connection) as session:
        return {row.key: row.value for row in session.scalars(select(Setting))}
