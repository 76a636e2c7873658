"""Apps end to end: install, serve, upgrade, rollback, stop, start, restarts, remove."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from orchestrator.rpc.client import (
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    RpcClient,
    UnavailableError,
)
from tests.apps import malicious
from tests.support.apps import answers, fetch, install_archive, tar_of, upload, wait_job
from tests.support.orchestrator import Orchestrator, kill_processes_in, processes_in
from tests.support.polling import wait_for

pytestmark = pytest.mark.e2e

CONFIG = """
[metadata]
id = "{id}"
version = "{version}"
title = "Hello"
[build]
script = "build.sh"
timeout = {build_timeout}
[run]
command = "{command}"
env = {{ GREETING = "hi" }}
[port.web]
[healthcheck]
http = "/"
timeout = {health_timeout}
[data]
"""
SERVE = "python3 -m http.server $NUA_PORT --bind 127.0.0.1"
BUILD = 'echo "building $NUA_APP_VERSION"\necho "<p>$NUA_APP_VERSION $GREETING</p>" > index.html\n'


def app_archive(
    version: str = "1.0.0",
    *,
    app_id: str = "hello",
    command: str = SERVE,
    build: str = BUILD,
    build_timeout: int = 60,
    health_timeout: int = 20,
) -> bytes:
    config = CONFIG.format(
        id=app_id,
        version=version,
        command=command,
        build_timeout=build_timeout,
        health_timeout=health_timeout,
    )
    return tar_of({"nua-config.toml": config.encode(), "build.sh": build.encode()})


@pytest.fixture
def apps_home(orch: Orchestrator) -> Iterator[Orchestrator]:
    # As root, apps run as another user, who must be able to pass through the home.
    orch.home.chmod(0o711)
    orch.start()
    yield orch
    print("---- rpc.log ----\n" + orch.log("rpc")[-6000:])  # shown when the test failed
    kill_processes_in(orch.home)


def _client(orch: Orchestrator) -> RpcClient:
    return RpcClient(orch.locations.rpc_endpoint, timeout=30, retries=0)


def _app(client: RpcClient, label: str) -> dict[str, Any]:
    return client.call("app.get", [label])


def test_install_upgrade_rollback_stop_start_restart_remove(apps_home: Orchestrator) -> None:
    orch = apps_home
    client = _client(orch)
    job = install_archive(client, app_archive("1.0.0"), label="hello")
    assert job["state"] == "succeeded", job
    assert [s["state"] for s in job["steps"]] == ["done"] * 7
    app = job["app"]
    port = app["ports"]["web"]
    assert fetch(port) == "<p>1.0.0 hi</p>\n"
    assert app["state"] == "running" and app["health"] == "healthy"
    owner = psutil.Process(app["pid"]).username()
    assert owner != "root", "apps never run as root"
    # The app's data folder survives upgrades.
    data = orch.home / "apps" / "hello" / "data"
    (data / "kept.txt").write_text("precious")

    upgraded = install_archive(client, app_archive("1.1.0"), label="hello")
    assert upgraded["state"] == "succeeded", upgraded
    assert upgraded["kind"] == "upgrade"
    assert upgraded["app"]["ports"]["web"] == port, "an upgrade keeps its ports"
    assert fetch(port) == "<p>1.1.0 hi</p>\n"
    assert (data / "kept.txt").read_text() == "precious"
    assert upgraded["app"]["previous_release"] == 1

    rolled = wait_job(client, client.call("app.rollback", {"label": "hello"}))
    assert rolled["state"] == "succeeded", rolled
    assert fetch(port) == "<p>1.0.0 hi</p>\n"
    assert _app(client, "hello")["version"] == "1.0.0"

    assert client.call("app.stop", {"label": "hello"})["state"] == "stopped"
    assert not answers(port)
    orch.stop()
    orch.start()
    client = _client(orch)
    assert _app(client, "hello")["state"] == "stopped", "a stopped app stays stopped"
    assert client.call("app.start", {"label": "hello"})["state"] == "running"
    assert fetch(port) == "<p>1.0.0 hi</p>\n"

    # kill -9 of supervisord with the app installed: start brings it back, once.
    os.kill(orch.supervisord_pid(), signal.SIGKILL)
    wait_for(lambda: orch.status().returncode == 3, timeout=15, what="the crash to show")
    orch.start()
    wait_for(lambda: answers(port), timeout=30, what="the app to serve again")
    servers = [
        p
        for p in psutil.process_iter(["cmdline"])
        if f"http.server {port}" in " ".join(p.info["cmdline"] or [])
    ]
    assert len(servers) == 1
    client = _client(orch)
    # start returns when the worker answers; the app is RUNNING once past its startsecs.
    wait_for(lambda: _app(client, "hello")["state"] == "running", timeout=15, what="hello up")

    logs = client.call("app.logs", {"label": "hello", "stderr": True, "lines": 5})
    assert "GET / HTTP" in logs["text"]

    removed = client.call("app.remove", {"label": "hello"})
    assert removed["data_kept"] == str(data)
    assert not answers(port)
    assert (data / "kept.txt").exists()
    with pytest.raises(NotFoundError):
        _app(client, "hello")
    assert client.call("app.list") == []
    assert not (orch.locations.config / "apps" / "hello.conf").exists()


def test_a_failed_upgrade_keeps_the_previous_release_running(apps_home: Orchestrator) -> None:
    client = _client(apps_home)
    first = install_archive(client, app_archive("1.0.0"), label="web")
    assert first["state"] == "succeeded", first
    port = first["app"]["ports"]["web"]

    broken = install_archive(
        client,
        app_archive("2.0.0", build="echo compiling\necho 'error: boom' >&2\nexit 2\n"),
        label="web",
    )
    assert broken["state"] == "failed"
    assert broken["failed_step"] == "build"
    assert "exited with status 2" in broken["error"]
    assert "error: boom" in broken["log_tail"]
    assert fetch(port) == "<p>1.0.0 hi</p>\n"
    app = _app(client, "web")
    assert app["version"] == "1.0.0" and app["state"] == "running"
    releases = sorted(p.name for p in (apps_home.home / "apps" / "web" / "releases").iterdir())
    assert releases == ["1"], "nothing of the failed release remains"
    logs = sorted(p.name for p in (apps_home.locations.logs / "apps").iterdir())
    assert logs == ["web.build-1.log", "web.err.log", "web.out.log"], "nor its build log"

    unhealthy = install_archive(
        client, app_archive("3.0.0", command="sleep 600", health_timeout=2), label="web"
    )
    assert unhealthy["failed_step"] == "health"
    assert "not healthy after 2s" in unhealthy["error"]
    wait_for(lambda: answers(port), timeout=30, what="the previous release to resume")
    assert fetch(port) == "<p>1.0.0 hi</p>\n"


@pytest.mark.parametrize(
    ("archive", "step", "says"),
    [
        (app_archive(build="echo nope\nexit 1\n"), "build", "exited with status 1"),
        (app_archive(command="false"), "start", "did not"),
        (app_archive(command="sleep 600", health_timeout=2), "health", "not healthy after 2s"),
        (app_archive(build="sleep 600\n", build_timeout=1), "build", "did not finish within 1s"),
    ],
    ids=["build-fails", "exits-at-once", "never-healthy", "build-hangs"],
)
def test_a_failed_first_install_leaves_nothing(
    apps_home: Orchestrator, archive: bytes, step: str, says: str
) -> None:
    client = _client(apps_home)
    job = install_archive(client, archive, label="bad")
    assert job["state"] == "failed" and job["failed_step"] == step, job
    assert says in job["error"]
    # No app, folder, section, log (build's included), upload or process.
    _nothing_left(apps_home, client, "bad")


def test_conflicts_and_unknown_labels(apps_home: Orchestrator) -> None:
    client = _client(apps_home)
    assert install_archive(client, app_archive(), label="one")["state"] == "succeeded"
    with pytest.raises(ConflictError) as clash:
        install_archive(client, app_archive(app_id="other"), label="one")
    assert clash.value.field == "label"
    for method in ("app.get", "app.start", "app.stop", "app.remove", "app.rollback"):
        with pytest.raises(NotFoundError):
            client.call(method, {"label": "ghost"})
    with pytest.raises(ConflictError, match="no previous release"):
        client.call("app.rollback", {"label": "one"})


def test_a_malicious_archive_is_refused_at_unpack(apps_home: Orchestrator) -> None:
    """The sample tests/apps/malicious.py: `..` and a symbolic link to /etc, after the config."""
    client = _client(apps_home)
    for hostile, says in (
        (malicious.dot_dot, "a '..' component"),
        (malicious.symlink_to_etc, "a symbolic link to an absolute path (/etc/passwd)"),
    ):
        job = install_archive(client, malicious.archive(hostile, config_first=True), label="evil")
        assert job["state"] == "failed" and job["failed_step"] == "unpack", job
        assert says in job["error"]
        _nothing_left(apps_home, client, "evil")


def _nothing_left(orch: Orchestrator, client: RpcClient, label: str) -> None:
    """No trace of `label`: no app, no files, no section, no log, no upload, no process."""
    assert client.call("app.list") == []
    assert not (orch.home / "apps" / label).exists()
    assert list((orch.locations.config / "apps").iterdir()) == []
    logs = orch.locations.logs / "apps"
    assert not logs.exists() or [p.name for p in logs.iterdir()] == []
    uploads = orch.locations.data / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []
    assert f"app-{label}" not in orch.supervisorctl("status").stdout
    assert not processes_in(orch.home / "apps")


@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    ("hostile", "says"),
    [
        (malicious.absolute_path, "archive member '/etc/nua-evil': an absolute path"),
        (malicious.huge_pax_header, "a header or block larger than 1048576 bytes"),
        (malicious.sparse_10gb, f"archive member 'big': declares {malicious.TEN_GB} bytes"),
    ],
    ids=["absolute-path", "huge-pax-header", "sparse-10gb"],
)
def test_a_hostile_upload_is_refused_at_unpack_before_or_in_the_job(
    apps_home: Orchestrator, hostile: malicious.Member, says: str
) -> None:
    """Met while the worker reads the config (before any job): the call is refused;
    met after the config: the job fails at its unpack step. Either way nothing remains."""
    client = _client(apps_home)
    worker = apps_home.program("nua:rpc").pid
    with pytest.raises(InvalidArgumentError) as refused:
        install_archive(client, malicious.archive(hostile), label="evil")
    assert refused.value.message.startswith("the upload was refused at step unpack")
    assert says in refused.value.message and refused.value.field == "upload"
    _nothing_left(apps_home, client, "evil")

    job = install_archive(client, malicious.archive(hostile, config_first=True), label="evil")
    assert job["state"] == "failed" and job["failed_step"] == "unpack", job
    assert says in job["error"]
    _nothing_left(apps_home, client, "evil")
    assert not Path("/etc/nua-evil").exists()
    assert apps_home.program("nua:rpc").pid == worker, "the worker never restarted"


SICKLY_BUILD = """cat > server.py <<'PY'
import os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Page(BaseHTTPRequestHandler):
    def do_GET(self):
        sick = os.path.exists("sick")
        self.send_response(500 if sick else 200)
        self.end_headers()
        self.wfile.write(str(os.getpid()).encode())

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", int(sys.argv[1])), Page).serve_forever()
PY
"""


def test_the_sentinel_restarts_an_app_that_stays_unhealthy(orch: Orchestrator) -> None:
    orch.env.update({"NUA_APPS_HEALTH_INTERVAL": "0.5", "NUA_APPS_HEALTH_FAILURES": "2"})
    orch.home.chmod(0o711)
    orch.start()
    client = _client(orch)
    job = install_archive(
        client,
        app_archive(build=SICKLY_BUILD, command="python3 server.py $NUA_PORT"),
        label="sickly",
    )
    assert job["state"] == "succeeded", job
    port, pid = job["app"]["ports"]["web"], job["app"]["pid"]
    assert fetch(port) == str(pid)
    release = orch.home / "apps" / "sickly" / "releases" / "1"
    (release / "sick").touch()
    wait_for(
        lambda: (
            "restarting app-sickly:app-sickly: unhealthy 2 times in a row" in orch.log("sentinel")
        ),
        timeout=30,
        what="the sentinel to restart the unhealthy app",
    )
    (release / "sick").unlink()
    wait_for(lambda: answers(port), timeout=30, what="the app to serve again")
    wait_for(
        lambda: _app(client, "sickly")["health"] == "healthy", timeout=10, what="healthy again"
    )
    assert _app(client, "sickly")["pid"] != pid
    kill_processes_in(orch.home)


def test_operations_on_an_app_wait_for_its_job(apps_home: Orchestrator) -> None:
    client = _client(apps_home)
    assert install_archive(client, app_archive(), label="busy")["state"] == "succeeded"
    slow = app_archive("2.0.0", build=BUILD + "sleep 3\n")
    from tests.support.apps import upload

    job = client.call("app.install", {"upload": upload(client, slow), "label": "busy"})
    with pytest.raises(ConflictError, match="busy"):
        client.call("app.stop", {"label": "busy"})
    assert wait_job(client, job)["state"] == "succeeded"
    assert client.call("app.stop", {"label": "busy"})["state"] == "stopped"


def test_a_port_taken_by_another_process_is_a_clear_error(orch: Orchestrator) -> None:
    with socket.socket() as squatter:
        squatter.bind(("0.0.0.0", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        orch.env.update({"NUA_APPS_PORT_MIN": str(port), "NUA_APPS_PORT_MAX": str(port)})
        orch.home.chmod(0o711)
        orch.start()
        client = _client(orch)
        job = install_archive(client, app_archive(), label="squatted")
    assert job["state"] == "failed" and job["failed_step"] == "ports", job
    assert f"no free port for port.web in {port}-{port} ({port} taken" in job["error"]
    assert client.call("app.list") == []
    assert not (orch.home / "apps" / "squatted").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="apps run as another user only under root")
@pytest.mark.timeout(240)
def test_apps_never_run_as_root_whatever_apps_user_says(orch: Orchestrator) -> None:
    orch.home.chmod(0o711)
    orch.start()
    job = install_archive(_client(orch), app_archive(), label="kept")
    assert job["state"] == "succeeded", job
    assert orch.stop().returncode == 0
    # `root` itself is no value of the setting: refused before anything starts.
    refused_start = orch.run("start", env={"NUA_APPS_USER": "root"})
    assert refused_start.returncode != 0
    assert "NUA_APPS_USER='root'" in refused_start.stderr
    assert "never root" in refused_start.stderr
    # Empty means the orchestrator's own user: root here, so refused where apps run.
    orch.env["NUA_APPS_USER"] = ""
    orch.start()
    client = _client(orch)
    with pytest.raises(UnavailableError) as refused:
        install_archive(client, app_archive(), label="other")
    assert refused.value.message.startswith("apps never run as root")
    assert "nua settings set apps.user nua-app" in refused.value.message
    assert refused.value.field == "apps.user"
    with pytest.raises(UnavailableError, match="apps never run as root"):
        client.call("app.start", {"label": "kept"})
    # Brought back by start with that setting: its launcher refuses to run it.
    err_log = orch.locations.logs / "apps" / "kept.err.log"
    wait_for(
        lambda: "refusing to run this app as root" in err_log.read_text(),
        timeout=30,
        what="the launcher to refuse",
    )
    ran_as_root = [
        p.info
        for p in psutil.process_iter(["cwd", "uids", "cmdline"])
        if p.info["cwd"]
        and Path(p.info["cwd"]).is_relative_to(orch.home / "apps")
        and p.info["uids"].real == 0
    ]
    assert ran_as_root == []
    assert client.call("app.stop", {"label": "kept"})["state"] == "stopped", "stop still works"
    assert [a["label"] for a in client.call("app.list")] == ["kept"]
    assert not (orch.home / "apps" / "other").exists()


def _at_step(client: RpcClient, job_id: int, name: str) -> dict[str, Any] | None:
    """The job once it runs step `name` or has ended; None before."""
    job = client.call("job.get", [job_id])
    state = next(s["state"] for s in job["steps"] if s["name"] == name)
    return job if state == "running" or job["state"] != "running" else None


def _app_processes(orch: Orchestrator, label: str) -> list[psutil.Process]:
    return processes_in(orch.home / "apps" / label)


@pytest.mark.timeout(240)
def test_a_worker_killed_during_install_jobs_puts_their_apps_back_as_recorded(
    apps_home: Orchestrator,
) -> None:
    """kill -9 of the worker while an upgrade and a first install wait for health:
    supervisord restarts the worker, which puts each app back as the database says."""
    orch = apps_home
    client = _client(orch)
    first = install_archive(client, app_archive("1.0.0"), label="web")
    assert first["state"] == "succeeded", first
    port, old_pid = first["app"]["ports"]["web"], first["app"]["pid"]
    slow = app_archive("2.0.0", command="sleep 600", health_timeout=120)
    jobs = [
        client.call("app.install", {"upload": upload(client, slow), "label": label})["id"]
        for label in ("web", "fresh")
    ]
    for job_id in jobs:
        job = wait_for(
            lambda job_id=job_id: _at_step(client, job_id, "health"),
            timeout=60,
            what=f"job {job_id} at its health step",
        )
        assert job["state"] == "running", job
    assert _app_processes(orch, "fresh"), "the first install's app runs, unrecorded"
    worker = orch.program("nua:rpc").pid
    os.kill(worker, signal.SIGKILL)
    wait_for(
        lambda: orch.program("nua:rpc").pid not in (0, worker) and orch.ping(),
        timeout=60,
        what="supervisord to restart the worker",
    )
    client = _client(orch)
    for job_id in jobs:
        job = client.call("job.get", [job_id])
        assert job["state"] == "failed" and job["error"].startswith("interrupted"), job

    # The upgrade: back on release 1, its folder 2 gone, its section pointing at 1.
    releases = orch.home / "apps" / "web" / "releases"
    wait_for(
        lambda: sorted(p.name for p in releases.iterdir()) == ["1"] and answers(port),
        timeout=60,
        what="web back on its recorded release",
    )
    assert fetch(port) == "<p>1.0.0 hi</p>\n"
    wait_for(lambda: _app(client, "web")["state"] == "running", timeout=30, what="web running")
    web = _app(client, "web")
    assert (web["version"], web["release"]) == ("1.0.0", 1)
    assert web["pid"] != old_pid, "the upgrade had replaced it; recovery started it again"
    spec = (orch.locations.config / "apps" / "web.json").read_text()
    assert str(releases / "1") in spec and str(releases / "2") not in spec
    assert [p.cwd() for p in _app_processes(orch, "web")] == [str(releases / "1")]

    # The first install: nothing of it remains.
    wait_for(
        lambda: not (orch.home / "apps" / "fresh").exists(),
        timeout=60,
        what="the first install's folders to go",
    )
    assert [a["label"] for a in client.call("app.list")] == ["web"]
    assert not (orch.locations.config / "apps" / "fresh.conf").exists()
    assert not (orch.locations.config / "apps" / "fresh.json").exists()
    assert "app-fresh" not in orch.supervisorctl("status").stdout
    assert _app_processes(orch, "fresh") == []
    assert not [p.name for p in (orch.locations.logs / "apps").glob("fresh.*")]


@pytest.mark.timeout(240)
def test_changing_one_app_leaves_the_orchestrators_programs_and_other_apps_alone(
    apps_home: Orchestrator,
) -> None:
    """Each app is its own group: installing, upgrading, rolling back, restarting and
    removing one restarts neither nua:rpc, nua:sentinel nor another app."""
    orch = apps_home
    client = _client(orch)
    steady = install_archive(client, app_archive(), label="steady")
    assert steady["state"] == "succeeded", steady
    watched = ("nua:rpc", "nua:sentinel", "app-steady:app-steady")

    def pids() -> dict[str, int]:
        programs = orch.programs()
        return {name: programs[name].pid for name in watched}

    before = pids()
    assert all(before.values()), before
    for change in ("install", "upgrade", "rollback", "restart", "stop", "start", "remove"):
        if change == "install":
            done = install_archive(client, app_archive("1.0.0"), label="other")
        elif change == "upgrade":
            done = install_archive(client, app_archive("2.0.0"), label="other")
        elif change == "rollback":
            done = wait_job(client, client.call("app.rollback", {"label": "other"}))
        elif change == "remove":
            done = client.call("app.remove", {"label": "other", "purge": True})
        else:
            done = client.call(f"app.{change}", {"label": "other"})
        assert done.get("state") != "failed", (change, done)
        assert pids() == before, f"{change} of another app restarted one of {watched}"
    assert fetch(steady["app"]["ports"]["web"]) == "<p>1.0.0 hi</p>\n"
