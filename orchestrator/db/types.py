"""Column types."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Dialect, Text
from sqlalchemy.types import TypeDecorator


class JsonText(TypeDecorator[Any]):
    """A JSON value stored as TEXT.

    SQLAlchemy's JSON type declares a column of type JSON, which SQLite gives
    NUMERIC affinity: it would store the float 30.0 as the integer 30, and a
    setting's type is part of its value.
    """

    impl = Text
    cache_ok = True

    def compare_values(self, x: Any, y: Any) -> bool:
        # 1 == 1.0 == True in Python; for a setting, a change of type is a change.
        return type(x) is type(y) and x == y

    def process_bind_param(self, value: Any, dialect: Dialect) -> str:
        return json.dumps(value, separators=(",", ":"))

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else json.loads(value)
