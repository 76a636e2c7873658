"""Exponential backoff per program, so that nothing is restarted in a tight loop."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delays of `initial`, 2x, 4x ... capped at `cap`, counted per program."""

    initial: float
    cap: float
    attempts: dict[str, int] = field(default_factory=dict)
    last_action: dict[str, float] = field(default_factory=dict)
    scheduled: dict[str, float] = field(default_factory=dict)

    def delay(self, attempt: int) -> float:
        """The wait before action number `attempt` (1-based); 0 before the first."""
        if attempt <= 0:
            return 0.0
        return min(self.initial * 2 ** (attempt - 1), self.cap)

    def allowed(self, name: str, now: float) -> bool:
        """May we act on `name` now? The wait grows with each action taken."""
        last = self.last_action.get(name)
        if last is None:
            return True
        return now >= last + self.delay(self.attempts.get(name, 0))

    def due(self, name: str, now: float) -> bool:
        """For a program that should be acted on after a wait: is the wait over?

        The first call schedules the action one backoff step ahead.
        """
        when = self.scheduled.get(name)
        if when is None:
            step = self.delay(self.attempts.get(name, 0) + 1)
            earliest = self.last_action.get(name, now) + self.delay(self.attempts.get(name, 0))
            self.scheduled[name] = max(now + step, earliest)
            return False
        return now >= when

    def next_at(self, name: str) -> float | None:
        return self.scheduled.get(name)

    def remaining(self, name: str, now: float) -> float:
        """Seconds until `allowed(name, ...)` turns true (0 when it already is)."""
        last = self.last_action.get(name)
        if last is None:
            return 0.0
        return max(0.0, last + self.delay(self.attempts.get(name, 0)) - now)

    def record(self, name: str, now: float) -> int:
        """Note an action on `name`; returns its attempt number."""
        self.attempts[name] = self.attempts.get(name, 0) + 1
        self.last_action[name] = now
        self.scheduled.pop(name, None)
        return self.attempts[name]

    def forget(self, name: str) -> None:
        """The program has been healthy long enough: start again from the initial delay."""
        self.attempts.pop(name, None)
        self.last_action.pop(name, None)
        self.scheduled.pop(name, None)
