"""The Deliverer and what peers answer: a 2xx that says nothing of each item, 503 ``busy``, items
refused for a retryable reason (``pow_required``, ``rate_limited``), a stale signature, a 413: what
is sent again, what waits, what counts as a failure and what is dead-lettered (PROTOCOL.md section 7;
issue 10, item 4: nothing refused for a retryable reason is lost).
"""

from __future__ import annotations

import httpx
import pytest
import trio

from federation import wire
from node.reasons import Reason
from tests.deliverynet import (
    InlineStore,
    Peer,
    Throttled,
    answering_first,
    deliverer,
    enqueue,
    item,
    items,
    network,
    outbox_for,
    until,
)


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(204),
        httpx.Response(200, content=wire.encode_reasons(bytes(2))),  # two reasons for three items
        httpx.Response(200, content=b"<html>bad gateway</html>", headers={"Content-Type": "text/html"}),
    ],
    ids=["empty", "too-few-reasons", "a-proxy-page"],
)
async def test_a_2xx_without_a_reason_for_each_item_is_a_failed_attempt_and_sent_again(store, autojump_clock, answer):
    """Such an answer says nothing of any item (some may have been refused busy): nothing is taken
    as delivered, and the batch goes again after a backoff."""
    peer = Peer()
    answering_first(peer, [answer])
    outbox = outbox_for(store)
    enqueue(outbox, "a", items("u", 3))
    async with network({"a": peer}) as client, trio.open_nursery() as nursery:
        d = deliverer(InlineStore(store), outbox, client)
        await nursery.start(d.run)
        await until(lambda: peer.received == items("u", 3))
        stats = d.stats["a"]
        assert (stats.unreadable, stats.failures, stats.delivered, peer.attempts) == (1, 1, 3, 2)
        assert peer.attempt_times[1] - peer.attempt_times[0] >= 0.5  # backed off (base 1 s, rand 0.5)
        assert outbox.pending_counts() == {} and outbox.dead() == []
        nursery.cancel_scope.cancel()


async def test_a_503_busy_defers_the_whole_batch_after_its_retry_after_and_is_no_failure(store, autojump_clock):
    """PROTOCOL.md section 7: a node over its budgets answers 503 ``busy`` with Retry-After; that may be
    others' doing, so it never opens the breaker nor dead-letters anything, however long it lasts."""
    peer = Peer()
    busy = wire.error_body("busy", None)
    answering_first(peer, [httpx.Response(503, headers={"Retry-After": "30"}, content=busy) for _ in range(6)])
    outbox = outbox_for(store, max_attempts=2)
    enqueue(outbox, "p", items("b", 3))
    async with network({"p": peer}) as client, trio.open_nursery() as nursery:
        d = deliverer(InlineStore(store), outbox, client)
        await nursery.start(d.run)
        await until(lambda: peer.received == items("b", 3))
        gaps = [b - a for a, b in zip(peer.attempt_times, peer.attempt_times[1:])]
        assert len(gaps) == 6 and min(gaps) >= 30 - 1e-9
        assert outbox.dead() == [] and d.stats["p"].failures == 0 and d.breakers["p"].failures == 0
        assert d.stats["p"].deferred == 18 and d.stats["p"].delivered == 3
        nursery.cancel_scope.cancel()


async def test_a_503_without_retry_after_is_a_failure(store, autojump_clock):
    """A proxy whose node is down answers 503 with no Retry-After: that counts against the peer."""
    peer = Peer()
    answering_first(peer, [httpx.Response(503)])
    outbox = outbox_for(store)
    enqueue(outbox, "p", items("d", 2))
    async with network({"p": peer}) as client, trio.open_nursery() as nursery:
        d = deliverer(InlineStore(store), outbox, client)
        await nursery.start(d.run)
        await until(lambda: peer.received == items("d", 2))
        assert d.stats["p"].failures == 1 and d.stats["p"].deferred == 0
        nursery.cancel_scope.cancel()


