"""Putting an app back as the database records it: after a failed job, and after a crash.

The database is the truth about apps: a job records a release only at its
last step (switch). Until then, whatever the job made (a release folder, the
app's section and launch spec, its supervisord group running the new
release, a new data folder, logs of a first install) is undone here, both
when a step fails and when the worker restarts with the job cut off (killed,
or the host crashed): the recorded release is configured and running again
if it should be, and an app with no recorded release leaves nothing but a
data folder kept from an earlier `nua app remove`.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from typing import TYPE_CHECKING

from sqlalchemy import select

from orchestrator.apps import program, supervision
from orchestrator.apps.layout import AppFiles, app_files
from orchestrator.db.models import App, Release

if TYPE_CHECKING:
    from orchestrator.apps.service import AppsService

log = logging.getLogger("nua.apps")


def put_back(service: AppsService, label: str) -> None:
    """Make the app's supervisord group, files and folders what the database records."""
    files = app_files(service.locations, label)
    with service.context.read() as session:
        app = session.scalars(select(App).where(App.label == label)).first()
        rel = service.release_row(session, label, app.current_release) if app else None
        recorded = {
            r.number for r in session.scalars(select(Release).where(Release.label == label))
        }
        running = app is not None and app.desired == "running"
        ports, env = (dict(app.ports), dict(app.env)) if app else ({}, {})
        config = dict(rel.config) if rel else None
        number = rel.number if rel else None
    try:
        proxy = service.proxy(120)
        if config is None or number is None:
            program.remove_app(files)
            supervision.stop(proxy, files)
            supervision.apply(proxy, files)
        else:
            service.write_files(files, config, number, ports, env, running)
            supervision.apply(proxy, files)
            if running:
                problem = supervision.start(proxy, files, timeout=30)
                if problem:
                    log.warning("%s: release %d did not start again: %s", label, number, problem)
            else:
                supervision.stop(proxy, files)
    except Exception:
        # The folders are still tidied: nothing unrecorded may stay.
        log.exception("putting %s back as recorded failed", label)
    drop_unrecorded(files, recorded)
    if files.data_marker.exists():
        # The data folder was made by the cut-off job: it goes, unless the recorded
        # release (recorded just before the cut) is the one that uses it.
        if not (config and config.get("data")):
            shutil.rmtree(files.data, ignore_errors=True)
        files.data_marker.unlink(missing_ok=True)
    if config is None:
        # A data folder kept from an earlier `nua app remove` stays.
        forget_files(files, purge=False)


def drop_unrecorded(files: AppFiles, recorded: set[int]) -> None:
    """Remove release folders the database does not know (and unpacks cut off), and the
    build logs of releases it does not know."""
    prefix = f"{files.label}.build-"
    for path in files.log_files():
        number = path.name.removeprefix(prefix).removesuffix(".log")
        if path.name.startswith(prefix) and number.isdigit() and int(number) not in recorded:
            path.unlink(missing_ok=True)
    if not files.releases.is_dir() or files.releases.is_symlink():
        return
    for entry in files.releases.iterdir():
        if not (entry.name.isdigit() and int(entry.name) in recorded):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def forget_files(files: AppFiles, purge: bool) -> None:
    """Nothing of the app but a data folder (kept unless `purge`): no section, release or log."""
    program.remove_app(files)
    for path in files.log_files():
        path.unlink(missing_ok=True)
    if purge:
        shutil.rmtree(files.root, ignore_errors=True)
        return
    shutil.rmtree(files.releases, ignore_errors=True)
    files.data_marker.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        files.root.rmdir()
