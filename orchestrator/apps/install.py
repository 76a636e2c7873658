"""The install job: unpack, build, ports, configure, start, health, switch.

Any step failing leaves the host as it was: the new release and its files
are removed, and the previous release (if any) is configured and started
again if it was running. The job records each step, and on failure the step,
the error and the end of the step's log.
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from orchestrator.apps import health, ownership, program, supervision
from orchestrator.apps.build import log_tail, run_build
from orchestrator.apps.layout import app_files, apps_root
from orchestrator.apps.ports import allocate
from orchestrator.apps.recovery import put_back
from orchestrator.apps.release_config import load_release_config
from orchestrator.apps.service import AppsService
from orchestrator.db.models import App, Job, Release, utcnow
from orchestrator.rpc.errors import RpcError

log = logging.getLogger("nua.apps")
T = TypeVar("T")


class StepFailed(Exception):
    def __init__(self, message: str, log: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.log = log


@dataclass
class Previous:
    """What ran before this job, to put back if it fails."""

    app: App
    release: Release


class Steps:
    """Records a job's steps in the database as they run."""

    def __init__(self, service: AppsService, job_id: int) -> None:
        self.service = service
        self.job_id = job_id

    def _set(self, name: str, state: str, stamp: str) -> None:
        def change(job: Job) -> None:
            steps = [dict(s) for s in job.steps]
            for s in steps:
                if s["name"] == name:
                    s["state"] = state
                    s[stamp] = utcnow().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            job.steps = steps

        self.service.update_job(self.job_id, change)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        self._set(name, "running", "started_at")
        try:
            yield
        except StepFailed as exc:
            self._set(name, "failed", "ended_at")
            raise _Failed(name, exc) from None
        except RpcError as exc:  # a clear error from a check (config, ports...)
            self._set(name, "failed", "ended_at")
            raise _Failed(name, StepFailed(exc.message)) from None
        except Exception as exc:
            log.exception("job %d: step %s failed", self.job_id, name)
            self._set(name, "failed", "ended_at")
            raise _Failed(name, StepFailed(f"unexpected error ({type(exc).__name__})")) from None
        self._set(name, "done", "ended_at")

    def skip(self, name: str) -> None:
        self._set(name, "skipped", "ended_at")

    def finish(self, error: _Failed | None) -> None:
        def change(job: Job) -> None:
            if error is None:
                job.state = "succeeded"
            else:
                job.state = "failed"
                job.failed_step = error.step
                job.error = error.cause.message
                job.log_tail = error.cause.log

        self.service.update_job(self.job_id, change)


class _Failed(Exception):
    def __init__(self, step: str, cause: StepFailed) -> None:
        super().__init__(step)
        self.step = step
        self.cause = cause


def ensure_user(name: str) -> None:
    """Create the apps' system user if it is missing (as root only)."""
    try:
        pwd.getpwnam(name)
        return
    except KeyError:
        pass
    done = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise StepFailed(f"cannot create the apps user {name}: {done.stderr.strip()}")


