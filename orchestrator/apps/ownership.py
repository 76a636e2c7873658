"""Giving an app's files to its user (as root), without ever following the app's links.

An app's data folder is the app's: its process (the apps user) may put any
link in it, or swap a folder for a link at any time. So the orchestrator
gives the app only what it creates itself, through file descriptors opened
with O_NOFOLLOW: the data folder itself when it makes it (never what is
inside), and a release folder it has just unpacked, walked by descriptor
(`os.fwalk`, links not followed), while no process of the app can write in
it yet. The folders above (`<apps>/LABEL`, `releases`) stay the
orchestrator's, so that the app cannot swap them either.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import NuaError

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class OwnershipError(NuaError):
    """A folder of the app is not what the orchestrator made (a link, not a folder)."""


@dataclass(frozen=True)
class Owner:
    uid: int
    gid: int


def owner_of(user: str | None) -> Owner | None:
    """The apps user's ids when files must be given to it (as root, with a user), else None."""
    if not user or os.geteuid() != 0:
        return None
    entry = pwd.getpwnam(user)
    return Owner(entry.pw_uid, entry.pw_gid)


def _open_folder(path: Path) -> int:
    try:
        return os.open(path, DIR_FLAGS)
    except OSError as exc:
        if path.is_symlink():
            raise OwnershipError(
                f"{path} is a symbolic link, not the folder the orchestrator made: "
                "remove it (the app's processes may have planted it)"
            ) from None
        raise OwnershipError(f"cannot open {path}: {exc.strerror or exc}") from None


def make_folder(path: Path, owner: Owner | None, mode: int = 0o700) -> bool:
    """Create the folder `path` for `owner` (itself only); False if it was already there.

    An existing folder is left alone (the app's files are the app's); a link
    in its place is refused.
    """
    try:
        path.mkdir(mode)
        created = True
    except FileExistsError:
        created = False
    fd = _open_folder(path)
    try:
        if created and owner is not None:
            os.fchown(fd, owner.uid, owner.gid)
            os.fchmod(fd, mode)
    finally:
        os.close(fd)
    return created


def keep_folder(path: Path, mode: int) -> None:
    """Create `path` as the orchestrator's own folder, or take an existing one back.

    Earlier releases gave `<apps>/LABEL` and `releases` to the apps user, who
    could then swap their entries; they are made the orchestrator's again.
    """
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode)
    fd = _open_folder(path)
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid():
            os.fchown(fd, os.geteuid(), os.getegid())
        if stat.S_IMODE(st.st_mode) != mode:
            os.fchmod(fd, mode)
    finally:
        os.close(fd)


def give_tree(path: Path, owner: Owner | None) -> None:
    """Give a folder the orchestrator just made, and all in it, to `owner`; links not followed.

    Every folder is opened by descriptor, relative to its parent, with
    O_NOFOLLOW (what `os.fwalk` does without follow_symlinks), and entries are
    changed relative to that descriptor without following links: nothing
    outside `path` can be reached, even if its folders were swapped for links.
    """
    if owner is None:
        return
    fd = _open_folder(path)
    try:
        for _root, _dirs, names, root_fd in os.fwalk(".", dir_fd=fd, follow_symlinks=False):
            os.fchown(root_fd, owner.uid, owner.gid)
            for name in names:
                os.chown(name, owner.uid, owner.gid, dir_fd=root_fd, follow_symlinks=False)
    finally:
        os.close(fd)
