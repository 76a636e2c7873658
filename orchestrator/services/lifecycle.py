"""start, stop and restart: the orchestrator's lifecycle under supervisord."""

from __future__ import annotations

import contextlib
import http.client
import secrets
import signal
import time
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from orchestrator import resources
from orchestrator.errors import NuaError, StartupError
from orchestrator.host.instance_lock import InstanceLock
from orchestrator.host.interrupts import Interrupted, held_off, signal_of, sigterm_raises
from orchestrator.host.locations import Locations
from orchestrator.host.planted_links import refuse_planted_links
from orchestrator.host.processes import ProcessId
from orchestrator.rpc.client import ClientError, RpcClient
from orchestrator.settings.defaults import load_defaults
from orchestrator.settings.effective import EffectiveSettings, effective_settings
from orchestrator.supervisor import config as supervisor_config
from orchestrator.supervisor import control
from orchestrator.supervisor.daemon import DEFAULT_STOP_TIMEOUT, Leftovers, Supervisord, tail

if TYPE_CHECKING:
    from orchestrator.services.database import PreparedDatabase

Report = Callable[[str], None]
LOG_LINES_ON_FAILURE = 20


@dataclass
class StartResult:
    pid: int
    already_running: bool = False
    cleaned: Leftovers = field(default_factory=Leftovers)
    database: PreparedDatabase | None = None
    settings: EffectiveSettings | None = None
    programs: tuple[str, ...] = ()
    seconds: float = 0.0


@dataclass
class StopResult:
    was_running: bool
    pid: int | None = None
    cleaned: Leftovers = field(default_factory=Leftovers)
    forced: list[str] = field(default_factory=list)


def start(
    locations: Locations,
    report: Report = lambda _m: None,
    *,
    held: InstanceLock | None = None,
) -> StartResult:
    """Start the orchestrator; return once the worker answers system.ping.

    `held`: the instance lock, when the caller already holds it (restart).
    """
    began = time.monotonic()
    locations.ensure()
    with _hold(locations, held):
        # Before anything in the locations is read, written or chmod-ed: a planted
        # link would send that to its target (the lock itself is opened O_NOFOLLOW).
        refuse_planted_links(locations, "start")
        daemon = Supervisord(locations)
        running = daemon.running()
        if running is not None:
            return StartResult(pid=running.pid, already_running=True)
        cleaned = daemon.clean()
        if cleaned:
            report(f"cleaned what a previous run left: {cleaned.describe()}")
        # SQLAlchemy and Alembic are imported only by the commands that need them.
        from orchestrator.services.database import prepare, preview

        defaults = load_defaults()
        # Whatever can be refused without writing is checked before the database
        # is created or upgraded (bad input never modifies it): the URL and the
        # file, the settings this run will use, the config they render, supervisord.
        seen = preview(locations, defaults)
        planned = effective_settings(seen.stored_settings, defaults)
        token = secrets.token_hex(16)
        _render(locations, planned, token)
        daemon.command(str(planned.get("supervisor.executable", "")))
        database = prepare(locations, defaults, seen)
        settings = effective_settings(database.stored_settings, defaults)
        for var in settings.unknown_env:
            report(f"warning: {var} matches no setting; ignored")
        for line in settings.refused_warnings():
            report(line)
        from orchestrator.apps.sections import write_all

        write_all(locations, database.url, settings.values)
        rendered = _render(locations, settings, token)
        supervisor_config.write(locations.supervisor_conf, rendered)
        executable = str(settings.get("supervisor.executable", ""))
        start_timeout = float(settings["supervisor.start_timeout"])
        stop_timeout = float(settings["supervisor.stop_timeout"])
        # From here on a failure, Ctrl-C or SIGTERM stops what this start launched.
        launched: ProcessId | None = None
        try:
            with sigterm_raises():
                ident = launched = daemon.launch(executable, start_timeout, stop_timeout)
                _wait_ready(locations, daemon, start_timeout)
        except BaseException as exc:
            with held_off():
                _stop_what_was_launched(daemon, launched, stop_timeout, report)
            signum = signal_of(exc)
            if signum is not None:
                raise Interrupted(
                    signum,
                    f"start was interrupted by {signal.Signals(signum).name}; "
                    "stopped supervisord and every program it had started",
                ) from None
            raise
        return StartResult(
            pid=ident.pid,
            cleaned=cleaned,
            database=database,
            settings=settings,
            programs=rendered.programs,
            seconds=time.monotonic() - began,
        )


def _stop_what_was_launched(
    daemon: Supervisord, launched: ProcessId | None, stop_timeout: float, report: Report
) -> None:
    """Stop the supervisord a failed start launched, and end whatever carries its token.

    `launched` is None when launch itself was interrupted: supervisord may
    have daemonized without writing its pid file yet; it carries the run
    token, so clean() still finds it.
    """
    try:
        ident = launched or daemon.running()
        if ident is not None:
            daemon.shutdown(ident, stop_timeout)
        daemon.clean()
    except NuaError as exc:
        report(f"warning: {exc}")


