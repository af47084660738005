"""The trio edge of the outbox: one independent sending loop per peer.

Each peer's loop takes the due batch from the head of its queue, POSTs it as a msgpack array of the
payloads to ``endpoint(peer, kind)`` with the caller's ``httpx.AsyncClient`` (so signing and transport
are the caller's choice), under ``trio.fail_after(timeout)``, and records the outcome in the outbox and
in the peer's circuit breaker. Loops share nothing but the store, so a slow or dead peer only ever
delays its own queue. An idle loop waits on a ``trio.Event`` (set by ``notify``) or until the head of
its queue is due: nothing polls.

Outcomes: a 2xx acknowledges the batch (deleted); a timeout, transport error, 408/429/5xx or other
refusal counts as a failure (retried with backoff, dead-lettered after ``max_attempts``); a status in
``PERMANENT`` means these bytes will never be accepted (dead-lettered at once, the peer counts as up).
A loop cancelled mid-request marks nothing, so the batch is sent again: delivery is at-least-once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import httpx
import msgpack
import trio

from federation.breaker import CircuitBreaker
from federation.outbox import Delivery, Outbox
from node.errors import DeliveryError
from node.store import wall_clock_ms

T = TypeVar("T")
MEDIA_TYPE = "application/msgpack"
# Malformed, too large, unsupported or unprocessable: resending the same bytes cannot succeed.
PERMANENT = frozenset({400, 413, 415, 422})


class StoreRunner(Protocol):
    """What the Deliverer needs of ``node.store.AsyncStore``: run a sync call off the event loop."""

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Awaitable[T]: ...


@dataclass
class PeerStats:
    requests: int = 0  # POSTs attempted
    delivered: int = 0  # deliveries acknowledged
    failures: int = 0  # failed POSTs
    dead: int = 0  # deliveries dead-lettered


class Deliverer:
    """Sends what ``outbox`` holds. Start with ``await nursery.start(deliverer.run)``; after a
    transaction that enqueued for ``peer`` commits, call ``deliverer.notify(peer)``."""

    def __init__(
        self,
        store: StoreRunner,
        outbox: Outbox,
        client: httpx.AsyncClient,
        endpoint: Callable[[str, str], str],
        *,
        clock: Callable[[], int] = wall_clock_ms,
        timeout: float = 10.0,
        new_breaker: Callable[[], CircuitBreaker] = CircuitBreaker,
        batch_limit: int = 100,
        batch_bytes: int = 1 << 20,
        on_dead: Callable[[str, list[int]], None] | None = None,
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
        self._nursery: trio.Nursery | None = None
        self._wakeups: dict[str, trio.Event] = {}
        self.breakers: dict[str, CircuitBreaker] = {}
        self.stats: dict[str, PeerStats] = {}

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
                batch = await self._store.run(
                    self._outbox.due, peer, now, limit=self._batch_limit, max_bytes=self._batch_bytes
                )
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
            await self._post(peer, batch)
        except DeliveryError as exc:
            now = self._clock()
            if exc.retry:
                stats.failures += 1
                breaker.record_failure(now)
                dead = await self._store.run(self._outbox.mark_failed, ids, now, exc.detail)
            else:
                breaker.record_success()  # the peer answered: it is up, the payload is at fault
                dead = await self._store.run(self._outbox.mark_rejected, ids, now, exc.detail)
            if dead:
                stats.dead += len(dead)
                if self._on_dead is not None:
                    self._on_dead(peer, dead)
        else:
            breaker.record_success()
            await self._store.run(self._outbox.mark_delivered, ids)
            stats.delivered += len(ids)

    async def _post(self, peer: str, batch: list[Delivery]) -> None:
        body = msgpack.packb([d.payload for d in batch])
        url = self._endpoint(peer, batch[0].kind)
        try:
            with trio.fail_after(self._timeout):
                response = await self._client.post(url, content=body, headers={"Content-Type": MEDIA_TYPE})
        except trio.TooSlowError:
            raise DeliveryError(f"timeout after {self._timeout:g}s") from None
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from None
        if not response.is_success:
            raise DeliveryError(f"HTTP {response.status_code}", retry=response.status_code not in PERMANENT)
