"""nua install PATH [--label L] [--env K=V ...] [--wait S]"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

from cleo.helpers import argument, option

from orchestrator.console.client_command import CommandError
from orchestrator.console.commands.client.app_command import (
    WAIT_OPTION,
    JobCommand,
    parse_assignments,
    ports_text,
    size_text,
)
from orchestrator.errors import ExitCode


class InstallCommand(JobCommand):
    name = "install"
    changes = True
    description = "Install an app from a folder with a nua-config.toml, or upgrade it."
    arguments = [argument("path", "The app's folder (it holds nua-config.toml).")]
    options = [
        option("label", None, "The app's name on this host (default: its id).", flag=False),
        option(
            "env",
            None,
            "An environment variable for the app, KEY=VALUE (repeatable).",
            flag=False,
            multiple=True,
        ),
        WAIT_OPTION,
    ]
    help = (
        "Checks the folder's nua-config.toml, packs the folder and uploads it in chunks,\n"
        "then follows the install job step by step. Installing a label that exists with\n"
        "a new version is an upgrade: its data is kept, and\n"
        "<comment>nua app rollback LABEL</comment> goes back to the previous release.\n"
        "Ctrl-C or --wait running out stops watching, not the install."
    )

    def handle(self) -> int:
        env = parse_assignments(self.option("env"), "--env")
        wait = self.wait_seconds()
        folder = Path(self.argument("path"))
        metadata = self._check(folder)
        archive = self._pack(folder)
        upload = self._upload(archive)
        params: dict[str, Any] = {"upload": upload}
        if self.option("label") is not None:
            params["label"] = self.option("label")
        if env:
            params["env"] = env
        if not self.json_wanted():
            self.out(
                f"uploaded {metadata} from {folder}: {size_text(len(archive))} "
                f"(sha256 {hashlib.sha256(archive).hexdigest()[:12]})"
            )
        job = self.follow(self.rpc("app.install", params), wait)
        if self.json_wanted():
            self.write_json(job)
        if job.get("state") != "succeeded":
            return self.job_failed(job)
        if not self.json_wanted():
            self.out(self._installed(job))
        return 0

    def _check(self, folder: Path) -> str:
        """Validate the folder's config before anything is sent; `id version` for messages."""
        from orchestrator.apps.config import ConfigError, load_config

        if not folder.is_dir():
            raise CommandError(f"{folder} is not a folder", field="path")
        try:
            config = load_config(folder)
        except ConfigError as exc:
            raise CommandError(str(exc), ExitCode.ERROR, field=exc.key) from None
        return f"{config.id} {config.version}"

    def _pack(self, folder: Path) -> bytes:
        from orchestrator.apps.archive import ArchiveError, pack

        try:
            return pack(folder)
        except ArchiveError as exc:
            raise CommandError(str(exc), field="path") from None

    def _upload(self, archive: bytes) -> str:
        """Send the archive in the chunk size the worker asks for; return the upload id."""
        begun = self.rpc(
            "app.upload_begin",
            {"size": len(archive), "sha256": hashlib.sha256(archive).hexdigest()},
        )
        upload, chunk_bytes = begun["upload"], int(begun["chunk_bytes"])
        if chunk_bytes <= 0:
            raise CommandError(f"the orchestrator asked for chunks of {chunk_bytes} bytes")
        for offset in range(0, len(archive), chunk_bytes):
            data = base64.b64encode(archive[offset : offset + chunk_bytes]).decode("ascii")
            self.rpc("app.upload_chunk", {"upload": upload, "offset": offset, "data": data})
        return str(upload)

    @staticmethod
    def _installed(job: dict[str, Any]) -> str:
        """`installed hello (hello 1.0.0) on port web=20001`."""
        verb = "upgraded" if job.get("kind") == "upgrade" else "installed"
        app = job.get("app") or {}
        label = app.get("label") or job.get("label")
        line = f"{verb} {label}"
        if app:
            line += f" ({app.get('app_id')} {app.get('version')})"
        ports = app.get("ports") or {}
        if ports:
            line += f" on port{'s' if len(ports) > 1 else ''} {ports_text(ports)}"
        return line
