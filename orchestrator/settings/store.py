"""The settings table: bootstrap from the defaults file, merge newer defaults, read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from orchestrator.db.models import Setting, utcnow
from orchestrator.settings.defaults import SettingValue
from orchestrator.settings.merge import MergePlan, plan_merge

__all__ = ["MergePlan", "bootstrap", "plan_merge", "read_all"]


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
