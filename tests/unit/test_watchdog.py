"""orchestrator/sentinel/watchdog.py: the sentinel's decisions, with a fake supervisord."""

from __future__ import annotations

import itertools
import json
import logging
import re
import socket
import threading
import xmlrpc.client
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from orchestrator.apps.layout import app_files
from orchestrator.host.locations import Locations, resolve
from orchestrator.sentinel.__main__ import SupervisordPort, app_probe
from orchestrator.sentinel.watchdog import AppProbe, Watchdog, WatchdogConfig
from orchestrator.supervisor.control import FATAL, RUNNING, STARTING, ProgramInfo

WORKER = "nua:rpc"
SENTINEL = "nua:sentinel"
T = TypeVar("T")
CONFIG = WatchdogConfig(failures=3, backoff_initial=5.0, backoff_max=20.0, stable_after=60.0)


@dataclass
class FakeClock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


PIDS = itertools.count(1000)


@dataclass
class Program:
    state: str
    started_at: float = 0.0
    # After a start, the state the program falls back to (a program that keeps failing).
    after_start: str | None = None
    # Each (re)start is a new process, as with supervisord.
    pid: int = field(default_factory=lambda: next(PIDS))


@dataclass
class FakeSupervisor:
    """supervisord as the watchdog sees it: programs with states, and the calls made."""

    clock: FakeClock
    programs_by_name: dict[str, Program] = field(default_factory=dict)
    restarts: list[tuple[str, float]] = field(default_factory=list)
    starts: list[tuple[str, float]] = field(default_factory=list)
    # Every call that acts on a program, in order: ("restart", name), ("SIGCONT", name) ...
    calls: list[tuple[str, str]] = field(default_factory=list)

    def set(self, name: str, state: str, started_at: float = 0.0) -> None:
        self.programs_by_name[name] = Program(state, started_at)

    def programs(self) -> list[ProgramInfo]:
        now = self.clock()
        return [
            ProgramInfo(
                name=name,
                state=p.state,
                pid=p.pid if p.state == RUNNING else 0,
                uptime=now - p.started_at if p.state == RUNNING else None,
                description="Exited too quickly" if p.state == FATAL else "",
                exit_status=0,
            )
            for name, p in self.programs_by_name.items()
        ]

    def restart(self, name: str) -> None:
        self.calls.append(("restart", name))
        self.restarts.append((name, self.clock()))
        program = self.programs_by_name[name]
        program.started_at = self.clock()
        program.pid = next(PIDS)

    def start(self, name: str) -> None:
        self.calls.append(("start", name))
        self.starts.append((name, self.clock()))
        program = self.programs_by_name[name]
        program.pid = next(PIDS)
        if program.after_start is None:
            program.state = RUNNING
            program.started_at = self.clock()
        else:
            program.state = program.after_start

    def signal(self, name: str, signame: str) -> None:
        self.calls.append((f"SIG{signame}", name))


