"""Listeners racing on one fleet database, at the store level: subscription changes committed out of
order still reach every listener's index, and two deliverers never claim the same delivery; a listener
given a database that does not exist says so at once."""

from __future__ import annotations

import threading

from federation.outbox import Outbox
from fleet.outbox import ClaimingOutbox
from fleet.pgstore import PgStore
from node.subscriptions import LiveIndex, Subscriptions
from tests.test_subscriptions import intent_envelope

T0 = 1_750_000_000_000


def test_a_subscription_committed_after_a_later_one_still_reaches_the_index(pg_url, native):
    with PgStore(pg_url) as slow, PgStore(pg_url) as fast, PgStore(pg_url) as reader:
        live = LiveIndex(reader, backend=native)
        assert len(live()) == 0
        inside, release = threading.Event(), threading.Event()

        def slow_subscribe() -> None:
            with slow.transaction():  # subscribes first, commits last
                Subscriptions(slow, clock=lambda: T0, backend=native).add("?flight")
                inside.set()
                release.wait(10)

        first = threading.Thread(target=slow_subscribe)
        first.start()
        assert inside.wait(10)
        second = threading.Thread(target=lambda: Subscriptions(fast, clock=lambda: T0, backend=native).add("?hotel"))
        second.start()
        second.join(0.5)  # it may wait for the first (the journal keeps commit order) or commit now
        live.invalidate()
        live()  # a listener syncing while the first is still open
        release.set()
        first.join(10)
        second.join(10)
        live.invalidate()
        raws = [intent_envelope("?flight SFO->JFK", native), intent_envelope("?hotel near:u09tv", native)]
        assert [len(ids) for ids in live().match_envelopes(raws)] == [1, 1]


def test_two_deliverers_claim_disjoint_batches(pg_url):
    with PgStore(pg_url) as a, PgStore(pg_url) as b:
        peer = "ab" * 32
        with a.transaction():
            for i in range(50):
                Outbox(a).enqueue(peer, bytes([i]), kind="gossip", now=1, ref=str(i))
        one, two = ClaimingOutbox(a, listener="one", lease_ms=60_000), ClaimingOutbox(b, listener="two", lease_ms=60_000)
        batches: dict[str, list[int]] = {}
        start = threading.Barrier(2)

        def claim(name: str, outbox: ClaimingOutbox) -> None:
            start.wait()
            batches[name] = [d.id for d in outbox.due(peer, 10, limit=30)]

        threads = [threading.Thread(target=claim, args=args) for args in (("one", one), ("two", two))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert not set(batches["one"]) & set(batches["two"])
        assert len(batches["one"]) + len(batches["two"]) == 50  # 30 and the 20 left, in either order
        assert one.due(peer, 11) == [] and two.due(peer, 11) == []  # all claimed, none due again
        # Both leases over (listeners that died holding them): another takes the lot, in order.
        taken = ClaimingOutbox(a, listener="three", lease_ms=60_000).due(peer, 10 + 60_000)
        assert [d.id for d in taken] == sorted(batches["one"] + batches["two"])


def test_a_missing_fleet_database_is_an_error_at_once(pg_url):
    import pytest

    from node.errors import StoreError

    # PostgreSQL's own reason, not the pool's "initialization incomplete" after 30 s of retries.
    with pytest.raises(StoreError, match='database "nowhere" does not exist'):
        PgStore(pg_url.rsplit("/", 1)[0] + "/nowhere")
