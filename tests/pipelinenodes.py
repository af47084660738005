"""Pipelines over real stores for the pipeline tests: a person's node, a relay and a vendor, each with
its own store and clock, passing items by hand as they would travel on the wire."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path


from app.root import build_core
from federation import wire
from federation.pages import Pages
from federation.pipeline import GOSSIP_KIND, Ingested, Pipeline
from node import envelope
from node.identity import Identity
from node.intents import Intents, parse_intent
from node.peers import Peers
from node.store import Store
from node.subscriptions import Subscriptions
from tests.helpers import Clock

NOW = 1_750_000_000_000
HOUR = 3_600_000
ALICE = Identity.from_seed(b"\xa1" * 32)  # a person
BOB = Identity.from_seed(b"\xb0" * 32)  # another person
RELAY = Identity.from_seed(b"\x12" * 32)
VENDOR = Identity.from_seed(b"\x7e" * 32)
OTHER = Identity.from_seed(b"\x0f" * 32)  # some other node


@dataclass
class Node:
    identity: Identity
    role: str
    store: Store
    pipeline: Pipeline
    pages: Pages
    clock: Clock

    @property
    def key(self) -> str:
        return self.identity.public_key.hex()

    def ingest(self, items: list[wire.GossipItem], from_peer: str | None = None) -> list[int]:
        result = self.pipeline.ingest(items, from_peer)
        assert isinstance(result, Ingested) and len(result.reasons) == len(items)
        return list(result.reasons)

    def peer(self, other: Node | Identity, url: str | None = "http://peer.test") -> None:
        identity = other.identity if isinstance(other, Node) else other
        role = other.role if isinstance(other, Node) else "relay"
        Peers(self.store, clock=self.clock).add(public_key=identity.public_key, url=url, role=role, name="")

    def queued(self, peer: Node | Identity) -> list[wire.GossipItem]:
        """What this node queued for ``peer``, decoded as the peer would receive it."""
        key = (peer.identity if isinstance(peer, Node) else peer).public_key.hex()
        rows = self.store.query("SELECT kind, payload FROM outbox WHERE peer = ? ORDER BY id", [key])
        assert all(r["kind"] == GOSSIP_KIND for r in rows)
        return wire.decode_batch(wire.encode_batch([r["payload"] for r in rows]))


@contextlib.contextmanager
def pipeline_nodes(tmp_path: Path, open_vendor_store: Callable[..., Store]) -> Iterator[Callable[..., Node]]:
    """``make(identity, role, subscriptions=...)``: a node of ``role``; a vendor's store is of the
    test's engine (``open_vendor_store``: both under ``@vendor_engines``). Stores closed after."""
    stores = []

    def make(identity: Identity, role: str, *, subscriptions: tuple[str, ...] = ()) -> Node:
        clock = Clock(NOW)
        name = identity.public_key.hex()[:8]
        if role == "vendor":
            store = open_vendor_store(name, clock)
        else:
            store = Store(tmp_path / f"{name}.db", clock=clock)
            stores.append(store)
        subs = Subscriptions(store, clock=clock)
        for text in subscriptions:
            subs.add(text)
        core = build_core(store, identity.public_key, role, None, subs.index, clock, identity=identity)
        return Node(identity, role, store, core.pipeline, core.pages, clock)

    try:
        yield make
    finally:
        for store in stores:
            store.close()


def cast(node: Node, text: str, ttl_ms: int = 24 * HOUR) -> envelope.Envelope:
    """A person's node casts an intent and publishes it."""
    record = Intents(node.store, clock=node.clock).cast(node.identity, text, ttl_ms=ttl_ms)
    env = envelope.decode(record.raw)
    node.pipeline.publish(env)
    return env


def intent_env(identity: Identity, text: str, *, created: int = NOW - 1000, expires: int = NOW + HOUR):
    body = parse_intent(text).body()
    return envelope.create(identity, "intent", body, created=created, expires=expires)


def item(env: envelope.Envelope | bytes, ttl: int = 4) -> wire.GossipItem:
    return wire.GossipItem(ttl, env if isinstance(env, bytes) else env.raw)


def held_ids(node: Node) -> set[str]:
    return {bytes(r["id"]).hex() for r in node.store.query("SELECT id FROM envelopes")}