class InlineExecutor(Executor):
    """Runs each job at once, in the caller's thread: app checks become deterministic."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # the watchdog reads it from the future, as from a pool
            future.set_exception(exc)
        return future


@dataclass
class FakePing:
    """Answers from a script; counts how often it was asked."""

    answers: list[bool] = field(default_factory=list)
    default: bool = True
    calls: int = 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.answers.pop(0) if self.answers else self.default


@dataclass
class Rig:
    clock: FakeClock
    supervisor: FakeSupervisor
    ping: FakePing
    watchdog: Watchdog

    def tick_at(self, now: float) -> None:
        self.clock.now = now
        self.watchdog.tick()


@pytest.fixture
def rig() -> Rig:
    clock = FakeClock()
    supervisor = FakeSupervisor(clock)
    supervisor.set(WORKER, RUNNING)
    supervisor.set(SENTINEL, RUNNING)
    ping = FakePing()
    return Rig(clock, supervisor, ping, Watchdog(supervisor, ping, clock, CONFIG))


# -- a hung worker ---------------------------------------------------------------------


def test_a_healthy_worker_is_left_alone(rig: Rig) -> None:
    for t in range(100):
        rig.tick_at(float(t))
    assert rig.ping.calls == 100
    assert rig.supervisor.restarts == []
    assert rig.supervisor.starts == []


def test_k_failed_pings_of_a_running_worker_restart_it_once(rig: Rig) -> None:
    rig.ping.answers = [False, False, False]
    rig.tick_at(0.0)
    rig.tick_at(1.0)
    assert rig.supervisor.restarts == []
    rig.tick_at(2.0)
    assert rig.supervisor.restarts == [(WORKER, 2.0)]
    # Answers again: no further restart.
    for t in range(3, 30):
        rig.tick_at(float(t))
    assert rig.supervisor.restarts == [(WORKER, 2.0)]


def test_a_hung_worker_gets_sigcont_just_before_its_restart(rig: Rig) -> None:
    # A SIGSTOPped worker cannot act on supervisord's SIGTERM until it is continued.
    rig.ping.default = False
    for t in range(3):
        rig.tick_at(float(t))
    assert rig.supervisor.calls == [("SIGCONT", WORKER), ("restart", WORKER)]


def test_a_fatal_program_is_started_without_sigcont(rig: Rig) -> None:
    rig.supervisor.set("nua:cron", FATAL)
    rig.tick_at(0.0)
    rig.tick_at(5.0)
    assert rig.supervisor.calls == [("start", "nua:cron")]


def test_the_count_starts_again_after_a_restart(rig: Rig) -> None:
    rig.ping.default = False
    for t in range(3):
        rig.tick_at(float(t))
    assert len(rig.supervisor.restarts) == 1
    assert rig.watchdog.failed_pings == 0
    rig.ping.default = True
    rig.ping.answers = [False, False]
    rig.tick_at(100.0)
    rig.tick_at(101.0)
    assert len(rig.supervisor.restarts) == 1


def test_failed_pings_while_not_running_do_not_count(rig: Rig) -> None:
    rig.ping.default = False
    rig.tick_at(0.0)
    rig.tick_at(1.0)
    assert rig.watchdog.failed_pings == 2
    rig.supervisor.set(WORKER, STARTING)
    calls = rig.ping.calls
    rig.tick_at(2.0)
    assert rig.ping.calls == calls  # not asked while supervisord is (re)starting it
    assert rig.watchdog.failed_pings == 0
    rig.supervisor.set(WORKER, RUNNING, started_at=3.0)
    rig.tick_at(3.0)
    rig.tick_at(4.0)
    assert rig.supervisor.restarts == []
    rig.tick_at(5.0)
    assert rig.supervisor.restarts == [(WORKER, 5.0)]


def test_a_missing_worker_is_not_pinged(rig: Rig) -> None:
    del rig.supervisor.programs_by_name[WORKER]
    for t in range(10):
        rig.tick_at(float(t))
    assert rig.ping.calls == 0
    assert rig.supervisor.restarts == []


def test_a_successful_ping_resets_the_count(rig: Rig) -> None:
    rig.ping.answers = [False, False, True, False, False, True, False, False]
    for t in range(8):
        rig.tick_at(float(t))
    assert rig.supervisor.restarts == []
    assert rig.watchdog.failed_pings == 2
    rig.ping.answers = [False]
    rig.tick_at(8.0)
    assert rig.supervisor.restarts == [(WORKER, 8.0)]


def test_repeated_hangs_are_restarted_no_faster_than_the_backoff(rig: Rig) -> None:
    rig.ping.default = False
    for t in range(70):
        rig.tick_at(float(t))
    times = [t for name, t in rig.supervisor.restarts if name == WORKER]
    # First after 3 failures (t=2), then at least 5, 10, 20, 20 (capped) seconds apart.
    assert times == [2.0, 7.0, 17.0, 37.0, 57.0]
    assert rig.supervisor.starts == []


def test_a_worker_answering_for_stable_after_has_its_backoff_forgotten(rig: Rig) -> None:
    rig.ping.default = False
    for t in range(8):
        rig.tick_at(float(t))
    assert [t for _, t in rig.supervisor.restarts] == [2.0, 7.0]
    assert rig.watchdog.backoff.attempts[WORKER] == 2
    # It answers from t=8 on: stable_after seconds of answers later, start afresh.
    rig.ping.default = True
    for t in range(8, 68):
        rig.tick_at(float(t))
    assert rig.watchdog.backoff.attempts[WORKER] == 2
    rig.tick_at(68.0)
    assert WORKER not in rig.watchdog.backoff.attempts
    # A new hang is restarted after 3 failures, without waiting out the old backoff.
    rig.ping.default = False
    for t in (69.0, 70.0, 71.0):
        rig.tick_at(t)
    assert [t for _, t in rig.supervisor.restarts] == [2.0, 7.0, 71.0]


def test_one_unanswered_ping_restarts_the_count_towards_stable(rig: Rig) -> None:
    rig.ping.default = False
    for t in range(3):
        rig.tick_at(float(t))
    assert rig.watchdog.backoff.attempts[WORKER] == 1
    rig.ping.default = True
    rig.ping.answers = [True] * 50 + [False]  # answers from 3 to 52, not at 53
    for t in range(3, 113):
        rig.tick_at(float(t))
    assert rig.watchdog.backoff.attempts[WORKER] == 1  # answering again only since 54
    rig.tick_at(114.0)
    assert WORKER not in rig.watchdog.backoff.attempts


# With the shipped defaults the cap (300 s) is far above stable_after (60 s): a
# program hung for good is RUNNING for longer than stable_after between restarts.
SHIPPED = WatchdogConfig()


def _restart_times(restarts: list[tuple[str, float]], name: str) -> list[float]:
    return [t for n, t in restarts if n == name]


def _assert_gaps_grow_to_the_cap_and_stay(times: list[float], every: float) -> None:
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps == sorted(gaps), gaps  # never shorter again: the backoff is not forgotten
    assert len(gaps) >= 10, gaps
    assert SHIPPED.backoff_max > SHIPPED.stable_after
    # Capped, give or take one tick; five restarts in a row at the cap.
    assert all(SHIPPED.backoff_max <= gap < SHIPPED.backoff_max + every for gap in gaps[-5:]), gaps


def test_a_worker_hung_for_good_is_restarted_at_the_cap_not_from_the_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="nua.sentinel")
    clock = FakeClock()
    supervisor = FakeSupervisor(clock)
    supervisor.set(WORKER, RUNNING)
    ping = FakePing(default=False)  # SIGSTOPped: RUNNING to supervisord, never answers
    dog = Watchdog(supervisor, ping, clock, SHIPPED)
    for _ in range(int(4000 / 5.0)):  # the shipped interval: a tick every 5 s
        dog.tick()
        clock.now += 5.0
    times = _restart_times(supervisor.restarts, WORKER)
    _assert_gaps_grow_to_the_cap_and_stay(times, every=5.0)
    # The log counts meaningfully: restarts 1, 2, 3 ... and never more failures than K of K.
    numbers = [
        int(n) for n in re.findall(r"no answer to \d+ pings in a row \(restart (\d+)", caplog.text)
    ]
    assert numbers == list(range(1, len(times) + 1))
    counts = re.findall(r"did not answer system\.ping \((\d+)/3\)", caplog.text)
    assert set(counts) == {"1", "2", "3"}
    # While it waits, one line says which restart comes and when.
    assert re.search(r"still hung \(3 pings in a row unanswered\).*: restart 5 in 25s", caplog.text)
    # One "backing off" line per wait, not one per tick.
    assert caplog.text.count("is still hung") <= len(times)


def test_an_app_unhealthy_for_good_is_restarted_at_the_cap_not_from_the_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="nua.sentinel")
    clock = FakeClock()
    supervisor = FakeSupervisor(clock)
    supervisor.set(WORKER, RUNNING)
    supervisor.set(APP, RUNNING)
    dog = Watchdog(
        supervisor,
        lambda: True,
        clock,
        SHIPPED,
        app_probe=lambda _: AppProbe(check=lambda: "answered 500", grace=30.0),
        executor=InlineExecutor(),
    )
    for _ in range(int(4000 / 5.0)):
        dog.tick()
        clock.now += 5.0
    times = _restart_times(supervisor.restarts, APP)
    _assert_gaps_grow_to_the_cap_and_stay(times, every=SHIPPED.app_interval)
    numbers = [
        int(n) for n in re.findall(r"unhealthy \d+ times in a row \(restart (\d+)", caplog.text)
    ]
    assert numbers == list(range(1, len(times) + 1))
    assert set(re.findall(r"is unhealthy \((\d+)/3\)", caplog.text)) == {"1", "2", "3"}
    assert caplog.text.count("stays unhealthy") <= len(times)


# -- FATAL programs ------------------------------------------------------------------------


def _fatal_forever(rig: Rig, name: str) -> None:
    rig.supervisor.set(name, FATAL)
    rig.supervisor.programs_by_name[name].after_start = FATAL


def test_a_fatal_program_is_re_armed_after_backoff_initial(rig: Rig) -> None:
    rig.supervisor.set("nua:cron", FATAL)
    rig.tick_at(100.0)
    rig.tick_at(104.9)
    assert rig.supervisor.starts == []
    rig.tick_at(105.0)
    assert rig.supervisor.starts == [("nua:cron", 105.0)]
    # The fake brought it up: it is RUNNING and is not started again.
    rig.tick_at(200.0)
    assert rig.supervisor.starts == [("nua:cron", 105.0)]


def test_a_program_that_stays_fatal_is_re_armed_at_growing_intervals(rig: Rig) -> None:
    _fatal_forever(rig, "nua:cron")
    rig.tick_at(0.0)  # first sight: re-arm in 5s
    rig.tick_at(4.9)
    rig.tick_at(5.0)  # re-armed; fails again at once
    rig.tick_at(6.0)  # seen FATAL again: next in 10s
    rig.tick_at(15.9)
    rig.tick_at(16.0)
    rig.tick_at(17.0)  # next in 20s
    rig.tick_at(36.9)
    rig.tick_at(37.0)
    rig.tick_at(38.0)  # capped at 20s
    rig.tick_at(57.9)
    rig.tick_at(58.0)
    assert [t for _, t in rig.supervisor.starts] == [5.0, 16.0, 37.0, 58.0]


def test_fatal_programs_back_off_independently(rig: Rig) -> None:
    _fatal_forever(rig, "nua:cron")
    rig.tick_at(0.0)
    rig.tick_at(5.0)
    _fatal_forever(rig, "nua:web")
    rig.tick_at(6.0)
    rig.tick_at(11.0)
    assert rig.supervisor.starts == [("nua:cron", 5.0), ("nua:web", 11.0)]


def test_the_sentinel_never_re_arms_itself(rig: Rig) -> None:
    _fatal_forever(rig, SENTINEL)
    for t in range(0, 1000, 5):
        rig.tick_at(float(t))
    assert rig.supervisor.starts == []


def test_a_fatal_worker_is_re_armed_and_not_pinged(rig: Rig) -> None:
    rig.supervisor.set(WORKER, FATAL)
    rig.tick_at(0.0)
    rig.tick_at(5.0)
    assert rig.ping.calls == 0
    assert rig.supervisor.starts == [(WORKER, 5.0)]
    assert rig.supervisor.restarts == []


def test_a_program_stable_again_starts_from_backoff_initial(rig: Rig) -> None:
    _fatal_forever(rig, "nua:cron")
    for t in (0.0, 5.0, 6.0, 16.0):
        rig.tick_at(t)
    assert [t for _, t in rig.supervisor.starts] == [5.0, 16.0]
    # Comes up at 20 and stays RUNNING for stable_after.
    rig.supervisor.set("nua:cron", RUNNING, started_at=20.0)
    rig.tick_at(80.0)
    assert "nua:cron" not in rig.watchdog.backoff.attempts
    _fatal_forever(rig, "nua:cron")
    rig.tick_at(90.0)
    rig.tick_at(95.0)
    assert [t for _, t in rig.supervisor.starts] == [5.0, 16.0, 95.0]


def test_a_program_that_recovers_briefly_keeps_its_backoff(rig: Rig) -> None:
    _fatal_forever(rig, "nua:cron")
    for t in (0.0, 5.0):
        rig.tick_at(t)
    rig.supervisor.set("nua:cron", RUNNING, started_at=6.0)
    rig.tick_at(30.0)  # up for 24s < stable_after
    _fatal_forever(rig, "nua:cron")
    rig.tick_at(31.0)
    rig.tick_at(40.0)
    assert [t for _, t in rig.supervisor.starts] == [5.0]
    rig.tick_at(41.0)  # 31 + 10: the second step
    assert [t for _, t in rig.supervisor.starts] == [5.0, 41.0]


# -- apps' health -------------------------------------------------------------------------------

APP = "app-blog:app-blog"
APP_CONFIG = WatchdogConfig(
    failures=3,
    backoff_initial=5.0,
    backoff_max=20.0,
    stable_after=600.0,
    app_interval=10.0,
    app_failures=3,
)


@dataclass
class AppRig:
    """A worker that answers and one app whose health the test sets; the times it was checked."""

    healthy: bool = False
    interval: float | None = None
    grace: float = 0.0
    # Unhealthy, whatever `healthy` says, until then (an app warming up).
    warm_until: float = 0.0
    clock: FakeClock = field(default_factory=FakeClock)
    checks: list[float] = field(default_factory=list)
    supervisor: FakeSupervisor = field(init=False)
    dog: Watchdog = field(init=False)

    def __post_init__(self) -> None:
        self.supervisor = FakeSupervisor(self.clock)
        self.supervisor.set(WORKER, RUNNING)
        self.supervisor.set(APP, RUNNING)
        self.dog = Watchdog(
            self.supervisor,
            lambda: True,
            self.clock,
            APP_CONFIG,
            app_probe=self.probe,
            executor=InlineExecutor(),
        )

    def probe(self, program: ProgramInfo) -> AppProbe:
        assert program.name == APP
        return AppProbe(check=self.check, interval=self.interval, grace=self.grace)

    def check(self) -> str | None:
        self.checks.append(self.clock.now)
        if self.clock.now < self.warm_until:
            return "GET http://127.0.0.1:20001/: Connection refused"
        return None if self.healthy else "GET http://127.0.0.1:20001/ answered 500"

    def crash_and_restart(self) -> None:
        """What supervisord does when the app exits: a new process, started now."""
        program = self.supervisor.programs_by_name[APP]
        program.pid = next(PIDS)
        program.started_at = self.clock.now

    def run_until(self, end: float, every: float = 1.0) -> None:
        while self.clock.now < end:
            self.dog.tick()
            self.clock.now += every

    def restarts(self) -> list[float]:
        return _restart_times(self.supervisor.restarts, APP)


def test_an_app_is_checked_at_its_own_interval() -> None:
    rig = AppRig(healthy=True, interval=3.0)
    rig.run_until(30.0)
    assert rig.checks == [float(t) for t in range(0, 30, 3)]
    assert APP_CONFIG.app_interval != 3.0


def test_an_app_with_a_long_interval_is_checked_less_often() -> None:
    rig = AppRig(healthy=True, interval=45.0)
    rig.run_until(100.0)
    assert rig.checks == [0.0, 45.0, 90.0]


def test_an_app_failing_at_its_own_interval_is_restarted_that_much_sooner() -> None:
    rig = AppRig(healthy=False, interval=2.0)
    rig.run_until(5.0)
    # Checks at 0, 2 and 4: the third failure restarts it (the default would wait until 20).
    assert rig.restarts() == [4.0]


def test_an_app_without_its_own_interval_uses_the_sentinels() -> None:
    rig = AppRig(healthy=True)
    rig.run_until(35.0)
    assert rig.checks == [0.0, 10.0, 20.0, 30.0]


def test_an_app_unhealthy_k_times_in_a_row_is_restarted_with_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rig = AppRig()
    rig.run_until(200.0)  # a tick each second
    restarts = rig.restarts()
    # Checks every 10 s, restart after 3 failures (at 20 s), then backoff 5, 10, 20, 20 s...
    assert restarts[0] == 20.0
    gaps = [b - a for a, b in itertools.pairwise(restarts)]
    assert all(gap >= 30.0 for gap in gaps), gaps  # never faster than checks and backoff allow
    assert "unhealthy 3 times in a row" in caplog.text
    # Each restart of the app follows a SIGCONT (it may be stopped, not just failing).
    assert rig.supervisor.calls[:2] == [("SIGCONT", APP), ("restart", APP)]
    assert rig.supervisor.calls.count(("SIGCONT", APP)) == len(restarts)


def test_an_app_healthy_for_stable_after_has_its_backoff_forgotten() -> None:
    rig = AppRig()
    rig.run_until(25.0)
    assert rig.restarts() == [20.0]
    rig.healthy = True  # passes its checks from t=30 on
    while rig.clock.now < 30.0 + APP_CONFIG.stable_after:
        rig.dog.tick()
        assert rig.dog.backoff.attempts[APP] == 1
        rig.clock.now += 1.0
    rig.dog.tick()
    assert APP not in rig.dog.backoff.attempts


def test_a_slow_starter_is_not_restarted_within_its_healthcheck_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="nua.sentinel")
    # Ready after 45 s, with a timeout of 60 s: checks at 0, 10 ... 40 fail.
    rig = AppRig(healthy=True, grace=60.0, warm_until=45.0)
    rig.run_until(300.0)
    assert rig.restarts() == []
    assert "is not healthy yet" in caplog.text
    assert "is unhealthy" not in caplog.text
    assert caplog.text.count("is not healthy yet") == 1  # said once, not at every check


def test_an_app_never_healthy_is_restarted_once_its_grace_is_over() -> None:
    rig = AppRig(grace=30.0)
    rig.run_until(51.0)
    # Checks at 0, 10 and 20 are within the grace; 30, 40 and 50 count.
    assert rig.restarts() == [50.0]


def test_the_grace_ends_at_the_first_passed_check() -> None:
    rig = AppRig(healthy=True, grace=60.0)
    rig.run_until(5.0)
    rig.healthy = False  # healthy at 0, sick from then on: no start-up excuse
    rig.run_until(31.0)
    assert rig.restarts() == [30.0]


def test_an_app_restarted_by_supervisord_gets_its_grace_again() -> None:
    rig = AppRig(healthy=True, grace=60.0)
    rig.run_until(100.0)
    rig.crash_and_restart()  # at 100; warms up for 45 s
    rig.warm_until = 145.0
    rig.run_until(300.0)
    assert rig.restarts() == []


def test_a_sentinel_started_late_gives_no_grace_to_an_app_up_for_long() -> None:
    rig = AppRig(grace=60.0)
    rig.supervisor.programs_by_name[APP].started_at = -1000.0  # up since long before
    rig.run_until(21.0)
    assert rig.restarts() == [20.0]


def test_a_healthy_or_stopped_app_is_left_alone() -> None:
    rig = AppRig(healthy=True)
    rig.run_until(100.0)
    rig.supervisor.set(APP, "STOPPED")
    rig.healthy = False
    rig.run_until(200.0)
    assert rig.supervisor.restarts == []


def test_one_failed_check_between_good_ones_restarts_nothing() -> None:
    rig = AppRig()
    for second in range(300):
        rig.healthy = second % 30 >= 10  # one bad check in every three
        rig.dog.tick()
        rig.clock.now += 1.0
    assert rig.supervisor.restarts == []


# -- a hung app never delays the worker's ping --------------------------------------------

# How long a hung check or stop lasts at most (an app's timeout): the tests release it sooner.
HANG = 5.0
POOL_CONFIG = WatchdogConfig(
    failures=3, backoff_initial=5.0, backoff_max=20.0, app_interval=1.0, app_failures=1
)


class RecordingPool(ThreadPoolExecutor):
    """A real thread pool that keeps its jobs, so that a test can wait for one."""

    def __init__(self) -> None:
        super().__init__(max_workers=2)
        self.jobs: list[Future[Any]] = []

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future = super().submit(fn, *args, **kwargs)
        self.jobs.append(future)
        return future


@pytest.fixture
def pool() -> Iterator[RecordingPool]:
    pool = RecordingPool()
    yield pool
    pool.shutdown(wait=True, cancel_futures=True)


def _pool_rig(
    pool: RecordingPool, check: Callable[[], str | None], supervisor: FakeSupervisor | None = None
) -> tuple[Watchdog, FakeSupervisor, FakePing]:
    supervisor = supervisor or FakeSupervisor(FakeClock())
    supervisor.set(WORKER, RUNNING)
    supervisor.set(APP, RUNNING)
    ping = FakePing()
    dog = Watchdog(
        supervisor,
        ping,
        supervisor.clock,
        POOL_CONFIG,
        app_probe=lambda _: AppProbe(check=check),
        executor=pool,
    )
    return dog, supervisor, ping


def _tick_at(dog: Watchdog, supervisor: FakeSupervisor, *times: float) -> None:
    for t in times:
        supervisor.clock.now = t
        dog.tick()


def test_a_hung_app_check_does_not_delay_detecting_a_hung_worker(
    pool: RecordingPool, caplog: pytest.LogCaptureFixture
) -> None:
    released = threading.Event()

    def hung_check() -> str | None:
        released.wait(HANG)  # accepts the connection, never answers (until its timeout)
        return "GET http://127.0.0.1:20001/: timed out"

    dog, supervisor, ping = _pool_rig(pool, hung_check)
    ping.default = False
    try:
        _tick_at(dog, supervisor, 0.0, 1.0, 2.0, 3.0)
        # The worker was pinged at each tick and restarted on the third failure,
        # while the app's first check still hangs; no second check piled up behind it.
        assert _restart_times(supervisor.restarts, WORKER) == [2.0]
        assert len(pool.jobs) == 1 and not pool.jobs[0].done()
    finally:
        released.set()
    pool.jobs[0].result(timeout=HANG)
    _tick_at(dog, supervisor, 4.0)  # its outcome counts once it is in
    assert "app-blog:app-blog is unhealthy (1/1): GET http://127.0.0.1:20001/: timed out" in (
        caplog.text
    )


class SlowStopSupervisor(FakeSupervisor):
    """supervisord waiting out an app's stop timeout (a deadlocked app ignores SIGTERM)."""

    def __init__(self, clock: FakeClock, released: threading.Event) -> None:
        super().__init__(clock)
        self.released = released

    def restart(self, name: str) -> None:
        if name == APP:
            self.released.wait(HANG)
        super().restart(name)


