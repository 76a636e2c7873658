"""One app's group in supervisord: add, change or remove it alone; start, stop, state.

`reloadConfig` reports which groups the files on disk add, change or remove;
only the app's own group is acted on, so other apps and the orchestrator's
programs keep running (what `supervisorctl update GROUP` does).
"""

from __future__ import annotations

import time
import xmlrpc.client
from typing import Any

from orchestrator.apps.layout import AppFiles

RUNNING, STARTING, BACKOFF = "RUNNING", "STARTING", "BACKOFF"
FAILED_STATES = ("FATAL", "EXITED")


def _fault_code(fault: xmlrpc.client.Fault) -> str:
    return fault.faultString.split(":", 1)[0]


def apply(proxy: Any, files: AppFiles) -> None:
    """Make supervisord's view of this app's group match its file (or its absence)."""
    added, changed, removed = proxy.supervisor.reloadConfig()[0]
    group = files.group
    if group in changed or group in removed:
        stop(proxy, files)
        proxy.supervisor.removeProcessGroup(group)
    if group in changed or group in added:
        proxy.supervisor.addProcessGroup(group)


def stop(proxy: Any, files: AppFiles) -> None:
    try:
        proxy.supervisor.stopProcessGroup(files.group, True)
    except xmlrpc.client.Fault as fault:
        if _fault_code(fault) not in ("BAD_NAME", "NOT_RUNNING"):
            raise


def info(proxy: Any, files: AppFiles) -> dict[str, Any] | None:
    try:
        return proxy.supervisor.getProcessInfo(files.process)
    except xmlrpc.client.Fault as fault:
        if _fault_code(fault) == "BAD_NAME":
            return None
        raise


def start(proxy: Any, files: AppFiles, timeout: float) -> str | None:
    """Start the app and wait until supervisord counts it RUNNING; else say why not."""
    try:
        proxy.supervisor.startProcess(files.process, False)
    except xmlrpc.client.Fault as fault:
        if _fault_code(fault) != "ALREADY_STARTED":
            return f"supervisord could not start it: {fault.faultString}"
    deadline = time.monotonic() + timeout
    while True:
        state = info(proxy, files)
        name = state["statename"] if state else "missing"
        if name == RUNNING:
            return None
        if (
            name in FAILED_STATES
            or name == "missing"
            or (name == BACKOFF and time.monotonic() >= deadline)
        ):
            return f"it did not stay up (supervisord state {name})"
        if time.monotonic() >= deadline:
            return f"still {name} after {timeout:g}s"
        time.sleep(0.1)


def exited(proxy: Any, files: AppFiles) -> str | None:
    """Why the app is not running any more, or None while it runs."""
    state = info(proxy, files)
    if state is None:
        return "it is not in supervisord"
    if state["statename"] in (RUNNING, STARTING):
        return None
    return f"it stopped (supervisord state {state['statename']})"
