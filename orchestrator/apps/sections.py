"""At start: every app's supervisord section and launch spec, written from the database.

So that a restarted or restored orchestrator brings its apps back as they
were: running ones start with supervisord, stopped ones stay stopped, and
files of apps the database no longer has are removed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.apps import program
from orchestrator.apps.layout import app_files, conf_dir
from orchestrator.apps.run_as import RootUserRefused, app_user
from orchestrator.db.readonly import open_readonly
from orchestrator.db.url import sqlite_path
from orchestrator.host.locations import Locations, ensure_private_dir

log = logging.getLogger("nua.apps")


def write_all(locations: Locations, url: str, settings: Mapping[str, Any]) -> int:
    """Write the files of every app that has a release; return how many."""
    apps = _read_apps(url)
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
        if app.config is None:
            continue
        files = app_files(locations, app.label)
        program.write_app(
            files,
            app.config,
            app.release,
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


@dataclass(frozen=True)
class _AppRow:
    """What an app's files are written from: the app and its current release."""

    label: str
    desired: str
    release: int | None
    ports: Any
    env: Any
    config: Any  # the current release's config; None when it has none


def _read_apps(url: str) -> list[_AppRow]:
    """Every app with its current release's config, as the database records them."""
    path = sqlite_path(url)
    if path is not None:
        return _read_sqlite(path)
    return _read_with_sqlalchemy(url)


def _read_sqlite(path: Path) -> list[_AppRow]:
    # With sqlite3, not SQLAlchemy: start would import SQLAlchemy for this alone.
    # The JSON columns are db.types.JsonText: JSON text.
    with closing(open_readonly(path)) as conn:
        rows = conn.execute(
            "SELECT a.label, a.desired, a.current_release, a.ports, a.env, r.config "
            "FROM apps a LEFT JOIN releases r "
            "ON r.label = a.label AND r.number = a.current_release ORDER BY a.label"
        ).fetchall()
    return [
        _AppRow(label, desired, release, json.loads(ports), json.loads(env), _json(config))
        for label, desired, release, ports, env, config in rows
    ]


def _json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _read_with_sqlalchemy(url: str) -> list[_AppRow]:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from orchestrator.db.engine import make_engine
    from orchestrator.db.models import App, Release

    engine = make_engine(url)
    try:
        with Session(engine) as session:
            apps = session.scalars(select(App).order_by(App.label)).all()
            releases = {(r.label, r.number): r for r in session.scalars(select(Release)).all()}
            return [
                _AppRow(
                    app.label,
                    app.desired,
                    app.current_release,
                    app.ports,
                    app.env,
                    rel.config if (rel := releases.get((app.label, app.current_release))) else None,
                )
                for app in apps
            ]
    finally:
        engine.dispose()
