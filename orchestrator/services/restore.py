"""`restore`: put a backup in place of the database, keeping the old one aside.

The file is verified before anything is stopped: a bad file changes nothing.
Then the orchestrator is stopped if it runs, and `_swap` puts a copy of the
backup in place with one rename, the old database kept in `<data>/replaced/`
(see `_swap` for why an interruption at any point leaves the old database or
the new one). The schema is upgraded under the instance lock, by the code
start uses, and the orchestrator starts again if it was running.
"""

from __future__ import annotations

import contextlib
import errno
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

# The files SQLite keeps beside a database; a stale WAL beside another database would be
# replayed into it, so none of them may stay beside the database once the backup is in place.
SIDE_FILES = ("-wal", "-journal", "-shm")
# What of them holds data (the shared memory is rebuilt from the WAL).
KEPT_SIDE_FILES = ("-wal", "-journal")
# How long the checkpoint of the old database waits for a lock (nothing else should hold one).
MERGE_BUSY_TIMEOUT_MS = 2_000
# os.link fails so where the file system has no hard links (or not across these folders).
LINK_UNSUPPORTED = {errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP}


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
    """What a restore did, for the operator."""

    source: Path
    database: Path
    replaced: Path | None
    revision_before: str | None  # the replaced database's
    revision_backup: str  # the backup's, as verified
    revision_after: str  # the restored database's, upgraded to this code's head
    was_running: bool
    started_pid: int | None

    @property
    def upgraded(self) -> bool:
        return self.revision_after != self.revision_backup

    def to_json(self) -> dict[str, Any]:
        return {
            "status": "restored",
            "source": str(self.source),
            "database": str(self.database),
            "replaced": str(self.replaced) if self.replaced else None,
            "schema_revision_before": self.revision_before,
            "schema_revision_backup": self.revision_backup,
            "schema_revision_after": self.revision_after,
            "upgraded": self.upgraded,
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
    revision = _check_database(path, f"backup {path}", nothing)
    return VerifiedBackup(path=path, size=st.st_size, revision=revision)


def _check_database(path: Path, what: str, nothing: str) -> str:
    """Integrity, a Nua database, a revision this code knows: return the revision, or refuse."""
    try:
        with closing(readonly.open_readonly(path)) as conn:
            errors = readonly.integrity_errors(conn)
            tables = readonly.table_names(conn) if not errors else set()
            revision = readonly.revision(conn) if not errors else None
    except sqlite3.Error as exc:
        raise RestoreError(f"{what} cannot be read ({exc}); {nothing}") from None
    if errors:
        raise RestoreError(f"{what} fails its integrity check ({errors[0]}); {nothing}")
    if "alembic_version" not in tables or "settings" not in tables or revision is None:
        raise RestoreError(
            f"{what} is not a Nua database (no alembic_version or settings); {nothing}"
        )
    if revision not in known_revisions():
        raise RestoreError(
            f"{what} is at schema revision {revision}, newer than this "
            f"nua-orchestrator (head {head_revision()}): upgrade nua-orchestrator first; {nothing}"
        )
    return revision


def replaced_dir(locations: Locations) -> Path:
    """Where restore keeps the databases it replaced."""
    return locations.data / "replaced"


def restore(
    locations: Locations,
    path: Path,
    report: lifecycle.Report = lambda _m: None,
    now: datetime | None = None,
) -> RestoreResult:
    """Verify `path`, stop if running, swap, upgrade the schema, start again if it was running."""
    database = sqlite_database(locations, "restore")
    backup = verify(path)
    if database.exists() and backup.path.samefile(database):
        raise RestoreError(f"backup {backup.path} is the database itself; nothing was changed")
    locations.ensure()
    refuse_planted_links(locations, "restore")  # before anything is stopped
    # One hold of the instance lock from the stop to the end of the start: released
    # in between, another command could start the orchestrator on the old database.
    with InstanceLock(locations.lock_file) as lock:
        stopped = lifecycle.stop(locations, held=lock)
        swapped = False
        try:
            replaced, before = _swap(backup, database, replaced_dir(locations), stamp(now))
            swapped = True
            after = _upgrade(locations, backup, database, replaced)
        except BaseException:
            if stopped.was_running and not swapped:
                with contextlib.suppress(NuaError):
                    lifecycle.start(locations, report=report, held=lock)  # the old database
            raise
        started_pid = None
        if stopped.was_running:
            try:
                started = lifecycle.start(locations, report=report, held=lock)
            except NuaError as exc:
                raise RestoreError(
                    f"restored {backup.path} (the old database is {replaced}) but the "
                    f"orchestrator did not start again: {exc}"
                ) from None
            started_pid = started.pid
    return RestoreResult(
        source=backup.path,
        database=database,
        replaced=replaced,
        revision_before=before,
        revision_backup=backup.revision,
        revision_after=after,
        was_running=stopped.was_running,
        started_pid=started_pid,
    )


def _upgrade(
    locations: Locations, backup: VerifiedBackup, database: Path, replaced: Path | None
) -> str:
    """Bring the restored database to this code's head with start's own code (lock held).

    So that restore says what it did, whether the orchestrator runs or not.
    """
    from orchestrator.services.database import prepare
    from orchestrator.settings.defaults import load_defaults

    try:
        prepared = prepare(locations, load_defaults())
    except NuaError as exc:
        kept = f"; the database it replaced is kept at {replaced}" if replaced else ""
        raise RestoreError(
            f"restored {backup.path} to {database}, but its schema could not be upgraded "
            f"from {backup.revision}: {exc.message}{kept}; nothing was started: "
            "run `nua-orchestrator db check`"
        ) from None
    return prepared.revision or backup.revision


def _swap(
    backup: VerifiedBackup, database: Path, aside: Path, when: str
) -> tuple[Path | None, str | None]:
    """Put a copy of the backup in place of the database with one rename.

    In this order, so that an interruption at any point (kill -9, power loss)
    leaves at `database` either the old database, complete with what its WAL
    held, or the new one, and never the old WAL beside the new file (SQLite
    would replay it into the new file: a WAL does not name its database):

    1. copy the backup beside the database, 0600 and flushed, and check the
       copy as the backup was checked (it is the copy that goes into service);
    2. fold the old database's WAL into it (a checkpoint, crash-safe by
       SQLite's own design), so the file alone is the whole old database;
    3. hard-link it (copy it where links fail) into `aside`, with any side
       file the checkpoint could not fold in (a damaged database), and flush;
    4. remove the side files from beside the database: empty after 2 (of a
       damaged database, whole in `aside` since 3: an interruption before 5
       leaves that damaged file without its WAL, which is kept aside with it);
    5. rename the copy over the database and flush the folder: the one step
       that switches from old to new.
    """
    _remove_stale_copies(database)
    tmp = database.with_name(f"{_COPY_PREFIX.format(name=database.name)}{secrets.token_hex(4)}.tmp")
    try:
        _copy_private(backup.path, tmp)
        _check_copy(tmp, backup)
        replaced, before = None, None
        if os.path.lexists(database):
            before, unmerged = _merge_side_files(database)
            ensure_private_dir(aside, "replaced")
            replaced = free_name(aside, when)
            _keep_aside(database, replaced)
            for suffix in unmerged:
                _keep_aside(_side(database, suffix), _side(replaced, suffix))
            fsync(aside)
            for suffix in SIDE_FILES:
                _side(database, suffix).unlink(missing_ok=True)
            fsync(database.parent)
        tmp.replace(database)
        fsync(database.parent)
        return replaced, before
    except OSError as exc:
        raise RestoreError(
            f"the backup could not be put in place at {database}: {exc.strerror or exc}; "
            "the database was left as it was"
        ) from None
    finally:
        remove_with_side_files(tmp)


def _check_copy(copy: Path, backup: VerifiedBackup) -> None:
    """Check the copy that goes into service as the backup was checked: it is what runs."""
    nothing = "it was removed and nothing was restored: run restore again"
    revision = _check_database(copy, f"the copy of backup {backup.path} ({copy})", nothing)
    if revision != backup.revision:
        raise RestoreError(
            f"backup {backup.path} changed during the restore: its copy is at schema revision "
            f"{revision}, the file was verified at {backup.revision}; {nothing}"
        )


# `.nua.db.restore-<random>.tmp`: the copy that step 1 of a swap makes.
_COPY_PREFIX = ".{name}.restore-"


def _side(database: Path, suffix: str) -> Path:
    return database.with_name(database.name + suffix)


def _remove_stale_copies(database: Path) -> None:
    """Remove the copies an interrupted restore left beside the database (lock held)."""
    prefix = _COPY_PREFIX.format(name=database.name)
    for entry in os.scandir(database.parent):
        if entry.name.startswith(prefix) and entry.is_file(follow_symlinks=False):
            Path(entry.path).unlink(missing_ok=True)


def _merge_side_files(database: Path) -> tuple[str | None, list[str]]:
    """Fold the WAL into a sound database (or roll back its hot journal).

    Returns the database's schema revision and the side files still holding
    data. Run with the orchestrator stopped and the instance lock held. A
    damaged database is not written to: its WAL or journal is returned, to be
    kept aside with it byte for byte.
    """
    sound, revision = _look(database)
    if sound:
        busy, folded = False, False
        try:
            uri = f"{database.absolute().as_uri()}?mode=rw"
            with closing(sqlite3.connect(uri, uri=True, isolation_level=None)) as conn:
                conn.execute(f"PRAGMA busy_timeout={MERGE_BUSY_TIMEOUT_MS}")
                # Reading first rolls back a hot journal; the checkpoint folds the WAL in.
                revision = readonly.revision(conn)
                busy = bool(conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0])
                folded = not busy
        except sqlite3.Error as exc:
            busy = _is_busy(exc)
        # Closing the last connection removes the WAL: if it is still there, another
        # process has the database open, and its WAL is not to be taken from under it.
        if busy or (folded and os.path.lexists(_side(database, "-wal"))):
            raise _in_use(database)
    return revision, [suffix for suffix in KEPT_SIDE_FILES if _size(_side(database, suffix))]


