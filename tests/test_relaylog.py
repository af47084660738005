"""Relayed gossip stored once with a cursor per peer (federation/relaylog.py through ``Outbox``),
over a real SQLite store: one copy for many peers, each peer's queue in order, acknowledgements out
of order never resent, dead letters per peer, restart, and more peers than slots."""

from __future__ import annotations

import pytest

from federation.backoff import Backoff
from federation.outbox import Outbox
from federation.relaylog import SLOTS, is_relayed
from node.store import Store

BACKOFF = Backoff(base_ms=1_000, cap_ms=8_000, floor_ms=0)
PEERS = [f"peer{i}" for i in range(5)]


@pytest.fixture
def outbox(store) -> Outbox:
    return Outbox(store, backoff=BACKOFF, rand=lambda: 0.999, max_attempts=3)


def relay(outbox: Outbox, n: int, peers=PEERS, *, start: int = 0, now: int = 0, expires=None) -> set[str]:
    items = [(f"item{i}".encode(), f"{i:064x}", expires, list(peers)) for i in range(start, start + n)]
    with outbox.store.transaction():
        return outbox.relay(items, now=now)


def payloads(batch) -> list[bytes]:
    return [d.payload for d in batch]


def test_a_payload_relayed_to_five_peers_is_stored_once_and_reaches_each(outbox, store):
    assert relay(outbox, 3) == set(PEERS)
    assert store.count("relay") == 3 and store.count("outbox_rows") == 0  # once, not once per peer
    assert outbox.pending_counts() == {p: 3 for p in PEERS} and outbox.peers() == PEERS
    for peer in PEERS:
        batch = outbox.due(peer, 0)
        assert payloads(batch) == [b"item0", b"item1", b"item2"] and all(is_relayed(d.id) for d in batch)
        assert {d.peer for d in batch} == {peer} and len({d.id for d in batch}) == 3
    outbox.mark_delivered([d.id for d in outbox.due("peer0", 0)])
    assert outbox.due("peer0", 0) == [] and outbox.next_at("peer0") is None
    assert payloads(outbox.due("peer1", 0)) == [b"item0", b"item1", b"item2"]  # the others keep theirs
    assert store.count("relay") == 3
    for peer in PEERS[1:]:
        outbox.mark_delivered([d.id for d in outbox.due(peer, 0)])
    assert store.count("relay") == 0 and outbox.pending_counts() == {} and outbox.peers() == []  # pruned


def test_each_payload_goes_only_to_the_peers_named_for_it(outbox):
    with outbox.store.transaction():
        outbox.relay([(b"a", "1" * 64, None, ["peer0", "peer1"]), (b"b", "2" * 64, None, ["peer1", "peer2"])], now=0)
    assert payloads(outbox.due("peer0", 0)) == [b"a"]
    assert payloads(outbox.due("peer1", 0)) == [b"a", b"b"]
    assert payloads(outbox.due("peer2", 0)) == [b"b"]


def test_an_acknowledgement_behind_a_deferred_one_is_never_resent(outbox):
    relay(outbox, 4)
    first, second, third, fourth = outbox.due("peer0", 0)
    outbox.settle([second.id, fourth.id], [first.id, third.id], 500, "busy")
    assert outbox.due("peer0", 499) == []  # the head waits: nothing overtakes it
    assert outbox.next_at("peer0") == 500
    assert payloads(outbox.due("peer0", 500)) == [b"item0", b"item2"]
    outbox.mark_delivered([first.id, third.id])
    assert outbox.due("peer0", 10**9) == [] and outbox.pending_counts().get("peer0") is None
    relay(outbox, 1, start=4)  # the cursor carries on after the settled ones
    assert payloads(outbox.due("peer0", 0)) == [b"item4"]


