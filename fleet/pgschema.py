"""The vendor fleet's PostgreSQL schema as numbered migrations, applied in order by ``PgStore``.

Version 1 is the vendor side of the SQLite schema (node/schema.py migrations 3-7: vault, intents,
outbox, federation, consented access), translated statement by statement so the two can never drift
on columns or constraints; the person's records and their full-text index stay on SQLite. Later
versions are the fleet's own tables. Never edit a shipped migration; append one.

What is read by a seq cursor commits in seq order across the fleet's listeners (version 4: the
subscription journal; version 9: the gossip log peers pull by ``after``): each INSERT takes an
advisory lock held until its transaction ends and draws its seq under it, so a puller that carried
on from the last seq it saw never misses a row committed later with a smaller one.
"""

from __future__ import annotations

import re

from node.schema import AGREEMENTS_V11, DEAD_BY_AGE_V17
from node.schema import MIGRATIONS as SQLITE_MIGRATIONS
from node.schema import SUBSCRIPTION_JOURNAL_KEEP
from node.schema_datapath import _AUTHORS_V14

# SQLite migration versions whose tables a vendor listener uses.
VENDOR_SQLITE_VERSIONS = (3, 4, 5, 6, 7)

# Keys given explicitly by the code (copied ids, chain positions): plain BIGINT, no sequence.
_EXPLICIT_KEYS = {"outbox_dead": "id", "receipts": "seq"}

_HEX_GLOB = re.compile(r"NOT (\w+) GLOB '\*\[\^0-9a-f\]\*'")
_JSON_TYPE = re.compile(r"json_valid\((\w+)\) AND json_type\(\1\) = '(\w+)'")
_JSON_VALID = re.compile(r"json_valid\((\w+)\)")
_JSON_LEN = re.compile(r"json_array_length\((\w+)\)")
_TABLE = re.compile(r"CREATE TABLE (\w+)")


def translate_ddl(statement: str) -> str:
    """One SQLite CREATE statement in PostgreSQL's dialect."""
    s = statement
    table = _TABLE.search(s)
    explicit = _EXPLICIT_KEYS.get(table.group(1)) if table else None
    if explicit:
        s = s.replace(f"{explicit} INTEGER PRIMARY KEY", f"{explicit} BIGINT PRIMARY KEY", 1)
    s = s.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY")
    s = s.replace("INTEGER PRIMARY KEY", "BIGSERIAL PRIMARY KEY")
    s = re.sub(r"\bINTEGER\b", "BIGINT", s)  # times are milliseconds: past 32 bits
    s = s.replace("BLOB", "BYTEA").replace(") WITHOUT ROWID", ")")
    s = _HEX_GLOB.sub(r"\1 !~ '[^0-9a-f]'", s)
    s = s.replace("url GLOB 'http*://*'", "url ~ '^https?://'")
    s = _JSON_TYPE.sub(r"json_typeof(\1::json) = '\2'", s)
    s = _JSON_VALID.sub(r"(\1::json IS NOT NULL)", s)
    s = _JSON_LEN.sub(r"json_array_length(\1::json)", s)
    return s


def _vendor_tables() -> tuple[str, ...]:
    statements: list[str] = []
    for version, _name, step in SQLITE_MIGRATIONS:
        if version in VENDOR_SQLITE_VERSIONS:
            assert not callable(step), "a vendor-side SQLite migration must be plain statements"
            statements += [translate_ddl(s) for s in step]
    return tuple(statements)


# The fleet itself: who the vendor is (its key file, imported once by `vrm fleet init`), which
# listeners are alive (heartbeats), the shared replay memory (one row per signed request's nonce),
# deliveries claimed by a listener until a lease expires, and a NOTIFY on every subscription change so
# each listener rebuilds its matcher.
_FLEET = (
    """CREATE TABLE fleet_identity (
        one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
        public_key TEXT NOT NULL,
        node_id TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role = 'vendor'),
        name TEXT NOT NULL DEFAULT '',
        handle TEXT NOT NULL DEFAULT '',
        key_file BYTEA NOT NULL,
        created_at BIGINT NOT NULL
    )""",
    """CREATE TABLE fleet_listeners (
        id TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        pid BIGINT NOT NULL,
        url TEXT,
        started_at BIGINT NOT NULL,
        beat_at BIGINT NOT NULL,
        ingested BIGINT NOT NULL DEFAULT 0,
        stopped_at BIGINT
    )""",
    """CREATE TABLE fleet_nonces (
        key TEXT NOT NULL,
        nonce TEXT NOT NULL,
        created BIGINT NOT NULL,
        PRIMARY KEY (key, nonce)
    )""",
    "CREATE INDEX fleet_nonces_created ON fleet_nonces(created)",
    "ALTER TABLE outbox ADD COLUMN claimed_by TEXT",
    "ALTER TABLE outbox ADD COLUMN claim_until BIGINT NOT NULL DEFAULT 0",
    """CREATE FUNCTION fleet_subscriptions_changed() RETURNS trigger AS $$
        BEGIN PERFORM pg_notify('vrm_subscriptions', ''); RETURN NULL; END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER subscriptions_notify AFTER INSERT OR UPDATE OR DELETE ON subscriptions
        FOR EACH STATEMENT EXECUTE FUNCTION fleet_subscriptions_changed()""",
)


