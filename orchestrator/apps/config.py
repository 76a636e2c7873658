"""An app's nua-config.toml: read, validated key by key, as frozen dataclasses.

Every key of the format is defined here and in the README ("The app format").
Unknown tables and keys are errors, so that a typo never passes silently. All
the problems of a file are collected and reported together, each naming its
key by its full dotted path (`run.command`, `port.web.protocol`).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from orchestrator.apps.config_checks import (
    Checker,
    Problem,
    check_relative_file,
    dotted,
    env_name_problem,
    type_name,
)
from orchestrator.errors import NuaError

CONFIG_NAME = "nua-config.toml"
# A config is a few hundred bytes; anything this large is not one (and is read by the worker).
MAX_CONFIG_BYTES = 64 * 1024

APP_ID = re.compile(r"^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$")
# Semver-like: 1 to 4 numeric parts without leading zeros, then an optional
# semver pre-release (-rc.1) and build (+build.5). Not PEP 440's "1.0rc1".
VERSION = re.compile(
    r"^(?:0|[1-9]\d*)(?:\.(?:0|[1-9]\d*)){0,3}"
    r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)
MAX_VERSION = 64
MAX_TITLE = 100
# Port names become NUA_PORT_<NAME>: no dashes, so that two names never give one variable.
PORT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_PORTS = 16
PRIMARY_PORT = "web"
PROTOCOLS = ("tcp",)
# What supervisord's stopsignal accepts.
STOP_SIGNALS = ("TERM", "HUP", "INT", "QUIT", "KILL", "USR1", "USR2")
HTTP_PATH = re.compile(r"^/[\x21-\x7e]*$")
MAX_HTTP_PATH = 2048
MAX_SECONDS = 86400.0

DEFAULT_BUILD_TIMEOUT = 600.0
DEFAULT_HEALTH_TIMEOUT = 30.0

TABLES = ("metadata", "build", "run", "port", "healthcheck", "data")
METADATA_KEYS = ("id", "version", "title")
BUILD_KEYS = ("script", "timeout")
RUN_KEYS = ("command", "env", "stop_signal", "stop_timeout")
PORT_KEYS = ("protocol",)
HEALTH_KEYS = ("http", "tcp", "port", "timeout", "interval")


class ConfigError(NuaError):
    """An invalid nua-config.toml: every problem found, each naming its key and the file."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        #: The dotted key of the first problem (None for a TOML syntax error).
        self.field = self.problems[0].field if self.problems else None
        if len(self.problems) == 1:
            message = f"{source}: {self.problems[0]}"
        else:
            listed = "; ".join(str(p) for p in self.problems)
            message = f"{source}: {len(self.problems)} errors: {listed}"
        super().__init__(message)

    @property
    def key(self) -> str | None:
        """The same as `field`."""
        return self.field


@dataclass(frozen=True)
class Metadata:
    id: str
    version: str
    title: str


@dataclass(frozen=True)
class Build:
    script: str | None = None
    timeout: float = DEFAULT_BUILD_TIMEOUT


@dataclass(frozen=True)
class Run:
    command: str
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    stop_signal: str = "TERM"
    #: None: the host's setting `apps.stop_timeout`.
    stop_timeout: float | None = None


@dataclass(frozen=True)
class Port:
    name: str
    protocol: str = "tcp"

    @property
    def variable(self) -> str:
        """The environment variable holding its number: NUA_PORT_<NAME>."""
        return "NUA_PORT_" + self.name.upper()


@dataclass(frozen=True)
class HealthCheck:
    kind: Literal["http", "tcp"]
    #: The name of the port checked.
    port: str
    #: The path requested (http only).
    path: str | None = None
    timeout: float = DEFAULT_HEALTH_TIMEOUT
    #: None: the host's setting `apps.health_interval`.
    interval: float | None = None


