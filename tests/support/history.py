"""Jepsen-style histories: record what clients invoke, break things, check what survived.

Three parts, used by tests/e2e/test_fault_history.py and bench/bench_history.py:

- the recorder, `History`: a thread-safe list of events. Each event is the
  invocation or a completion of one operation (`Op`). An operation keeps one
  idempotency key for every attempt, so a change retried after an unknown
  outcome is still one operation: `info` events (an attempt's deadline passed,
  outcome unknown) may be followed by `ok` (acknowledged, with the result) or
  `fail` (a definite error), or stay the last word when the client gave up.
- the checker, `check`: compares the history with the final state read after
  a fresh start, and reports every anomaly: an acknowledged change missing
  (lost), an operation applied twice (duplicate), a definite error whose change
  is there anyway (failed_but_applied), a row or user nobody asked for
  (phantom), an acknowledged answer that is not what is stored (wrong_answer:
  a retry that did not get the first answer).
- the run, `run_history`: client threads write through `ledger.append`,
  `user.add` and `user.delete` (the test plugins must be on the worker's
  PYTHONPATH) while a nemesis kills the worker or supervisord with SIGKILL;
  as an operator would, it runs `nua-orchestrator start` after the latter.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import signal
import statistics
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from orchestrator.host.processes import ProcessId
from orchestrator.rpc.client import ClientError, NotRunningError, RemoteError, RpcClient
from tests.support.orchestrator import Orchestrator
from tests.support.polling import wait_for

PLUGINS = Path(__file__).resolve().parents[1] / "plugins" / "site"
KEY = "idempotency_key"
APPEND, ADD, DELETE = "ledger.append", "user.add", "user.delete"
WORKER = "nua:rpc"


# -- the recorder ----------------------------------------------------------------------


class EventType(StrEnum):
    INVOKE = "invoke"
    OK = "ok"  # acknowledged: the result came back
    FAIL = "fail"  # a definite error: the change was not applied
    INFO = "info"  # the deadline passed: applied or not, nobody knows


@dataclass(frozen=True)
class Op:
    """One logical operation; every attempt carries the same idempotency key."""

    id: int
    client: str
    method: str
    params: Mapping[str, Any]

    @property
    def key(self) -> str:
        return str(self.params[KEY])

    def describe(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.params.items() if k != KEY)
        return f"op {self.id} {self.method}({shown}) by {self.client}, key {self.key[:8]}"


@dataclass(frozen=True)
class Event:
    type: EventType
    op: Op
    at: float  # seconds since the history began
    value: Any = None  # the result for ok, the error's text for fail and info


class History:
    """A thread-safe, append-only record of invocations and completions."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._began = clock()
        self._lock = threading.Lock()
        self._events: list[Event] = []
        self._next_id = 0

    def invoke(self, client: str, method: str, params: Mapping[str, Any]) -> Op:
        """Record an invocation; the op gets an idempotency key unless `params` has one."""
        params = dict(params)
        params.setdefault(KEY, secrets.token_hex(16))
        with self._lock:
            op = Op(self._next_id, client, method, params)
            self._next_id += 1
            self._events.append(Event(EventType.INVOKE, op, self._clock() - self._began))
        return op

    def ok(self, op: Op, result: Any) -> None:
        self._add(EventType.OK, op, result)

    def fail(self, op: Op, error: str) -> None:
        self._add(EventType.FAIL, op, error)

    def info(self, op: Op, error: str) -> None:
        self._add(EventType.INFO, op, error)

    def now(self) -> float:
        """Seconds since the history began, on the clock of its events."""
        return self._clock() - self._began

    def events(self) -> list[Event]:
        with self._lock:
            return list(self._events)

    def dump(self, path: Path) -> None:
        """Write the events as JSON lines, for a look at a failed run."""
        with path.open("w", encoding="utf-8") as out:
            for e in self.events():
                record = {"type": e.type, "at": round(e.at, 4), "op": e.op.id}
                record.update(client=e.op.client, method=e.op.method, params=e.op.params)
                out.write(json.dumps({**record, "value": e.value}, default=str) + "\n")

    def _add(self, kind: EventType, op: Op, value: Any) -> None:
        with self._lock:
            self._events.append(Event(kind, op, self._clock() - self._began, value))


