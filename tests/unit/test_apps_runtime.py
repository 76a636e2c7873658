"""The pure parts of running apps: ports, sections, environment, uploads, builds, launcher."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pwd
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.apps import health, ports, program
from orchestrator.apps.build import MAX_LOG_BYTES, log_tail, run_build
from orchestrator.apps.layout import app_files
from orchestrator.apps.uploads import Uploads
from orchestrator.host.locations import resolve
from orchestrator.rpc.errors import InvalidArgument, NotFound, Unavailable

RELEASE = {
    "id": "hello",
    "version": "1.0.0",
    "title": "Hello",
    "command": "python3 -m http.server $NUA_PORT",
    "env": {"GREETING": "hi"},
    "ports": ["web", "admin"],
    "primary_port": "web",
    "data": True,
    "health": {"kind": "http", "port": "web", "path": "/", "timeout": 30},
    "build": {"script": None, "timeout": 600},
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- ports ------------------------------------------------------------------------------------


def test_ports_keep_what_they_had_and_take_the_lowest_free_others() -> None:
    low = _free_port()
    got = ports.allocate(["web", "admin"], {"web": 45000}, taken={low}, low=low, high=low + 50)
    assert got["web"] == 45000
    assert got["admin"] not in (low, 45000) and low < got["admin"] <= low + 50


def test_a_port_another_process_listens_on_is_skipped_and_a_full_range_is_a_clear_error() -> None:
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert not ports.is_free(port)
        with pytest.raises(Unavailable) as full:
            ports.allocate(["web"], {}, taken=set(), low=port, high=port)
    assert full.value.data["field"] == "port.web"
    assert f"{port} taken by other processes" in full.value.message


# -- sections and environment ----------------------------------------------------------------


def test_the_environment_carries_ports_data_and_overrides_and_nothing_of_ours(
    short_home: Path,
) -> None:
    files = app_files(resolve(short_home, environ={}), "blog")
    env = program.app_environment(
        files, RELEASE, 3, {"web": 20001, "admin": 20002}, {"GREETING": "hello"}
    )
    assert env["NUA_PORT"] == "20001" and env["NUA_PORT_WEB"] == "20001"
    assert env["NUA_PORT_ADMIN"] == "20002"
    assert env["NUA_DATA_DIR"] == str(files.data)
    assert env["NUA_RELEASE_DIR"] == str(files.release(3))
    assert env["GREETING"] == "hello"  # the operator's override wins over the app's default
    assert "NUA_HOME" not in env and "NUA_DATABASE_URL" not in env


def test_the_section_is_its_own_group_and_escapes_percent(tmp_path: Path) -> None:
    files = app_files(resolve(tmp_path / "a%b", environ={}), "blog")
    text = program.section(files, {"apps.stop_timeout": 7}, autostart=False)
    assert "[program:app-blog]" in text
    assert "autostart = false" in text and "stopwaitsecs = 7" in text
    assert "a%%b" in text and "a%b" not in text.replace("a%%b", "")


# -- uploads ----------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_an_upload_in_chunks_is_checked_and_a_resent_chunk_is_accepted(tmp_path: Path) -> None:
    data = os.urandom(2500)
    uploads = Uploads(tmp_path / "up", max_bytes=10_000, chunk_bytes=1000)
    upload = uploads.begin(len(data), hashlib.sha256(data).hexdigest())
    assert uploads.chunk(upload, 0, _b64(data[:1000])) == 1000
    assert uploads.chunk(upload, 0, _b64(data[:1000])) == 1000  # a retry
    with pytest.raises(InvalidArgument, match="expected 1000"):
        uploads.chunk(upload, 2000, _b64(data[2000:]))
    uploads.chunk(upload, 1000, _b64(data[1000:2000]))
    with pytest.raises(InvalidArgument, match="incomplete"):
        uploads.finish(upload)
    uploads.chunk(upload, 2000, _b64(data[2000:]))
    path = uploads.finish(upload)
    assert path.read_bytes() == data
    assert (path.stat().st_mode & 0o777) == 0o600
    with pytest.raises(NotFound):
        uploads.finish(upload)


@pytest.mark.parametrize(
    ("size", "sha", "field"),
    [(0, "0" * 64, "size"), (10**9, "0" * 64, "size"), (10, "xyz", "sha256")],
)
def test_bad_upload_requests_name_the_field(
    tmp_path: Path, size: int, sha: str, field: str
) -> None:
    uploads = Uploads(tmp_path / "up", max_bytes=10_000, chunk_bytes=1000)
    with pytest.raises(InvalidArgument) as bad:
        uploads.begin(size, sha)
    assert bad.value.data["field"] == field


def test_a_corrupted_upload_is_refused_and_removed(tmp_path: Path) -> None:
    uploads = Uploads(tmp_path / "up", max_bytes=10_000, chunk_bytes=1000)
    upload = uploads.begin(3, hashlib.sha256(b"abc").hexdigest())
    uploads.chunk(upload, 0, _b64(b"abd"))
    with pytest.raises(InvalidArgument, match="sha256"):
        uploads.finish(upload)
    assert list((tmp_path / "up").iterdir()) == []


def test_chunks_must_be_base64_and_within_the_chunk_size(tmp_path: Path) -> None:
    uploads = Uploads(tmp_path / "up", max_bytes=10_000, chunk_bytes=10)
    upload = uploads.begin(100, "0" * 64)
    with pytest.raises(InvalidArgument, match="base64"):
        uploads.chunk(upload, 0, "not base64!")
    with pytest.raises(InvalidArgument, match="at most 10 bytes"):
        uploads.chunk(upload, 0, _b64(b"x" * 11))


@pytest.mark.parametrize("max_message", [1 << 20, 65536, 5000])
@pytest.mark.parametrize("chunk_setting", [1 << 20, 524288])
def test_a_chunk_always_fits_the_message_limit(
    tmp_path: Path, max_message: int, chunk_setting: int
) -> None:
    """The chunk size the worker announces, base64 in a real request, is under the limit."""
    from orchestrator.rpc.client import IDEMPOTENCY_PARAM

    uploads = Uploads(tmp_path / "up", 1 << 30, chunk_setting, max_message)
    assert 0 < uploads.chunk_bytes <= chunk_setting
    data = os.urandom(uploads.chunk_bytes)
    upload = uploads.begin(len(data) + 1, hashlib.sha256(data).hexdigest())
    params = {
        "upload": upload,
        "offset": 268435456,
        "data": _b64(data),
        IDEMPOTENCY_PARAM: "0" * 32,
    }
    request = {"jsonrpc": "2.0", "method": "app.upload_chunk", "params": params, "id": "9-99"}
    assert len(json.dumps(request).encode()) <= max_message
    assert uploads.chunk(upload, 0, params["data"]) == len(data)
    with pytest.raises(InvalidArgument, match=f"at most {uploads.chunk_bytes} bytes"):
        uploads.chunk(upload, len(data), _b64(data + b"x"))


def test_the_default_settings_give_chunks_that_fit() -> None:
    from orchestrator.settings.defaults import load_defaults

    defaults = load_defaults()
    chunk, limit = int(defaults["apps.chunk_bytes"]), int(defaults["rpc.max_message_bytes"])
    assert (len(_b64(b"x" * chunk)) + 4096) <= limit, "no lowering needed with the defaults"


def test_a_message_limit_without_room_for_chunks_is_a_clear_error(tmp_path: Path) -> None:
    uploads = Uploads(tmp_path / "up", 10_000, 1 << 20, max_message_bytes=4000)
    with pytest.raises(Unavailable, match=r"rpc\.max_message_bytes") as refused:
        uploads.begin(100, "0" * 64)
    assert "nua settings set" in refused.value.message
    assert not (tmp_path / "up").exists()


# -- builds -----------------------------------------------------------------------------------


def _script(folder: Path, body: str) -> str:
    (folder / "build.sh").write_text(body)
    return "build.sh"


def test_a_build_that_succeeds_logs_its_output(tmp_path: Path) -> None:
    log = tmp_path / "build.log"
    script = _script(tmp_path, "echo building $GREETING\necho made > out.txt\n")
    assert run_build(script, tmp_path, {"GREETING": "hi", "PATH": "/usr/bin:/bin"}, log, 30) is None
    assert "building hi" in log.read_text()
    assert (tmp_path / "out.txt").read_text() == "made\n"


def test_a_failing_build_says_its_status_and_keeps_the_end_of_its_log(tmp_path: Path) -> None:
    log = tmp_path / "build.log"
    script = _script(tmp_path, "echo compiling\necho 'error: no such file' >&2\nexit 3\n")
    problem = run_build(script, tmp_path, {"PATH": "/usr/bin:/bin"}, log, 30)
    assert problem == "the build script build.sh exited with status 3"
    assert log_tail(log).splitlines()[-1] == "error: no such file"


def test_a_hung_build_is_killed_at_its_timeout_with_its_children(tmp_path: Path) -> None:
    log = tmp_path / "build.log"
    script = _script(tmp_path, "sleep 300 &\necho $! > child.pid\nsleep 300\n")
    began = time.monotonic()
    problem = run_build(script, tmp_path, {"PATH": "/usr/bin:/bin"}, log, 1.0)
    assert problem is not None and "did not finish within 1s" in problem
    assert time.monotonic() - began < 10
    child = int((tmp_path / "child.pid").read_text())
    with pytest.raises(ProcessLookupError):
        for _ in range(100):
            os.kill(child, 0)
            time.sleep(0.05)


def test_a_build_flooding_its_output_is_capped(tmp_path: Path) -> None:
    log = tmp_path / "build.log"
    script = _script(tmp_path, "head -c 20000000 /dev/zero | tr '\\0' 'x'\n")
    assert run_build(script, tmp_path, {"PATH": "/usr/bin:/bin"}, log, 60) is None
    assert log.stat().st_size < MAX_LOG_BYTES + 1000
    assert "more bytes of output were dropped" in log_tail(log, 1)


# -- health checks ----------------------------------------------------------------------------


def test_health_checks_say_why_an_app_is_not_ready() -> None:
    port = _free_port()
    assert health.check(None, {}) is None
    problem = health.check({"kind": "http", "port": "web", "path": "/"}, {"web": port})
    assert problem is not None and f"127.0.0.1:{port}/" in problem
    tcp = health.check({"kind": "tcp", "port": "web"}, {"web": port})
    assert tcp is not None and f"tcp 127.0.0.1:{port}" in tcp
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", port))
        listening.listen()
        assert health.check({"kind": "tcp", "port": "web"}, {"web": port}) is None


def test_an_app_without_a_health_check_is_ready_once_running() -> None:
    """A release without [healthcheck] stores health None: installs and rollbacks must cope."""
    from orchestrator.apps.config import DEFAULT_HEALTH_TIMEOUT

    assert health.ready_within(None) == DEFAULT_HEALTH_TIMEOUT == health.DEFAULT_READY_SECONDS
    assert health.ready_within({"kind": "tcp", "port": "web", "timeout": 2.5}) == 2.5
    stopped = iter([None, "it stopped"])
    assert health.wait_healthy(None, {}, 1.0, lambda: next(stopped)) is None
    assert health.wait_healthy(None, {}, 1.0, lambda: "it stopped") == "it stopped"


# -- the launcher -----------------------------------------------------------------------------


def _launch(
    folder: Path,
    user: str | None,
    command: str,
    env: dict[str, str] | None = None,
    home: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the launcher on a spec in `folder` (which the user may write, as root)."""
    folder.mkdir(exist_ok=True)
    if user == "nobody" and os.geteuid() == 0:
        entry = pwd.getpwnam(user)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    spec = folder / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "command": command,
                "cwd": str(folder),
                "env": {"PATH": "/usr/bin:/bin", "NUA_PORT": "20001"},
                "user": user,
                "home": home,
            }
        )
    )
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.apps.launch", str(spec)],
        env=env if env is not None else dict(os.environ),
        capture_output=True,
        text=True,
        check=False,
    )


