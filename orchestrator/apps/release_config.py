"""A release's config as the worker keeps it: the validated nua-config.toml, as data.

`orchestrator.apps.config` validates the file (every key, errors naming it)
and gives it as plain data (`AppConfig.as_dict`), which is what each release
stores (releases.config) and is run from. This module reads the config of a
release folder, or out of an uploaded archive before anything is unpacked.
"""

from __future__ import annotations

import re
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


def peek_config(archive: Path, max_bytes: int, max_members: int) -> dict[str, Any]:
    """The config inside an uploaded archive, read with unpack's limits and checks.

    Nothing is written. Every member up to the config is checked as unpack
    checks it (names, types, links, declared sizes, bounded headers), and the
    archive is read no further than the config, so that a hostile upload
    costs the RPC thread no more than the install's own unpack step would.
    """
    from orchestrator.apps.archive import ArchiveError
    from orchestrator.apps.extraction import Finder

    try:
        raw = Finder(CONFIG_NAME, MAX_CONFIG_BYTES, max_bytes, max_members).find(archive)
    except ArchiveError as exc:
        raise InvalidArgument(
            f"the upload was refused at step unpack (reading its {CONFIG_NAME}): {exc}; "
            "nothing was installed",
            field="upload",
        ) from None
    if raw is None:
        raise InvalidArgument(f"the app has no {CONFIG_NAME} at its top", field="config")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidArgument(
            f"{CONFIG_NAME} is not UTF-8 text (byte {exc.start})", field="config"
        ) from None
    return _validated(text, CONFIG_NAME, None)
