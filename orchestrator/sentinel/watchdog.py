"""The sentinel's decisions, apart from the I/O that carries them out.

Each `tick`:
- pings the rpc worker; after `failures` consecutive failures while
  supervisord reports it RUNNING (hung, not crashed: supervisord only sees
  exits), restarts it through supervisord;
- re-arms programs left in FATAL once their backoff has passed;
- forgets the backoff of a program that stayed RUNNING for `stable_after`;
- checks the health of running apps (groups app-*) every `app_interval`
  seconds, and restarts one that failed `app_failures` checks in a row, with
  the same backoff.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
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


class Watchdog:
    def __init__(
        self,
        supervisor: Supervisor,
        ping: Callable[[], bool],
        clock: Callable[[], float],
        config: WatchdogConfig,
        app_health: Callable[[ProgramInfo], str | None] | None = None,
    ) -> None:
        self.supervisor = supervisor
        self.ping = ping
        self.clock = clock
        self.config = config
        self.app_health = app_health
        self.backoff = Backoff(config.backoff_initial, config.backoff_max)
        self.failed_pings = 0
        self.app_failed: dict[str, int] = {}
        self.app_checked: dict[str, float] = {}

    def tick(self) -> None:
        now = self.clock()
        programs = {p.name: p for p in self.supervisor.programs()}
        for program in programs.values():
            if program.state == RUNNING and (program.uptime or 0) >= self.config.stable_after:
                self.backoff.forget(program.name)
        self._watch_worker(programs.get(self.config.worker), now)
        for program in programs.values():
            if program.state == FATAL and program.name != self.config.itself:
                self._rearm(program, now)
        if self.app_health is not None:
            for program in programs.values():
                if program.name.startswith(APP_GROUP_PREFIX):
                    self._watch_app(program, now)

    def _watch_app(self, app: ProgramInfo, now: float) -> None:
        name = app.name
        if app.state != RUNNING:
            self.app_failed.pop(name, None)
            return
        if now < self.app_checked.get(name, float("-inf")) + self.config.app_interval:
            return
        self.app_checked[name] = now
        assert self.app_health is not None
        problem = self.app_health(app)
        if problem is None:
            if self.app_failed.pop(name, 0):
                log.info("%s is healthy again", name)
            return
        failed = self.app_failed[name] = self.app_failed.get(name, 0) + 1
        log.warning("%s is unhealthy (%d/%d): %s", name, failed, self.config.app_failures, problem)
        if failed < self.config.app_failures:
            return
        if not self.backoff.allowed(name, now):
            log.warning("%s stays unhealthy but was restarted recently; backing off", name)
            return
        attempt = self.backoff.record(name, now)
        log.error("restarting %s: unhealthy %d times in a row (restart %d)", name, failed, attempt)
        self.app_failed[name] = 0
        self.supervisor.restart(name)

    def _watch_worker(self, worker: ProgramInfo | None, now: float) -> None:
        if worker is None or worker.state != RUNNING:
            self.failed_pings = 0
            return
        if self.ping():
            if self.failed_pings:
                log.info("%s answers again after %d failed ping(s)", worker.name, self.failed_pings)
            self.failed_pings = 0
            return
        self.failed_pings += 1
        log.warning(
            "%s (pid %d) did not answer system.ping (%d/%d)",
            worker.name,
            worker.pid,
            self.failed_pings,
            self.config.failures,
        )
        if self.failed_pings < self.config.failures:
            return
        if not self.backoff.allowed(worker.name, now):
            log.warning("%s is hung but was restarted recently; backing off", worker.name)
            return
        attempt = self.backoff.record(worker.name, now)
        log.error(
            "restarting %s (pid %d): RUNNING but no answer to %d pings in a row (restart %d)",
            worker.name,
            worker.pid,
            self.failed_pings,
            attempt,
        )
        self.failed_pings = 0
        self.supervisor.restart(worker.name)

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
