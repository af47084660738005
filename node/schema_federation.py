"""Migrations 4, 5, 6, 8 and 11, the federation's data: intents, the delivery outbox, peers, gossiped
envelopes, subscriptions (and their change journal), leads, offers, blocks, and agreements.

Never edit a shipped migration (existing stores must open): node/schema.py lists them all in order.
"""

from __future__ import annotations

import hashlib

import sqlite_utils

from node.schema_sql import _HEX64, _JSON_LIST, _NONBLANK

# Signed intents (PROTOCOL.md section 5). ``raw`` is the envelope as signed, ``body`` its body as JSON
# (for reading without decoding); a withdrawal adds its own signed envelope. "expired" is not stored:
# it follows from expires_at and the clock.
_INTENTS_V4 = (
    f"""CREATE TABLE intents (
        id TEXT PRIMARY KEY CHECK ({_HEX64.format("id")}),
        author TEXT NOT NULL CHECK ({_HEX64.format("author")}),
        text TEXT NOT NULL CHECK ({_NONBLANK.format("text")}),
        body TEXT NOT NULL CHECK (json_valid(body) AND json_type(body) = 'object'),
        raw BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        status TEXT NOT NULL DEFAULT 'live' CHECK (status IN ('live', 'withdrawn')),
        withdrawn_at INTEGER,
        withdrawal_id TEXT UNIQUE CHECK (withdrawal_id IS NULL OR ({_HEX64.format("withdrawal_id")})),
        withdrawal_raw BLOB,
        CHECK (expires_at > created_at),
        CHECK ((status = 'withdrawn') = (withdrawn_at IS NOT NULL)),
        CHECK ((withdrawn_at IS NULL) = (withdrawal_id IS NULL)),
        CHECK ((withdrawal_id IS NULL) = (withdrawal_raw IS NULL))
    )""",
    "CREATE INDEX intents_expires ON intents(status, expires_at)",
    "CREATE INDEX intents_created ON intents(created_at, id)",
)

# The federation's delivery queue (federation/outbox.py): one row per (peer, payload) until delivered.
# ``id`` order is the per-peer send order; ``ref`` (an envelope id) keeps a payload queued once per peer.
# Rows that will never be delivered move to ``outbox_dead`` with the reason, to be reported.
_OUTBOX_V5 = (
    """CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        peer TEXT NOT NULL CHECK (length(peer) BETWEEN 1 AND 256),
        kind TEXT NOT NULL CHECK (length(kind) BETWEEN 1 AND 32),
        ref TEXT,
        payload BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER,
        attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
        next_at INTEGER NOT NULL,
        last_error TEXT,
        UNIQUE (peer, kind, ref)
    )""",
    "CREATE INDEX outbox_peer ON outbox(peer, id)",
    "CREATE INDEX outbox_expires ON outbox(expires_at) WHERE expires_at IS NOT NULL",
    """CREATE TABLE outbox_dead (
        id INTEGER PRIMARY KEY,
        peer TEXT NOT NULL,
        kind TEXT NOT NULL,
        ref TEXT,
        payload BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        attempts INTEGER NOT NULL,
        reason TEXT NOT NULL CHECK (reason IN ('max_attempts', 'expired', 'rejected')),
        last_error TEXT,
        dead_at INTEGER NOT NULL
    )""",
    "CREATE INDEX outbox_dead_peer ON outbox_dead(peer, id)",
)

# Dead letters are bounded (federation/outbox.py): a peer's newest are kept and old ones swept, both
# found by this index.
DEAD_BY_AGE_V17 = ("CREATE INDEX outbox_dead_age ON outbox_dead(peer, dead_at, id)",)

