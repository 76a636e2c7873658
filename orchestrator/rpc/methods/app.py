"""`app.*` and `job.*`: install, run, inspect and remove apps; follow install jobs.

An install uploads the packed app folder in chunks (`upload_begin`,
`upload_chunk`), then `install` checks its config, claims the label and runs
the job on its own thread: the call returns the job at once, and
`job.get` follows its steps. Start, stop and the other calls on an app act
on that app's supervisord group alone.
"""

from __future__ import annotations

from typing import Any

from orchestrator.rpc.registry import Namespace, public


class AppMethods(Namespace):
    namespace = "app"

    @property
    def apps(self) -> Any:
        return self.context.apps

    @public(changes=True)
    def upload_begin(self, size: int, sha256: str) -> dict[str, Any]:
        """Start uploading a packed app of `size` bytes; returns the upload id and chunk size."""
        upload = self.apps.uploads.begin(size, sha256)
        return {"upload": upload, "chunk_bytes": self.apps.uploads.chunk_bytes}

    @public(changes=True)
    def upload_chunk(self, upload: str, offset: int, data: str) -> dict[str, Any]:
        """Add base64 `data` at `offset` of an upload; returns the bytes received so far."""
        return {"received": self.apps.uploads.chunk(upload, offset, data)}

    @public(changes=True)
    def install(
        self, upload: str, label: str | None = None, env: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """Install (or upgrade, for an existing label) an uploaded app; returns its job."""
        return self.apps.install(upload, label, env or {})

    @public
    def list(self) -> list[dict[str, Any]]:
        """Every installed app: label, app id, version, state, ports, health, uptime."""
        return self.apps.list_apps()

    @public
    def get(self, label: str) -> dict[str, Any]:
        """One app, as `app.list` shows it."""
        return self.apps.app_dict(label)

    @public(changes=True)
    def start(self, label: str) -> dict[str, Any]:
        """Start an app (and keep it running across orchestrator restarts)."""
        return self.apps.start(label)

    @public(changes=True)
    def stop(self, label: str) -> dict[str, Any]:
        """Stop an app (and keep it stopped across orchestrator restarts)."""
        return self.apps.stop(label)

    @public(changes=True)
    def restart(self, label: str) -> dict[str, Any]:
        """Stop, then start an app (environment changes apply)."""
        return self.apps.restart(label)

    @public
    def logs(
        self, label: str, stderr: bool = False, lines: int = 100, offset: int | None = None
    ) -> dict[str, Any]:
        """The last `lines` of an app's output, or what follows byte `offset` (to follow it)."""
        return self.apps.logs(label, stderr, lines, offset)

    @public(changes=True)
    def rollback(self, label: str) -> dict[str, Any]:
        """Go back to the app's previous release (its data kept); returns the job."""
        return self.apps.rollback(label)

    @public(changes=True)
    def env(
        self,
        label: str,
        set: dict[str, str] | None = None,
        unset: list[str] | None = None,
    ) -> dict[str, Any]:
        """An app's environment overrides; `set`/`unset` change them (applied at restart)."""
        return self.apps.set_env(label, set, unset)

    @public(changes=True)
    def remove(self, label: str, purge: bool = False) -> dict[str, Any]:
        """Stop and remove an app; its data folder is kept unless `purge`."""
        return self.apps.remove(label, purge)


class JobMethods(Namespace):
    namespace = "job"

    @public
    def get(self, id: int) -> dict[str, Any]:
        """A job: its steps, state, and on failure the step, error and log tail."""
        return self.context.apps.get_job(id)
