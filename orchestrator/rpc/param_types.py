"""Check a call's params against the method's type hints, as JSON values.

A method says what it takes (`username: str`, `limit: int = 50`,
`*numbers: int`); a value of another JSON type is answered with "Invalid
params" (-32602) naming the parameter, before the method runs, so that no
method (a plugin's included) fails on a type it never expected. Hints this
module does not know (a class of the method's own) are not checked.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Any

# A check returns None when the value fits, else what was expected ("an integer").
Check = Callable[[Any], str | None]


def json_type(value: Any) -> str:
    """The JSON name of a value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_SIMPLE: dict[Any, tuple[Callable[[Any], bool], str]] = {
    str: (lambda v: isinstance(v, str), "a string"),
    int: (_is_int, "an integer"),
    float: (_is_number, "a number"),
    bool: (lambda v: isinstance(v, bool), "a boolean"),
    list: (lambda v: isinstance(v, list), "an array"),
    dict: (lambda v: isinstance(v, dict), "an object"),
    type(None): (lambda v: v is None, "null"),
}


def check_for(hint: Any) -> Check | None:
    """A check for values of `hint`, or None when any value is accepted or it is unknown."""
    if hint is Any or hint is inspect.Parameter.empty:
        return None
    if hint in _SIMPLE:
        test, expected = _SIMPLE[hint]
        return lambda value: None if test(value) else expected
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return _union([check_for(arg) for arg in args])
    if origin is typing.Literal:
        choices = ", ".join(repr(a) for a in args)
        return lambda value: None if value in args else f"one of {choices}"
    if origin in (list, dict):
        return _container(origin, args)
    return None


def _union(checks: list[Check | None]) -> Check | None:
    if any(check is None for check in checks):
        return None
    known = [check for check in checks if check is not None]

    def check(value: Any) -> str | None:
        expected = []
        for one in known:
            wanted = one(value)
            if wanted is None:
                return None
            expected.append(wanted)
        return " or ".join(expected)

    return check


def _container(origin: type, args: tuple[Any, ...]) -> Check:
    outer, expected = _SIMPLE[origin]
    inner = check_for(args[-1]) if args else None

    def check(value: Any) -> str | None:
        if not outer(value):
            return expected
        if inner is not None:
            items = value.values() if origin is dict else value
            for item in items:
                wanted = inner(item)
                if wanted is not None:
                    return f"{expected} of {wanted.removeprefix('a ').removeprefix('an ')}s"
        return None

    return check


def parameter_checks(func: Callable[..., Any], signature: inspect.Signature) -> dict[str, Check]:
    """A check per parameter of `func` whose hint is known (none when hints cannot be read)."""
    try:
        hints = typing.get_type_hints(func)
    except Exception:  # a plugin's hint naming something not importable: no checks
        return {}
    checks = {}
    for name in signature.parameters:
        check = check_for(hints.get(name, Any))
        if check is not None:
            checks[name] = check
    return checks


def first_mismatch(
    signature: inspect.Signature, checks: dict[str, Check], arguments: dict[str, Any]
) -> tuple[str, str] | None:
    """(parameter, reason) for the first argument that does not fit its hint, else None."""
    for name, value in arguments.items():
        check = checks.get(name)
        if check is None:
            continue
        kind = signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            values = list(enumerate(value))
        elif kind is inspect.Parameter.VAR_KEYWORD:
            values = list(value.items())
        else:
            values = [(None, value)]
        for where, item in values:
            expected = check(item)
            if expected is not None:
                if where is None:
                    field = name
                elif kind is inspect.Parameter.VAR_KEYWORD:
                    field = str(where)
                else:
                    field = f"{name}[{where}]"
                return field, f"{field} must be {expected}, not {json_type(item)}"
    return None
