"""tests/support/history.py: the recorder, and a checker that catches every anomaly."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.support.history import (
    ADD,
    APPEND,
    DELETE,
    AnomalyKind,
    EventType,
    FinalState,
    History,
    LedgerRow,
    Op,
    Report,
    answered_from_record,
    check,
    outcomes,
)

pytestmark = pytest.mark.timeout(10)

UNKNOWN = "no answer within 2.5s"


class Ticks:
    """A clock that moves one second per reading."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def history() -> History:
    return History(clock=Ticks())


def append(h: History, client: str, seq: int) -> Op:
    return h.invoke(client, APPEND, {"client": client, "seq": seq})


def add(h: History, username: str, client: str = "c1") -> Op:
    return h.invoke(client, ADD, {"username": username, "email": f"{username}@example.org"})


def delete(h: History, username: str, client: str = "c1") -> Op:
    return h.invoke(client, DELETE, {"username": username})


def user(uid: int, username: str) -> dict[str, Any]:
    return {"id": uid, "username": username}


def state(rows: Sequence[tuple[int, str, int]] = (), **users: int) -> FinalState:
    return FinalState(ledger=[LedgerRow(*r) for r in rows], users=dict(users))


def kinds(report: Report) -> list[AnomalyKind]:
    return [a.kind for a in report.anomalies]


# -- valid histories -------------------------------------------------------------------


def test_an_empty_history_and_an_empty_database_are_consistent() -> None:
    report = check([], state())
    assert report.ok and report.acknowledged == 0 and not report.invoked


def test_acknowledged_writes_all_present_is_valid() -> None:
    h = history()
    a1, a2 = append(h, "c1", 1), append(h, "c2", 1)
    h.ok(a1, 1)
    h.ok(a2, 2)
    u = add(h, "c1-u1")
    h.ok(u, user(10, "c1-u1"))
    gone = add(h, "c1-u2")
    h.ok(gone, user(11, "c1-u2"))
    d = delete(h, "c1-u2")
    h.ok(d, {"deleted": "c1-u2"})
    report = check(h.events(), state([(1, "c1", 1), (2, "c2", 1)], **{"c1-u1": 10}))
    assert report.ok, report.anomalies
    assert report.acknowledged == 5 and report.failed == report.indeterminate == 0
    assert report.invoked == {APPEND: 2, ADD: 2, DELETE: 1}
    assert (report.ledger_rows, report.users) == (2, 1)


def test_a_definite_failure_that_left_nothing_is_valid() -> None:
    h = history()
    a = append(h, "c1", 1)
    h.fail(a, "-32006 unavailable: the change could not be saved")
    u = add(h, "c1-u1")
    h.fail(u, "-32003 invalid_argument: bad email")
    report = check(h.events(), state())
    assert report.ok and report.failed == 2


@pytest.mark.parametrize("applied", [False, True])
def test_an_indeterminate_append_may_be_applied_or_not(applied: bool) -> None:
    h = history()
    a = append(h, "c1", 1)
    h.info(a, UNKNOWN)
    report = check(h.events(), state([(1, "c1", 1)] if applied else []))
    assert report.ok, report.anomalies
    assert report.indeterminate == 1


@pytest.mark.parametrize("applied", [False, True])
def test_an_append_never_answered_counts_as_indeterminate(applied: bool) -> None:
    h = history()
    append(h, "c1", 1)
    report = check(h.events(), state([(1, "c1", 1)] if applied else []))
    assert report.ok and report.indeterminate == 1 and report.retried == 0


@pytest.mark.parametrize("present", [False, True])
def test_an_indeterminate_add_may_be_applied_or_not(present: bool) -> None:
    h = history()
    u = add(h, "c1-u1")
    h.info(u, UNKNOWN)
    report = check(h.events(), state(**({"c1-u1": 3} if present else {})))
    assert report.ok, report.anomalies


@pytest.mark.parametrize("present", [False, True])
def test_an_indeterminate_delete_may_be_applied_or_not(present: bool) -> None:
    h = history()
    u = add(h, "c1-u1")
    h.ok(u, user(3, "c1-u1"))
    d = delete(h, "c1-u1")
    h.info(d, UNKNOWN)
    report = check(h.events(), state(**({"c1-u1": 3} if present else {})))
    assert report.ok, report.anomalies


