"""The Deliverer under mock time: per-peer independence, timeouts, the breaker, restart, no idle spin.

Peers are in-memory (``httpx.MockTransport``); most tests run store calls inline on the event loop so
that mock time is deterministic (a worker thread would let the autojump clock leap while it works).
The restart test uses the real ``AsyncStore`` on a file.
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
from federation import wire
from federation.delivery import Deliverer
from federation.noncecache import NonceCache
from federation.outbox import Outbox
from node.identity import Identity
from node.nodeid import encode_node_id
from node.reasons import Reason
from node.store import AsyncStore, Store

TIMEOUT = 5.0  # seconds per request


def mock_ms() -> int:
    return int(trio.current_time() * 1000)


def endpoint(peer: str, kind: str) -> str:
    return f"http://{peer}/gossip/{kind}"


class InlineStore:
    """``AsyncStore.run`` without the thread, counting calls (an idle Deliverer makes none)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.calls = 0

    async def run(self, fn, *args, **kwargs):
        self.calls += 1
        await trio.lowlevel.checkpoint()
        return fn(*args, **kwargs)


class Peer:
    """A fake peer node: ``mode`` is up, hang (never answers), down (503), refuse (connection refused)
    or reject (413 for the paths in ``rejects``). ``refuse_items`` maps envelopes to the reason code
    the peer answers for them (200 all the same)."""

    def __init__(self, mode: str = "up", rejects: tuple[str, ...] = (), refuse_items: dict | None = None) -> None:
        self.mode = mode
        self.rejects = rejects
        self.refuse_items = refuse_items or {}
        self.bodies: list[bytes] = []
        self.received: list[bytes] = []
        self.attempts = 0
        self.attempt_times: list[float] = []

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.attempts += 1
        self.attempt_times.append(trio.current_time())
        assert request.headers["content-type"] == "application/msgpack"
        if self.mode == "hang":
            await trio.sleep_forever()
        if self.mode == "refuse":
            raise httpx.ConnectError("connection refused", request=request)
        if self.mode == "down":
            return httpx.Response(503)
        if request.url.path in self.rejects:
            return httpx.Response(413)
        self.bodies.append(request.content)
        batch = wire.decode_batch(request.content)
        self.received += [wire.encode_item(i.ttl, i.envelope) for i in batch]
        reasons = bytes(self.refuse_items.get(i.envelope, 0) for i in batch)
        return httpx.Response(200, content=wire.encode_reasons(reasons))


def network(peers: dict[str, Peer]) -> httpx.AsyncClient:
    async def handler(request: httpx.Request) -> httpx.Response:
        return await peers[request.url.host].handle(request)

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


def outbox_for(store: Store, **kw) -> Outbox:
    kw.setdefault("backoff", Backoff(base_ms=1_000, cap_ms=60_000, floor_ms=100))
    kw.setdefault("rand", lambda: 0.5)
    return Outbox(store, **kw)


def enqueue(outbox: Outbox, peer: str, payloads: list[bytes], kind: str = "intent", now: int | None = None) -> None:
    now = mock_ms() if now is None else now  # given when called from a worker thread
    with outbox.store.transaction():
        for p in payloads:
            outbox.enqueue(peer, p, kind=kind, now=now)


def item(envelope: bytes) -> bytes:
    return wire.encode_item(3, envelope)


def items(prefix: str, n: int, start: int = 0) -> list[bytes]:
    return [item(f"{prefix}{i}".encode()) for i in range(start, start + n)]


async def until(predicate, limit: float = 3600) -> None:
    """Wait (in mock time) until ``predicate()`` holds."""
    with trio.fail_after(limit):
        while not predicate():
            await trio.sleep(0.01)


def deliverer(inline, outbox, client, **kw) -> Deliverer:
    kw.setdefault("timeout", TIMEOUT)
    return Deliverer(inline, outbox, client, endpoint, clock=mock_ms, **kw)


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


def answering_first(peer: Peer, answers: list[httpx.Response]) -> None:
    """Make ``peer`` answer its first requests with ``answers`` (one each), then as itself."""
    plain = peer.handle

    async def handle(request: httpx.Request) -> httpx.Response:
        if answers:
            peer.attempts += 1
            peer.attempt_times.append(trio.current_time())
            return answers.pop(0)
        return await plain(request)

    peer.handle = handle  # type: ignore[method-assign]


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


# -- retryable refusals are re-queued, never lost (issue 10, item 4) ---------------------------------


class Throttled(Peer):
    """Takes ``per_round`` items per request and answers the rest ``rate_limited``; every
    ``too_many``-th request is a whole 429 with ``Retry-After: 2``."""

    def __init__(self, per_round: int, too_many: int = 0) -> None:
        super().__init__()
        self.per_round = per_round
        self.too_many = too_many

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.attempts += 1
        self.attempt_times.append(trio.current_time())
        if self.too_many and self.attempts % self.too_many == 0:
            return httpx.Response(429, headers={"Retry-After": "2"})
        batch = wire.decode_batch(request.content)
        taken = batch[: self.per_round]
        self.received += [wire.encode_item(i.ttl, i.envelope) for i in taken]
        reasons = bytes(len(taken)) + bytes([18]) * (len(batch) - len(taken))
        return httpx.Response(200, content=wire.encode_reasons(reasons))


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
