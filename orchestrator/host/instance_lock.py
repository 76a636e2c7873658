"""The single-instance lock: one nua-orchestrator command at a time per home.

An flock on a file in the runtime location. The kernel releases it when the
holder exits, even on kill -9, so a lock file left behind is never "stale" in
a way that blocks: the next command simply takes it. The file holds the pid
of the holder, for messages only.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import time
from pathlib import Path
from types import TracebackType

from orchestrator.errors import LocationError, LockBusyError

POLL_SECONDS = 0.05


class InstanceLock:
    """An exclusive, non-inheritable flock on `path`, taken with a deadline."""

    def __init__(self, path: Path, wait: float = 5.0) -> None:
        self.path = path
        self.wait = wait
        self._fd: int | None = None
        self.previous_holder: int | None = None

    def acquire(self) -> None:
        """Take the lock, waiting up to `wait` seconds for another holder."""
        fd = self._open()
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _read_pid(fd)
                    os.close(fd)
                    who = f"pid {holder}" if holder else "another process"
                    raise LockBusyError(
                        f"another nua-orchestrator command ({who}) holds the lock "
                        f"{self.path}; wait for it to finish"
                    ) from None
                time.sleep(POLL_SECONDS)
        self.previous_holder = _read_pid(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Release the lock (the file stays: removing it would race with a waiter)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def _open(self) -> int:
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(self.path, flags, 0o600)
        except OSError as exc:
            if self.path.is_symlink():
                reason = "is a symlink"
            elif self.path.is_dir():
                reason = "is a directory, not a lock file (foreign lock)"
            else:
                reason = f"cannot be opened: {exc.strerror}"
            raise LocationError(
                f"lock file {self.path} {reason}; remove it if no nua-orchestrator is running"
            ) from None
        st = os.fstat(fd)
        problem = None
        if not stat.S_ISREG(st.st_mode):
            problem = "is not a regular file"
        elif st.st_uid != os.geteuid():
            problem = f"belongs to uid {st.st_uid}, not to you"
        elif st.st_mode & 0o077:
            problem = f"has mode {stat.S_IMODE(st.st_mode):04o}, not 0600"
        if problem:
            os.close(fd)
            raise LocationError(
                f"foreign lock: {self.path} {problem}; refusing to use it "
                "(remove it if no nua-orchestrator is running)"
            )
        return fd

    def __enter__(self) -> InstanceLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None
