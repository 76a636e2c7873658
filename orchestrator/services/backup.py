"""Online backups of the SQLite database, their list and their retention.

A backup is taken with SQLite's backup API from a read-only connection while
the worker keeps serving (WAL lets a reader and the writer run side by side),
never by copying the file: a copy taken during a write is not a database. The
instance lock is not taken, so a backup never holds up start or stop.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import sqlite3
import stat
import time
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.db import readonly
from orchestrator.db.url import database_url, display_url, sqlite_path
from orchestrator.errors import NuaError
from orchestrator.host.locations import Locations, ensure_private_dir

STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
# nua-20240131T120000Z.db, and nua-20240131T120000Z-1.db for a second one that second.
BACKUP_NAME = re.compile(r"^nua-(\d{8}T\d{6}Z)(?:-(\d+))?\.db$")
KEEP_SETTING = "backup.keep"
SIDE_FILES = ("-journal", "-wal", "-shm")


class BackupError(NuaError):
    """A backup could not be taken or listed; nothing was left half-written."""


@dataclass(frozen=True)
class BackupResult:
    """A backup that passed its integrity check and is in place."""

    path: Path
    size: int
    revision: str | None
    seconds: float
    pruned: list[Path] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "size": self.size,
            "schema_revision": self.revision,
            "seconds": round(self.seconds, 3),
            "pruned": [str(p) for p in self.pruned],
        }


@dataclass(frozen=True)
class BackupInfo:
    """One file of the backups folder, as `backups` lists it."""

    path: Path
    size: int
    taken_at: datetime
    sequence: int
    revision: str | None
    problem: str | None = None

    @property
    def name(self) -> str:
        return self.path.name

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.path),
            "size": self.size,
            "time": self.taken_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "schema_revision": self.revision,
            "problem": self.problem,
        }


def backups_dir(locations: Locations) -> Path:
    """The default folder of backups, in the data location."""
    return locations.data / "backups"


def stamp(now: datetime | None = None) -> str:
    """A UTC timestamp for file names: 20240131T120000Z."""
    return (now or datetime.now(UTC)).astimezone(UTC).strftime(STAMP_FORMAT)


def sqlite_database(locations: Locations, action: str) -> Path:
    """The database file, or a refusal when the database is not SQLite."""
    url = database_url(locations)
    path = sqlite_path(url)
    if path is None:
        raise BackupError(
            f"{action} works on SQLite only, and the database is {display_url(url)}: "
            "use that database's own tools"
        )
    return path


def backup(
    locations: Locations,
    to: Path | None = None,
    now: datetime | None = None,
) -> BackupResult:
    """Back up the database to `to`, or to the backups folder (then apply retention)."""
    began = time.monotonic()
    source = sqlite_database(locations, "backup")
    _check_source(source)
    if to is None:
        folder = backups_dir(locations)
        ensure_private_dir(folder, "backups")
        final = free_name(folder, stamp(now))
    else:
        final = _check_destination(to)
        folder = final.parent
    tmp = folder / f".{final.name}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    os.close(fd)
    try:
        revision, keep = _copy(source, tmp, final, want_keep=to is None)
        fsync(tmp)
        _place(tmp, final)
        fsync(folder)
    finally:
        remove_with_side_files(tmp)
    pruned = prune(folder, keep) if to is None else []
    return BackupResult(
        path=final,
        size=final.stat().st_size,
        revision=revision,
        seconds=time.monotonic() - began,
        pruned=pruned,
    )


def _check_source(source: Path) -> None:
    try:
        st = source.lstat()
    except FileNotFoundError:
        raise BackupError(
            f"no database at {source}: nothing to back up; `nua-orchestrator start` creates it"
        ) from None
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISREG(st.st_mode):
        raise BackupError(f"database {source} is not a regular file; refusing to back it up")


def _check_destination(to: Path) -> Path:
    final = to.expanduser().absolute()
    if final.is_symlink():
        raise BackupError(f"--to {final} is a symlink; refusing to follow it: choose a new path")
    if final.exists():
        raise BackupError(
            f"--to {final} already exists; refusing to overwrite it: choose a new path"
        )
    if not final.parent.is_dir():
        raise BackupError(f"--to {final}: folder {final.parent} does not exist; create it first")
    return final


def free_name(folder: Path, when: str) -> Path:
    """`nua-<when>.db` in `folder`, or with a sequence above any taken that second.

    Backups sort by (time, sequence): a name freed by retention must not be
    reused, or the newest backup would sort as the oldest of its second.
    """
    taken = []
    with contextlib.suppress(FileNotFoundError):
        for entry in folder.iterdir():
            match = BACKUP_NAME.match(entry.name)
            if match and match.group(1) == when:
                taken.append(int(match.group(2) or 0))
    sequence = max(taken) + 1 if taken else 0
    candidate = folder / (f"nua-{when}-{sequence}.db" if sequence else f"nua-{when}.db")
    while os.path.lexists(candidate):
        sequence += 1
        candidate = folder / f"nua-{when}-{sequence}.db"
    return candidate


def _copy(source: Path, tmp: Path, final: Path, want_keep: bool) -> tuple[str | None, int]:
    """Copy `source` into `tmp` with the backup API; check it; return its revision and keep."""
    keep = 0
    try:
        with closing(readonly.open_readonly(source)) as src:
            if want_keep:
                keep = keep_setting(src)
            with closing(sqlite3.connect(tmp)) as dst:
                src.backup(dst)
                # A standalone file: no -wal or -shm needed to read or restore it.
                dst.execute("PRAGMA journal_mode=DELETE")
        with closing(readonly.open_readonly(tmp)) as check:
            errors = readonly.integrity_errors(check)
            revision = readonly.revision(check)
    except sqlite3.Error as exc:
        raise BackupError(
            f"backup of {source} failed: {exc}; nothing was written to {final}: "
            "run `nua-orchestrator db check`"
        ) from None
    if errors:
        raise BackupError(
            f"the backup of {source} failed its integrity check ({errors[0]}); it was "
            "discarded: run `nua-orchestrator db check`"
        )
    return revision, keep


def keep_setting(conn: sqlite3.Connection) -> int:
    """backup.keep: the stored value, the default when not stored yet, NUA_BACKUP_KEEP over both."""
    from orchestrator.settings.defaults import load_defaults
    from orchestrator.settings.effective import effective_settings

    defaults = load_defaults()
    stored: dict[str, Any] = {}
    with contextlib.suppress(sqlite3.Error):
        row = conn.execute("SELECT value FROM settings WHERE key = ?", (KEEP_SETTING,)).fetchone()
        if row is not None:
            stored[KEEP_SETTING] = json.loads(row[0])
    return int(effective_settings(stored, defaults).get(KEEP_SETTING, 10))


def _place(tmp: Path, final: Path) -> None:
    """Give `tmp` its final name without ever replacing a file that appeared meanwhile."""
    try:
        os.link(tmp, final)
    except FileExistsError:
        raise BackupError(f"{final} appeared during the backup; choose a new path") from None
    except OSError:
        # A file system without hard links: rename, after checking once more.
        if os.path.lexists(final):
            raise BackupError(f"{final} appeared during the backup; choose a new path") from None
        tmp.rename(final)


def fsync(path: Path) -> None:
    """Flush a file or a folder to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_with_side_files(path: Path) -> None:
    """Remove `path` and the journal, WAL and shared-memory files SQLite may leave beside it."""
    for suffix in ("", *SIDE_FILES):
        with contextlib.suppress(FileNotFoundError):
            path.with_name(path.name + suffix).unlink()