@dataclass(frozen=True)
class Outcome:
    """What became of one op: its last event, and how many attempts ended unknown."""

    op: Op
    status: EventType  # OK, FAIL or INFO (INVOKE alone counts as INFO)
    value: Any
    unknown_attempts: int
    invoked_at: float
    completed_at: float | None
    last_unknown_at: float | None  # when the last attempt of unknown outcome ended


def outcomes(events: Iterable[Event]) -> list[Outcome]:
    """One outcome per op, in invocation order; an op that never completed is INFO."""
    first: dict[int, Event] = {}
    last: dict[int, Event] = {}
    unknown: Counter[int] = Counter()
    last_unknown: dict[int, float] = {}
    for event in events:
        if event.type is EventType.INVOKE:
            if event.op.id in first:
                raise ValueError(f"{event.op.describe()} is invoked twice")
            first[event.op.id] = event
            continue
        if event.op.id not in first:
            raise ValueError(f"{event.op.describe()} completes before it is invoked")
        if event.op.id in last and last[event.op.id].type is not EventType.INFO:
            raise ValueError(f"{event.op.describe()} completes after a definite outcome")
        last[event.op.id] = event
        if event.type is EventType.INFO:
            unknown[event.op.id] += 1
            last_unknown[event.op.id] = event.at
    found = []
    for op_id, invoked in first.items():
        end = last.get(op_id)
        found.append(
            Outcome(
                op=invoked.op,
                status=EventType.INFO if end is None else end.type,
                value=None if end is None else end.value,
                unknown_attempts=unknown[op_id],
                invoked_at=invoked.at,
                completed_at=None if end is None else end.at,
                last_unknown_at=last_unknown.get(op_id),
            )
        )
    return found


# -- the checker -----------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerRow:
    id: int
    client: str
    seq: int
    pid: int = 0  # the worker process that applied it


@dataclass(frozen=True)
class FinalState:
    """What the database holds after the run, read from a freshly started orchestrator."""

    ledger: list[LedgerRow]
    users: dict[str, int]  # username -> id


class AnomalyKind(StrEnum):
    LOST = "lost"
    DUPLICATE = "duplicate"
    FAILED_BUT_APPLIED = "failed_but_applied"
    PHANTOM = "phantom"
    WRONG_ANSWER = "wrong_answer"


@dataclass(frozen=True)
class Anomaly:
    kind: AnomalyKind
    what: str
    op_ids: tuple[int, ...] = ()

    def __str__(self) -> str:
        return f"{self.kind}: {self.what}"


@dataclass
class Report:
    """The checker's verdict and the figures of the history it checked."""

    anomalies: list[Anomaly]
    invoked: Counter[str]  # by method
    acknowledged: int
    failed: int
    indeterminate: int  # gave up with the outcome unknown
    retried: int  # ops with at least one attempt of unknown outcome
    unknown_attempts: int
    ledger_rows: int
    users: int

    @property
    def ok(self) -> bool:
        return not self.anomalies

    def count(self, kind: AnomalyKind) -> int:
        return sum(1 for a in self.anomalies if a.kind is kind)


def check(events: Iterable[Event], final: FinalState) -> Report:
    """Every anomaly between the history and the final state."""
    done = outcomes(events)
    anomalies = _check_ledger(
        [o for o in done if o.op.method == APPEND], final.ledger
    ) + _check_users([o for o in done if o.op.method in (ADD, DELETE)], final.users)
    return Report(
        anomalies=anomalies,
        invoked=Counter(o.op.method for o in done),
        acknowledged=sum(o.status is EventType.OK for o in done),
        failed=sum(o.status is EventType.FAIL for o in done),
        indeterminate=sum(o.status is EventType.INFO for o in done),
        retried=sum(o.unknown_attempts > 0 for o in done),
        unknown_attempts=sum(o.unknown_attempts for o in done),
        ledger_rows=len(final.ledger),
        users=len(final.users),
    )


