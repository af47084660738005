"""The persistent delivery queue over a real SQLite store: FIFO per peer, backoff, dead letters, restart."""

from __future__ import annotations

import itertools

import pytest

from federation.backoff import Backoff
from federation.outbox import Outbox
from node.errors import StoreError, ValidationError
from node.store import MIGRATIONS, Store
from tests.conftest import vendor_engines

BACKOFF = Backoff(base_ms=1_000, cap_ms=8_000, floor_ms=0)


@pytest.fixture
def store(vendor_store):
    """The store a vendor's node uses: SQLite, and PostgreSQL too for tests marked ``@vendor_engines``."""
    return vendor_store


def top(rand_value: float = 0.999):
    """A fixed 'random' source: delays at the top of their range, so the test knows them."""
    return lambda: rand_value


def make(store, **kw) -> Outbox:
    kw.setdefault("backoff", BACKOFF)
    kw.setdefault("rand", top())
    return Outbox(store, **kw)


def fill(outbox: Outbox, peer: str, n: int, *, now: int = 0, kind: str = "intent", start: int = 0) -> list[int]:
    with outbox.store.transaction():
        return [outbox.enqueue(peer, f"p{i}".encode(), kind=kind, now=now) for i in range(start, start + n)]


def payloads(batch) -> list[bytes]:
    return [d.payload for d in batch]


def test_migration_5_adds_the_outbox_to_an_older_home(tmp_path):
    path = tmp_path / "node.db"
    with Store(path, migrations=MIGRATIONS[:4]) as old:
        assert "outbox" not in old.table_names()
    with Store(path) as new:
        assert new.schema_version == len(MIGRATIONS) >= 5
        assert {"outbox", "outbox_dead"} <= set(new.table_names())


@vendor_engines
def test_enqueue_runs_in_the_callers_transaction(store):
    outbox = make(store)
    with pytest.raises(StoreError):
        outbox.enqueue("a", b"x", kind="intent", now=0)
    with pytest.raises(RuntimeError), store.transaction():
        outbox.enqueue("a", b"x", kind="intent", now=0)
        raise RuntimeError("the producer failed: nothing it queued survives")
    assert outbox.pending_counts() == {}
    with pytest.raises(ValidationError), store.transaction():
        outbox.enqueue("a", "not bytes", kind="intent", now=0)  # type: ignore[arg-type]


@vendor_engines
def test_ref_queues_a_payload_once_per_peer(store):
    outbox = make(store)
    with store.transaction():
        first = outbox.enqueue("a", b"x", kind="intent", now=0, ref="e1")
        assert outbox.enqueue("a", b"x", kind="intent", now=0, ref="e1") is None
        assert outbox.enqueue("b", b"x", kind="intent", now=0, ref="e1") not in (None, first)
    assert outbox.pending_counts() == {"a": 1, "b": 1}


@vendor_engines
def test_due_batches_are_fifo_per_peer_and_bounded(store):
    outbox = make(store)
    fill(outbox, "a", 5)
    fill(outbox, "b", 2)
    assert payloads(outbox.due("a", 0, limit=3)) == [b"p0", b"p1", b"p2"]
    assert payloads(outbox.due("a", 0, limit=10, max_bytes=5)) == [b"p0", b"p1"]
    assert payloads(outbox.due("a", 0, limit=10, max_bytes=1)) == [b"p0"]  # always at least one
    assert payloads(outbox.due("b", 0)) == [b"p0", b"p1"]
    assert outbox.due("c", 0) == []
    assert outbox.pending_counts() == {"a": 5, "b": 2} and outbox.peers() == ["a", "b"]


@vendor_engines
def test_a_batch_holds_one_kind(store):
    outbox = make(store)
    fill(outbox, "a", 2, kind="intent")
    fill(outbox, "a", 1, kind="offer", start=2)
    first = outbox.due("a", 0)
    assert [d.kind for d in first] == ["intent", "intent"]
    outbox.mark_delivered([d.id for d in first])
    assert [(d.kind, d.payload) for d in outbox.due("a", 0)] == [("offer", b"p2")]


