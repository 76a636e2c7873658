"""JSON read as RFC 8259 says: Python's json module also takes NaN, Infinity and 1e400.

Shared by the worker (requests) and the CLIs (JSON typed on a command line), so
that what one accepts the other does too.
"""

from __future__ import annotations

import json
import math
from typing import Any


class NotJson(ValueError):
    """Text Python's json module accepts but RFC 8259 does not."""


def _refuse_constant(name: str) -> Any:
    raise NotJson(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise NotJson(f"the number {text[:40]} is out of range")
    return value


# Built once: a decoder per call costs more than the parse of a small message.
# loads_strict(text): NaN, Infinity and numbers beyond a double raise NotJson.
loads_strict = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float).decode
