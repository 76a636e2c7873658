"""Bad input: `nua-orchestrator start` refuses in one line, runs nothing, keeps the database.

Every refusal is one `error:` line on stderr saying what is wrong and where, a
non-zero exit, no process left carrying the home, and a database (where one
exists) whose bytes did not change.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from orchestrator.host.instance_lock import InstanceLock
from orchestrator.settings.defaults import DEFAULTS_FILE
from tests.support.badinput import (
    assert_refused,
    db_fingerprint,
    dead_pid,
    error_line,
    scratch_dir,
    sha256,
    supervisords,
    write_private,
)
from tests.support.orchestrator import BIN, Orchestrator, Result, processes_with_home

pytestmark = pytest.mark.e2e

NOBODY = 65534
SETPRIV = "/usr/bin/setpriv"
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown, setpriv)")

# The name each location has in messages, by its folder under NUA_HOME.
LOCATION_NAMES = {"data": "data", "run": "runtime", "log": "logs", "config": "config"}


def seed(orch: Orchestrator) -> dict[str, str | None]:
    """Start and stop once so that a real database exists; return its fingerprint."""
    orch.start()
    orch.stop()
    assert orch.locations.database.exists()
    assert orch.processes() == []
    return db_fingerprint(orch.locations.database)


@pytest.fixture
def defaults_file() -> Iterator[Path]:
    """Where a test may write a settings file, outside the home."""
    with scratch_dir() as folder:
        yield folder / "nua_defaults_settings.toml"


def with_new_defaults(defaults_file: Path) -> dict[str, str]:
    """A newer release's defaults (one key more): a start would store it in the database."""
    shipped = DEFAULTS_FILE.read_text(encoding="utf-8")
    defaults_file.write_text(shipped + '\n[extras]\nnote = "new in this release"\n', "utf-8")
    return {"NUA_DEFAULTS_FILE": str(defaults_file)}


# -- 1. the settings file ---------------------------------------------------------------


@pytest.mark.parametrize("with_db", [False, True], ids=["fresh-home", "existing-db"])
def test_settings_file_that_is_not_toml(
    orch: Orchestrator, defaults_file: Path, with_db: bool
) -> None:
    before = seed(orch) if with_db else None
    defaults_file.write_text("[sentinel]\ninterval = 5.0\nfailures = = 3\n", encoding="utf-8")

    result = orch.run("start", env={"NUA_DEFAULTS_FILE": str(defaults_file)})

    assert_refused(orch, result, f"settings file {defaults_file}", "line 3", "key failures")
    if with_db:
        assert db_fingerprint(orch.locations.database) == before
    else:
        assert not orch.locations.database.exists()


def test_settings_file_with_an_array_value(orch: Orchestrator, defaults_file: Path) -> None:
    defaults_file.write_text("[sentinel]\ninterval = 5.0\nfailures = [1, 2]\n", encoding="utf-8")

    result = orch.run("start", env={"NUA_DEFAULTS_FILE": str(defaults_file)})

    assert_refused(
        orch,
        result,
        f"settings file {defaults_file}",
        "line 3",
        "key sentinel.failures",
        "a list is not a setting value",
    )
    assert not orch.locations.database.exists()


def test_settings_file_that_does_not_exist(orch: Orchestrator, defaults_file: Path) -> None:
    result = orch.run("start", env={"NUA_DEFAULTS_FILE": str(defaults_file)})

    assert_refused(orch, result, f"settings file {defaults_file} does not exist")
    assert not defaults_file.exists()
    assert not orch.locations.database.exists()


# -- 2. environment overrides -------------------------------------------------------------


def test_invalid_environment_override(orch: Orchestrator) -> None:
    before = seed(orch)

    result = orch.run("start", env={"NUA_SENTINEL_INTERVAL": "abc"})

    assert_refused(
        orch,
        result,
        "NUA_SENTINEL_INTERVAL='abc'",
        "expected a number",
        "setting sentinel.interval",
    )
    assert db_fingerprint(orch.locations.database) == before


def test_invalid_environment_override_with_new_defaults_pending(
    orch: Orchestrator, defaults_file: Path
) -> None:
    """A newer release adds a setting; a typo in an override must still change nothing."""
    before = seed(orch)

    result = orch.run(
        "start", env={**with_new_defaults(defaults_file), "NUA_SENTINEL_INTERVAL": "abc"}
    )

    assert_refused(orch, result, "NUA_SENTINEL_INTERVAL='abc'", "setting sentinel.interval")
    assert db_fingerprint(orch.locations.database) == before


