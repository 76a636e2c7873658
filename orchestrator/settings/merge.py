"""What merging a newer defaults file into the stored settings changes (no database code).

Kept apart from store.py, which writes the merge with SQLAlchemy, so that
`start` can see there is nothing to merge without importing SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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