class Installer:
    """Runs one install (or upgrade) job on its own thread."""

    def __init__(
        self,
        service: AppsService,
        job_id: int,
        label: str,
        archive: Path,
        env: dict[str, str],
    ) -> None:
        self.service = service
        self.steps = Steps(service, job_id)
        self.label = label
        self.archive = archive
        self.env = env
        self.files = app_files(service.locations, label)
        self.settings = service.settings

    def run(self) -> None:
        previous = self._previous()
        if previous is not None:
            # An upgrade keeps the operator's --env and `nua app env` values; new ones win.
            self.env = {**previous.app.env, **self.env}
        number = self._next_number()
        release_dir = self.files.release(number)
        failure: _Failed | None = None
        try:
            self._install(previous, number, release_dir)
        except _Failed as exc:
            failure = exc
            self._undo()
        finally:
            self.archive.unlink(missing_ok=True)
            self.service.release_claim(self.label)
        self.steps.finish(failure)

    def _previous(self) -> Previous | None:
        with self.service.context.read() as session:
            app = session.scalars(select(App).where(App.label == self.label)).first()
            if app is None:
                return None
            rel = self.service.release_row(session, self.label, app.current_release)
            return Previous(app, rel) if rel is not None else None

    def _next_number(self) -> int:
        with self.service.context.read() as session:
            top = session.scalar(
                select(func.max(Release.number)).where(Release.label == self.label)
            )
        number = (top or 0) + 1
        while self.files.release(number).exists():
            number += 1
        return number

    def _install(self, previous: Previous | None, number: int, release_dir: Path) -> None:
        with self.steps.step("unpack"):
            user = self.service.user()
            config = self._unpack(release_dir, user)
        with (
            self.steps.step("build")
            if config["build"].get("script")
            else _skipped(self.steps, "build")
        ):
            if config["build"].get("script"):
                self._build(config, number, release_dir, user)
        with self.steps.step("ports"):
            ports = self._ports(config, previous)
        with self.steps.step("configure"):
            if config.get("data"):
                self._make_data(user)
            self.service.write_files(self.files, config, number, ports, self.env, True)
        with self.steps.step("start"):
            proxy = self.service.proxy(120)
            supervision.apply(proxy, self.files)
            problem = supervision.start(proxy, self.files, timeout=30)
            if problem:
                raise StepFailed(f"the app did not start: {problem}", self._app_log())
        with self.steps.step("health"):
            problem = health.wait_healthy(
                config.get("health"),
                ports,
                health.ready_within(config.get("health")),
                lambda: supervision.exited(proxy, self.files),
            )
            if problem:
                raise StepFailed(f"the app is not healthy: {problem}", self._app_log())
        with self.steps.step("switch"):
            self._record(config, number, release_dir, ports, previous)
            self.files.data_marker.unlink(missing_ok=True)
        self._prune()

    def _unpack(self, release_dir: Path, user: str | None) -> dict[str, Any]:
        from orchestrator.apps.archive import ArchiveError, unpack

        if user:
            ensure_user(user)
        self._prepare_folders(user)
        try:
            unpack(
                self.archive,
                release_dir,
                max_bytes=int(self.settings["apps.max_release_bytes"]),
                max_members=int(self.settings["apps.max_release_files"]),
            )
        except ArchiveError as exc:
            raise StepFailed(str(exc)) from None
        config = load_release_config(release_dir)
        # Just unpacked into a folder of ours: no process of the app can write in it yet.
        self._owned(ownership.give_tree, release_dir, ownership.owner_of(user))
        return config

    def _make_data(self, user: str | None) -> None:
        """The data folder, given to the apps user when made now; what is inside is the app's
        (its links and folders are never followed nor changed)."""
        created = self._owned(ownership.make_folder, self.files.data, ownership.owner_of(user))
        if created:
            # Until the release is recorded: a failure or a crash then removes the folder.
            self.files.data_marker.touch(mode=0o600)

    @staticmethod
    def _owned(change: Callable[[Path, Any], T], path: Path, owner: Any) -> T:
        try:
            return change(path, owner)
        except ownership.OwnershipError as exc:
            raise StepFailed(str(exc)) from None

    def _prepare_folders(self, user: str | None) -> None:
        """The app's folders: the orchestrator's own, that the apps user may pass through."""
        root = apps_root(self.service.locations)
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        if user:
            root.chmod(0o711)
            for folder in root.parents:
                if not folder.stat().st_mode & 0o001:
                    raise StepFailed(
                        f"the apps user {user} cannot reach {root}: {folder} has mode "
                        f"{folder.stat().st_mode & 0o777:04o}; run chmod o+x {folder}, or "
                        "choose a NUA_HOME that others may pass through"
                    )
        # Not the app's: it could otherwise swap a release (or the folder being
        # unpacked) for a link while the orchestrator works in it as root.
        mode = 0o711 if user else 0o700
        self._owned(ownership.keep_folder, self.files.root, mode)
        self._owned(ownership.keep_folder, self.files.releases, mode)

    def _build(
        self, config: dict[str, Any], number: int, release_dir: Path, user: str | None
    ) -> None:
        self.files.logs.mkdir(mode=0o700, parents=True, exist_ok=True)
        build_log = self.files.build_log(number)
        env = program.app_environment(self.files, config, number, {}, self.env)
        problem = run_build(
            config["build"]["script"],
            release_dir,
            env,
            build_log,
            float(config["build"].get("timeout") or 600),
            user,
        )
        if problem:
            raise StepFailed(problem, log_tail(build_log))

    def _ports(self, config: dict[str, Any], previous: Previous | None) -> dict[str, int]:
        keep = dict(previous.app.ports) if previous else {}
        with self.service.context.read() as session:
            others = session.scalars(select(App).where(App.label != self.label)).all()
            taken = {port for app in others for port in app.ports.values()}
        names = list(config.get("ports", []))
        keep = {name: port for name, port in keep.items() if name in names}
        return allocate(
            names,
            keep,
            taken,
            int(self.settings["apps.port_min"]),
            int(self.settings["apps.port_max"]),
        )

    def _app_log(self) -> str:
        return log_tail(self.files.err_log) or log_tail(self.files.out_log)

    def _record(
        self,
        config: dict[str, Any],
        number: int,
        release_dir: Path,
        ports: dict[str, int],
        previous: Previous | None,
    ) -> None:
        def record(session: Session) -> None:
            app = session.scalars(select(App).where(App.label == self.label)).first()
            if app is None:
                app = App(label=self.label, app_id=config["id"], env=dict(self.env))
                session.add(app)
            else:
                app.env = {**app.env, **self.env}
            session.flush()
            session.add(
                Release(
                    label=self.label,
                    number=number,
                    version=config["version"],
                    config=config,
                    path=str(release_dir),
                )
            )
            app.previous_release = app.current_release
            app.current_release = number
            app.ports = ports
            app.desired = "running"
            app.updated_at = utcnow()

        self.service.write(record)

    def _prune(self) -> None:
        """Delete releases beyond apps.keep_releases, never the current or the previous one."""
        keep = max(2, int(self.settings["apps.keep_releases"]))

        def prune(session: Session) -> list[str]:
            app = session.scalars(select(App).where(App.label == self.label)).one()
            rows = session.scalars(
                select(Release).where(Release.label == self.label).order_by(Release.number.desc())
            ).all()
            gone = []
            for rel in releases_beyond(rows, app.current_release, app.previous_release, keep):
                gone.append((rel.number, rel.path))
                session.delete(rel)
            return gone

        for number, path in self.service.write(prune):
            shutil.rmtree(path, ignore_errors=True)
            self.files.build_log(number).unlink(missing_ok=True)

    def _undo(self) -> None:
        """Put the host back as it was before the job: as the database records the app."""
        put_back(self.service, self.label)