def test_a_slow_app_restart_does_not_delay_detecting_a_hung_worker(pool: RecordingPool) -> None:
    released = threading.Event()
    supervisor = SlowStopSupervisor(FakeClock(), released)
    dog, supervisor, ping = _pool_rig(pool, lambda: "answered 500", supervisor)
    try:
        _tick_at(dog, supervisor, 0.0)
        pool.jobs[0].result(timeout=HANG)
        _tick_at(dog, supervisor, 1.0)  # its failure is in: the app's restart begins
        assert len(pool.jobs) == 2
        ping.default = False
        _tick_at(dog, supervisor, 2.0, 3.0, 4.0)
        assert _restart_times(supervisor.restarts, WORKER) == [4.0]
        assert not pool.jobs[1].done()  # supervisord is still stopping the app
        assert len(pool.jobs) == 2  # and the app is not checked meanwhile
    finally:
        released.set()
    pool.jobs[1].result(timeout=HANG)
    assert len(_restart_times(supervisor.restarts, APP)) == 1  # begun at 1, done by now
    assert ("SIGCONT", APP) in supervisor.calls


def test_a_late_outcome_for_a_replaced_app_process_is_ignored(pool: RecordingPool) -> None:
    released = threading.Event()
    outcomes = ["answered 500"]  # the old process fails its check; the new one passes

    def check() -> str | None:
        released.wait(HANG)
        return outcomes.pop(0) if outcomes else None

    dog, supervisor, _ = _pool_rig(pool, check)
    _tick_at(dog, supervisor, 0.0)
    program = supervisor.programs_by_name[APP]
    program.pid, program.started_at = next(PIDS), 0.5  # crashed; supervisord started another
    released.set()
    pool.jobs[0].result(timeout=HANG)
    _tick_at(dog, supervisor, 1.0)
    pool.jobs[-1].result(timeout=HANG)
    _tick_at(dog, supervisor, 2.0, 3.0)
    assert supervisor.restarts == []


