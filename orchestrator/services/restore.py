"""`restore`: put a backup in place of the database, keeping the old one aside.

The file is verified before anything is stopped: a bad file changes nothing.
Then the orchestrator is stopped if it runs, the database (with its -wal and
-shm) moves to `<data>/replaced/`, the backup is copied next to the database
and renamed into place, and the orchestrator starts again if it was running
(start upgrades the schema when the backup is older).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import sqlite3
import stat
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from orchestrator.db import readonly
from orchestrator.db.schema import head_revision, known_revisions
from orchestrator.errors import NuaError
from orchestrator.host.instance_lock import InstanceLock
from orchestrator.host.locations import Locations, ensure_private_dir
from orchestrator.host.planted_links import refuse_planted_links
from orchestrator.services import lifecycle
from orchestrator.services.backup import (
    free_name,
    fsync,
    remove_with_side_files,
    sqlite_database,
    stamp,
)
from orchestrator.supervisor.daemon import Supervisord

# Moved before the database itself: a stale WAL beside another database would be replayed into it.
SIDE_FILES = ("-wal", "-shm", "-journal")


class RestoreError(NuaError):
    """A backup was refused, or could not be put in place."""


@dataclass(frozen=True)
class VerifiedBackup:
    """A file that is a sound Nua database this code can run."""

    path: Path
    size: int
    revision: str


@dataclass(frozen=True)
class RestoreResult:
    source: Path
    database: Path
    replaced: Path | None
    revision_before: str | None
    revision_after: str
    was_running: bool
    started_pid: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "status": "restored",
            "source": str(self.source),
            "database": str(self.database),
            "replaced": str(self.replaced) if self.replaced else None,
            "schema_revision_before": self.revision_before,
            "schema_revision_after": self.revision_after,
            "was_running": self.was_running,
            "started": self.started_pid is not None,
            "pid": self.started_pid,
        }


def verify(path: Path) -> VerifiedBackup:
    """Refuse, in one line, a file that is not a sound Nua database this code knows."""
    path = path.expanduser().absolute()
    nothing = "nothing was stopped or changed"
    try:
        st = path.lstat()
    except FileNotFoundError:
        raise RestoreError(f"backup {path} does not exist; {nothing}") from None
    if stat.S_ISLNK(st.st_mode):
        raise RestoreError(
            f"backup {path} is a symlink; refusing to follow it: give the file itself; {nothing}"
        )
    if not stat.S_ISREG(st.st_mode):
        raise RestoreError(f"backup {path} is not a regular file; {nothing}")
    if not readonly.has_sqlite_header(path):
        raise RestoreError(f"backup {path} is not an SQLite database; {nothing}")
    wal = path.with_name(path.name + "-wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise RestoreError(
            f"backup {path} has a write-ahead log beside it ({wal}) that the copy would miss: "
            f"take a backup of it with `nua-orchestrator backup` instead; {nothing}"
        )
    try:
        with closing(readonly.open_readonly(path)) as conn:
            errors = readonly.integrity_errors(conn)
            tables = readonly.table_names(conn) if not errors else set()
            revision = readonly.revision(conn) if not errors else None
    except sqlite3.Error as exc:
        raise RestoreError(f"backup {path} cannot be read ({exc}); {nothing}") from None
    if errors:
        raise RestoreError(f"backup {path} fails its integrity check ({errors[0]}); {nothing}")
    if "alembic_version" not in tables or "settings" not in tables or revision is None:
        raise RestoreError(
            f"backup {path} is not a Nua database (no alembic_version or settings); {nothing}"
        )
    if revision not in known_revisions():
        raise RestoreError(
            f"backup {path} is at schema revision {revision}, newer than this "
            f"nua-orchestrator (head {head_revision()}): upgrade nua-orchestrator first; {nothing}"
        )
    return VerifiedBackup(path=path, size=st.st_size, revision=revision)


def replaced_dir(locations: Locations) -> Path:
    """Where restore keeps the databases it replaced."""
    return locations.data / "replaced"


def restore(
    locations: Locations,
    path: Path,
    report: lifecycle.Report = lambda _m: None,
    now: datetime | None = None,
) -> RestoreResult:
    """Verify `path`, stop if running, swap the database, start again if it was running."""
    database = sqlite_database(locations, "restore")
    backup = verify(path)
    if database.exists() and backup.path.samefile(database):
        raise RestoreError(f"backup {backup.path} is the database itself; nothing was changed")
    locations.ensure()
    refuse_planted_links(locations, "restore")  # before anything is stopped
    stopped = lifecycle.stop(locations)
    try:
        with InstanceLock(locations.lock_file):
            if Supervisord(locations).running() is not None:
                raise RestoreError(
                    "another command started the orchestrator during the restore; "
                    "nothing was restored: run restore again"
                )
            before = _revision_of(database)
            replaced = _swap(backup, database, replaced_dir(locations), stamp(now))
    except BaseException:
        if stopped.was_running:
            with contextlib.suppress(NuaError):
                lifecycle.start(locations, report=report)
        raise
    started_pid = None
    after = backup.revision
    if stopped.was_running:
        try:
            started = lifecycle.start(locations, report=report)
        except NuaError as exc:
            raise RestoreError(
                f"restored {backup.path} (the old database is {replaced}) but the "
                f"orchestrator did not start again: {exc}"
            ) from None
        started_pid = started.pid
        if started.database is not None and started.database.revision:
            after = started.database.revision
    return RestoreResult(
        source=backup.path,
        database=database,
        replaced=replaced,
        revision_before=before,
        revision_after=after,
        was_running=stopped.was_running,
        started_pid=started_pid,
    )


def _revision_of(database: Path) -> str | None:
    try:
        with closing(readonly.open_readonly(database)) as conn:
            return readonly.revision(conn)
    except sqlite3.Error:
        return None


def _swap(backup: VerifiedBackup, database: Path, aside: Path, when: str) -> Path | None:
    """Copy the backup beside the database, move the database aside, rename the copy in."""
    tmp = database.with_name(f".{database.name}.restore-{secrets.token_hex(4)}.tmp")
    try:
        _copy_private(backup.path, tmp)
        moved: list[tuple[Path, Path]] = []
        replaced = None
        if os.path.lexists(database):
            ensure_private_dir(aside, "replaced")
            replaced = free_name(aside, when)
            for suffix in SIDE_FILES:
                side = database.with_name(database.name + suffix)
                if os.path.lexists(side):
                    side.rename(replaced.with_name(replaced.name + suffix))
                    moved.append((side, replaced.with_name(replaced.name + suffix)))
            database.rename(replaced)
            moved.append((database, replaced))
            fsync(aside)
        try:
            tmp.rename(database)
        except OSError:
            for original, now_at in reversed(moved):
                now_at.rename(original)
            raise
        fsync(database.parent)
        return replaced
    except OSError as exc:
        raise RestoreError(
            f"the backup could not be put in place at {database}: {exc.strerror or exc}; "
            "the database was left as it was"
        ) from None
    finally:
        remove_with_side_files(tmp)


def _copy_private(source: Path, target: Path) -> None:
    """Copy `source` to a new 0600 `target`, flushed to disk."""
    src_fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW)
    with open(src_fd, "rb") as src:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with open(fd, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
            dst.flush()
            os.fsync(dst.fileno())
