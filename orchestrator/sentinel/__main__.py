"""The sentinel program, run by supervisord as `python -m orchestrator.sentinel`."""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import signal
import sys
import threading
import time
import xmlrpc.client
from collections.abc import Callable
from types import FrameType
from typing import Any

from orchestrator.host import locations as host_locations
from orchestrator.host.parent_death import exit_with_supervisord
from orchestrator.rpc.client import ClientError, RpcClient
from orchestrator.sentinel.watchdog import AppProbe, Watchdog, WatchdogConfig
from orchestrator.supervisor import control

log = logging.getLogger("nua.sentinel")
# A restart waits for supervisord to stop the worker (stopwaitsecs, then SIGKILL).
CONTROL_TIMEOUT = 120.0
# Seconds one health check of an app may take before it counts as failed.
CHECK_TIMEOUT = 2.0


class SupervisordPort:
    """The watchdog's view of supervisord, over XML-RPC.

    Apps are restarted from the watchdog's thread pool, and an XML-RPC proxy
    keeps one connection that two threads must not share: one proxy per thread.
    """

    def __init__(self, connect: Callable[[], Any]) -> None:
        self.connect = connect
        self.local = threading.local()

    @property
    def proxy(self) -> Any:
        proxy = getattr(self.local, "proxy", None)
        if proxy is None:
            proxy = self.local.proxy = self.connect()
        return proxy

    def programs(self) -> list[control.ProgramInfo]:
        return control.programs(self.proxy)

    def restart(self, name: str) -> None:
        try:
            self.proxy.supervisor.stopProcess(name, True)
        except xmlrpc.client.Fault as fault:
            log.warning("stopping %s: %s", name, fault.faultString)
        self.start(name)

    def start(self, name: str) -> None:
        try:
            self.proxy.supervisor.startProcess(name, False)
        except xmlrpc.client.Fault as fault:
            log.warning("starting %s: %s", name, fault.faultString)

    def signal(self, name: str, signame: str) -> None:
        try:
            self.proxy.supervisor.signalProcess(name, signame)
        except xmlrpc.client.Fault as fault:
            # Gone meanwhile (NOT_RUNNING): the restart that follows deals with it.
            log.warning("sending SIG%s to %s: %s", signame, name, fault.faultString)
        else:
            log.info(
                "sent SIG%s to %s, so that a stopped process can exit on SIGTERM", signame, name
            )


def app_probe(where: host_locations.Locations, program: control.ProgramInfo) -> AppProbe | None:
    """How to check a running app, from its launch spec; None when there is nothing to check."""
    from orchestrator.apps import health
    from orchestrator.apps.layout import GROUP_PREFIX, app_files

    label = program.name.split(":", 1)[0].removeprefix(GROUP_PREFIX)
    try:
        spec = json.loads(app_files(where, label).spec.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # no spec: nothing to check against
    if not isinstance(spec, dict) or not isinstance(spec.get("health"), dict):
        return None  # no [healthcheck]: running is healthy
    checked: dict[str, Any] = spec["health"]
    ports = spec.get("ports") or {}
    return AppProbe(
        check=lambda: health.check(checked, ports, timeout=CHECK_TIMEOUT),
        interval=_seconds(checked.get("interval")),
        grace=_seconds(checked.get("timeout")) or 0.0,
    )


def _seconds(value: Any) -> float | None:
    """A positive number of seconds from the spec, else None (the sentinel's default)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        return None
    return float(value)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="nua-sentinel", description=__doc__)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--ping-timeout", type=float, default=2.0)
    parser.add_argument("--failures", type=int, default=3)
    parser.add_argument("--backoff-initial", type=float, default=5.0)
    parser.add_argument("--backoff-max", type=float, default=300.0)
    parser.add_argument("--stable-after", type=float, default=60.0)
    parser.add_argument("--app-interval", type=float, default=10.0)
    parser.add_argument("--app-failures", type=int, default=3)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stdout,
    )
    args = parse_args(argv)
    where = host_locations.resolve()
    client = RpcClient(where.rpc_endpoint, timeout=args.ping_timeout, retries=0)

    def ping() -> bool:
        try:
            return client.call("system.ping") == "pong"
        except ClientError:
            return False

    watchdog = Watchdog(
        SupervisordPort(lambda: control.connect(where.supervisor_socket, CONTROL_TIMEOUT)),
        ping,
        time.monotonic,
        WatchdogConfig(
            failures=args.failures,
            backoff_initial=args.backoff_initial,
            backoff_max=args.backoff_max,
            stable_after=args.stable_after,
            app_interval=args.app_interval,
            app_failures=args.app_failures,
        ),
        app_probe=lambda program: app_probe(where, program),
    )
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if not exit_with_supervisord():
        log.error("supervisord is gone; not starting")
        return 1
    log.info(
        "watching %s every %gs (%d failed pings restart it)",
        where.rpc_endpoint,
        args.interval,
        args.failures,
    )
    while not stop.is_set():
        try:
            watchdog.tick()
        except (OSError, xmlrpc.client.Error, http.client.HTTPException) as exc:
            log.warning("supervisord did not answer: %s", exc)
        stop.wait(args.interval)
    watchdog.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
