"""``POST /v1/tree`` (federation/tree.py): its body round-trips, every hostile body is refused with a
typed error before it touches the tree, a stranger cannot steer it, and a node that floods answers
404. The refusals are checked against a real node on loopback."""

from __future__ import annotations

import httpx
import msgpack
import pytest
import trio

from federation import tree as t
from federation import wire
from federation.auth import SignatureAuth
from federation.plumtree import MAX_HOPS
from federation.ratelimit import RateLimiter
from node.errors import WireError
from node.identity import Identity
from tests.fednet import FedNet, eventually

TIMEOUT = 30
ID = bytes(range(32))


def pack(value) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def test_a_message_round_trips_and_ids_of_another_length_are_left_out():
    msg = t.TreeMessage(graft=(True, (ID,)), ihave=((ID, 3), (bytes(32), 0)), prune=True)
    assert t.decode_tree(t.encode_tree(msg)) == msg
    odd = t.decode_tree(pack({"graft": [False, [b"short", ID]], "ihave": [[b"x" * 33, 1], [ID, 10**6]]}))
    assert odd == t.TreeMessage(graft=(False, (ID,)), ihave=((ID, MAX_HOPS),))
    assert msg.cost == 3


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\xc1",  # never used in MessagePack
        pack([1, 2]),  # not a map
        pack({}),  # says nothing
        pack({"push": []}),  # unknown key
        pack({1: True}),
        pack({"graft": [1, [ID]]}),  # eager is not a bool
        pack({"graft": [True, ID]}),
        pack({"graft": [True, ["text id"]]}),
        pack({"graft": [True]}),
        pack({"ihave": {ID: 1}}),
        pack({"ihave": [[ID]]}),
        pack({"ihave": [[ID, -1]]}),
        pack({"ihave": [[ID, 1.5]]}),
        pack({"ihave": [[ID, True]]}),
        pack({"ihave": [["id", 1]]}),
        pack({"prune": False}),
        pack({"prune": 1}),
        pack({"prune": True}) + b"\x00",  # trailing bytes
        pack({"p" * 20: True}),  # a key longer than any the message has
        pack({"graft": [True, []], "ihave": [], "prune": True, "more": 1}),  # more keys than there are
        b"\x81\xa5ihave" + b"\x91" * 5000 + b"\x90",  # nested beyond any sense
    ],
)
def test_malformed_bodies_are_refused(body):
    with pytest.raises(WireError) as caught:
        t.decode_tree(body)
    assert caught.value.reason == "malformed"


@pytest.mark.parametrize(
    "body",
    [
        pack({"ihave": [[ID, 1]] * (t.MAX_IDS + 1)}),
        pack({"graft": [True, [ID] * (t.MAX_IDS + 1)]}),
        pack({"ihave": [[b"x" * 100, 1]]}),  # a bin longer than any id could be
        b"\x81\xa5prune" + b"\xc3" * (t.MAX_BODY + 1),
    ],
)
def test_oversized_bodies_are_refused_as_too_large(body):
    with pytest.raises(WireError) as caught:
        t.decode_tree(body)
    assert caught.value.reason == "too_large"


async def _post(client: httpx.AsyncClient, url: str, body: bytes) -> httpx.Response:
    return await client.post(url + t.PATH, content=body, headers={"Content-Type": wire.MEDIA_TYPE})


async def test_hostile_tree_bodies_get_typed_errors_and_change_nothing(nursery, tmp_path):
    with trio.fail_after(TIMEOUT):
        net = FedNet(nursery, tmp_path)
        bob = await net.node("bob", app_options={"limiter": RateLimiter(1.0, 3_000)})
        carol = await net.node("carol")
        await net.peer(bob, carol)
        await net.peer(carol, bob)
        tree = bob.runtime.tree

        async def carol_speaks_plumtree() -> bool:  # asked, so her PRUNE counts
            return tree._speaks.get(carol.key) is True and carol.key in tree.plumtree.eager

        await eventually(carol_speaks_plumtree)
        before = (set(tree.plumtree.eager), set(tree.plumtree.lazy), tree.plumtree.awaited())
        async with httpx.AsyncClient(auth=SignatureAuth(carol.identity)) as client:
            for body, status, error in (
                (b"\xc1", 400, wire.MALFORMED_REQUEST),
                (pack({"push": [[0, b"env"]]}), 400, wire.MALFORMED_REQUEST),
                (pack({"graft": ["yes", [ID]]}), 400, wire.MALFORMED_REQUEST),
                (pack({"ihave": [[ID, -3]]}), 400, wire.MALFORMED_REQUEST),
                (pack({"ihave": [[ID, 1]] * (t.MAX_IDS + 1)}), 413, wire.TOO_LARGE),
                (b"\xdc\xff\xff" + b"\xc0" * 65535, 413, wire.TOO_LARGE),  # an array header says 65535
            ):
                response = await _post(client, bob.url, body)
                assert (response.status_code, wire.decode_error(response.content)) == (status, error), body[:20]
            assert before == (set(tree.plumtree.eager), set(tree.plumtree.lazy), tree.plumtree.awaited())
            # a stranger's well-formed PRUNE and IHAVE steer nothing: only peers shape the tree
            stranger = Identity.generate()
            async with httpx.AsyncClient(auth=SignatureAuth(stranger)) as other:
                response = await _post(other, bob.url, pack({"ihave": [[ID, 0]], "prune": True}))
                assert response.status_code == 200
            assert tree.stats["from_strangers"] == 1 and tree.plumtree.awaited() == 0
            # unsigned: refused before any route
            async with httpx.AsyncClient() as anonymous:
                assert (await _post(anonymous, bob.url, pack({"prune": True}))).status_code == 401
            # a peer's IHAVE of an unknown id is awaited; its PRUNE moves it to lazy
            response = await _post(client, bob.url, pack({"ihave": [[ID, 2]]}))
            assert response.status_code == 200 and msgpack.unpackb(response.content) == {}
            assert tree.plumtree.awaited() == 1
            assert (await _post(client, bob.url, pack({"prune": True}))).status_code == 200
            assert carol.key in tree.plumtree.lazy
            # ids cost rate tokens like pushed items: a signer that announces too much is cut off
            def big(k: int) -> bytes:
                return pack({"ihave": [[(k * t.MAX_IDS + i).to_bytes(32, "big"), 0] for i in range(t.MAX_IDS)]})

            statuses = [(await _post(client, bob.url, big(k))).status_code for k in range(4)]
            assert statuses == [200, 200, 429, 429]
            assert tree.plumtree.awaited() == 1 + 2 * t.MAX_IDS
            async with httpx.AsyncClient(auth=SignatureAuth(stranger)) as other:
                assert (await other.get(bob.url + "/v1/node")).status_code == 200  # still serving