def _journal_trigger(event: str, ids: str) -> tuple[str, str]:
    """SQLite migration 8's journal trigger (node/schema_federation.py) as a PL/pgSQL function and row trigger."""
    name = f"subscriptions_journal_{event.split()[0].lower()}"
    inserts = "; ".join(f"INSERT INTO subscription_changes (subscription_id) VALUES ({i})" for i in ids.split())
    return (
        f"""CREATE FUNCTION {name}() RETURNS trigger AS $$ BEGIN {inserts};
        DELETE FROM subscription_changes WHERE seq <= (SELECT max(seq) FROM subscription_changes) - {SUBSCRIPTION_JOURNAL_KEEP};
        RETURN NULL; END $$ LANGUAGE plpgsql""",
        f"CREATE TRIGGER {name} AFTER {event} ON subscriptions FOR EACH ROW EXECUTE FUNCTION {name}()",
    )


def _sqlite_steps(*versions: int) -> tuple[str, ...]:
    statements: list[str] = []
    for version, _name, step in SQLITE_MIGRATIONS:
        if version in versions:
            statements += [translate_ddl(s).replace(" REAL ", " DOUBLE PRECISION ") for s in step]
    return tuple(statements)


# SQLite migrations 8-10, which the vendor side needs too (found when `vrm subscribe` ran on a fleet):
# 8 is code on SQLite (it backfills the hash in Python), written out here; a version-2 fleet database
# has no subscriptions to backfill, since adding one needed the column. 9 and 10 translate as they are.
_VENDOR_8_TO_10 = (
    "ALTER TABLE subscriptions ADD COLUMN spec_hash BIGINT",
    "CREATE INDEX subscriptions_spec_hash ON subscriptions(spec_hash)",
    "CREATE TABLE subscription_changes (seq BIGSERIAL PRIMARY KEY, subscription_id BIGINT NOT NULL)",
    *_journal_trigger("INSERT", "new.id"),
    *_journal_trigger("DELETE", "old.id"),
    *_journal_trigger("UPDATE OF id, spec", "old.id new.id"),
    *_sqlite_steps(9, 10),
)


def _ordered_journal(event: str, ids: str) -> str:
    """Migration 3's journal function, taking the journal's lock first. A sequence value is drawn
    when a row is written, not when it commits: two listeners subscribing at once could commit 2
    before 1, and a listener that synced 2 in between would never look at 1 again. Held until the
    transaction ends, the lock makes the fleet's subscription changes commit in ``seq`` order. Under
    it the next ``seq`` is also what SQLite's AUTOINCREMENT gives, one past the largest ever used
    (the sequence alone would fall behind a row written with an explicit ``seq``)."""
    name = f"subscriptions_journal_{event.split()[0].lower()}"
    next_seq = "greatest((SELECT coalesce(max(seq), 0) + 1 FROM subscription_changes), nextval('subscription_changes_seq_seq'))"
    inserts = "; ".join(
        f"INSERT INTO subscription_changes (seq, subscription_id) VALUES ({next_seq}, {i})" for i in ids.split()
    )
    return (
        f"""CREATE OR REPLACE FUNCTION {name}() RETURNS trigger AS $$ BEGIN
        PERFORM pg_advisory_xact_lock({JOURNAL_LOCK}); {inserts};
        DELETE FROM subscription_changes WHERE seq <= (SELECT max(seq) FROM subscription_changes) - {SUBSCRIPTION_JOURNAL_KEEP};
        RETURN NULL; END $$ LANGUAGE plpgsql"""
    )


JOURNAL_LOCK = 4712  # beside the migrator's 4711 (fleet/pgstore.py)
_JOURNAL_IN_COMMIT_ORDER = (
    _ordered_journal("INSERT", "new.id"),
    _ordered_journal("DELETE", "old.id"),
    _ordered_journal("UPDATE OF id, spec", "old.id new.id"),
)

