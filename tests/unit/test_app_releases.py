"""Which releases an install keeps: never the current or the previous one, whatever their number."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from orchestrator.apps.install import Installer, releases_beyond
from orchestrator.db.models import App, Base, Release
from orchestrator.host.locations import resolve


class _Service:
    """What the installer's pruning uses of the apps service: a database and settings."""

    def __init__(self, home: Path, keep: int) -> None:
        self.locations = resolve(home, environ={})
        self.settings = {"apps.keep_releases": keep}
        self.engine = create_engine(f"sqlite:///{home / 'apps.db'}")
        Base.metadata.create_all(self.engine)
        self.context = self

    @contextmanager
    def read(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    def write(self, job: Callable[[Session], Any]) -> Any:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            return job(session)


@pytest.fixture
def service(short_home: Path) -> Iterator[_Service]:
    service = _Service(short_home, keep=3)
    yield service
    service.engine.dispose()


def _installed(service: _Service, numbers: list[int], current: int, previous: int) -> Installer:
    """The app `blog` with these releases (folders too), as after a switch."""
    installer = Installer(service, 1, "blog", Path(os.devnull), {})  # type: ignore[arg-type]

    def add(session: Session) -> None:
        session.add(
            App(
                label="blog",
                app_id="blog",
                current_release=current,
                previous_release=previous,
                ports={},
                env={},
            )
        )
        session.flush()
        for number in numbers:
            folder = installer.files.release(number)
            folder.mkdir(parents=True)
            session.add(
                Release(
                    label="blog", number=number, version=f"{number}.0", config={}, path=str(folder)
                )
            )

    service.write(add)
    return installer


def _kept(service: _Service, installer: Installer) -> tuple[list[int], list[str]]:
    with service.read() as session:
        rows = session.scalars(select(Release.number).order_by(Release.number)).all()
    return list(rows), sorted(p.name for p in installer.files.releases.iterdir())


def test_after_rollbacks_the_previous_release_survives_pruning(service: _Service) -> None:
    """v1, v2, rollback, v3, rollback, v4: the previous release is 1, the oldest."""
    installer = _installed(service, [1, 2, 3, 4], current=4, previous=1)
    installer.files.logs.mkdir(parents=True)
    for number in (1, 2, 3, 4):
        installer.files.build_log(number).write_text("built")
    installer._prune()
    assert _kept(service, installer) == ([1, 3, 4], ["1", "3", "4"])
    logs = sorted(p.name for p in installer.files.logs.iterdir())
    assert logs == ["blog.build-1.log", "blog.build-3.log", "blog.build-4.log"]


def test_pruning_keeps_the_newest_beyond_current_and_previous(service: _Service) -> None:
    installer = _installed(service, [1, 2, 3, 4, 5], current=5, previous=4)
    installer._prune()
    assert _kept(service, installer) == ([3, 4, 5], ["3", "4", "5"])


class _Rel:
    def __init__(self, number: int) -> None:
        self.number = number


@pytest.mark.parametrize(
    ("numbers", "current", "previous", "keep", "gone"),
    [
        ([4, 3, 2, 1], 4, 1, 3, [2]),
        ([4, 3, 2, 1], 4, 1, 2, [3, 2]),
        ([6, 5, 4, 3, 2, 1], 2, 6, 2, [5, 4, 3, 1]),
        ([2, 1], 2, None, 3, []),
        ([3, 2, 1], 3, None, 2, [1]),
    ],
)
def test_releases_beyond_keep(
    numbers: list[int], current: int, previous: int | None, keep: int, gone: list[int]
) -> None:
    rows = [_Rel(n) for n in numbers]
    beyond = releases_beyond(rows, current, previous, keep)  # type: ignore[arg-type]
    assert [r.number for r in beyond] == gone
