"""The settings in force for one run: the database's values, then `NUA_*` overrides."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.settings.defaults import SettingValue
from orchestrator.settings.overrides import env_overrides


@dataclass(frozen=True)
class EffectiveSettings:
    """Settings as they apply now, and which of them the environment overrode."""

    values: dict[str, Any]
    overridden: dict[str, SettingValue] = field(default_factory=dict)
    unknown_env: list[str] = field(default_factory=list)

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


def effective_settings(
    stored: Mapping[str, Any],
    defaults: Mapping[str, SettingValue],
    environ: Mapping[str, str] | None = None,
) -> EffectiveSettings:
    """Stored values (defaults where a key is not stored yet), then environment overrides."""
    values: dict[str, Any] = {**defaults, **stored}
    overrides, unknown = env_overrides(defaults, environ)
    values.update(overrides)
    return EffectiveSettings(values=values, overridden=overrides, unknown_env=unknown)