async def test_items_refused_pow_required_are_sent_again_not_dropped(store, autojump_clock):
    """A relaying node cannot add another author's proof of work; the receiver asks for it only while
    under pressure, so the same bytes go again later (PROTOCOL.md section 3)."""
    peer = Peer()
    refused = wire.encode_reasons(bytes([Reason.POW_REQUIRED]) * 3)
    answering_first(peer, [httpx.Response(200, content=refused) for _ in range(2)])
    outbox = outbox_for(store, max_attempts=1)
    enqueue(outbox, "p", items("w", 3))
    async with network({"p": peer}) as client, trio.open_nursery() as nursery:
        d = deliverer(InlineStore(store), outbox, client)
        await nursery.start(d.run)
        await until(lambda: peer.received == items("w", 3))
        assert outbox.dead() == [] and d.stats["p"].deferred == 6 and d.stats["p"].delivered == 3
        nursery.cancel_scope.cancel()


async def test_items_refused_rate_limited_are_resent_in_order_and_never_dead_lettered(store, autojump_clock):
    peer = Throttled(per_round=7, too_many=4)
    outbox = outbox_for(store, max_attempts=2)  # a deferral is no failed attempt: nothing may die of it
    enqueue(outbox, "p", items("r", 100))
    async with network({"p": peer}) as client, trio.open_nursery() as nursery:
        d = deliverer(InlineStore(store), outbox, client, batch_limit=20)
        await nursery.start(d.run)
        await until(lambda: len(peer.received) == 100)
        assert peer.received == items("r", 100)  # each once, in order
        assert outbox.pending_counts() == {} and outbox.dead() == []
        assert d.stats["p"].delivered == 100 and d.stats["p"].deferred > 0 and d.stats["p"].failures == 0
        # After a 429 the next request waited for its Retry-After.
        after_429 = [b - a for i, (a, b) in enumerate(zip(peer.attempt_times, peer.attempt_times[1:])) if (i + 1) % 4 == 0]
        assert after_429 and min(after_429) >= 2.0 - 1e-9  # the mock clock's float sums
        nursery.cancel_scope.cancel()


async def test_a_peer_refusing_a_stale_signature_gets_it_re_signed_not_a_failed_attempt(store, autojump_clock):
    """A peer just restarted refuses what was signed up to its replay floor (401, reason "stale"):
    the same batch sent again a second later (signed afresh) is delivered, nothing counts as failed."""
    peer = Peer()
    refusals = [2]
    plain = peer.handle

    async def handle(request: httpx.Request) -> httpx.Response:
        if refusals[0]:
            refusals[0] -= 1
            peer.attempts += 1
            return httpx.Response(401, headers={"Vrm-Signature-Error": "stale"})
        return await plain(request)

    peer.handle = handle  # type: ignore[method-assign]
    outbox = outbox_for(store, max_attempts=1)
    enqueue(outbox, "p", [item(b"kept")])
    async with network({"p": peer}) as client, trio.open_nursery() as nursery:
        d = deliverer(InlineStore(store), outbox, client)
        await nursery.start(d.run)
        await until(lambda: peer.received == [item(b"kept")])
        assert peer.attempts == 3 and outbox.dead("p") == [] and d.breakers["p"].failures == 0
        nursery.cancel_scope.cancel()


async def test_a_batch_refused_413_is_sent_again_in_halves_and_only_an_item_too_large_alone_dies(
    store, autojump_clock
):
    """A peer (or the proxy in front of it) whose body limit is below ours: every item that fits
    alone gets there, in smaller batches from then on; only one too large by itself is dead-lettered."""
    limit = 300
    peer = Peer()
    plain = peer.handle

    async def handle(request: httpx.Request) -> httpx.Response:
        if len(request.content) > limit:
            peer.attempts += 1
            return httpx.Response(413)
        return await plain(request)

    peer.handle = handle  # type: ignore[method-assign]
    outbox = outbox_for(store)
    small = [item(b"s%02d" % i + b"x" * 40) for i in range(12)]
    big = item(b"b" * 400)
    enqueue(outbox, "p", small[:6] + [big] + small[6:])
    async with network({"p": peer}) as client, trio.open_nursery() as nursery:
        d = deliverer(InlineStore(store), outbox, client)
        await nursery.start(d.run)
        await until(lambda: outbox.pending_counts() == {})
        assert peer.received == small  # in order, each once
        assert [(row.reason, row.last_error, row.payload) for row in outbox.dead("p")] == [("rejected", "HTTP 413", big)]
        assert d.stats["p"].failures == 0 and d.breakers["p"].failures == 0
        nursery.cancel_scope.cancel()
