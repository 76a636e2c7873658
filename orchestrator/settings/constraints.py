"""What each setting may hold beyond its type: a range, a set of choices, a shape.

One table for every way a value comes in: `settings.set` (the worker), `NUA_*`
overrides (every program) and the defaults file (when it is loaded) all ask
`problem()` here. A type check alone let one command lock the operator out:
`rpc.threads` 0 makes the worker crash at its next start, and
`rpc.max_message_bytes` -1 refuses every message.

These are the limits of the code, not of one host, so they live in the code:
a packager's defaults file (NUA_DEFAULTS_FILE) cannot loosen them. A key
without an entry is checked for its type only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DAY = 86400.0
HOUR = 3600.0


@dataclass(frozen=True)
class Range:
    """A finite number from `low` to `high` (inclusive; above `low` when `above`)."""

    low: float | None = None
    high: float | None = None
    above: bool = False  # `low` itself is not allowed: "more than 0"

    def problem(self, value: Any) -> str | None:
        """Why `value` is not allowed, or None."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"it must be a number {self.describe()}"
        # NaN compares false with everything: it would pass every bound below.
        if isinstance(value, float) and not math.isfinite(value):
            return f"it must be a finite number {self.describe()}"
        too_low = self.low is not None and (value <= self.low if self.above else value < self.low)
        too_high = self.high is not None and value > self.high
        return f"it must be {self.describe()}" if too_low or too_high else None

    def describe(self) -> str:
        low, high = _number(self.low), _number(self.high)
        if self.low is not None and self.high is not None:
            if self.above:
                return f"more than {low} and at most {high}"
            return f"from {low} to {high}"
        if self.low is not None:
            return f"more than {low}" if self.above else f"at least {low}"
        return f"at most {high}"


@dataclass(frozen=True)
class Choice:
    """One of a few words."""

    options: tuple[str, ...]

    def problem(self, value: Any) -> str | None:
        return None if value in self.options else f"it must be {self.describe()}"

    def describe(self) -> str:
        return "one of " + ", ".join(self.options)


@dataclass(frozen=True)
class Shape:
    """A string that matches `pattern` (whole), described to a person as `what`."""

    pattern: str
    what: str

    def problem(self, value: Any) -> str | None:
        if isinstance(value, str) and re.fullmatch(self.pattern, value):
            return None
        return f"it must be {self.what}"

    def describe(self) -> str:
        return self.what


Constraint = Range | Choice | Shape


@dataclass(frozen=True)
class Order:
    """Two settings where `low` may not exceed `high` (the two ends of a range)."""

    low: str
    high: str


def positive(high: float) -> Range:
    """More than 0 and at most `high`: timeouts and intervals."""
    return Range(0, high, above=True)


# supervisord's byte_size: digits, optionally KB, MB or GB (any case); 0 is no limit.
LOG_SIZE = Shape(
    r"(?i)[0-9]{1,12}(KB|MB|GB)?", "a size like 10MB, 500KB or 1GB, or bytes (0: no limit)"
)

CONSTRAINTS: dict[str, Constraint] = {
    # An empty value is the supervisord installed with nua-orchestrator; a
    # relative path would depend on the folder `start` runs from, and a
    # leading "-" would read as an option.
    "supervisor.executable": Shape(
        r"|/[^\x00-\x1f]*|[A-Za-z0-9_.+][A-Za-z0-9_.+-]*",
        "empty (the supervisord installed with nua-orchestrator), an absolute path, "
        "or a command name found on PATH",
    ),
    "supervisor.start_timeout": positive(HOUR),
    "supervisor.stop_timeout": positive(HOUR),
    # supervisord's own level names (it refuses to start on any other).
    "supervisor.log_level": Choice(
        ("critical", "error", "warn", "info", "debug", "trace", "blather")
    ),
    "supervisor.log_max_bytes": LOG_SIZE,
    "supervisor.log_backups": Range(0, 1000),
    "programs.start_seconds": Range(0, 3600),
    "programs.start_retries": Range(0, 1000),
    "programs.log_max_bytes": LOG_SIZE,
    "programs.log_backups": Range(0, 1000),
    "rpc.stop_timeout": Range(1, 3600),
    # ThreadPoolExecutor(max_workers=0) raises: the worker would crash-loop.
    "rpc.threads": Range(1, 1024),
    "rpc.max_batch": Range(1, 100_000),
    # -1 refuses every message; a few KiB leave no room for an app upload's chunks.
    "rpc.max_message_bytes": Range(16384, 1 << 30),
    "rpc.writer_batch": Range(1, 100_000),
    # 0 would forget answers at once (retries applied twice); a huge value overflows.
    "rpc.idempotency_hours": positive(24 * 366),
    "sentinel.interval": Range(0.1, DAY),
    "sentinel.ping_timeout": positive(HOUR),
    "sentinel.failures": Range(1, 1000),
    "sentinel.backoff_initial": positive(DAY),
    "sentinel.backoff_max": positive(DAY),
    "sentinel.stable_after": Range(0, DAY),
    "backup.keep": Range(0, 100_000),
    "apps.port_min": Range(1, 65535),
    "apps.port_max": Range(1, 65535),
    # Passed to useradd and to supervisord's `user =`: a POSIX user name, or
    # empty for the orchestrator's own user.
    # Never root (apps never run as root); another user with uid 0 is refused
    # where the name is looked up (apps/run_as.py).
    "apps.user": Shape(
        r"|(?!root$)[a-z_][a-z0-9_-]{0,31}",
        "empty (the orchestrator's own user) or a user name like nua-app "
        "(lower-case letters, digits, _ and -, at most 32), never root",
    ),
    "apps.max_upload_bytes": Range(1, 1 << 40),
    "apps.chunk_bytes": Range(1024, 64 << 20),
    "apps.max_release_bytes": Range(1, 1 << 44),
    "apps.max_release_files": Range(1, 10_000_000),
    "apps.stop_timeout": Range(1, 3600),
    "apps.keep_releases": Range(1, 1000),
    "apps.health_interval": Range(0.1, DAY),
    "apps.health_failures": Range(1, 1000),
}

ORDERS: tuple[Order, ...] = (
    Order("apps.port_min", "apps.port_max"),
    Order("sentinel.backoff_initial", "sentinel.backoff_max"),
)


def problem(key: str, value: Any) -> str | None:
    """Why `value` is not allowed for `key` ("it must be ..."), or None."""
    constraint = CONSTRAINTS.get(key)
    return None if constraint is None else constraint.problem(value)


def allowed(key: str) -> str | None:
    """What `key` allows, in words, or None when only its type is checked."""
    constraint = CONSTRAINTS.get(key)
    return None if constraint is None else constraint.describe()


def order_problem(key: str, value: Any, values: Mapping[str, Any]) -> str | None:
    """Why `key` = `value` breaks an order with the other settings in `values`, or None."""
    for order in ORDERS:
        if key == order.low and order.high in values and _above(value, values[order.high]):
            return f"it must be at most {order.high} ({_shown(values[order.high])})"
        if key == order.high and order.low in values and _above(values[order.low], value):
            return f"it must be at least {order.low} ({_shown(values[order.low])})"
    return None


def broken_orders(values: Mapping[str, Any]) -> list[Order]:
    """The orders that `values` break (keys missing from `values` are not checked)."""
    return [
        order
        for order in ORDERS
        if order.low in values
        and order.high in values
        and _above(values[order.low], values[order.high])
    ]


def _above(a: Any, b: Any) -> bool:
    numbers = (int, float)
    return isinstance(a, numbers) and isinstance(b, numbers) and a > b


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else repr(value)


def _shown(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)
