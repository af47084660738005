"""A per-peer circuit breaker (sans-IO: every call takes ``now`` in milliseconds).

closed → (``threshold`` consecutive failures) → open → (``cooldown_ms`` later) → half-open, which lets
one probe through: its success closes the breaker, its failure opens it for another cool-down. While
open, the sender does not contact the peer at all: a dead peer costs one probe per cool-down, not a
request per queued delivery.

``record_success`` and ``record_failure`` return the change they made (``(old, new)`` states) or None,
so the caller can say when a peer's breaker opens or closes (federation/events.py).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class CircuitBreaker:
    threshold: int = 5
    cooldown_ms: int = 60_000
    failures: int = 0  # consecutive failures since the last success
    opened_at: int | None = None  # when it last opened; None while closed

    def __post_init__(self) -> None:
        if self.threshold < 1 or self.cooldown_ms < 0:
            raise ValueError("breaker needs threshold >= 1 and cooldown_ms >= 0")

    def state(self, now: int) -> BreakerState:
        if self.opened_at is None:
            return BreakerState.CLOSED
        if now < self.opened_at + self.cooldown_ms:
            return BreakerState.OPEN
        return BreakerState.HALF_OPEN

    def allows(self, now: int) -> bool:
        """Whether a request may be sent now (closed, or half-open for the probe)."""
        return self.state(now) is not BreakerState.OPEN

    def retry_at(self, now: int) -> int | None:
        """When an open breaker lets the next probe through; None if a request may go now."""
        if self.state(now) is BreakerState.OPEN:
            assert self.opened_at is not None
            return self.opened_at + self.cooldown_ms
        return None

    def record_success(self, now: int | None = None) -> tuple[BreakerState, BreakerState] | None:
        """Close the breaker; ``(old, CLOSED)`` if it was not closed (``now`` tells open from half-open;
        without it a breaker that was not closed counts as half-open, the state a probe is sent in)."""
        was_open = self.opened_at is not None
        old = BreakerState.HALF_OPEN if now is None and was_open else self.state(now or 0)
        self.failures = 0
        self.opened_at = None
        return (old, BreakerState.CLOSED) if was_open else None

    def record_failure(self, now: int) -> tuple[BreakerState, BreakerState] | None:
        old = self.state(now)
        self.failures += 1
        # A failed probe (half-open) re-opens at once; a closed breaker opens at the threshold.
        if self.opened_at is not None or self.failures >= self.threshold:
            self.opened_at = now
        new = self.state(now)
        return (old, new) if new is not old else None
