"""orchestrator/sentinel/backoff.py: exponential backoff per program."""

from __future__ import annotations

import pytest

from orchestrator.sentinel.backoff import Backoff


def test_delays_double_and_cap() -> None:
    backoff = Backoff(initial=5.0, cap=30.0)
    assert [backoff.delay(n) for n in range(7)] == [0.0, 5.0, 10.0, 20.0, 30.0, 30.0, 30.0]


@pytest.mark.parametrize("attempt", [0, -1])
def test_no_delay_before_the_first_action(attempt: int) -> None:
    assert Backoff(initial=5.0, cap=30.0).delay(attempt) == 0.0


def test_cap_below_initial_wins() -> None:
    assert Backoff(initial=10.0, cap=3.0).delay(1) == 3.0


def test_record_counts_attempts_per_program() -> None:
    backoff = Backoff(initial=1.0, cap=10.0)
    assert backoff.record("a", 0.0) == 1
    assert backoff.record("a", 5.0) == 2
    assert backoff.record("b", 5.0) == 1
    assert backoff.attempts == {"a": 2, "b": 1}
    assert backoff.last_action == {"a": 5.0, "b": 5.0}


def test_allowed_waits_longer_after_each_action() -> None:
    backoff = Backoff(initial=5.0, cap=12.0)
    assert backoff.allowed("a", 0.0)
    backoff.record("a", 100.0)
    assert not backoff.allowed("a", 104.9)
    assert backoff.allowed("a", 105.0)
    backoff.record("a", 105.0)
    assert not backoff.allowed("a", 114.9)
    assert backoff.allowed("a", 115.0)
    backoff.record("a", 115.0)
    # Capped: 12s, not 20s.
    assert not backoff.allowed("a", 126.9)
    assert backoff.allowed("a", 127.0)


def test_allowed_is_per_program() -> None:
    backoff = Backoff(initial=5.0, cap=60.0)
    backoff.record("a", 0.0)
    assert not backoff.allowed("a", 1.0)
    assert backoff.allowed("b", 1.0)


def test_due_schedules_one_step_ahead_on_first_sight() -> None:
    backoff = Backoff(initial=5.0, cap=60.0)
    assert backoff.next_at("a") is None
    assert not backoff.due("a", 10.0)
    assert backoff.next_at("a") == 15.0
    assert not backoff.due("a", 14.9)
    assert backoff.due("a", 15.0)
    assert backoff.due("a", 99.0)
    # Asking again does not move the schedule.
    assert backoff.next_at("a") == 15.0


def test_due_after_an_action_waits_the_next_step() -> None:
    backoff = Backoff(initial=5.0, cap=60.0)
    backoff.due("a", 0.0)
    backoff.record("a", 5.0)
    assert backoff.next_at("a") is None  # record clears the schedule
    assert not backoff.due("a", 6.0)
    assert backoff.next_at("a") == 16.0  # 6 + 10, the second step


def test_due_after_two_actions_waits_the_third_step() -> None:
    backoff = Backoff(initial=5.0, cap=100.0)
    backoff.record("a", 0.0)
    backoff.record("a", 100.0)
    # Seen again at once: the third step (20s) ahead of now.
    assert not backoff.due("a", 100.0)
    assert backoff.next_at("a") == 120.0


def test_due_respects_the_last_action_when_the_clock_is_behind() -> None:
    backoff = Backoff(initial=5.0, cap=100.0)
    backoff.record("a", 50.0)
    # A (monotonic) reading earlier than the last action still waits for it plus its delay.
    assert not backoff.due("a", 40.0)
    assert backoff.next_at("a") == 55.0


def test_remaining_counts_down_to_the_next_allowed_action() -> None:
    backoff = Backoff(initial=5.0, cap=60.0)
    assert backoff.remaining("a", 0.0) == 0.0
    backoff.record("a", 100.0)
    backoff.record("a", 100.0)  # the second action: the next waits 10s
    assert backoff.remaining("a", 103.0) == 7.0
    assert backoff.remaining("a", 110.0) == 0.0
    assert backoff.remaining("a", 200.0) == 0.0


def test_forget_starts_again_from_the_initial_delay() -> None:
    backoff = Backoff(initial=5.0, cap=60.0)
    for t in (0.0, 10.0, 30.0):
        backoff.record("a", t)
    backoff.due("a", 31.0)
    backoff.forget("a")
    assert backoff.attempts == {}
    assert backoff.last_action == {}
    assert backoff.next_at("a") is None
    assert backoff.allowed("a", 31.0)
    assert backoff.record("a", 31.0) == 1


def test_forget_an_unknown_program_is_harmless() -> None:
    backoff = Backoff(initial=5.0, cap=60.0)
    backoff.forget("never-seen")
    assert backoff.attempts == {}
