"""The vendor fleet's PostgreSQL schema as numbered migrations, applied in order by ``PgStore``.

Version 1 is the vendor side of the SQLite schema (node/schema.py migrations 3-7: vault, intents,
outbox, federation, consented access), translated statement by statement so the two can never drift
on columns or constraints; the person's records and their full-text index stay on SQLite. Later
versions are the fleet's own tables. Never edit a shipped migration; append one.
"""

from __future__ import annotations

import re

from node.schema import AGREEMENTS_V11
from node.schema import MIGRATIONS as SQLITE_MIGRATIONS

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

PG_MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (1, "vendor side: vault, intents, outbox, federation, consented access", _vendor_tables()),
    (2, "fleet: identity, listeners, shared nonces, delivery claims, subscription notify", _FLEET),
    # SQLite migration 11, translated: offer terms, withdrawal reasons, superseded offers, agreements.
    (3, "agreements: offer terms, withdrawal reasons, superseded offers, agreements",
     tuple(translate_ddl(s) for s in AGREEMENTS_V11)),
)
