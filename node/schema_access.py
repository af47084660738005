"""Migrations 7, 9 and 10: consented access (requests, grants, held data, receipts) and the
open-network defences (announced URLs verified before use, peer scores, refusals counted in aggregate).

Never edit a shipped migration (existing stores must open): node/schema.py lists them all in order.
"""

from __future__ import annotations

from node.schema_sql import _HEX64, _JSON_LIST, _OPTIONAL_HEX64

# Consented access (PROTOCOL.md, consented access). Requests and grants are kept in both directions
# (``sent``/``received`` requests, ``given``/``received`` grants) with their signed envelopes; an ended
# grant keeps its revocation and, on the person's side, the vendor's deletion statement. ``pushed_*``
# is the person's record of what was last pushed (a version counter and the vault fields' names and
# update times, never values); ``held_version`` the vendor's latest push taken. ``held_data`` is what
# a vendor holds under a grant it received; ``receipts`` the person's own hash chain (``seq`` n has
# ``prev`` = the id of n-1) and ``receipt_copies`` the copies a vendor received.
_END_REASONS_SQL = "'revoked', 'expired', 'budget_spent', 'intent_ended'"
_OUTCOMES_SQL = "'ok', 'pushed', 'no_grant', 'not_grantee', 'expired', 'revoked', 'out_of_scope', 'budget_spent'"
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
