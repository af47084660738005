"""The Deliverer's test harness: in-memory peers (``httpx.MockTransport``), an outbox under mock time,
and store calls run inline on the event loop so that mock time is deterministic (a worker thread
would let the autojump clock leap while it works). Used by tests/test_delivery.py,
tests/test_delivery_refusals.py and tests/test_polish_offers.py.
"""

from __future__ import annotations

import httpx
import trio

from federation import wire
from federation.backoff import Backoff
from federation.delivery import Deliverer
from federation.outbox import Outbox
from node.store import Store

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