# As root, apps run as another user; otherwise as ours (the spec's user is then None).
APP_USER = "nobody" if os.geteuid() == 0 else None


def test_the_launcher_gives_the_app_only_its_own_environment(tmp_path: Path) -> None:
    env = {**os.environ, "NUA_HOME": "/secret/home", "NUA_RUN_TOKEN": "tok", "SECRET": "x"}
    done = _launch(tmp_path / "app", APP_USER, "env > seen.txt", env)
    assert done.returncode == 0, done.stderr
    seen = dict(
        line.split("=", 1)
        for line in (tmp_path / "app" / "seen.txt").read_text().splitlines()
        if "=" in line
    )
    assert seen["NUA_PORT"] == "20001" and seen["NUA_RUN_TOKEN"] == "tok"  # noqa: S105
    assert "NUA_HOME" not in seen and "SECRET" not in seen
    # HOME is the user's own (the orchestrator's, when it is not root), never inherited.
    user = pwd.getpwnam(APP_USER) if APP_USER else pwd.getpwuid(os.getuid())
    assert seen["HOME"] == user.pw_dir
    allowed = {"PATH", "NUA_PORT", "NUA_RUN_TOKEN", "HOME", "PWD", "SHLVL", "_"}
    assert set(seen) <= allowed, "exactly the documented environment (and the shell's own)"