@vendor_engines
def test_delivered_deliveries_are_deleted(store):
    outbox = make(store)
    fill(outbox, "a", 3)
    batch = outbox.due("a", 0, limit=2)
    outbox.mark_delivered([d.id for d in batch])
    assert payloads(outbox.due("a", 0)) == [b"p2"]
    assert outbox.pending_counts() == {"a": 1}


@vendor_engines
def test_a_failure_retries_after_the_backoff_and_keeps_order(store):
    outbox = make(store)
    fill(outbox, "a", 2)
    batch = outbox.due("a", 100, limit=1)
    assert outbox.mark_failed([d.id for d in batch], 100, "HTTP 503") == []
    retry_at = 100 + BACKOFF.delay(1, top())
    assert outbox.next_at("a") == retry_at
    # The second delivery is due, but it waits behind the head: nothing overtakes a failed delivery.
    assert outbox.due("a", retry_at - 1) == []
    again = outbox.due("a", retry_at)
    assert payloads(again) == [b"p0", b"p1"] and again[0].attempts == 1 and again[0].last_error == "HTTP 503"
    outbox.mark_failed([d.id for d in again], retry_at, "timeout")
    # The delay follows the head's attempt count (2), not the newcomer's (1).
    assert outbox.next_at("a") == retry_at + BACKOFF.delay(2, top())


@vendor_engines
def test_delays_grow_with_attempts_up_to_the_cap(store):
    outbox = make(store, max_attempts=100)
    fill(outbox, "a", 1)
    now, gaps = 0, []
    for _ in range(6):
        batch = outbox.due("a", now)
        outbox.mark_failed([d.id for d in batch], now, "down")
        gaps.append(outbox.next_at("a") - now)
        now = outbox.next_at("a")
    assert gaps == [999, 1_998, 3_996, 7_992, 7_992, 7_992]


@vendor_engines
def test_max_attempts_dead_letters_and_reports(store):
    outbox = make(store, max_attempts=3)
    fill(outbox, "a", 1)
    now, dead = 0, []
    for _ in range(3):
        batch = outbox.due("a", now)
        assert payloads(batch) == [b"p0"]
        dead = outbox.mark_failed([d.id for d in batch], now, f"fail at {now}")
        now = outbox.next_at("a") or now
    assert len(dead) == 1
    assert outbox.pending_counts() == {} and outbox.due("a", now + 10**9) == []
    [letter] = outbox.dead("a")
    assert (letter.id, letter.payload, letter.attempts, letter.reason) == (dead[0], b"p0", 3, "max_attempts")
    assert letter.last_error.startswith("fail at")


@vendor_engines
def test_expired_payloads_are_dead_lettered_not_sent(store):
    outbox = make(store)
    with store.transaction():
        outbox.enqueue("a", b"old", kind="intent", now=0, expires_at=500)
        outbox.enqueue("a", b"new", kind="intent", now=0, expires_at=5_000)
    assert payloads(outbox.due("a", 499)) == [b"old", b"new"]
    assert payloads(outbox.due("a", 500)) == [b"new"]
    assert [(d.payload, d.reason) for d in outbox.dead()] == [(b"old", "expired")]


@vendor_engines
def test_rejected_deliveries_are_dead_lettered_at_once(store):
    outbox = make(store)
    fill(outbox, "a", 2)
    batch = outbox.due("a", 0)
    assert outbox.mark_rejected([d.id for d in batch], 7, "HTTP 413") == [d.id for d in batch]
    assert [(d.reason, d.last_error, d.dead_at) for d in outbox.dead("a")] == [("rejected", "HTTP 413", 7)] * 2


