"""Load and validate the bootstrap defaults file (nua_defaults_settings.toml)."""

from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any

from orchestrator.errors import SettingsError
from orchestrator.settings import constraints

DEFAULTS_FILE_ENV = "NUA_DEFAULTS_FILE"
DEFAULTS_FILE = Path(__file__).resolve().parent.parent / "nua_defaults_settings.toml"

SettingValue = bool | int | float | str
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


def defaults_path(environ: dict[str, str] | None = None) -> Path:
    """The defaults file: `NUA_DEFAULTS_FILE` (packagers, tests) or the shipped one."""
    env = os.environ if environ is None else environ
    value = env.get(DEFAULTS_FILE_ENV)
    return Path(value) if value else DEFAULTS_FILE


def load_defaults(path: Path | None = None) -> dict[str, SettingValue]:
    """Read the defaults file into flat `section.key` settings, or say what is wrong."""
    path = path or defaults_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SettingsError(f"settings file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise SettingsError(f"settings file {path} cannot be read: {reason}") from None
    try:
        tree = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(_describe_toml_error(path, text, exc)) from None
    flat: dict[str, SettingValue] = {}
    _flatten(tree, "", flat, path, text)
    _check_constraints(flat, path, text)
    return flat


def _flatten(
    tree: dict[str, Any], prefix: str, out: dict[str, SettingValue], path: Path, text: str
) -> None:
    for name, value in tree.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict):
            _flatten(value, f"{key}.", out, path, text)
            continue
        where = f"settings file {path}, line {_line_of(text, key)}, key {key}"
        if not KEY_PATTERN.match(key):
            raise SettingsError(
                f"{where}: keys are lower-case words in a [section], like sentinel.interval"
            )
        if not isinstance(value, bool | int | float | str):
            raise SettingsError(
                f"{where}: a {type(value).__name__} is not a setting value; "
                "use a boolean, an integer, a float or a string"
            )
        out[key] = value


def _check_constraints(flat: dict[str, SettingValue], path: Path, text: str) -> None:
    """A shipped value must pass the check an operator's value passes (constraints.py)."""
    for key, value in flat.items():
        reason = constraints.problem(key, value)
        if reason is not None:
            raise SettingsError(
                f"settings file {path}, line {_line_of(text, key)}, key {key}: "
                f"{_shown(value)} is not allowed, {reason}"
            )
    broken = constraints.broken_orders(flat)
    if broken:
        order = broken[0]
        raise SettingsError(
            f"settings file {path}, line {_line_of(text, order.low)}, key {order.low}: "
            f"{_shown(flat[order.low])} is more than {order.high} ({_shown(flat[order.high])}, "
            f"line {_line_of(text, order.high)}); it must be at most {order.high}"
        )


def _shown(value: SettingValue) -> str:
    """A value as the TOML file writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, str) else str(value)


def _line_of(text: str, key: str) -> int | str:
    """The line of `section.name = ...` in the file, looking only inside its [section]."""
    section, _, name = key.rpartition(".")
    start, end = 0, len(text)
    if section:
        # [ \t], not \s: \s also matches newlines, and a blank line would shift the count.
        header = re.compile(
            rf"^[ \t]*\[[ \t]*{re.escape(section)}[ \t]*\][ \t]*(#.*)?$", re.MULTILINE
        )
        found = header.search(text)
        if found is None:
            return "?"
        start = found.end()
        following = re.compile(r"^\s*\[", re.MULTILINE).search(text, start)
        end = following.start() if following else len(text)
    pattern = re.compile(rf"^[ \t]*[\"']?{re.escape(name)}[\"']?[ \t]*=", re.MULTILINE)
    match = pattern.search(text, start, end)
    return text.count("\n", 0, match.start()) + 1 if match else "?"


def _describe_toml_error(path: Path, text: str, exc: tomllib.TOMLDecodeError) -> str:
    message = str(exc)
    found = re.search(r"\(at line (\d+), column (\d+)\)", message)
    reason = re.sub(r"\s*\(at line.*\)$", "", message)
    if not found:
        return f"settings file {path} is not valid TOML: {reason}"
    line = int(found.group(1))
    source = text.splitlines()[line - 1] if 0 < line <= len(text.splitlines()) else ""
    key = source.split("=", 1)[0].strip() if "=" in source else ""
    near = f", key {key}" if key else ""
    return f"settings file {path}, line {line}{near}: {reason}"
