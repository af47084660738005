"""What an op may touch (``Services``, built by ``app.root``), and the two steps many ops share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from federation.access import Access
from federation.outbox import Outbox
from federation.peerclient import PeerClient
from federation.pipeline import Pipeline
from node import envelope
from node.blocks import Blocks
from node.errors import ValidationError
from node.gossiplog import GossipLog
from node.grants import Grants
from node.home import HomeInfo
from node.identity import Identity
from node.intents import Intents
from node.leads import Leads
from node.offers import Offers
from node.peers import Peers
from node.records import Records
from federation.catchup import CatchUp
from federation.events import DaemonEvents
from node.store import AsyncStore, Clock, Store, wall_clock_ms
from node.subscriptions import Subscriptions
from node.vault import Vault

SUBSCRIPTIONS = "subscriptions"  # in ``changed``: the matcher must be rebuilt
PEERS = "peers"  # in ``changed``: the peer list changed (pull from a new one, refresh URLs)


@dataclass
class Services:
    """What an op may touch, each built once by the composition root over ``store``'s Store.
    ``public_url`` is where peers reach this node (None: behind NAT or not serving), sent in the
    hello of ``peers.add``; ``changed`` tells the daemon what an op changed."""

    store: AsyncStore
    identity: Identity
    home: HomeInfo
    pipeline: Pipeline  # publish what an op signed; ingest what sync pulls
    access: Access  # queue pushes of changed vault fields
    outbox: Outbox  # the delivery queue (dead letters sent again: peers.resend)
    log: GossipLog  # the envelopes this node holds
    http: PeerClient
    intents: Intents
    peers: Peers
    subscriptions: Subscriptions
    leads: Leads
    offers: Offers
    records: Records
    blocks: Blocks
    grants: Grants
    vault: Vault
    clock: Clock = wall_clock_ms
    changed: Callable[[set[str]], None] = field(default=lambda _names: None)
    public_url: str | None = None
    pull_lock: trio.Lock = field(default_factory=trio.Lock)
    catchup: CatchUp | None = None  # our reconciliation set (None: sync pulls by cursor only)
    events: DaemonEvents | None = None  # the daemon's operator log (None: a CLI run, which logs nothing)


Op = Callable[[Services, dict[str, Any]], Awaitable[dict[str, Any]]]
Signed = envelope.Envelope | bytes


async def sign_and_publish(services: Services, make: Callable[[Store], tuple[Any, Signed]]) -> Any:
    """Run ``make(store)`` (which signs and stores something) and publish its envelope in the same
    transaction; then tell the daemon which peers have something new to send."""

    def work(store: Store) -> tuple[Any, set[str]]:
        with store.transaction():
            result, signed = make(store)
            env = envelope.decode(signed) if isinstance(signed, (bytes, bytearray)) else signed
            peers = services.pipeline.publish(env)
        return result, set(peers or ())

    result, peers = await services.store.run(work, services.store.store)
    if peers:
        services.changed(peers)
    return result


def require_role(services: Services, role: str, what: str) -> None:
    if services.home.role != role:
        raise ValidationError("role", f"{what} is for {role} nodes; this is a {services.home.role} node")