# The federation (PROTOCOL.md sections 7 and 8). ``envelopes`` is every envelope this node holds for
# gossip (its own and its peers'): ``seq`` is the order peers pull in, ``id`` deduplicates, and rows
# leave once expired. ``recipient`` is the addressee of an offer, acceptance or decline (inbox pulls);
# ``ref`` the id the message is about. Peers are pinned by public key; ``url`` is NULL for a peer that
# announced none (a node behind NAT: it pulls, it is never pushed to).
_PEER_ROLES_SQL = "'person', 'vendor', 'relay'"
_FEDERATION_V6 = (
    f"""CREATE TABLE peers (
        id INTEGER PRIMARY KEY,
        public_key TEXT NOT NULL UNIQUE CHECK ({_HEX64.format("public_key")}),
        node_id TEXT NOT NULL UNIQUE CHECK (substr(node_id, 1, 4) = 'vrm1'),
        url TEXT CHECK (url IS NULL OR url GLOB 'http*://*'),
        role TEXT NOT NULL CHECK (role IN ({_PEER_ROLES_SQL})),
        name TEXT NOT NULL DEFAULT '',
        source TEXT NOT NULL CHECK (source IN ('added', 'announced')),
        added_at INTEGER NOT NULL,
        last_contact_at INTEGER,
        last_error TEXT,
        failures INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0),
        pull_cursor INTEGER NOT NULL DEFAULT 0 CHECK (pull_cursor >= 0),
        inbox_cursor INTEGER NOT NULL DEFAULT 0 CHECK (inbox_cursor >= 0)
    )""",
    f"""CREATE TABLE envelopes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE CHECK ({_HEX64.format("id")}),
        kind TEXT NOT NULL,
        author TEXT NOT NULL CHECK ({_HEX64.format("author")}),
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        recipient TEXT CHECK (recipient IS NULL OR ({_HEX64.format("recipient")})),
        ref TEXT CHECK (ref IS NULL OR ({_HEX64.format("ref")})),
        ttl INTEGER NOT NULL CHECK (ttl >= 0),
        raw BLOB NOT NULL,
        received_at INTEGER NOT NULL,
        from_peer TEXT
    )""",
    "CREATE INDEX envelopes_expires ON envelopes(expires_at)",
    "CREATE INDEX envelopes_recipient ON envelopes(recipient, seq) WHERE recipient IS NOT NULL",
    "CREATE INDEX envelopes_ref ON envelopes(ref) WHERE ref IS NOT NULL",
    "CREATE INDEX envelopes_kind_created ON envelopes(kind, created_at)",
    """CREATE TABLE subscriptions (
        id INTEGER PRIMARY KEY,
        text TEXT NOT NULL CHECK (length(trim(text)) > 0),
        spec TEXT NOT NULL CHECK (json_valid(spec)),
        created_at INTEGER NOT NULL
    )""",
    f"""CREATE TABLE leads (
        id INTEGER PRIMARY KEY,
        intent_id TEXT NOT NULL UNIQUE CHECK ({_HEX64.format("intent_id")}),
        author TEXT NOT NULL CHECK ({_HEX64.format("author")}),
        text TEXT NOT NULL,
        body TEXT NOT NULL CHECK (json_valid(body)),
        subscription_ids TEXT NOT NULL CHECK (json_valid(subscription_ids)),
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        received_at INTEGER NOT NULL,
        status TEXT NOT NULL DEFAULT 'live' CHECK (status IN ('live', 'withdrawn')),
        withdrawn_at INTEGER
    )""",
    "CREATE INDEX leads_live ON leads(status, expires_at)",
    f"""CREATE TABLE offers (
        id TEXT PRIMARY KEY CHECK ({_HEX64.format("id")}),
        direction TEXT NOT NULL CHECK (direction IN ('sent', 'received')),
        intent_id TEXT NOT NULL CHECK ({_HEX64.format("intent_id")}),
        vendor TEXT NOT NULL CHECK ({_HEX64.format("vendor")}),
        person TEXT NOT NULL CHECK ({_HEX64.format("person")}),
        vendor_name TEXT NOT NULL,
        vendor_handle TEXT NOT NULL,
        price_minor INTEGER NOT NULL CHECK (price_minor >= 0),
        currency TEXT NOT NULL CHECK (length(currency) = 3),
        text TEXT NOT NULL,
        raw BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        received_at INTEGER NOT NULL,
        status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'accepted', 'declined')),
        decided_at INTEGER,
        decision_id TEXT CHECK (decision_id IS NULL OR ({_HEX64.format("decision_id")})),
        decision_raw BLOB,
        CHECK ((status = 'open') = (decided_at IS NULL))
    )""",
    "CREATE INDEX offers_intent ON offers(intent_id)",
    f"""CREATE TABLE blocked (
        public_key TEXT PRIMARY KEY CHECK ({_HEX64.format("public_key")}),
        node_id TEXT NOT NULL,
        note TEXT NOT NULL DEFAULT '',
        blocked_at INTEGER NOT NULL
    )""",
)