def _check_ledger(appends: list[Outcome], rows: list[LedgerRow]) -> list[Anomaly]:
    """Each append makes exactly one row if acknowledged, none if failed, at most one if unknown."""
    by_pair: dict[tuple[str, int], Outcome] = {}
    for o in appends:
        pair = (o.op.params["client"], o.op.params["seq"])
        if pair in by_pair:
            raise ValueError(f"{o.op.describe()}: (client, seq) must be unique in a history")
        by_pair[pair] = o
    stored: defaultdict[tuple[str, int], list[LedgerRow]] = defaultdict(list)
    for row in rows:
        stored[(row.client, row.seq)].append(row)
    anomalies = [
        Anomaly(AnomalyKind.PHANTOM, f"ledger rows {_ids(found)} ({c!r}, {s}) were never invoked")
        for (c, s), found in stored.items()
        if (c, s) not in by_pair
    ]
    for pair, o in by_pair.items():
        found = stored.get(pair, [])
        ids = [r.id for r in found]
        if len(found) > 1:
            anomalies.append(
                Anomaly(
                    AnomalyKind.DUPLICATE,
                    f"{o.op.describe()} ({o.status}) applied {len(found)} times: "
                    f"rows {_ids(found)}",
                    (o.op.id,),
                )
            )
        if o.status is EventType.OK:
            if not found:
                anomalies.append(
                    Anomaly(
                        AnomalyKind.LOST,
                        f"{o.op.describe()} acknowledged as row {o.value}, no such row",
                        (o.op.id,),
                    )
                )
            elif o.value not in ids:
                anomalies.append(
                    Anomaly(
                        AnomalyKind.WRONG_ANSWER,
                        f"{o.op.describe()} acknowledged as row {o.value}, stored as {_ids(found)}",
                        (o.op.id,),
                    )
                )
        elif o.status is EventType.FAIL and found:
            anomalies.append(
                Anomaly(
                    AnomalyKind.FAILED_BUT_APPLIED,
                    f"{o.op.describe()} failed ({o.value}) yet is stored as {_ids(found)}",
                    (o.op.id,),
                )
            )
    return anomalies


def _check_users(ops: list[Outcome], users: Mapping[str, int]) -> list[Anomaly]:
    """Each username's presence must be one its operations allow.

    A username belongs to one client, whose operations on it are sequential.
    The last acknowledged operation decides (absent if none); an operation of
    unknown outcome may have landed at any time after its invocation, so its
    effect is possible too; a failed one changed nothing. A change applied
    twice cannot make two users (names are unique): it shows as a retry
    refused (already exists, not found) whose effect is there anyway.
    """
    by_name: defaultdict[str, list[Outcome]] = defaultdict(list)
    for o in ops:
        by_name[o.op.params["username"]].append(o)
    anomalies = [
        Anomaly(AnomalyKind.PHANTOM, f"user {name!r} (id {uid}) was never added by a client")
        for name, uid in users.items()
        if name not in by_name
    ]
    for name, history in by_name.items():
        present = name in users
        acked = [o for o in history if o.status is EventType.OK]
        possible = {_adds(acked[-1])} if acked else {False}
        possible |= {_adds(o) for o in history if o.status is EventType.INFO}
        steps = "; ".join(f"{o.op.describe()} -> {o.status}" for o in history)
        if present not in possible:
            failed_explains = any(
                o.status is EventType.FAIL and _adds(o) == present for o in history
            )
            kind = AnomalyKind.FAILED_BUT_APPLIED if failed_explains else AnomalyKind.LOST
            state = "present" if present else "absent"
            anomalies.append(
                Anomaly(kind, f"user {name!r} is {state} after: {steps}", _op_ids(history))
            )
            continue
        last = acked[-1] if acked else None
        if present and last is not None and last.op.method == ADD:
            answered = last.value.get("id") if isinstance(last.value, dict) else None
            if answered != users[name]:
                anomalies.append(
                    Anomaly(
                        AnomalyKind.WRONG_ANSWER,
                        f"user {name!r} acknowledged with id {answered}, stored with id "
                        f"{users[name]} after: {steps}",
                        (last.op.id,),
                    )
                )
    return anomalies


