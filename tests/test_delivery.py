"""The Deliverer under mock time: per-peer independence, timeouts, the breaker, restart, no idle spin,
what it sends and how it counts what comes back (tests/deliverynet.py is the harness; how it treats
refusals and answers that say nothing: tests/test_delivery_refusals.py).

Most tests run store calls inline on the event loop; the restart test uses the real ``AsyncStore`` on
a file.
"""

from __future__ import annotations

import httpx
import pytest
import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from federation.auth import SignatureAuth, SignatureMiddleware, verified_peer
from federation.backoff import Backoff
from federation.breaker import BreakerState, CircuitBreaker
from federation.delivery import Deliverer
from federation import wire
from federation.noncecache import NonceCache
from node.identity import Identity
from node.nodeid import encode_node_id
from node.store import AsyncStore
from tests.deliverynet import (
    TIMEOUT,
    InlineStore,
    Peer,
    deliverer,
    endpoint,
    enqueue,
    item,
    items,
    mock_ms,
    network,
    outbox_for,
    until,
)


async def test_delivers_everything_in_order_in_batches(store, autojump_clock):
    peers = {"a": Peer()}
    outbox = outbox_for(store)
    enqueue(outbox, "a", items("x", 250))
    async with network(peers) as client, trio.open_nursery() as nursery:
        d = deliverer(InlineStore(store), outbox, client, batch_limit=100)
        assert await nursery.start(d.run) is d
        await until(lambda: len(peers["a"].received) == 250)
        assert peers["a"].received == items("x", 250)
        assert peers["a"].attempts == 3 and d.stats["a"].delivered == 250
        enqueue(outbox, "a", items("y", 2))
        d.notify("a")
        await until(lambda: len(peers["a"].received) == 252)
        assert outbox.pending_counts() == {}
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("mode", ["hang", "down", "refuse"])
async def test_a_dead_peer_never_delays_a_healthy_one(store, autojump_clock, mode):
    peers = {"dead": Peer(mode), "ok": Peer()}
    outbox = outbox_for(store)
    # The dead peer's deliveries are queued first: they must not sit in front of the healthy peer's.
    enqueue(outbox, "dead", items("d", 30))
    enqueue(outbox, "ok", items("k", 30))
    async with network(peers) as client, trio.open_nursery() as nursery:
        d = deliverer(InlineStore(store), outbox, client, batch_limit=10)
        await nursery.start(d.run)
        await until(lambda: len(peers["ok"].received) == 30)
        # Everything reached the healthy peer before the first request to the dead one timed out.
        assert trio.current_time() < TIMEOUT
        assert peers["ok"].received == items("k", 30)
        assert peers["dead"].received == [] and outbox.pending_counts() == {"dead": 30}
        # More for the healthy peer while the dead one keeps failing: still no wait.
        await trio.sleep(3 * TIMEOUT)
        started = trio.current_time()
        enqueue(outbox, "ok", items("k", 5, start=30))
        d.notify("ok")
        await until(lambda: len(peers["ok"].received) == 35)
        assert trio.current_time() - started < 0.1
        assert d.stats["dead"].failures >= 1 and outbox.pending_counts() == {"dead": 30}
        nursery.cancel_scope.cancel()


async def test_every_request_runs_under_the_timeout(store, autojump_clock):
    peers = {"slow": Peer("hang")}
    outbox = outbox_for(store)
    enqueue(outbox, "slow", [b"x"])
    async with network(peers) as client, trio.open_nursery() as nursery:
        d = deliverer(InlineStore(store), outbox, client)
        await nursery.start(d.run)
        await until(lambda: d.stats["slow"].failures == 1)
        assert trio.current_time() == pytest.approx(TIMEOUT, abs=0.02)  # `until` polls every 10 ms
        [row] = store.query("SELECT attempts, last_error FROM outbox")
        assert row == {"attempts": 1, "last_error": "timeout after 5s"}
        nursery.cancel_scope.cancel()


