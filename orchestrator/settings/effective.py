"""The settings in force for one run: the database's values, then `NUA_*` overrides."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.errors import SettingsError
from orchestrator.settings import constraints
from orchestrator.settings.defaults import SettingValue
from orchestrator.settings.overrides import env_name, env_overrides


@dataclass(frozen=True)
class EffectiveSettings:
    """Settings as they apply now, and which of them the environment overrode."""

    values: dict[str, Any]
    overridden: dict[str, SettingValue] = field(default_factory=dict)
    unknown_env: list[str] = field(default_factory=list)
    # Stored values this release does not allow (stored before it checked them):
    # the default applies to this run instead, so that the orchestrator still
    # starts and `nua settings set` can put a good value in.
    refused_stored: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def refused_warnings(self) -> list[str]:
        """One line per stored value not allowed: what applies instead, and the fix."""
        return [
            f"warning: the stored {key} = {json.dumps(value)} is not allowed "
            f"({constraints.problem(key, value)}); this run uses {json.dumps(self.values[key])} "
            f"instead: fix it with `nua settings set {key} VALUE` or `nua settings reset {key}`"
            for key, value in sorted(self.refused_stored.items())
        ]


def effective_settings(
    stored: Mapping[str, Any],
    defaults: Mapping[str, SettingValue],
    environ: Mapping[str, str] | None = None,
) -> EffectiveSettings:
    """Stored values (defaults where a key is not stored yet), then environment overrides.

    An override that breaks a constraint, alone or against another setting
    (apps.port_min above apps.port_max), is a SettingsError naming the variable.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = dict(defaults)
    refused: dict[str, Any] = {}
    for key, value in stored.items():
        if key in defaults and constraints.problem(key, value) is not None:
            refused[key] = value
        else:
            values[key] = value
    overrides, unknown = env_overrides(defaults, env)
    values.update(overrides)
    for order in constraints.broken_orders(values):
        for key in (order.low, order.high):
            if key in overrides:
                reason = constraints.order_problem(key, values[key], values)
                raise SettingsError(
                    f"{env_name(key)}={env[env_name(key)]!r}: {reason} (setting {key})"
                )
    return EffectiveSettings(
        values=values, overridden=overrides, unknown_env=unknown, refused_stored=refused
    )
