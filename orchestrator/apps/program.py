"""An app's supervisord section and launch spec, written from its release and settings.

The worker writes them at install and on changes; `start` writes them again
from the database, so that a restarted or restored orchestrator brings every
app back as it was (running ones running, stopped ones stopped).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.apps.layout import AppFiles

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


def port_variable(name: str) -> str:
    return "NUA_PORT_" + name.upper().replace("-", "_")


def app_environment(
    files: AppFiles,
    release: Mapping[str, Any],
    number: int,
    ports: Mapping[str, int],
    overrides: Mapping[str, str],
) -> dict[str, str]:
    """What the app's process gets, and nothing of the orchestrator's own environment."""
    env = {
        "PATH": DEFAULT_PATH,
        "LANG": "C.UTF-8",
        "NUA_APP_LABEL": files.label,
        "NUA_APP_ID": str(release["id"]),
        "NUA_APP_VERSION": str(release["version"]),
        "NUA_RELEASE_DIR": str(files.release(number)),
    }
    for name, port in ports.items():
        env[port_variable(name)] = str(port)
    primary = release.get("primary_port")
    if primary and primary in ports:
        env["NUA_PORT"] = str(ports[primary])
    if release.get("data"):
        env["NUA_DATA_DIR"] = str(files.data)
    env.update({str(k): str(v) for k, v in release.get("env", {}).items()})
    env.update({str(k): str(v) for k, v in overrides.items()})
    return env


def launch_spec(
    files: AppFiles,
    release: Mapping[str, Any],
    number: int,
    ports: Mapping[str, int],
    overrides: Mapping[str, str],
    user: str | None,
) -> dict[str, Any]:
    return {
        "command": release["command"],
        "cwd": str(files.release(number)),
        "env": app_environment(files, release, number, ports, overrides),
        "user": user,
        "home": str(files.data) if release.get("data") else None,
        # For the sentinel's health checks (the launcher ignores them).
        "health": release.get("health"),
        "ports": dict(ports),
    }


def _ini(value: str) -> str:
    return value.replace("%", "%%")


def section(
    files: AppFiles,
    settings: Mapping[str, Any],
    autostart: bool,
    python: str = sys.executable,
    spec_digest: str = "",
    stop_signal: str = "TERM",
    stop_timeout: float | None = None,
) -> str:
    """The app's supervisord section: its own group, its own logs.

    `spec_digest` (of the launch spec) is in the section's environment so that
    a new release, port or variable changes the section: supervisord then
    restarts this group alone when the worker applies it.
    """
    command = f"{shlex.quote(python)} -I -m orchestrator.apps.launch {shlex.quote(str(files.spec))}"
    lines = [
        f"; {files.label}: written by nua-orchestrator; do not edit (nua app ...)",
        f"[program:{files.group}]",
        f"command = {_ini(command)}",
        f"autostart = {'true' if autostart else 'false'}",
        f'environment = NUA_SPEC_DIGEST="{spec_digest}"',
        "autorestart = true",
        "startsecs = 1",
        "startretries = 3",
        f"stopsignal = {stop_signal}",
        f"stopwaitsecs = {int(stop_timeout or settings.get('apps.stop_timeout', 10))}",
        "stopasgroup = true",
        "killasgroup = true",
        f"stdout_logfile = {_ini(str(files.out_log))}",
        f"stderr_logfile = {_ini(str(files.err_log))}",
        f"stdout_logfile_maxbytes = {settings.get('programs.log_max_bytes', '10MB')}",
        f"stderr_logfile_maxbytes = {settings.get('programs.log_max_bytes', '10MB')}",
        f"stdout_logfile_backups = {settings.get('programs.log_backups', 5)}",
        f"stderr_logfile_backups = {settings.get('programs.log_backups', 5)}",
        "",
    ]
    return "\n".join(lines)


def write_private(path: Path, text: str) -> None:
    """Write `path` 0600 through a temporary file and a rename (never through a link)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with open(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    tmp.replace(path)


def write_app(
    files: AppFiles,
    release: Mapping[str, Any],
    number: int,
    ports: Mapping[str, int],
    overrides: Mapping[str, str],
    settings: Mapping[str, Any],
    user: str | None,
    autostart: bool,
) -> None:
    """Write the launch spec, then the section that points at it."""
    spec = json.dumps(
        launch_spec(files, release, number, ports, overrides, user), indent=2, sort_keys=True
    )
    write_private(files.spec, spec)
    files.logs.mkdir(mode=0o700, parents=True, exist_ok=True)
    digest = hashlib.sha256(spec.encode()).hexdigest()[:16]
    text = section(
        files,
        settings,
        autostart,
        spec_digest=digest,
        stop_signal=str(release.get("stop_signal") or "TERM"),
        stop_timeout=release.get("stop_timeout"),
    )
    write_private(files.conf, text)


def remove_app(files: AppFiles) -> None:
    for path in (files.conf, files.spec):
        path.unlink(missing_ok=True)
