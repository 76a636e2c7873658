"""Reading typed values out of parsed TOML, collecting a problem per bad key.

The building blocks of `orchestrator.apps.config`: each check names the key
by its full dotted path and goes on, so that one run reports every problem.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RESERVED_ENV_PREFIX = "NUA_"
BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Problem:
    """One bad key: its dotted path (None for the file as a whole) and what is wrong."""

    field: str | None
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


def dotted(*parts: str) -> str:
    """A key's full path as TOML writes it: `run.env.GREETING`, `port."we b"`."""
    return ".".join(p if BARE_KEY.match(p) else json.dumps(p) for p in parts)


def type_name(value: Any) -> str:
    """`a string`, `an integer`, ...: a TOML value's type, for messages."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, datetime | date | time):
        return "a date or time"
    return type(value).__name__


def env_name_problem(name: str) -> str | None:
    """Why `name` cannot be an app's environment variable, or None."""
    if not ENV_NAME.match(name):
        return (
            f"{name!r} is not an environment variable name "
            "(letters, digits and _, not starting with a digit)"
        )
    if name.startswith(RESERVED_ENV_PREFIX):
        return f"{RESERVED_ENV_PREFIX}* variables are reserved: the orchestrator sets them"
    return None


def check_relative_file(path: str, folder: Path | None) -> str | None:
    """Why `path` is not a file inside the app folder, or None.

    Without a folder only the path's form is checked (relative, no `..`);
    with one, it must also be a regular file there, reached without leaving it.
    """
    if path.startswith("/"):
        return f"{path!r} must be relative to the app folder, not absolute"
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in path.split("/"):
        return f"{path!r} must not contain '..': it must stay inside the app folder"
    if not parts:
        return f"{path!r} does not name a file"
    if folder is None:
        return None
    root = folder.resolve()
    target = root.joinpath(*parts).resolve()
    if not target.is_relative_to(root):
        return f"{path!r} leads outside the app folder (through a symbolic link)"
    if not target.exists():
        return f"{path!r}: no such file in the app folder"
    if not target.is_file():
        return f"{path!r} is not a regular file"
    return None


@dataclass
class Checker:
    """Typed reads of TOML values that record a Problem instead of raising."""

    problems: list[Problem] = field(default_factory=list)

    def add(self, key: str | None, message: str) -> None:
        self.problems.append(Problem(key, message))

    def table(
        self, data: Mapping[str, Any], name: str, required: bool = False
    ) -> Mapping[str, Any] | None:
        """The top-level table `name`, or None (a problem when required or not a table)."""
        if name not in data:
            if required:
                self.add(name, f"required: add a [{name}] table")
            return None
        value = data[name]
        if not isinstance(value, dict):
            self.add(name, f"must be a table [{name}], not {type_name(value)}")
            return None
        return value

    def known_keys(
        self,
        table: Mapping[str, Any],
        path: Sequence[str],
        allowed: Sequence[str],
        what: str = "key",
    ) -> None:
        """A problem for every key of `table` not in `allowed` (with a guess at the typo)."""
        for key in table:
            if key in allowed:
                continue
            message = f"unknown {what}"
            guess = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
            if guess:
                message += f", did you mean {guess[0]!r}?"
            if allowed:
                message += f" (expected: {', '.join(allowed)})"
            else:
                message += f" ([{dotted(*path)}] takes no keys)"
            self.add(dotted(*path, key), message)

    def string(
        self,
        table: Mapping[str, Any],
        path: Sequence[str],
        required: bool = False,
        one_line: bool = False,
    ) -> str | None:
        """A non-empty string (one line without control characters if `one_line`)."""
        key = dotted(*path)
        if path[-1] not in table:
            if required:
                self.add(key, "required")
            return None
        value = table[path[-1]]
        if not isinstance(value, str):
            self.add(key, f"must be a string, not {type_name(value)}")
            return None
        if not value:
            self.add(key, "must not be empty")
            return None
        if one_line and CONTROL.search(value):
            self.add(key, "must be one line, without control characters")
            return None
        if "\x00" in value:
            self.add(key, "contains a NUL character")
            return None
        return value

    def seconds(
        self,
        table: Mapping[str, Any],
        path: Sequence[str],
        default: float | None,
        maximum: float,
    ) -> float | None:
        """A duration in seconds: a number, more than 0, at most `maximum`."""
        key = dotted(*path)
        if path[-1] not in table:
            return default
        value = table[path[-1]]
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.add(key, f"must be a number of seconds, not {type_name(value)}")
            return default
        if not math.isfinite(value) or value <= 0:
            self.add(key, f"must be more than 0 seconds, not {value}")
            return default
        if value > maximum:
            self.add(key, f"must be at most {maximum:g} seconds, not {value}")
            return default
        return float(value)
