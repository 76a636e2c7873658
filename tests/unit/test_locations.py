"""orchestrator/host/locations.py: resolving and checking where everything lives."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.errors import LocationError
from orchestrator.host import locations
from orchestrator.host.locations import UNIX_PATH_MAX, Locations, resolve

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another uid needs root")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


# -- resolve ---------------------------------------------------------------------


def test_home_option_puts_everything_under_one_folder(tmp_path: Path) -> None:
    where = resolve(tmp_path / "h", environ={})
    assert where == Locations(
        data=tmp_path / "h" / "data",
        runtime=tmp_path / "h" / "run",
        logs=tmp_path / "h" / "log",
        config=tmp_path / "h" / "config",
        home=tmp_path / "h",
    )
    assert where.database == tmp_path / "h" / "data" / "nua.db"
    assert where.lock_file == tmp_path / "h" / "run" / "orchestrator.lock"
    assert where.rpc_endpoint == f"ipc://{tmp_path / 'h' / 'run' / 'rpc.sock'}"


def test_nua_home_variable_is_used_when_no_option() -> None:
    where = resolve(environ={"NUA_HOME": "/srv/nua-test"})
    assert where.home == Path("/srv/nua-test")
    assert where.data == Path("/srv/nua-test/data")
    assert where.runtime == Path("/srv/nua-test/run")


def test_home_option_wins_over_nua_home() -> None:
    where = resolve("/opt/chosen", environ={"NUA_HOME": "/srv/ignored"})
    assert where.home == Path("/opt/chosen")
    assert where.logs == Path("/opt/chosen/log")


def test_relative_home_is_made_absolute_against_cwd(
    short_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(short_home)
    where = resolve("rel/home", environ={})
    assert where.home == Path.cwd() / "rel" / "home"
    assert where.home is not None and where.home.is_absolute()
    assert where.config == Path.cwd() / "rel" / "home" / "config"


def test_empty_nua_home_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(locations.os, "geteuid", lambda: 0)
    where = resolve(environ={"NUA_HOME": ""})
    assert where.home is None
    assert where.data == Path("/var/lib/nua")


def test_root_uses_system_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(locations.os, "geteuid", lambda: 0)
    where = resolve(environ={"HOME": "/root", "XDG_DATA_HOME": "/root/.xdg"})
    assert where == Locations(
        data=Path("/var/lib/nua"),
        runtime=Path("/run/nua"),
        logs=Path("/var/log/nua"),
        config=Path("/etc/nua"),
        home=None,
    )


def test_normal_user_uses_xdg_fallbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(locations.os, "geteuid", lambda: 1000)
    where = resolve(environ={"HOME": "/home/ann"})
    assert where == Locations(
        data=Path("/home/ann/.local/share/nua"),
        runtime=Path("/home/ann/.local/state/nua/run"),
        logs=Path("/home/ann/.local/state/nua/log"),
        config=Path("/home/ann/.config/nua"),
        home=None,
    )


def test_normal_user_honours_xdg_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(locations.os, "geteuid", lambda: 1000)
    where = resolve(
        environ={
            "HOME": "/home/ann",
            "XDG_DATA_HOME": "/d",
            "XDG_STATE_HOME": "/s",
            "XDG_CONFIG_HOME": "/c",
            "XDG_RUNTIME_DIR": "/run/user/1000",
        }
    )
    assert where.data == Path("/d/nua")
    assert where.logs == Path("/s/nua/log")
    assert where.config == Path("/c/nua")
    assert where.runtime == Path("/run/user/1000/nua")


def test_runtime_falls_back_to_state_when_xdg_runtime_dir_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(locations.os, "geteuid", lambda: 1000)
    where = resolve(environ={"HOME": "/home/ann", "XDG_STATE_HOME": "/s"})
    assert where.runtime == Path("/s/nua/run")


@pytest.mark.parametrize(
    "var", ["XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_RUNTIME_DIR"]
)
def test_relative_xdg_values_are_ignored(monkeypatch: pytest.MonkeyPatch, var: str) -> None:
    monkeypatch.setattr(locations.os, "geteuid", lambda: 1000)
    where = resolve(environ={"HOME": "/home/ann", var: "relative/dir"})
    assert where == resolve(environ={"HOME": "/home/ann"})
    assert all(path.is_absolute() for path in where.directories().values())
    assert not any("relative" in str(path) for path in where.directories().values())


def test_directories_and_as_dict() -> None:
    where = resolve("/h", environ={})
    assert list(where.directories()) == ["data", "runtime", "logs", "config"]
    shown = where.as_dict()
    assert shown["database"] == "/h/data/nua.db"
    assert shown["supervisor_conf"] == "/h/run/supervisord.conf"
    assert shown["rpc_endpoint"] == "ipc:///h/run/rpc.sock"


# -- ensure ----------------------------------------------------------------------


def test_ensure_creates_every_location_0700(short_home: Path) -> None:
    where = resolve(short_home / "home", environ={})
    where.ensure()
    for path in [short_home / "home", *where.directories().values()]:
        assert path.is_dir(), path
        assert _mode(path) == 0o700, (path, oct(_mode(path)))


def test_ensure_is_idempotent(short_home: Path) -> None:
    where = resolve(short_home, environ={})
    where.ensure()
    where.ensure()
    assert _mode(where.runtime) == 0o700


def test_ensure_accepts_an_existing_home_readable_by_others(short_home: Path) -> None:
    short_home.chmod(0o755)
    resolve(short_home, environ={}).ensure()
    assert _mode(short_home / "data") == 0o700


def test_ensure_refuses_a_symlinked_location(short_home: Path) -> None:
    elsewhere = short_home / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    where = resolve(short_home / "h", environ={})
    where.home.mkdir(mode=0o700)  # type: ignore[union-attr]
    where.data.symlink_to(elsewhere)
    with pytest.raises(LocationError, match="symlink") as info:
        where.ensure()
    assert str(where.data) in str(info.value)


def test_ensure_refuses_a_dangling_symlink(short_home: Path) -> None:
    where = resolve(short_home, environ={})
    where.logs.symlink_to(short_home / "nowhere")
    with pytest.raises(LocationError, match="symlink") as info:
        where.ensure()
    assert str(where.logs) in str(info.value)
    assert not (short_home / "nowhere").exists()


def test_ensure_refuses_a_file(short_home: Path) -> None:
    where = resolve(short_home, environ={})
    where.runtime.write_text("not a folder")
    with pytest.raises(LocationError, match="not a directory") as info:
        where.ensure()
    assert str(where.runtime) in str(info.value)


@needs_root
def test_ensure_refuses_a_location_owned_by_another_uid(short_home: Path) -> None:
    where = resolve(short_home, environ={})
    where.config.mkdir(mode=0o700)
    os.chown(where.config, 65534, 65534)
    with pytest.raises(LocationError, match="owned by uid 65534") as info:
        where.ensure()
    assert str(where.config) in str(info.value)


@needs_root
def test_ensure_refuses_a_home_owned_by_another_uid(short_home: Path) -> None:
    home = short_home / "h"
    home.mkdir(mode=0o700)
    os.chown(home, 65534, 65534)
    with pytest.raises(LocationError, match="owned by uid 65534") as info:
        resolve(home, environ={}).ensure()
    assert str(home) in str(info.value)


@pytest.mark.parametrize("mode", [0o770, 0o757, 0o750, 0o701])
def test_ensure_refuses_a_location_open_to_others(short_home: Path, mode: int) -> None:
    where = resolve(short_home, environ={})
    where.data.mkdir()
    where.data.chmod(mode)
    with pytest.raises(LocationError, match=f"mode {mode:04o}") as info:
        where.ensure()
    assert str(where.data) in str(info.value)
    assert f"chmod 700 {where.data}" in str(info.value)


@pytest.mark.parametrize("mode", [0o770, 0o757])
def test_ensure_refuses_a_home_writable_by_others(short_home: Path, mode: int) -> None:
    short_home.chmod(mode)
    with pytest.raises(LocationError, match="writable") as info:
        resolve(short_home, environ={}).ensure()
    assert str(short_home) in str(info.value)


def test_ensure_refuses_socket_paths_longer_than_the_unix_limit(short_home: Path) -> None:
    # runtime/supervisor.sock under this home is just over the limit.
    budget = UNIX_PATH_MAX - len(os.fsencode(short_home / "x" / "run" / "supervisor.sock"))
    home = short_home / ("x" * (budget + 2))
    where = resolve(home, environ={})
    assert len(os.fsencode(where.supervisor_socket)) == UNIX_PATH_MAX + 1
    with pytest.raises(LocationError, match="longer than 107 bytes") as info:
        where.ensure()
    assert str(where.supervisor_socket) in str(info.value)


def test_ensure_accepts_socket_paths_at_the_limit(short_home: Path) -> None:
    budget = UNIX_PATH_MAX - len(os.fsencode(short_home / "x" / "run" / "supervisor.sock"))
    where = resolve(short_home / ("x" * (budget + 1)), environ={})
    assert len(os.fsencode(where.supervisor_socket)) == UNIX_PATH_MAX
    where.ensure()
    assert where.runtime.is_dir()


def test_ensure_reports_a_location_that_cannot_be_created(short_home: Path) -> None:
    (short_home / "blocker").write_text("")
    where = resolve(short_home / "blocker" / "h", environ={})
    with pytest.raises(LocationError, match="cannot be created") as info:
        where.ensure()
    assert str(short_home / "blocker" / "h") in str(info.value)


# -- a location that is not writable ------------------------------------------------------

NOBODY = 65534
SETPRIV = shutil.which("setpriv") or "/usr/bin/setpriv"
ENSURE = (
    "import sys\n"
    "from orchestrator.errors import LocationError\n"
    "from orchestrator.host.locations import resolve\n"
    "try:\n"
    "    resolve(sys.argv[1], environ={}).ensure()\n"
    "except LocationError as exc:\n"
    "    print(exc)\n"
    "    sys.exit(1)\n"
)


def _ensure_as(home: Path, user: list[str]) -> subprocess.CompletedProcess[str]:
    """Run `ensure` in a child as `user` (setpriv arguments; none: as ourselves)."""
    return subprocess.run(
        [*([SETPRIV, *user] if user else []), sys.executable, "-c", ENSURE, str(home)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


# Root writes anywhere its mode bits say no: the check runs as the owner, nobody.
AS_OWNER = (
    ["--reuid", str(NOBODY), "--regid", str(NOBODY), "--clear-groups"] if os.geteuid() == 0 else []
)


@pytest.mark.parametrize("folder", ["data", "run", "log", "config"])
def test_ensure_refuses_a_location_its_owner_cannot_write(short_home: Path, folder: str) -> None:
    where = resolve(short_home, environ={})
    where.ensure()
    (short_home / folder).chmod(0o500)
    if os.geteuid() == 0:
        for path in (short_home, *where.directories().values()):
            os.chown(path, NOBODY, NOBODY)

    done = _ensure_as(short_home, AS_OWNER)

    assert done.returncode == 1, done.stdout + done.stderr
    message = done.stdout.strip()
    uid = NOBODY if os.geteuid() == 0 else os.geteuid()
    assert f"location {short_home / folder} is not writable by you (uid {uid})" in message
    assert "fix its permissions" in message
    assert list((short_home / folder).iterdir()) == []


@needs_root
def test_writability_is_that_of_the_effective_user(short_home: Path) -> None:
    """Real uid root, effective uid nobody: os.access would have answered for root."""
    where = resolve(short_home, environ={})
    where.ensure()
    where.logs.chmod(0o500)
    for path in (short_home, *where.directories().values()):
        os.chown(path, NOBODY, NOBODY)

    done = _ensure_as(short_home, ["--euid", str(NOBODY), "--egid", str(NOBODY), "--clear-groups"])

    assert done.returncode == 1, done.stdout + done.stderr
    assert f"logs location {where.logs} is not writable by you" in done.stdout


def test_checking_a_location_writes_nothing_in_it(short_home: Path) -> None:
    """Not even a probe file: "nothing changed" checks compare folders' mtimes."""
    where = resolve(short_home, environ={})
    where.ensure()
    folders = [short_home, *where.directories().values()]
    before = {path: path.stat().st_mtime_ns for path in folders}
    where.ensure()
    assert {path: path.stat().st_mtime_ns for path in folders} == before
    for path in where.directories().values():
        assert list(path.iterdir()) == [], path