def test_an_op_retried_with_its_key_until_acknowledged_counts_once() -> None:
    h = history()
    a = append(h, "c1", 1)
    h.info(a, UNKNOWN)
    h.info(a, UNKNOWN)
    h.ok(a, 1)
    report = check(h.events(), state([(1, "c1", 1)]))
    assert report.ok
    assert (report.acknowledged, report.indeterminate) == (1, 0)
    assert (report.retried, report.unknown_attempts) == (1, 2)


# -- each anomaly ------------------------------------------------------------------------


def test_a_lost_acknowledged_append_is_caught() -> None:
    h = history()
    kept, lost = append(h, "c1", 1), append(h, "c1", 2)
    h.ok(kept, 1)
    h.ok(lost, 2)
    report = check(h.events(), state([(1, "c1", 1)]))
    assert kinds(report) == [AnomalyKind.LOST]
    assert report.anomalies[0].op_ids == (lost.id,)
    assert "acknowledged as row 2, no such row" in str(report.anomalies[0])


def test_a_lost_acknowledged_add_is_caught() -> None:
    h = history()
    u = add(h, "c1-u1")
    h.ok(u, user(1, "c1-u1"))
    report = check(h.events(), state())
    assert kinds(report) == [AnomalyKind.LOST]
    assert "'c1-u1' is absent" in report.anomalies[0].what


def test_a_lost_acknowledged_delete_is_caught() -> None:
    h = history()
    u = add(h, "c1-u1")
    h.ok(u, user(1, "c1-u1"))
    d = delete(h, "c1-u1")
    h.ok(d, {"deleted": "c1-u1"})
    report = check(h.events(), state(**{"c1-u1": 1}))
    assert kinds(report) == [AnomalyKind.LOST]
    assert report.anomalies[0].op_ids == (u.id, d.id)


@pytest.mark.parametrize("status", [EventType.OK, EventType.INFO])
def test_an_append_applied_twice_is_caught(status: EventType) -> None:
    h = history()
    a = append(h, "c1", 1)
    h.info(a, UNKNOWN)
    if status is EventType.OK:
        h.ok(a, 1)
    report = check(h.events(), state([(1, "c1", 1), (2, "c1", 1)]))
    assert kinds(report) == [AnomalyKind.DUPLICATE]
    assert "applied 2 times: rows [1, 2]" in report.anomalies[0].what


def test_an_add_applied_then_refused_on_its_retry_is_caught() -> None:
    """The retry should have got the first answer, not `already exists`."""
    h = history()
    u = add(h, "c1-u1")
    h.info(u, UNKNOWN)
    h.fail(u, "-32002 already_exists: username 'c1-u1' is taken")
    report = check(h.events(), state(**{"c1-u1": 1}))
    assert kinds(report) == [AnomalyKind.FAILED_BUT_APPLIED]


def test_a_delete_applied_then_refused_on_its_retry_is_caught() -> None:
    h = history()
    u = add(h, "c1-u1")
    h.ok(u, user(1, "c1-u1"))
    d = delete(h, "c1-u1")
    h.info(d, UNKNOWN)
    h.fail(d, "-32001 not_found: no user named 'c1-u1'")
    report = check(h.events(), state())
    assert kinds(report) == [AnomalyKind.FAILED_BUT_APPLIED]


def test_a_failed_append_that_was_applied_is_caught() -> None:
    h = history()
    a = append(h, "c1", 1)
    h.fail(a, "-32006 unavailable: the change could not be saved; it was not applied")
    report = check(h.events(), state([(1, "c1", 1)]))
    assert kinds(report) == [AnomalyKind.FAILED_BUT_APPLIED]


def test_a_row_nobody_invoked_is_a_phantom() -> None:
    h = history()
    a = append(h, "c1", 1)
    h.ok(a, 1)
    report = check(h.events(), state([(1, "c1", 1), (2, "c1", 2), (3, "c9", 1)]))
    assert kinds(report) == [AnomalyKind.PHANTOM, AnomalyKind.PHANTOM]


def test_a_user_nobody_added_is_a_phantom() -> None:
    report = check([], state(**{"mallory": 7}))
    assert kinds(report) == [AnomalyKind.PHANTOM]
    assert "'mallory'" in report.anomalies[0].what


def test_an_answer_that_is_not_the_stored_row_is_caught() -> None:
    """A retry must get the first answer: the id of the one row it made."""
    h = history()
    a = append(h, "c1", 1)
    h.ok(a, 8)
    report = check(h.events(), state([(7, "c1", 1)]))
    assert kinds(report) == [AnomalyKind.WRONG_ANSWER]


