"""The gossip log: every envelope this node holds to pass on (the ``envelopes`` table).

Rows are kept until they expire. ``seq`` orders them as peers pull them (``GET /v1/gossip?after=``),
``id`` deduplicates, ``recipient`` marks an addressed envelope (offer, accept, decline) for inbox pulls
and ``ref`` is the id it is about. Nothing here checks signatures or bodies: the pipeline stores only
what it accepted, and ``addressing`` reads the two columns from an already checked body.

The table holds ids and keys as their 32 bytes (BLOBs: half the index, migration 13); ``Held`` and
every method here speak hex, as the rest of the domain does, except ``known`` and ``add_verified``,
the ingest pipeline's, which take the bytes the native pass gave.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from node.envelope import Envelope
from node.errors import ConflictError, ValidationError
from node.store import Clock, Store, blobs, in_list, joined, wall_clock_ms

ORIGIN_TTL = 4  # hops an envelope may still travel when its author sends it
MAX_TTL = 8  # a receiver clamps a larger ttl to this
MAX_PAGE = 1000  # items in one pull
ADDRESSED_KINDS = ("offer", "accept", "decline")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_MAX_INT = 2**63 - 1
_COLUMNS = (
    "seq, id, kind, author, created_at, expires_at, recipient, ref, ttl, raw, received_at, from_peer"
)
VERIFIED_COLUMNS = "id, kind, author, created_at, expires_at, recipient, ref, ttl, raw, received_at, from_peer"
_INSERT_VERIFIED = f"INSERT INTO envelopes ({VERIFIED_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
# An intent is never addressed: its row leaves recipient and ref to their default (NULL), as sqlite3
# binds a None no faster than a bytes value (see node.store.blobs).
INTENT_COLUMNS = "id, kind, author, created_at, expires_at, ttl, raw, received_at, from_peer"
_INSERT_INTENTS = f"INSERT INTO envelopes ({INTENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
_AUTHOR_HOUR = 3_600_000  # ``authors.held_until`` is rounded up to it: one update per author and hour
_NOTE_AUTHORS = (
    "INSERT INTO authors (author, held_until) VALUES (?, ?) ON CONFLICT (author) "
    "DO UPDATE SET held_until = excluded.held_until WHERE excluded.held_until > authors.held_until"
)


@dataclass(frozen=True)
class Held:
    """One held envelope; ``raw`` is its exact wire encoding, ``from_peer`` the hex key it came from
    (None for our own)."""

    seq: int
    id: str
    kind: str
    author: str
    created: int
    expires: int
    recipient: str | None
    ref: str | None
    ttl: int
    raw: bytes
    received_at: int
    from_peer: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "id": self.id,
            "kind": self.kind,
            "author": self.author,
            "created": self.created,
            "expires": self.expires,
            "recipient": self.recipient,
            "ref": self.ref,
            "ttl": self.ttl,
            "raw": self.raw.hex(),
            "received_at": self.received_at,
            "from_peer": self.from_peer,
        }


def id_in(ids: Sequence[bytes]) -> tuple[str, list[bytes]]:
    """The WHERE clause (and its parameters) for the envelopes whose id is one of ``ids`` (32 bytes
    each, at least one): the 8-byte prefix the index holds (migration 15), then the whole id."""
    prefixes, marks = in_list(blobs(i[:8] for i in ids)), in_list(blobs(ids))
    return f"substr(id, 1, 8) IN {prefixes[0]} AND id IN {marks[0]}", prefixes[1] + marks[1]


def _key_hex(body: Any, key: str) -> str:
    value = body.get(key) if isinstance(body, dict) else None
    if not isinstance(value, bytes) or len(value) != 32:
        raise ValidationError("body", f"{key!r} must be 32 bytes")
    return value.hex()


def addressing(env: Envelope) -> tuple[str | None, str | None]:
    """``(recipient, ref)`` as hex for an envelope whose body passed its kind's check: offer → (to,
    intent), accept/decline → (to, offer), withdraw → (None, intent), any other kind → (None, None).
    ValidationError when the body lacks the key its kind needs."""
    if env.kind == "offer":
        return _key_hex(env.body, "to"), _key_hex(env.body, "intent")
    if env.kind in ("accept", "decline"):
        return _key_hex(env.body, "to"), _key_hex(env.body, "offer")
    if env.kind == "withdraw":
        return None, _key_hex(env.body, "intent")
    return None, None


def envelope_row(
    env: Envelope, *, ttl: int, recipient: str | None, ref: str | None, from_peer: str | None, received_at: int
) -> dict[str, Any]:
    """The ``add_many`` row of an envelope (Held's fields without ``seq``)."""
    return {
        "id": env.id.hex(),
        "kind": env.kind,
        "author": env.author.hex(),
        "created": env.created,
        "expires": env.expires,
        "recipient": recipient,
        "ref": ref,
        "ttl": ttl,
        "raw": env.raw,
        "received_at": received_at,
        "from_peer": from_peer,
    }


def _hex_or_none(row: Mapping[str, Any], name: str) -> str | None:
    value = row.get(name)
    if value is not None and not (isinstance(value, str) and _HEX64.fullmatch(value)):
        raise ValidationError(name, "must be 64 lower-case hex characters or None")
    return value


def _int(row: Mapping[str, Any], name: str, low: int = 0, high: int = _MAX_INT) -> int:
    value = row.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(name, f"must be an integer from {low} to {high}")
    return value


def _column_row(row: Mapping[str, Any], now: int) -> dict[str, Any]:
    """The table row of a Held-like mapping, every field checked (ValidationError names the first bad one)."""
    for name in ("id", "author"):
        if not (isinstance(row.get(name), str) and _HEX64.fullmatch(row[name])):
            raise ValidationError(name, "must be 64 lower-case hex characters")
    kind, raw, from_peer = row.get("kind"), row.get("raw"), row.get("from_peer")
    if not isinstance(kind, str) or not 1 <= len(kind) <= 32:
        raise ValidationError("kind", "must be a kind name")
    if not isinstance(raw, (bytes, bytearray)) or not raw:
        raise ValidationError("raw", "must be the envelope's bytes")
    if from_peer is not None and not isinstance(from_peer, str):
        raise ValidationError("from_peer", "must be a peer's hex key or None")
    created, expires = _int(row, "created"), _int(row, "expires")
    if expires <= created:
        raise ValidationError("expires", "must be after created")
    return {
        "id": bytes.fromhex(row["id"]),
        "kind": kind,
        "author": bytes.fromhex(row["author"]),
        "created_at": created,
        "expires_at": expires,
        "recipient": _blob_or_none(_hex_or_none(row, "recipient")),
        "ref": _blob_or_none(_hex_or_none(row, "ref")),
        "ttl": _int(row, "ttl", 0, MAX_TTL),
        "raw": bytes(raw),
        "received_at": now if row.get("received_at") is None else _int(row, "received_at"),
        "from_peer": from_peer,
    }


def _blob_or_none(hex_value: str | None) -> bytes | None:
    return None if hex_value is None else bytes.fromhex(hex_value)


def _hex_of(value: bytes | None) -> str | None:
    return None if value is None else bytes(value).hex()


def blob_id(hex_value: str | None) -> bytes | None:
    """The stored form of a hex id or key (None for None, and for anything not 64 lower-case hex
    characters: no row has it)."""
    return bytes.fromhex(hex_value) if isinstance(hex_value, str) and _HEX64.fullmatch(hex_value) else None


def _held(row: dict[str, Any]) -> Held:
    return Held(
        seq=row["seq"],
        id=bytes(row["id"]).hex(),
        kind=row["kind"],
        author=bytes(row["author"]).hex(),
        created=row["created_at"],
        expires=row["expires_at"],
        recipient=_hex_of(row["recipient"]),
        ref=_hex_of(row["ref"]),
        ttl=row["ttl"],
        raw=bytes(row["raw"]),
        received_at=row["received_at"],
        from_peer=row["from_peer"],
    )


class GossipLog:
    """The ``envelopes`` table over one Store."""

    def __init__(self, store: Store, *, clock: Clock = wall_clock_ms) -> None:
        self._store = store
        self._clock = clock

    def known(self, ids: Sequence[bytes]) -> set[bytes]:
        """Which of ``ids`` (32 bytes each) are held, in one query per thousand."""
        return {bytes(r["id"]) for r in self._rows_of(ids, "id")}

    def expiries(self, ids: Sequence[bytes]) -> dict[bytes, int]:
        """When each of ``ids`` (32 bytes each) that is held expires, in one query per thousand."""
        return {bytes(r["id"]): r["expires_at"] for r in self._rows_of(ids, "id, expires_at")}

    def _rows_of(self, ids: Sequence[bytes], columns: str) -> list[dict[str, Any]]:
        if not all(type(i) is bytes and len(i) == 32 for i in ids):
            raise ValidationError("ids", "must be 32-byte ids (bytes, not hex)")
        rows: list[dict[str, Any]] = []
        for at in range(0, len(ids), MAX_PAGE):
            where, params = id_in(ids[at : at + MAX_PAGE])
            rows += self._store.query(f"SELECT {columns} FROM envelopes WHERE {where}", params)
        return rows

    def add_many(self, rows: Sequence[Mapping[str, Any]]) -> list[int]:
        """Insert rows with Held's fields (``seq`` aside; ``received_at`` defaults to now) and return
        their seqs in order. Every row is checked before the first is written; ConflictError when an id
        is already held or twice in ``rows`` (callers deduplicate with ``known`` first). Joins the
        caller's transaction."""
        now = self._clock()
        checked = [_column_row(row, now) for row in rows]
        ids = [r["id"] for r in checked]
        try:
            with self._store.transaction():
                # The id index is not UNIQUE (migration 15): refused here, in the writer's transaction.
                if len(set(ids)) < len(ids) or (ids and self.known(ids)):
                    raise ConflictError("an envelope in the batch is already held")
                seqs = self._store.insert_many("envelopes", checked)
                self._note_authors([(r["author"], r["expires_at"]) for r in checked])
        except sqlite3.IntegrityError:
            raise ConflictError("an envelope in the batch is already held") from None
        return seqs

    def add_verified(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert rows the ingest pipeline accepted, in ``VERIFIED_COLUMNS`` order (id, kind, author,
        created, expires, recipient, ref, ttl 0..MAX_TTL, raw, received_at, from_peer; the four ids and
        keys as 32 bytes, from_peer hex): envelopes the native pass decoded and verified, and whose
        addressing came from bodies its kind's check passed, so the per-row checks of ``add_many``
        would only repeat them (one prepared statement, no re-validation). The caller deduplicates
        first, in the same transaction (the pipeline's ``known``): the SQLite id index is not UNIQUE,
        so a held id is refused only where the database enforces it (ConflictError from a fleet's
        PostgreSQL). Joins the caller's transaction."""
        self._insert_verified(_INSERT_VERIFIED, rows)

    def add_intents(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """``add_verified`` for intents alone, in ``INTENT_COLUMNS`` order (no recipient, no ref)."""
        self._insert_verified(_INSERT_INTENTS, rows)

    def _insert_verified(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """Both column orders put author third and expires fifth."""
        try:
            with joined(self._store):
                self._store.execute_many(sql, rows)
                self._note_authors([(r[2], r[4]) for r in rows])
        except sqlite3.IntegrityError:
            raise ConflictError("an envelope in the batch is already held") from None

    def _note_authors(self, pairs: Sequence[tuple[bytes, int]]) -> None:
        """Keep ``authors`` (migration 14) for newly held (author key, expires) pairs: each author's row
        says until when an envelope of theirs may be held, rounded up to the hour. Written in key
        order, so listeners sharing a fleet's database lock the rows they update in one order."""
        until: dict[bytes, int] = {}
        for author, expires in pairs:
            key = bytes(author)  # the pipeline's rows carry bytearrays (node.store.blobs)
            if expires > until.get(key, -1):
                until[key] = expires
        hour = _AUTHOR_HOUR
        self._store.execute_many(_NOTE_AUTHORS, [(bytearray(a), -(-until[a] // hour) * hour) for a in sorted(until)])

    def authors_held(self, authors: Sequence[bytes]) -> set[bytes]:
        """Which of ``authors`` (32-byte keys) have an envelope held (or had one within the hour)."""
        found: set[bytes] = set()
        for at in range(0, len(authors), MAX_PAGE):
            marks, params = in_list(authors[at : at + MAX_PAGE])
            rows = self._store.query(f"SELECT author FROM authors WHERE author IN {marks}", params)
            found.update(bytes(r["author"]) for r in rows)
        return found

    def add(
        self, env: Envelope, *, ttl: int, recipient: str | None, ref: str | None, from_peer: str | None
    ) -> int:
        """Hold one envelope; its seq."""
        row = envelope_row(
            env, ttl=ttl, recipient=recipient, ref=ref, from_peer=from_peer, received_at=self._clock()
        )
        return self.add_many([row])[0]

    def since(self, after: int, limit: int, *, recipient: str | None = None) -> tuple[list[Held], int]:
        """Live envelopes with seq > ``after`` in seq order, at most ``limit`` (1..1000), only those
        addressed to ``recipient`` when given; and the cursor to pass next (``after`` when none)."""
        if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after <= _MAX_INT:
            raise ValidationError("after", "must be a sequence number (a non-negative integer)")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise ValidationError("limit", f"must be an integer from 1 to {MAX_PAGE}")
        where, params = "seq > ? AND expires_at > ?", [after, self._clock()]
        if recipient is not None:
            _hex_or_none({"recipient": recipient}, "recipient")
            where += " AND recipient = ?"
            params.append(bytes.fromhex(recipient))
        rows = self._store.query(
            f"SELECT {_COLUMNS} FROM envelopes WHERE {where} ORDER BY seq LIMIT ?", [*params, limit]
        )
        items = [_held(r) for r in rows]
        return items, items[-1].seq if items else after

    def get(self, envelope_id: str) -> Held | None:
        """The held envelope with this hex id (expired or not, until pruned)."""
        key = blob_id(envelope_id)
        if key is None:
            return None
        where, params = id_in([key])
        row = self._store.query_one(f"SELECT {_COLUMNS} FROM envelopes WHERE {where}", params)
        return None if row is None else _held(row)

    def by_ref(self, ref: str, kind: str | None = None) -> list[Held]:
        """Held envelopes about ``ref`` (hex id), optionally of one kind, in seq order."""
        key = blob_id(ref)
        if key is None:
            return []
        sql, params = f"SELECT {_COLUMNS} FROM envelopes WHERE ref = ?", [key]
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        return [_held(r) for r in self._store.query(sql + " ORDER BY seq", params)]

    def prune(self, now: int) -> int:
        """Drop every envelope dead at ``now``; how many went."""
        with self._store.transaction():
            self._store.execute("DELETE FROM authors WHERE held_until <= ?", [now])
            return self._store.execute("DELETE FROM envelopes WHERE expires_at <= ?", [now])

    def count_by_kind(self) -> dict[str, int]:
        rows = self._store.query("SELECT kind, count(*) AS n FROM envelopes GROUP BY kind ORDER BY kind")
        return {r["kind"]: r["n"] for r in rows}
