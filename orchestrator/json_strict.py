"""JSON typed on a command line, read as RFC 8259 says (Python's json module is laxer)."""

from __future__ import annotations

import json
import math
from typing import Any


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"the number {text[:40]} is out of range")
    return value


def loads_strict(text: str) -> Any:
    """Parse `text`; NaN, Infinity and numbers beyond a double are a ValueError."""
    return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
