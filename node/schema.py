"""The store's schema: every feature's tables as numbered migrations, applied in order by ``Store``.

Each migration runs in its own transaction together with its row in ``schema_migrations``: an older
home upgrades in place, and a crash during an upgrade leaves the previous version intact. Never edit a
shipped migration (existing stores must open); append a new one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import sqlite_utils

Step = Sequence[str] | Callable[[sqlite_utils.Database], None]
Migration = tuple[int, str, Step]


ENGAGEMENT_LEVELS = ("none", "transactional", "casual", "engaged", "advocate")
ISSUE_STATES = ("open", "waiting_on_vendor", "resolved")
_LEVELS_SQL = ", ".join(f"'{level}'" for level in ENGAGEMENT_LEVELS)
_STATES_SQL = ", ".join(f"'{state}'" for state in ISSUE_STATES)
_NONBLANK = "length(trim({0})) > 0"

_RECORDS_V1 = (
    f"""CREATE TABLE vendors (
        id INTEGER PRIMARY KEY,
        handle TEXT NOT NULL UNIQUE CHECK (substr(handle, 1, 1) = '@' AND length(handle) BETWEEN 2 AND 64),
        name TEXT NOT NULL CHECK ({_NONBLANK.format("name")}),
        node_id TEXT,
        website TEXT,
        notes TEXT NOT NULL DEFAULT '',
        engagement TEXT NOT NULL DEFAULT 'none' CHECK (engagement IN ({_LEVELS_SQL})),
        started_at INTEGER NOT NULL,
        ended_at INTEGER,
        end_reason TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        CHECK (ended_at IS NULL OR ended_at >= started_at),
        CHECK (end_reason IS NULL OR ended_at IS NOT NULL)
    )""",
    f"""CREATE TABLE engagement_changes (
        id INTEGER PRIMARY KEY,
        vendor_id INTEGER NOT NULL REFERENCES vendors(id),
        level TEXT NOT NULL CHECK (level IN ({_LEVELS_SQL})),
        at INTEGER NOT NULL
    )""",
    f"""CREATE TABLE purchases (
        id INTEGER PRIMARY KEY,
        vendor_id INTEGER NOT NULL REFERENCES vendors(id),
        product TEXT NOT NULL CHECK ({_NONBLANK.format("product")}),
        price_minor INTEGER CHECK (price_minor IS NULL OR price_minor >= 0),
        currency TEXT CHECK (currency IS NULL OR (length(currency) = 3 AND currency = upper(currency))),
        bought_at INTEGER NOT NULL,
        note TEXT NOT NULL DEFAULT '',
        CHECK ((price_minor IS NULL) = (currency IS NULL))
    )""",
    f"""CREATE TABLE notes (
        id INTEGER PRIMARY KEY,
        vendor_id INTEGER NOT NULL REFERENCES vendors(id),
        text TEXT NOT NULL CHECK ({_NONBLANK.format("text")}),
        tags TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(tags) AND json_type(tags) = 'array'),
        at INTEGER NOT NULL
    )""",
    """CREATE TABLE ratings (
        id INTEGER PRIMARY KEY,
        vendor_id INTEGER NOT NULL REFERENCES vendors(id),
        stars INTEGER NOT NULL CHECK (stars BETWEEN 1 AND 5),
        comment TEXT NOT NULL DEFAULT '',
        at INTEGER NOT NULL
    )""",
    """CREATE TABLE recommendations (
        id INTEGER PRIMARY KEY,
        vendor_id INTEGER NOT NULL REFERENCES vendors(id),
        would_recommend INTEGER NOT NULL CHECK (would_recommend IN (0, 1)),
        text TEXT NOT NULL DEFAULT '',
        at INTEGER NOT NULL
    )""",
    f"""CREATE TABLE issues (
        id INTEGER PRIMARY KEY,
        vendor_id INTEGER NOT NULL REFERENCES vendors(id),
        title TEXT NOT NULL CHECK ({_NONBLANK.format("title")}),
        state TEXT NOT NULL CHECK (state IN ({_STATES_SQL})),
        opened_at INTEGER NOT NULL,
        resolved_at INTEGER,
        CHECK ((state = 'resolved') = (resolved_at IS NOT NULL)),
        CHECK (resolved_at IS NULL OR resolved_at >= opened_at)
    )""",
    f"""CREATE TABLE issue_replies (
        id INTEGER PRIMARY KEY,
        issue_id INTEGER NOT NULL REFERENCES issues(id),
        author TEXT NOT NULL CHECK (author IN ('me', 'vendor')),
        text TEXT NOT NULL CHECK ({_NONBLANK.format("text")}),
        at INTEGER NOT NULL
    )""",
    *(
        f"CREATE INDEX {table}_vendor ON {table}(vendor_id)"
        for table in ("engagement_changes", "purchases", "notes", "ratings", "recommendations", "issues")
    ),
    "CREATE INDEX issue_replies_issue ON issue_replies(issue_id)",
)

# What the full-text index holds: (kind, code, table, vendor id expression, body expression).
# The index row id is ``record id * 8 + code``, so a trigger finds its own row without a scan.
_INDEXED = (
    (
        "vendor",
        1,
        "vendors",
        "{r}.id",
        "{r}.name || ' ' || {r}.handle || ' ' || coalesce({r}.website, '') || ' ' || {r}.notes"
        " || ' ' || coalesce({r}.end_reason, '')",
    ),
    ("purchase", 2, "purchases", "{r}.vendor_id", "{r}.product || ' ' || {r}.note"),
    ("note", 3, "notes", "{r}.vendor_id", "{r}.text || ' ' || {r}.tags"),
    ("rating", 4, "ratings", "{r}.vendor_id", "{r}.comment"),
    ("recommendation", 5, "recommendations", "{r}.vendor_id", "{r}.text"),
    ("issue", 6, "issues", "{r}.vendor_id", "{r}.title"),
    (
        "reply",
        7,
        "issue_replies",
        "(SELECT vendor_id FROM issues WHERE issues.id = {r}.issue_id)",
        "{r}.text",
    ),
)


def _search_v2() -> tuple[str, ...]:
    statements = [
        "CREATE VIRTUAL TABLE search_index USING fts5(kind UNINDEXED, vendor_id UNINDEXED, "
        "ref_id UNINDEXED, body, tokenize = 'unicode61 remove_diacritics 2')"
    ]
    insert = "INSERT INTO search_index (rowid, kind, vendor_id, ref_id, body)"
    for kind, code, table, vendor, body in _INDEXED:
        new = f"new.id * 8 + {code}, '{kind}', {vendor.format(r='new')}, new.id, {body.format(r='new')}"
        old = (
            f"{table}.id * 8 + {code}, '{kind}', {vendor.format(r=table)}, {table}.id, {body.format(r=table)}"
        )
        delete = f"DELETE FROM search_index WHERE rowid = old.id * 8 + {code};"
        statements += [
            f"CREATE TRIGGER {table}_ai AFTER INSERT ON {table} BEGIN {insert} VALUES ({new}); END",
            f"CREATE TRIGGER {table}_ad AFTER DELETE ON {table} BEGIN {delete} END",
            f"CREATE TRIGGER {table}_au AFTER UPDATE ON {table} BEGIN {delete} {insert} VALUES ({new}); END",
            # Rows of an upgraded home, written before the index existed, are indexed once here.
            f"{insert} SELECT {old} FROM {table}",
        ]
    return tuple(statements)


_VAULT_V3 = (
    """CREATE TABLE vault (
        name TEXT PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64),
        scheme TEXT NOT NULL CHECK (scheme IN ('plain', 'chacha20poly1305')),
        nonce BLOB,
        value BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        CHECK ((scheme = 'plain') = (nonce IS NULL))
    )""",
)

# Signed intents (PROTOCOL.md section 5). ``raw`` is the envelope as signed, ``body`` its body as JSON
# (for reading without decoding); a withdrawal adds its own signed envelope. "expired" is not stored:
# it follows from expires_at and the clock.
_HEX64 = "length({0}) = 64 AND NOT {0} GLOB '*[^0-9a-f]*'"
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

# Consented access (PROTOCOL.md, consented access). Requests and grants are kept in both directions
# (``sent``/``received`` requests, ``given``/``received`` grants) with their signed envelopes; an ended
# grant keeps its revocation and, on the person's side, the vendor's deletion statement. ``pushed_*``
# is the person's record of what was last pushed (a version counter and the vault fields' names and
# update times, never values); ``held_version`` the vendor's latest push taken. ``held_data`` is what
# a vendor holds under a grant it received; ``receipts`` the person's own hash chain (``seq`` n has
# ``prev`` = the id of n-1) and ``receipt_copies`` the copies a vendor received.
_END_REASONS_SQL = "'revoked', 'expired', 'budget_spent', 'intent_ended'"
_OUTCOMES_SQL = "'ok', 'pushed', 'no_grant', 'not_grantee', 'expired', 'revoked', 'out_of_scope', 'budget_spent'"
_JSON_LIST = "json_valid({0}) AND json_type({0}) = 'array'"
_OPTIONAL_HEX64 = "{0} IS NULL OR (" + _HEX64 + ")"
_ACCESS_V7 = (
    f"""CREATE TABLE access_requests (
        id TEXT PRIMARY KEY CHECK ({_HEX64.format("id")}),
        direction TEXT NOT NULL CHECK (direction IN ('sent', 'received')),
        vendor TEXT NOT NULL CHECK ({_HEX64.format("vendor")}),
        person TEXT NOT NULL CHECK ({_HEX64.format("person")}),
        fields TEXT NOT NULL CHECK ({_JSON_LIST.format("fields")} AND json_array_length(fields) BETWEEN 1 AND 32),
        purpose TEXT NOT NULL CHECK (length(purpose) BETWEEN 1 AND 500),
        duration_ms INTEGER NOT NULL CHECK (duration_ms BETWEEN 60000 AND 31536000000),
        for_ref TEXT CHECK ({_OPTIONAL_HEX64.format("for_ref")}),
        raw BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        received_at INTEGER NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'denied')),
        decided_at INTEGER,
        grant_id TEXT CHECK ({_OPTIONAL_HEX64.format("grant_id")}),
        CHECK (expires_at > created_at),
        CHECK ((status = 'pending') = (decided_at IS NULL)),
        CHECK (grant_id IS NULL OR status = 'approved')
    )""",
    "CREATE INDEX access_requests_status ON access_requests(direction, status, created_at)",
    f"""CREATE TABLE grants (
        id TEXT PRIMARY KEY CHECK ({_HEX64.format("id")}),
        direction TEXT NOT NULL CHECK (direction IN ('given', 'received')),
        person TEXT NOT NULL CHECK ({_HEX64.format("person")}),
        grantee TEXT NOT NULL CHECK ({_HEX64.format("grantee")}),
        fields TEXT NOT NULL CHECK ({_JSON_LIST.format("fields")} AND json_array_length(fields) BETWEEN 1 AND 32),
        purpose TEXT NOT NULL CHECK (length(purpose) BETWEEN 1 AND 500),
        terms TEXT NOT NULL DEFAULT '[]' CHECK ({_JSON_LIST.format("terms")}),
        uses_allowed INTEGER CHECK (uses_allowed IS NULL OR uses_allowed >= 1),
        uses_spent INTEGER NOT NULL DEFAULT 0 CHECK (uses_spent >= 0),
        for_ref TEXT CHECK ({_OPTIONAL_HEX64.format("for_ref")}),
        request_id TEXT CHECK ({_OPTIONAL_HEX64.format("request_id")}),
        push INTEGER NOT NULL DEFAULT 0 CHECK (push IN (0, 1)),
        raw BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        received_at INTEGER NOT NULL,
        status TEXT NOT NULL DEFAULT 'live' CHECK (status IN ('live', 'ended')),
        end_reason TEXT CHECK (end_reason IS NULL OR end_reason IN ({_END_REASONS_SQL})),
        ended_at INTEGER,
        revoke_id TEXT UNIQUE CHECK ({_OPTIONAL_HEX64.format("revoke_id")}),
        revoke_raw BLOB,
        deletion_id TEXT UNIQUE CHECK ({_OPTIONAL_HEX64.format("deletion_id")}),
        deletion_raw BLOB,
        deletion_confirmed_at INTEGER,
        deleted_fields TEXT CHECK (deleted_fields IS NULL OR ({_JSON_LIST.format("deleted_fields")})),
        pushed_version INTEGER NOT NULL DEFAULT 0 CHECK (pushed_version >= 0),
        pushed_state TEXT,
        held_version INTEGER NOT NULL DEFAULT 0 CHECK (held_version >= 0),
        CHECK (expires_at > created_at),
        CHECK (uses_allowed IS NULL OR uses_spent <= uses_allowed),
        CHECK ((status = 'ended') = (end_reason IS NOT NULL)),
        CHECK ((end_reason IS NULL) = (ended_at IS NULL)),
        CHECK ((revoke_id IS NULL) = (revoke_raw IS NULL)),
        CHECK ((deletion_id IS NULL) = (deletion_raw IS NULL)),
        CHECK (direction = 'received' OR ((deletion_id IS NULL) = (deletion_confirmed_at IS NULL)))
    )""",
    "CREATE INDEX grants_state ON grants(direction, status, expires_at)",
    "CREATE INDEX grants_for ON grants(for_ref) WHERE for_ref IS NOT NULL",
    """CREATE TABLE held_data (
        grant_id TEXT NOT NULL REFERENCES grants(id),
        name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
        value TEXT NOT NULL,
        received_at INTEGER NOT NULL,
        PRIMARY KEY (grant_id, name)
    ) WITHOUT ROWID""",
    f"""CREATE TABLE receipts (
        seq INTEGER PRIMARY KEY CHECK (seq >= 1),
        id TEXT NOT NULL UNIQUE CHECK ({_HEX64.format("id")}),
        prev TEXT NOT NULL CHECK ({_HEX64.format("prev")}),
        grant_id TEXT NOT NULL CHECK ({_HEX64.format("grant_id")}),
        vendor TEXT NOT NULL CHECK ({_HEX64.format("vendor")}),
        fields TEXT NOT NULL CHECK ({_JSON_LIST.format("fields")}),
        purpose TEXT NOT NULL,
        at INTEGER NOT NULL,
        outcome TEXT NOT NULL CHECK (outcome IN ({_OUTCOMES_SQL})),
        raw BLOB NOT NULL
    )""",
    "CREATE INDEX receipts_vendor ON receipts(vendor, seq)",
    "CREATE INDEX receipts_grant ON receipts(grant_id, seq)",
    f"""CREATE TABLE receipt_copies (
        id TEXT PRIMARY KEY CHECK ({_HEX64.format("id")}),
        person TEXT NOT NULL CHECK ({_HEX64.format("person")}),
        seq INTEGER NOT NULL CHECK (seq >= 1),
        prev TEXT NOT NULL CHECK ({_HEX64.format("prev")}),
        grant_id TEXT NOT NULL CHECK ({_HEX64.format("grant_id")}),
        vendor TEXT NOT NULL CHECK ({_HEX64.format("vendor")}),
        fields TEXT NOT NULL CHECK ({_JSON_LIST.format("fields")}),
        purpose TEXT NOT NULL,
        at INTEGER NOT NULL,
        outcome TEXT NOT NULL CHECK (outcome IN ({_OUTCOMES_SQL})),
        raw BLOB NOT NULL,
        received_at INTEGER NOT NULL
    )""",
    "CREATE INDEX receipt_copies_person ON receipt_copies(person, seq)",
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


# -- open-network defences (issue 10): one contiguous block of migrations ---------------------------
# An announced peer's URL is only a claim (``claimed_url``) until the node verified it (then ``url``);
# a claim that failed is not tried again before ``claim_retry_at``. ``peer_scores`` is the persisted
# standing of every signer that misbehaved (peer or stranger): a score that falls with each offence
# and recovers with time, what lowered it, and until when it is throttled or refused.
_DEFENCES_V9 = (
    "ALTER TABLE peers ADD COLUMN claimed_url TEXT CHECK (claimed_url IS NULL OR claimed_url GLOB 'http*://*')",
    "ALTER TABLE peers ADD COLUMN claim_retry_at INTEGER",
    "ALTER TABLE peers ADD COLUMN verified_at INTEGER",
    f"""CREATE TABLE peer_scores (
        public_key TEXT PRIMARY KEY CHECK ({_HEX64.format("public_key")}),
        score REAL NOT NULL,
        updated_at INTEGER NOT NULL,
        offences TEXT NOT NULL DEFAULT '{{}}',
        refused_until INTEGER
    )""",
    "CREATE INDEX peer_scores_updated ON peer_scores(updated_at)",
    "CREATE INDEX envelopes_author ON envelopes(author)",  # admission: has this author been seen?
)

# A refused fetch that names no grant this node gave is counted here (per source address, hour and
# reason), not receipted one by one: strangers with fresh keys cannot grow the signed receipt log.
_DEFENCES_V10 = (
    """CREATE TABLE stranger_refusals (
        source TEXT NOT NULL,
        hour INTEGER NOT NULL,
        reason TEXT NOT NULL,
        count INTEGER NOT NULL CHECK (count > 0),
        PRIMARY KEY (source, hour, reason)
    ) WITHOUT ROWID""",
    # Held data sealed under the vault key (node.grants.vendor): ``nonce`` set means ``value`` is the
    # ciphertext, base64; NULL means plain text (a vendor home without a passphrase).
    "ALTER TABLE held_data ADD COLUMN nonce BLOB",
)

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

MIGRATIONS: tuple[Migration, ...] = (
    (1, "relationship records", _RECORDS_V1),
    (2, "full-text search index", _search_v2()),
    (3, "personal data vault", _VAULT_V3),
    (4, "intents", _INTENTS_V4),
    (5, "delivery outbox", _OUTBOX_V5),
    (6, "federation: peers, gossiped envelopes, subscriptions, leads, offers, blocks", _FEDERATION_V6),
    (7, "consented access: requests, grants, held data, receipts", _ACCESS_V7),
    (8, "subscriptions: spec hash index, change journal", _subscriptions_v8),
    (9, "defences: announced URLs verified before use, peer scores", _DEFENCES_V9),
    (10, "defences: refusals naming no grant counted in aggregate, held data sealed", _DEFENCES_V10),
    (11, "agreements: offer terms, withdrawal reasons, superseded offers, agreements", AGREEMENTS_V11),
)
