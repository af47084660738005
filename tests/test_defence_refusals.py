"""Nothing refused for a retryable reason is lost (issue 10, item 4): real nodes on loopback.

A relay forwards 1,000 intents to a receiver whose rate limit refuses most of each batch with
``rate_limited``; the relay must re-queue those items (not count them delivered) until all arrive.
The limit is scaled up (400/s, burst 40, instead of the issue's 50/s) so the test takes seconds; the
ratio of refused to accepted items per batch is the same.
"""

from __future__ import annotations

import pytest
import trio

from federation import wire
from federation.peerclient import PeerClient
from federation.ratelimit import RateLimiter
from node import envelope
from node.identity import Identity
from node.intents import parse_intent
from tests.fednet import FedNet, eventually

HOUR = 3_600_000


@pytest.fixture
async def net(nursery, tmp_path):
    yield FedNet(nursery, tmp_path)


def intents(author: Identity, count: int) -> list[bytes]:
    now = envelope.now_ms()
    body = parse_intent("?flight SFO->JFK max:400USD").body(())
    return [envelope.create(author, "intent", body, created=now - i, expires=now + HOUR).raw for i in range(count)]


async def test_a_rate_limited_receiver_loses_none_of_1000_relayed_intents(net):
    with trio.fail_after(40):
        receiver = await net.node("vendor", "vendor", app_options={"limiter": RateLimiter(400.0, 40)})
        relay = await net.node("relay")
        await net.peer(relay, receiver)
        author = Identity.generate()
        raws = intents(author, 1000)
        async with PeerClient(author) as client:
            for start in range(0, 1000, 100):
                reasons = await client.push(relay.url, [wire.GossipItem(4, raw) for raw in raws[start : start + 100]])
                assert set(reasons) == {0}
        held = lambda s: s.query_one("SELECT count(*) AS n FROM envelopes")["n"]  # noqa: E731
        await eventually(lambda: receiver.read(lambda s: held(s) == 1000), interval=0.1)
        # The receiver holds all 1,000 a moment before the relay has read its last answers.
        await eventually(lambda: relay.read(lambda s: s.count("outbox") == 0), interval=0.1)
        assert await relay.read(lambda s: s.count("outbox_dead")) == 0  # 0 lost
        stats = relay.runtime.deliverer.stats[receiver.key]
        assert stats.deferred > 0  # the receiver did refuse items: they were re-queued
        assert stats.delivered == 1000  # each counted delivered once, when it was accepted
