"""A release's config as the worker keeps it: the validated nua-config.toml, as data.

`orchestrator.apps.config` validates the file (every key, errors naming it)
and gives it as plain data (`AppConfig.as_dict`), which is what each release
stores (releases.config) and is run from. This module reads the config of a
release folder, or out of an uploaded archive before anything is unpacked.
"""

from __future__ import annotations

import re
import tarfile
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
    """Validate the config; a ConfigError becomes InvalidArgument naming the key."""
    from orchestrator.apps.config import ConfigError, validate_text

    try:
        return validate_text(text, source, folder).as_dict()
    except ConfigError as exc:
        raise InvalidArgument(str(exc), field=exc.field or "config") from None


def load_release_config(folder: Path) -> dict[str, Any]:
    """The unpacked release's config, validated against the release's files."""
    path = folder / CONFIG_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"{CONFIG_NAME} cannot be read: {exc}", field="config") from None
    return _validated(text, CONFIG_NAME, folder)


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
    return _validated(text, CONFIG_NAME, None)