async def test_the_breaker_stops_hammering_a_dead_peer(store, autojump_clock):
    peers = {"dead": Peer("down")}
    # A tiny constant backoff: without the breaker this would be a request every 10 ms.
    outbox = outbox_for(store, backoff=Backoff(base_ms=10, cap_ms=10, floor_ms=10), max_attempts=10**6)
    enqueue(outbox, "dead", items("d", 3))
    hour = 3600
    async with network(peers) as client, trio.open_nursery() as nursery:
        d = deliverer(
            InlineStore(store), outbox, client, new_breaker=lambda: CircuitBreaker(threshold=3, cooldown_ms=60_000)
        )
        await nursery.start(d.run)
        await trio.sleep(hour)
        assert d.breakers["dead"].state(mock_ms()) is BreakerState.OPEN
        # Three failures open it, then one probe per minute.
        assert 3 + 55 <= peers["dead"].attempts <= 3 + hour // 60 + 1
        gaps = [b - a for a, b in zip(peers["dead"].attempt_times[2:], peers["dead"].attempt_times[3:], strict=False)]
        assert min(gaps) == pytest.approx(60)
        assert outbox.pending_counts() == {"dead": 3}
        nursery.cancel_scope.cancel()


async def test_a_peer_that_comes_back_gets_its_queue_in_order(store, autojump_clock):
    peer = Peer("down")
    outbox = outbox_for(store)
    async with network({"p": peer}) as client, trio.open_nursery() as nursery:
        d = deliverer(InlineStore(store), outbox, client, batch_limit=4)
        await nursery.start(d.run)
        for round_ in range(5):  # deliveries keep arriving while it is down
            enqueue(outbox, "p", items("m", 3, start=3 * round_))
            d.notify("p")
            await trio.sleep(30)
        assert peer.received == [] and peer.attempts >= 2
        peer.mode = "up"
        await until(lambda: len(peer.received) == 15)
        assert peer.received == items("m", 15)
        assert d.breakers["p"].state(mock_ms()) is BreakerState.CLOSED
        assert outbox.pending_counts() == {} and outbox.dead() == []
        nursery.cancel_scope.cancel()


async def test_a_peer_without_an_address_waits_until_it_has_one(store, autojump_clock):
    peer = Peer()
    outbox = outbox_for(store)
    urls: dict[str, str] = {}
    async with network({"p": peer}) as client, trio.open_nursery() as nursery:
        d = Deliverer(
            InlineStore(store), outbox, client, lambda p, kind: urls.get(p), clock=mock_ms, batch_limit=4
        )
        await nursery.start(d.run)
        enqueue(outbox, "p", items("a", 2))
        d.notify("p")
        await trio.sleep(30)
        assert peer.received == [] and outbox.pending_counts() == {"p": 2}  # kept, not dropped
        urls["p"] = endpoint("p", "intent")
        await until(lambda: len(peer.received) == 2)
        assert peer.received == items("a", 2) and outbox.dead() == []
        nursery.cancel_scope.cancel()


async def test_an_idle_deliverer_does_not_spin(store, autojump_clock):
    peer = Peer()
    outbox = outbox_for(store)
    inline = InlineStore(store)
    enqueue(outbox, "a", [item(b"one")])
    async with network({"a": peer}) as client, trio.open_nursery() as nursery:
        d = deliverer(inline, outbox, client)
        await nursery.start(d.run)
        await until(lambda: peer.received == [item(b"one")])
        await trio.sleep(1)
        calls = inline.calls
        await trio.sleep(7 * 24 * 3600)  # a week of mocked idleness
        assert inline.calls == calls and peer.attempts == 1
        d.notify("a")  # a spurious wakeup costs one look at the queue, not a loop
        await trio.sleep(3600)
        assert inline.calls == calls + 2
        nursery.cancel_scope.cancel()


async def test_a_permanent_rejection_is_dead_lettered_and_reported(store, autojump_clock):
    peer = Peer(rejects=("/gossip/intent",))
    outbox = outbox_for(store)
    enqueue(outbox, "v", [item(b"huge"), item(b"huge2")], kind="intent")
    enqueue(outbox, "v", [item(b"offer")], kind="offer")
    reported: list[tuple[str, list[int]]] = []
    async with network({"v": peer}) as client, trio.open_nursery() as nursery:
        d = deliverer(InlineStore(store), outbox, client, on_dead=lambda p, ids: reported.append((p, ids)))
        await nursery.start(d.run)
        await until(lambda: peer.received == [item(b"offer")])
        # each item tried alone before it is buried: a 413 to a batch of several only halves it
        assert reported == [("v", [x.id]) for x in outbox.dead("v")]
        assert [(x.payload, x.reason, x.last_error) for x in outbox.dead("v")] == [
            (item(b"huge"), "rejected", "HTTP 413"),
            (item(b"huge2"), "rejected", "HTTP 413"),
        ]
        assert d.breakers["v"].failures == 0 and d.stats["v"].dead == 2
        nursery.cancel_scope.cancel()