@vendor_engines
def test_a_peer_keeps_only_its_newest_dead_letters(store):
    """A peer that refuses everything cannot make the node keep a copy of all it was sent: its newest
    ``dead_per_peer`` dead letters stay (by when they died), another peer's are untouched."""
    outbox = make(store, dead_per_peer=3)
    fill(outbox, "b", 1)
    outbox.mark_rejected([d.id for d in outbox.due("b", 0)], 1, "HTTP 400")
    fill(outbox, "a", 5)
    for at, delivery in zip((10, 30, 20, 40, 15), outbox.due("a", 0), strict=True):  # not in id order
        outbox.mark_rejected([delivery.id], at, "HTTP 400")
    assert [(d.payload, d.dead_at) for d in outbox.dead("a")] == [(b"p1", 30), (b"p2", 20), (b"p3", 40)]
    assert payloads(outbox.dead("b")) == [b"p0"]
    fill(outbox, "a", 2, start=5)
    outbox.mark_rejected([d.id for d in outbox.due("a", 0)], 50, "HTTP 400")
    assert [(d.payload, d.dead_at) for d in outbox.dead("a")] == [(b"p3", 40), (b"p5", 50), (b"p6", 50)]


def test_relayed_dead_letters_are_bounded_too(store):
    """Relayed gossip (stored once, a cursor per peer) dead-letters a copy per peer: bounded alike."""
    outbox = make(store, dead_per_peer=2)
    with store.transaction():
        outbox.relay([(b"relayed%d" % i, f"{i:064x}", None, ["a"]) for i in range(4)], now=0)
    outbox.mark_rejected([d.id for d in outbox.due("a", 0)], 5, "HTTP 400")
    assert payloads(outbox.dead("a")) == [b"relayed2", b"relayed3"]


@vendor_engines
def test_old_dead_letters_are_swept(store):
    outbox = make(store, dead_kept_ms=100)
    fill(outbox, "a", 3)
    for at, delivery in zip((10, 50, 60), outbox.due("a", 0), strict=True):
        outbox.mark_rejected([delivery.id], at, "HTTP 400")
    assert outbox.prune_dead(149) == 1  # kept 100 ms: at 149 the one that died at 50 is 99 ms old
    assert [d.dead_at for d in outbox.dead()] == [50, 60]
    assert outbox.prune_dead(150) == 1
    assert [d.dead_at for d in outbox.dead()] == [60]


def test_the_queue_survives_a_restart(tmp_path):
    path = tmp_path / "node.db"
    with Store(path) as first:
        outbox = make(first)
        fill(outbox, "a", 3)
        fill(outbox, "b", 1)
        failed = outbox.due("a", 0, limit=1)
        outbox.mark_failed([d.id for d in failed], 0, "down")
    # The process is gone; a new one opens the same file.
    with Store(path) as second:
        outbox = make(second)
        assert outbox.peers() == ["a", "b"] and outbox.pending_counts() == {"a": 3, "b": 1}
        assert outbox.due("a", 0) == []  # the backoff survived too
        later = outbox.next_at("a")
        batch = outbox.due("a", later)
        assert payloads(batch) == [b"p0", b"p1", b"p2"] and batch[0].attempts == 1
        outbox.mark_delivered([d.id for d in batch])
        outbox.mark_delivered([d.id for d in outbox.due("b", 0)])
    with Store(path) as third:
        assert make(third).pending_counts() == {}


@vendor_engines
def test_ids_keep_increasing_so_order_is_stable(store):
    outbox = make(store)
    ids = fill(outbox, "a", 50)
    assert ids == sorted(ids) and len(set(ids)) == 50
    seen = []
    for _ in itertools.count():
        batch = outbox.due("a", 0, limit=7)
        if not batch:
            break
        seen += [d.id for d in batch]
        outbox.mark_delivered([d.id for d in batch])
    assert seen == ids


