"""The sentinel and apps, end to end: each app's own check interval and start-up grace."""

from __future__ import annotations

import itertools
import os
import re
import signal
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from orchestrator.rpc.client import RpcClient
from tests.support.apps import install_archive, tar_of
from tests.support.orchestrator import Orchestrator, kill_processes_in
from tests.support.polling import wait_for

pytestmark = pytest.mark.e2e

CONFIG = """
[metadata]
id = "probed"
version = "1.0.0"
[run]
command = "python3 server.py $NUA_PORT"
env = {{ WARM_UP = "{warm_up}" }}
[port.web]
[healthcheck]
http = "/"
timeout = {timeout}
interval = {interval}
"""

# Answers 503 during its first WARM_UP seconds, and while a file "sick" exists
# in its folder; the body is its pid.
SERVER = b"""\
import os, sys, time
from http.server import BaseHTTPRequestHandler, HTTPServer

WARM_UP = float(os.environ["WARM_UP"])
BORN = time.monotonic()


class Page(BaseHTTPRequestHandler):
    def do_GET(self):
        ready = time.monotonic() - BORN >= WARM_UP and not os.path.exists("sick")
        self.send_response(200 if ready else 503)
        self.end_headers()
        self.wfile.write(str(os.getpid()).encode())

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", int(sys.argv[1])), Page).serve_forever()
"""


def probed_app(*, interval: float, timeout: float, warm_up: float = 0.0) -> bytes:
    config = CONFIG.format(interval=interval, timeout=timeout, warm_up=warm_up)
    return tar_of({"nua-config.toml": config.encode(), "server.py": SERVER})


@pytest.fixture
def apps_orch(orch: Orchestrator) -> Iterator[Orchestrator]:
    # As root, apps run as another user, who must be able to pass through the home.
    orch.home.chmod(0o711)
    yield orch
    print("---- sentinel.log ----\n" + orch.log("sentinel")[-6000:])  # shown on failure
    # Apps get their own environment (no NUA_HOME): end them by their folder.
    kill_processes_in(orch.home)


def _client(orch: Orchestrator) -> RpcClient:
    return RpcClient(orch.locations.rpc_endpoint, timeout=30, retries=0)


def _install(orch: Orchestrator, archive: bytes, label: str) -> dict[str, Any]:
    job = install_archive(_client(orch), archive, label=label)
    assert job["state"] == "succeeded", job
    return job["app"]


def _restarts(orch: Orchestrator, label: str) -> list[str]:
    return re.findall(rf"restarting app-{label}:app-{label}: .*", orch.log("sentinel"))


def test_an_app_is_checked_at_its_own_interval(apps_orch: Orchestrator) -> None:
    orch = apps_orch
    # The host's interval is a minute; the app asks for a check every half second.
    orch.env.update({"NUA_APPS_HEALTH_INTERVAL": "60", "NUA_APPS_HEALTH_FAILURES": "2"})
    orch.start()
    app = _install(orch, probed_app(interval=0.5, timeout=10), label="brisk")
    release = orch.home / "apps" / "brisk" / "releases" / "1"
    (release / "sick").touch()
    try:
        # Two failed checks half a second apart, well before the host's minute.
        found = wait_for(
            lambda: _restarts(orch, "brisk"),
            timeout=15,
            what="the sentinel to restart the app at the app's own interval",
        )
    finally:
        (release / "sick").unlink()
    assert "unhealthy 2 times in a row (restart 1;" in found[0], found
    wait_for(
        lambda: (
            (p := orch.program("app-brisk:app-brisk")).state == "RUNNING" and p.pid != app["pid"]
        ),
        timeout=15,
        what="the restarted app",
    )


def test_a_slow_starter_is_not_restarted_during_its_install(apps_orch: Orchestrator) -> None:
    orch = apps_orch
    orch.env.update({"NUA_APPS_HEALTH_INTERVAL": "0.5", "NUA_APPS_HEALTH_FAILURES": "2"})
    orch.start()
    # Healthy only 5 s after each start: ten failed checks, but within its 30 s timeout.
    app = _install(orch, probed_app(interval=0.5, timeout=30, warm_up=5), label="slow")
    assert _restarts(orch, "slow") == []
    assert orch.program("app-slow:app-slow").pid == app["pid"]
    assert re.search(
        rf"app-slow:app-slow \(pid {app['pid']}\) is not healthy yet .*503", orch.log("sentinel")
    )
    assert "app-slow:app-slow is unhealthy" not in orch.log("sentinel")


def _stamp(line: str) -> float:
    """Seconds of the day of a log line ("2026-01-02 03:04:05,678 WARNING ...")."""
    h, m, rest = line.split()[1].split(":")
    sec, ms = rest.split(",")
    return int(h) * 3600 + int(m) * 60 + int(sec) + int(ms) / 1000


def test_hung_apps_do_not_delay_noticing_a_hung_worker(apps_orch: Orchestrator) -> None:
    orch = apps_orch
    # Three pings: between the second and the third, every app is due for a check.
    orch.env.update(
        {
            "NUA_SENTINEL_FAILURES": "3",
            "NUA_APPS_HEALTH_INTERVAL": "0.5",
            "NUA_APPS_HEALTH_FAILURES": "2",
        }
    )
    orch.start()
    labels = ["hung1", "hung2", "hung3"]
    apps = {label: _install(orch, probed_app(interval=0.5, timeout=5), label) for label in labels}
    interval = float(orch.env["NUA_SENTINEL_INTERVAL"])
    ping_timeout = float(orch.env["NUA_SENTINEL_PING_TIMEOUT"])
    worker = orch.wait_state("nua:rpc", "RUNNING").pid
    stopped = [worker, *(app["pid"] for app in apps.values())]
    for pid in stopped:
        os.kill(pid, signal.SIGSTOP)
    try:
        wait_for(
            lambda: (p := orch.program("nua:rpc")).state == "RUNNING" and p.pid != worker,
            timeout=30,
            what="the sentinel to restart the hung worker",
        )
        # The stopped apps fail their checks by timing out, and are restarted too.
        for label, app in apps.items():
            wait_for(
                lambda label=label, app=app: (
                    (p := orch.program(f"app-{label}:app-{label}")).state == "RUNNING"
                    and p.pid != app["pid"]
                ),
                timeout=30,
                what=f"the sentinel to restart the hung app {label}",
            )
    finally:
        for pid in stopped:
            if psutil.pid_exists(pid):
                os.kill(pid, signal.SIGCONT)
    log = orch.log("sentinel")
    pings = [_stamp(line) for line in log.splitlines() if f"(pid {worker}) did not answer" in line]
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    print(f"failed pings of the hung worker {[round(g, 2) for g in gaps]} s apart (3 hung apps)")
    # The worker kept its pace: a ping round is its deadline plus the interval;
    # three app checks of 2 s each in between would make one gap 6 s longer.
    assert len(pings) == 3 and all(gap < interval + ping_timeout + 1.5 for gap in gaps), gaps
    supervisord = orch.log("supervisord")
    for label in labels:
        assert re.search(rf"restarting app-{label}:app-{label}: unhealthy 2 times .*timed out", log)
        assert f"sent SIGCONT to app-{label}:app-{label}" in log
        # Continued, each exited on SIGTERM at once: no SIGKILL after the stop timeout.
        assert f"stopped: app-{label} (terminated by SIGKILL)" not in supervisord
