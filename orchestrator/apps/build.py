"""Run a release's build script: as the app's user, with a timeout, its output logged and capped."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path

# Output kept in the build log; the rest is read and dropped (a flood must not fill the disk).
MAX_LOG_BYTES = 4 * 1024 * 1024


def _drain(stream: object, log: Path, cap: int, dropped: list[int]) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    written = 0
    with open(fd, "wb") as out:
        for block in iter(lambda: stream.read(65536), b""):  # type: ignore[attr-defined]
            room = cap - written
            if room > 0:
                out.write(block[:room])
                written += min(room, len(block))
            dropped[0] += max(0, len(block) - max(room, 0))
        if dropped[0]:
            out.write(f"\n[nua: {dropped[0]} more bytes of output were dropped]\n".encode())


def run_build(
    script: str,
    cwd: Path,
    env: Mapping[str, str],
    log: Path,
    timeout: float,
    user: str | None = None,
) -> str | None:
    """Run `sh SCRIPT` in `cwd`; None on success, else what went wrong."""
    proc = subprocess.Popen(
        ["/bin/sh", script],
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        user=user if user and os.geteuid() == 0 else None,
        group=_group_of(user) if user and os.geteuid() == 0 else None,
        extra_groups=[] if user and os.geteuid() == 0 else None,
    )
    dropped = [0]
    reader = threading.Thread(target=_drain, args=(proc.stdout, log, MAX_LOG_BYTES, dropped))
    reader.start()
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        reader.join(10)
        return f"the build script {script} did not finish within {timeout:g}s (build.timeout)"
    # Processes it left in the background must not hold the output pipe open.
    _kill_group(proc)
    reader.join(10)
    if code != 0:
        return f"the build script {script} exited with status {code}"
    return None


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _group_of(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_gid


def log_tail(path: Path, lines: int = 20, max_bytes: int = 8192) -> str:
    """The last lines of a log file ('' if there is none)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
