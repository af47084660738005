"""Plumtree on live nodes (federation/tree.py): the hops each payload and duplicate carries come from the
ttl it arrived with, so fan-out near the author is on in running nodes (as in the 1,000-node model);
broken promises (pushing on after a PRUNE, announcing ids never delivered when grafted) lower the
peer's score, bounded. Between real nodes on loopback: a payload near its author is pushed to lazy
peers too and the tree still prunes duplicates; a misbehaving peer loses score, an honest one not."""

from __future__ import annotations

import dataclasses
import os

import httpx
import msgpack
import pytest
import trio

from federation import tree as t
from federation import wire
from federation.auth import SignatureAuth
from federation.outbox import Outbox
from federation.peerclient import PeerClient
from node.reasons import Reason
from node.scores import FULL, Scores
from node.store import Store
from tests.clirun import Vrm
from tests.fednet import FedNet, Node, eventually
from tests.treenet import cast, drained, holds_all, link, start_nodes, tree_ready

HOUR = 3_600_000
TIMEOUT = 150  # a hang guard: every node shares this process on a loaded machine


def test_hops_come_from_the_ttl_an_item_arrived_with():
    assert t.hops_of(wire.ORIGIN_TTL) == 0  # from the author's node
    assert t.hops_of(wire.ORIGIN_TTL - 1) == 1
    assert t.hops_of(0) == wire.ORIGIN_TTL  # as far as the count tells
    assert t.hops_of(wire.MAX_TTL) == t.pt.MAX_HOPS  # inflated: counts as far, never as near
    assert t.LIVE_TIMERS.fanout_hops == 2


def _relay(store: Store, now: list[int], **timers) -> t.TreeRelay:
    timers = dataclasses.replace(t.LIVE_TIMERS, **timers)
    relay = t.TreeRelay(store=store, outbox=Outbox(store), clock=lambda: now[0], timers=timers)
    relay.refresh(["p", "q"])
    relay.classified("p", True)
    relay.classified("q", True)
    return relay


def test_near_its_author_a_payload_goes_to_lazy_peers_too_and_their_copies_are_excused(tmp_path):
    now = [1_000]
    with Store(tmp_path / "s.db") as store:
        _fanned_and_excused(_relay(store, now, prune_after=1, prune_grace_ms=100), now)


def _fanned_and_excused(relay: t.TreeRelay, now: list[int]) -> None:
    pushable = ["p", "q"]
    first = bytes([1]) * 32
    relay.duplicates("q", 1, lambda: [(first, 0)])  # a far duplicate from q: pruned (prune_after=1)
    assert relay.plumtree.lazy == {"q"}
    # from the author's node (arrived with ORIGIN_TTL, passed on with one less): pushed to lazy q too
    near = bytes([2]) * 32
    assert relay.targets(near, wire.ORIGIN_TTL - 1, "p", pushable) == ["q"]
    # two links from the author: still fanned out; three or more (or an inflated ttl): along the tree
    assert relay.targets(bytes([3]) * 32, wire.ORIGIN_TTL - 2, "p", pushable) == []
    assert relay.targets(bytes([4]) * 32, 0, "p", pushable) == []
    assert relay.targets(bytes([5]) * 32, wire.MAX_TTL - 1, "p", pushable) == []
    # after the grace: a fanned copy from the pruned peer is no offence, a far one is
    now[0] += 1_000
    relay.duplicates("q", 1, lambda: [(near, wire.ORIGIN_TTL)])
    assert relay.stats["ignored_prune"] == 0 and relay.take_offences() == []
    relay.duplicates("q", 1, lambda: [(first, 1)])
    assert relay.stats["ignored_prune"] == 1


def test_broken_promises_are_reported_bounded_per_peer(tmp_path):
    now = [1_000]
    with Store(tmp_path / "s.db") as store:
        relay = _relay(store, now, prune_after=1, prune_grace_ms=100, graft_timeout_ms=10, graft_retry_ms=10,
                       promise_ms=10)
        _reported_bounded(relay, now)


