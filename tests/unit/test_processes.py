"""orchestrator/host/processes.py, with real processes: ours are found and ended, others never.

Every "unrelated" process here is a real `sleep` of the same user, started by
the test and killed by pid at teardown; each test asserts it is still running.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
from collections.abc import Iterator

import psutil
import pytest

from orchestrator.host.processes import (
    ProcessId,
    find_by_run_tokens,
    is_live,
    terminate,
    wait_gone,
)
from tests.support.badinput import Bystanders, dead_pid
from tests.support.polling import wait_for

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def bystanders() -> Iterator[Bystanders]:
    found = Bystanders()
    yield found
    found.kill_all()


def _token() -> str:
    return secrets.token_hex(16)


# -- ProcessId: pid plus create time ---------------------------------------------------


def test_identity_of_a_live_process(bystanders: Bystanders) -> None:
    proc = bystanders.spawn()
    ident = ProcessId.of(proc.pid)
    assert ident is not None
    assert ident.pid == proc.pid
    assert ident.create_time == round(psutil.Process(proc.pid).create_time(), 2)
    assert ident.is_alive()
    found = ident.process()
    assert found is not None and found.pid == proc.pid


def test_no_identity_for_a_dead_pid() -> None:
    assert ProcessId.of(dead_pid()) is None


def test_no_identity_for_a_zombie() -> None:
    proc = subprocess.Popen(["true"])
    try:
        wait_for(
            lambda: psutil.Process(proc.pid).status() == psutil.STATUS_ZOMBIE,
            timeout=10,
            what="the child to exit (unreaped)",
        )
        assert ProcessId.of(proc.pid) is None
    finally:
        proc.wait(timeout=10)


def test_a_live_pid_with_another_create_time_is_not_the_same_process(
    bystanders: Bystanders,
) -> None:
    """What pid reuse looks like: the pid is alive, but it is someone else."""
    proc = bystanders.spawn()
    real = ProcessId.of(proc.pid)
    assert real is not None
    impostor = ProcessId(proc.pid, real.create_time - 100.0)
    assert impostor.process() is None
    assert not impostor.is_alive()
    assert wait_gone(impostor, timeout=0.1)
    bystanders.assert_untouched(proc)


def test_wait_gone_waits_for_the_end_and_gives_up_at_the_deadline(
    bystanders: Bystanders,
) -> None:
    proc = bystanders.spawn()
    ident = ProcessId.of(proc.pid)
    assert ident is not None
    assert not wait_gone(ident, timeout=0.2)
    proc.kill()
    proc.wait(timeout=10)
    assert wait_gone(ident, timeout=5)


# -- find_by_run_tokens -------------------------------------------------------------


def test_only_processes_carrying_one_of_the_tokens_are_found(bystanders: Bystanders) -> None:
    ours, earlier, other = _token(), _token(), _token()
    mine = bystanders.spawn(run_token=ours)
    older = bystanders.spawn(run_token=earlier)
    foreign = bystanders.spawn(run_token=other)
    plain = bystanders.spawn()

    found = {p.pid for p in find_by_run_tokens({ours, earlier})}

    assert mine.pid in found and older.pid in found
    assert foreign.pid not in found and plain.pid not in found


def test_no_tokens_find_nothing(bystanders: Bystanders) -> None:
    bystanders.spawn(run_token="")
    assert find_by_run_tokens([]) == []
    assert find_by_run_tokens([""]) == []


def test_the_caller_and_its_ancestors_are_never_found(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = _token()
    monkeypatch.setenv("NUA_RUN_TOKEN", token)
    assert os.getpid() not in {p.pid for p in find_by_run_tokens({token})}


# -- terminate ----------------------------------------------------------------------


def test_terminate_ends_ours_and_leaves_the_others_running(bystanders: Bystanders) -> None:
    ours, other = _token(), _token()
    mine = [bystanders.spawn(run_token=ours) for _ in range(2)]
    foreign = bystanders.spawn(run_token=other)
    plain = bystanders.spawn()

    ended = terminate(find_by_run_tokens({ours}), timeout=5)

    assert sorted(ended) == sorted(p.pid for p in mine)
    # terminate reaps them (they are our children): gone is all Popen can see.
    assert all(not psutil.pid_exists(p.pid) for p in mine)
    bystanders.assert_untouched(foreign, plain)


def test_terminate_ends_a_stopped_process(bystanders: Bystanders) -> None:
    """SIGTERM waits for a SIGSTOPped process to resume: terminate sends SIGCONT too."""
    proc = bystanders.spawn(run_token=_token())
    os.kill(proc.pid, signal.SIGSTOP)
    wait_for(
        lambda: psutil.Process(proc.pid).status() == psutil.STATUS_STOPPED,
        timeout=5,
        what="the process to stop",
    )
    ended = terminate([psutil.Process(proc.pid)], timeout=5)
    assert ended == [proc.pid]
    assert not psutil.pid_exists(proc.pid)


def test_terminate_kills_what_ignores_sigterm(bystanders: Bystanders) -> None:
    proc = bystanders.spawn(["sh", "-c", "trap '' TERM; while :; do sleep 0.05; done"])
    target = psutil.Process(proc.pid)
    # Wait until the shell has set its trap: it has started its first sleep.
    wait_for(target.children, timeout=5, what="the shell's loop to run")

    ended = terminate([target], timeout=0.5)

    assert ended == [proc.pid]
    assert not psutil.pid_exists(proc.pid)


def test_terminate_ends_a_group_leader_with_its_children(bystanders: Bystanders) -> None:
    """As supervisord's killasgroup: a program's children go with it."""
    leader = bystanders.spawn(["sh", "-c", "sleep 120 & wait"], new_session=True)
    children = wait_for(
        lambda: psutil.Process(leader.pid).children(), timeout=5, what="the child sleep"
    )
    bystander = bystanders.spawn()

    terminate([psutil.Process(leader.pid)], timeout=5)

    assert not psutil.pid_exists(leader.pid)
    # The children got the same SIGTERM; they need not be gone before their leader is.
    wait_for(lambda: not any(is_live(child) for child in children), timeout=5, what="the children")
    bystanders.assert_untouched(bystander)


def test_terminate_does_not_signal_a_process_that_is_gone(bystanders: Bystanders) -> None:
    proc = bystanders.spawn()
    handle = psutil.Process(proc.pid)
    proc.kill()
    proc.wait(timeout=5)
    assert terminate([handle], timeout=0.5) == [proc.pid]
    assert not is_live(handle)
