"""The live stream: what changed on the node, as server-sent events.

``Changes.notify()`` is called by the node whenever an op, an ingest or a hello changed something; a
stream then recomputes a small summary of the store (``summary``) and sends it when it differs from
the last one sent. Deliveries change state inside the deliverer without a notification, so a stream
also looks every ``tick`` seconds. The browser refreshes the parts of the page marked ``data-live``
and puts the count of things waiting for her in the tab title.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import trio

from node.grants import Grants
from node.intents import Intents
from node.leads import Leads
from node.offers import Offers
from node.store import Clock, Store

Read = Callable[..., Awaitable[Any]]


class Changes:
    """A broadcast "something changed" signal (no payload: the store is the truth)."""

    def __init__(self) -> None:
        self._event = trio.Event()
        self.closed = False

    def close(self) -> None:
        """The node is stopping: every stream ends, so a graceful shutdown does not wait on them."""
        self.closed = True
        self.notify()

    def notify(self, *_names: Any) -> None:
        """Wake every stream (safe to call from trio code only; takes and ignores any arguments so it
        can be chained to the node's ``changed(names)`` callback)."""
        self._event.set()
        self._event = trio.Event()

    async def wait(self, timeout: float) -> None:
        with trio.move_on_after(timeout):
            await self._event.wait()


def summary(store: Store, role: str, clock: Clock) -> dict[str, Any]:
    """Counts and states of what the page shows live; ``count`` is what waits for her (open offers
    and pending access requests; a vendor: live leads)."""
    offers = Offers(store, clock=clock).list(status="all")
    grants = Grants(store, clock=clock).list(status="all")
    requests = Grants(store, clock=clock).requests()
    doc: dict[str, Any] = {
        "offers": sorted((o.id, o.status) for o in offers),
        "grants": sorted((g.id, g.status, g.uses_spent, g.deletion_confirmed_at) for g in grants),
        "requests": sorted((r.id, r.status) for r in requests),
        "outbox": store.query_one("SELECT count(*) AS n, coalesce(sum(attempts), 0) AS tries FROM outbox"),
        "dead": store.count("outbox_dead"),
    }
    if role == "vendor":
        leads = Leads(store, clock=clock).list(status="all")
        doc["leads"] = sorted((lead.id, lead.status) for lead in leads)
        waiting = sum(lead.status == "live" for lead in leads)
    else:
        doc["receipts"] = store.count("receipts")
        doc["intents"] = sorted((i.id, i.status) for i in Intents(store, clock=clock).list(status="all"))
        open_offers = sum(o.status == "open" and o.direction == "received" for o in offers)
        pending = sum(r.status == "pending" and r.direction == "received" for r in requests)
        return {"count": open_offers + pending, "offers": open_offers, "requests": pending,
                "state": json.loads(json.dumps(doc))}
    return {"count": waiting, "state": json.loads(json.dumps(doc))}


async def stream(
    read: Read, changes: Changes, role: str, clock: Clock, *, tick: float = 1.0, keepalive: float = 15.0
) -> AsyncIterator[str]:
    """Server-sent events: one ``change`` event at once, then one per change of the summary."""
    last: dict[str, Any] | None = None
    idle = 0.0
    while not changes.closed:
        now = await read(summary, role, clock)
        if now != last:
            last = now
            idle = 0.0
            yield f"event: change\ndata: {json.dumps(now, sort_keys=True)}\n\n"
        elif idle >= keepalive:
            idle = 0.0
            yield ": keepalive\n\n"
        await changes.wait(tick)
        idle += tick
