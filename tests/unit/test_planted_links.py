"""orchestrator/host/planted_links.py: find links in the locations, follow none of them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.errors import ExitCode, LocationError
from orchestrator.host.locations import Locations, resolve
from orchestrator.host.planted_links import (
    PlantedLink,
    find_planted_links,
    refuse_planted_links,
)


@pytest.fixture
def where(short_home: Path) -> Locations:
    """A home with its four locations and the files a run leaves in them."""
    locations = resolve(short_home, environ={})
    locations.ensure()
    for path in (
        locations.database,
        locations.lock_file,
        locations.supervisor_conf,
        locations.logs / "rpc.log",
    ):
        path.write_text("ours\n")
    (locations.data / "backups").mkdir(mode=0o700)
    (locations.data / "backups" / "nua-20240101T000000Z.db").write_text("a backup\n")
    return locations


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside the home, where links point."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "victim").write_text("not yours\n")
    return folder


def test_locations_without_links_pass(where: Locations) -> None:
    assert find_planted_links(where) == []
    refuse_planted_links(where)


def test_missing_locations_are_not_an_error(short_home: Path) -> None:
    """backup and restore may run before the first start created anything."""
    where = resolve(short_home / "never-started", environ={})
    assert find_planted_links(where) == []
    assert not (short_home / "never-started").exists()


@pytest.mark.parametrize(
    "relative",
    [
        "data/nua.db",
        "data/nua.db-wal",
        "run/supervisord.pid",
        "run/run.json",
        "log/sentinel.log",
        "data/backups/nua-20240102T000000Z.db",
        "config/anything",
    ],
)
def test_a_file_link_is_found_and_not_followed(
    where: Locations, outside: Path, relative: str
) -> None:
    link = where.home / relative  # type: ignore[operator]
    link.unlink(missing_ok=True)
    link.symlink_to(outside / "victim")
    before = (outside / "victim").stat()

    assert find_planted_links(where) == [PlantedLink(link, str(outside / "victim"))]
    with pytest.raises(LocationError) as info:
        refuse_planted_links(where)

    message = str(info.value)
    assert message == (
        f"refusing to start: {link} is a symbolic link (to {outside / 'victim'}); "
        "nua-orchestrator follows no links in its locations: remove it"
    )
    assert info.value.exit_code == ExitCode.ERROR
    after = (outside / "victim").stat()
    assert (after.st_mtime_ns, after.st_mode) == (before.st_mtime_ns, before.st_mode)
    assert (outside / "victim").read_text() == "not yours\n"


def test_a_dangling_link_is_found_and_its_target_not_created(
    where: Locations, outside: Path
) -> None:
    link = where.supervisor_conf
    link.unlink()
    link.symlink_to(outside / "nowhere")

    with pytest.raises(LocationError, match="is a symbolic link"):
        refuse_planted_links(where, "restore")

    assert not (outside / "nowhere").exists()


def test_the_action_is_named(where: Locations, outside: Path) -> None:
    (where.logs / "extra.log").symlink_to(outside / "victim")
    with pytest.raises(LocationError, match=r"^refusing to restore: "):
        refuse_planted_links(where, "restore")


def test_a_folder_link_is_reported_but_not_entered(where: Locations, outside: Path) -> None:
    """A link to a folder full of links is one finding: what it points to is not walked."""
    for i in range(3):
        (outside / f"inner{i}").symlink_to("/etc/passwd")
    backups = where.data / "backups"
    for entry in backups.iterdir():
        entry.unlink()
    backups.rmdir()
    backups.symlink_to(outside, target_is_directory=True)

    assert find_planted_links(where) == [PlantedLink(backups, str(outside))]


def test_a_location_that_is_a_link_is_reported(short_home: Path, outside: Path) -> None:
    where = resolve(short_home, environ={})
    where.logs.symlink_to(outside, target_is_directory=True)
    (outside / "loop").symlink_to(outside)

    assert find_planted_links(where) == [PlantedLink(where.logs, str(outside))]


def test_a_home_that_is_a_link_is_the_only_finding(tmp_path: Path, short_home: Path) -> None:
    # The real home is short: its socket paths must fit in 107 bytes (tmp_path is long).
    real = resolve(short_home / "realhome", environ={})
    real.ensure()
    (real.logs / "planted").symlink_to("/etc/passwd")
    home = tmp_path / "home"
    home.symlink_to(real.home, target_is_directory=True)  # type: ignore[arg-type]

    assert find_planted_links(resolve(home, environ={})) == [PlantedLink(home, str(real.home))]


def test_links_deep_in_the_locations_are_found_sorted_and_counted(
    where: Locations, outside: Path
) -> None:
    deep = where.data / "replaced" / "a" / "b"
    deep.mkdir(parents=True, mode=0o700)
    planted = [
        deep / "z-link",
        where.runtime / "rpc.sock",
        where.data / "backups" / "nua-20240103T000000Z.db",
    ]
    for link in planted:
        link.symlink_to(outside / "victim")

    found = find_planted_links(where)

    assert [link.path for link in found] == sorted(planted)
    with pytest.raises(LocationError) as info:
        refuse_planted_links(where)
    assert f"refusing to start: {sorted(planted)[0]} is a symbolic link" in str(info.value)
    assert str(info.value).endswith("remove it (2 more links in the locations)")


def test_a_link_in_the_home_outside_the_locations_is_not_ours(
    where: Locations, outside: Path
) -> None:
    """NUA_HOME is the user's folder: only its four locations belong to the orchestrator."""
    (where.home / "notes").symlink_to(outside / "victim")  # type: ignore[operator]
    assert find_planted_links(where) == []


def test_an_unreadable_folder_is_refused(where: Locations, monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder that cannot be listed cannot be vouched for (as root, EACCES is simulated)."""
    blocked = where.data / "backups"
    real_open = os.open

    def refusing_open(path: os.PathLike[str] | str, flags: int, *args: int, **kw: int) -> int:
        if Path(path) == blocked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(os, "open", refusing_open)
    with pytest.raises(LocationError, match=f"{blocked} cannot be read .Permission denied."):
        find_planted_links(where)


def test_a_folder_swapped_for_a_link_during_the_walk_is_reported(
    where: Locations, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Listed as a folder, a link by the time it is opened: O_NOFOLLOW catches it."""
    backups = where.data / "backups"
    real_open = os.open

    def swapping_open(path: os.PathLike[str] | str, flags: int, *args: int, **kw: int) -> int:
        if Path(path) == backups and not backups.is_symlink():
            for entry in backups.iterdir():
                entry.unlink()
            backups.rmdir()
            backups.symlink_to(outside, target_is_directory=True)
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(os, "open", swapping_open)
    assert find_planted_links(where) == [PlantedLink(backups, str(outside))]
    assert (outside / "victim").read_text() == "not yours\n"
