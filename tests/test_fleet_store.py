"""The fleet's PostgreSQL store against a real throwaway cluster: its migrations, the domain's SQLite
dialect translated, and the envelopes' unique id deciding between two writers."""

from __future__ import annotations

import sqlite3

import pytest

from fleet.pgstore import PgStore, pg_sql
from tests.pgcluster import PgCluster


@pytest.fixture(scope="module")
def pg_url():
    with PgCluster() as pg:
        yield pg.url


def test_migrations_create_the_vendor_tables(pg_url):
    with PgStore(pg_url) as store:
        assert store.schema_version == 4
        names = set(store.table_names())
        assert {"envelopes", "leads", "offers", "outbox", "peers", "grants", "held_data", "receipt_copies",
                "fleet_listeners", "fleet_nonces"} <= names
    with PgStore(pg_url) as again:  # a second listener opening the same database migrates nothing
        assert again.schema_version == 4


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
        env = {"id": "c" * 64, "kind": "intent", "author": "b" * 64, "created_at": 1, "expires_at": 2,
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
