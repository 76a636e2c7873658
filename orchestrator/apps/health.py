"""Is an app ready? An HTTP request or a TCP connection to one of its ports."""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any

# config.DEFAULT_HEALTH_TIMEOUT (a unit test keeps them equal); not imported, as the
# sentinel imports this module and need not load the config's validation.
DEFAULT_READY_SECONDS = 30.0


def check(
    health: Mapping[str, Any] | None, ports: Mapping[str, int], timeout: float = 2.0
) -> str | None:
    """None when healthy, else why not. An app without a health check is healthy if running."""
    if not health or not health.get("kind"):
        return None
    port_name = health.get("port")
    port = ports.get(port_name) if port_name else None
    if port is None:
        return f"no port {port_name!r} to check"
    if health["kind"] == "tcp":
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=timeout):
                return None
        except OSError as exc:
            return f"tcp 127.0.0.1:{port}: {exc.strerror or exc}"
    path = str(health.get("path") or "/")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"User-Agent": "nua-health"})
        status = conn.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        return f"GET http://127.0.0.1:{port}{path}: {getattr(exc, 'strerror', None) or exc}"
    finally:
        conn.close()
    if status >= 400:
        return f"GET http://127.0.0.1:{port}{path} answered {status}"
    return None


def ready_within(health: Mapping[str, Any] | None) -> float:
    """Seconds an app gets to become healthy after a start (an app without a check: the default).

    A release without a [healthcheck] stores `health: None`; it is ready once
    supervisord counts it running, so this only bounds the wait.
    """
    timeout = (health or {}).get("timeout")
    return float(timeout) if timeout else DEFAULT_READY_SECONDS


def wait_healthy(
    health: Mapping[str, Any] | None,
    ports: Mapping[str, int],
    timeout: float,
    still_running: Callable[[], str | None],
    every: float = 0.2,
) -> str | None:
    """Poll until healthy (None), or return why not at the deadline or when the app stopped."""
    deadline = time.monotonic() + timeout
    while True:
        stopped = still_running()
        if stopped:
            return stopped
        problem = check(health, ports)
        if problem is None:
            return None
        if time.monotonic() >= deadline:
            return f"not healthy after {timeout:g}s: {problem}"
        time.sleep(every)
