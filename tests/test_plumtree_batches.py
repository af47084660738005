"""Plumtree's batch events (federation/plumtree.py): a pushed batch handled in one call must leave the
machine exactly as the same payloads one at a time would, and answer the same, whatever came before:
awaited and recent ids, grafted answers, pruned, lazy and promoted links, streaks, pending IHAVEs."""

from __future__ import annotations

import copy
import hashlib

from hypothesis import example, given, settings
from hypothesis import strategies as st

from federation import plumtree as pt


def mid(k: int) -> bytes:
    return hashlib.sha256(b"m%d" % k).digest()


PEERS = ("a", "b", "c", "d")
EVENT = st.one_of(
    st.tuples(st.just("payload"), st.sampled_from(PEERS), st.integers(0, 12), st.integers(0, 8), st.booleans()),
    st.tuples(st.just("ihave"), st.sampled_from(PEERS), st.integers(0, 12), st.integers(0, 8), st.just(False)),
    st.tuples(st.just("prune"), st.sampled_from(PEERS), st.just(0), st.just(0), st.just(False)),
    st.tuples(st.just("tick"), st.sampled_from(PEERS), st.just(0), st.just(0), st.just(False)),
)
TIMERS = st.tuples(st.integers(1, 3), st.integers(0, 2), st.integers(0, 3), st.sampled_from((0, 10, 50)))


def replayed(history, prune_after, unproven, fanout, optimise_ms, *, early_fetch=1):
    """A machine with four kinds of link (eager, lazy, legacy, eager) after ``history``; returns it and
    the time of its last event."""
    timers = pt.Timers(prune_after=prune_after, prune_unproven_after=unproven, fanout_hops=fanout,
                       prune_grace_ms=50, graft_timeout_ms=30, fetch_graft_after=early_fetch,
                       optimise_ms=optimise_ms, recent=24)  # fmt: skip
    tree = pt.Plumtree(timers)
    tree.peer_up("a"), tree.peer_up("b", lazy=True), tree.peer_up("c", legacy=True), tree.peer_up("d")
    now = 0
    for kind, peer, k, hops, fresh in history:
        now += 17
        if kind == "payload":
            tree.on_payload(peer, mid(k), hops, fresh, now)
        elif kind == "ihave":
            tree.on_ihave(peer, [(mid(k), hops)], now)
        elif kind == "prune":
            tree.on_prune(peer, now)
        else:
            tree.tick(now)
    return tree, now


@settings(max_examples=200, deadline=None)
@given(
    st.lists(EVENT, max_size=40),
    st.sampled_from(PEERS + ("stranger",)),
    st.lists(st.tuples(st.integers(0, 12), st.integers(-1, 40)), max_size=30),
    TIMERS,
)
def test_a_batch_of_duplicates_is_the_same_as_one_payload_at_a_time(history, sender, copies, timers):
    """``on_duplicates`` (a pushed batch's copies in one call) against ``on_payload(..., fresh=False)``
    per copy."""
    tree, now = replayed(history, *timers)
    one_by_one, batched = copy.deepcopy(tree), copy.deepcopy(tree)
    items = [(mid(k), hops) for k, hops in copies]
    expected = [a for id_, hops in items for a in one_by_one.on_payload(sender, id_, hops, False, now + 5)]
    assert batched.on_duplicates(sender, items, now + 5) == expected
    assert vars(batched) == vars(one_by_one)
    if not tree.heeds_duplicates(sender):  # the relay then skips listing the copies at all
        assert expected == [] and vars(one_by_one) == vars(tree)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(EVENT, max_size=40),
    st.sampled_from(PEERS + ("stranger",)),
    st.lists(st.tuples(st.integers(0, 40), st.integers(-1, 6)), max_size=30, unique_by=lambda c: c[0]),
    TIMERS,
    st.integers(0, 120),
    st.booleans(),
)
# An awaited id in the middle of a batch grafts its earlier announcer (lazy "b") and prunes the sender:
# the items after it go to "b" too.
@example([("ihave", "b", 1, 0, False)], "d", [(20, 0), (1, 0), (21, 0)], (1, 0, 0, 10), 20, True)
@example([], "b", [(20, 1)], (1, 0, 2, 0), 0, True)  # two hops from its author, fanout 2: the lazy link stays lazy
def test_a_batch_of_new_payloads_is_the_same_as_one_payload_at_a_time(history, sender, fresh, timers, later, pushed):
    """``on_payloads`` (a pushed batch's new envelopes in one call, or a pulled one's) against
    ``on_payload(..., fresh=True)`` per envelope: the same state, each item pushed to the same peers in
    the same order, the same other actions (the GRAFTs and PRUNEs an awaited id's optimisation makes),
    the same IHAVEs queued. Ids 0-12 may be awaited or recent after the history; 13-40 are new."""
    tree, now = replayed(history, *timers)
    one_by_one, batched = copy.deepcopy(tree), copy.deepcopy(tree)
    at = now + later  # past the prune grace or within it
    items = [(mid(k), hops) for k, hops in fresh]
    pushes, others = [], []
    for id_, hops in items:
        actions = one_by_one.on_payload(sender, id_, hops, True, at, pushed=pushed)
        pushes.append(tuple(a.peer for a in actions if isinstance(a, pt.Push)))
        others += [a for a in actions if not isinstance(a, pt.Push)]
    assert batched.on_payloads(sender, items, at, pushed=pushed) == (pushes, others)
    assert vars(batched) == vars(one_by_one)
    assert batched.tick(at + 1000) == one_by_one.tick(at + 1000)  # the IHAVEs queued, in order


