"""Helpers for Plumtree tests between real nodes on loopback (tests/test_plumtree_nodes.py,
tests/test_tree_live.py): start nodes at once, peer pairs both ways, wait for the tree's classification,
cast intents and wait until they are held everywhere and every outbox has drained."""

from __future__ import annotations

import trio

from tests.fednet import FedNet, Node, eventually

HOUR = 3_600_000


async def start_nodes(net: FedNet, names: list[str], role: str = "person", **options) -> list[Node]:
    """Start these nodes at once."""
    async with trio.open_nursery() as nursery:
        for name in names:
            nursery.start_soon(lambda name=name: net.node(name, role, **options))
    return [net.nodes[name] for name in names]


async def link(net: FedNet, *pairs: tuple[Node, Node]) -> None:
    """Peer each pair both ways (a hello alone makes no push target), a few pairs at once (every node
    runs in this one process: too many at once and an admin API misses its 2 s status check)."""
    few = trio.CapacityLimiter(3)

    async def both(a: Node, b: Node) -> None:
        async with few:
            await net.peer(a, b)
            await net.peer(b, a)

    async with trio.open_nursery() as nursery:
        for a, b in pairs:
            nursery.start_soon(both, a, b)


async def tree_ready(nodes: list[Node]) -> None:
    """Every plumtree node has asked its peers whether they speak plumtree/1."""

    async def asked() -> bool:
        return all(not n.runtime.tree.unasked() for n in nodes)

    await eventually(asked)


async def cast(node: Node, i: int) -> str:
    intent = await node.op("intent.cast", {"text": f"Need ?flight item{i}", "ttl_ms": HOUR, "terms": []})
    return intent["id"]


def intents(store) -> set[str]:
    return {bytes(r["id"]).hex() for r in store.query("SELECT id FROM envelopes WHERE kind = 'intent'")}


async def holds_all(nodes: list[Node], ids: set[str]) -> None:
    async def done() -> bool:
        for n in nodes:
            if not ids <= await n.read(intents):
                return False
        return True

    await eventually(done, interval=0.05)


async def drained(nodes: list[Node]) -> None:
    """Every outbox is empty: each copy sent has been received and counted."""

    async def empty() -> bool:
        for n in nodes:
            if sum((await n.runtime.store.run(n.runtime.outbox.pending_counts)).values()):
                return False
        return True

    await eventually(empty, interval=0.05)
