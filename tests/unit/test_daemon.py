"""orchestrator/supervisor/daemon.py, with real processes: what is ours, what a crash left.

No supervisord runs here. The runtime location is planted with what a
crashed run (or a reused pid) leaves behind: a pid file or a manifest naming a
live process that is not our supervisord, and processes carrying another
run's token. `running`, `leftovers`, `clean`, `stop` and `status` must not take
them for ours, and no bystander may be signalled.
"""

from __future__ import annotations

import secrets
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.errors import ExitCode
from orchestrator.host.locations import Locations, resolve
from orchestrator.host.processes import ProcessId
from orchestrator.services import lifecycle
from orchestrator.services.status import collect
from orchestrator.supervisor.daemon import RunManifest, Supervisord, is_supervisord_of
from tests.support.badinput import Bystanders

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def bystanders() -> Iterator[Bystanders]:
    found = Bystanders()
    yield found
    found.kill_all()


@pytest.fixture
def where(short_home: Path) -> Locations:
    locations = resolve(short_home, environ={})
    locations.ensure()
    return locations


def _token() -> str:
    return secrets.token_hex(16)


def _plant_pidfile(where: Locations, pid: int) -> None:
    where.supervisor_pidfile.write_text(f"{pid}\n")


def _plant_manifest(
    where: Locations,
    token: str,
    pid: int | None = None,
    create_time: float | None = None,
    earlier: list[str] | None = None,
) -> None:
    RunManifest(
        token=token,
        conf=str(where.supervisor_conf),
        started_at=time.time(),
        supervisord_pid=pid,
        supervisord_create_time=create_time,
        earlier_tokens=earlier or [],
    ).save(where.run_manifest)


def _identity(pid: int) -> ProcessId:
    ident = ProcessId.of(pid)
    assert ident is not None
    return ident


# -- recognising our supervisord -------------------------------------------------------


def test_nothing_planted_nothing_running(where: Locations) -> None:
    daemon = Supervisord(where)
    assert daemon.running() is None
    assert not daemon.leftovers()


def test_a_live_unrelated_pid_in_the_pid_file_is_not_ours(
    where: Locations, bystanders: Bystanders
) -> None:
    bystander = bystanders.spawn()
    _plant_pidfile(where, bystander.pid)
    assert Supervisord(where).running() is None


@pytest.mark.parametrize(
    "argv",
    [
        ["tail", "-f", "{conf}"],  # names the file, and "supervisord" is in its name
        ["bash", "-c", 'exec -a supervisord tail -f "$0"', "{conf}"],  # named supervisord
    ],
    ids=["tail-of-the-conf", "named-supervisord"],
)
def test_a_process_naming_our_config_is_not_our_supervisord(
    where: Locations, bystanders: Bystanders, argv: list[str]
) -> None:
    """After kill -9 the pid file stays; its pid may come back as `tail -f supervisord.conf`."""
    where.supervisor_conf.write_text("; rendered\n")
    impostor = bystanders.spawn([a.format(conf=where.supervisor_conf) for a in argv])
    _plant_pidfile(where, impostor.pid)

    assert Supervisord(where).running() is None
    stopped = lifecycle.stop(where)
    assert not stopped.was_running
    assert stopped.cleaned.files == [where.supervisor_pidfile]
    bystanders.assert_untouched(impostor)


def test_a_manifest_naming_a_live_pid_with_another_create_time_is_not_ours(
    where: Locations, bystanders: Bystanders
) -> None:
    """The pid was reused: same number, different process."""
    bystander = bystanders.spawn()
    real = _identity(bystander.pid)
    _plant_manifest(where, _token(), pid=bystander.pid, create_time=real.create_time - 50.0)
    _plant_pidfile(where, bystander.pid)

    assert Supervisord(where).running() is None
    report = collect(where, timeout=1.0)
    assert not report.running
    assert report.exit_code == ExitCode.NOT_RUNNING
    assert "supervisord.pid" in (report.leftovers or "")
    stopped = lifecycle.stop(where)
    assert not stopped.was_running and stopped.pid is None
    assert not where.run_manifest.exists()
    bystanders.assert_untouched(bystander)


def test_a_manifest_is_matched_by_pid_and_create_time(
    where: Locations, bystanders: Bystanders
) -> None:
    """The manifest's identity is what makes a process ours (pid alone never does)."""
    proc = bystanders.spawn()
    ident = _identity(proc.pid)
    _plant_manifest(where, _token(), pid=ident.pid, create_time=ident.create_time)
    assert Supervisord(where).running() == ident


