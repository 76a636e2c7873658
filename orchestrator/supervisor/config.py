"""Render supervisord.conf from supervisord.conf.tmpl.

The template is plain supervisord INI with `${name}` placeholders. Program
sections other than the core ones are kept only when their setting
`programs.NAME` is true; the `[group:nua]` line lists what was kept.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

from orchestrator.errors import SettingsError
from orchestrator.host.locations import HOME_ENV, Locations
from orchestrator.host.processes import RUN_TOKEN_ENV

GROUP = "nua"
CORE_PROGRAMS = ("rpc", "sentinel")
SECTION_HEADER = re.compile(r"^\[(?P<name>[^\]]+)\]\s*$", re.MULTILINE)


@dataclass(frozen=True)
class RenderedConfig:
    text: str
    programs: tuple[str, ...]


def render(
    template: str,
    locations: Locations,
    settings: Mapping[str, Any],
    run_token: str,
    *,
    python: str = sys.executable,
    program_available: Callable[[str], bool] | None = None,
) -> RenderedConfig:
    """Render `template` for one run; raise SettingsError naming what is wrong."""
    available = program_available or _module_exists
    kept_sections, programs = _select_sections(template, settings, available)
    env = {RUN_TOKEN_ENV: run_token}
    if locations.home is not None:
        env[HOME_ENV] = str(locations.home)
    variables: dict[str, str] = {
        key.replace(".", "_"): _ini(str(_setting_text(value))) for key, value in settings.items()
    }
    _refuse_unsafe_paths(locations)
    variables.update(
        supervisor_socket=_ini(str(locations.supervisor_socket)),
        supervisor_pidfile=_ini(str(locations.supervisor_pidfile)),
        log_dir=_ini(str(locations.logs)),
        data_dir=_ini(str(locations.data)),
        runtime_dir=_ini(str(locations.runtime)),
        apps_conf_dir=_ini(str(locations.config / "apps")),
        python=_ini(shlex.quote(python)),
        run_token=run_token,
        supervisord_environment=_ini(",".join(f'{k}="{_env_value(v)}"' for k, v in env.items())),
        group_programs=",".join(programs),
    )
    body = "".join(kept_sections)
    try:
        text = Template(body).substitute(variables)
    except KeyError as exc:
        name = exc.args[0]
        raise SettingsError(
            f"supervisord.conf.tmpl, line {_line_of(body, name)}: ${{{name}}} is neither a "
            "location nor a setting"
        ) from None
    except ValueError as exc:
        raise SettingsError(f"supervisord.conf.tmpl: {exc}") from None
    return RenderedConfig(text=text, programs=tuple(programs))


def _select_sections(
    template: str, settings: Mapping[str, Any], available: Callable[[str], bool]
) -> tuple[list[str], list[str]]:
    starts = [m.start() for m in SECTION_HEADER.finditer(template)]
    chunks = [template[: starts[0]]] if starts else [template]
    chunks += [template[a:b] for a, b in zip(starts, [*starts[1:], len(template)], strict=True)]
    kept: list[str] = []
    programs: list[str] = []
    for chunk in chunks:
        header = SECTION_HEADER.match(chunk)
        if header and header.group("name").startswith("program:"):
            name = header.group("name").split(":", 1)[1]
            if name not in CORE_PROGRAMS:
                enabled = settings.get(f"programs.{name}", False)
                if enabled is not True:
                    continue
                if not available(name):
                    raise SettingsError(
                        f"program {name} is enabled (setting programs.{name}) but this "
                        f"release has no orchestrator.{name} module: set programs.{name} "
                        "to false"
                    )
            programs.append(name)
        kept.append(chunk)
    missing = [p for p in CORE_PROGRAMS if p not in programs]
    if missing:
        raise SettingsError(f"supervisord.conf.tmpl has no [program:{missing[0]}] section")
    return kept, programs


def _refuse_unsafe_paths(locations: Locations) -> None:
    """supervisord %-expands log paths and `environment=` twice and cannot quote them."""
    for name, path in locations.directories().items():
        bad = sorted(set(str(path)) & set('%"\\'))
        if bad:
            raise SettingsError(
                f"{name} location {path} holds {''.join(bad)!r}, which supervisord cannot "
                'carry in its config: choose a home path without %, " or \\'
            )


def _module_exists(name: str) -> bool:
    return importlib.util.find_spec(f"orchestrator.{name}") is not None


def _setting_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _ini(value: str) -> str:
    """Escape for supervisord's config parser, which expands %(name)s."""
    if "\n" in value or "\r" in value:
        raise SettingsError(f"a value rendered into supervisord.conf holds a newline: {value!r}")
    return value.replace("%", "%%")


def _env_value(value: str) -> str:
    """Quote a value for `environment=`, which supervisord %-expands twice.

    Its parser (non-POSIX shlex) has no escapes: a value with a quote or a
    backslash would reach the programs changed, so it is refused.
    """
    if '"' in value or "\\" in value:
        raise SettingsError(
            f"{value!r} holds a quote or a backslash, which supervisord cannot pass to "
            "its programs: choose a home path without them"
        )
    return value.replace("%", "%%")


def _line_of(text: str, name: str) -> int:
    index = text.find("${" + name)
    return text.count("\n", 0, max(index, 0)) + 1


def write(path: Path, rendered: RenderedConfig) -> None:
    """Write the rendered config 0600, replacing the previous one atomically."""
    tmp = path.with_name(path.name + ".new")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with open(fd, "w", encoding="utf-8") as fh:
        fh.write(rendered.text)
    tmp.replace(path)
