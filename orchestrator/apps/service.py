"""The worker's side of apps: state, jobs and the operations behind the app.* methods."""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.apps import health, program, supervision
from orchestrator.apps.build import log_tail
from orchestrator.apps.layout import AppFiles, app_files, apps_root, uploads_dir
from orchestrator.apps.run_as import RootUserRefused, app_user
from orchestrator.apps.uploads import Uploads
from orchestrator.db.models import App, Job, Release, utcnow
from orchestrator.host.locations import Locations
from orchestrator.rpc.errors import Conflict, InvalidArgument, NotFound, Unavailable
from orchestrator.rpc.idempotency import IDEMPOTENCY
from orchestrator.supervisor import control

log = logging.getLogger("nua.apps")
STEPS = ("unpack", "build", "ports", "configure", "start", "health", "switch")
ROLLBACK_STEPS = ("configure", "start", "health", "switch")


def _iso(value: Any) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def job_dict(job: Job, app: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "id": job.id,
        "kind": job.kind,
        "label": job.label,
        "state": job.state,
        "steps": job.steps,
        "error": job.error,
        "failed_step": job.failed_step,
        "log_tail": job.log_tail,
        "app": app,
        "created_at": _iso(job.created_at),
        "updated_at": _iso(job.updated_at),
    }


