"""Command factories that import a command's module only when it runs (fast --help)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cleo.commands.command import Command


def lazy(module: str, cls: str) -> Callable[[], Command]:
    """A factory importing `module` only when its command runs; imports no cleo itself."""

    def factory() -> Command:
        return getattr(importlib.import_module(module), cls)()  # type: ignore[no-any-return]

    return factory