def test_the_launcher_of_an_orchestrator_not_root_gives_home_too(tmp_path: Path) -> None:
    """Not root, the spec has no user: HOME was left out, though the README lists it.
    (The launcher is told it is not root, so that this runs as root too.)"""
    folder = tmp_path / "app"
    folder.mkdir()
    spec = folder / "spec.json"
    spec.write_text(
        json.dumps({"command": 'echo "$HOME" > home.txt', "cwd": str(folder), "env": {}})
    )
    not_root = (
        "import os, sys; os.geteuid = lambda: 4242; "
        "from orchestrator.apps import launch; sys.exit(launch.main(sys.argv))"
    )
    done = subprocess.run(
        [sys.executable, "-c", not_root, str(spec)],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": os.pathsep.join(sys.path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (folder / "home.txt").read_text().strip() == pwd.getpwuid(os.getuid()).pw_dir


def test_the_launcher_sets_home_to_the_data_folder(tmp_path: Path) -> None:
    done = _launch(tmp_path / "app", APP_USER, 'echo "$HOME" > home.txt', home="/srv/data")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "app" / "home.txt").read_text().strip() == "/srv/data"


@pytest.mark.skipif(os.geteuid() != 0, reason="as root only")
@pytest.mark.parametrize("user", [None, "", "root", "no-such-user-here"])
def test_the_launcher_as_root_never_runs_an_app_as_root(tmp_path: Path, user: str | None) -> None:
    """The last check: a spec written with no user, root, or a user that is gone."""
    done = _launch(tmp_path / "app", user, "id -u > ran.txt")
    assert done.returncode == 78
    assert "refusing to run this app as root" in done.stderr
    assert "nua settings set apps.user" in done.stderr
    assert not (tmp_path / "app" / "ran.txt").exists(), "the app's command ran"


@pytest.mark.skipif(os.geteuid() != 0, reason="as root only")
def test_the_launcher_as_root_drops_to_the_apps_user(tmp_path: Path) -> None:
    done = _launch(tmp_path / "app", "nobody", "id -u > ran.txt")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "app" / "ran.txt").read_text().strip() == str(pwd.getpwnam("nobody").pw_uid)
