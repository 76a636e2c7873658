"""Helpers for the bad-input tests: one-line refusals and untouched databases."""

from __future__ import annotations

import hashlib
import os
import shutil
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