def test_failures_back_off_then_dead_letter_for_that_peer_only(outbox):
    relay(outbox, 2)
    now = 0
    for attempt in range(1, 4):
        batch = outbox.due("peer0", now)
        assert payloads(batch) == [b"item0", b"item1"]
        dead = outbox.mark_failed([d.id for d in batch], now, f"down {attempt}")
        if attempt < 3:
            assert dead == [] and outbox.next_at("peer0") == now + BACKOFF.delay(attempt, lambda: 0.999)
            now = outbox.next_at("peer0")
    assert sorted(dead) == sorted(d.id for d in batch)
    letters = outbox.dead("peer0")
    assert [(d.payload, d.reason, d.last_error) for d in letters] == [(b"item0", "max_attempts", "down 3"), (b"item1", "max_attempts", "down 3")]
    assert outbox.due("peer0", now) == [] and outbox.dead("peer1") == []
    assert payloads(outbox.due("peer1", 0)) == [b"item0", b"item1"]


def test_expired_relayed_payloads_are_dead_lettered_not_sent(outbox):
    relay(outbox, 1, expires=100)
    relay(outbox, 1, start=1)
    assert payloads(outbox.due("peer0", 100)) == [b"item1"]
    assert [(d.payload, d.reason) for d in outbox.dead("peer0")] == [(b"item0", "expired")]


def test_a_rejected_relayed_payload_is_dead_and_the_queue_moves_on(outbox):
    relay(outbox, 2)
    head = outbox.due("peer0", 0)[0]
    assert outbox.mark_rejected([head.id], 7, "HTTP 400") == [head.id]
    assert payloads(outbox.due("peer0", 7)) == [b"item1"]
    assert [(d.payload, d.reason, d.last_error) for d in outbox.dead("peer0")] == [(b"item0", "rejected", "HTTP 400")]


def test_a_restart_resumes_every_peer_owed_a_relayed_payload(tmp_path):
    with Store(tmp_path / "node.db") as store:
        outbox = Outbox(store)
        relay(outbox, 2)
        outbox.mark_delivered([d.id for d in outbox.due("peer3", 0)])
    with Store(tmp_path / "node.db") as store:
        outbox = Outbox(store)
        assert outbox.peers() == ["peer0", "peer1", "peer2", "peer4"]
        assert payloads(outbox.due("peer4", 0)) == [b"item0", b"item1"] and outbox.due("peer3", 0) == []


def test_rows_come_first_then_relayed_payloads_in_order(outbox, store):
    relay(outbox, 1)
    with store.transaction():
        outbox.enqueue("peer0", b"direct", kind="gossip", now=0, ref="d" * 64)
    assert payloads(outbox.due("peer0", 0)) == [b"direct", b"item0"]
    rows = store.query("SELECT peer, payload FROM outbox WHERE peer = 'peer0' ORDER BY id")
    assert [r["payload"] for r in rows] == [b"direct", b"item0"]


def test_items_sharing_one_list_of_peers_and_items_with_their_own_each_reach_theirs(outbox, store):
    everyone = PEERS[:3]  # one list object for several items, as a relayed batch passes it
    items = [(b"a", "a" * 64, None, everyone), (b"b", "b" * 64, None, [PEERS[3]]),
             (b"c", "c" * 64, None, everyone), (b"d", "d" * 64, None, [PEERS[0], PEERS[4]])]  # fmt: skip
    with store.transaction():
        assert outbox.relay(items, now=0) == set(PEERS)
    queues = [payloads(outbox.due(p, 0)) for p in PEERS]
    assert queues == [[b"a", b"c", b"d"], [b"a", b"c"], [b"a", b"c"], [b"b"], [b"d"]]


def test_more_peers_than_slots_get_a_row_each_beyond_them(outbox, store):
    peers = [f"p{i:03d}" for i in range(SLOTS + 2)]
    assert relay(outbox, 1, peers) == set(peers)
    assert store.count("relay") == 1 and store.count("outbox_rows") == 2
    for peer in peers:
        assert payloads(outbox.due(peer, 0)) == [b"item0"]
