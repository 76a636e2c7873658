"""A release's config as the worker keeps it: the validated nua-config.toml, as data.

`orchestrator.apps.config` validates the file (every key, errors naming it);
this module turns the validated file into the plain data stored with each
release (releases.config) and used to run it, and reads the config out of
an uploaded archive before anything is unpacked.
"""

from __future__ import annotations

import re
import tarfile
import tomllib
from pathlib import Path
from typing import Any

from orchestrator.rpc.errors import InvalidArgument

CONFIG_NAME = "nua-config.toml"
MAX_CONFIG_BYTES = 64 * 1024
LABEL = re.compile(r"^[a-z][a-z0-9-]{0,61}[a-z0-9]$|^[a-z]$")


def check_label(label: Any) -> str:
    if not isinstance(label, str) or not LABEL.match(label):
        raise InvalidArgument(
            f"label {label!r} must be 1-63 lowercase letters, digits or dashes, starting "
            "with a letter and not ending with a dash",
            field="label",
        )
    return label


def _validated(text: str, source: str, folder: Path | None) -> dict[str, Any]:
    """Validate with the app config module; any ConfigError becomes InvalidArgument."""
    try:
        from orchestrator.apps import config as app_config
    except ImportError:  # TEMPORARY until apps/config.py lands
        return tomllib.loads(text)
    try:
        app_config.validate_text(text, source, folder)
    except app_config.ConfigError as exc:
        raise InvalidArgument(str(exc), field=getattr(exc, "field", None) or "config") from None
    return tomllib.loads(text)


def release_data(raw: dict[str, Any]) -> dict[str, Any]:
    """The validated TOML as the plain data the worker runs an app from."""
    meta = raw["metadata"]
    build = raw.get("build", {})
    run = raw["run"]
    ports = list(raw.get("port", {}))
    primary = "web" if "web" in ports else (ports[0] if ports else None)
    check = raw.get("healthcheck")
    health: dict[str, Any] | None = None
    if check:
        if "http" in check:
            health = {"kind": "http", "path": check["http"], "port": check.get("port", primary)}
        else:
            health = {"kind": "tcp", "port": check["tcp"]}
        health["timeout"] = check.get("timeout", 30)
    return {
        "id": meta["id"],
        "version": meta["version"],
        "title": meta.get("title") or meta["id"],
        "command": run["command"],
        "env": dict(run.get("env", {})),
        "ports": ports,
        "primary_port": primary,
        "health": health,
        "data": "data" in raw,
        "build": {"script": build.get("script"), "timeout": build.get("timeout", 600)},
    }


def load_release_config(folder: Path) -> dict[str, Any]:
    """The unpacked release's config, validated against the release's files."""
    path = folder / CONFIG_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"{CONFIG_NAME} cannot be read: {exc}", field="config") from None
    return release_data(_validated(text, CONFIG_NAME, folder))


def peek_config(archive: Path) -> dict[str, Any]:
    """The config inside an uploaded archive, read without unpacking anything else."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            member = None
            for candidate in (CONFIG_NAME, f"./{CONFIG_NAME}"):
                try:
                    member = tar.getmember(candidate)
                    break
                except KeyError:
                    continue
            if member is None or not member.isfile():
                raise InvalidArgument(f"the app has no {CONFIG_NAME} at its top", field="config")
            if member.size > MAX_CONFIG_BYTES:
                raise InvalidArgument(f"{CONFIG_NAME} is larger than 64 KiB", field="config")
            handle = tar.extractfile(member)
            assert handle is not None
            text = handle.read().decode("utf-8")
    except (tarfile.TarError, OSError, EOFError, UnicodeDecodeError) as exc:
        raise InvalidArgument(
            f"the upload is not a readable app archive: {exc}", field="upload"
        ) from None
    return release_data(_validated(text, CONFIG_NAME, None))
