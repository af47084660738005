"""The trio edge of the outbox: one independent sending loop per peer.

Each peer's loop takes the due batch from the head of its queue, POSTs it as a msgpack array of the
payloads to ``endpoint(peer, kind)`` (payloads are msgpack values already encoded — gossip items
``[ttl, envelope]`` — so the body is an array header followed by the payloads, never re-encoded) with the caller's ``httpx.AsyncClient`` (so signing and transport
are the caller's choice), under ``trio.fail_after(timeout)``, and records the outcome in the outbox and
in the peer's circuit breaker. Loops share nothing but the store, so a slow or dead peer only ever
delays its own queue. An idle loop waits on a ``trio.Event`` (set by ``notify``) or until the head of
its queue is due: nothing polls.

Outcomes: a 2xx acknowledges the batch (deleted); its body's per-item reasons (``{"reasons": bin}``)
are counted in ``PeerStats.reasons`` so refused items are visible, but never resent (the same bytes
would be refused again) — except the retryable ones (``RETRYABLE``: ``rate_limited``, ``busy``,
``pow_required``), which are re-queued at the head of the queue after the answer's ``Retry-After`` or a
backoff delay, never counted delivered and never dead-lettered for it (PROTOCOL.md section 3). A 429,
or a 503 with a ``Retry-After`` (``busy``: PROTOCOL.md section 7), defers the whole batch the same way:
the peer is up and says when, so it is no failure. A 2xx without one readable reason per item says
nothing of any item (a proxy's page, a body cut short): it counts as a failure like a timeout, a
transport error, a 408/5xx or other refusal (retried with backoff, dead-lettered after
``max_attempts``); a status in ``PERMANENT`` means these bytes will never be accepted (dead-lettered
at once, the peer counts as up), but for a 413 to a batch of several items: each may fit alone (the
peer's body limit is lower than ours, or a proxy's is), so the peer gets batches of half as many
items and bytes from then on, and only a single item refused 413 is dead-lettered. A loop cancelled mid-request marks nothing, so the batch is sent
again: delivery is at-least-once.

An item refused for good (not held, not retryable) that ``keeps_refusal(peer, delivery)`` says matters
(the runtime's: a vendor's offer refused by its addressee) is dead-lettered ``rejected`` with the error
``refused: <reason>`` instead of acknowledged, so the vendor can see what the person's node answered.
"""

from __future__ import annotations

import random
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import httpx
import trio

from federation import wire
from federation.auth import REASON_HEADER
from federation.breaker import CircuitBreaker
from federation.events import DaemonEvents
from federation.outbox import Delivery, Outbox
from node.errors import DeliveryError, WireError
from node.reasons import Reason
from node.store import wall_clock_ms

T = TypeVar("T")
MEDIA_TYPE = wire.MEDIA_TYPE
# Malformed, too large, unsupported or unprocessable: resending the same bytes cannot succeed.
PERMANENT = frozenset({400, 413, 415, 422})
STALE_RETRIES = 2  # re-signed sends after a 401 "stale" (each a second later), before it counts as failed
STALE_DELAY_S = 1.0  # the replay floor's margin (federation/noncecache.py): signed a second later, it passes


async def send_resigned(send: Callable[[], Awaitable[httpx.Response]], timeout: float, what: str = "") -> httpx.Response:
    """``send()`` (which signs each attempt anew) within ``timeout``; sent again a second later, at
    most ``STALE_RETRIES`` times, while the answer is a 401 ``stale``. A peer just restarted refuses
    what was signed up to its persisted replay floor (a second ahead of its last admitted request:
    federation/noncecache.py); the same request signed a second later passes, so re-sign rather than
    count a failure and back off. A timeout, a transport error or a URL httpx cannot build a request
for raises DeliveryError (``what`` first)."""
    for fresh in range(STALE_RETRIES + 1):
        try:
            with trio.fail_after(timeout):
                response = await send()
        except trio.TooSlowError:
            raise DeliveryError(f"{what}timeout after {timeout:g}s") from None
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{what}{type(exc).__name__}: {exc}") from None
        except (httpx.InvalidURL, UnicodeError) as exc:  # a URL no request can be built for (a DEL, a bad IDNA label)
            raise DeliveryError(f"{what}not a usable URL: {exc}") from None
        if response.status_code != 401 or response.headers.get(REASON_HEADER) != "stale" or fresh == STALE_RETRIES:
            return response
        await response.aclose()  # a streamed answer holds its connection until closed
        await trio.sleep(STALE_DELAY_S)
    raise AssertionError("unreachable")
