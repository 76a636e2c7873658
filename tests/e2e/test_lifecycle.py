"""start, status, stop, restart against a real supervisord."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.db.schema import head_revision
from orchestrator.host.instance_lock import InstanceLock
from orchestrator.host.processes import ProcessId
from tests.support.lock_race import run_with_rival_start
from tests.support.orchestrator import BIN, Orchestrator
from tests.support.polling import wait_for

pytestmark = pytest.mark.e2e

# The newest migration: start brings every database to it.
HEAD = head_revision()


def test_start_status_supervisorctl_stop_status(orch: Orchestrator) -> None:
    started = orch.start()
    assert "started (pid" in started.stdout
    status = orch.status()
    assert status.returncode == 0, status.stdout + status.stderr
    report = status.json()
    assert report["health"] == "healthy"
    # start returns when the worker answers: a program may still be on its first
    # start (supervisord's startsecs), which is healthy, and is RUNNING soon after.
    states = {p["name"]: p["state"] for p in report["programs"]}
    assert set(states) == {"nua:rpc", "nua:sentinel"}
    assert set(states.values()) <= {"RUNNING", "STARTING"}, states
    for name in states:
        orch.wait_state(name, "RUNNING", timeout=10)
    assert report["worker"]["schema_revision"] == HEAD
    assert report["worker"]["endpoint"] == orch.locations.rpc_endpoint
    assert report["worker"]["database"].endswith(str(orch.locations.database))
    assert report["locations"]["data"] == str(orch.locations.data)

    human = orch.supervisorctl("status")
    assert human.returncode == 0, human.stdout + human.stderr
    lines = {line.split()[0]: line.split()[1] for line in human.stdout.splitlines()}
    assert lines == {"nua:rpc": "RUNNING", "nua:sentinel": "RUNNING"}

    supervisord = ProcessId.of(orch.supervisord_pid())
    assert supervisord is not None
    stopped = orch.stop()
    assert f"stopped (pid {supervisord.pid})" in stopped.stdout
    assert not supervisord.is_alive()
    assert orch.processes() == []
    for leftover in ("supervisor.sock", "rpc.sock", "supervisord.pid"):
        assert not (orch.locations.runtime / leftover).exists(), leftover

    after = orch.status()
    assert after.returncode == 3
    assert after.json()["health"] == "not running"
    assert after.json()["leftovers"] is None


def test_human_status_names_programs_and_locations(orch: Orchestrator) -> None:
    orch.start()
    orch.wait_state("nua:rpc", "RUNNING", timeout=10)
    out = orch.run("status")
    assert out.returncode == 0
    assert "nua-orchestrator: healthy" in out.stdout
    assert "nua:rpc" in out.stdout and "RUNNING" in out.stdout
    assert str(orch.locations.database) in out.stdout
    assert orch.locations.rpc_endpoint in out.stdout


def test_start_twice_says_already_running(orch: Orchestrator) -> None:
    orch.start()
    pid = orch.supervisord_pid()
    again = orch.start()
    assert again.stdout.strip() == f"already running (pid {pid})"
    assert orch.supervisord_pid() == pid
    supervisords = [
        p for p in orch.processes() if "supervisor.supervisord" in " ".join(p.cmdline())
    ]
    assert len(supervisords) == 1


def test_stop_twice_and_stop_when_never_started(orch: Orchestrator) -> None:
    never = orch.stop()
    assert never.stdout.strip() == "not running"
    orch.start()
    orch.stop()
    again = orch.stop()
    assert again.stdout.strip() == "not running"


def test_restart_renders_a_fresh_config_and_replaces_every_process(orch: Orchestrator) -> None:
    orch.start()
    before = {name: p.pid for name, p in orch.programs().items()}
    old_supervisord = ProcessId.of(orch.supervisord_pid())
    conf = orch.locations.supervisor_conf
    conf.write_text(conf.read_text() + "\n; edited by hand\n")
    result = orch.run("restart", env={"NUA_SENTINEL_FAILURES": "7"})
    assert result.returncode == 0, result.stderr
    assert "edited by hand" not in conf.read_text()
    assert "--failures 7" in conf.read_text()
    assert old_supervisord is not None and not old_supervisord.is_alive()
    after = {name: p.pid for name, p in orch.programs().items()}
    assert set(after) == set(before)
    assert not set(after.values()) & set(before.values())
    assert orch.ping() == "pong"


def test_restart_holds_the_lock_so_nothing_starts_in_between(
    orch: Orchestrator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A start run the moment restart releases the instance lock finds restart's supervisord.

    restart runs in this process so that the first release of the lock can
    launch the rival start. Released between stop and start, the rival would
    start the orchestrator and restart would report it as its own.
    """
    orch.start()
    old = orch.supervisord_pid()

    code, output, after = run_with_rival_start(
        orch, monkeypatch, "restart", env={"NUA_SENTINEL_FAILURES": "7"}
    )

    assert code == 0, output
    new = orch.supervisord_pid()
    assert new != old
    assert output.startswith(f"stopped (pid {old}); started (pid {new}) in "), output
    # The running supervisord is restart's: it rendered the config with its settings.
    assert "--failures 7" in orch.locations.supervisor_conf.read_text()
    assert after.returncode == 0, after.stderr
    assert after.stdout.strip() == f"already running (pid {new})"
    assert len([p for p in orch.processes() if "supervisor.supervisord" in p.cmdline()]) == 1


