"""Pulls from a peer that just restarted (federation/peerclient.py): the restarted node refuses, as
``stale``, requests signed up to its persisted replay floor; the puller signs again a second later
instead of failing the round (as the deliverer does for pushes), and so does the probe that verifies
a URL the restarted node announces (federation/peerverify.py)."""

from __future__ import annotations

import time

import pytest
import trio

from federation.noncecache import Admission, NonceCache, ReplayFloor
from node.peers import Peers
from tests.fednet import FedNet, eventually

HOUR = 3_600_000
TIMEOUT = 90


class RestartedMemory(NonceCache):
    """A restarted node's replay memory (its floor loaded from the home), whose floor the test can
    set to what the node would have persisted had it admitted, just before the restart, a request
    signed a second ahead of now (the signer's clock a second fast: well within the allowed skew), or
    that refuses the next ``refuse_next`` requests whenever they come (a floor two seconds deep refuses
    two, a second apart: signed in its last request's second and in the next)."""

    def __init__(self, floor: ReplayFloor) -> None:
        super().__init__(persist=floor)
        self.until: int | None = None
        self.refuse_next = 0
        self.refused = 0

    def admit(self, key, created, now):  # type: ignore[no-untyped-def]
        if self.refuse_next:
            self.refuse_next -= 1
            self.refused += 1
            return Admission.FORGOTTEN
        if self.until is not None and created <= self.until:
            self.refused += 1
            return Admission.FORGOTTEN  # answered 401 "stale", as the floor does
        return super().admit(key, created, now)


def _intents(store) -> set[str]:
    return {bytes(r["id"]).hex() for r in store.query("SELECT id FROM envelopes WHERE kind = 'intent'")}


@pytest.fixture
async def net(nursery, tmp_path):
    yield FedNet(nursery, tmp_path)


async def test_the_first_pull_after_a_peer_restarts_succeeds_without_a_failed_round(net):
    with trio.fail_after(TIMEOUT):
        shop = await net.node("shop", "vendor")
        bob = await net.node("bob", reachable=False)  # behind NAT: he only ever pulls
        await net.peer(bob, shop)
        first = await shop.op("intent.cast", {"text": "Need ?flight one", "ttl_ms": HOUR, "terms": []})
        assert (await bob.op("sync"))["reached"] == 1
        assert first["id"] in await bob.read(_intents)

        port = shop.port
        await net.stop(shop)
        memory = RestartedMemory(ReplayFloor(shop.home.replay_floor_path))
        await net.start(shop, port=port, app_options={"nonces": memory})  # where bob knows it
        second = await shop.op("intent.cast", {"text": "Need ?flight two", "ttl_ms": HOUR, "terms": []})
        memory.until = int(time.time()) + 1
        synced = await bob.op("sync")

        # refused as stale at first, signed again and answered: the round reached the shop
        assert memory.refused >= 1
        assert synced["reached"] == 1 and synced["received"] >= 1
        assert second["id"] in await bob.read(_intents)
        (row,) = await bob.read(lambda s: s.query("SELECT failures, last_error FROM peers"))
        assert row["failures"] == 0 and row["last_error"] is None


async def test_a_peer_back_on_a_new_port_is_verified_there_though_it_refuses_the_first_probes(net):
    with trio.fail_after(TIMEOUT):
        alice = await net.node("alice")
        shop = await net.node("shop", "vendor")
        await net.peer(alice, shop)
        await net.stop(alice)
        memory = RestartedMemory(ReplayFloor(alice.home.replay_floor_path))
        memory.refuse_next = 2
        await net.start(alice, app_options={"nonces": memory})  # a new port: her hello claims it

        async def moved() -> bool:
            return await shop.read(lambda s: Peers(s).by_key(alice.key).url == alice.url)

        await eventually(moved)  # the shop's probe of her new URL, refused twice, signed a third time
        assert memory.refused == 2
