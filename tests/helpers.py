"""Small things many test modules share (fixtures live in conftest.py)."""

from __future__ import annotations


class Clock:
    """A clock that stands still until a test moves it (``clock.now += …``)."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now
