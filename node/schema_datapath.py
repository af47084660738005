"""Migrations 12 to 16 (issue 9, the data path), kept apart from node/schema.py for their size.

Never edit it once shipped; node/schema.py lists it in MIGRATIONS.
"""

from __future__ import annotations

import sqlite_utils

# -- the data path (issue 9) --------------------------------------------------------------------------
# Relayed gossip stored once (federation/relaylog.py): ``relay`` holds each payload with the bitmask
# of the peers (``relay_peers.slot``) it is for; each peer's cursor ``after`` says what it settled;
# ``relay_settled`` what it settled beyond its cursor. The per-delivery table becomes ``outbox_rows``
# and ``outbox`` a view of both, one row per (peer, payload), as before.
# ``envelopes`` again without its per-row CHECKs: every row comes from the ingest pipeline, whose native
# pass decoded the envelope (ids and keys are its hex), so the GLOB checks only repeated that work on
# the hottest insert (half its cost). Same columns, indexes and seq history (AUTOINCREMENT carries on
# from the last seq ever given: a peer's pull cursor never sees a seq twice).
_ENVELOPE_COLUMNS = "seq, id, kind, author, created_at, expires_at, recipient, ref, ttl, raw, received_at, from_peer"
_ENVELOPE_INDEXES = (
    "CREATE INDEX envelopes_expires ON envelopes(expires_at)",
    "CREATE INDEX envelopes_recipient ON envelopes(recipient, seq) WHERE recipient IS NOT NULL",
    "CREATE INDEX envelopes_ref ON envelopes(ref) WHERE ref IS NOT NULL",
    "CREATE INDEX envelopes_kind_created ON envelopes(kind, created_at)",
    "CREATE INDEX envelopes_author ON envelopes(author)",  # until migration 14 (authors)
)


# A relayed delivery's id is 2**60 + seq * 64 + slot (federation/relaylog.py: RELAY_BASE).
_OUTBOX_VIEW_V11 = (
    "CREATE VIEW outbox AS "
    "SELECT id, peer, kind, ref, payload, created_at, expires_at, attempts, next_at, last_error FROM outbox_rows "
    "UNION ALL SELECT 1152921504606846976 + r.seq * 64 + p.slot, p.peer, 'gossip', r.ref, r.payload, "
    "r.created_at, r.expires_at, p.attempts, p.next_at, p.last_error "
    "FROM relay_peers p JOIN relay r ON r.seq > p.after AND (r.targets >> p.slot) & 1 "
    "WHERE NOT EXISTS (SELECT 1 FROM relay_settled s WHERE s.slot = p.slot AND s.seq = r.seq)"
)


def _keep_envelope_seq(db: sqlite_utils.Database, last: tuple[int] | None) -> None:
    """After a rebuild of ``envelopes``: its AUTOINCREMENT carries on from ``last``, the highest seq
    ever given before (the copy set it to the highest held; pruned ones were higher)."""
    if last is not None:
        db.execute("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'envelopes'", [last[0]])
        if not db.execute("SELECT 1 FROM sqlite_sequence WHERE name = 'envelopes'").fetchone():
            db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('envelopes', ?)", [last[0]])