def _ours(folder: Path) -> list[tuple[Path, os.stat_result, datetime, int]]:
    """Regular files of `folder` named like our backups, newest first."""
    found = []
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return []
    for entry in entries:
        match = BACKUP_NAME.match(entry.name)
        if not match or not entry.is_file(follow_symlinks=False):
            continue
        taken = datetime.strptime(match.group(1), STAMP_FORMAT).replace(tzinfo=UTC)
        found.append(
            (Path(entry.path), entry.stat(follow_symlinks=False), taken, int(match.group(2) or 0))
        )
    found.sort(key=lambda item: (item[2], item[3]), reverse=True)
    return found


def prune(folder: Path, keep: int) -> list[Path]:
    """Delete our backups beyond the `keep` newest (0 keeps them all); return what went."""
    if keep <= 0:
        return []
    deleted = []
    for path, _st, _taken, _seq in _ours(folder)[keep:]:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            deleted.append(path)
    return deleted


def list_backups(locations: Locations) -> list[BackupInfo]:
    """The backups in the default folder, newest first, with their schema revision."""
    infos = []
    for path, st, taken, sequence in _ours(backups_dir(locations)):
        revision, problem = None, None
        try:
            with closing(readonly.open_readonly(path)) as conn:
                revision = readonly.revision(conn)
        except sqlite3.Error as exc:
            problem = f"cannot be read: {exc}"
        infos.append(
            BackupInfo(
                path=path,
                size=st.st_size,
                taken_at=taken,
                sequence=sequence,
                revision=revision,
                problem=problem,
            )
        )
    return infos


def newest_good_backup(locations: Locations) -> BackupInfo | None:
    """The newest backup of the default folder that passes its integrity check."""
    for info in list_backups(locations):
        if info.problem is not None or info.revision is None:
            continue
        try:
            with closing(readonly.open_readonly(info.path)) as conn:
                if not readonly.integrity_errors(conn):
                    return info
        except sqlite3.Error:
            continue
    return None


def restore_advice(locations: Locations) -> str:
    """One sentence naming the backup to restore, for a database that cannot be used."""
    info = newest_good_backup(locations)
    if info is None:
        return f"no good backup in {backups_dir(locations)}"
    when = info.taken_at.strftime("%Y-%m-%d %H:%M:%SZ")
    return f"the newest good backup is {info.path} ({when}): nua-orchestrator restore {info.path}"
