"""Sync: catch up with every peer with a URL. A peer that advertises ``reconcile/1`` in ``GET /v1/node``
is reconciled with (range fingerprints over both sets, then only the envelopes we lack are fetched);
a legacy peer's gossip is pulled by cursor. A vendor reconciles with its subscriptions' token filter
where the peer serves filters (``reconcile-tokens/1``), so it fetches only intents it could match.
Our inbox at every peer is pulled by cursor (it holds what is addressed to us, the NAT case)."""

from __future__ import annotations

from functools import partial
from typing import Any

import trio

from app.args import Args
from app.services import Services
from federation import catchup
from node import reconcile
from node.errors import DeliveryError, WireError
from node.nodeid import encode_node_id
from node.peers import Peer
from node.reasons import Reason

PULL_LIMIT = 1000  # items per pull page (the wire's maximum)
MAX_PAGES = 50  # pages per peer and feed in one sync, so one chatty peer cannot hold a sync forever
MAX_ROUNDS = 64  # reconciliation messages per peer in one sync (rounds grow with log of the set size)


async def sync(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    """Pull gossip and our inbox from every peer with a URL, now (all peers at once: a slow one
    delays only itself). One sync at a time, so two never race on a peer's cursors."""
    Args("sync", args, ())
    async with services.pull_lock:
        peers = await services.store.run(services.peers.pushable)
        received = [0] * len(peers)
        fetched = [0] * len(peers)
        reached = [False] * len(peers)

        async def pull(i: int, peer: Peer) -> None:
            received[i], fetched[i], reached[i] = await catch_up(services, peer)

        async with trio.open_nursery() as nursery:
            for i, peer in enumerate(peers):
                nursery.start_soon(pull, i, peer)
    # ``reached``: how many answered; the CLI fails when peers exist and none did
    return {"peers": len(peers), "reached": sum(reached), "received": sum(received), "fetched": sum(fetched)}


async def catch_up(services: Services, peer: Peer) -> tuple[int, int, bool]:
    """(items new here, items transferred, whether it answered) from ``peer``: by reconciliation
    when it serves it, by cursor otherwise; then our inbox there by cursor."""
    assert peer.url is not None
    if services.catchup is None:
        return await pull_peer(services, peer)
    try:
        info = await services.http.node_info(peer.url)
    except (DeliveryError, WireError) as exc:
        await _failed(services, peer, exc)
        return 0, 0, False
    if catchup.CAPABILITY not in info.gossip or info.node_id != _node_id(peer):
        return await pull_peer(services, peer)
    try:
        received, fetched = await _reconcile(services, peer, tokens=catchup.TOKENS_CAPABILITY in info.gossip)
        inbox, inbox_items = await _pull_feed(services, peer, "inbox", peer.inbox_cursor)
    except (DeliveryError, WireError) as exc:
        await _failed(services, peer, exc)
        return 0, 0, False
    await _answered(services, peer)
    return received + inbox, fetched + inbox_items, True


async def _failed(services: Services, peer: Peer, exc: Exception) -> None:
    """Record a failed pull on the peer (`vrm peers list`) and, in a daemon, in its log."""
    if services.events is not None:
        services.events.pull_failed(peer.public_key, peer.url, exc)
    await services.store.run(services.peers.record_contact, peer.public_key, False, str(exc))


async def _answered(services: Services, peer: Peer) -> None:
    """Record a pull that worked; after failures (``peer`` is as loaded before it), say so in the log."""
    if peer.failures and services.events is not None:
        services.events.pull_recovered(peer.public_key, peer.url, peer.failures)
    await services.store.run(services.peers.record_contact, peer.public_key, True)


def _node_id(peer: Peer) -> str:
    return encode_node_id(bytes.fromhex(peer.public_key))


async def _reconcile(services: Services, peer: Peer, *, tokens: bool = False) -> tuple[int, int]:
    """Reconcile our set with the peer's, fetch what we need; (new here, transferred). What the peer
    lacks it gets when it reconciles with us (or by push): nothing is offered here."""
    assert services.catchup is not None and peer.url is not None
    # a vendor reconciles only the intents its subscriptions could match, where the peer serves that
    wanted = await services.store.run(services.catchup.own_filter) if tokens else catchup.ALL
    ours = await services.store.run(services.catchup.items, wanted)
    side = reconcile.Reconciler(ours)
    message: bytes | None = side.initiate()
    while message is not None and side.rounds <= MAX_ROUNDS:
        answer = await services.http.reconcile(peer.url, message, wanted)
        # up to 2 MiB of the peer's ranges over up to MAX_SET items of ours: CPU work that must not
        # hold the event loop (the Reconciler is pure, and only this task touches ``side``)
        message = await trio.to_thread.run_sync(side.reconcile, answer)
    need = sorted(side.outcome.need)  # at most reconcile.MAX_NEED
    received = fetched = 0
    for start in range(0, len(need), catchup.MAX_FETCH):
        page = await services.http.gossip_by_ids(peer.url, need[start : start + catchup.MAX_FETCH])
        fetched += len(page.items)
        received += await _ingest(services, peer, page.items)
    return received, fetched


async def _ingest(services: Services, peer: Peer, items: list) -> int:
    if not items:
        return 0
    ingested = await services.store.run(services.pipeline.ingest, items, peer.public_key, pushed=False)
    if ingested.peers:
        services.changed(set(ingested.peers))
    return sum(1 for r in ingested.reasons if r == Reason.OK)


async def pull_peer(services: Services, peer: Peer) -> tuple[int, int, bool]:
    """Pull ``peer``'s gossip and our inbox there, from the cursors we keep for it, into the pipeline.

    Returns how many items were new here, how many were transferred and whether the peer answered. A failure (peer down, malformed answer) is recorded on the
    peer and ends this pull; the cursors only move past pages that were ingested, so nothing is lost.
    """
    assert peer.url is not None
    peers = services.peers
    received = transferred = 0
    try:
        for feed, cursor in (("pull", peer.pull_cursor), ("inbox", peer.inbox_cursor)):
            new, items = await _pull_feed(services, peer, feed, cursor)
            received, transferred = received + new, transferred + items
    except (DeliveryError, WireError) as exc:
        await _failed(services, peer, exc)
        return received, transferred, False
    await _answered(services, peer)
    return received, transferred, True


async def _pull_feed(services: Services, peer: Peer, feed: str, cursor: int) -> tuple[int, int]:
    """Page through one feed until it has nothing newer; how many items were new here, and how many
    were transferred."""
    fetch = services.http.pull if feed == "pull" else services.http.inbox
    received = transferred = 0
    for _ in range(MAX_PAGES):
        page = await fetch(peer.url, after=cursor, limit=PULL_LIMIT)
        transferred += len(page.items)
        received += await _ingest(services, peer, page.items)
        # A page may hold fewer items than asked (withdrawn intents are left out, pages are capped
        # in bytes), so only a cursor that stops moving ends the feed (never move it backwards).
        if page.next <= cursor:
            break
        cursor = page.next
        await services.store.run(partial(services.peers.set_cursor, peer.public_key, **{feed: cursor}))
    return received, transferred
