"""The fleet's PostgreSQL store against a real throwaway cluster: its migrations, the domain's SQLite
dialect translated, and the envelopes' unique id deciding between two writers."""

from __future__ import annotations

import sqlite3

import pytest

from fleet.pgschema import PG_MIGRATIONS
from fleet.pgstore import PgStore, pg_sql
from tests.pgcluster import PgCluster


@pytest.fixture(scope="module")
def pg_url():
    with PgCluster() as pg:
        yield pg.url


def test_migrations_create_the_vendor_tables(pg_url):
    with PgStore(pg_url) as store:
        assert store.schema_version == len(PG_MIGRATIONS)
        names = set(store.table_names())
        assert {"envelopes", "leads", "offers", "outbox", "peers", "grants", "held_data", "receipt_copies",
                "fleet_listeners", "fleet_nonces", "agreements"} <= names
        # version 8 (SQLite's 16): a lead's hex and JSON checks are gone, its status and reason checks stay
        checks = store.query("SELECT conname FROM pg_constraint WHERE conrelid = 'leads'::regclass AND contype = 'c'")
        assert {r["conname"] for r in checks} == {"leads_status_check", "leads_closed_reason_check"}
    with PgStore(pg_url) as again:  # a second listener opening the same database migrates nothing
        assert again.schema_version == len(PG_MIGRATIONS)


def test_the_dialect_is_translated():
    assert pg_sql("SELECT a FROM t WHERE b = ? AND c = :c AND d LIKE '5%'") == (
        "SELECT a FROM t WHERE b = %s AND c = %(c)s AND d LIKE '5%%'"
    )


def test_a_duplicate_lead_is_one_row_and_a_duplicate_envelope_an_integrity_error(pg_url):
    with PgStore(pg_url) as store:
        row = {"intent_id": "a" * 64, "author": "b" * 64, "text": "t", "body": "{}", "subscription_ids": "[1]",
               "created_at": 1, "expires_at": 2, "received_at": 1}
        cols, marks = ", ".join(row), ", ".join(f":{c}" for c in row)
        for _ in range(2):
            with store.transaction():
                store.execute(f"INSERT INTO leads ({cols}) VALUES ({marks}) ON CONFLICT (intent_id) DO NOTHING", row)
        assert store.count("leads") == 1
        env = {"id": b"c" * 32, "kind": "intent", "author": b"b" * 32, "created_at": 1, "expires_at": 2,
               "ttl": 3, "raw": b"x", "received_at": 1}
        with store.transaction():
            assert store.insert_many("envelopes", [env]) == [1]
        with pytest.raises(sqlite3.IntegrityError), store.transaction():
            store.insert_many("envelopes", [env])
        assert store.count("envelopes") == 1


def test_a_relayed_batch_is_queued_with_one_statement_on_postgresql_too(pg_url):
    from federation.outbox import Outbox

    with PgStore(pg_url) as store:
        outbox = Outbox(store)
        deliveries = [("p1", b"x", "r1", None), ("p1", b"x", "r1", None), ("p2", b"y", "r1", 99)]
        with store.transaction():
            assert outbox.enqueue_many(deliveries, kind="gossip", now=5) == {"p1", "p2"}
            assert outbox.enqueue_many(deliveries, kind="gossip", now=6) == set()  # all queued already
        assert store.query_one("SELECT count(*) AS n FROM outbox WHERE ref = 'r1'")["n"] == 2


