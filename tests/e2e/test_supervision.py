"""What supervisord and the sentinel do when programs crash, hang or cannot start."""

from __future__ import annotations

import configparser
import itertools
import json
import os
import re
import shutil
import signal
import time

import psutil
import pytest

from orchestrator.host.processes import ProcessId
from orchestrator.rpc.client import ClientError
from tests.support.badinput import Bystanders
from tests.support.orchestrator import Orchestrator
from tests.support.polling import wait_for

pytestmark = pytest.mark.e2e


def _answers(orch: Orchestrator) -> bool:
    try:
        return orch.ping(timeout=0.5) == "pong"
    except ClientError:
        return False


def test_kill_9_of_the_worker_is_restarted_by_supervisord(orch: Orchestrator) -> None:
    orch.start()
    old = orch.program("nua:rpc").pid
    os.kill(old, signal.SIGKILL)
    wait_for(
        lambda: (p := orch.program("nua:rpc")).state == "RUNNING" and p.pid != old,
        timeout=15,
        what="a new rpc worker",
    )
    wait_for(lambda: _answers(orch), timeout=10, what="the new worker to answer")
    assert not psutil.pid_exists(old) or psutil.Process(old).status() == psutil.STATUS_ZOMBIE


def _rendered(orch: Orchestrator, program: str, key: str) -> float:
    """A value of a program's section in the supervisord.conf that start rendered."""
    conf = configparser.ConfigParser(interpolation=None)
    conf.read(orch.locations.supervisor_conf)
    return float(conf[f"program:{program}"][key])


def test_a_hung_worker_is_restarted_by_the_sentinel(orch: Orchestrator) -> None:
    # The shipped stop timeout (10 s): the sentinel's SIGCONT, not a tiny stop
    # timeout, is what lets the stopped worker exit at once on SIGTERM.
    del orch.env["NUA_RPC_STOP_TIMEOUT"]
    orch.start()
    interval = float(orch.env["NUA_SENTINEL_INTERVAL"])
    ping_timeout = float(orch.env["NUA_SENTINEL_PING_TIMEOUT"])
    failures = int(orch.env["NUA_SENTINEL_FAILURES"])
    stop_timeout = _rendered(orch, "rpc", "stopwaitsecs")
    start_seconds = _rendered(orch, "rpc", "startsecs")
    # Detection (each failed ping costs its deadline plus an interval), then a
    # start that must last startsecs, and room for a loaded 2-core machine.
    bound = failures * (interval + ping_timeout) + start_seconds + 4.0
    assert bound < stop_timeout, "the bound must tell a SIGCONT from a SIGKILL after the timeout"
    hung = orch.wait_state("nua:rpc", "RUNNING").pid  # the sentinel watches a RUNNING worker
    stopped_at = time.monotonic()
    os.kill(hung, signal.SIGSTOP)
    try:
        # supervisord alone sees nothing: the process is still RUNNING.
        assert orch.program("nua:rpc").state == "RUNNING"
        wait_for(
            lambda: (p := orch.program("nua:rpc")).state == "RUNNING" and p.pid != hung,
            timeout=30,
            what="the sentinel to restart the hung worker",
        )
        wait_for(lambda: _answers(orch), timeout=10, what="the new worker to answer")
        took = time.monotonic() - stopped_at
    finally:
        if psutil.pid_exists(hung):
            os.kill(hung, signal.SIGCONT)
    log = orch.log("sentinel")
    assert f"did not answer system.ping ({failures}/{failures})" in log
    assert re.search(
        rf"restarting nua:rpc \(pid {hung}\): RUNNING but no answer to {failures} pings "
        r"in a row \(restart 1;",
        log,
    ), log
    assert "sent SIGCONT to nua:rpc" in log
    # The stopped worker exited on SIGTERM; supervisord did not have to kill it.
    assert "stopped: rpc (terminated by SIGKILL)" not in orch.log("supervisord")
    print(f"hung worker replaced and answering {took:.2f}s after SIGSTOP (bound {bound:g}s)")
    assert took < bound


