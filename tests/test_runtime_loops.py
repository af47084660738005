"""The background loops survive a store that is down for a while (a fleet's PostgreSQL restarting)."""

from __future__ import annotations

from types import SimpleNamespace

import trio

from app import runtime_loops
from app.runtime_loops import BackgroundLoops


async def test_the_greeting_waits_for_a_store_that_is_down_then_greets(monkeypatch):
    monkeypatch.setattr(runtime_loops, "_GREET_RETRY_S", 0.01)
    greeted: list[str] = []
    tries = 0

    async def run(fn):
        nonlocal tries
        tries += 1
        if tries < 3:
            raise ConnectionError("terminating connection due to administrator command")
        return fn()

    async def say_hello(services, peer):
        greeted.append(peer)

    monkeypatch.setattr(runtime_loops, "say_hello", say_hello)
    node = SimpleNamespace(public_url="http://127.0.0.1:1", store=SimpleNamespace(run=run),
                           services=SimpleNamespace(peers=SimpleNamespace(pushable=lambda: ["a", "b"])))  # fmt: skip
    with trio.fail_after(5):
        await BackgroundLoops._greet_peers(node)
    assert tries == 3 and sorted(greeted) == ["a", "b"]
