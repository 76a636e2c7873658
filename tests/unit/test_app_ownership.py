"""Giving an app's files to its user as root: the app's links are never followed."""

from __future__ import annotations

import os
import pwd
from pathlib import Path
from types import SimpleNamespace

import pytest

from orchestrator.apps import ownership
from orchestrator.apps.install import Installer, StepFailed
from orchestrator.host.locations import resolve

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")
USER = "nobody"


@pytest.fixture
def owner() -> ownership.Owner:
    entry = pwd.getpwnam(USER)
    return ownership.Owner(entry.pw_uid, entry.pw_gid)


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """What an app would like to own: a folder and a file of root's outside its tree."""
    folder = tmp_path / "etc"
    folder.mkdir()
    (folder / "shadow").write_text("root's")
    return folder


def _root_owned(victim: Path) -> bool:
    return all(p.stat().st_uid == 0 for p in (victim, *victim.iterdir()))


def _installer(short_home: Path) -> Installer:
    service = SimpleNamespace(locations=resolve(short_home, environ={}), settings={})
    installer = Installer(service, 1, "blog", Path(os.devnull), {})  # type: ignore[arg-type]
    installer.files.root.mkdir(parents=True)
    return installer


def test_planted_symlinks_inside_data_are_not_followed_on_upgrade(
    short_home: Path, victim: Path, owner: ownership.Owner
) -> None:
    installer = _installer(short_home)
    data = installer.files.data
    data.mkdir()
    (data / "kept.txt").write_text("the app's")
    (data / "shadow").symlink_to(victim / "shadow")
    (data / "etc").symlink_to(victim)
    installer._make_data(USER)
    assert not installer.files.data_marker.exists(), "the data folder was there before"
    assert _root_owned(victim), "a link planted in data was followed"
    # Nothing inside data is changed either: it is the app's.
    assert (data / "kept.txt").stat().st_uid == 0


def test_a_data_folder_swapped_for_a_link_is_refused(short_home: Path, victim: Path) -> None:
    installer = _installer(short_home)
    installer.files.data.symlink_to(victim)
    with pytest.raises(StepFailed, match="is a symbolic link, not the folder"):
        installer._make_data(USER)
    assert _root_owned(victim)


def test_a_new_data_folder_is_given_to_the_apps_user(
    short_home: Path, owner: ownership.Owner
) -> None:
    installer = _installer(short_home)
    installer._make_data(USER)
    st = installer.files.data.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (owner.uid, owner.gid, 0o700)
    assert installer.files.data_marker.exists(), "made by this job: undone if it fails"


def test_a_fresh_release_is_given_whole_without_following_its_links(
    tmp_path: Path, victim: Path, owner: ownership.Owner
) -> None:
    release = tmp_path / "release"
    (release / "static").mkdir(parents=True)
    (release / "static" / "site.css").write_text("body{}")
    (release / "up").symlink_to(victim)
    (release / "static" / "shadow").symlink_to(victim / "shadow")
    ownership.give_tree(release, owner)
    for path in (release, release / "static", release / "static" / "site.css"):
        assert path.stat().st_uid == owner.uid, path
    assert (release / "static" / "shadow").lstat().st_uid == owner.uid
    assert _root_owned(victim)
    swapped = tmp_path / "swapped"
    swapped.symlink_to(victim)
    with pytest.raises(ownership.OwnershipError, match="symbolic link"):
        ownership.give_tree(swapped, owner)
    assert _root_owned(victim)


def test_the_apps_folders_are_taken_back_from_the_apps_user(
    tmp_path: Path, owner: ownership.Owner
) -> None:
    """Earlier releases gave <apps>/LABEL and releases/ to the app, which could swap them."""
    folder = tmp_path / "releases"
    folder.mkdir(mode=0o700)
    os.chown(folder, owner.uid, owner.gid)
    ownership.keep_folder(folder, 0o711)
    st = folder.stat()
    assert (st.st_uid, st.st_mode & 0o777) == (0, 0o711)
    link = tmp_path / "link"
    link.symlink_to(folder)
    with pytest.raises(ownership.OwnershipError):
        ownership.keep_folder(link, 0o711)