@pytest.mark.parametrize(
    ("cmdline", "ours"),
    [
        ([sys.executable, "-m", "supervisor.supervisord", "-c", "{conf}"], True),
        (["/usr/bin/python3", "/usr/bin/supervisord", "-c", "{conf}"], True),
        (["/usr/local/bin/supervisord3.11", "-c", "{conf}"], True),
        ([sys.executable, "-m", "supervisor.supervisord", "-c", "/elsewhere/s.conf"], False),
        (["tail", "-f", "{conf}"], False),
        (["less", "{conf}"], False),
        (["vim", "-c", "{conf}", "supervisord"], False),
        (["supervisord", "{conf}"], False),
        ([], False),
    ],
)
def test_is_supervisord_of(where: Locations, cmdline: list[str], ours: bool) -> None:
    conf = where.supervisor_conf
    assert is_supervisord_of([a.format(conf=conf) for a in cmdline], conf) is ours


# -- leftovers and clean -------------------------------------------------------------


def test_a_process_carrying_another_run_token_is_never_an_orphan(
    where: Locations, bystanders: Bystanders
) -> None:
    ours = _token()
    orphan = bystanders.spawn(run_token=ours)
    foreign = bystanders.spawn(run_token=_token())
    plain = bystanders.spawn()
    _plant_manifest(where, ours)
    _plant_pidfile(where, plain.pid)

    daemon = Supervisord(where)
    found = daemon.leftovers()
    assert [p.pid for p in found.orphans] == [orphan.pid]
    assert found.files == [where.supervisor_pidfile]

    cleaned = daemon.clean(timeout=5)

    assert [p.pid for p in cleaned.orphans] == [orphan.pid]
    assert orphan.poll() is not None or not ProcessId.of(orphan.pid)
    bystanders.assert_untouched(foreign, plain)
    assert not where.supervisor_pidfile.exists()
    assert not where.run_manifest.exists()


def test_tokens_of_the_config_and_of_earlier_runs_are_ours(
    where: Locations, bystanders: Bystanders
) -> None:
    """A crash between writing the config and the manifest, or two crashes in a row."""
    in_conf, earlier, current = _token(), _token(), _token()
    where.supervisor_conf.write_text(f'environment = NUA_RUN_TOKEN="{in_conf}"\n')
    _plant_manifest(where, current, earlier=[earlier])
    of_conf = bystanders.spawn(run_token=in_conf)
    of_earlier = bystanders.spawn(run_token=earlier)
    foreign = bystanders.spawn(run_token=_token())

    orphans = {p.pid for p in Supervisord(where).leftovers().orphans}

    assert orphans == {of_conf.pid, of_earlier.pid}
    bystanders.assert_untouched(foreign)


def test_stop_ends_the_orphans_of_a_dead_run_and_nothing_else(
    where: Locations, bystanders: Bystanders
) -> None:
    ours = _token()
    orphan = bystanders.spawn(run_token=ours, new_session=True)
    foreign = bystanders.spawn(run_token=_token())
    _plant_manifest(where, ours, pid=foreign.pid, create_time=0.0)

    stopped = lifecycle.stop(where)

    assert not stopped.was_running
    assert [p.pid for p in stopped.cleaned.orphans] == [orphan.pid]
    assert ProcessId.of(orphan.pid) is None
    bystanders.assert_untouched(foreign)


def test_only_what_supervisord_creates_is_removed(where: Locations) -> None:
    """A folder at a socket's path is not ours to delete: the program that needs it says why."""
    where.rpc_socket.mkdir(mode=0o700)
    _plant_pidfile(where, 999_999_999)
    cleaned = Supervisord(where).clean()
    assert cleaned.files == [where.supervisor_pidfile]
    assert where.rpc_socket.is_dir()


# -- the manifest --------------------------------------------------------------------


def test_manifest_round_trips_privately(where: Locations) -> None:
    _plant_manifest(where, "ab" * 16, pid=42, create_time=1.5, earlier=["cd" * 16])
    assert stat.S_IMODE(where.run_manifest.stat().st_mode) == 0o600
    loaded = RunManifest.load(where.run_manifest)
    assert loaded is not None
    assert loaded.supervisord == ProcessId(42, 1.5)
    assert loaded.earlier_tokens == ["cd" * 16]


@pytest.mark.parametrize("content", ["", "{not json", '{"token": "x", "surprise": 1}', "[]"])
def test_a_garbled_manifest_is_ignored(where: Locations, content: str) -> None:
    where.run_manifest.write_text(content)
    assert RunManifest.load(where.run_manifest) is None
    assert Supervisord(where).running() is None
