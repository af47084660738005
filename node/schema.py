"""The store's schema: every feature's tables as numbered migrations, applied in order by ``Store``.

Each migration runs in its own transaction together with its row in ``schema_migrations``: an older
home upgrades in place, and a crash during an upgrade leaves the previous version intact. Never edit a
shipped migration (existing stores must open); append a new one.

The migrations' texts live by area: node.schema_records (1-3), node.schema_federation (4-6, 8, 11),
node.schema_access (7, 9, 10), node.schema_datapath (12-15), with the CHECK fragments they share in
node.schema_sql.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlite_utils

from node.schema_access import _ACCESS_V7, _DEFENCES_V9, _DEFENCES_V10
from node.schema_datapath import _AUTHORS_V14, _blob_ids_v13, _data_path_v12, _id_prefix_v15, _lean_leads_v16
from node.schema_federation import (  # noqa: F401 (re-exported: the store and fleet/pgschema read them)
    _FEDERATION_V6,
    _INTENTS_V4,
    _OUTBOX_V5,
    AGREEMENTS_V11,
    DEAD_BY_AGE_V17,
    SUBSCRIPTION_JOURNAL_KEEP,
    _subscriptions_v8,
    spec_hash,
)
from node.schema_records import (  # noqa: F401 (re-exported: the store reads them)
    _RECORDS_V1,
    _VAULT_V3,
    ENGAGEMENT_LEVELS,
    ISSUE_STATES,
    _search_v2,
)

Step = Sequence[str] | Callable[[sqlite_utils.Database], None]
Migration = tuple[int, str, Step]


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
    (12, "data path: the gossip log without per-row checks, relayed payloads stored once", _data_path_v12),
    (13, "data path: the gossip log's ids and keys as 32-byte BLOBs", _blob_ids_v13),
    (14, "data path: the authors held in a table of their own, not an index on every envelope", _AUTHORS_V14),
    (15, "data path: envelopes found by an index of their ids' first 8 bytes", _id_prefix_v15),
    (16, "data path: leads without per-row checks", _lean_leads_v16),
    (17, "dead letters bounded: kept newest first per peer, swept by age", DEAD_BY_AGE_V17),
)