def test_kill_9_of_supervisord_then_start_leaves_no_orphan_or_duplicate(
    orch: Orchestrator,
) -> None:
    orch.start()
    supervisord = ProcessId.of(orch.supervisord_pid())
    assert supervisord is not None
    programs = [ProcessId.of(p.pid) for p in orch.programs().values()]
    assert len(programs) == 2 and all(programs)
    # Unrelated processes of the same user, made to look as much like ours as
    # they can: one takes supervisord's pid in the manifest (a reused pid: its
    # create time differs), one reads the config and takes the pid file, one
    # carries another run's token.
    bystanders = Bystanders()
    try:
        os.kill(supervisord.pid, signal.SIGKILL)
        wait_for(lambda: not supervisord.is_alive(), timeout=10, what="supervisord to die")
        # Programs that can still act end with their supervisord (parent-death
        # SIGTERM); a hung one left behind is covered by the fault tests.
        wait_for(
            lambda: not any(p.is_alive() for p in programs if p),
            timeout=15,
            what="the programs to exit with supervisord",
        )
        where = orch.locations
        reused = bystanders.spawn()
        manifest = json.loads(where.run_manifest.read_text())
        manifest["supervisord_pid"] = reused.pid
        where.run_manifest.write_text(json.dumps(manifest))
        reader = bystanders.spawn(["tail", "-f", str(where.supervisor_conf)])
        where.supervisor_pidfile.write_text(f"{reader.pid}\n")
        other_run = bystanders.spawn(run_token="0" * 32)

        status = orch.status()
        assert status.returncode == 3, status.stdout
        assert "stale" in status.json()["leftovers"]
        bystanders.assert_untouched()

        started = orch.start()
        assert "started (pid" in started.stdout, started.stdout
        assert "cleaned what a previous run left" in started.stderr
        bystanders.assert_untouched(reused, reader, other_run)

        supervisords = [
            p for p in orch.processes() if "supervisor.supervisord" in " ".join(p.cmdline())
        ]
        assert len(supervisords) == 1
        workers = [p for p in orch.processes() if "orchestrator.rpc.worker" in p.cmdline()]
        sentinels = [p for p in orch.processes() if "orchestrator.sentinel" in p.cmdline()]
        assert len(workers) == 1 and len(sentinels) == 1
        assert orch.status().returncode == 0
        orch.stop()
        bystanders.assert_untouched(reused, reader, other_run)
    finally:
        bystanders.kill_all()


def test_a_program_left_fatal_is_rearmed_with_backoff(orch: Orchestrator) -> None:
    orch.env["NUA_PROGRAMS_START_RETRIES"] = "0"
    orch.start()
    # Make the worker unable to start: its ipc path becomes a directory.
    sock = orch.locations.rpc_socket
    sock.unlink()
    sock.mkdir()
    os.kill(orch.program("nua:rpc").pid, signal.SIGKILL)
    orch.wait_state("nua:rpc", "FATAL", timeout=20)
    wait_for(
        lambda: "re-arming nua:rpc, FATAL" in orch.log("sentinel"),
        timeout=20,
        what="a first re-arm",
    )
    assert re.search(r"nua:rpc is FATAL \(.*\); re-arming it in 1\.0s", orch.log("sentinel"))
    wait_for(lambda: "attempt 2" in orch.log("sentinel"), timeout=20, what="a second re-arm")
    shutil.rmtree(sock)
    orch.wait_state("nua:rpc", "RUNNING", timeout=30)
    wait_for(lambda: _answers(orch), timeout=10, what="the re-armed worker to answer")
    log = orch.log("sentinel")
    attempts = [int(n) for n in re.findall(r"re-arming nua:rpc, FATAL .*: attempt (\d+)", log)]
    assert attempts[:3] == list(range(1, min(len(attempts), 3) + 1))
    stamps = _rearm_times(log)
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    # Waits double (1 s, 2 s, 4 s cap): never a tight loop.
    assert all(gap >= 0.9 for gap in gaps), gaps
    assert orch.status().returncode == 0


def _rearm_times(log: str) -> list[float]:
    times = []
    for line in log.splitlines():
        if "re-arming nua:rpc, FATAL" in line:
            clock = line.split()[1]  # HH:MM:SS,mmm
            h, m, rest = clock.split(":")
            s, ms = rest.split(",")
            times.append(int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000)
    return times
