"""Sync: pull gossip and our inbox from every peer with a URL, from the cursors we keep for each."""

from __future__ import annotations

from functools import partial
from typing import Any

import trio

from app.args import Args
from app.services import Services
from node.errors import DeliveryError, WireError
from node.peers import Peer
from node.reasons import Reason

PULL_LIMIT = 1000  # items per pull page (the wire's maximum)
MAX_PAGES = 50  # pages per peer and feed in one sync, so one chatty peer cannot hold a sync forever


async def sync(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    """Pull gossip and our inbox from every peer with a URL, now (all peers at once: a slow one
    delays only itself). One sync at a time, so two never race on a peer's cursors."""
    Args("sync", args, ())
    async with services.pull_lock:
        peers = await services.store.run(services.peers.pushable)
        received = [0] * len(peers)
        reached = [False] * len(peers)

        async def pull(i: int, peer: Peer) -> None:
            received[i], reached[i] = await _pull_peer(services, peer)

        async with trio.open_nursery() as nursery:
            for i, peer in enumerate(peers):
                nursery.start_soon(pull, i, peer)
    # ``reached``: how many answered every page; the CLI fails when peers exist and none did
    return {"peers": len(peers), "reached": sum(reached), "received": sum(received)}


async def pull_peer(services: Services, peer: Peer) -> int:
    """How many items pulling ``peer`` brought (``_pull_peer`` without whether it answered)."""
    return (await _pull_peer(services, peer))[0]


async def _pull_peer(services: Services, peer: Peer) -> tuple[int, bool]:
    """Pull ``peer``'s gossip and our inbox there, from the cursors we keep for it, into the pipeline.

    Returns how many items were new here and whether the peer answered. A failure (peer down, malformed answer) is recorded on the
    peer and ends this pull; the cursors only move past pages that were ingested, so nothing is lost.
    """
    assert peer.url is not None
    peers = services.peers
    received = 0
    try:
        for feed, cursor in (("pull", peer.pull_cursor), ("inbox", peer.inbox_cursor)):
            received += await _pull_feed(services, peer, feed, cursor)
    except (DeliveryError, WireError) as exc:
        await services.store.run(peers.record_contact, peer.public_key, False, str(exc))
        return received, False
    await services.store.run(peers.record_contact, peer.public_key, True)
    return received, True


async def _pull_feed(services: Services, peer: Peer, feed: str, cursor: int) -> int:
    """Page through one feed until it has nothing newer; how many items were new here."""
    fetch = services.http.pull if feed == "pull" else services.http.inbox
    received = 0
    for _ in range(MAX_PAGES):
        page = await fetch(peer.url, after=cursor, limit=PULL_LIMIT)
        if page.items:
            ingested = await services.store.run(services.pipeline.ingest, page.items, peer.public_key)
            received += sum(1 for r in ingested.reasons if r == Reason.OK)
            if ingested.peers:
                services.changed(set(ingested.peers))
        # A page may hold fewer items than asked (withdrawn intents are left out, pages are capped
        # in bytes), so only a cursor that stops moving ends the feed (never move it backwards).
        if page.next <= cursor:
            break
        cursor = page.next
        await services.store.run(partial(services.peers.set_cursor, peer.public_key, **{feed: cursor}))
    return received
