"""Helpers for the bad-input tests: one-line refusals and untouched databases."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

from tests.support.orchestrator import Orchestrator, Result

# How a supervisord process shows in its command line.
SUPERVISORD_MARK = "supervisor.supervisord"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def db_fingerprint(database: Path) -> dict[str, str | None]:
    """The sha256 of the database file and of its WAL (None when absent).

    An empty WAL holds no frames, so it is the same database as no WAL at all:
    SQLite's read-only open (the check `start` makes before touching anything)
    leaves an empty `-wal` and a `-shm` behind, which changes no byte of the
    database. A WAL with content is compared byte for byte.
    """
    wal = database.with_name(database.name + "-wal")
    return {
        "db": sha256(database) if database.exists() else None,
        "wal": sha256(wal) if wal.exists() and wal.stat().st_size > 0 else None,
    }


def error_line(result: Result) -> str:
    """The one `error:` line of a refused command; fail if it printed anything else."""
    output = f"stdout={result.stdout!r} stderr={result.stderr!r}"
    assert result.returncode != 0, f"expected a failure, got exit 0: {output}"
    assert result.stdout.strip() == "", f"expected nothing on stdout: {output}"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected exactly one line on stderr: {output}"
    assert lines[0].startswith("error:"), f"expected 'error: ...': {output}"
    return lines[0]


def assert_refused(orch: Orchestrator, result: Result, *needles: str, code: int = 1) -> str:
    """`result` is a one-line refusal with exit `code` naming every needle; nothing runs."""
    line = error_line(result)
    assert result.returncode == code, f"exit {result.returncode}, expected {code}: {line}"
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    assert orch.processes() == [], f"processes carry {orch.home}: {orch.processes()}"
    return line


def supervisords(orch: Orchestrator) -> list[psutil.Process]:
    """The supervisord processes carrying this home."""
    found = []
    for proc in orch.processes():
        try:
            if SUPERVISORD_MARK in " ".join(proc.cmdline()):
                found.append(proc)
        except psutil.NoSuchProcess:
            continue
    return found


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen(["true"])
    proc.wait(timeout=10)
    return proc.pid


def write_private(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write `data` to a new file created with `mode` (whatever the umask)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with open(fd, "wb") as fh:
        fh.write(data)
    path.chmod(mode)


@contextmanager
def scratch_dir(mode: int = 0o700) -> Iterator[Path]:
    """A temporary folder owned by us, outside any home, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="nuax"))
    try:
        path.chmod(mode)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class Bystanders:
    """Unrelated processes a test starts to prove nothing signals them; ended by pid."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self._leaders: set[int] = set()

    def spawn(
        self,
        argv: list[str] | None = None,
        *,
        run_token: str | None = None,
        new_session: bool = False,
    ) -> subprocess.Popen[bytes]:
        """Start `argv` (default `sleep 120`), carrying `run_token` if given."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("NUA_")}
        if run_token is not None:
            env["NUA_RUN_TOKEN"] = run_token
        proc = subprocess.Popen(
            argv or ["sleep", "120"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=new_session,
        )
        self.procs.append(proc)
        if new_session:
            self._leaders.add(proc.pid)
        return proc

    def assert_untouched(self, *procs: subprocess.Popen[bytes]) -> None:
        """Each process still runs: not ended, not stopped by a signal."""
        for proc in procs or tuple(self.procs):
            assert proc.poll() is None, f"bystander {proc.args} (pid {proc.pid}) was ended"
            state = psutil.Process(proc.pid).status()
            assert state not in (psutil.STATUS_STOPPED, psutil.STATUS_ZOMBIE), state

    def kill_all(self) -> None:
        """End every bystander (and the group of those that lead one), by pid."""
        for proc in self.procs:
            if proc.pid in self._leaders:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
