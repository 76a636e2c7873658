"""Errors a user can act on, and the exit codes they map to.

Every failure the orchestrator reports to a person is a `NuaError`: one line
that says what failed, where, and what to do. The exit code is part of the
contract documented in the README.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes of `nua-orchestrator` and `nua` (documented in the README)."""

    OK = 0
    ERROR = 1  # the command failed; for `status`: running but degraded
    USAGE = 2  # bad option, argument or command name
    NOT_RUNNING = 3  # the orchestrator is not running
    NOT_FOUND = 4
    CONFLICT = 5  # already exists, or another command holds the instance lock


class NuaError(Exception):
    """A failure to report as one line, with the exit code it maps to."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class LocationError(NuaError):
    """A location is missing, unsafe (symlink, foreign owner, loose mode) or not writable."""


class LockBusyError(NuaError):
    """Another nua-orchestrator command holds the instance lock."""

    exit_code = ExitCode.CONFLICT


class SettingsError(NuaError):
    """The defaults file or an environment override is invalid."""


class DatabaseError(NuaError):
    """The database cannot be used as it is; nothing was changed."""


class DamagedDatabaseError(DatabaseError):
    """The database file is not a sound SQLite database (corrupt, truncated, foreign)."""


class SupervisorError(NuaError):
    """supervisord could not be found, launched, reached or stopped."""


class NotRunningError(NuaError):
    """The orchestrator is not running."""

    exit_code = ExitCode.NOT_RUNNING


class StartupError(NuaError):
    """The orchestrator started but did not become ready; everything was stopped."""