def _data_path_v12(db: sqlite_utils.Database) -> None:
    last = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'envelopes'").fetchone()
    db.execute(
        """CREATE TABLE envelopes_v11 (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            author TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            recipient TEXT,
            ref TEXT,
            ttl INTEGER NOT NULL,
            raw BLOB NOT NULL,
            received_at INTEGER NOT NULL,
            from_peer TEXT
        )"""
    )
    db.execute(f"INSERT INTO envelopes_v11 ({_ENVELOPE_COLUMNS}) SELECT {_ENVELOPE_COLUMNS} FROM envelopes")
    db.execute("DROP TABLE envelopes")
    db.execute("ALTER TABLE envelopes_v11 RENAME TO envelopes")
    for statement in _ENVELOPE_INDEXES:
        db.execute(statement)
    # The per-delivery rows again, now with AUTOINCREMENT: a dead letter keeps its delivery's id in
    # ``outbox_dead``, so an id must never be given twice (a plain rowid reuses the highest after a
    # delete, and the second death of that id broke the dead letter's insert).
    from node.schema import _OUTBOX_V5  # node.schema imports this module: read it when migrating

    # Migration 5's table as shipped, its id now AUTOINCREMENT (derived: shipped text never changes).
    rows = _OUTBOX_V5[0].replace("CREATE TABLE outbox (", "CREATE TABLE outbox_rows (", 1)
    rows = rows.replace("id INTEGER PRIMARY KEY,", "id INTEGER PRIMARY KEY AUTOINCREMENT,", 1)
    assert "outbox_rows" in rows and "AUTOINCREMENT" in rows, "migration 5's outbox text changed"
    db.execute(rows)
    db.execute("INSERT INTO outbox_rows SELECT * FROM outbox")
    given = db.execute(
        "SELECT max(coalesce((SELECT max(id) FROM outbox), 0), coalesce((SELECT max(id) FROM outbox_dead "
        "WHERE id < 1152921504606846976), 0))"
    ).fetchone()[0]
    db.execute("DROP TABLE outbox")
    db.execute("CREATE INDEX outbox_peer ON outbox_rows(peer, id)")
    db.execute("CREATE INDEX outbox_expires ON outbox_rows(expires_at) WHERE expires_at IS NOT NULL")
    if given:
        db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('outbox_rows', ?)", [given])
    db.execute(
        """CREATE TABLE relay (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            ref TEXT NOT NULL,
            payload BLOB NOT NULL,
            created_at INTEGER NOT NULL,
            expires_at INTEGER,
            targets INTEGER NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE relay_peers (
            peer TEXT PRIMARY KEY,
            slot INTEGER NOT NULL UNIQUE,
            after INTEGER NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_at INTEGER NOT NULL DEFAULT 0,
            last_error TEXT
        ) WITHOUT ROWID"""
    )
    db.execute("CREATE TABLE relay_settled (slot INTEGER NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (slot, seq)) WITHOUT ROWID")
    db.execute(_OUTBOX_VIEW_V11)
    _keep_envelope_seq(db, last)


# -- BLOB ids (issue 9, lean storage) -----------------------------------------------------------------
# ``id``, ``author``, ``recipient`` and ``ref`` as their 32 bytes instead of 64 hex characters: the
# unique id index and the author index take random keys, so every new envelope dirties a leaf page of
# each, and half-size keys mean half the leaves (in process, 200k rows: 18 instead of 25 µs per row
# stored, commit included). The domain still speaks hex: node.gossiplog converts at its edge.
_BLOB_IDS = ("id", "author", "recipient", "ref")


def _blob_ids_v13(db: sqlite_utils.Database) -> None:
    last = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'envelopes'").fetchone()
    # SQLite 3.40 has no unhex(); rows were checked hex when written (CHECKs, then the native pass).
    db.conn.create_function("vrm_unhex", 1, lambda h: None if h is None else bytes.fromhex(h), deterministic=True)
    db.execute(
        """CREATE TABLE envelopes_v13 (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id BLOB NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            author BLOB NOT NULL,
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            recipient BLOB,
            ref BLOB,
            ttl INTEGER NOT NULL,
            raw BLOB NOT NULL,
            received_at INTEGER NOT NULL,
            from_peer TEXT
        )"""
    )
    select = ", ".join(f"vrm_unhex({c})" if c in _BLOB_IDS else c for c in _ENVELOPE_COLUMNS.split(", "))
    db.execute(f"INSERT INTO envelopes_v13 ({_ENVELOPE_COLUMNS}) SELECT {select} FROM envelopes")
    db.execute("DROP TABLE envelopes")
    db.execute("ALTER TABLE envelopes_v13 RENAME TO envelopes")
    for statement in _ENVELOPE_INDEXES:
        db.execute(statement)
    _keep_envelope_seq(db, last)


