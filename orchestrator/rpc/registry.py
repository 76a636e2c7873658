"""Which methods are callable: an explicit allow-list built from `@public` methods.

A namespace is a class (`SystemMethods` serves `system.*`); only its methods
marked `@public` are registered, under `namespace.method`, in a tinyrpc
dispatcher's method table. Lookups are exact names in that table, never
attribute paths, so `__class__`, `_private` or `a.b.c` are simply absent.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, TypeVar, overload

from tinyrpc.dispatch import RPCDispatcher
from tinyrpc.dispatch import public as tinyrpc_public

from orchestrator.rpc.param_types import Check, parameter_checks

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
CHANGES_MARK = "__nua_changes__"
INLINE_MARK = "__nua_inline__"
ENTRY_POINT_GROUP = "nua.rpc"
# Accepted by every method, used by changing ones (see protocol.py).
IDEMPOTENCY_PARAM = "idempotency_key"


@overload
def public(func: F) -> F: ...
@overload
def public(*, changes: bool = False, inline: bool = False) -> Callable[[F], F]: ...


def public(
    func: F | None = None, *, changes: bool = False, inline: bool = False
) -> F | Callable[[F], F]:
    """Mark a namespace method as callable over RPC.

    `changes`: it changes state (it gets idempotency, and clients send a key).
    `inline`: it is quick and never blocks, so the worker's loop runs it itself
    instead of handing it to a thread.
    """

    def mark(f: F) -> F:
        setattr(f, CHANGES_MARK, changes)
        setattr(f, INLINE_MARK, inline)
        return tinyrpc_public(f)

    return mark(func) if func is not None else mark


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
    changes: bool
    inline: bool
    # Type checks of the parameters whose hints are known (see param_types.py).
    checks: dict[str, Check] = field(default_factory=dict)

    @property
    def needs_arguments(self) -> bool:
        """Whether a call without parameters could be wrong (cached: called per request)."""
        cached = self.__dict__.get("_needs_arguments")
        if cached is None:
            cached = any(
                p.default is inspect.Parameter.empty
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
                for p in self.signature.parameters.values()
            )
            object.__setattr__(self, "_needs_arguments", cached)
        return cached

    def keyword_arguments(self, kwargs: dict[str, Any]) -> dict[str, Any] | None:
        """`kwargs` in the signature's order if they bind as they are, else None.

        They do when every name is a parameter and every required one is
        given, for a method without *args, **kwargs or positional-only
        parameters: the common case, without inspect's slower Signature.bind
        (which the caller uses otherwise, for its error message).
        """
        names = self.__dict__.get("_names")
        if names is None:
            names = _plain_parameters(self.signature)
            object.__setattr__(self, "_names", names)
        if names is False:
            return None
        order, required = names
        if not required.issubset(kwargs) or len(kwargs) > len(order):
            return None
        arguments = {name: kwargs[name] for name in order if name in kwargs}
        return arguments if len(arguments) == len(kwargs) else None

    def describe(self) -> dict[str, Any]:
        """Name, parameters with types, doc: enough for a client to build help text."""
        params = []
        for param in self.signature.parameters.values():
            entry: dict[str, Any] = {
                "name": param.name,
                "type": _annotation(param.annotation),
                "required": param.default is inspect.Parameter.empty,
            }
            if param.default is not inspect.Parameter.empty:
                entry["default"] = param.default
            params.append(entry)
        if self.changes:
            params.append(
                {
                    "name": IDEMPOTENCY_PARAM,
                    "type": "str | None",
                    "required": False,
                    "default": None,
                }
            )
        return {
            "name": self.name,
            "doc": self.doc,
            "changes": self.changes,
            "params": params,
            "returns": _annotation(self.signature.return_annotation),
        }


def _plain_parameters(
    signature: inspect.Signature,
) -> tuple[tuple[str, ...], frozenset[str]] | bool:
    """(names in order, required names), or False when a call may need Signature.bind."""
    plain = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    params = list(signature.parameters.values())
    if any(p.kind not in plain for p in params):
        return False
    required = frozenset(p.name for p in params if p.default is inspect.Parameter.empty)
    return tuple(p.name for p in params), required


def _annotation(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty or annotation is inspect.Signature.empty:
        return "any"
    text = (
        annotation
        if isinstance(annotation, str)
        else getattr(annotation, "__name__", str(annotation))
    )
    # A method that answers once a write commits returns a Future of its answer.
    if text.startswith("Future[") and text.endswith("]"):
        return text.removeprefix("Future[").removesuffix("]")
    return text


class Registry:
    """The table of callable methods (a tinyrpc dispatcher keeps the callables)."""

    def __init__(self) -> None:
        self.dispatcher = RPCDispatcher()
        self.methods: dict[str, Method] = {}

    def add_namespace(self, instance: Namespace) -> None:
        prefix = instance.namespace
        # An empty namespace registers bare names (the specification's examples
        # call `subtract`); it is meant for plugins, never for our own methods.
        if "." in prefix or prefix.startswith("_"):
            raise ValueError(f"{type(instance).__name__} has no valid namespace name")
        for attr, member in inspect.getmembers(type(instance), inspect.isfunction):
            if attr.startswith("_") or getattr(member, "_rpc_public_name", None) is None:
                continue
            name = f"{prefix}.{attr}" if prefix else attr
            if name in self.methods:
                raise ValueError(f"{name} is registered twice")
            bound = getattr(instance, attr)
            signature = inspect.signature(bound)
            self.dispatcher.add_method(bound, name)
            self.methods[name] = Method(
                name=name,
                func=bound,
                signature=signature,
                doc=inspect.getdoc(member) or "",
                changes=getattr(member, CHANGES_MARK, False),
                inline=getattr(member, INLINE_MARK, False),
                checks=parameter_checks(bound, signature),
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
            bad = [c for c in classes if not (inspect.isclass(c) and issubclass(c, Namespace))]
            if bad or not classes:
                raise TypeError(f"{ep.value} provides no Namespace subclass")
            found.extend(classes)
        except Exception:
            log.exception("plugin %s (%s) failed to load; skipped", ep.name, ep.value)
    return found


def build_registry(context: Any, classes: list[type[Namespace]]) -> Registry:
    """Instantiate each namespace; one that fails (a plugin's) is logged and skipped."""
    registry = Registry()
    for cls in classes:
        try:
            registry.add_namespace(cls(context))
        except Exception:
            log.exception(
                "namespace %s.%s failed to register; skipped", cls.__module__, cls.__name__
            )
    return registry


def _classes_in(module: Any) -> list[type[Namespace]]:
    return [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, Namespace)
        and obj is not Namespace
        and obj.__module__ == module.__name__
    ]