# Per-item refusals that say "later", not "never": the item is re-queued, not counted delivered.
RETRYABLE = frozenset(r for r in Reason if r.retryable)


class StoreRunner(Protocol):
    """What the Deliverer needs of ``node.store.AsyncStore``: run a sync call off the event loop."""

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Awaitable[T]: ...


@dataclass
class PeerStats:
    requests: int = 0  # POSTs attempted
    delivered: int = 0  # deliveries acknowledged
    failures: int = 0  # failed POSTs
    dead: int = 0  # deliveries dead-lettered
    reasons: Counter[str] = field(default_factory=Counter)  # acknowledged items the peer refused, by reason
    unreadable: int = 0  # 2xx answers without one readable reason per item (failures: sent again)
    deferred: int = 0  # items refused for a retryable reason (RETRYABLE, a 429, a 503 busy): re-queued


class Deliverer:
    """Sends what ``outbox`` holds. Start with ``await nursery.start(deliverer.run)``; after a
    transaction that enqueued for ``peer`` commits, call ``deliverer.notify(peer)``."""

    def __init__(
        self,
        store: StoreRunner,
        outbox: Outbox,
        client: httpx.AsyncClient,
        endpoint: Callable[[str, str], str | None],
        *,
        clock: Callable[[], int] = wall_clock_ms,
        timeout: float = 10.0,
        new_breaker: Callable[[], CircuitBreaker] = CircuitBreaker,
        batch_limit: int = 100,
        batch_bytes: int = 1 << 20,
        on_dead: Callable[[str, list[int]], None] | None = None,
        events: DaemonEvents | None = None,
    ) -> None:
        self._store = store
        self._outbox = outbox
        self._client = client
        self._endpoint = endpoint
        self._clock = clock  # milliseconds, the outbox's time; sleeps are derived from it
        self._timeout = timeout
        self._new_breaker = new_breaker
        self._batch_limit = batch_limit
        self._batch_bytes = batch_bytes
        self._on_dead = on_dead
        self.events = events if events is not None else DaemonEvents()  # the operator's log
        # run in the store's thread for each item refused for good: keep the refusal (see the docstring)?
        self.keeps_refusal: Callable[[str, Delivery], bool] | None = None
        self._nursery: trio.Nursery | None = None
        self._wakeups: dict[str, trio.Event] = {}
        self.breakers: dict[str, CircuitBreaker] = {}
        self.stats: dict[str, PeerStats] = {}
        self._deferrals: dict[str, int] = {}  # peer -> answered rounds in a row where nothing got through
        # peer -> (items, payload bytes) a batch may hold, learned from its 413s (a smaller body limit
        # than ours, or a proxy's): kept until the node restarts
        self._limits: dict[str, tuple[int, int]] = {}
        # (peer, count) of deliveries ``due`` dead-lettered as expired, told in the store's thread (a
        # deque: appends there, pops here are thread-safe); said once per sweep of the peer's queue
        self._expired: deque[tuple[str, int]] = deque(maxlen=4096)
        outbox.on_expired = lambda peer, count: self._expired.append((peer, count))

    async def run(self, *, task_status: trio.TaskStatus[Deliverer] = trio.TASK_STATUS_IGNORED) -> None:
        """Resume every peer with queued deliveries (what a restart must re-send), then serve
        ``notify`` until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                for peer in await self._store.run(self._outbox.peers):
                    self._start(peer)
                task_status.started(self)
                await trio.sleep_forever()
            finally:
                self._nursery = None

    def notify(self, peer: str) -> None:
        """Something was queued for ``peer``. Before ``run`` has started this is a no-op: the
        start-up scan finds it in the store."""
        if self._nursery is None:
            return
        if peer in self._wakeups:
            self._wakeups[peer].set()
        else:
            self._start(peer)

    def _start(self, peer: str) -> None:
        assert self._nursery is not None
        self._wakeups[peer] = trio.Event()
        self.breakers.setdefault(peer, self._new_breaker())
        self.stats.setdefault(peer, PeerStats())
        self._nursery.start_soon(self._peer_loop, peer)

    async def _peer_loop(self, peer: str) -> None:
        breaker = self.breakers[peer]
        while True:
            # A fresh event before looking at the queue: a notify from here on is never lost.
            self._wakeups[peer] = wakeup = trio.Event()
            now = self._clock()
            wake_at = breaker.retry_at(now)
            if wake_at is None:
                limit, max_bytes = self._limits.get(peer, (self._batch_limit, self._batch_bytes))
                batch = await self._store.run(self._outbox.due, peer, now, limit=limit, max_bytes=max_bytes)
                self._say_expired()
                if batch:
                    await self._send(peer, batch, breaker)
                    continue
                wake_at = await self._store.run(self._outbox.next_at, peer)
            if wake_at is None:
                await wakeup.wait()
            else:
                with trio.move_on_after(max(0, wake_at - self._clock()) / 1000):
                    await wakeup.wait()

    async def _send(self, peer: str, batch: list[Delivery], breaker: CircuitBreaker) -> None:
        stats = self.stats[peer]
        ids = [d.id for d in batch]
        stats.requests += 1
        try:
            response = await self._post(peer, batch)
            if response.status_code == 413:  # several items too large together: sent again in halves
                self._halve(peer, batch)
                self.events.delivery_failed(peer, len(ids), "HTTP 413: sent again in smaller batches", retry=True)
                self.events.breaker_changed(peer, breaker.record_success(self._clock()), 0)
                return
            whole = _deferred_whole(response)
            reasons = None if whole else _count_reasons(stats, response, len(batch))
            if not whole and reasons is None:
                raise DeliveryError(f"HTTP {response.status_code} without a reason for each item")
        except DeliveryError as exc:
            now = self._clock()
            self.events.delivery_failed(peer, len(ids), exc.detail, retry=exc.retry)
            if exc.retry:
                stats.failures += 1
                self.events.breaker_changed(peer, breaker.record_failure(now), breaker.failures)
                dead = await self._store.run(self._outbox.mark_failed, ids, now, exc.detail)
            else:
                # the peer answered: it is up, the payload is at fault
                self.events.breaker_changed(peer, breaker.record_success(now), 0)
                dead = await self._store.run(self._outbox.mark_rejected, ids, now, exc.detail)
            if dead:
                self.events.dead_lettered(peer, len(dead), exc.detail)
                stats.dead += len(dead)
                if self._on_dead is not None:
                    self._on_dead(peer, dead)
        else:
            self.events.breaker_changed(peer, breaker.record_success(self._clock()), 0)
            if whole is not None:  # refused whole for a retryable reason: later, not a failure
                await self._defer(peer, ids, [], response, whole)
                return
            assert reasons is not None
            kept = await self._keep_refusals(peer, batch, reasons)
            deferred = [d for d, code in zip(ids, reasons, strict=True) if code in RETRYABLE]
            delivered = [d for d, code in zip(ids, reasons, strict=True) if code not in RETRYABLE and d not in kept]
            if deferred:
                await self._defer(peer, deferred, delivered, response, _label(reasons[ids.index(deferred[0])]))
            else:
                self._deferrals.pop(peer, None)
                await self._store.run(self._outbox.mark_delivered, delivered)
            stats.delivered += len(delivered)

    def _halve(self, peer: str, batch: list[Delivery]) -> None:
        """A peer refused ``batch`` as too large: from now on it gets batches of at most half as many
        items and bytes (down to one item, which a 413 then dead-letters: no split can help it)."""
        limit, max_bytes = self._limits.get(peer, (self._batch_limit, self._batch_bytes))
        size = sum(len(d.payload) for d in batch)
        self._limits[peer] = (max(1, min(limit, len(batch) // 2)), max(1, min(max_bytes, size // 2)))

    async def _keep_refusals(self, peer: str, batch: list[Delivery], reasons: bytes) -> set[int]:
        """Dead-letter the refused-for-good items ``keeps_refusal`` wants remembered; their ids."""
        refused = [
            (d, code) for d, code in zip(batch, reasons, strict=True) if code not in RETRYABLE and not _held(code)
        ]
        if not refused or self.keeps_refusal is None:
            return set()
        keep = self.keeps_refusal
        by_code: dict[int, list[int]] = {}
        for d, code in await self._store.run(lambda: [(d, c) for d, c in refused if keep(peer, d)]):
            by_code.setdefault(code, []).append(d.id)
        for code, ids in by_code.items():
            await self._store.run(self._outbox.mark_rejected, ids, self._clock(), f"refused: {_label(code)}")
            self.events.delivery_failed(peer, len(ids), _label(code), retry=False)
        return {i for ids in by_code.values() for i in ids}

    def _say_expired(self) -> None:
        """Log what the last sweeps dead-lettered as expired: one line per peer."""
        counts: Counter[str] = Counter()
        while self._expired:
            peer, count = self._expired.popleft()
            counts[peer] += count
        for peer, count in counts.items():
            self.events.expired(peer, count)
            self.stats.setdefault(peer, PeerStats()).dead += count

    async def _defer(
        self, peer: str, deferred: list[int], delivered: list[int], response: httpx.Response, label: str
    ) -> None:
        """Re-queue ``deferred`` after the peer's ``Retry-After`` (else a backoff delay that grows
        while nothing at all gets through), acknowledging ``delivered`` in the same transaction."""
        stats = self.stats[peer]
        rounds = 1 if delivered else self._deferrals.get(peer, 0) + 1
        self._deferrals[peer] = rounds
        delay = max(_retry_after_ms(response), self._outbox.backoff.delay(rounds, random.random))
        await self._store.run(self._outbox.settle, delivered, deferred, self._clock() + delay, label)
        stats.deferred += len(deferred)

    async def _post(self, peer: str, batch: list[Delivery]) -> httpx.Response:
        body = wire.encode_batch([d.payload for d in batch])
        url = self._endpoint(peer, batch[0].kind)
        if url is None:  # no address known for the peer right now: a failure like an unreachable one
            raise DeliveryError("no address for this peer")
        response = await send_resigned(
            lambda: self._client.post(url, content=body, headers={"Content-Type": MEDIA_TYPE}), self._timeout
        )
        if _deferred_whole(response) is not None:  # the peer is up and says when: deferred by the caller
            return response
        if response.status_code == 413 and len(batch) > 1:  # maybe each alone fits: the caller splits it
            return response
        if not response.is_success:
            raise DeliveryError(f"HTTP {response.status_code}", retry=response.status_code not in PERMANENT)
        return response


def _deferred_whole(response: httpx.Response) -> str | None:
    """The label of a whole request refused for a retryable reason: a 429 (``rate_limited``), or a 503
    that says when to come back (``busy``: a node's budgets, PROTOCOL.md section 7); None otherwise.
    A 503 without ``Retry-After`` (a proxy whose node is down) is a failure."""
    if response.status_code == 429:
        return "rate_limited"
    if response.status_code == 503 and "retry-after" in response.headers:
        return "busy"
    return None


def _count_reasons(stats: PeerStats, response: httpx.Response, count: int) -> bytes | None:
    """The per-item reasons of a 2xx; None (counted ``unreadable``) when there is not one readable
    reason per item: then nothing is known of any of them."""
    try:
        reasons = wire.decode_reasons(response.content, count)
    except WireError:
        stats.unreadable += 1
        return None
    for code in reasons:
        if code != Reason.OK:
            stats.reasons[_label(code)] += 1
    return bytes(reasons)


def _held(code: int) -> bool:
    return code in (Reason.OK, Reason.DUPLICATE)


def _retry_after_ms(response: httpx.Response) -> int:
    """The answer's ``Retry-After`` (whole seconds, capped at an hour) in ms; 0 when absent or odd."""
    text = response.headers.get("retry-after", "")
    if not text.isascii() or not text.isdigit() or len(text) > 6:
        return 0
    return min(int(text), 3600) * 1000


def _label(code: int) -> str:
    try:
        return Reason(code).label
    except ValueError:  # a code newer than this node
        return f"reason_{code}"
