"""Migrations 1 to 3, a person's own data: the relationship records, their full-text index, the vault.

Never edit a shipped migration (existing stores must open): node/schema.py lists them all in order.
"""

from __future__ import annotations

from node.schema_sql import _NONBLANK

ENGAGEMENT_LEVELS = ("none", "transactional", "casual", "engaged", "advocate")
ISSUE_STATES = ("open", "waiting_on_vendor", "resolved")
_LEVELS_SQL = ", ".join(f"'{level}'" for level in ENGAGEMENT_LEVELS)
_STATES_SQL = ", ".join(f"'{state}'" for state in ISSUE_STATES)

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
