"""One supervisord per home: launch it, recognise it, stop it, clean up after it.

The run manifest (run.json, 0600, in the runtime location) records the run's
token before supervisord is launched and supervisord's identity (pid plus
create time) once it has daemonized. It is how a later command tells our
supervisord from an unrelated process that reused its pid, and how the
orphans of a supervisord killed with -9 are found.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import time
import xmlrpc.client
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

from orchestrator.errors import SupervisorError
from orchestrator.host.locations import Locations
from orchestrator.host.processes import (
    RUN_TOKEN_ENV,
    ProcessId,
    find_by_run_tokens,
    is_live,
    terminate,
    wait_gone,
)
from orchestrator.supervisor import control

DEFAULT_STOP_TIMEOUT = 30.0
TOKEN_IN_CONF = re.compile(r'NUA_RUN_TOKEN="([0-9a-f]+)"')
# supervisord's script as installed (`supervisord`, `supervisord3.11`), not `supervisord.conf`.
SUPERVISORD_NAME = re.compile(r"supervisord[\d.-]*")


@dataclass
class RunManifest:
    """What a run left in the runtime location to be recognised by later commands."""

    token: str
    conf: str
    started_at: float
    supervisord_pid: int | None = None
    supervisord_create_time: float | None = None
    # Seconds `stop` waits for supervisord (setting supervisor.stop_timeout at start).
    stop_timeout: float = DEFAULT_STOP_TIMEOUT
    # Tokens of earlier runs whose orphans may still need cleaning.
    earlier_tokens: list[str] = field(default_factory=list)

    @property
    def supervisord(self) -> ProcessId | None:
        if self.supervisord_pid is None or self.supervisord_create_time is None:
            return None
        return ProcessId(self.supervisord_pid, self.supervisord_create_time)

    @classmethod
    def load(cls, path: Path) -> RunManifest | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".new")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with open(fd, "w", encoding="utf-8") as fh:
            json.dump(asdict(self), fh)
        tmp.replace(path)


@dataclass
class Leftovers:
    """What a crashed run left behind: files in the runtime location and live programs."""

    files: list[Path] = field(default_factory=list)
    orphans: list[psutil.Process] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.files or self.orphans)

    def describe(self) -> str:
        parts = []
        if self.orphans:
            pids = ", ".join(str(p.pid) for p in self.orphans)
            parts.append(f"{len(self.orphans)} orphaned program process(es) (pid {pids})")
        if self.files:
            parts.append("stale " + ", ".join(p.name for p in self.files))
        return "; ".join(parts)


class Supervisord:
    """The supervisord of one home."""

    def __init__(self, locations: Locations) -> None:
        self.locations = locations

    # -- recognising -----------------------------------------------------------

    def manifest(self) -> RunManifest | None:
        return RunManifest.load(self.locations.run_manifest)

    def running(self) -> ProcessId | None:
        """Our live supervisord, identified by pid plus create time, or None."""
        manifest = self.manifest()
        ident = manifest.supervisord if manifest else None
        if ident is not None and ident.is_alive():
            return ident
        return self._from_pidfile()

    def _from_pidfile(self) -> ProcessId | None:
        """A supervisord running our config whose manifest is gone (say, removed by hand).

        The pid file outlives a supervisord killed with -9, and its pid may be
        reused: only a process that is a supervisord started with `-c` and our
        config counts (`less supervisord.conf` names the file too).
        """
        try:
            ident = ProcessId.of(int(self.locations.supervisor_pidfile.read_text().strip()))
        except (OSError, ValueError):
            return None
        proc = ident.process() if ident else None
        try:
            cmdline = proc.cmdline() if proc else []
        except psutil.Error:
            return None
        if ident is not None and is_supervisord_of(cmdline, self.locations.supervisor_conf):
            return ident
        return None

    def proxy(self, timeout: float = 5.0) -> object:
        return control.connect(self.locations.supervisor_socket, timeout)

    def leftovers(self) -> Leftovers:
        """What a previous run left, assuming no supervisord of ours is alive."""
        where = self.locations
        # The manifest is bookkeeping, removed by clean(); these only outlive a crash.
        # Only what we create (sockets, a pid file) is ours to remove: anything
        # else at those paths is left alone, and the program that needs it says why.
        files = [
            p
            for p in (where.supervisor_socket, where.supervisor_pidfile, where.rpc_socket)
            if _is_removable(p)
        ]
        return Leftovers(files=files, orphans=find_by_run_tokens(self._known_tokens()))

    def _known_tokens(self) -> set[str]:
        tokens: set[str] = set()
        manifest = self.manifest()
        if manifest:
            tokens.add(manifest.token)
            tokens.update(manifest.earlier_tokens)
        with contextlib.suppress(OSError):
            found = TOKEN_IN_CONF.search(self.locations.supervisor_conf.read_text())
            if found:
                tokens.add(found.group(1))
        return tokens

    def clean(self, timeout: float = 10.0) -> Leftovers:
        """End the orphans of a dead run and remove its stale files; return what was found.

        Only call this with the instance lock held and no supervisord of ours alive.
        """
        found = self.leftovers()
        if found.orphans:
            terminate(found.orphans, timeout=timeout)
            still = [p for p in found.orphans if is_live(p)]
            if still:
                pids = ", ".join(str(p.pid) for p in still)
                raise SupervisorError(
                    f"orphaned programs of a previous run (pid {pids}) survived SIGKILL; "
                    "check them with ps and end them by hand"
                )
        for path in [*found.files, self.locations.run_manifest]:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        return found

    # -- launching ---------------------------------------------------------------

    def command(self, executable: str) -> list[str]:
        """The command that runs supervisord, from the setting or this installation."""
        if not executable:
            return [sys.executable, "-m", "supervisor.supervisord"]
        found = shutil.which(executable)
        if found is None:
            raise SupervisorError(
                f"supervisord executable {executable!r} (setting supervisor.executable) was "
                "not found or is not executable; install supervisor or fix the setting"
            )
        return [found]

    def launch(self, executable: str, timeout: float, stop_timeout: float) -> ProcessId:
        """Start supervisord with the rendered config; return once it has daemonized."""
        where = self.locations
        cmd = [*self.command(executable), "-c", str(where.supervisor_conf)]
        token_match = TOKEN_IN_CONF.search(where.supervisor_conf.read_text())
        token = token_match.group(1) if token_match else secrets.token_hex(16)
        earlier = sorted(self._known_tokens() - {token})
        manifest = RunManifest(
            token=token,
            conf=str(where.supervisor_conf),
            started_at=time.time(),
            stop_timeout=stop_timeout,
            earlier_tokens=earlier,
        )
        manifest.save(where.run_manifest)
        try:
            # supervisord forks into the background once its sockets are open;
            # errors before that (bad config, socket in use) come back here.
            done = subprocess.run(
                cmd,
                # supervisord carries the run token too (its programs get it from the
                # config): interrupted before it wrote its pid file, it is still found.
                env={**os.environ, RUN_TOKEN_ENV: token},
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except OSError as exc:
            raise SupervisorError(f"cannot run supervisord ({cmd[0]}): {exc.strerror}") from None
        except subprocess.TimeoutExpired:
            raise SupervisorError(
                f"supervisord did not daemonize within {timeout:g}s; see "
                f"{where.logs / 'supervisord.log'}"
            ) from None
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()
            last = detail[-1] if detail else f"exit status {done.returncode}"
            raise SupervisorError(f"supervisord failed to start: {last}")
        ident = self._wait_for_pidfile(timeout)
        manifest.supervisord_pid = ident.pid
        manifest.supervisord_create_time = ident.create_time
        manifest.save(where.run_manifest)
        return ident

    def _wait_for_pidfile(self, timeout: float) -> ProcessId:
        deadline = time.monotonic() + timeout
        pidfile = self.locations.supervisor_pidfile
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                ident = ProcessId.of(int(pidfile.read_text().strip()))
                if ident is not None:
                    return ident
            time.sleep(0.02)
        raise SupervisorError(
            f"supervisord wrote no pid file ({pidfile}) within {timeout:g}s; see "
            f"{self.locations.logs / 'supervisord.log'}"
        )

    # -- stopping ----------------------------------------------------------------

    def shutdown(self, ident: ProcessId, timeout: float) -> list[str]:
        """Stop supervisord and every program, gracefully first; return what was forced."""
        forced: list[str] = []
        try:
            self.proxy(timeout=min(timeout, 10.0)).supervisor.shutdown()  # type: ignore[attr-defined]
        except (OSError, xmlrpc.client.Error) as exc:
            forced.append(f"supervisord did not take the shutdown request ({exc}); sent SIGTERM")
            _signal(ident, signal.SIGTERM)
            # A stopped (SIGSTOP) supervisord acts on SIGTERM only once resumed;
            # killed instead, it would leave its programs to the parent-death signal.
            _signal(ident, signal.SIGCONT)
        if not wait_gone(ident, timeout):
            forced.append(
                f"supervisord (pid {ident.pid}) was still alive after {timeout:g}s; sent SIGKILL"
            )
            _signal(ident, signal.SIGKILL)
            wait_gone(ident, 5.0)
        return forced


def is_supervisord_of(cmdline: list[str], conf: Path) -> bool:
    """Whether `cmdline` runs supervisord (as `launch` does) with the config file `conf`."""
    pairs = list(itertools.pairwise(cmdline))
    runs_supervisord = ("-m", "supervisor.supervisord") in pairs or any(
        SUPERVISORD_NAME.fullmatch(Path(part).name) for part in cmdline[:2]
    )
    return runs_supervisord and ("-c", str(conf)) in pairs


def _is_removable(path: Path) -> bool:
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return False
    return stat.S_ISSOCK(mode) or stat.S_ISREG(mode) or stat.S_ISLNK(mode)


def _signal(ident: ProcessId, sig: int) -> None:
    proc = ident.process()
    if proc is not None:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(sig)


def tail(path: Path, lines: int = 20) -> list[str]:
    """The last `lines` lines of a log file (empty if it does not exist)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode("utf-8", "replace")
    except OSError:
        return []
    return data.splitlines()[-lines:]