@pytest.mark.parametrize(
    ("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "sigterm"]
)
def test_start_interrupted_while_waiting_stops_what_it_started(
    orch: Orchestrator, sig: signal.Signals, code: int
) -> None:
    orch.locations.ensure()
    # The worker cannot bind its socket: supervisord keeps retrying it, start keeps waiting.
    orch.locations.rpc_socket.mkdir(mode=0o700)
    env = {**orch.env, "NUA_PROGRAMS_START_RETRIES": "100", "NUA_SUPERVISOR_START_TIMEOUT": "60"}
    proc = subprocess.Popen(
        [str(BIN / "nua-orchestrator"), "start"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: "cannot bind" in orch.log("rpc"), timeout=30, what="a first failed worker")
        assert proc.poll() is None, "start did not wait"
        supervisord = ProcessId.of(orch.supervisord_pid())
        assert supervisord is not None
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)

    assert proc.returncode == code, f"stdout={out!r} stderr={err!r}"
    assert out == ""
    assert err.splitlines() == [
        f"interrupted: start was interrupted by {sig.name}; "
        "stopped supervisord and every program it had started"
    ]
    assert not supervisord.is_alive()
    assert orch.processes() == []
    for leftover in ("supervisor.sock", "supervisord.pid", "run.json"):
        assert not (orch.locations.runtime / leftover).exists(), leftover


def test_locations_and_database_are_private(orch: Orchestrator) -> None:
    orch.start()
    where = orch.locations
    for path in (where.home, *where.directories().values()):
        assert path is not None
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    for path in (
        where.database,
        where.supervisor_conf,
        where.lock_file,
        where.run_manifest,
        where.logs / "supervisord.log",
        where.logs / "rpc.log",
        where.logs / "sentinel.log",
    ):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for sock in (where.supervisor_socket, where.rpc_socket):
        mode = sock.stat().st_mode
        assert stat.S_ISSOCK(mode)
        assert stat.S_IMODE(mode) & 0o077 == 0, sock
    conf = where.supervisor_conf.read_text()
    assert "umask = 077" in conf
    assert "chmod = 0700" in conf
    assert "stopasgroup = true" in conf and "killasgroup = true" in conf


def test_nua_ping_answers_while_running_and_exits_3_when_not(orch: Orchestrator) -> None:
    orch.start()
    ok = orch.run("ping", cli="nua")
    assert ok.returncode == 0
    assert ok.stdout.startswith("pong from ipc://")
    orch.stop()
    down = orch.run("ping", "--timeout", "0.5", cli="nua")
    assert down.returncode == 3
    assert orch.locations.rpc_endpoint in down.stderr
    assert "not running" in down.stderr


def test_status_is_degraded_and_names_the_stopped_program(orch: Orchestrator) -> None:
    orch.start()
    assert orch.supervisorctl("stop", "nua:sentinel").returncode == 0
    status = orch.status()
    assert status.returncode == 1
    assert status.json()["health"] == "degraded"
    assert "nua:sentinel is STOPPED" in status.json()["problems"]
    human = orch.run("status")
    assert human.returncode == 1
    assert "problem: nua:sentinel is STOPPED" in human.stdout


def test_status_names_a_worker_that_does_not_answer(orch: Orchestrator) -> None:
    # The sentinel would restart a hung worker within a second: keep it patient.
    orch.env["NUA_SENTINEL_FAILURES"] = "1000"
    orch.start()
    hung = orch.wait_state("nua:rpc", "RUNNING").pid
    os.kill(hung, signal.SIGSTOP)
    try:
        status = orch.status()
        human = orch.run("status")
    finally:
        os.kill(hung, signal.SIGCONT)
    assert status.returncode == 1, status.stdout
    report = status.json()
    assert report["health"] == "degraded"
    assert report["worker"] is None
    [problem] = report["problems"]
    assert f"the rpc worker nua:rpc (pid {hung}) does not answer on ipc://" in problem
    assert f"kill -CONT {hung}" in problem
    assert human.returncode == 1
    assert f"problem: the rpc worker nua:rpc (pid {hung}) does not answer" in human.stdout


def test_status_names_a_program_left_fatal(orch: Orchestrator) -> None:
    # No retries, and a sentinel that waits long before it re-arms a FATAL program.
    orch.env.update(
        NUA_PROGRAMS_START_RETRIES="0",
        NUA_SENTINEL_BACKOFF_INITIAL="600",
        NUA_SENTINEL_BACKOFF_MAX="600",
    )
    orch.start()
    sock = orch.locations.rpc_socket
    sock.unlink()
    sock.mkdir()  # the worker cannot bind: it exits at once, supervisord gives up
    os.kill(orch.wait_state("nua:rpc", "RUNNING").pid, signal.SIGKILL)
    orch.wait_state("nua:rpc", "FATAL", timeout=20)

    status = orch.status()

    assert status.returncode == 1, status.stdout
    report = status.json()
    assert report["health"] == "degraded"
    assert "nua:rpc is FATAL" in report["problems"]
    assert any("the rpc worker nua:rpc does not answer" in p for p in report["problems"])
    sock.rmdir()


def test_status_returns_when_supervisord_does_not_answer(orch: Orchestrator) -> None:
    orch.env["NUA_SUPERVISOR_STOP_TIMEOUT"] = "5"
    orch.start()
    pid = orch.supervisord_pid()
    os.kill(pid, signal.SIGSTOP)
    try:
        began = time.monotonic()
        status = orch.status()
        took = time.monotonic() - began

        assert took < 15, f"status took {took:.1f}s with supervisord stopped"
        assert status.returncode == 1, status.stdout
        report = status.json()
        assert report["health"] == "degraded"
        assert report["supervisord_pid"] == pid
        [problem] = report["problems"]
        socket = orch.locations.supervisor_socket
        assert f"supervisord (pid {pid}) does not answer on {socket}" in problem
        assert f"kill -CONT {pid}" in problem

        # stop resumes it along with SIGTERM: a graceful end, not SIGKILL and orphans.
        stopped = orch.stop()
        assert "sent SIGTERM" in stopped.stderr
        assert "SIGKILL" not in stopped.stderr, stopped.stderr
        assert orch.processes() == []
    finally:
        if ProcessId.of(pid) is not None:
            os.kill(pid, signal.SIGCONT)


def test_a_running_supervisord_is_recognised_even_without_its_manifest(
    orch: Orchestrator,
) -> None:
    orch.start()
    pid = orch.supervisord_pid()
    orch.locations.run_manifest.unlink()
    assert orch.start().stdout.strip() == f"already running (pid {pid})"
    orch.stop()
    assert orch.processes() == []


def test_alembic_from_the_repository_root_uses_the_same_database(orch: Orchestrator) -> None:
    upgraded = _alembic(orch, "upgrade", "head")
    assert upgraded.returncode == 0, upgraded.stderr
    assert stat.S_IMODE(orch.locations.database.stat().st_mode) == 0o600
    assert _alembic(orch, "current").stdout.strip() == f"{HEAD} (head)"
    orch.start()
    status = orch.status().json()
    assert status["worker"]["schema_revision"] == HEAD
    checked = _alembic(orch, "check")
    # The instance lock is free while the orchestrator runs: only commands hold it.
    assert checked.returncode == 0, checked.stderr
    assert "No new upgrade operations detected" in checked.stdout + checked.stderr


def _failed_line(done: subprocess.CompletedProcess[str]) -> str:
    """Alembic's one `FAILED: ...` line for a refused command; no traceback."""
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "Traceback" not in output, output
    failed = [line for line in output.splitlines() if line.startswith("FAILED:")]
    assert len(failed) == 1, output
    return failed[0]


@pytest.mark.parametrize("command", [["current"], ["check"], ["current", "--verbose"]])
def test_alembic_reading_a_home_without_a_database_creates_nothing(
    orch: Orchestrator, command: list[str]
) -> None:
    line = _failed_line(_alembic(orch, *command))
    assert f"no database at {orch.locations.database}" in line
    assert "nua-orchestrator start" in line
    assert list(orch.home.iterdir()) == [], "a read-only command created files"


def test_alembic_errors_are_one_line(orch: Orchestrator) -> None:
    assert _alembic(orch, "upgrade", "head").returncode == 0
    with InstanceLock(orch.locations.lock_file):
        busy = _failed_line(_alembic(orch, "upgrade", "head"))
    assert f"pid {os.getpid()}" in busy and "holds the lock" in busy
    db = orch.locations.database
    conn = sqlite3.connect(db)
    try:
        with conn:
            conn.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    finally:
        conn.close()
    for command in (["current"], ["upgrade", "head"], ["check"]):
        newer = _failed_line(_alembic(orch, *command))
        assert f"database {db} is at schema revision ffffffffffff" in newer, command
        assert "newer than this nua-orchestrator" in newer


def _alembic(orch: Orchestrator, *args: str) -> subprocess.CompletedProcess[str]:
    """Run alembic from the repository root, as a person would, on the test's home."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "alembic"), *args],
        cwd=Path(__file__).resolve().parents[2],
        env=orch.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_start_with_nothing_to_upgrade_loads_neither_sqlalchemy_nor_alembic(
    orch: Orchestrator,
) -> None:
    # The database at head and its settings merged: start reads them with sqlite3
    # (a quarter of a second of imports saved); the first start upgrades as usual.
    first = orch.run("start", env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert first.returncode == 0, first.stderr
    assert "sqlalchemy" in first.stderr and "alembic" in first.stderr
    orch.stop()
    second = orch.run("start", env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert second.returncode == 0, second.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in second.stderr.splitlines()]
    assert not [m for m in imported if m.split(".")[0] in ("sqlalchemy", "alembic")]
    assert orch.status().returncode == 0
    assert orch.ping() == "pong"
