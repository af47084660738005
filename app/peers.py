"""Ops on who this node talks to: peers (added, greeted, removed, sent their dead letters again) and
blocked nodes."""

from __future__ import annotations

from functools import partial
from typing import Any

from app.args import Args
from app.services import PEERS, Services
from federation.kinds import ACCESS_KIND, GOSSIP_KIND, grant_of
from federation.outbox import DeadDelivery
from node.errors import ConflictError, DeliveryError, NotFoundError, ValidationError, WireError
from node.gossiplog import blob_id
from node.nodeid import decode_node_id, is_node_id
from node.peers import Peer, check_url


async def peers_add(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    """Ask the node at ``url`` who it is, pin its key (refusing another than ``node_id`` when given),
    and say hello so it knows us (and our URL, if we have one) too."""
    a = Args("peers.add", args, ("url", "node_id"))
    url, expected = check_url(a.text("url")), a.optional_text("node_id")
    if expected is not None and not is_node_id(expected.strip()):
        raise ValidationError("node_id", f"{expected!r} is not a node id (vrm1…)")
    try:
        info = await services.http.node_info(url)
    except (DeliveryError, WireError) as exc:
        raise ConflictError(f"could not reach a vrm node at {url}: {exc}") from None
    if expected is not None and info.node_id != expected.strip().lower():
        raise ConflictError(f"the node at {url} is {info.node_id}, not the expected {expected.strip()}")
    if info.node_id == services.home.node_id:
        raise ValidationError("url", f"{url} is this node itself")
    key = decode_node_id(info.node_id)
    peer = await services.store.run(
        partial(services.peers.add, public_key=key, url=url, role=info.role, name=info.name)
    )
    peer = await say_hello(services, peer)
    services.changed({PEERS})
    return peer.to_json()


async def say_hello(services: Services, peer: Peer) -> Peer:
    """Announce ourselves to ``peer`` (our URL, role, name); the outcome is recorded on the peer."""
    if peer.url is None:
        return peer
    peers = services.peers
    try:
        await services.http.hello(peer.url, services.public_url, services.home.role, services.home.name)
    except (DeliveryError, WireError) as exc:
        await services.store.run(peers.record_contact, peer.public_key, False, str(exc))
    else:
        await services.store.run(peers.record_contact, peer.public_key, True)
    return await services.store.run(peers.get, peer.public_key)


async def peers_remove(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    ref = Args("peers.remove", args, ("ref",)).ref()
    peer = await services.store.run(services.peers.remove, ref)
    services.changed({PEERS})
    return peer.to_json()


async def peers_resend(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    """Queue again what the outbox gave up on for a peer after its last attempt (``max_attempts``: the
    peer was unreachable for longer than the retries last). Only what is still worth sending goes: an
    envelope this node still holds, unexpired (queued with its expiry), and an access push whose grant
    is still live (consent revoked since is never sent on). Dead letters the peer refused, or that
    expired, stay where they are. The deliverer is woken for the peer."""
    ref = Args("peers.resend", args, ("ref",)).ref()

    def work() -> tuple[Peer, int, int, int]:
        peer = services.peers.get(ref)
        now = services.clock()
        dead = services.outbox.dead(peer.public_key, "max_attempts")
        due = _still_due(services, dead, now)
        queued = services.outbox.resend(due, now) if due else 0
        return peer, queued, len(due) - queued, len(dead) - len(due)

    peer, queued, merged, stale = await services.store.run(work)
    if queued:
        services.changed({peer.public_key})
    return {**peer.to_json(), "queued": queued, "already_queued": merged, "not_resent": stale}


def _still_due(services: Services, dead: list[DeadDelivery], now: int) -> list[tuple[int, int | None]]:
    """``(id, expiry to queue it with)`` of the dead letters still worth sending: gossip this node
    holds unexpired (its expiry; the log read once per thousand) and access pushes under a grant we
    gave that is live (the grant's expiry, as first queued; each grant read once)."""
    ids = {d.ref: blob_id(d.ref) for d in dead if d.kind == GOSSIP_KIND and d.ref is not None}
    expiries = services.log.expiries([key for key in ids.values() if key is not None])
    live: dict[str, int | None] = {}  # grant id: when it expires, if live
    due: list[tuple[int, int | None]] = []
    for d in dead:
        if d.kind == GOSSIP_KIND and d.ref is not None:
            key = ids[d.ref]
            expires = expiries.get(key) if key is not None else None
            if expires is not None and expires > now:
                due.append((d.id, expires))
        elif d.kind == ACCESS_KIND and d.ref is not None:
            grant_id = grant_of(d.ref)
            if grant_id not in live:
                live[grant_id] = _live_until(services, grant_id, now)
            until = live[grant_id]
            if until is not None:
                due.append((d.id, until))
    return due


def _live_until(services: Services, grant_id: str, now: int) -> int | None:
    """When a grant we gave that is live at ``now`` expires (None: it is not)."""
    try:
        grant = services.grants.get(grant_id)
    except (NotFoundError, ValidationError):
        return None
    live = grant.direction == "given" and grant.status == "live" and grant.expires > now
    return grant.expires if live else None


async def blocks_add(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    a = Args("blocks.add", args, ("ref", "note"))
    ref, note = a.ref(), a.text("note", "")
    block = await services.store.run(services.blocks.block, ref, note)
    return {"public_key": block.public_key, "node_id": block.node_id}


async def blocks_remove(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    ref = Args("blocks.remove", args, ("ref",)).ref()
    block = await services.store.run(services.blocks.unblock, ref)
    return {"public_key": block.public_key, "node_id": block.node_id}
