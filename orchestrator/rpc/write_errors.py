"""What the callers of a failed group commit are told, and how a failure is recognised."""

from __future__ import annotations

import resource

from sqlalchemy.exc import OperationalError

from orchestrator.rpc.errors import Unavailable


def is_busy(exc: BaseException) -> bool:
    """Whether `exc` is SQLite's "database is locked/busy" (the write lock is held elsewhere)."""
    if not isinstance(exc, OperationalError):
        return False
    text = str(exc.orig).lower()
    return "locked" in text or "busy" in text


def file_size_limit_reached(exc: BaseException) -> bool:
    """Whether a write failed on the file size limit (RLIMIT_FSIZE) rather than the disk.

    SQLite reports the EFBIG of a write past the limit as a plain write error
    ("disk I/O error"); with a finite limit in force, that error is the limit.
    """
    if not isinstance(exc, OperationalError):
        return False
    if getattr(exc.orig, "sqlite_errorname", "") != "SQLITE_IOERR_WRITE":
        return False
    soft, _hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    return soft != resource.RLIM_INFINITY


def commit_error(exc: BaseException) -> Unavailable:
    """What the callers of a failed group commit are told (never SQLite's own words)."""
    text = str(exc.orig).lower() if isinstance(exc, OperationalError) else ""
    if "full" in text:
        return Unavailable(
            "storage full: the change was not saved; free space in the data location, then retry",
            reason="storage_full",
        )
    if file_size_limit_reached(exc):
        return Unavailable(
            "storage full: the change was not saved; the database reached the worker's file "
            "size limit (ulimit -f, LimitFSIZE=): raise it, then retry",
            reason="storage_full",
        )
    if is_busy(exc):
        return Unavailable(
            "the database stayed busy (another process holds its write lock): "
            "the change was not applied; retry later",
            reason="busy",
        )
    return Unavailable("the change could not be saved; it was not applied", reason="write_failed")
