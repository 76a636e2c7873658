"""JSON read as RFC 8259 says: Python's json module also takes NaN, Infinity and 1e400.

Shared by the worker (requests) and the CLIs (JSON typed on a command line), so
that what one accepts the other does too.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
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


def scan_first(decoder: json.JSONDecoder) -> Callable[[str], Any]:
    """`decoder.decode`, quicker for text with nothing around its value (what peers send).

    Such text is read by the scanner alone, without decode's two whitespace
    matches; anything else (whitespace, trailing data, an error) takes
    decode's path, so values and error messages are decode's own.
    """
    scan, decode = decoder.scan_once, decoder.decode

    def loads(text: str) -> Any:
        try:
            value, end = scan(text, 0)
        except (StopIteration, ValueError):  # decode says what is wrong, if anything
            return decode(text)
        return value if end == len(text) else decode(text)

    return loads


# Built once: a decoder per call costs more than the parse of a small message.
# loads_strict(text): NaN, Infinity and numbers beyond a double raise NotJson.
loads_strict = scan_first(
    json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)
)