def _adds(o: Outcome) -> bool:
    """Whether the op leaves its user present (an add) or absent (a delete)."""
    return o.op.method == ADD


def _ids(rows: list[LedgerRow]) -> list[int]:
    return [r.id for r in rows]


def _op_ids(history: list[Outcome]) -> tuple[int, ...]:
    return tuple(o.op.id for o in history)


# -- the run ---------------------------------------------------------------------------


@dataclass
class RunConfig:
    seconds: float = 60.0
    clients: int = 5
    seed: int = 0
    call_timeout: float = 2.5  # one attempt: the client's own loop retries, with the same key
    give_up: float = 45.0  # per op: retries with the same key stop after this
    pause: tuple[float, float] = (0.3, 4.0)  # the nemesis' random pause between faults
    worker_share: float = 0.6  # of faults, after one of each kind


@dataclass
class Nemesis:
    """Kills the worker (supervisord restarts it) or supervisord (then runs `start`)."""

    orch: Orchestrator
    rng: random.Random
    stop: threading.Event
    config: RunConfig
    log: Callable[[str], None]
    clock: Callable[[], float]  # the history's
    kills: Counter[str] = field(default_factory=Counter)
    killed_workers: dict[int, float] = field(default_factory=dict)  # pid -> when
    recoveries: list[float] = field(default_factory=list)

    def run(self) -> None:
        first_two = ["worker", "supervisord"]
        self.rng.shuffle(first_two)
        while not self.stop.wait(self.rng.uniform(*self.config.pause)):
            if first_two:
                fault = first_two.pop()
            else:
                fault = "worker" if self.rng.random() < self.config.worker_share else "supervisord"
            began = time.monotonic()
            if fault == "worker":
                self.kill_worker()
            else:
                self.kill_supervisord()
            self.recoveries.append(time.monotonic() - began)
            self.log(f"nemesis: {fault} killed, recovered in {self.recoveries[-1]:.2f}s")

    def kill_worker(self) -> None:
        """kill -9 of the rpc program; supervisord must start a new one that answers."""
        old = self.orch.wait_state(WORKER, "RUNNING", timeout=30).pid
        os.kill(old, signal.SIGKILL)
        self.killed_workers[old] = self.clock()
        self.kills["worker"] += 1
        self.log(f"nemesis: kill -9 of the worker (pid {old})")
        wait_for(
            lambda: (p := self.orch.program(WORKER)).state == "RUNNING" and p.pid != old,
            timeout=30,
            what="supervisord to restart the worker",
        )
        self._wait_answering()

    def kill_supervisord(self) -> None:
        """kill -9 of supervisord; `nua-orchestrator start` must clean up and come back."""
        ident = ProcessId.of(self.orch.supervisord_pid())
        assert ident is not None, "supervisord is not running"
        os.kill(ident.pid, signal.SIGKILL)
        self.kills["supervisord"] += 1
        self.log(f"nemesis: kill -9 of supervisord (pid {ident.pid})")
        wait_for(lambda: not ident.is_alive(), timeout=10, what="supervisord to die")
        started = self.orch.run("start", timeout=120)
        assert started.returncode == 0, (
            f"start after kill -9 of supervisord failed ({started.returncode}): "
            f"{started.stdout}{started.stderr}"
        )
        assert "cleaned what a previous run left" in started.stderr, started.stderr
        self._wait_answering()

    def _wait_answering(self) -> None:
        wait_for(self._answers, timeout=30, what="the worker to answer system.ping")
        workers = self.workers()
        assert len(workers) == 1, f"expected one rpc worker, found pids {workers}"

    def _answers(self) -> bool:
        try:
            return self.orch.ping(timeout=1.0) == "pong"
        except ClientError:
            return False

    def workers(self) -> list[int]:
        """Pids of the rpc workers of this home (a duplicate would be a second writer)."""
        return [p.pid for p in self.orch.processes() if _cmdline_has(p, "orchestrator.rpc.worker")]


def _cmdline_has(proc: Any, word: str) -> bool:
    with contextlib.suppress(Exception):
        return word in proc.cmdline()
    return False