def releases_beyond(
    newest_first: Sequence[Release], current: int | None, previous: int | None, keep: int
) -> list[Release]:
    """The releases to delete: all but the current, the previous (whatever their numbers:
    after rollbacks the previous may be the oldest) and the newest others up to `keep`."""
    kept = {current, previous} - {None}
    room = max(0, keep - len(kept))
    others = [rel for rel in newest_first if rel.number not in kept]
    return others[room:]


@contextmanager
def _skipped(steps: Steps, name: str) -> Iterator[None]:
    steps.skip(name)
    yield


class Rollback(Installer):
    """Back to the previous release: configure, start, health, switch (no unpack, no build)."""

    def __init__(self, service: AppsService, job_id: int, label: str) -> None:
        super().__init__(service, job_id, label, Path(os.devnull), {})

    def run(self) -> None:
        previous = self._previous()
        failure: _Failed | None = None
        try:
            self._roll_back(previous)
        except _Failed as exc:
            failure = exc
            self._undo()
        finally:
            self.service.release_claim(self.label)
        self.steps.finish(failure)

    def _roll_back(self, previous: Previous | None) -> None:
        assert previous is not None  # checked before the job was created
        with self.service.context.read() as session:
            target = self.service.release_row(session, self.label, previous.app.previous_release)
        assert target is not None
        config = target.config
        with self.steps.step("configure"):
            ports = self._ports(config, previous)
            self.service.write_files(
                self.files, config, target.number, ports, previous.app.env, True
            )
        with self.steps.step("start"):
            proxy = self.service.proxy(120)
            supervision.apply(proxy, self.files)
            problem = supervision.start(proxy, self.files, timeout=30)
            if problem:
                raise StepFailed(f"the app did not start: {problem}", self._app_log())
        with self.steps.step("health"):
            problem = health.wait_healthy(
                config.get("health"),
                ports,
                health.ready_within(config.get("health")),
                lambda: supervision.exited(proxy, self.files),
            )
            if problem:
                raise StepFailed(f"the app is not healthy: {problem}", self._app_log())
        with self.steps.step("switch"):

            def switch(session: Session) -> None:
                app = session.scalars(select(App).where(App.label == self.label)).one()
                app.current_release, app.previous_release = target.number, app.current_release
                app.ports = ports
                app.desired = "running"
                app.updated_at = utcnow()

            self.service.write(switch)