async def test_a_node_that_floods_answers_404_and_does_not_advertise_plumtree(nursery, tmp_path):
    with trio.fail_after(TIMEOUT):
        net = FedNet(nursery, tmp_path)
        old = await net.node("old", plumtree=False)
        new = await net.node("new")
        async with httpx.AsyncClient(auth=SignatureAuth(new.identity)) as client:
            response = await _post(client, old.url, pack({"prune": True}))
            assert response.status_code == 404
            info = wire.decode_node_info((await client.get(old.url + "/v1/node")).content)
            assert t.CAPABILITY not in info.gossip
            info = wire.decode_node_info((await client.get(new.url + "/v1/node")).content)
            assert t.CAPABILITY in info.gossip


def test_the_relay_pushes_to_eager_and_legacy_peers_and_announces_to_lazy_ones(tmp_path):
    from types import SimpleNamespace

    from federation.outbox import Outbox
    from federation.plumtree import Timers
    from node.store import Store

    now = [1_000]
    with Store(tmp_path / "s.db") as store:
        relay = t.TreeRelay(store=store, outbox=Outbox(store), clock=lambda: now[0], timers=Timers(prune_after=1))
        relay.refresh(["p", "old", "new"])
        relay.classified("p", True)
        relay.classified("old", False)  # "new" is not asked yet: served as legacy meanwhile
        pushable = ["p", "old", "new", "stranger"]
        env = SimpleNamespace(id=bytes(32))
        # made here: every peer gets it, the pushable stranger too (it is no member of the tree)
        assert relay.targets(env.id, 4, None, pushable) == pushable
        # a duplicate from "p" (prune_after=1) prunes it; from "old" it prunes nothing
        relay.duplicates("old", 1, lambda: [(env.id, 0)])
        relay.duplicates("p", 1, lambda: [(env.id, 0)])
        assert relay.plumtree.lazy == {"p"} and "old" in relay.plumtree.eager

        def unlisted() -> list:
            raise AssertionError("copies from a peer off the tree are never listed")

        counted = relay.stats["duplicates"]
        relay.duplicates("stranger", 900, unlisted)  # counted, nothing else
        assert relay.stats["duplicates"] == counted + 900 and relay.plumtree.lazy == {"p"}
        env2 = SimpleNamespace(id=bytes([1]) * 32)
        assert relay.targets(env2.id, 0, "new", pushable) == ["old", "stranger"]  # ttl 0 is no limit
        now[0] += 1_000
        relay._queue(relay.plumtree.tick(now[0]))
        (msg,) = relay._out["p"].messages()
        assert msg.prune and msg.ihave == ((env2.id, 4),)  # the PRUNE, and the id announced
        assert "old" not in relay._out and "new" not in relay._out  # legacy peers get no announcements


def test_queued_messages_are_split_at_the_entry_limit():
    out = t._Outgoing(ihave=[(ID, 0)] * 2500, graft=True, graft_ids=[ID] * 10, prune=False)
    messages = out.messages()
    assert [len(m.ihave) for m in messages] == [1000, 1000, 500]
    assert messages[0].graft == (True, (ID,) * 10) and all(m.graft is None for m in messages[1:])
    assert all(len(t.encode_tree(m)) <= t.MAX_BODY for m in messages)


def test_a_legacy_peer_is_asked_again_at_most_every_ten_minutes_unless_it_says_hello_itself(tmp_path):
    """Refreshes follow hellos and peer changes, which strangers can bring often: each one re-asking
    every legacy peer whether it speaks plumtree/1 would make any hello a request to each of them."""
    from federation.outbox import Outbox
    from federation.plumtree import Timers
    from node.store import Store

    now = [1_000_000]
    with Store(tmp_path / "s.db") as store:
        relay = t.TreeRelay(store=store, outbox=Outbox(store), clock=lambda: now[0], timers=Timers())
        relay.refresh(["old", "new"])
        relay.classified("old", False)
        relay.classified("new", True)
        now[0] += t.LEGACY_RECHECK_MS - 1
        relay.refresh(["old", "new"])
        assert relay.unasked() == set()  # neither asked again yet
        now[0] += 1
        relay.refresh(["old", "new"])
        assert relay.unasked() == {"old"}  # the legacy one, once its time came
        relay.classified("old", False)
        relay.recheck("new")  # speaks it: nothing to ask
        assert relay.unasked() == set()
        relay.recheck("old")  # its own hello: at once
        assert relay.unasked() == {"old"}
