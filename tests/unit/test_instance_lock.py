"""orchestrator/host/instance_lock.py: one nua-orchestrator command at a time per home."""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.errors import ExitCode, LocationError, LockBusyError
from orchestrator.host.instance_lock import InstanceLock

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another uid needs root")

# Holds an flock on argv[1] and writes its pid there, says so, then waits for stdin to close.
HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
os.ftruncate(fd, 0)
os.pwrite(fd, f"{os.getpid()}\\n".encode(), 0)
print("locked", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def lock_path(short_home: Path) -> Path:
    return short_home / "orchestrator.lock"


@pytest.fixture
def holder(lock_path: Path) -> Iterator[subprocess.Popen[str]]:
    """A child process holding the lock; killed by pid whatever happens."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "locked"
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()


def _dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(done.stdout)


def test_acquire_writes_our_pid_in_a_private_file(lock_path: Path) -> None:
    lock = InstanceLock(lock_path)
    lock.acquire()
    try:
        assert lock.held
        assert lock_path.read_text() == f"{os.getpid()}\n"
        st = lock_path.lstat()
        assert stat.S_ISREG(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o600
        assert lock.previous_holder is None
    finally:
        lock.release()
    assert not lock.held
    # The file stays (removing it would race with a waiter) but no longer names us.
    assert lock_path.exists()
    assert lock_path.read_text() == ""


def test_release_lets_the_next_command_take_it(lock_path: Path) -> None:
    with InstanceLock(lock_path) as first:
        assert first.held
    with InstanceLock(lock_path, wait=0.1) as second:
        assert second.held
        assert lock_path.read_text() == f"{os.getpid()}\n"


def test_release_twice_is_harmless(lock_path: Path) -> None:
    lock = InstanceLock(lock_path)
    lock.acquire()
    lock.release()
    lock.release()
    assert not lock.held


def test_second_lock_in_the_same_process_is_busy(lock_path: Path) -> None:
    with InstanceLock(lock_path), pytest.raises(LockBusyError, match=f"pid {os.getpid()}"):
        InstanceLock(lock_path, wait=0.1).acquire()


def test_lock_held_by_another_process_is_busy(
    lock_path: Path, holder: subprocess.Popen[str]
) -> None:
    lock = InstanceLock(lock_path, wait=0.1)
    with pytest.raises(LockBusyError) as info:
        lock.acquire()
    message = str(info.value)
    assert f"pid {holder.pid}" in message
    assert str(lock_path) in message
    assert info.value.exit_code == ExitCode.CONFLICT == 5
    assert not lock.held
    # The holder's pid is left in place for the next message.
    assert lock_path.read_text() == f"{holder.pid}\n"


def test_lock_is_free_once_its_holder_is_killed(
    lock_path: Path, holder: subprocess.Popen[str]
) -> None:
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=10)
    with InstanceLock(lock_path, wait=0.1) as lock:
        assert lock.previous_holder == holder.pid
        assert lock_path.read_text() == f"{os.getpid()}\n"


def test_stale_lock_file_with_a_dead_pid_is_taken(lock_path: Path) -> None:
    dead = _dead_pid()
    lock_path.write_text(f"{dead}\n")
    lock_path.chmod(0o600)
    with InstanceLock(lock_path, wait=0.1) as lock:
        assert lock.held
        assert lock.previous_holder == dead
        assert lock_path.read_text() == f"{os.getpid()}\n"


def test_garbage_in_the_lock_file_is_not_a_holder(lock_path: Path) -> None:
    lock_path.write_text("not a pid\n")
    lock_path.chmod(0o600)
    with InstanceLock(lock_path, wait=0.1) as lock:
        assert lock.previous_holder is None
        assert lock_path.read_text() == f"{os.getpid()}\n"


def test_symlink_is_refused(lock_path: Path, short_home: Path) -> None:
    target = short_home / "target"
    target.write_text("")
    target.chmod(0o600)
    lock_path.symlink_to(target)
    with pytest.raises(LocationError, match="symlink") as info:
        InstanceLock(lock_path, wait=0.1).acquire()
    assert str(lock_path) in str(info.value)
    assert target.read_text() == ""


def test_loose_mode_is_a_foreign_lock(lock_path: Path) -> None:
    lock_path.write_text("")
    lock_path.chmod(0o644)
    with pytest.raises(LocationError, match="foreign lock") as info:
        InstanceLock(lock_path, wait=0.1).acquire()
    assert "0644" in str(info.value)
    assert str(lock_path) in str(info.value)


@needs_root
def test_lock_owned_by_another_uid_is_a_foreign_lock(lock_path: Path) -> None:
    lock_path.write_text("")
    lock_path.chmod(0o600)
    os.chown(lock_path, 65534, 65534)
    with pytest.raises(LocationError, match="foreign lock") as info:
        InstanceLock(lock_path, wait=0.1).acquire()
    assert "uid 65534" in str(info.value)


def test_fifo_is_a_foreign_lock(lock_path: Path) -> None:
    os.mkfifo(lock_path, 0o600)
    with pytest.raises(LocationError, match="foreign lock") as info:
        InstanceLock(lock_path, wait=0.1).acquire()
    assert "not a regular file" in str(info.value)


def test_directory_is_refused(lock_path: Path) -> None:
    lock_path.mkdir(mode=0o700)
    with pytest.raises(LocationError) as info:
        InstanceLock(lock_path, wait=0.1).acquire()
    assert str(lock_path) in str(info.value)
    assert "directory" in str(info.value).lower()