def _look(database: Path) -> tuple[bool, str | None]:
    """Whether SQLite reads the database, WAL included, without finding damage; its revision.

    Reads only.
    """
    try:
        with closing(readonly.open_readonly(database)) as conn:
            conn.execute(f"PRAGMA busy_timeout={MERGE_BUSY_TIMEOUT_MS}")
            sound = [str(r[0]) for r in conn.execute("PRAGMA quick_check(1)")] == ["ok"]
            with contextlib.suppress(sqlite3.Error):
                return sound, readonly.revision(conn)
            return sound, None
    except sqlite3.Error as exc:
        if _is_busy(exc):
            raise _in_use(database) from None
        # A hot journal or a WAL to recover needs a writer; the checkpoint's connection is one.
        return getattr(exc, "sqlite_errorname", "").startswith("SQLITE_READONLY_"), None


def _is_busy(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorname", "").startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))


def _in_use(database: Path) -> RestoreError:
    return RestoreError(
        f"another process has the database {database} open; nothing was restored: "
        "close it, then run restore again"
    )


def _size(path: Path) -> int:
    """The size of `path`, 0 when it does not exist."""
    try:
        return path.lstat().st_size
    except FileNotFoundError:
        return 0


def _keep_aside(source: Path, target: Path) -> None:
    """Hard-link `source` to `target`; copy it, flushed, where links are not possible."""
    try:
        os.link(source, target, follow_symlinks=False)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in LINK_UNSUPPORTED:
            raise
        _copy_private(source, target)


def _copy_private(source: Path, target: Path) -> None:
    """Copy `source` to a new 0600 `target`, flushed to disk."""
    src_fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW)
    with open(src_fd, "rb") as src:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with open(fd, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
            dst.flush()
            os.fsync(dst.fileno())
