"""The live subscription index and the subscriptions table at scale: a subscribe or unsubscribe changes
the one index in place (never a rebuild), whoever wrote the change; the duplicate check finds a spec by
its indexed hash; an older store gains both on upgrade."""

from __future__ import annotations

import pytest

from node.errors import ConflictError
from node.store import MIGRATIONS, Store, spec_hash
from node.subscriptions import LiveIndex, Subscriptions
from tests.conftest import vendor_engines
from tests.test_subscriptions import EXAMPLE, T0, intent_envelope

TEXTS = ["?flight", EXAMPLE, "?flight #work", "?flight from:SFO before<2026-12-20", "?hotel near:u09"]
INTENTS = [
    "?flight SFO->JFK near:dr5ru max:400USD",
    "?flight SFO->JFK near:dr5ru max:400USD #work before:2026-12-01",
    "?hotel near:u09tv",
]


@pytest.fixture
def store(vendor_store):
    """The store a vendor's node uses: SQLite, and PostgreSQL too for tests marked ``@vendor_engines``."""
    return vendor_store


@pytest.fixture
def raws(backend):
    return [intent_envelope(t, backend) for t in INTENTS]


def fresh(store, backend, raws):
    """What an index built from scratch from the stored subscriptions gives."""
    return Subscriptions(store, backend=backend).index().match_envelopes(raws)


@vendor_engines
def test_subscribe_and_unsubscribe_change_the_live_index_in_place(store, backend, raws):
    live = LiveIndex(store, backend=backend)
    subs = Subscriptions(store, clock=lambda: T0, backend=backend, live=live)
    index = live()
    assert len(index) == 0
    ids = [subs.add(t).id for t in TEXTS]
    assert live() is index and len(index) == len(TEXTS)
    assert index.match_envelopes(raws) == fresh(store, backend, raws) == [ids[:2], ids[:4], [ids[4]]]
    subs.remove(ids[1])
    subs.remove(ids[4])
    assert live() is index and len(index) == 3
    assert index.match_envelopes(raws) == fresh(store, backend, raws) == [[ids[0]], [ids[0], ids[2], ids[3]], []]
    with pytest.raises(ConflictError):
        subs.add(TEXTS[0])
    assert len(index) == 3


@vendor_engines
def test_changes_by_others_are_applied_at_the_next_sync(store, backend, raws):
    """The daemon's ops write through their own Subscriptions and announce the change (invalidate)."""
    subs = Subscriptions(store, clock=lambda: T0, backend=backend)
    first = subs.add(TEXTS[0]).id
    live = LiveIndex(store, backend=backend)
    index = live()
    assert index.match_envelopes(raws) == [[first], [first], []]
    second = subs.add(TEXTS[2]).id
    subs.remove(first)
    live.invalidate()
    assert live() is index
    assert index.match_envelopes(raws) == fresh(store, backend, raws) == [[], [second], []]
    # A change inside a caller's transaction that rolls back leaves no trace in the index.
    live_subs = Subscriptions(store, clock=lambda: T0, backend=backend, live=live)
    with pytest.raises(RuntimeError), store.transaction():
        live_subs.add(TEXTS[4])
        raise RuntimeError("the caller fails after the subscribe")
    assert live().match_envelopes(raws) == fresh(store, backend, raws) == [[], [second], []]
    third = live_subs.add(TEXTS[4]).id
    assert live().match_envelopes(raws) == [[], [second], [third]]


@vendor_engines
def test_a_reader_behind_the_pruned_journal_rebuilds(store, backend, raws):
    live = LiveIndex(store, backend=backend)
    subs = Subscriptions(store, clock=lambda: T0, backend=backend)
    ids = [subs.add(t).id for t in TEXTS[:3]]
    live()
    subs.remove(ids[0])
    subs.add(TEXTS[3])
    with store.transaction():  # as if more than SUBSCRIPTION_JOURNAL_KEEP changes had gone by
        store.execute("DELETE FROM subscription_changes WHERE seq <= (SELECT max(seq) - 1 FROM subscription_changes)")
    assert live.sync() == 3  # rebuilt: every stored subscription read again
    assert live().match_envelopes(raws) == fresh(store, backend, raws)


@vendor_engines
def test_the_journal_keeps_a_bounded_tail(store):
    from node.store import SUBSCRIPTION_JOURNAL_KEEP

    subs = Subscriptions(store, clock=lambda: T0)
    first = subs.add("?flight").id
    with store.transaction():
        store.execute(
            "INSERT INTO subscription_changes (seq, subscription_id) VALUES (?, ?)",
            [SUBSCRIPTION_JOURNAL_KEEP + 5, first],
        )
    subs.add("?hotel")
    seqs = [r["seq"] for r in store.query("SELECT seq FROM subscription_changes ORDER BY seq")]
    assert seqs == [SUBSCRIPTION_JOURNAL_KEEP + 5, SUBSCRIPTION_JOURNAL_KEEP + 6]


def test_duplicate_check_uses_the_spec_hash_index(store):  # SQLite's plan; PostgreSQL's planner weighs costs
    subs = Subscriptions(store, clock=lambda: T0)
    sub = subs.add(EXAMPLE)
    row = store.query_one("SELECT spec, spec_hash FROM subscriptions WHERE id = ?", [sub.id])
    assert row["spec_hash"] == spec_hash(row["spec"])
    plan = store.query(
        "EXPLAIN QUERY PLAN SELECT id FROM subscriptions WHERE spec_hash = ? AND spec = ?", [1, "x"]
    )
    assert any("subscriptions_spec_hash" in p["detail"] for p in plan)


def test_an_older_store_gains_hashes_and_the_journal(tmp_path, backend, raws):
    path = tmp_path / "old.db"
    spec = '{"comparisons":[],"constraints":{},"handles":[],"tags":[],"tokens":["flight"]}'
    with Store(path, migrations=MIGRATIONS[:7]) as old, old.transaction():
        old.insert("subscriptions", {"text": "?flight", "spec": spec, "created_at": T0})
    with Store(path) as store:
        assert store.schema_version == len(MIGRATIONS)
        with pytest.raises(ConflictError):
            Subscriptions(store, clock=lambda: T0).add("?FLIGHT")
        live = LiveIndex(store, backend=backend)
        assert live().match_envelopes(raws) == [[1], [1], []]
        Subscriptions(store, clock=lambda: T0, backend=backend, live=live).add("?hotel")
        assert live().match_envelopes(raws) == [[1], [1], [2]]
