"""Listeners of one fleet database committing envelopes at once: a puller paging ``GET /v1/gossip``
by seq cursor (``Pages.page`` over ``GossipLog.since``) still sees every envelope. A seq is drawn when
a row is written, not when it commits; unless envelopes commit in seq order, a page read between a
later seq's commit and an earlier one's moves the cursor past the earlier one for good."""

from __future__ import annotations

import threading

from federation.pages import Pages
from fleet.pgstore import PgStore
from node.gossiplog import GossipLog

T0 = 1_750_000_000_000
HOUR = 3_600_000


def _intent(n: int) -> tuple:
    """A row in ``INTENT_COLUMNS`` order, as the ingest pipeline passes ``add_intents``."""
    return (n.to_bytes(32, "big"), "intent", bytes([n]) * 32, T0, T0 + HOUR, 3, b"raw-%d" % n, T0, None)


def _seen(page) -> list[bytes]:
    return [item.envelope for item in page.items]


def test_an_envelope_committed_after_a_later_seq_is_still_pulled(pg_url):
    with PgStore(pg_url) as slow, PgStore(pg_url) as fast, PgStore(pg_url) as reader:
        pages = Pages(reader, GossipLog(reader, clock=lambda: T0))
        inside, release = threading.Event(), threading.Event()
        errors: list[BaseException] = []

        def guarded(fn):
            def run() -> None:
                try:
                    fn()
                except BaseException as exc:  # noqa: BLE001 - reported by the test below
                    errors.append(exc)

            return run

        @guarded
        def slow_ingest() -> None:
            with slow.transaction():  # writes first (the smaller seq), commits last
                GossipLog(slow, clock=lambda: T0).add_intents([_intent(1)])
                inside.set()
                release.wait(10)

        @guarded
        def fast_ingest() -> None:
            with fast.transaction():
                GossipLog(fast, clock=lambda: T0).add_intents([_intent(2)])

        first = threading.Thread(target=slow_ingest)
        first.start()
        assert inside.wait(10)
        second = threading.Thread(target=fast_ingest)
        second.start()
        second.join(1.0)  # it may wait for the first (envelopes commit in seq order) or commit now

        seen: list[bytes] = []
        page = pages.page(0, 100)  # a puller while the first is still open
        seen += _seen(page)
        cursor = page.next

        release.set()
        first.join(10)
        second.join(10)
        assert not first.is_alive() and not second.is_alive() and errors == []

        while True:  # the puller carries on from its cursor until nothing is new
            page = pages.page(cursor, 100)
            seen += _seen(page)
            if page.next == cursor:
                break
            cursor = page.next
        assert sorted(seen) == [b"raw-1", b"raw-2"], f"the puller saw {seen} (cursor {cursor})"
        # Committed in seq order: the seqs follow the commits, the one committed first the smaller.
        rows = reader.query("SELECT seq, raw FROM envelopes ORDER BY seq")
        assert [bytes(r["raw"]) for r in rows] == [b"raw-1", b"raw-2"]


def test_a_row_with_an_explicit_seq_never_collides_with_the_next_one(pg_url):
    """Under the lock the next seq is one past the largest held, as SQLite's AUTOINCREMENT gives,
    even when a row was written with its seq given (the sequence alone would fall behind it)."""
    with PgStore(pg_url) as store:
        log = GossipLog(store, clock=lambda: T0)
        with store.transaction():
            log.add_intents([_intent(1)])
            store.execute(
                "INSERT INTO envelopes (seq, id, kind, author, created_at, expires_at, ttl, raw, received_at) "
                "VALUES (50, ?, 'intent', ?, ?, ?, 3, ?, ?)",
                [(7).to_bytes(32, "big"), bytes(32), T0, T0 + HOUR, b"raw-7", T0],
            )
        with store.transaction():
            log.add_intents([_intent(2), _intent(3)])
        seqs = [r["seq"] for r in store.query("SELECT seq FROM envelopes ORDER BY seq")]
        assert seqs[:2] == [1, 50] and len(seqs) == 4 and seqs[2] > 50 and seqs[3] > seqs[2]
        # ``insert_many`` (GossipLog.add_many) returns the seqs the rows were given
        with store.transaction():
            got = store.insert_many("envelopes", [
                {"id": (8).to_bytes(32, "big"), "kind": "intent", "author": bytes(32), "created_at": T0,
                 "expires_at": T0 + HOUR, "ttl": 3, "raw": b"raw-8", "received_at": T0},
            ])  # fmt: skip
        assert got == [store.query_one("SELECT max(seq) AS m FROM envelopes")["m"]] and got[0] > seqs[3]


def test_a_waiting_insert_draws_its_seq_only_under_the_lock(pg_url):
    """Two listeners waiting behind a third must not hold seqs drawn before the lock: whichever got
    the lock first would then commit in an order its seq does not say."""
    with PgStore(pg_url) as holder, PgStore(pg_url) as waiter, PgStore(pg_url) as reader:
        inside, release, done = threading.Event(), threading.Event(), threading.Event()

        def hold() -> None:
            with holder.transaction():
                GossipLog(holder, clock=lambda: T0).add_intents([_intent(1)])
                inside.set()
                release.wait(10)

        def wait() -> None:
            with waiter.transaction():
                GossipLog(waiter, clock=lambda: T0).add_intents([_intent(2), _intent(3)])
            done.set()

        first = threading.Thread(target=hold)
        first.start()
        assert inside.wait(10)
        second = threading.Thread(target=wait)
        second.start()
        assert not done.wait(1.0)  # behind the holder's lock
        drawn = reader.query_one("SELECT last_value FROM envelopes_seq_seq")["last_value"]
        release.set()
        first.join(10)
        second.join(10)
        assert done.is_set() and drawn == 1  # the waiter had drawn nothing yet
        assert [r["seq"] for r in reader.query("SELECT seq FROM envelopes ORDER BY seq")] == [1, 2, 3]


def test_a_fleet_database_with_envelopes_takes_the_migration(pg_url, monkeypatch):
    """Version 9 on a database already holding envelopes: the seqs carry on after the largest."""
    import psycopg

    import fleet.pgstore as pgstore
    from fleet.pgschema import PG_MIGRATIONS

    base = pg_url.rsplit("/", 1)[0]
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS seq_order_upgrade")
        conn.execute("CREATE DATABASE seq_order_upgrade")
    url = f"{base}/seq_order_upgrade"
    try:
        monkeypatch.setattr(pgstore, "PG_MIGRATIONS", PG_MIGRATIONS[:8])
        with PgStore(url) as old, old.transaction():
            GossipLog(old, clock=lambda: T0).add_intents([_intent(1), _intent(2)])
        monkeypatch.undo()
        with PgStore(url) as new:
            assert new.schema_version == len(PG_MIGRATIONS) >= 9
            with new.transaction():
                GossipLog(new, clock=lambda: T0).add_intents([_intent(3)])
            assert [r["seq"] for r in new.query("SELECT seq FROM envelopes ORDER BY seq")] == [1, 2, 3]
    finally:
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS seq_order_upgrade WITH (FORCE)")
