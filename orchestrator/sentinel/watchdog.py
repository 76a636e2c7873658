"""The sentinel's decisions, apart from the I/O that carries them out.

Each `tick`:
- pings the rpc worker; after `failures` consecutive failures while
  supervisord reports it RUNNING (hung, not crashed: supervisord only sees
  exits), restarts it through supervisord, after a SIGCONT: supervisord never
  sends one, so a stopped (SIGSTOP) process would sit out the whole stop
  timeout until SIGKILL instead of exiting on SIGTERM;
- re-arms programs left in FATAL once their backoff has passed;
- checks the health of running apps (groups app-*), in a small thread pool so
  that hung apps never delay the worker's ping, every `interval` seconds
  (the app's own `healthcheck.interval`, else `app_interval`), and restarts
  one that failed `app_failures` checks in a row, with the same backoff.
  An app process gets its `healthcheck.timeout` as a start-up grace: until it
  first passes, failed checks within that long of its start do not count
  (else a slow starter is restarted during its own install's health step);
- forgets a program's backoff once it has been healthy for `stable_after`
  seconds: the worker answering every ping, an app passing every check, any
  other program staying RUNNING. Only RUNNING would not do: a stopped or
  deadlocked worker is RUNNING to supervisord, and forgetting its backoff
  would restart it from the initial delay again and again, never at the cap.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from orchestrator.sentinel.backoff import Backoff
from orchestrator.supervisor.control import FATAL, RUNNING, ProgramInfo

log = logging.getLogger("nua.sentinel")


class Supervisor(Protocol):
    """What the watchdog asks of supervisord."""

    def programs(self) -> list[ProgramInfo]: ...

    def restart(self, name: str) -> None: ...

    def start(self, name: str) -> None: ...

    def signal(self, name: str, signame: str) -> None: ...


@dataclass(frozen=True)
class WatchdogConfig:
    failures: int = 3
    backoff_initial: float = 5.0
    backoff_max: float = 300.0
    stable_after: float = 60.0
    worker: str = "nua:rpc"
    itself: str = "nua:sentinel"
    app_interval: float = 10.0
    app_failures: int = 3


APP_GROUP_PREFIX = "app-"
# Apps checked or restarted at the same time at most; more wait their turn.
APP_THREADS = 4


@dataclass(frozen=True)
class AppProbe:
    """How the sentinel checks one app (from the app's launch spec)."""

    #: None when healthy, else why not.
    check: Callable[[], str | None]
    #: Seconds between two checks: the app's healthcheck.interval; None: the sentinel's default.
    interval: float | None = None
    #: Seconds after a start before failed checks count: the app's healthcheck.timeout.
    grace: float = 0.0


@dataclass
class _AppWatch:
    """What the sentinel knows of one app process (a new pid starts afresh)."""

    pid: int
    # When supervisord started it (from its uptime, so a restarted sentinel agrees).
    started_at: float
    failed: int = 0
    checked_at: float = float("-inf")
    # Passed a check since its start: its start-up grace is over.
    ever_healthy: bool = False
    said_starting: bool = False
    # The app's own interval and grace, from its probe when last read.
    interval: float | None = None
    grace: float = 0.0
    # The check running in the pool, if any: one at a time per app.
    pending: Future[str | None] | None = None
    # Since when every check passed (None: the last one failed, or none ran yet).
    healthy_since: float | None = None
    # Whether "backing off" was logged since the last restart (once is enough).
    said_backing_off: bool = False


class Watchdog:
    def __init__(
        self,
        supervisor: Supervisor,
        ping: Callable[[], bool],
        clock: Callable[[], float],
        config: WatchdogConfig,
        app_probe: Callable[[ProgramInfo], AppProbe | None] | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.supervisor = supervisor
        self.ping = ping
        self.clock = clock
        self.config = config
        # None: apps are not checked. It returns None for an app with nothing to check.
        self.app_probe = app_probe
        self.backoff = Backoff(config.backoff_initial, config.backoff_max)
        self.failed_pings = 0
        # Since when every ping of the worker was answered (None: the last one failed).
        self.worker_healthy_since: float | None = None
        self.said_backing_off = False
        self.apps: dict[str, _AppWatch] = {}
        # Apps' checks and restarts run here, never in the tick: threads start on first use.
        self.executor = executor or ThreadPoolExecutor(APP_THREADS, thread_name_prefix="app-check")
        self.restarting: dict[str, Future[None]] = {}

    def close(self) -> None:
        """Stop taking work; jobs in flight end by their own timeouts."""
        self.executor.shutdown(wait=False, cancel_futures=True)

    def _health_watched(self, name: str) -> bool:
        """Whether `name` has a health signal of its own (pings, checks), beyond RUNNING."""
        return name == self.config.worker or (
            self.app_probe is not None and name.startswith(APP_GROUP_PREFIX)
        )

    def _forget_when_stable(self, name: str, healthy_since: float | None, now: float) -> None:
        if healthy_since is None or now - healthy_since < self.config.stable_after:
            return
        if name in self.backoff.attempts:
            log.info(
                "%s healthy for %gs: its next restart would wait only %gs again",
                name,
                now - healthy_since,
                self.config.backoff_initial,
            )
        self.backoff.forget(name)

    def tick(self) -> None:
        now = self.clock()
        programs = {p.name: p for p in self.supervisor.programs()}
        for program in programs.values():
            if program.state == RUNNING and not self._health_watched(program.name):
                self._forget_when_stable(program.name, now - (program.uptime or 0), now)
        self._watch_worker(programs.get(self.config.worker), now)
        for program in programs.values():
            if program.state == FATAL and program.name != self.config.itself:
                self._rearm(program, now)
        if self.app_probe is not None:
            self._watch_apps(programs, now)

    def _watch_apps(self, programs: dict[str, ProgramInfo], now: float) -> None:
        for program in programs.values():
            if program.name.startswith(APP_GROUP_PREFIX):
                self._watch_app(program, now)
        # Removed apps: a later app of the same name starts afresh.
        for name in [n for n in self.apps if n not in programs]:
            del self.apps[name]
        for name in [n for n, job in self.restarting.items() if n not in programs and job.done()]:
            del self.restarting[name]

    def _watch_app(self, app: ProgramInfo, now: float) -> None:
        name = app.name
        restart = self.restarting.get(name)
        if restart is not None:
            if not restart.done():
                return  # supervisord is still stopping it: nothing to judge meanwhile
            del self.restarting[name]
            if restart.exception() is not None:
                log.warning("restarting %s failed: %s", name, restart.exception())
        if app.state != RUNNING:
            self.apps.pop(name, None)
            return
        watch = self.apps.get(name)
        if watch is None or watch.pid != app.pid:
            # A new process: its own count (a check still running for the old one is
            # ignored), but checks keep their pace.
            old = watch
            watch = self.apps[name] = _AppWatch(app.pid, started_at=now - (app.uptime or 0.0))
            if old is not None:
                watch.checked_at, watch.interval = old.checked_at, old.interval
        if watch.pending is None and now >= watch.checked_at + (
            watch.interval or self.config.app_interval
        ):
            watch.checked_at = now
            assert self.app_probe is not None
            probe = self.app_probe(app)
            if probe is None:  # nothing to check: running is healthy
                watch.interval, watch.grace = None, 0.0
                self._judge_app(app, watch, None, now)
                return
            watch.interval, watch.grace = probe.interval, probe.grace
            # In the pool: a hung app's check (up to its timeout) never delays the worker's ping.
            watch.pending = self.executor.submit(probe.check)
        if watch.pending is not None and watch.pending.done():
            done, watch.pending = watch.pending, None
            failure = done.exception()
            problem = done.result() if failure is None else f"the check itself failed: {failure!r}"
            self._judge_app(app, watch, problem, now)

    def _judge_app(
        self, app: ProgramInfo, watch: _AppWatch, problem: str | None, now: float
    ) -> None:
        name = app.name
        if problem is None:
            if watch.failed:
                log.info("%s is healthy again after %d failed check(s)", name, watch.failed)
            watch.failed = 0
            watch.ever_healthy = True
            if watch.healthy_since is None:
                watch.healthy_since = now
            self._forget_when_stable(name, watch.healthy_since, now)
            return
        watch.healthy_since = None
        if not watch.ever_healthy and now - watch.started_at < watch.grace:
            if not watch.said_starting:
                watch.said_starting = True
                log.info(
                    "%s (pid %d) is not healthy yet (%s); failed checks count from %gs "
                    "after its start (healthcheck.timeout)",
                    name,
                    app.pid,
                    problem,
                    watch.grace,
                )
            return
        watch.failed += 1
        limit = self.config.app_failures
        if watch.failed <= limit:
            log.warning("%s is unhealthy (%d/%d): %s", name, watch.failed, limit, problem)
        if watch.failed < limit:
            return
        if not self.backoff.allowed(name, now):
            if not watch.said_backing_off:
                watch.said_backing_off = True
                log.warning(
                    "%s stays unhealthy (%d checks in a row) but was restarted recently: "
                    "%s in %.0fs",
                    name,
                    watch.failed,
                    self._next_restart(name),
                    self.backoff.remaining(name, now),
                )
            return
        attempt = self.backoff.record(name, now)
        log.error(
            "restarting %s: unhealthy %d times in a row (restart %d%s): %s",
            name,
            watch.failed,
            attempt,
            self._then(attempt),
            problem,
        )
        watch.failed = 0
        watch.said_backing_off = False
        # In the pool too: supervisord may wait the app's whole stop timeout.
        self.restarting[name] = self.executor.submit(self._restart_hung, name)

    def _next_restart(self, name: str) -> str:
        return f"restart {self.backoff.attempts.get(name, 0) + 1}"

    def _then(self, attempt: int) -> str:
        """How long the next restart will wait at least, for the log."""
        return f"; the next no sooner than {self.backoff.delay(attempt + 1):g}s after"

    def _watch_worker(self, worker: ProgramInfo | None, now: float) -> None:
        if worker is None or worker.state != RUNNING:
            self.failed_pings = 0
            self.worker_healthy_since = None
            return
        if self.ping():
            if self.failed_pings:
                log.info("%s answers again after %d failed ping(s)", worker.name, self.failed_pings)
            self.failed_pings = 0
            if self.worker_healthy_since is None:
                self.worker_healthy_since = now
            self._forget_when_stable(worker.name, self.worker_healthy_since, now)
            return
        self.worker_healthy_since = None
        self.failed_pings += 1
        limit = self.config.failures
        if self.failed_pings <= limit:
            log.warning(
                "%s (pid %d) did not answer system.ping (%d/%d)",
                worker.name,
                worker.pid,
                self.failed_pings,
                limit,
            )
        if self.failed_pings < limit:
            return
        if not self.backoff.allowed(worker.name, now):
            if not self.said_backing_off:
                self.said_backing_off = True
                log.warning(
                    "%s (pid %d) is still hung (%d pings in a row unanswered) but was restarted "
                    "recently: %s in %.0fs",
                    worker.name,
                    worker.pid,
                    self.failed_pings,
                    self._next_restart(worker.name),
                    self.backoff.remaining(worker.name, now),
                )
            return
        attempt = self.backoff.record(worker.name, now)
        log.error(
            "restarting %s (pid %d): RUNNING but no answer to %d pings in a row (restart %d%s)",
            worker.name,
            worker.pid,
            self.failed_pings,
            attempt,
            self._then(attempt),
        )
        self.failed_pings = 0
        self.said_backing_off = False
        self._restart_hung(worker.name)

    def _restart_hung(self, name: str) -> None:
        """Restart a RUNNING program that does not do its job; it may be stopped (SIGSTOP).

        SIGCONT first lets a stopped process handle supervisord's SIGTERM and exit
        cleanly at once; a deadlocked one is still bounded by its stop timeout.
        """
        self.supervisor.signal(name, "CONT")
        self.supervisor.restart(name)

    def _rearm(self, program: ProgramInfo, now: float) -> None:
        name = program.name
        detail = program.description or "no detail"
        first_sight = self.backoff.next_at(name) is None
        if not self.backoff.due(name, now):
            when = self.backoff.next_at(name)
            if first_sight and when is not None:
                log.warning("%s is FATAL (%s); re-arming it in %.1fs", name, detail, when - now)
            return
        attempt = self.backoff.record(name, now)
        log.warning(
            "re-arming %s, FATAL (%s): attempt %d; the next would wait %gs",
            name,
            detail,
            attempt,
            self.backoff.delay(attempt + 1),
        )
        self.supervisor.start(name)