def test_a_lazy_sender_of_a_new_payload_is_promoted_once_and_pushed_around_from_then_on():
    """A batch from a lazy link (out of its prune grace) makes it eager at its first item; every item
    goes to the other eager peers and is announced to the lazy ones, none back to the sender."""
    tree = pt.Plumtree(pt.Timers(prune_grace_ms=10))
    tree.peer_up("a"), tree.peer_up("b", lazy=True), tree.peer_up("c", lazy=True), tree.peer_up("d")
    pushes, others = tree.on_payloads("b", [(mid(k), 2) for k in range(3)], now=100)
    assert pushes == [("a", "d")] * 3 and others == []
    assert tree.eager == {"a", "b", "d"} and tree.lazy == {"c"}
    (announce,) = tree.tick(100 + tree.timers.announce_delay_ms)
    assert announce == pt.Announce("c", tuple((mid(k), 3) for k in range(3)))


def test_a_link_pruned_moments_ago_stays_lazy_through_the_grace_and_turns_eager_after_it():
    """A payload a pruned peer sent before our PRUNE reached it is no sign it is on our path: within
    ``prune_grace_ms`` of the PRUNE (inclusive) the link stays lazy, one ms later it is grafted back."""
    tree = pt.Plumtree(pt.Timers(prune_after=1, prune_grace_ms=50))
    tree.peer_up("a"), tree.peer_up("b")
    assert tree.on_payload("a", mid(1), 0, False, 100) == [pt.Prune("a")]  # a copy: pruned at 100
    tree.on_payloads("a", [(mid(2), 0)], now=150)
    assert "a" in tree.lazy
    tree.on_payloads("a", [(mid(3), 0)], now=151)
    assert "a" in tree.eager


def test_what_we_pulled_from_a_peer_is_passed_on_but_leaves_its_link_as_it_was():
    """PROTOCOL.md section 13: a page or a reconciliation from a lazy peer does not graft it, and one
    from an eager peer neither proves its link nor breaks its streak of duplicates."""
    tree = pt.Plumtree(pt.Timers(prune_grace_ms=10, prune_after=3))
    tree.peer_up("a"), tree.peer_up("b", lazy=True), tree.peer_up("c", lazy=True), tree.peer_up("d")
    pushes, others = tree.on_payloads("b", [(mid(k), 2) for k in range(3)], now=100, pushed=False)
    assert pushes == [("a", "d")] * 3 and others == []  # passed on as any new payload
    assert tree.eager == {"a", "d"} and tree.lazy == {"b", "c"}
    (announce,) = tree.tick(100 + tree.timers.announce_delay_ms)
    assert announce == pt.Announce("c", tuple((mid(k), 3) for k in range(3)))
    assert tree.on_payload("d", mid(1), 2, False, 200) == []  # a copy: d's streak is 1
    tree.on_payloads("d", [(mid(7), 2)], now=201, pushed=False)
    assert tree.on_payload("d", mid(2), 2, False, 202) == []  # 2: the pull did not reset it
    assert tree.on_payload("d", mid(3), 2, False, 203) == [pt.Prune("d")]  # 3, and never proven