def test_a_batch_insert_is_one_statement_that_keeps_the_domains_duplicate_rules(pg_url):
    """execute_many of a plain INSERT becomes multi-row INSERTs (chunked under PostgreSQL's parameter
    limit): ON CONFLICT DO NOTHING counts only new rows, a duplicate key fails the whole batch."""
    import fleet.pgstore as pgstore

    with PgStore(pg_url) as store:
        lead = "INSERT INTO leads (intent_id, author, text, body, subscription_ids, created_at, expires_at, received_at) " \
               "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (intent_id) DO NOTHING"  # fmt: skip
        rows = [[f"{i:064x}", "b" * 64, "t", "{}", "[1]", 1, 2, 1] for i in range(10_000, 14_001)]
        with store.transaction():
            assert store.execute_many(lead, rows + rows[:3]) == 4001  # 8 values a row: two chunks
        assert 8 * 4004 > pgstore._MAX_PARAMS
        with store.transaction():
            assert store.execute_many(lead, rows[:2] + [[f"{1:064x}", "b" * 64, "t", "{}", "[1]", 1, 2, 1]]) == 1
        before = store.count("envelopes")
        env = "INSERT INTO envelopes (id, kind, author, created_at, expires_at, ttl, raw, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        fresh = [[i.to_bytes(32, "big"), "intent", b"b" * 32, 1, 2, 3, memoryview(b"raw"), 1] for i in range(20_000, 20_003)]
        with store.transaction():
            assert store.execute_many(env, fresh) == 3
        with pytest.raises(sqlite3.IntegrityError), store.transaction():
            store.execute_many(env, [[(30_000).to_bytes(32, "big"), "intent", b"b" * 32, 1, 2, 3, b"x", 1], fresh[0]])
        assert store.count("envelopes") == before + 3  # the failed batch left nothing
        assert bytes(store.query_one("SELECT raw FROM envelopes WHERE id = ?", [fresh[0][0]])["raw"]) == b"raw"


def test_the_blob_id_migration_converts_the_hex_rows_a_fleet_holds(pg_url, monkeypatch):
    """Version 6 (SQLite's 13): a fleet's envelopes written with hex ids and keys are read back by the
    gossip log unchanged, their columns now the 32 bytes; version 7 carries their authors over."""
    import psycopg

    import fleet.pgstore as pgstore
    from node.gossiplog import GossipLog

    base = pg_url.rsplit("/", 1)[0]
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute("CREATE DATABASE blob_ids")
    url = f"{base}/blob_ids"
    monkeypatch.setattr(pgstore, "PG_MIGRATIONS", PG_MIGRATIONS[:5])
    ids = {"id": "ab" * 32, "author": "cd" * 32, "recipient": "ef" * 32, "ref": "12" * 32}
    with PgStore(url) as old, old.transaction():
        old.execute(
            "INSERT INTO envelopes (id, kind, author, created_at, expires_at, recipient, ref, ttl, raw, received_at) "
            "VALUES (:id, 'offer', :author, 1, 2, :recipient, :ref, 3, :raw, 1)", {**ids, "raw": b"raw"},
        )  # fmt: skip
    monkeypatch.undo()
    with PgStore(url) as new:
        assert new.schema_version == len(PG_MIGRATIONS)
        row = new.query_one("SELECT id, author, recipient, ref FROM envelopes")
        assert {k: bytes(v) for k, v in row.items()} == {k: bytes.fromhex(v) for k, v in ids.items()}
        held = GossipLog(new).get(ids["id"])
        assert (held.author, held.recipient, held.ref, held.raw) == (ids["author"], ids["recipient"], ids["ref"], b"raw")
        assert GossipLog(new).known([bytes.fromhex(ids["id"])]) == {bytes.fromhex(ids["id"])}
        # the hex CHECKs are gone (dropped by PostgreSQL's own names for them), not left over bytea
        checks = new.query("SELECT conname FROM pg_constraint WHERE conrelid = 'envelopes'::regclass AND contype = 'c'")
        assert checks == []
        # version 7 (SQLite's 14): the held author is in ``authors``, no longer an index on every envelope
        assert GossipLog(new).authors_held([bytes.fromhex(ids["author"]), bytes(32)]) == {bytes.fromhex(ids["author"])}
        assert new.query("SELECT indexname FROM pg_indexes WHERE indexname = 'envelopes_author'") == []