def test_close_stops_the_pool() -> None:
    dog = Watchdog(FakeSupervisor(FakeClock()), lambda: True, FakeClock(), CONFIG)
    dog.close()
    with pytest.raises(RuntimeError):
        dog.executor.submit(lambda: None)


# -- the sentinel's port to supervisord ----------------------------------------------------


class _FakeRpc:
    """supervisord's `supervisor.*` XML-RPC namespace, recording calls; may fault."""

    def __init__(self, fault: xmlrpc.client.Fault | None = None) -> None:
        self.fault = fault
        self.calls: list[tuple[str, tuple[object, ...]]] = []

    def signalProcess(self, *args: object) -> bool:  # supervisord spells it so
        self.calls.append(("signalProcess", args))
        if self.fault is not None:
            raise self.fault
        return True


@dataclass
class _FakeProxy:
    supervisor: _FakeRpc


def test_the_port_sends_sigcont_through_supervisord() -> None:
    rpc = _FakeRpc()
    SupervisordPort(lambda: _FakeProxy(rpc)).signal(WORKER, "CONT")
    assert rpc.calls == [("signalProcess", (WORKER, "CONT"))]


def test_a_program_gone_before_its_sigcont_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rpc = _FakeRpc(xmlrpc.client.Fault(70, "NOT_RUNNING: nua:rpc"))
    SupervisordPort(lambda: _FakeProxy(rpc)).signal(WORKER, "CONT")
    assert "sending SIGCONT to nua:rpc: NOT_RUNNING" in caplog.text