def _reported_bounded(relay: t.TreeRelay, now: list[int]) -> None:
    ids = [os.urandom(32) for _ in range(50)]
    relay.received("p", t.TreeMessage(ihave=tuple((i, 0) for i in ids)), set())
    for _ in range(4):  # grafted, retried, waited for, given up
        now[0] += 20
        relay._queue(relay.plumtree.tick(now[0]))
    assert relay.stats["unanswered_ihave"] == 50
    relay.duplicates("q", 1, lambda: [(ids[0], 0)])
    for _ in range(3):  # a pruned peer pushing on, three grace windows in a row
        now[0] += 200
        relay.duplicates("q", 1, lambda: [(ids[0], 0)])
    assert relay.stats["ignored_prune"] == 3
    assert relay.take_offences() == [("p", {"unanswered_ihave": 1}), ("q", {"ignored_prune": 1})]
    assert relay.take_offences() == []  # each noted once
    now[0] += 200
    relay.duplicates("q", 1, lambda: [(ids[0], 0)])
    relay.refresh(["p"])  # a peer that is gone is not reported
    assert relay.stats["ignored_prune"] == 4 and relay.take_offences() == []


# -- between real nodes ------------------------------------------------------------------------------


@pytest.fixture
async def net(nursery, tmp_path):
    yield FedNet(nursery, tmp_path)


def _delivered(node: Node, to: Node) -> int:
    stats = node.runtime.deliverer.stats.get(to.key)
    return 0 if stats is None else stats.delivered


def _copies(node: Node) -> int:
    return node.runtime.tree.stats["payloads"] + node.runtime.tree.stats["duplicates"]