@dataclass(frozen=True)
class AppConfig:
    metadata: Metadata
    run: Run
    build: Build = field(default_factory=Build)
    ports: tuple[Port, ...] = ()
    healthcheck: HealthCheck | None = None
    data: bool = False

    @property
    def id(self) -> str:
        return self.metadata.id

    @property
    def version(self) -> str:
        return self.metadata.version

    @property
    def title(self) -> str:
        return self.metadata.title

    @property
    def primary_port(self) -> Port | None:
        """The port exposed as NUA_PORT: the one named `web`, else the first declared."""
        for port in self.ports:
            if port.name == PRIMARY_PORT:
                return port
        return self.ports[0] if self.ports else None

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (what a release stores), every default filled in."""
        primary = self.primary_port
        health = self.healthcheck
        return {
            "id": self.id,
            "version": self.version,
            "title": self.title,
            "command": self.run.command,
            "env": dict(self.run.env),
            "stop_signal": self.run.stop_signal,
            "stop_timeout": self.run.stop_timeout,
            "ports": [p.name for p in self.ports],
            "protocols": {p.name: p.protocol for p in self.ports},
            "primary_port": primary.name if primary else None,
            "health": None
            if health is None
            else {
                "kind": health.kind,
                "port": health.port,
                "path": health.path,
                "timeout": health.timeout,
                "interval": health.interval,
            },
            "data": self.data,
            "build": {"script": self.build.script, "timeout": self.build.timeout},
        }


def load_config(folder: Path) -> AppConfig:
    """The validated config of the app in `folder` (its build script checked to exist)."""
    path = folder / CONFIG_NAME
    source = str(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(
            str(folder),
            [Problem(None, f"no {CONFIG_NAME}: an app is a folder with one at its top")],
        ) from None
    except OSError as exc:
        raise ConfigError(source, [Problem(None, f"cannot be read: {exc.strerror}")]) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(source, [Problem(None, f"larger than {MAX_CONFIG_BYTES} bytes")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(source, [Problem(None, f"not UTF-8 text (byte {exc.start})")]) from None
    return validate_text(text, source, folder)


def validate_text(text: str, source: str = CONFIG_NAME, folder: Path | None = None) -> AppConfig:
    """Parse and validate a config's text; `folder` (if given) is where build.script must be."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # The message carries "(at line L, column C)".
        raise ConfigError(source, [Problem(None, f"invalid TOML: {exc}")]) from None
    return validate(data, source, folder)


def validate(
    data: Mapping[str, Any], source: str = CONFIG_NAME, folder: Path | None = None
) -> AppConfig:
    """Validate parsed TOML; raise ConfigError listing every problem."""
    check = Checker()
    check.known_keys(data, (), TABLES, "table")
    metadata = _metadata(check, check.table(data, "metadata", required=True))
    build = _build(check, check.table(data, "build"), folder)
    run = _run(check, check.table(data, "run", required=True))
    ports = _ports(check, data.get("port"))
    health = _healthcheck(check, check.table(data, "healthcheck"), ports)
    has_data = _data(check, data)
    if check.problems:
        raise ConfigError(source, check.problems)
    assert metadata is not None and run is not None
    return AppConfig(
        metadata=metadata, run=run, build=build, ports=ports, healthcheck=health, data=has_data
    )


def _metadata(check: Checker, table: Mapping[str, Any] | None) -> Metadata | None:
    if table is None:
        return None
    check.known_keys(table, ("metadata",), METADATA_KEYS)
    app_id = check.string(table, ("metadata", "id"), required=True)
    if app_id is not None and not APP_ID.match(app_id):
        check.add(
            "metadata.id",
            f"{app_id!r} must be 1-63 lowercase letters, digits or dashes, starting with "
            "a letter and not ending with a dash",
        )
        app_id = None
    version = check.string(table, ("metadata", "version"), required=True)
    if version is not None and (len(version) > MAX_VERSION or not VERSION.match(version)):
        check.add(
            "metadata.version",
            f"{version!r} is not a version like 1.0.0, 2.1 or 1.0.0-rc.1 (semver-like: "
            f"numbers without leading zeros, an optional -pre-release and +build, "
            f"at most {MAX_VERSION} characters)",
        )
        version = None
    title = check.string(table, ("metadata", "title"), one_line=True)
    if title is not None and len(title) > MAX_TITLE:
        check.add("metadata.title", f"longer than {MAX_TITLE} characters")
    if app_id is None or version is None:
        return None
    return Metadata(id=app_id, version=version, title=title or app_id)


def _build(check: Checker, table: Mapping[str, Any] | None, folder: Path | None) -> Build:
    if table is None:
        return Build()
    check.known_keys(table, ("build",), BUILD_KEYS)
    script = check.string(table, ("build", "script"), one_line=True)
    if script is not None:
        problem = check_relative_file(script, folder)
        if problem:
            check.add("build.script", problem)
            script = None
    timeout = check.seconds(table, ("build", "timeout"), DEFAULT_BUILD_TIMEOUT, MAX_SECONDS)
    return Build(script=script, timeout=timeout or DEFAULT_BUILD_TIMEOUT)


def _run(check: Checker, table: Mapping[str, Any] | None) -> Run | None:
    if table is None:
        return None
    check.known_keys(table, ("run",), RUN_KEYS)
    command = check.string(table, ("run", "command"), required=True, one_line=True)
    if command is not None and not command.strip():
        check.add("run.command", "is blank")
        command = None
    env = _env(check, table.get("env"))
    stop_signal = "TERM"
    raw_signal = check.string(table, ("run", "stop_signal"))
    if raw_signal is not None:
        name = raw_signal.upper().removeprefix("SIG")
        if name in STOP_SIGNALS:
            stop_signal = name
        else:
            check.add("run.stop_signal", f"{raw_signal!r} is not one of {', '.join(STOP_SIGNALS)}")
    stop_timeout = check.seconds(table, ("run", "stop_timeout"), None, MAX_SECONDS)
    if command is None:
        return None
    return Run(
        command=command,
        env=MappingProxyType(env),
        stop_signal=stop_signal,
        stop_timeout=stop_timeout,
    )