# -- how the sentinel checks an app: from its launch spec ---------------------------------


def _write_spec(home: Path, label: str, spec: object) -> Locations:
    where = resolve(home)
    path = app_files(where, label).spec
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec), encoding="utf-8")
    return where


def _running(label: str) -> ProgramInfo:
    return ProgramInfo(f"app-{label}:app-{label}", RUNNING, 4242, 10.0, "", 0)


def test_the_probe_follows_the_apps_healthcheck(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listening:
        port = listening.getsockname()[1]
        health = {"kind": "tcp", "port": "web", "path": None, "timeout": 45.0, "interval": 3}
        where = _write_spec(tmp_path, "blog", {"health": health, "ports": {"web": port}})
        probe = app_probe(where, _running("blog"))
        assert probe is not None
        assert probe.interval == 3.0
        assert probe.grace == 45.0
        assert probe.check() is None
    assert f"tcp 127.0.0.1:{port}" in (probe.check() or "")


@pytest.mark.parametrize("interval", [None, 0, -1, "10", True])
def test_an_unset_or_odd_interval_leaves_the_sentinels_default(
    tmp_path: Path, interval: object
) -> None:
    health = {"kind": "tcp", "port": "web", "timeout": 30.0, "interval": interval}
    where = _write_spec(tmp_path, "blog", {"health": health, "ports": {"web": 1}})
    probe = app_probe(where, _running("blog"))
    assert probe is not None and probe.interval is None


@pytest.mark.parametrize("spec", [{"health": None, "ports": {}}, ["not", "a", "spec"]])
def test_an_app_without_a_healthcheck_has_nothing_to_probe(tmp_path: Path, spec: object) -> None:
    where = _write_spec(tmp_path, "worker", spec)
    assert app_probe(where, _running("worker")) is None


def test_an_app_without_a_spec_has_nothing_to_probe(tmp_path: Path) -> None:
    assert app_probe(resolve(tmp_path), _running("gone")) is None
