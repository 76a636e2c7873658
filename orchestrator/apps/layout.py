"""Where an app's files live: releases, data, its supervisord section, its logs.

    <apps>/<label>/releases/<n>/   one unpacked, built release each
    <apps>/<label>/data/           the persistent folder, kept across releases
    <config>/apps/<label>.conf     its supervisord section (included by supervisord.conf)
    <config>/apps/<label>.json     how to launch it (command, env, user, folder), 0600
    <logs>/apps/<label>.out.log    its output (and .err.log), build-<n>.log per build

`<apps>` is `<home>/apps` with NUA_HOME, /var/lib/nua-apps for root (apps
run as another user there, who must reach their folder), and
`<data>/apps` otherwise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from orchestrator.host.locations import Locations

GROUP_PREFIX = "app-"


def apps_root(locations: Locations) -> Path:
    if locations.home is not None:
        return locations.home / "apps"
    if os.geteuid() == 0:
        return Path("/var/lib/nua-apps")
    return locations.data / "apps"


@dataclass(frozen=True)
class AppFiles:
    """Every path of one app."""

    label: str
    root: Path
    conf: Path
    spec: Path
    logs: Path

    @property
    def releases(self) -> Path:
        return self.root / "releases"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def data_marker(self) -> Path:
        """Present while a job that created the data folder has not recorded its release:
        whoever puts the app back (the job, or recovery after a crash) removes that folder."""
        return self.root / ".data-created"

    def release(self, number: int) -> Path:
        return self.releases / str(number)

    @property
    def group(self) -> str:
        """The supervisord group (and program) name."""
        return f"{GROUP_PREFIX}{self.label}"

    @property
    def process(self) -> str:
        return f"{self.group}:{self.group}"

    @property
    def out_log(self) -> Path:
        return self.logs / f"{self.label}.out.log"

    @property
    def err_log(self) -> Path:
        return self.logs / f"{self.label}.err.log"

    def build_log(self, number: int) -> Path:
        return self.logs / f"{self.label}.build-{number}.log"

    def log_files(self) -> list[Path]:
        """Every log of the app: output, rotated copies, builds (labels have no dot)."""
        if not self.logs.is_dir():
            return []
        return [p for p in self.logs.glob(f"{self.label}.*") if not p.is_dir()]


def app_files(locations: Locations, label: str) -> AppFiles:
    return AppFiles(
        label=label,
        root=apps_root(locations) / label,
        conf=conf_dir(locations) / f"{label}.conf",
        spec=conf_dir(locations) / f"{label}.json",
        logs=locations.logs / "apps",
    )


def conf_dir(locations: Locations) -> Path:
    return locations.config / "apps"


def uploads_dir(locations: Locations) -> Path:
    return locations.data / "uploads"
