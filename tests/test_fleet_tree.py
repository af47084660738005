"""A vendor fleet's listeners and Plumtree (PROTOCOL.md section 13, Membership): the listeners share
one key but would not share an in-memory tree, so they do not speak ``plumtree/1``; a Plumtree peer
serves the fleet as legacy: every intent pushed, never pruned, never announced to."""

from __future__ import annotations

import httpx
import msgpack
import trio

from federation import tree as t
from federation import wire
from federation.auth import SignatureAuth
from node.subscriptions import Subscriptions
from tests.fednet import FedNet, eventually
from tests.fleetnet import Fleet

HOUR = 3_600_000
TIMEOUT = 90


async def test_a_plumtree_peer_pushes_every_intent_to_a_fleet_it_serves_as_legacy(fleet, nursery, tmp_path):
    with trio.fail_after(TIMEOUT):
        Subscriptions(fleet.db).add("?flight")
        one, two = await fleet.start(), await fleet.start()
        net = FedNet(nursery, tmp_path)
        alice = await net.node("alice")  # a running node's defaults: Plumtree, fan-out on
        await alice.op("peers.add", {"url": one.url, "node_id": fleet.home.node_id})
        fleet_key = fleet.home.public_key
        tree = alice.runtime.tree
        await eventually(lambda: _classified(tree, fleet_key))  # asked: it does not speak plumtree/1
        async with httpx.AsyncClient(auth=SignatureAuth(alice.identity)) as http:
            for listener in (one, two):  # neither lists plumtree/1 nor serves /v1/tree
                info = wire.decode_node_info((await http.get(listener.url + "/v1/node")).content)
                assert t.CAPABILITY not in info.gossip
                answer = await http.post(
                    listener.url + "/v1/tree",
                    content=msgpack.packb({"prune": True}),
                    headers={"Content-Type": wire.MEDIA_TYPE},
                )
                assert answer.status_code == 404
        ids = set()
        for i in range(4):
            cast = await alice.op("intent.cast", {"text": f"Need ?flight item{i}", "ttl_ms": HOUR, "terms": []})
            ids.add(cast["id"])
        await eventually(lambda: _leads_are(fleet, ids))
        assert fleet_key in tree.plumtree.eager and fleet_key not in tree.plumtree.lazy
        stats = alice.runtime.deliverer.stats
        # The fleet stores a batch before it answers; alice counts it once the answer is read.
        await eventually(lambda: _counted(stats, fleet_key, len(ids)))
        assert tree.stats["ihave_sent"] == 0
        await net.stop(alice)


async def _classified(tree, key: str) -> bool:
    """``key`` is one of the tree's peers, was asked and stays legacy."""
    return key in tree.plumtree.legacy and key not in tree.unasked()


async def _counted(stats, key: str, n: int) -> bool:
    return key in stats and stats[key].delivered >= n


async def _leads_are(fleet: Fleet, ids: set[str]) -> bool:
    return {r["intent_id"] for r in fleet.db.query("SELECT intent_id FROM leads")} == ids
