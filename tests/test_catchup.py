"""Catch-up by set reconciliation between real nodes on loopback: a node that was away receives exactly
the envelopes it lacks (counted on the wire), whichever peer it had the others from; hostile
reconciliation bodies get a 400 and change nothing."""

from __future__ import annotations

import pytest
import trio

from app.ops import run_op
from app.root import direct_services
from federation import catchup
from federation.app import RECONCILE_COST
from federation.peerclient import PeerClient
from federation.ratelimit import RateLimiter
from node import reconcile
from node.errors import DeliveryError
from node.home import init_home
from node.identity import Identity
from node.keystore import load_identity
from node.peers import Peers
from tests.fednet import FedNet, eventually

HOUR = 3_600_000
TIMEOUT = 30
M, N = 6, 9  # intents carol holds before she goes away, and intents cast while she is away


def _gossip(store) -> int:
    return store.count("envelopes")


@pytest.fixture
def carol(tmp_path):
    home = init_home(tmp_path / "carol", None, "person")
    return home, load_identity(home.key_path, None)


async def _cast(node, count: int, start: int) -> None:
    for i in range(start, start + count):
        await node.op("intent.cast", {"text": f"Need ?flight item{i}", "ttl_ms": HOUR, "terms": []})


async def test_a_node_back_from_away_receives_exactly_what_it_lacks(nursery, tmp_path, carol):
    with trio.fail_after(TIMEOUT):
        net = FedNet(nursery, tmp_path / "net")
        alice = await net.node("alice")
        bob = await net.node("bob")
        await net.peer(alice, bob)
        await _cast(alice, M, 0)
        await eventually(lambda: bob.read(lambda s: _gossip(s) == M))
        info = await _node_info(carol, bob.url)
        assert catchup.CAPABILITY in info.gossip
        # Carol (no daemon: away, behind NAT, nobody can push to her) gets the first M from alice ...
        async with direct_services(*carol) as services:
            await run_op(services, "peers.add", {"url": alice.url, "node_id": alice.node_id})
            assert await run_op(services, "sync", {}) == {"peers": 1, "reached": 1, "received": M, "fetched": M}
            await run_op(services, "peers.remove", {"ref": alice.node_id})
            # ... and then knows only bob, who holds the same M: nothing is transferred.
            await run_op(services, "peers.add", {"url": bob.url, "node_id": bob.node_id})
            assert await run_op(services, "sync", {}) == {"peers": 1, "reached": 1, "received": 0, "fetched": 0}
        await _cast(alice, N, M)  # while she is away
        await eventually(lambda: bob.read(lambda s: _gossip(s) == M + N))
        async with direct_services(*carol) as services:
            assert await run_op(services, "sync", {}) == {"peers": 1, "reached": 1, "received": N, "fetched": N}
            assert await services.store.run(_gossip, services.store.store) == M + N
            # A cursor pull from bob would have sent all M + N again; hers never moved.
            page = await services.http.pull(bob.url)
            assert len(page.items) == M + N
            assert (await services.store.run(Peers(services.store.store).by_key, bob.key)).pull_cursor == 0
            assert await run_op(services, "sync", {}) == {"peers": 1, "reached": 1, "received": 0, "fetched": 0}


async def _node_info(carol, url: str):
    async with PeerClient(carol[1]) as http:
        return await http.node_info(url)


async def test_hostile_reconcile_bodies_are_refused_and_change_nothing(nursery, tmp_path):
    with trio.fail_after(TIMEOUT):
        net = FedNet(nursery, tmp_path / "net")
        bob = await net.node("bob", app_options={"limiter": RateLimiter(1.0, 1_000)})  # 1 token/s
        mallory = Identity.generate()
        async with PeerClient(mallory) as http:
            for msg in (b"", b"\xc1", b"\x92\x02\x90", b"\x92\x01\x91\x93\xc0\x01\xc4\x03abc"):
                with pytest.raises(DeliveryError, match="400"):
                    await http.reconcile(bob.url, msg)
            # a token filter must be canonical (sorted, distinct ?tokens one space apart)
            for bad in ("flight", "?b ?a", "?a ?a", "?", "?a  ?b", "?a\t", " ?a", "?a?b"):
                with pytest.raises(DeliveryError, match="400"):
                    await http.reconcile(bob.url, b"\x92\x01\x90", filter_text=bad)
            # ids that are not 32 bytes are ignored; unknown ids give an empty page
            page = await http.gossip_by_ids(bob.url, [b"short", bytes(32)])
            assert page.items == [] and page.next == 0
            # a well-formed message is answered, and two empty sets are done after one round
            side = reconcile.Reconciler(reconcile.ItemSet([]))
            assert side.reconcile(await http.reconcile(bob.url, side.initiate())) is None
            assert side.outcome.need == side.outcome.have == set()
            # each message costs RECONCILE_COST tokens of the signer's budget: a loop is cut off
            with pytest.raises(DeliveryError, match="429"):
                for _ in range(1_000 // RECONCILE_COST + 1):
                    await http.reconcile(bob.url, side.initiate())
        assert await bob.read(_gossip) == 0


async def test_a_legacy_peer_without_reconcile_is_pushed_to_and_pulled_by_cursor(nursery, tmp_path, carol):
    with trio.fail_after(TIMEOUT):
        net = FedNet(nursery, tmp_path / "net")
        alice = await net.node("alice")
        old = await net.node("old", plumtree=False, app_options={"catchup": None})  # today's node: no reconcile/1, no plumtree/1
        await net.peer(alice, old)
        await _cast(alice, M, 0)  # pushed to the legacy node as before
        await eventually(lambda: old.read(lambda s: _gossip(s) == M))
        assert (await _node_info(carol, old.url)).gossip == ()
        async with direct_services(*carol) as services:
            await run_op(services, "peers.add", {"url": old.url, "node_id": old.node_id})
            assert await run_op(services, "sync", {}) == {"peers": 1, "reached": 1, "received": M, "fetched": M}
            assert (await services.store.run(Peers(services.store.store).by_key, old.key)).pull_cursor > 0
            assert await run_op(services, "sync", {}) == {"peers": 1, "reached": 1, "received": 0, "fetched": 0}