class Client:
    """One client thread's workload: appends, user adds and deletes, each retried on unknown."""

    def __init__(
        self,
        name: str,
        endpoint: str,
        history: History,
        rng: random.Random,
        stop: threading.Event,
        config: RunConfig,
    ) -> None:
        self.name = name
        self.history = history
        self.rng = rng
        self.stop = stop
        self.config = config
        # No retries inside the client: every attempt of unknown outcome is in the history.
        self.rpc = RpcClient(endpoint, timeout=config.call_timeout, retries=0)
        self.seq = 0
        self.added = 0
        self.live_users: list[str] = []

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.step()
        finally:
            self.rpc.close()

    def step(self) -> None:
        """Invoke one operation, and retry it until it is acknowledged, fails or gives up."""
        roll = self.rng.random()
        if roll < 0.15 and self.live_users:
            username = self.live_users.pop(self.rng.randrange(len(self.live_users)))
            self.perform(DELETE, {"username": username})
        elif roll < 0.35:
            self.added += 1
            username = f"{self.name}-u{self.added}"
            outcome = self.perform(ADD, {"username": username, "email": f"{username}@example.org"})
            if outcome is EventType.OK:
                self.live_users.append(username)
        else:
            self.seq += 1
            self.perform(APPEND, {"client": self.name, "seq": self.seq})

    def perform(self, method: str, params: dict[str, Any]) -> EventType:
        op = self.history.invoke(self.name, method, params)
        give_up = time.monotonic() + self.config.give_up
        while True:
            try:
                result = self.rpc.call(method, dict(op.params))
            except NotRunningError as exc:
                self.history.info(op, str(exc))
                if time.monotonic() >= give_up:
                    return EventType.INFO
                continue
            except RemoteError as exc:
                self.history.fail(op, f"{exc.code} {exc.name or ''}: {exc}")
                return EventType.FAIL
            self.history.ok(op, result)
            return EventType.OK


@dataclass
class RunResult:
    config: RunConfig
    seconds: float  # the whole run: faults, the clients' last ops, the fresh start, the reads
    history: History
    kills: Counter[str]
    recoveries: list[float]
    final: FinalState
    report: Report
    from_record: int  # see answered_from_record
    db_check: str
    db_check_code: int
    log: list[str]

    def summary(self) -> str:
        """The figures, for CI logs."""
        r = self.report
        by_method = ", ".join(f"{m} {n}" for m, n in sorted(r.invoked.items()))
        recovery = (
            f"recovery median {statistics.median(self.recoveries):.2f}s, "
            f"max {max(self.recoveries):.2f}s"
            if self.recoveries
            else "no recovery"
        )
        return "\n".join(
            [
                f"history run: seed {self.config.seed}, {self.config.clients} clients, "
                f"{self.config.seconds:g}s of faults, {self.seconds:.1f}s in all",
                f"  ops invoked        {sum(r.invoked.values())} ({by_method})",
                f"  acknowledged       {r.acknowledged}",
                f"  failed (definite)  {r.failed}",
                f"  indeterminate      {r.indeterminate} (gave up, outcome unknown)",
                f"  retried, same key  {r.retried} ops after {r.unknown_attempts} attempts "
                "of unknown outcome",
                f"  from a record      {self.from_record} appends committed by a worker "
                "killed before it answered, answered by the next one",
                f"  kills              worker {self.kills['worker']}, "
                f"supervisord {self.kills['supervisord']} ({recovery})",
                f"  final state        {r.ledger_rows} ledger rows, {r.users} users",
                f"  writes lost {r.count(AnomalyKind.LOST)}, "
                f"duplicates {r.count(AnomalyKind.DUPLICATE)}, "
                f"failed but applied {r.count(AnomalyKind.FAILED_BUT_APPLIED)}, "
                f"phantoms {r.count(AnomalyKind.PHANTOM)}, "
                f"wrong answers {r.count(AnomalyKind.WRONG_ANSWER)}",
            ]
        )


