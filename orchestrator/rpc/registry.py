"""Which methods are callable: an explicit allow-list built from `@public` methods.

A namespace is a class (`SystemMethods` serves `system.*`); only its methods
marked `@public` are registered, under `namespace.method`. Nothing is ever
looked up by attribute path, so `__class__`, `_private` or `a.b.c` are simply
not in the table.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

log = logging.getLogger(__name__)

PUBLIC_MARK = "__nua_public__"
ENTRY_POINT_GROUP = "nua.rpc"


def public(func: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a namespace method as callable over RPC."""
    setattr(func, PUBLIC_MARK, True)
    return func


class Namespace:
    """Base of a class of RPC methods; `namespace` is the prefix before the dot."""

    namespace: str = ""

    def __init__(self, context: Any) -> None:
        self.context = context


@dataclass(frozen=True)
class Method:
    name: str
    func: Callable[..., Any]
    signature: inspect.Signature
    doc: str


class Registry:
    """The table of callable methods."""

    def __init__(self) -> None:
        self.methods: dict[str, Method] = {}

    def add_namespace(self, instance: Namespace) -> None:
        prefix = instance.namespace
        if not prefix or "." in prefix:
            raise ValueError(f"{type(instance).__name__} has no valid namespace name")
        for attr, member in inspect.getmembers(type(instance), inspect.isfunction):
            if attr.startswith("_") or not getattr(member, PUBLIC_MARK, False):
                continue
            bound = getattr(instance, attr)
            self.methods[f"{prefix}.{attr}"] = Method(
                name=f"{prefix}.{attr}",
                func=bound,
                signature=inspect.signature(bound),
                doc=inspect.getdoc(member) or "",
            )

    def get(self, name: str) -> Method | None:
        return self.methods.get(name)


def namespace_classes(package: str = "orchestrator.rpc.methods") -> list[type[Namespace]]:
    """Namespace classes of our methods package, then of `nua.rpc` plugins."""
    found: list[type[Namespace]] = []
    pkg = importlib.import_module(package)
    for info in pkgutil.iter_modules(pkg.__path__):
        module = importlib.import_module(f"{package}.{info.name}")
        found.extend(_classes_in(module))
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = ep.load()
            classes = [loaded] if inspect.isclass(loaded) else _classes_in(loaded)
            found.extend(c for c in classes if issubclass(c, Namespace))
        except Exception:
            log.exception("plugin %s (%s) failed to load; skipped", ep.name, ep.value)
    return found


def _classes_in(module: Any) -> list[type[Namespace]]:
    return [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, Namespace)
        and obj is not Namespace
        and obj.__module__ == module.__name__
    ]