@vendor_engines
def test_enqueue_many_queues_a_relayed_batch_in_one_statement_and_skips_what_is_queued(store):
    outbox = make(store)
    with store.transaction():
        assert outbox.enqueue("a", b"x", kind="gossip", now=0, ref="r1") is not None
    deliveries = [("a", b"x", "r1", None), ("a", b"y", "r2", 50), ("b", b"x", "r1", None)]
    with store.transaction():
        assert outbox.enqueue_many(deliveries, kind="gossip", now=5) == {"a", "b"}
        assert outbox.enqueue_many(deliveries, kind="gossip", now=6) == set()  # all queued already
    assert payloads(outbox.due("a", 10)) == [b"x", b"y"]
    assert payloads(outbox.due("b", 10)) == [b"x"]
    with pytest.raises(ValidationError), store.transaction():
        outbox.enqueue_many([("", b"z", "r3", None)], kind="gossip", now=7)


def test_a_delivery_id_is_never_given_twice_so_a_second_death_is_recorded_too(store):
    """A dead letter keeps its delivery's id: the queue must not hand out that id again once the row
    left it (a plain rowid did, and the second dead letter then failed on outbox_dead's key)."""
    outbox = make(store)
    for round_ in range(3):
        [queued] = fill(outbox, "a", 1, start=round_)
        assert outbox.mark_rejected([queued], 1, "HTTP 400") == [queued]
    dead = outbox.dead()
    assert [d.payload for d in dead] == [b"p0", b"p1", b"p2"] and len({d.id for d in dead}) == 3
    assert outbox.pending_counts() == {}


def test_a_deferred_relayed_payload_waits_behind_a_due_direct_row(store):
    """A relayed payload the peer deferred (its Retry-After) is not sent early because a direct
    delivery queued later is due: the batch stops at the first row not yet due."""
    outbox = make(store)
    assert outbox.payload_once  # SQLite's relay log: each relayed payload stored once
    with store.transaction():
        outbox.relay([(b"relayed%d" % i, f"{i:064x}", None, ["a"]) for i in range(3)], now=0)
    relayed = outbox.due("a", 0)
    assert payloads(relayed) == [b"relayed0", b"relayed1", b"relayed2"]
    outbox.defer([d.id for d in relayed], next_at=30_000, error="rate_limited")
    with store.transaction():
        outbox.enqueue("a", b"direct", kind="gossip", now=2_000, ref="ab" * 32)
    assert payloads(outbox.due("a", 2_000)) == [b"direct"]
    outbox.mark_delivered([d.id for d in outbox.due("a", 2_000)])
    assert outbox.due("a", 29_999) == []
    assert payloads(outbox.due("a", 30_000)) == [b"relayed0", b"relayed1", b"relayed2"]


@vendor_engines
def test_resend_queues_dead_letters_again_due_now_with_their_attempts_reset(store):
    outbox = make(store, max_attempts=1)
    with store.transaction():
        outbox.enqueue("a", b"one", kind="gossip", now=0, ref="01" * 32, expires_at=9_000)
        outbox.enqueue("a", b"two", kind="gossip", now=0, ref="02" * 32, expires_at=9_000)
    dead = outbox.mark_failed([d.id for d in outbox.due("a", 0)], 0, "connection refused")
    assert len(dead) == 2 and outbox.due("a", 10**9) == []
    with store.transaction():  # "two" was queued again meanwhile (published anew): it is not doubled
        outbox.enqueue("a", b"two", kind="gossip", now=50, ref="02" * 32, expires_at=9_000)
    assert outbox.resend([(dead[0], 8_000), (dead[1], 9_000)], now=100) == 1
    assert outbox.dead() == []
    batch = outbox.due("a", 100)
    assert payloads(batch) == [b"two", b"one"] and [d.attempts for d in batch] == [0, 0]
    assert payloads(outbox.due("a", 8_000)) == [b"two"]  # queued again with the expiry it was given