def _env(check: Checker, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        check.add("run.env", f"must be a table of strings, not {type_name(value)}")
        return {}
    env: dict[str, str] = {}
    for key, item in value.items():
        path = dotted("run", "env", key)
        problem = env_name_problem(key)
        if problem:
            check.add(path, problem)
        elif not isinstance(item, str):
            check.add(path, f"must be a string, not {type_name(item)} (quote it)")
        elif "\x00" in item:
            check.add(path, "contains a NUL character")
        else:
            env[key] = item
    return env


def _ports(check: Checker, value: Any) -> tuple[Port, ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        check.add("port", f"must be tables [port.NAME], not {type_name(value)}")
        return ()
    if len(value) > MAX_PORTS:
        check.add("port", f"{len(value)} ports, at most {MAX_PORTS}")
    ports: list[Port] = []
    for name, table in value.items():
        path = ("port", name)
        if not PORT_NAME.match(name):
            check.add(
                dotted(*path),
                f"port name {name!r} must be 1-32 lowercase letters, digits or _, "
                "starting with a letter (it becomes NUA_PORT_<NAME>)",
            )
            continue
        if not isinstance(table, dict):
            check.add(dotted(*path), f"must be a table [port.{name}], not {type_name(table)}")
            continue
        check.known_keys(table, path, PORT_KEYS)
        protocol = check.string(table, (*path, "protocol")) or "tcp"
        if protocol not in PROTOCOLS:
            check.add(dotted(*path, "protocol"), f"{protocol!r} is not supported (only tcp)")
        ports.append(Port(name=name, protocol=protocol))
    return tuple(ports)


def _healthcheck(
    check: Checker, table: Mapping[str, Any] | None, ports: tuple[Port, ...]
) -> HealthCheck | None:
    if table is None:
        return None
    check.known_keys(table, ("healthcheck",), HEALTH_KEYS)
    names = [p.name for p in ports]
    http = check.string(table, ("healthcheck", "http"))
    tcp = check.string(table, ("healthcheck", "tcp"))
    port_key = check.string(table, ("healthcheck", "port"))
    timeout = check.seconds(table, ("healthcheck", "timeout"), DEFAULT_HEALTH_TIMEOUT, MAX_SECONDS)
    interval = check.seconds(table, ("healthcheck", "interval"), None, MAX_SECONDS)
    if "http" in table and "tcp" in table:
        check.add("healthcheck", "set one of http or tcp, not both")
        return None
    if "http" not in table and "tcp" not in table:
        check.add("healthcheck", 'set one of http = "/path" or tcp = "PORTNAME"')
        return None
    if tcp is not None:
        if "port" in table:
            check.add("healthcheck.port", "only with http (tcp names its port itself)")
        if tcp not in names:
            check.add("healthcheck.tcp", _no_such_port(tcp, names))
            return None
        return HealthCheck(kind="tcp", port=tcp, timeout=timeout or 0, interval=interval)
    if http is None:
        return None
    if len(http) > MAX_HTTP_PATH or not HTTP_PATH.match(http):
        check.add(
            "healthcheck.http",
            f"{http!r} must be a path starting with / (printable ASCII, no spaces)",
        )
        return None
    if port_key is not None:
        if port_key not in names:
            check.add("healthcheck.port", _no_such_port(port_key, names))
            return None
        port = port_key
    else:
        primary = _primary_name(names)
        if primary is None:
            check.add("healthcheck.http", "needs a port to ask: add a [port.web] table")
            return None
        port = primary
    return HealthCheck(kind="http", port=port, path=http, timeout=timeout or 0, interval=interval)


def _primary_name(names: Sequence[str]) -> str | None:
    if PRIMARY_PORT in names:
        return PRIMARY_PORT
    return names[0] if names else None


def _no_such_port(name: str, names: Sequence[str]) -> str:
    if not names:
        return f"no port {name!r}: the app declares no [port.NAME]"
    return f"no port {name!r} (declared: {', '.join(names)})"


def _data(check: Checker, data: Mapping[str, Any]) -> bool:
    if "data" not in data:
        return False
    value = data["data"]
    if not isinstance(value, dict):
        check.add("data", f"must be a table [data], not {type_name(value)}")
        return False
    check.known_keys(value, ("data",), ())
    return True