async def test_max_attempts_dead_letters_and_the_queue_moves_on(store, autojump_clock):
    peer = Peer("down")
    outbox = outbox_for(store, max_attempts=3)
    enqueue(outbox, "p", [item(b"doomed")])
    reported: list[int] = []
    async with network({"p": peer}) as client, trio.open_nursery() as nursery:
        d = deliverer(InlineStore(store), outbox, client, on_dead=lambda p, ids: reported.extend(ids))
        await nursery.start(d.run)
        await until(lambda: bool(reported))
        assert peer.attempts == 3 and [x.reason for x in outbox.dead("p")] == ["max_attempts"]
        peer.mode = "up"
        enqueue(outbox, "p", [item(b"next")])
        d.notify("p")
        await until(lambda: peer.received == [item(b"next")])
        nursery.cancel_scope.cancel()


async def test_a_restarted_node_resends_what_it_had_queued(tmp_path):
    # Real time here: while a worker thread works, an autojump clock would leap past every deadline.
    path = tmp_path / "node.db"
    peer = Peer("hang")
    async with network({"v": peer}) as client:
        # First life: the request is in flight when the node dies (cancelled, nothing marked).
        astore = await AsyncStore.open(path)
        outbox = outbox_for(astore.store)
        await astore.run(enqueue, outbox, "v", items("q", 4), now=mock_ms())
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                d = deliverer(astore, outbox, client, timeout=3600)
                await nursery.start(d.run)
                d.notify("v")
                await until(lambda: peer.attempts == 1, limit=10)
                nursery.cancel_scope.cancel()
        await astore.aclose()
        # Second life: a new store and Deliverer on the same file; nobody calls notify.
        peer.mode = "up"
        astore = await AsyncStore.open(path)
        try:
            outbox = outbox_for(astore.store)
            async with trio.open_nursery() as nursery:
                await nursery.start(deliverer(astore, outbox, client).run)
                await until(lambda: len(peer.received) == 4, limit=10)
                assert peer.received == items("q", 4)
                assert await astore.run(outbox.pending_counts) == {}
                nursery.cancel_scope.cancel()
        finally:
            await astore.aclose()


async def test_deliveries_are_signed_by_the_callers_client(store, autojump_clock):
    """The Deliverer only uses the client it is given: here one that signs (RFC 9421)."""
    alice = Identity.from_seed(bytes([0xA1]) * 32)
    got: list[tuple[str, list[bytes]]] = []

    async def push(request: Request) -> Response:
        batch = wire.decode_batch(await request.body())
        got.append((verified_peer(request).node_id, [i.envelope for i in batch]))
        return Response(wire.encode_reasons(bytes(len(batch))), media_type="application/msgpack")

    now = 1_700_000_000
    app = SignatureMiddleware(
        Starlette(routes=[Route("/gossip/intent", push, methods=["POST"])]), nonces=NonceCache(), clock=lambda: now
    )
    auth = SignatureAuth(alice, clock=lambda: now)
    outbox = outbox_for(store)
    enqueue(outbox, "vendor.test", [item(b"e1"), item(b"e2")])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), auth=auth) as client:
        async with trio.open_nursery() as nursery:
            await nursery.start(deliverer(InlineStore(store), outbox, client).run)
            await until(lambda: bool(got))
            nursery.cancel_scope.cancel()
    assert got == [(encode_node_id(alice.public_key), [b"e1", b"e2"])]
    assert outbox.pending_counts() == {}


async def test_the_body_is_the_array_of_the_queued_items_and_refusals_are_counted(store, autojump_clock):
    """The POST body is exactly ``[[ttl, env], ...]`` built from the queued bytes; a 200 whose reasons
    refuse some items still acknowledges the whole batch, and the refusals are counted by reason."""
    peer = Peer(refuse_items={b"bad": 16, b"dup": 17, b"new": 250})
    outbox = outbox_for(store)
    queued = [item(b"ok"), item(b"bad"), item(b"dup"), item(b"dup2"), item(b"new")]
    enqueue(outbox, "a", queued)
    async with network({"a": peer}) as client, trio.open_nursery() as nursery:
        d = deliverer(InlineStore(store), outbox, client)
        await nursery.start(d.run)
        await until(lambda: len(peer.received) == 5)
        assert peer.bodies == [b"\x95" + b"".join(queued)]
        assert d.stats["a"].delivered == 5 and outbox.pending_counts() == {} and outbox.dead() == []
        assert dict(d.stats["a"].reasons) == {"bad_signature": 1, "duplicate": 1, "reason_250": 1}
        assert d.stats["a"].unreadable == 0
        nursery.cancel_scope.cancel()
