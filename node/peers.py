"""Peers: the nodes this node gossips with, pinned by public key (the ``peers`` table).

A peer is ``added`` by its operator (``vrm peers add URL``: the key fetched then is pinned) or
``announced`` by the peer itself with a signed ``POST /v1/hello``. An announcement updates the role and
name of the key that signed it and never the key of a row: the key is who the peer is. A peer
without a URL (a node behind NAT) pulls from us and is never pushed to. Contact results and the pull
cursors (the last ``seq`` taken from the peer's gossip and inbox) live here too.

Strangers cannot steer this node (issue 10): only ``added`` peers are gossip targets (``pushable``:
fan-out, pulls, greetings). The URL a hello gives is a *claim* (``claimed_url``) that the node
verifies before any use (federation/peerverify.py: allowed address, and ``GET /v1/node`` there
answers with the announcer's node id); only then does it become ``url``, where direct messages for
that peer are pushed (``deliverable``). Until then an announced peer is served by pull (its inbox).
An added peer's hello is a claim too, and the URL held stays in use until it is verified: discovery
adds strangers as ``added`` peers, so a pinned key says nothing of the URLs it may later name. At most
``max_announced`` announced peers are kept: a new one evicts the one heard from least recently,
unverified first.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any

from node.errors import ConflictError, IdentityError, NotFoundError, ValidationError
from node.nodeid import decode_node_id, encode_node_id
from node.prefix import is_hex_prefix, rows_by_prefix
from node.store import Clock, Store, wall_clock_ms

PEER_ROLES = ("person", "vendor", "relay")
PEER_SOURCES = ("added", "announced")
MAX_ANNOUNCED = 1_000  # announced peers kept (each costs a row and, once, one verification request)
CLAIM_RETRY_MS = 10 * 60_000  # a URL that failed verification is not tried again sooner
MAX_URL = 2048
MAX_NAME = 200
MAX_ERROR = 500
_MAX_INT = 2**63 - 1


@dataclass(frozen=True)
class Peer:
    id: int
    public_key: str  # hex
    node_id: str
    url: str | None
    role: str
    name: str
    source: str  # "added" | "announced"
    added_at: int
    last_contact_at: int | None
    last_error: str | None
    failures: int
    pull_cursor: int
    inbox_cursor: int
    claimed_url: str | None = None  # a URL said in a hello, not verified yet
    claim_retry_at: int | None = None  # a failed claim is not verified again before this (ms)
    verified_at: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "public_key": self.public_key,
            "node_id": self.node_id,
            "url": self.url,
            "role": self.role,
            "name": self.name,
            "source": self.source,
            "added_at": self.added_at,
            "last_contact_at": self.last_contact_at,
            "last_error": self.last_error,
            "failures": self.failures,
            "pull_cursor": self.pull_cursor,
            "inbox_cursor": self.inbox_cursor,
            "claimed_url": self.claimed_url,
            "verified_at": self.verified_at,
        }


def check_url(url: object) -> str | None:
    """A peer's base URL, ``http(s)://host[:port][/path]`` without a trailing ``/``; None for none."""
    if url is None:
        return None
    if not isinstance(url, str):
        raise ValidationError("url", "must be text")
    text = url.strip().rstrip("/")
    if not text or len(text) > MAX_URL or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in text):
        raise ValidationError("url", f"{url!r} is not a URL (one line, at most {MAX_URL} characters)")
    try:
        parts = urllib.parse.urlsplit(text)
        parts.port  # noqa: B018  (raises ValueError for a port out of range)
    except ValueError:
        raise ValidationError("url", f"{url!r} is not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValidationError("url", f"{url!r} is not an http:// or https:// base URL")
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc.lower(), parts.path, "", ""))


def _key(public_key: object) -> str:
    if not isinstance(public_key, (bytes, bytearray)) or len(public_key) != 32:
        raise ValidationError("public_key", "must be 32 bytes")
    return bytes(public_key).hex()


def _role(role: object) -> str:
    if role not in PEER_ROLES:
        raise ValidationError("role", f"{role!r} is not one of {', '.join(PEER_ROLES)}")
    return role  # type: ignore[return-value]


def _name(name: object) -> str:
    if not isinstance(name, str):
        raise ValidationError("name", "must be text")
    name = name.strip()
    if len(name) > MAX_NAME or any(ord(c) < 32 for c in name):
        raise ValidationError("name", f"a name is one line of at most {MAX_NAME} characters")
    return name


def _peer(row: dict[str, Any]) -> Peer:
    return Peer(**{f: row[f] for f in Peer.__dataclass_fields__})


