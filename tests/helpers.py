"""Small things many test modules share (fixtures live in conftest.py)."""

from __future__ import annotations

import trio

from node.store import Store


class Clock:
    """A clock that stands still until a test moves it (``clock.now += …``)."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


class InlineStore:
    """``AsyncStore`` without its thread: store calls run on the event loop, one Store shared by every
    ``trio.run`` of a test (an app composed over it answers in order, deterministically)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def run(self, fn, *args, **kwargs):
        await trio.lowlevel.checkpoint()
        return fn(*args, **kwargs)
