"""Retry delays: exponential backoff with full jitter (sans-IO, no clock, no global random).

The ceiling for retry ``attempt`` (1 = the first retry) is ``min(cap, base * 2 ** (attempt - 1))``; the
delay is drawn uniformly from ``[floor, ceiling)``. Full jitter spreads the retries of many senders
that failed together, so a peer coming back is not hit by all of them at once; the small floor keeps a
failing peer from being retried at once when the draw is near zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Delays in milliseconds; ``rand`` (passed per call) returns a float in ``[0, 1)``."""

    base_ms: int = 1_000
    cap_ms: int = 15 * 60 * 1_000
    floor_ms: int = 100

    def __post_init__(self) -> None:
        if not 0 <= self.floor_ms <= self.base_ms <= self.cap_ms:
            raise ValueError("backoff needs 0 <= floor_ms <= base_ms <= cap_ms")

    def ceiling(self, attempt: int) -> int:
        """The largest delay before retry ``attempt`` (attempts start at 1)."""
        if attempt < 1:
            raise ValueError("attempt counts from 1")
        # Cap the exponent first: 2 ** 10_000 would be a huge int for nothing.
        doubling = min(attempt - 1, max(self.cap_ms // max(self.base_ms, 1), 1).bit_length())
        return min(self.cap_ms, self.base_ms * 2**doubling)

    def delay(self, attempt: int, rand: Callable[[], float]) -> int:
        ceiling = self.ceiling(attempt)
        return self.floor_ms + int(rand() * (ceiling - self.floor_ms))