def _render(
    locations: Locations, settings: EffectiveSettings, token: str
) -> supervisor_config.RenderedConfig:
    """supervisord.conf for this run, in memory (SettingsError naming what is wrong)."""
    return supervisor_config.render(
        resources.supervisor_template().read_text(encoding="utf-8"),
        locations,
        settings.values,
        token,
    )


def _wait_ready(locations: Locations, daemon: Supervisord, timeout: float) -> None:
    """Poll until the worker answers system.ping and no program has failed.

    Readiness is the worker's answer, not supervisord's RUNNING: that comes a
    whole startsecs after the spawn. A program still on its first start counts
    as up; one that exited (BACKOFF) is waited for, and FATAL ends the wait.
    """
    deadline = time.monotonic() + timeout
    client = RpcClient(locations.rpc_endpoint, timeout=0.5, retries=0, reconnect_ms=10)
    # A request wakes supervisord's event loop, which otherwise spawns the
    # programs only after its first one-second poll.
    control.is_answering(locations.supervisor_socket)
    with client:
        answered = False
        while time.monotonic() < deadline:
            if daemon.running() is None:
                raise StartupError(
                    "supervisord exited during start-up; last lines of "
                    f"{locations.logs / 'supervisord.log'}:\n"
                    + "\n".join(tail(locations.logs / "supervisord.log", LOG_LINES_ON_FAILURE))
                )
            if not answered:
                with contextlib.suppress(ClientError):
                    answered = client.call("system.ping") == "pong"
            programs = _programs(daemon)
            if any(p.state == control.FATAL for p in programs):
                break  # supervisord gave up on a program: no point waiting any longer
            if answered and programs and all(p.is_up for p in programs):
                return
            time.sleep(0.05)
    raise StartupError(
        _not_ready_message(locations, daemon, timeout - (deadline - time.monotonic()))
    )


def _programs(daemon: Supervisord) -> list[control.ProgramInfo]:
    try:
        return control.programs(daemon.proxy(timeout=2.0), control.ORCHESTRATOR_GROUP)
    except (OSError, xmlrpc.client.Error, http.client.HTTPException):
        return []


def _not_ready_message(locations: Locations, daemon: Supervisord, waited: float) -> str:
    states = {}
    try:
        states = {
            p.name: p
            for p in control.programs(daemon.proxy(timeout=2.0), control.ORCHESTRATOR_GROUP)
        }
    except Exception:
        states = {}
    failing = sorted(
        (p for p in states.values() if not p.is_up),
        key=lambda p: p.state != control.FATAL,
    )
    program = failing[0].name.split(":")[-1] if failing else "rpc"
    state = failing[0].state if failing else "up but not answering"
    log_file = locations.logs / f"{program}.log"
    lines = tail(log_file, LOG_LINES_ON_FAILURE)
    return (
        f"the orchestrator did not become ready ({program}: {state} after {waited:.1f}s); "
        f"stopped everything. Last lines of {log_file}:\n"
        + ("\n".join(lines) if lines else "(empty)")
    )


def stop(
    locations: Locations, timeout: float | None = None, *, held: InstanceLock | None = None
) -> StopResult:
    """Stop supervisord and every program; clean what a crashed run left.

    `held`: the instance lock, when the caller already holds it (restart).
    """
    locations.ensure()
    with _hold(locations, held):
        daemon = Supervisord(locations)
        ident = daemon.running()
        if ident is None:
            return StopResult(was_running=False, cleaned=daemon.clean())
        manifest = daemon.manifest()
        limit = timeout or (manifest.stop_timeout if manifest else DEFAULT_STOP_TIMEOUT)
        forced = daemon.shutdown(ident, limit)
        cleaned = daemon.clean()
        return StopResult(was_running=True, pid=ident.pid, cleaned=cleaned, forced=forced)


def restart(
    locations: Locations, report: Report = lambda _m: None, timeout: float | None = None
) -> tuple[StopResult, StartResult]:
    """stop, then start, holding the instance lock throughout.

    Released in between, another command could start the orchestrator there,
    and this start would find it running instead of starting it afresh.
    """
    locations.ensure()
    with InstanceLock(locations.lock_file) as lock:
        stopped = stop(locations, timeout, held=lock)
        started = start(locations, report, held=lock)
    return stopped, started


def _hold(
    locations: Locations, held: InstanceLock | None
) -> InstanceLock | contextlib.nullcontext[InstanceLock]:
    """The instance lock to take, or the one the caller holds (which must be this home's)."""
    if held is None:
        return InstanceLock(locations.lock_file)
    if not held.held or held.path != locations.lock_file:
        raise RuntimeError(f"the instance lock {locations.lock_file} is not held")
    return contextlib.nullcontext(held)