# Migration 14: whose envelopes are held, in a table of its own. ``envelopes_author`` put every insert
# into a B-tree of one entry per envelope, at one place per author (64 dirty pages per committed
# batch of 64 authors, a quarter of the insert's cost); admission only asks whether an author has one.
# ``authors`` holds one row per author with the latest expiry of theirs rounded up to the hour
# (GossipLog keeps it; prune drops the rows whose time is up): a batch from known authors writes at
# most one update per author and hour, and an author is never forgotten while an envelope is held.
_AUTHORS_V14 = (
    "CREATE TABLE authors (author BLOB PRIMARY KEY, held_until INTEGER NOT NULL) WITHOUT ROWID",
    "INSERT INTO authors (author, held_until) SELECT author, max(expires_at) FROM envelopes GROUP BY author",
    "DROP INDEX envelopes_author",
)


# Migration 15: ids found by their first 8 bytes. The UNIQUE index on the 32-byte id took each new
# envelope at a random place among ~100 entries per page, so a committed batch of 1,000 dirtied nearly
# every leaf of it (at 30k rows ~300 pages, each written to the WAL and fsynced). An index of the
# 8-byte prefix holds ~250 per page: 2.4 times fewer leaves to dirty. It is not UNIQUE (prefixes may
# collide): the single writer dedupes before inserting (``GossipLog.known`` in the pipeline's
# transaction, ``add_many`` checks), and every lookup names the prefix AND the whole id
# (``node.gossiplog.id_in``). Same columns, other indexes and seq history.
ID_PREFIX_INDEX = "CREATE INDEX envelopes_id ON envelopes(substr(id, 1, 8))"


def _id_prefix_v15(db: sqlite_utils.Database) -> None:
    last = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'envelopes'").fetchone()
    db.execute(
        """CREATE TABLE envelopes_v15 (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id BLOB NOT NULL,
            kind TEXT NOT NULL,
            author BLOB NOT NULL,
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            recipient BLOB,
            ref BLOB,
            ttl INTEGER NOT NULL,
            raw BLOB NOT NULL,
            received_at INTEGER NOT NULL,
            from_peer TEXT
        )"""
    )
    db.execute(f"INSERT INTO envelopes_v15 ({_ENVELOPE_COLUMNS}) SELECT {_ENVELOPE_COLUMNS} FROM envelopes")
    db.execute("DROP TABLE envelopes")
    db.execute("ALTER TABLE envelopes_v15 RENAME TO envelopes")
    for statement in _ENVELOPE_INDEXES:
        if "envelopes_author" not in statement:  # gone since migration 14
            db.execute(statement)
    db.execute(ID_PREFIX_INDEX)
    _keep_envelope_seq(db, last)


# Leads, a vendor's hottest table after ``envelopes`` (a row per matched intent), without their hex GLOB
# and json_valid CHECKs: every row comes from the ingest pass's columns (checked by the native pass) or
# from an intent that verified (``node.leads._lead_row``: the hex and JSON of what decoded), so the
# CHECKs only repeated that work, more than half a lead's insert (19 -> 8.5 µs a row, measured). Same
# columns, ids, UNIQUE intent, status and reason checks, and index.
_LEAD_COLUMNS = ("id, intent_id, author, text, body, subscription_ids, created_at, expires_at, received_at, "
                 "status, withdrawn_at, closed_reason")  # fmt: skip


def _lean_leads_v16(db: sqlite_utils.Database) -> None:
    db.execute(
        """CREATE TABLE leads_v16 (
            id INTEGER PRIMARY KEY,
            intent_id TEXT NOT NULL UNIQUE,
            author TEXT NOT NULL,
            text TEXT NOT NULL,
            body TEXT NOT NULL,
            subscription_ids TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            received_at INTEGER NOT NULL,
            status TEXT NOT NULL DEFAULT 'live' CHECK (status IN ('live', 'withdrawn')),
            withdrawn_at INTEGER,
            closed_reason TEXT CHECK (closed_reason IS NULL OR closed_reason IN ('fulfilled'))
        )"""
    )
    db.execute(f"INSERT INTO leads_v16 ({_LEAD_COLUMNS}) SELECT {_LEAD_COLUMNS} FROM leads")
    db.execute("DROP TABLE leads")
    db.execute("ALTER TABLE leads_v16 RENAME TO leads")
    db.execute("CREATE INDEX leads_live ON leads(status, expires_at)")