def run_history(
    orch: Orchestrator, config: RunConfig, log: Callable[[str], None] = print
) -> RunResult:
    """Clients and a nemesis against a running orchestrator, then a fresh start and the check.

    The orchestrator must run with PLUGINS on its PYTHONPATH. It is left running;
    the caller stops it and checks that nothing leaked.
    """
    began = time.monotonic()
    lines: list[str] = []

    def record(line: str) -> None:
        lines.append(f"{time.monotonic() - began:7.2f}s {line}")
        log(lines[-1])

    history = History()
    faults_over, clients_over = threading.Event(), threading.Event()
    nemesis = Nemesis(
        orch, random.Random(f"{config.seed}-nemesis"), faults_over, config, record, history.now
    )
    clients = [
        Client(
            f"c{i}",
            orch.locations.rpc_endpoint,
            history,
            random.Random(f"{config.seed}-c{i}"),
            clients_over,
            config,
        )
        for i in range(1, config.clients + 1)
    ]
    errors: list[BaseException] = []

    def guarded(target: Callable[[], None]) -> Callable[[], None]:
        def body() -> None:
            try:
                target()
            except BaseException as exc:
                errors.append(exc)
                faults_over.set()  # end the run early: the main thread reports it

        return body

    threads = [threading.Thread(target=guarded(c.run), name=c.name) for c in clients]
    nemesis_thread = threading.Thread(target=guarded(nemesis.run), name="nemesis")
    record(f"seed {config.seed}: {config.clients} clients, {config.seconds:g}s of faults")
    for thread in [*threads, nemesis_thread]:
        thread.start()
    faults_over.wait(config.seconds)  # the run's length; ends early if a thread failed
    faults_over.set()
    nemesis_thread.join(timeout=180)
    # The clients finish their op in flight: retried until acknowledged or given up.
    clients_over.set()
    for thread in threads:
        thread.join(timeout=config.give_up + config.call_timeout + 30)
    stuck = [t.name for t in [*threads, nemesis_thread] if t.is_alive()]
    if errors:
        raise errors[0]
    assert not stuck, f"threads still running after the run: {stuck}"
    record("faults over; stop, then a fresh start to read the final state")
    orch.stop(timeout=120)
    orch.start(timeout=120)
    final = read_final_state(orch)
    checked = orch.run("db", "check")
    events = history.events()
    report = check(events, final)
    return RunResult(
        config=config,
        seconds=time.monotonic() - began,
        history=history,
        kills=nemesis.kills,
        recoveries=nemesis.recoveries,
        final=final,
        report=report,
        from_record=answered_from_record(events, final.ledger, nemesis.killed_workers),
        db_check=checked.stdout + checked.stderr,
        db_check_code=checked.returncode,
        log=lines,
    )


def answered_from_record(
    events: Iterable[Event], rows: Iterable[LedgerRow], killed: Mapping[int, float]
) -> int:
    """Appends applied by a worker killed before it answered, acknowledged by a later one.

    The row names the worker that applied it; the retry that got the answer
    was sent after that worker died (kill -9 after commit, before the reply),
    so the answer came from the idempotency record, not from a second row.
    """
    pid_of = {(r.client, r.seq): r.pid for r in rows}
    count = 0
    for o in outcomes(events):
        if o.op.method != APPEND or o.status is not EventType.OK or o.last_unknown_at is None:
            continue
        killed_at = killed.get(pid_of.get((o.op.params["client"], o.op.params["seq"]), 0))
        if killed_at is not None and o.invoked_at < killed_at < o.last_unknown_at:
            count += 1
    return count


def read_final_state(orch: Orchestrator) -> FinalState:
    """Every ledger row and every user, through the worker."""
    with RpcClient(orch.locations.rpc_endpoint, timeout=30, retries=0) as rpc:
        ledger = [
            LedgerRow(r["id"], r["client"], r["seq"], r["pid"]) for r in rpc.call("ledger.read")
        ]
        users: dict[str, int] = {}
        offset: int | None = 0
        while offset is not None:
            page = rpc.call("user.list", {"limit": 1000, "offset": offset})
            users.update({u["username"]: u["id"] for u in page["users"]})
            offset = page["next_offset"]
    return FinalState(ledger=ledger, users=users)