# -- 3. locations that cannot be used -------------------------------------------------------


@needs_root
def test_home_that_cannot_be_created(orch: Orchestrator) -> None:
    """As nobody, under a root-owned 0755 folder: the home cannot be created."""
    with scratch_dir(mode=0o755) as parent:
        home = parent / "home"
        env = {**Orchestrator(home).env, "HOME": "/nonexistent"}
        done = subprocess.run(
            [
                SETPRIV,
                f"--reuid={NOBODY}",
                f"--regid={NOBODY}",
                "--clear-groups",
                str(BIN / "nua-orchestrator"),
                "start",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        result = Result(done.returncode, done.stdout, done.stderr)

        line = error_line(result)
        assert result.returncode == 1, line
        assert f"home location {home} cannot be created: permission denied" in line
        assert not home.exists()
        assert processes_with_home(home) == []
    assert orch.processes() == []


def test_data_location_that_is_a_regular_file(orch: Orchestrator) -> None:
    data = orch.locations.data
    write_private(data, b"not a folder\n")

    result = orch.run("start")

    assert_refused(orch, result, f"data location {data} is not a directory")
    assert data.read_bytes() == b"not a folder\n"


def test_location_that_is_not_writable(orch: Orchestrator) -> None:
    """Mode 0500: owner, mode and type are fine, but nothing can be created in it.

    Root writes whatever the mode bits say, so as root the home is handed to
    nobody and start runs as nobody; the check must hold for the user it runs as.
    """
    before = seed(orch)
    logs = orch.locations.logs
    logs.chmod(0o500)
    prefix: list[str] = []
    if os.geteuid() == 0:
        for path in [orch.home, *orch.home.rglob("*")]:
            os.chown(path, NOBODY, NOBODY, follow_symlinks=False)
        prefix = [SETPRIV, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    done = subprocess.run(
        [*prefix, str(BIN / "nua-orchestrator"), "start"],
        env={**orch.env, "HOME": "/nonexistent"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    result = Result(done.returncode, done.stdout, done.stderr)

    assert_refused(orch, result, f"logs location {logs} is not writable by you", "permissions")
    assert db_fingerprint(orch.locations.database) == before
    assert sorted(p.name for p in logs.iterdir()) == ["rpc.log", "sentinel.log", "supervisord.log"]


# -- 4. a location that is a symlink ---------------------------------------------------------


@pytest.mark.parametrize("folder", list(LOCATION_NAMES))
def test_location_that_is_a_symlink(orch: Orchestrator, folder: str) -> None:
    with scratch_dir() as target:
        link = orch.home / folder
        link.symlink_to(target, target_is_directory=True)

        result = orch.run("start")

        assert_refused(
            orch, result, f"{LOCATION_NAMES[folder]} location {link} is a symlink", "refusing"
        )
        assert link.is_symlink()
        assert list(target.iterdir()) == [], "the symlink was followed"


# -- 5. foreign and loose locations ------------------------------------------------------


@needs_root
def test_location_owned_by_another_user(orch: Orchestrator) -> None:
    before = seed(orch)
    logs = orch.locations.logs
    os.chown(logs, NOBODY, NOBODY)

    result = orch.run("start")

    assert_refused(orch, result, f"logs location {logs} is owned by uid {NOBODY}")
    assert db_fingerprint(orch.locations.database) == before


def test_location_writable_by_others(orch: Orchestrator) -> None:
    before = seed(orch)
    data = orch.locations.data
    data.chmod(0o777)

    result = orch.run("start")

    assert_refused(orch, result, f"data location {data} has mode 0777", "chmod 700")
    assert db_fingerprint(orch.locations.database) == before


# -- 6. the instance lock -------------------------------------------------------------


def test_stale_lock_is_taken_over(orch: Orchestrator) -> None:
    orch.locations.ensure()
    pid = dead_pid()
    assert not psutil.pid_exists(pid)
    write_private(orch.locations.lock_file, f"{pid}\n".encode())

    started = orch.start()

    assert "started (pid" in started.stdout
    assert len(supervisords(orch)) == 1
    orch.stop()
    assert orch.processes() == []


@pytest.mark.parametrize(
    "kind", [pytest.param("foreign-owner", marks=needs_root), "mode-0644", "symlink"]
)
def test_foreign_lock_is_refused(orch: Orchestrator, kind: str) -> None:
    orch.locations.ensure()
    lock = orch.locations.lock_file
    with scratch_dir() as elsewhere:
        target = elsewhere / "somebody-elses-file"
        write_private(target, b"12345\n")
        if kind == "foreign-owner":
            write_private(lock, b"")
            os.chown(lock, NOBODY, NOBODY)
            expected = f"foreign lock: {lock} belongs to uid {NOBODY}"
        elif kind == "mode-0644":
            write_private(lock, b"", mode=0o644)
            expected = f"foreign lock: {lock} has mode 0644"
        else:
            lock.symlink_to(target)
            expected = f"lock file {lock} is a symlink"

        result = orch.run("start")

        assert_refused(orch, result, expected)
        assert target.read_bytes() == b"12345\n"
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert not orch.locations.database.exists()
    assert not orch.locations.supervisor_conf.exists()


# -- 7. the database ----------------------------------------------------------------


def test_file_that_is_not_a_database(orch: Orchestrator) -> None:
    orch.locations.ensure()
    db = orch.locations.database
    write_private(db, b"NOT SQLITE" + os.urandom(8192))
    before = sha256(db)

    result = orch.run("start")

    assert_refused(orch, result, f"database {db} is not an SQLite database", "nothing was changed")
    assert sha256(db) == before
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert sorted(p.name for p in orch.locations.data.iterdir()) == ["nua.db"]


def test_garbled_database(orch: Orchestrator) -> None:
    seed(orch)
    db = orch.locations.database
    assert db.stat().st_size > 4096
    with open(db, "r+b") as fh:
        fh.seek(100)
        fh.write(os.urandom(4096 - 100))
    before = db_fingerprint(db)

    result = orch.run("start")

    assert_refused(orch, result, f"database {db}")
    assert db_fingerprint(db) == before


def test_database_newer_than_the_code(orch: Orchestrator) -> None:
    seed(orch)
    db = orch.locations.database
    conn = sqlite3.connect(db)
    try:
        with conn:
            conn.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    finally:
        conn.close()
    before = db_fingerprint(db)

    result = orch.run("start")

    assert_refused(
        orch,
        result,
        f"database {db}",
        "ffffffffffff",
        "newer than this nua-orchestrator",
        "nothing was changed",
    )
    assert db_fingerprint(db) == before


@pytest.mark.parametrize(
    ("url", "needles"),
    [
        ("not a url", ["NUA_DATABASE_URL='not a url'", "is not a database URL", "unset it"]),
        ("foo://x/nua", ["NUA_DATABASE_URL='foo://x/nua'", "Can't load plugin"]),
        (
            "postgresql://nua:s3cret@localhost/nua",
            ["NUA_DATABASE_URL='postgresql://nua:***@localhost/nua'", "driver is not installed"],
        ),
    ],
    ids=["unparsable", "unknown-dialect", "driver-missing"],
)
def test_database_url_that_cannot_be_used(orch: Orchestrator, url: str, needles: list[str]) -> None:
    result = orch.run("start", env={"NUA_DATABASE_URL": url})

    line = assert_refused(orch, result, *needles)
    assert "s3cret" not in line
    assert not orch.locations.database.exists()
    assert not orch.locations.supervisor_conf.exists()


# -- 8. supervisord -----------------------------------------------------------------


MISSING_SUPERVISORD = "/nonexistent/supervisord"


@pytest.mark.parametrize("with_db", [False, True], ids=["fresh-home", "existing-db"])
def test_missing_supervisord_executable(
    orch: Orchestrator, defaults_file: Path, with_db: bool
) -> None:
    """Refused before the database is created, or upgraded with the new defaults pending."""
    before = seed(orch) if with_db else None
    env = {**with_new_defaults(defaults_file), "NUA_SUPERVISOR_EXECUTABLE": MISSING_SUPERVISORD}

    result = orch.run("start", env=env)

    assert_refused(orch, result, repr(MISSING_SUPERVISORD), "setting supervisor.executable")
    assert not orch.locations.supervisor_pidfile.exists()
    if with_db:
        assert db_fingerprint(orch.locations.database) == before
    else:
        assert not orch.locations.database.exists()


def test_missing_supervisord_executable_stored_in_the_database(
    orch: Orchestrator, defaults_file: Path
) -> None:
    """The operator stored the bad value (`nua settings set`): read before anything is written."""
    seed(orch)
    db = orch.locations.database
    conn = sqlite3.connect(db)
    try:
        with conn:
            conn.execute(
                "UPDATE settings SET value = ? WHERE key = 'supervisor.executable'",
                (f'"{MISSING_SUPERVISORD}"',),
            )
    finally:
        conn.close()
    before = db_fingerprint(db)

    result = orch.run("start", env=with_new_defaults(defaults_file))

    assert_refused(orch, result, repr(MISSING_SUPERVISORD), "setting supervisor.executable")
    assert db_fingerprint(db) == before


@pytest.mark.parametrize("with_db", [False, True], ids=["fresh-home", "existing-db"])
def test_enabled_program_without_its_module(
    orch: Orchestrator, defaults_file: Path, with_db: bool
) -> None:
    """programs.cron = true in a release without orchestrator.cron: the render refuses it."""
    before = seed(orch) if with_db else None
    conf = orch.locations.supervisor_conf
    conf_before = conf.read_bytes() if with_db else None
    env = {**with_new_defaults(defaults_file), "NUA_PROGRAMS_CRON": "true"}

    result = orch.run("start", env=env)

    assert_refused(orch, result, "programs.cron", "no orchestrator.cron module")
    assert (conf.read_bytes() if conf.exists() else None) == conf_before
    if with_db:
        assert db_fingerprint(orch.locations.database) == before
    else:
        assert not orch.locations.database.exists()


# -- 9. a second orchestrator on the same home --------------------------------------------


def test_start_while_another_command_holds_the_lock(orch: Orchestrator) -> None:
    orch.locations.ensure()
    lock = orch.locations.lock_file
    with InstanceLock(lock):
        result = orch.run("start")

    assert_refused(orch, result, str(lock), f"pid {os.getpid()}", "holds the lock", code=5)
    assert not orch.locations.database.exists()
    assert not orch.locations.supervisor_conf.exists()


def test_two_concurrent_starts_run_one_supervisord(orch: Orchestrator) -> None:
    procs: list[subprocess.Popen[str]] = []
    results: list[Result] = []
    try:
        for _ in range(2):
            procs.append(
                subprocess.Popen(
                    [str(BIN / "nua-orchestrator"), "start"],
                    env=orch.env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        for proc in procs:
            out, err = proc.communicate(timeout=90)
            results.append(Result(proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)

    pid = orch.supervisord_pid()
    winners = [r for r in results if r.returncode == 0 and r.stdout.startswith("started (pid")]
    assert len(winners) == 1, results
    loser = results[1] if results[0] is winners[0] else results[0]
    if loser.returncode == 0:
        assert loser.stdout.strip() == f"already running (pid {pid})", loser
    else:
        line = error_line(loser)
        assert loser.returncode == 5, line
        assert "holds the lock" in line and str(orch.locations.lock_file) in line

    running = supervisords(orch)
    assert [p.pid for p in running] == [pid]
    for name in ("nua:rpc", "nua:sentinel"):
        orch.wait_state(name, "RUNNING", timeout=10)
    status = orch.supervisorctl("status")
    assert status.returncode == 0, status.stdout + status.stderr
    states = [tuple(line.split()[:2]) for line in status.stdout.splitlines() if line.strip()]
    assert sorted(states) == [("nua:rpc", "RUNNING"), ("nua:sentinel", "RUNNING")]
    commands = [" ".join(p.cmdline()) for p in orch.processes()]
    assert sum("orchestrator.rpc.worker" in c for c in commands) == 1, commands
    assert sum("orchestrator.sentinel" in c for c in commands) == 1, commands

    orch.stop()
    assert orch.processes() == []


# -- 10. a worker that cannot start ---------------------------------------------------


def test_worker_that_cannot_bind(orch: Orchestrator) -> None:
    orch.locations.ensure()
    orch.locations.rpc_socket.mkdir(mode=0o700)

    result = orch.run("start", env={"NUA_SUPERVISOR_START_TIMEOUT": "8"}, timeout=90)

    output = f"stdout={result.stdout!r} stderr={result.stderr!r}"
    assert result.returncode == 1, output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    assert "stopped everything" in errors[0], output
    assert str(orch.locations.logs / "rpc.log") in errors[0], output
    assert "cannot bind" in result.stderr, output
    assert orch.processes() == []
    assert not orch.locations.supervisor_pidfile.exists()
