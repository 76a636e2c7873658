"""`NUA_*` environment variables that override a setting for one run."""

from __future__ import annotations

import os
from collections.abc import Mapping

from orchestrator.errors import SettingsError
from orchestrator.settings import constraints
from orchestrator.settings.defaults import SettingValue

PREFIX = "NUA_"
# NUA_* variables that are not settings.
NOT_SETTINGS = frozenset(
    {
        "NUA_HOME",
        "NUA_DEFAULTS_FILE",
        "NUA_DATABASE_URL",
        "NUA_RUN_TOKEN",
        "NUA_VENV",
        "NUA_TIMEOUT",  # nua's default --timeout (console/client_command.py)
    }
)
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def env_name(key: str) -> str:
    """The environment variable for a key: sentinel.interval -> NUA_SENTINEL_INTERVAL."""
    return PREFIX + key.replace(".", "_").upper()


def parse_override(key: str, raw: str, default: SettingValue) -> SettingValue:
    """Parse `raw` as the type of `default`, or say which variable is wrong and why."""
    var = env_name(key)
    text = raw.strip()
    if isinstance(default, bool):
        if text.lower() in TRUE_WORDS:
            return True
        if text.lower() in FALSE_WORDS:
            return False
        expected = "a boolean (true/false, 1/0, yes/no, on/off)"
    elif isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            expected = "an integer"
    elif isinstance(default, float):
        try:
            return float(text)
        except ValueError:
            expected = "a number"
    else:
        return raw
    raise SettingsError(f"{var}={raw!r}: expected {expected} (setting {key})")


def env_overrides(
    known: Mapping[str, SettingValue], environ: Mapping[str, str] | None = None
) -> tuple[dict[str, SettingValue], list[str]]:
    """The overrides found in the environment, and the NUA_* names that match no setting.

    A value of the wrong type, or outside what its setting allows, is a
    SettingsError naming the variable: the program refuses to start.
    """
    env = os.environ if environ is None else environ
    by_var = {env_name(key): key for key in known}
    found: dict[str, SettingValue] = {}
    unknown: list[str] = []
    for var, raw in env.items():
        if not var.startswith(PREFIX) or var in NOT_SETTINGS:
            continue
        key = by_var.get(var)
        if key is None:
            unknown.append(var)
            continue
        value = parse_override(key, raw, known[key])
        reason = constraints.problem(key, value)
        if reason is not None:
            raise SettingsError(f"{var}={raw!r}: {reason} (setting {key})")
        found[key] = value
    return found, sorted(unknown)