# SQLite migration 13 (node/schema_datapath.py): the envelopes' ids and keys as their bytes. Version 1
# translated migration 6's hex CHECKs; the native pass checked every row, so they go (as on SQLite in 12).
_BLOB_IDS = (
    *(f"ALTER TABLE envelopes DROP CONSTRAINT IF EXISTS envelopes_{c}_check" for c in ("id", "author", "recipient", "ref", "ttl")),
    "ALTER TABLE envelopes " + ", ".join(f"ALTER COLUMN {c} TYPE BYTEA USING decode({c}, 'hex')" for c in ("id", "author", "recipient", "ref")),
)

# The gossip log in commit order across listeners, as version 4 did for the subscription journal. A
# peer pulls ``envelopes`` by seq cursor (``GET /v1/gossip?after=``, ``/v1/inbox``; GossipLog.since)
# and carries on from the last seq it saw; a seq is drawn when a row is written, not when it commits:
# a listener could write seq 10, another write 11 and commit first, a puller read 11, and 10 commit
# after it, behind that puller's cursor for good. Every INSERT into ``envelopes`` first takes
# ENVELOPES_LOCK, held until its transaction ends: the fleet's envelopes commit one transaction after
# another, in seq order. The seq is the column's default, drawn for each row as the statement runs,
# after this BEFORE STATEMENT trigger (so under the lock): one lock and one index probe a statement
# (a batch of a thousand envelopes is one), nothing a row. Under the lock the sequence is also moved
# past the largest seq held, so the next seq is one past the largest ever used, as SQLite's
# AUTOINCREMENT gives (the sequence alone would fall behind a row written with an explicit seq).
# Holding it until commit serialises the fleet's envelope commits, which is acceptable: a listener's
# first envelope insert comes after its batch was decoded, verified, deduplicated and judged, so
# insert-to-commit is only the tail of its ingest transaction (the batch's rows, its authors, leads
# and outbox rows, and the commit); the native pass (decoding, signatures and, with a current index,
# matching) runs before its transaction, in parallel across listeners.
ENVELOPES_LOCK = 4713
_ENVELOPES_IN_COMMIT_ORDER = (
    f"""CREATE FUNCTION envelopes_in_seq_order() RETURNS trigger AS $$
        DECLARE held BIGINT;
        BEGIN
        PERFORM pg_advisory_xact_lock({ENVELOPES_LOCK});
        SELECT max(seq) INTO held FROM envelopes;
        IF held >= (SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END FROM envelopes_seq_seq) THEN
            PERFORM setval('envelopes_seq_seq', held);
        END IF;
        RETURN NULL; END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER envelopes_in_seq_order BEFORE INSERT ON envelopes
        FOR EACH STATEMENT EXECUTE FUNCTION envelopes_in_seq_order()""",
)

PG_MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (1, "vendor side: vault, intents, outbox, federation, consented access", _vendor_tables()),
    (2, "fleet: identity, listeners, shared nonces, delivery claims, subscription notify", _FLEET),
    (3, "vendor side of SQLite 8-10: subscription hash and journal, peer claims and scores, refusals", _VENDOR_8_TO_10),
    (4, "the subscription journal in commit order across listeners", _JOURNAL_IN_COMMIT_ORDER),
    # SQLite migration 11, translated: offer terms, withdrawal reasons, superseded offers, agreements.
    (5, "agreements: offer terms, withdrawal reasons, superseded offers, agreements",
     tuple(translate_ddl(s) for s in AGREEMENTS_V11)),
    (6, "the gossip log's ids and keys as 32-byte BYTEA, without per-row checks", _BLOB_IDS),
    # SQLite migration 14, translated: whose envelopes are held, a row per author, not an index.
    (7, "the authors held in a table of their own, not an index on every envelope",
     tuple(translate_ddl(s) for s in _AUTHORS_V14)),
    # SQLite migration 16: leads without the hex and JSON checks version 1 translated (each row is the
    # native pass's or a verified intent's); the status and reason checks stay.
    (8, "leads without per-row checks",
     tuple(f"ALTER TABLE leads DROP CONSTRAINT IF EXISTS leads_{c}_check"
           for c in ("intent_id", "author", "body", "subscription_ids"))),
    (9, "the gossip log in commit order across listeners", _ENVELOPES_IN_COMMIT_ORDER),
    # SQLite migration 17, translated: dead letters found by peer and age, to bound them.
    (10, "dead letters bounded: kept newest first per peer, swept by age",
     tuple(translate_ddl(s) for s in DEAD_BY_AGE_V17)),
)
