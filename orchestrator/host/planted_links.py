"""Refuse symbolic links planted in the orchestrator's own locations.

Everything the orchestrator opens, writes or chmods lives in its locations:
the database and its -wal and -shm, the rendered supervisord.conf, the pid
file, the run manifest, the lock, the sockets, the logs and the backups. A
link planted at any of those paths would send a later write (or a chmod, by
a process that may run as root) to the link's target. Rather than trusting
that every open in this code and in supervisord and SQLite uses O_NOFOLLOW,
the commands that write scan the locations first, follow nothing, and refuse
to go on while a link is there.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import LocationError
from orchestrator.host.locations import Locations


@dataclass(frozen=True)
class PlantedLink:
    """A symbolic link found where the orchestrator keeps its own files."""

    path: Path
    target: str


def find_planted_links(locations: Locations) -> list[PlantedLink]:
    """Every symbolic link in the locations, sorted by path; follows none of them.

    The home (when there is one) and each location are checked themselves,
    and every folder the locations hold is walked. The rest of the home is
    not: only its locations are the orchestrator's. Entries that vanish
    during the walk (a log rotated by a running supervisord) are skipped.
    """
    found: list[PlantedLink] = []
    if locations.home is not None:
        _check_link(locations.home, found)
        if found:
            return found  # every location is reached through it: look no further
    for root in locations.directories().values():
        if _check_link(root, found):
            _walk(root, found)
    return sorted(set(found), key=lambda link: link.path)


def refuse_planted_links(locations: Locations, action: str = "start") -> None:
    """Raise a LocationError naming the first link in the locations, if there is one."""
    links = find_planted_links(locations)
    if not links:
        return
    first = links[0]
    more = len(links) - 1
    also = f" ({more} more link{'s' if more > 1 else ''} in the locations)" if more else ""
    raise LocationError(
        f"refusing to {action}: {first.path} is a symbolic link (to {first.target}); "
        f"nua-orchestrator follows no links in its locations: remove it{also}"
    )


def _check_link(path: Path, found: list[PlantedLink]) -> bool:
    """Record `path` if it is a link; True when it is a real folder worth walking."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise LocationError(f"{path} cannot be checked: {exc.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        found.append(PlantedLink(path, _target(path)))
        return False
    return stat.S_ISDIR(st.st_mode)


def _walk(root: Path, found: list[PlantedLink]) -> None:
    """Every folder under `root`, each opened with O_NOFOLLOW: no link is ever entered."""
    pending = [root]
    while pending:
        folder = pending.pop()
        try:
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            continue  # removed since it was listed
        except OSError as exc:
            # ELOOP or ENOTDIR: replaced by a link or a file since it was listed.
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                _check_link(folder, found)
                continue
            raise LocationError(
                f"{folder} cannot be read ({exc.strerror}), so it cannot be checked for "
                "planted links: fix its permissions"
            ) from None
        try:
            with os.scandir(fd) as entries:
                for entry in entries:
                    path = folder / entry.name
                    with contextlib.suppress(FileNotFoundError):
                        if entry.is_symlink():
                            found.append(PlantedLink(path, _target(path)))
                        elif entry.is_dir(follow_symlinks=False):
                            pending.append(path)
        finally:
            os.close(fd)


def _target(link: Path) -> str:
    """Where `link` points, read without following it."""
    try:
        return str(link.readlink())
    except OSError:
        return "?"
