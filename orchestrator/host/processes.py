"""Processes we started, identified by pid plus create time, never by pid alone.

A pid can be reused by an unrelated process after ours died; the pair
(pid, create time) cannot. Programs of a run carry that run's token in their
environment (`NUA_RUN_TOKEN`, set by supervisord for every child), which is
how orphans of a crashed supervisord are found again: a process without our
token is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass

import psutil

RUN_TOKEN_ENV = "NUA_RUN_TOKEN"  # noqa: S105 - a variable name, not a secret


@dataclass(frozen=True)
class ProcessId:
    """A process identity that survives pid reuse."""

    pid: int
    create_time: float

    @classmethod
    def of(cls, pid: int) -> ProcessId | None:
        """The identity of the live process `pid`, or None if there is none."""
        try:
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return cls(pid, round(proc.create_time(), 2))
        except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
            return None

    def process(self) -> psutil.Process | None:
        """The live, non-zombie process with this identity, if it still exists."""
        try:
            proc = psutil.Process(self.pid)
            if round(proc.create_time(), 2) != self.create_time:
                return None
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None

    def is_alive(self) -> bool:
        return self.process() is not None


def find_by_run_tokens(tokens: Iterable[str]) -> list[psutil.Process]:
    """Live processes of ours whose environment carries one of `tokens`."""
    wanted = {t for t in tokens if t}
    if not wanted:
        return []
    me = os.getpid()
    skip = {me, *(p.pid for p in _ancestors())}
    uid = os.geteuid()
    found = []
    for proc in psutil.process_iter(["pid", "uids", "status"]):
        info = proc.info
        if info["pid"] in skip or info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if uid != 0 and info["uids"] is not None and info["uids"].real != uid:
            continue
        try:
            token = proc.environ().get(RUN_TOKEN_ENV)
        except (psutil.Error, OSError):
            continue
        if token in wanted:
            found.append(proc)
    return found


def terminate(procs: list[psutil.Process], timeout: float = 5.0) -> list[int]:
    """SIGTERM each process's group (as supervisord's killasgroup would), then SIGKILL.

    psutil re-checks each process's create time before signalling it, so a
    pid reused in the meantime is never hit. Returns the pids that were ended.
    """
    ended: list[int] = []
    for proc in procs:
        _signal_group_or_process(proc, signal.SIGTERM)
        # A stopped (SIGSTOP, hung in a debugger) process acts on SIGTERM only once resumed.
        _signal_group_or_process(proc, signal.SIGCONT)
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    alive = [p for p in alive if is_live(p)]
    for proc in alive:
        _signal_group_or_process(proc, signal.SIGKILL)
    psutil.wait_procs(alive, timeout=timeout)
    for proc in procs:
        if not is_live(proc):
            ended.append(proc.pid)
    return ended


def wait_gone(ident: ProcessId, timeout: float) -> bool:
    """Poll until the process `ident` is gone (or a zombie); False at the deadline."""
    deadline = time.monotonic() + timeout
    while ident.is_alive():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def is_live(proc: psutil.Process) -> bool:
    """Whether `proc` (same pid and create time) still runs and is not a zombie."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _signal_group_or_process(proc: psutil.Process, sig: int) -> None:
    with contextlib.suppress(psutil.NoSuchProcess, ProcessLookupError, PermissionError):
        if not proc.is_running():
            return
        # supervisord makes every program the leader of its own process group.
        if os.getpgid(proc.pid) == proc.pid:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)


def _ancestors() -> list[psutil.Process]:
    try:
        return psutil.Process().parents()
    except psutil.Error:
        return []