async def test_near_its_author_a_payload_is_pushed_to_lazy_peers_and_the_tree_still_prunes(net):
    """A ladder alice = b1,b2 = c = d1,d2 = e: c is two links from alice, e four."""
    with trio.fail_after(TIMEOUT):
        # the live defaults (fan-out on), pruning after two duplicates for a small test mesh, and a
        # graft timeout (and early fetch) a loaded test machine's pushes fit in
        timers = dataclasses.replace(t.LIVE_TIMERS, prune_after=2, graft_timeout_ms=1500, early_fetch_ms=500)
        alice, b1, b2, c, d1, d2, e = everyone = await start_nodes(
            net, ["alice", "b1", "b2", "c", "d1", "d2", "e"], tree_timers=timers
        )
        await link(net, (alice, b1), (alice, b2), (b1, c), (b2, c), (c, d1), (c, d2), (d1, e), (d2, e))
        await tree_ready(everyone)
        i = 0

        async def one(author: Node) -> None:
            nonlocal i
            ids = {await cast(author, i)}
            i += 1
            await holds_all(everyone, ids)
            await drained(everyone)

        # intents from the far end until alice hears each from both b's and prunes one
        while not alice.runtime.tree.plumtree.lazy:
            await one(e)
        (lazy,) = [n for n in (b1, b2) if n.key in alice.runtime.tree.plumtree.lazy]
        for _ in range(3):  # the far side settles for alice's intents too
            await one(alice)
        tree, far = alice.runtime.tree, [d1, d2, e]
        announced, pushed, copies = tree.stats["ihave_sent"], _delivered(alice, lazy), [_copies(n) for n in far]
        count = 4
        for _ in range(count):
            await one(alice)
        # the lazy peer got every one of alice's intents pushed (not announced: no IHAVE went out)
        assert lazy.key in tree.plumtree.lazy
        assert _delivered(alice, lazy) - pushed >= count
        assert tree.stats["ihave_sent"] == announced
        # c, two links away, gets both b's copies (fanned out); beyond, the tree is pruned: each of
        # d1, d2 and e (two neighbours each, flooding would bring two copies) gets about one
        assert all(_copies(n) - before <= count + count // 2 for n, before in zip(far, copies, strict=True))
        assert sum(n.runtime.tree.stats["prune_sent"] for n in far) >= 1


async def test_a_peer_that_breaks_its_tree_promises_loses_score_and_an_honest_one_does_not(net):
    with trio.fail_after(TIMEOUT):
        timers = dataclasses.replace(
            t.LIVE_TIMERS, prune_after=2, prune_grace_ms=300, graft_timeout_ms=300, graft_retry_ms=100, promise_ms=500
        )
        victim, rogue, honest = await start_nodes(net, ["victim", "rogue", "honest"], tree_timers=timers)
        await link(net, (victim, rogue), (victim, honest))
        await tree_ready([victim, rogue, honest])
        relay = victim.runtime.tree
        # honest traffic both ways first: nobody is held anything against
        ids = {await cast(honest, 0), await cast(rogue, 1), await cast(victim, 2)}
        await holds_all([victim, rogue, honest], ids)
        rogue_id = await cast(rogue, 3)
        await holds_all([victim], {rogue_id})
        raw = await rogue.read(lambda s: bytes(s.query_one("SELECT raw FROM envelopes WHERE id = ?", [bytes.fromhex(rogue_id)])["raw"]))
        async with PeerClient(rogue.identity, timeout=10) as as_rogue:
            # the rogue pushes the same intent again and again (far copies: ttl 0), pruned or not
            while rogue.key not in relay.plumtree.lazy:
                await as_rogue.push(victim.url, [wire.GossipItem(0, raw)])
            while not relay.stats["ignored_prune"]:
                await trio.sleep(0.1)
                await as_rogue.push(victim.url, [wire.GossipItem(0, raw)])
            # and announces ids it never delivers when grafted (it holds none of them)
            bogus = [os.urandom(32) for _ in range(20)]
            body = msgpack.packb({"ihave": [[b, 0] for b in bogus]}, use_bin_type=True)
            async with httpx.AsyncClient(auth=SignatureAuth(rogue.identity)) as http:
                answer = await http.post(
                    victim.url + "/v1/tree", content=body, headers={"Content-Type": wire.MEDIA_TYPE}
                )
                assert answer.status_code == 200

        def standing(key: str):
            return lambda s: Scores(s).get(key)

        async def scored() -> bool:
            offences = (await victim.read(standing(rogue.key))).offences
            return "ignored_prune" in offences and "unanswered_ihave" in offences

        await eventually(scored, interval=0.1)
        assert relay.stats["unanswered_ihave"] == len(bogus)
        rogue_standing = await victim.read(standing(rogue.key))
        # what `vrm peers list` shows: a lower score and why; bounded (twenty ids, one offence)
        assert rogue_standing.offences["unanswered_ihave"] == 1
        assert "ignored_prune" in rogue_standing.why() and "unanswered_ihave" in rogue_standing.why()
        assert rogue_standing.current(victim.runtime.clock()) < FULL
        assert (await victim.read(standing(honest.key))).offences == {}
        # `vrm peers list` on the victim's home says so too
        listed = {p["public_key"]: p for p in Vrm(victim.home.path, passphrase=None).json("peers", "list")}
        assert set(listed[rogue.key]["offences"]) == {"ignored_prune", "unanswered_ihave"}
        assert listed[rogue.key]["score"] < FULL and listed[honest.key]["score"] == FULL


async def test_nothing_is_held_against_a_peer_our_last_tree_message_did_not_reach(tmp_path):
    from node.errors import DeliveryError

    now = [1_000]

    async def unreachable(peer: str, msg: t.TreeMessage) -> None:
        raise DeliveryError("connection refused")

    async def reached(peer: str, msg: t.TreeMessage) -> None:
        pass

    async def fetch(peer: str, ids: list[bytes]) -> None:
        pass

    with Store(tmp_path / "s.db") as store:
        relay = _relay(store, now, graft_timeout_ms=10, graft_retry_ms=10, promise_ms=10)

        async def announced_and_grafted(send) -> None:  # type: ignore[no-untyped-def]
            relay.received("p", t.TreeMessage(ihave=((os.urandom(32), 0),)), set())
            now[0] += 20
            relay._queue(relay.plumtree.tick(now[0]))  # the GRAFT, sent (or not) …
            await relay._sender("p", send, fetch, set())
            for _ in range(2):  # … and never answered
                now[0] += 20
                relay._queue(relay.plumtree.tick(now[0]))

        await announced_and_grafted(unreachable)  # our GRAFT never got there: not its fault
        assert relay.stats["unanswered_ihave"] == 1 and relay.take_offences() == []
        await announced_and_grafted(reached)
        assert relay.take_offences() == [("p", {"unanswered_ihave": 1})]


def test_copies_pulled_or_fetched_from_a_peer_never_prune_its_link(tmp_path):
    """A pull page or a fetch by ids overlaps what the tree already brought: those duplicates say
    nothing of the peer's links. Only pushed duplicates count towards a PRUNE."""
    from app.root import build_core
    from node import envelope
    from node.identity import Identity
    from node.intents import parse_intent

    author, peer = Identity.from_seed(b"\xa1" * 32), Identity.from_seed(b"\x12" * 32)
    now = [1_750_000_000_000]
    with Store(tmp_path / "s.db", clock=lambda: now[0]) as store:
        core = build_core(store, Identity.from_seed(b"\x7e" * 32).public_key, "person", clock=lambda: now[0],
                          tree=dataclasses.replace(t.LIVE_TIMERS, prune_after=1, prune_unproven_after=1))
        relay, key = core.relay, peer.public_key.hex()
        relay.refresh([key])
        relay.classified(key, True)
        env = envelope.create(author, "intent", parse_intent("Need ?flight").body(), created=now[0] - 1000,
                              expires=now[0] + HOUR)
        far = wire.GossipItem(0, env.raw)  # far from its author: a duplicate of it may prune
        assert list(core.pipeline.ingest([far], key).reasons) == [0]
        for _ in range(3):  # pulled, then fetched: duplicates every time, none held against the link
            assert list(core.pipeline.ingest([far], key, pushed=False).reasons) == [Reason.DUPLICATE]
        assert relay.stats["duplicates"] == 0 and key not in relay.plumtree.lazy
        assert list(core.pipeline.ingest([far], key).reasons) == [Reason.DUPLICATE]  # pushed again
        assert relay.stats["duplicates"] == 1 and key in relay.plumtree.lazy


def test_a_new_payload_pulled_from_a_lazy_peer_leaves_its_link_lazy(tmp_path):
    """The counterpart for new payloads: what a page or a reconciliation brought from a peer we pruned
    is stored and passed on, but does not graft the link back (a peer cannot re-graft itself by
    being pulled from); the same payload pushed by it would."""
    from app.root import build_core
    from node import envelope
    from node.identity import Identity
    from node.intents import parse_intent
    from node.peers import Peers

    author, peer = Identity.from_seed(b"\xa1" * 32), Identity.from_seed(b"\x12" * 32)
    now = [1_750_000_000_000]
    with Store(tmp_path / "s.db", clock=lambda: now[0]) as store:
        core = build_core(store, Identity.from_seed(b"\x7e" * 32).public_key, "person", clock=lambda: now[0],
                          tree=t.LIVE_TIMERS)
        relay, key = core.relay, peer.public_key.hex()
        other = Identity.from_seed(b"\x13" * 32).public_key
        with store.transaction():  # someone to pass it on to: else no target is even asked for
            for k, who in enumerate((peer.public_key, other)):
                Peers(store).add(public_key=who, url=f"http://127.0.0.1:{9 + k}", role="relay", name="")
        relay.refresh([key, other.hex()])
        for member in (key, other.hex()):
            relay.classified(member, True)
        relay.plumtree.lazy.add(key), relay.plumtree.eager.discard(key)  # pruned long ago

        def far(text: str) -> wire.GossipItem:  # far from its author: a push of it would graft
            body = parse_intent(text).body()
            return wire.GossipItem(0, envelope.create(author, "intent", body, created=now[0] - 1000,
                                                      expires=now[0] + HOUR).raw)  # fmt: skip

        assert list(core.pipeline.ingest([far("Need ?flight")], key, pushed=False).reasons) == [0]
        assert key in relay.plumtree.lazy
        assert list(core.pipeline.ingest([far("Need ?hotel")], key).reasons) == [0]
        assert key in relay.plumtree.eager