# -- migration 8: subscriptions at scale ----------------------------------------------------------------
# The duplicate check looks a spec up by an indexed hash instead of scanning every spec, and triggers
# journal each change of the subscriptions table so that the live matcher index (node.subscriptions.
# LiveIndex) applies just what changed. The journal keeps its last SUBSCRIPTION_JOURNAL_KEEP entries; a
# reader further behind rebuilds.

SUBSCRIPTION_JOURNAL_KEEP = 10_000


def spec_hash(spec: str) -> int:
    """A subscription spec's lookup key: 64 bits of BLAKE2b as a signed integer (equal specs have equal
    keys; the duplicate check compares the specs as well)."""
    return int.from_bytes(hashlib.blake2b(spec.encode(), digest_size=8).digest(), "big", signed=True)


def _journal_trigger(event: str, ids: str) -> str:
    values = ", ".join(f"({i})" for i in ids.split())
    return (
        f"CREATE TRIGGER subscriptions_journal_{event.split()[0].lower()} AFTER {event} ON subscriptions BEGIN "
        f"INSERT INTO subscription_changes (subscription_id) VALUES {values}; "
        "DELETE FROM subscription_changes WHERE seq <= "
        f"(SELECT max(seq) FROM subscription_changes) - {SUBSCRIPTION_JOURNAL_KEEP}; END"
    )


def _subscriptions_v8(db: sqlite_utils.Database) -> None:
    db.execute("ALTER TABLE subscriptions ADD COLUMN spec_hash INTEGER")
    rows = db.execute("SELECT id, spec FROM subscriptions").fetchall()
    db.conn.executemany("UPDATE subscriptions SET spec_hash = ? WHERE id = ?", [(spec_hash(s), i) for i, s in rows])
    db.execute("CREATE INDEX subscriptions_spec_hash ON subscriptions(spec_hash)")
    db.execute(
        "CREATE TABLE subscription_changes ("
        "seq INTEGER PRIMARY KEY AUTOINCREMENT, subscription_id INTEGER NOT NULL)"
    )
    db.execute(_journal_trigger("INSERT", "new.id"))
    db.execute(_journal_trigger("DELETE", "old.id"))
    db.execute(_journal_trigger("UPDATE OF id, spec", "old.id new.id"))


# -- agreements (issue 11): an intent is a permission to the end, the person's terms an agreement --
# ``offers.terms`` is what an offer of body version 2 agrees to (NULL: a version 1 offer, no terms);
# ``superseded_at`` when its intent was closed as fulfilled by another offer. ``leads.closed_reason``
# and ``intents.withdraw_reason`` carry a withdrawal's reason (``fulfilled``: the deal is done).
# ``agreements`` is an accepted offer with both signed envelopes, kept by both sides alike.
WITHDRAW_REASONS_SQL = "'fulfilled'"
AGREEMENTS_V11 = (
    f"ALTER TABLE offers ADD COLUMN terms TEXT CHECK (terms IS NULL OR ({_JSON_LIST.format('terms')}))",
    "ALTER TABLE offers ADD COLUMN superseded_at INTEGER",
    f"ALTER TABLE leads ADD COLUMN closed_reason TEXT CHECK (closed_reason IS NULL OR closed_reason IN ({WITHDRAW_REASONS_SQL}))",
    f"ALTER TABLE intents ADD COLUMN withdraw_reason TEXT CHECK (withdraw_reason IS NULL OR withdraw_reason IN ({WITHDRAW_REASONS_SQL}))",
    f"""CREATE TABLE agreements (
        id TEXT PRIMARY KEY CHECK ({_HEX64.format("id")}),
        intent_id TEXT NOT NULL CHECK ({_HEX64.format("intent_id")}),
        offer_id TEXT NOT NULL UNIQUE CHECK ({_HEX64.format("offer_id")}),
        person TEXT NOT NULL CHECK ({_HEX64.format("person")}),
        vendor TEXT NOT NULL CHECK ({_HEX64.format("vendor")}),
        vendor_name TEXT NOT NULL,
        vendor_handle TEXT NOT NULL,
        terms TEXT NOT NULL CHECK ({_JSON_LIST.format("terms")}),
        price_minor INTEGER NOT NULL CHECK (price_minor >= 0),
        currency TEXT NOT NULL CHECK (length(currency) = 3),
        text TEXT NOT NULL,
        made_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        offer_raw BLOB NOT NULL,
        accept_raw BLOB NOT NULL
    )""",
    "CREATE INDEX agreements_intent ON agreements(intent_id)",
)
