"""At start: every app's supervisord section and launch spec, written from the database.

So that a restarted or restored orchestrator brings its apps back as they
were: running ones start with supervisord, stopped ones stay stopped, and
files of apps the database no longer has are removed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.apps import program
from orchestrator.apps.layout import app_files, conf_dir
from orchestrator.apps.run_as import RootUserRefused, app_user
from orchestrator.db.engine import make_engine
from orchestrator.db.models import App, Release
from orchestrator.host.locations import Locations, ensure_private_dir

log = logging.getLogger("nua.apps")


def write_all(locations: Locations, url: str, settings: Mapping[str, Any]) -> int:
    """Write the files of every app that has a release; return how many."""
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            apps = session.scalars(select(App)).all()
            releases = {(r.label, r.number): r for r in session.scalars(select(Release)).all()}
    finally:
        engine.dispose()
    folder = conf_dir(locations)
    ensure_private_dir(folder, "apps config")
    try:
        user = app_user(settings.get("apps.user"))
    except RootUserRefused as exc:
        # The apps are written all the same (stopped ones stay stopped): their
        # launcher refuses to run them as root, and says why in their log.
        log.error("%s", exc)
        user = None
    written = set()
    for app in apps:
        rel = releases.get((app.label, app.current_release))
        if rel is None:
            continue
        files = app_files(locations, app.label)
        program.write_app(
            files,
            rel.config,
            rel.number,
            app.ports,
            app.env,
            settings,
            user,
            autostart=app.desired == "running",
        )
        written.update({files.conf.name, files.spec.name})
    for entry in folder.iterdir():
        if entry.suffix in (".conf", ".json") and entry.name not in written:
            entry.unlink()
    return len(apps)
