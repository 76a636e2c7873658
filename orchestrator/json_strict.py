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
_STRICT = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)
_scan = _STRICT.scan_once


def loads_strict(text: str) -> Any:
    """The JSON value `text` holds; NaN, Infinity and numbers beyond a double raise NotJson.

    Text with nothing around its value (what clients send) is read by the
    scanner alone, without the decoder's two whitespace matches; anything
    else (whitespace, trailing data, an error) takes the decoder's path and
    its error messages.
    """
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        end = -1
    except ValueError:  # NotJson, or the scanner's own error: the decoder says it
        end = -1
    if end == len(text):
        return value
    return _STRICT.decode(text)