class AppsService:
    """Shared by the app.* and job.* namespaces of one worker."""

    def __init__(self, context: Any, locations: Locations, settings: dict[str, Any]) -> None:
        self.context = context
        self.locations = locations
        self.settings = settings
        self.uploads = Uploads(
            uploads_dir(locations),
            int(settings["apps.max_upload_bytes"]),
            int(settings["apps.chunk_bytes"]),
            int(settings["rpc.max_message_bytes"]),
        )
        self._busy: dict[str, int] = {}  # label -> running job id
        self._busy_lock = threading.Lock()

    def write(self, job: Callable[[Session], Any]) -> Any:
        """A write of app state. Several may serve one call, so none of them is that
        call's idempotent answer (app calls are safe to repeat on their own)."""
        token = IDEMPOTENCY.set(None)
        try:
            return self.context.write(job)
        finally:
            IDEMPOTENCY.reset(token)

    # -- supervisord ----------------------------------------------------------------------

    def proxy(self, timeout: float = 30.0) -> Any:
        return control.connect(self.locations.supervisor_socket, timeout)

    def user(self) -> str | None:
        """The user apps run as: a setting when the orchestrator is root, else ours (None).

        Never root: a setting that would be (empty, root, uid or gid 0) is refused."""
        try:
            return app_user(self.settings["apps.user"])
        except RootUserRefused as exc:
            raise Unavailable(str(exc), field="apps.user") from None

    # -- startup ----------------------------------------------------------------------------

    def recover(self) -> None:
        """After a restart: forget uploads, end cut-off jobs, put their apps back as recorded.

        A job cut off (the worker killed, the host crashed) may have left its app
        half-installed: a first install's group running with no release recorded,
        an upgrade's group running a release folder that is then deleted. Each such
        app is put back as the database records it, on a thread (stopping an app
        may take its stop_timeout), its label held busy until done.
        """
        self.uploads.clear()

        def end_interrupted(session: Session) -> list[str]:
            jobs = session.scalars(select(Job).where(Job.state == "running")).all()
            for job in jobs:
                if job.kind in ("install", "upgrade") and _recorded_since(session, job):
                    # Cut off after its switch: the release it installed is the app's.
                    job.state = "succeeded"
                else:
                    job.state = "failed"
                    job.error = (
                        "interrupted: the orchestrator restarted during this job; the app "
                        "was put back as it was recorded before it"
                    )
                job.updated_at = utcnow()
            return sorted({job.label for job in jobs})

        labels = self.write(end_interrupted)
        if labels:
            log.warning("jobs cut off by a restart: putting back %s", ", ".join(labels))
        for label in labels:
            self.claim(label, 0)
        self.start_thread(lambda: self._put_back(labels), "recover")

    def _put_back(self, labels: list[str]) -> None:
        from orchestrator.apps.recovery import put_back

        for label in labels:
            try:
                put_back(self, label)
            except Exception:
                log.exception("putting %s back after a restart failed", label)
            finally:
                self.release_claim(label)
        try:
            self._drop_leftovers()
        except Exception:
            log.exception("removing leftover release folders failed")

    def _drop_leftovers(self) -> None:
        """Release folders that no job is making: leftovers of earlier crashes."""
        from orchestrator.apps.recovery import drop_unrecorded

        root = apps_root(self.locations)
        if not root.is_dir():
            return
        with self.context.read() as session:
            recorded = {(r.label, r.number) for r in session.scalars(select(Release)).all()}
            # An app removed without --purge keeps its data and logs: not a leftover.
            labels = set(session.scalars(select(App.label)).all())
        for app_dir in root.iterdir():
            label = app_dir.name
            if label not in labels:
                continue
            with self._busy_lock:
                if label in self._busy:
                    continue
                # Claimed while dropping, so that no job starts on it meanwhile.
                self._busy[label] = 0
            try:
                drop_unrecorded(
                    app_files(self.locations, label),
                    {number for (owner, number) in recorded if owner == label},
                )
            finally:
                self.release_claim(label)

    # -- jobs ---------------------------------------------------------------------------------

    def claim(self, label: str, job_id: int) -> None:
        with self._busy_lock:
            if label in self._busy:
                running = self._busy[label]
                what = f"job {running}" if running else "another operation"
                raise Conflict(
                    f"app {label} is busy ({what}): try again when it is done", field="label"
                )
            self._busy[label] = job_id

    @contextmanager
    def exclusive(self, label: str) -> Iterator[None]:
        """Hold the label for one quick operation (refused while a job runs on it)."""
        self.claim(label, 0)
        try:
            yield
        finally:
            self.release_claim(label)

    def release_claim(self, label: str) -> None:
        with self._busy_lock:
            self._busy.pop(label, None)

    def new_job(self, kind: str, label: str, steps: tuple[str, ...]) -> int:
        def create(session: Session) -> int:
            job = Job(
                kind=kind,
                label=label,
                state="running",
                steps=[
                    {"name": s, "state": "pending", "started_at": None, "ended_at": None}
                    for s in steps
                ],
                log_tail="",
            )
            session.add(job)
            session.flush()
            return job.id

        return self.write(create)

    def update_job(self, job_id: int, change: Callable[[Job], None]) -> None:
        def apply(session: Session) -> None:
            job = session.get(Job, job_id)
            if job is not None:
                change(job)
                job.updated_at = utcnow()

        self.write(apply)

    def get_job(self, job_id: int) -> dict[str, Any]:
        with self.context.read() as session:
            job = session.get(Job, job_id) if isinstance(job_id, int) else None
            if job is None:
                raise NotFound(f"no job {job_id!r}", field="id")
            app = self.app_dict(job.label) if job.state == "succeeded" else None
            return job_dict(job, app)

    def start_thread(self, target: Callable[[], None], name: str) -> None:
        threading.Thread(target=target, name=name, daemon=True).start()

    def install(self, upload: str, label: str | None, env: dict[str, str]) -> dict[str, Any]:
        """Check the uploaded app's config and label, then run its install job."""
        from orchestrator.apps.install import Installer
        from orchestrator.apps.release_config import check_label, peek_config

        if not isinstance(env, dict):
            raise InvalidArgument("env must be an object of strings", field="env")
        for key, value in env.items():
            _check_env(key, value)
        archive = self.uploads.finish(upload)
        try:
            self.user()  # refused before a job starts (the job checks again)
            config = peek_config(
                archive,
                int(self.settings["apps.max_release_bytes"]),
                int(self.settings["apps.max_release_files"]),
            )
            label = check_label(label if label is not None else config["id"])
            with self.context.read() as session:
                existing = session.scalars(select(App).where(App.label == label)).first()
                if existing is not None and existing.app_id != config["id"]:
                    raise Conflict(
                        f"label {label} is already app {existing.app_id}, not {config['id']}: "
                        "choose another --label, or remove it first",
                        field="label",
                    )
            self.claim(label, 0)
        except BaseException:
            archive.unlink(missing_ok=True)
            raise
        try:
            job_id = self.new_job("upgrade" if existing else "install", label, STEPS)
        except BaseException:
            self.release_claim(label)
            archive.unlink(missing_ok=True)
            raise
        with self._busy_lock:
            self._busy[label] = job_id
        installer = Installer(self, job_id, label, archive, env)
        self.start_thread(installer.run, f"install-{label}")
        return self.get_job(job_id)

    def rollback(self, label: str) -> dict[str, Any]:
        from orchestrator.apps.install import Rollback

        with self.context.read() as session:
            app = self.app_row(session, label)
            target = self.release_row(session, label, app.previous_release)
        if target is None:
            raise Conflict(f"app {label} has no previous release to roll back to", field="label")
        self.claim(label, 0)
        try:
            job_id = self.new_job("rollback", label, ROLLBACK_STEPS)
        except BaseException:
            self.release_claim(label)
            raise
        with self._busy_lock:
            self._busy[label] = job_id
        self.start_thread(Rollback(self, job_id, label).run, f"rollback-{label}")
        return self.get_job(job_id)

    # -- state ---------------------------------------------------------------------------------

    def app_row(self, session: Session, label: str) -> App:
        app = session.scalars(select(App).where(App.label == label)).first()
        if app is None:
            raise NotFound(f"no app {label!r} (nua apps lists them)", field="label")
        return app

    def release_row(self, session: Session, label: str, number: int | None) -> Release | None:
        if number is None:
            return None
        return session.scalars(
            select(Release).where(Release.label == label, Release.number == number)
        ).first()

    def app_dict(
        self, label: str, infos: dict[str, dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        with self.context.read() as session:
            app = self.app_row(session, label)
            rel = self.release_row(session, label, app.current_release)
            return self._describe(app, rel, infos)

    def list_apps(self) -> list[dict[str, Any]]:
        with self.context.read() as session:
            rows = session.scalars(select(App).order_by(App.label)).all()
            releases = {(r.label, r.number): r for r in session.scalars(select(Release)).all()}
        infos = self._infos()
        return [
            self._describe(app, releases.get((app.label, app.current_release)), infos)
            for app in rows
        ]

    def _infos(self) -> dict[str, dict[str, Any]]:
        try:
            return {
                f"{i['group']}:{i['name']}": i
                for i in self.proxy(10).supervisor.getAllProcessInfo()
            }
        except Exception:  # supervisord busy or gone: states are unknown
            log.warning("could not read program states from supervisord", exc_info=True)
            return {}

    def _describe(
        self, app: App, rel: Release | None, infos: dict[str, dict[str, Any]] | None
    ) -> dict[str, Any]:
        files = app_files(self.locations, app.label)
        if infos is None:
            infos = self._infos()
        info = infos.get(files.process)
        state = info["statename"].lower() if info else "unknown"
        running = bool(info and info["statename"] == "RUNNING")
        config = rel.config if rel is not None else {}
        if running:
            problem = health.check(config.get("health"), app.ports, timeout=1.0)
            healthy = "healthy" if problem is None else "unhealthy"
        else:
            healthy = "unknown"
        uptime = None
        if running and info:
            uptime = max(0.0, float(info["now"]) - float(info["start"]))
        return {
            "label": app.label,
            "app_id": app.app_id,
            "version": rel.version if rel is not None else None,
            "title": config.get("title") or app.app_id,
            "state": state,
            "desired": app.desired,
            "pid": info["pid"] if running and info else None,
            "ports": app.ports,
            "health": healthy,
            "uptime": uptime,
            "release": app.current_release,
            "previous_release": app.previous_release,
            "env": app.env,
            "created_at": _iso(app.created_at),
            "updated_at": _iso(app.updated_at),
        }

    # -- writing an app's files -------------------------------------------------------------------

    def write_files(
        self,
        files: AppFiles,
        config: dict[str, Any],
        number: int,
        ports: dict[str, int],
        env: dict[str, str],
        autostart: bool,
    ) -> None:
        try:
            user = self.user()
        except Unavailable:
            if autostart:
                raise
            # Stopping must work whatever the setting; the launcher refuses root anyway.
            user = None
        program.write_app(files, config, number, ports, env, self.settings, user, autostart)

    # -- simple operations ---------------------------------------------------------

    def set_desired(self, label: str, desired: str) -> None:
        def change(session: Session) -> None:
            app = self.app_row(session, label)
            app.desired = desired
            app.updated_at = utcnow()

        self.write(change)

    def _current(self, label: str) -> tuple[App, Release]:
        with self.context.read() as session:
            app = self.app_row(session, label)
            rel = self.release_row(session, label, app.current_release)
        if rel is None:
            raise Unavailable(f"app {label} has no release to run", field="label")
        return app, rel

    def start(self, label: str) -> dict[str, Any]:
        with self.exclusive(label):
            return self._start(label)

    def _start(self, label: str) -> dict[str, Any]:
        app, rel = self._current(label)
        files = app_files(self.locations, label)
        self.write_files(files, rel.config, rel.number, app.ports, app.env, autostart=True)
        proxy = self.proxy(120)
        supervision.apply(proxy, files)
        problem = supervision.start(proxy, files, timeout=30)
        self.set_desired(label, "running")
        if problem:
            raise Unavailable(
                f"app {label} did not start: {problem}; its log ends with: "
                f"{log_tail(files.err_log, 5) or log_tail(files.out_log, 5)}",
                field="label",
            )
        return self.app_dict(label)

    def stop(self, label: str) -> dict[str, Any]:
        with self.exclusive(label):
            return self._stop(label)

    def _stop(self, label: str) -> dict[str, Any]:
        app, rel = self._current(label)
        files = app_files(self.locations, label)
        self.write_files(files, rel.config, rel.number, app.ports, app.env, autostart=False)
        proxy = self.proxy(120)
        supervision.stop(proxy, files)
        supervision.apply(proxy, files)
        self.set_desired(label, "stopped")
        return self.app_dict(label)

    def restart(self, label: str) -> dict[str, Any]:
        with self.exclusive(label):
            self._stop(label)
            return self._start(label)

    def logs(self, label: str, stderr: bool, lines: int, offset: int | None) -> dict[str, Any]:
        with self.context.read() as session:
            self.app_row(session, label)
        if not isinstance(lines, int) or not 0 < lines <= 10000:
            raise InvalidArgument("lines must be 1..10000", field="lines")
        files = app_files(self.locations, label)
        path = files.err_log if stderr else files.out_log
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return {"text": "", "offset": 0}
        if offset is None:
            return {"text": log_tail(path, lines, max_bytes=1 << 20), "offset": size}
        if not isinstance(offset, int) or offset < 0:
            raise InvalidArgument("offset must be a byte offset", field="offset")
        if offset > size:  # the log was rotated
            offset = 0
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read(1 << 20)
        return {"text": data.decode("utf-8", errors="replace"), "offset": offset + len(data)}

    def set_env(
        self, label: str, set_: dict[str, str] | None, unset: list[str] | None
    ) -> dict[str, Any]:
        set_ = set_ or {}
        unset = unset or []
        for key, value in set_.items():
            _check_env(key, value)

        def change(session: Session) -> dict[str, str]:
            app = self.app_row(session, label)
            env = dict(app.env)
            env.update(set_)
            for key in unset:
                env.pop(key, None)
            if env != app.env:
                app.env = env
                app.updated_at = utcnow()
            return env

        if not set_ and not unset:
            with self.context.read() as session:
                return {"label": label, "env": self.app_row(session, label).env}
        return {"label": label, "env": self.write(change)}

    def remove(self, label: str, purge: bool) -> dict[str, Any]:
        with self.exclusive(label):
            return self._remove(label, purge)

    def _remove(self, label: str, purge: bool) -> dict[str, Any]:
        from orchestrator.apps.recovery import forget_files

        with self.context.read() as session:
            self.app_row(session, label)
        files = app_files(self.locations, label)
        program.remove_app(files)
        proxy = self.proxy(120)
        supervision.stop(proxy, files)
        supervision.apply(proxy, files)

        def forget(session: Session) -> None:
            session.delete(self.app_row(session, label))

        self.write(forget)
        kept = None
        if purge:
            forget_files(files, purge=True)
        elif files.data.is_dir() and not files.data.is_symlink():
            # Its data and its logs stay, for a later install of the label or a look.
            shutil.rmtree(files.releases, ignore_errors=True)
            kept = str(files.data)
        else:
            shutil.rmtree(files.root, ignore_errors=True)
        return {"label": label, "removed": True, "data_kept": kept}


def _check_env(key: Any, value: Any) -> None:
    import re

    if not isinstance(key, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
        raise InvalidArgument(f"{key!r} is not an environment variable name", field="env")
    if key.startswith("NUA_"):
        raise InvalidArgument(f"{key}: NUA_* variables are set by the orchestrator", field="env")
    if not isinstance(value, str):
        raise InvalidArgument(f"{key}: the value must be a string", field="env")


def _recorded_since(session: Session, job: Job) -> bool:
    """Whether a release of the job's app was recorded after the job began (by the job)."""
    app = session.scalars(select(App).where(App.label == job.label)).first()
    if app is None or app.current_release is None:
        return False
    rel = session.scalars(
        select(Release).where(Release.label == job.label, Release.number == app.current_release)
    ).first()
    return rel is not None and rel.created_at >= job.created_at