class Peers:
    """The ``peers`` table over one Store."""

    def __init__(self, store: Store, *, clock: Clock = wall_clock_ms) -> None:
        self._store = store
        self._clock = clock

    def add(
        self, *, public_key: bytes, url: str | None, role: str, name: str, source: str = "added"
    ) -> Peer:
        """Pin a new peer. An ``announced`` peer with this key becomes ``added`` (URL, role and name
        replaced); ConflictError if the key is already a peer otherwise."""
        key, url, role, name = _key(public_key), check_url(url), _role(role), _name(name)
        if source not in PEER_SOURCES:
            raise ValidationError("source", f"{source!r} is not one of {', '.join(PEER_SOURCES)}")
        now = self._clock()
        with self._store.transaction():
            existing = self.by_key(key)
            if existing is not None:
                if existing.source == "added" or source == "announced":
                    raise ConflictError(f"{existing.node_id} is already a peer (#{existing.id})")
                self._store.execute(
                    "UPDATE peers SET source = 'added', url = ?, role = ?, name = ?, claimed_url = NULL WHERE id = ?",
                    [url, role, name, existing.id],
                )
            else:
                row = {"public_key": key, "node_id": encode_node_id(bytes(public_key)), "url": url}
                self._store.insert(
                    "peers", {**row, "role": role, "name": name, "source": source, "added_at": now}
                )
        return self._by_key_or_fail(key)

    def announce(
        self, *, public_key: bytes, url: str | None, role: str, name: str, max_announced: int = MAX_ANNOUNCED
    ) -> Peer:
        """Record what the peer signing a ``/v1/hello`` says of itself: a new ``announced`` peer, or the
        known one's role and name updated and its contact time set (its source kept). The URL is only
        claimed (``claimed_url``), whoever says it, and verified before any use (``settle_claim``);
        the URL held stays in use meanwhile. The URL held, or none (behind NAT), is no claim, and no
        claim is taken before ``claim_retry_at`` (the peer's last claim failed)."""
        key, url, role, name = _key(public_key), check_url(url), _role(role), _name(name)
        now = self._clock()
        with self._store.transaction():
            existing = self.by_key(key)
            if existing is None:
                self._make_room(max_announced)
                self._store.insert(
                    "peers",
                    {
                        "public_key": key,
                        "node_id": encode_node_id(bytes(public_key)),
                        "url": None,
                        "claimed_url": url,
                        "role": role,
                        "name": name,
                        "source": "announced",
                        "added_at": now,
                        "last_contact_at": now,
                    },
                )
            else:
                claim = existing.claimed_url
                retry = existing.claim_retry_at
                if url is not None and url != existing.url and (retry is None or retry <= now):
                    claim = url
                self._store.execute(
                    "UPDATE peers SET claimed_url = ?, role = ?, name = ?, last_contact_at = ? WHERE id = ?",
                    [claim, role, name, now, existing.id],
                )
        return self._by_key_or_fail(key)

    def _make_room(self, max_announced: int) -> None:
        count = self._store.query_one("SELECT count(*) AS n FROM peers WHERE source = 'announced'")["n"]
        if count < max_announced:
            return
        self._store.execute(
            "DELETE FROM peers WHERE id IN (SELECT id FROM peers WHERE source = 'announced'"
            " ORDER BY url IS NOT NULL, coalesce(last_contact_at, added_at), id LIMIT ?)",
            [count - max_announced + 1],
        )

    def claims(self, limit: int = MAX_ANNOUNCED) -> list[Peer]:
        """Peers, added or announced, whose claimed URL waits for verification (oldest claim first)."""
        rows = self._store.query(
            "SELECT * FROM peers WHERE claimed_url IS NOT NULL"
            " ORDER BY last_contact_at, id LIMIT ?",
            [limit],
        )
        return [_peer(r) for r in rows]

    def settle_claim(self, public_key_hex: str, url: str, ok: bool, error: str | None = None) -> None:
        """The verification of ``url`` claimed by the peer (added or announced, its source kept):
        verified (it becomes the peer's URL) or not (forgotten, the URL held kept; no claim of this
        peer is taken for CLAIM_RETRY_MS). A claim replaced meanwhile is left alone."""
        now = self._clock()
        with self._store.transaction():
            if ok:
                self._store.execute(
                    "UPDATE peers SET url = claimed_url, claimed_url = NULL, verified_at = ?, claim_retry_at = NULL"
                    " WHERE public_key = ? AND claimed_url = ?",
                    [now, public_key_hex, url],
                )
            else:
                self._store.execute(
                    "UPDATE peers SET claimed_url = NULL, claim_retry_at = ?, failures = failures + 1, last_error = ?"
                    " WHERE public_key = ? AND claimed_url = ?",
                    [now + CLAIM_RETRY_MS, f"url not verified: {error or 'failed'}"[:MAX_ERROR], public_key_hex, url],
                )

    def get(self, ref: object) -> Peer:
        """The peer named by its node id, hex public key (or 6+ leading hex characters), numeric id or URL."""
        if isinstance(ref, bool) or not isinstance(ref, (str, int)):
            raise ValidationError("peer", "refer to a peer by node id, public key, number or URL")
        text = str(ref).strip()
        if isinstance(ref, int) or text.isdigit():
            number = int(text)
            row = None
            if number <= _MAX_INT:
                row = self._store.query_one("SELECT * FROM peers WHERE id = ?", [number])
        elif text.lower().startswith("vrm1"):
            try:
                key = decode_node_id(text)
            except IdentityError as exc:
                raise ValidationError("peer", str(exc)) from None
            row = self._store.query_one("SELECT * FROM peers WHERE public_key = ?", [key.hex()])
        elif text.lower().startswith(("http://", "https://")):
            url = check_url(text)
            rows = self._store.query("SELECT * FROM peers WHERE url = ? ORDER BY id LIMIT 2", [url])
            if len(rows) > 1:
                raise ValidationError("peer", f"{ref!r} is the URL of more than one peer; give its node id")
            row = rows[0] if rows else None
        elif is_hex_prefix(text.lower()):
            rows = rows_by_prefix(self._store, "peers", "public_key", text.lower())
            if len(rows) > 1:
                raise ValidationError("peer", f"{ref!r} matches more than one peer; give more characters")
            row = rows[0] if rows else None
        else:
            raise ValidationError("peer", f"{ref!r} is not a node id, public key, peer number or URL")
        if row is None:
            raise NotFoundError("peer", ref)
        return _peer(row)

    def by_key(self, public_key_hex: str) -> Peer | None:
        row = self._store.query_one("SELECT * FROM peers WHERE public_key = ?", [public_key_hex])
        return None if row is None else _peer(row)

    def list(self) -> list[Peer]:
        return [_peer(r) for r in self._store.query("SELECT * FROM peers ORDER BY id")]

    def pushable(self) -> list[Peer]:
        """Added peers with a URL: those we gossip to, pull from and greet."""
        return self.reachable()[0]

    def deliverable(self) -> list[Peer]:
        """Peers with a usable URL: the added ones and announced ones whose URL was verified (direct
        messages addressed to them are pushed there)."""
        return self.reachable()[1]

    def reachable(self) -> tuple[list[Peer], list[Peer]]:
        """(``pushable``, ``deliverable``) in one read: the pushable are the added peers among the
        deliverable ones (the ingest transaction asks for both)."""
        deliverable = [_peer(r) for r in self._store.query("SELECT * FROM peers WHERE url IS NOT NULL ORDER BY id")]
        return [p for p in deliverable if p.source == "added"], deliverable

    def remove(self, ref: object) -> Peer:
        """Forget a peer; the removed row."""
        with self._store.transaction():
            peer = self.get(ref)
            self._store.execute("DELETE FROM peers WHERE id = ?", [peer.id])
        return peer

    def record_contact(self, public_key_hex: str, ok: bool, error: str | None = None) -> None:
        """Note the outcome of talking to a peer: success clears its failures, a failure counts one
        and keeps ``error``. A key that is no peer (removed meanwhile) is ignored."""
        with self._store.transaction():
            if ok:
                self._store.execute(
                    "UPDATE peers SET last_contact_at = ?, failures = 0, last_error = NULL"
                    " WHERE public_key = ?",
                    [self._clock(), public_key_hex],
                )
            else:
                detail = (error or "failed")[:MAX_ERROR]
                self._store.execute(
                    "UPDATE peers SET failures = failures + 1, last_error = ? WHERE public_key = ?",
                    [detail, public_key_hex],
                )

    def set_cursor(self, public_key_hex: str, *, pull: int | None = None, inbox: int | None = None) -> None:
        """Remember how far we pulled a peer's gossip (``pull``) and inbox (``inbox``)."""
        changes = {}
        for column, value in (("pull_cursor", pull), ("inbox_cursor", inbox)):
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_INT:
                raise ValidationError(column, "must be a sequence number (a non-negative integer)")
            changes[column] = value
        if not changes:
            return
        assignments = ", ".join(f"{column} = ?" for column in changes)
        with self._store.transaction():
            self._store.execute(
                f"UPDATE peers SET {assignments} WHERE public_key = ?", [*changes.values(), public_key_hex]
            )

    def _by_key_or_fail(self, key: str) -> Peer:
        peer = self.by_key(key)
        if peer is None:  # pragma: no cover - just written in the same call
            raise NotFoundError("peer", key)
        return peer