def test_an_add_answered_with_another_id_is_caught() -> None:
    h = history()
    u = add(h, "c1-u1")
    h.ok(u, user(4, "c1-u1"))
    report = check(h.events(), state(**{"c1-u1": 5}))
    assert kinds(report) == [AnomalyKind.WRONG_ANSWER]


def test_every_anomaly_at_once_is_counted_by_kind() -> None:
    h = history()
    lost, dup, failed = append(h, "c1", 1), append(h, "c1", 2), append(h, "c1", 3)
    h.ok(lost, 1)
    h.ok(dup, 2)
    h.fail(failed, "-32006 unavailable")
    report = check(h.events(), state([(2, "c1", 2), (3, "c1", 2), (4, "c1", 3), (5, "x", 1)]))
    assert not report.ok
    assert {k: report.count(k) for k in AnomalyKind} == {
        AnomalyKind.LOST: 1,
        AnomalyKind.DUPLICATE: 1,
        AnomalyKind.FAILED_BUT_APPLIED: 1,
        AnomalyKind.PHANTOM: 1,
        AnomalyKind.WRONG_ANSWER: 0,
    }


def test_an_answer_from_the_record_of_a_killed_worker_is_told_apart() -> None:
    """Applied by pid 100 (killed at t=2.5), answered to a retry sent after it died."""
    h = history()
    from_record, reapplied, early = append(h, "c1", 1), append(h, "c1", 2), append(h, "c1", 3)
    h.info(from_record, UNKNOWN)  # t=4: the retry is sent after the kill
    h.ok(from_record, 1)
    h.info(reapplied, UNKNOWN)
    h.ok(reapplied, 2)  # stored by the next worker: applied by the retry itself
    h.ok(early, 3)  # answered without a retry
    rows = [
        LedgerRow(1, "c1", 1, pid=100),
        LedgerRow(2, "c1", 2, pid=101),
        LedgerRow(3, "c1", 3, 100),
    ]
    assert answered_from_record(h.events(), rows, {100: 2.5}) == 1
    assert answered_from_record(h.events(), rows, {100: 4.5}) == 0  # killed after the retry


# -- the recorder ------------------------------------------------------------------------


def test_events_carry_times_and_the_key_given_or_a_new_one() -> None:
    h = history()
    given = h.invoke("c1", APPEND, {"client": "c1", "seq": 1, "idempotency_key": "k-1"})
    fresh = append(h, "c1", 2)
    h.ok(given, 1)
    assert given.key == "k-1"
    assert len(fresh.key) == 32 and fresh.key != given.key
    assert [(e.type, e.op.id, e.at) for e in h.events()] == [
        (EventType.INVOKE, given.id, 1.0),
        (EventType.INVOKE, fresh.id, 2.0),
        (EventType.OK, given.id, 3.0),
    ]


def test_a_history_is_dumped_as_json_lines(tmp_path: Path) -> None:
    h = history()
    a = append(h, "c1", 1)
    h.info(a, UNKNOWN)
    h.ok(a, 1)
    h.dump(tmp_path / "h.jsonl")
    lines = [json.loads(line) for line in (tmp_path / "h.jsonl").read_text().splitlines()]
    assert [(r["type"], r["op"], r["value"]) for r in lines] == [
        ("invoke", a.id, None),
        ("info", a.id, UNKNOWN),
        ("ok", a.id, 1),
    ]
    assert lines[0]["params"] == {"client": "c1", "seq": 1, "idempotency_key": a.key}


def test_the_recorder_is_safe_for_concurrent_clients() -> None:
    h = History()

    def client(name: str) -> None:
        for seq in range(200):
            op = append(h, name, seq)
            h.info(op, UNKNOWN)
            h.ok(op, seq)

    threads = [threading.Thread(target=client, args=(f"c{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    events = h.events()
    assert len(events) == 8 * 200 * 3
    assert len({e.op.id for e in events}) == 8 * 200
    done = outcomes(events)
    assert all(o.status is EventType.OK and o.unknown_attempts == 1 for o in done)


def test_an_inconsistent_history_is_refused() -> None:
    h = history()
    a = append(h, "c1", 1)
    h.ok(a, 1)
    h.ok(a, 1)
    with pytest.raises(ValueError, match="after a definite outcome"):
        outcomes(h.events())
    twice = history()
    append(twice, "c1", 1)
    append(twice, "c1", 1)
    with pytest.raises(ValueError, match="must be unique"):
        check(twice.events(), state())
