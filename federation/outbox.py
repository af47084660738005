"""The persistent delivery queue: what this node still owes each peer, in SQLite (migrations 5, 11).

Two kinds of storage, one queue per peer: a row per delivery (``outbox_rows``: direct envelopes,
access pushes, anything for one peer) and relayed gossip stored once with a cursor per peer
(``federation.relaylog``, written by ``relay``); ``due`` serves a peer's rows first, then its relayed
payloads in order, and every other method takes the ids of both. The ``outbox`` view lists both as
one row per (peer, payload). A fleet's PostgreSQL outbox (fleet/outbox.py) keeps the row-per-delivery
table (``payload_once`` False there: its store has no relay log): ``relay`` queues a row per peer.

Each peer's queue is strictly FIFO: ``due`` hands out a batch only from the head of the queue, and a
failed batch moves the head's ``next_at`` by the backoff, so nothing behind it overtakes it. Because
the queue lives in the store, a node killed at any moment re-sends on restart whatever was not
acknowledged (delivery is at-least-once; receivers deduplicate by envelope id).

A delivery ends in one of two places: deleted when the peer acknowledged it, or moved to
``outbox_dead`` with a reason (``max_attempts``, ``expired``, ``rejected``) so it can be reported
(and a ``max_attempts`` one sent again: ``peers.resend``). Dead letters are bounded, since a peer that
refuses everything it is sent would otherwise have this node keep a copy of every envelope relayed to
it: a peer's newest ``dead_per_peer`` are kept (by when they died) and ``prune_dead`` drops those
older than ``dead_kept_ms`` (the runtime's sweep, with expired envelopes; migration 17's index).
Every method is synchronous over a ``Store``; the trio edge (federation/delivery.py) runs them through
``AsyncStore``. Times are integer milliseconds passed in by the caller. Expiry happens inside ``due``,
so nobody else sees it: ``on_expired(peer, count)`` is told of each peer's expired dead letters (in the
store's thread; the Deliverer hands them to the operator log).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from federation import relaylog
from federation.backoff import Backoff
from federation.kinds import ACCESS_KIND, GOSSIP_KIND, access_refs_of
from node.errors import ValidationError
from node.store import Store

DEAD_REASONS = ("max_attempts", "expired", "rejected")
DEAD_PER_PEER = 10_000  # dead letters kept for a peer, its newest (~5 MB of relayed intents)
DEAD_KEPT_MS = 30 * 86_400_000  # and for at most 30 days
_COLUMNS = "id, peer, kind, ref, payload, created_at, expires_at, attempts, next_at, last_error"


@dataclass(frozen=True)
class Delivery:
    id: int
    peer: str
    kind: str
    ref: str | None
    payload: bytes
    created_at: int
    expires_at: int | None
    attempts: int
    next_at: int
    last_error: str | None


@dataclass(frozen=True)
class DeadDelivery:
    id: int
    peer: str
    kind: str
    ref: str | None
    payload: bytes
    created_at: int
    attempts: int
    reason: str
    last_error: str | None
    dead_at: int


class Outbox:
    """The queue over one Store, with its retry policy (``backoff``, ``max_attempts``, ``rand``)."""


    def __init__(
        self,
        store: Store,
        *,
        backoff: Backoff = Backoff(),
        max_attempts: int = 20,
        rand: Callable[[], float] = random.random,
        dead_per_peer: int = DEAD_PER_PEER,
        dead_kept_ms: int = DEAD_KEPT_MS,
    ) -> None:
        if max_attempts < 1 or dead_per_peer < 1:
            raise ValueError("max_attempts and dead_per_peer must be at least 1")
        self.store = store
        self.backoff = backoff
        self.max_attempts = max_attempts
        self.dead_per_peer = dead_per_peer
        self.dead_kept_ms = dead_kept_ms
        self._rand = rand
        # Relayed gossip in the relay log where the store has it (SQLite since migration 12); a fleet's
        # PostgreSQL outbox is one table with a row per delivery.
        self.payload_once = "relay_peers" in store.table_names()
        self._rows = "outbox_rows" if self.payload_once else "outbox"  # the per-delivery table
        self.relays = relaylog.RelayLog(store)
        self.on_expired: Callable[[str, int], None] | None = None

    # -- writes ------------------------------------------------------------------------------------

    def enqueue(
        self,
        peer: str,
        payload: bytes,
        *,
        kind: str,
        now: int,
        ref: str | None = None,
        expires_at: int | None = None,
    ) -> int | None:
        """Queue ``payload`` for ``peer`` inside the caller's transaction (so a payload is queued iff
        what produced it was stored). Returns the delivery id, or None if ``(peer, kind, ref)`` is
        already queued. Tell the Deliverer (``notify``) after the transaction commits."""
        if not isinstance(payload, bytes | bytearray):
            raise ValidationError("payload", "must be bytes")
        if not peer or not kind:
            raise ValidationError("peer" if not peer else "kind", "must not be empty")
        row = {
            "peer": peer,
            "kind": kind,
            "ref": ref,
            "payload": bytes(payload),
            "created_at": now,
            "expires_at": expires_at,
            "next_at": now,
        }
        if ref is None:
            return self.store.insert(self._rows, row)
        columns = ", ".join(row)
        marks = ", ".join(f":{c}" for c in row)
        added = self.store.execute(
            f"INSERT INTO {self._rows} ({columns}) VALUES ({marks}) ON CONFLICT (peer, kind, ref) DO NOTHING", row
        )
        if not added:
            return None
        return self.store.query_one("SELECT last_insert_rowid() AS id")["id"]

    def enqueue_many(
        self, deliveries: Sequence[tuple[str, bytes, str, int | None]], *, kind: str, now: int
    ) -> set[str]:
        """Queue many ``(peer, payload, ref, expires_at)`` in the caller's transaction with ONE prepared
        statement (a relayed batch: every envelope for every peer); ``(peer, kind, ref)`` already
        queued are skipped as ``enqueue`` does. Returns the peers given deliveries (wake them after
        the commit; a peer whose rows were all already queued may be among them: waking it is harmless)."""
        if not kind:
            raise ValidationError("kind", "must not be empty")
        rows = []
        for peer, payload, ref, expires_at in deliveries:
            if not peer or not ref:
                raise ValidationError("peer" if not peer else "ref", "must not be empty")
            rows.append((peer, kind, ref, bytes(payload), now, expires_at, now))
        added = self.store.execute_many(
            f"INSERT INTO {self._rows} (peer, kind, ref, payload, created_at, expires_at, next_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (peer, kind, ref) DO NOTHING",
            rows,
        )
        return {row[0] for row in rows} if added else set()

    def relay(self, items: Sequence[tuple[bytes, str, int | None, Sequence[str]]], *, now: int) -> set[str]:
        """Queue relayed gossip in the caller's transaction: each ``(payload, ref, expires_at, peers)``
        stored ONCE, for those peers (their cursors move as each acknowledges it). Peers beyond the
        relay log's slots, and a store without it, get a row each (``enqueue_many``). The peers
        given deliveries (wake them after the commit)."""
        if not self.payload_once:
            return self.enqueue_many(
                [(peer, payload, ref, expires) for payload, ref, expires, peers in items for peer in peers],
                kind=GOSSIP_KIND,
                now=now,
            )
        # A relayed batch names few distinct lists of peers (often one for every item): each is
        # looked at once.
        lists = {tuple(peers) for *_, peers in items}
        slots = self.relays.slots({peer for peers in lists for peer in peers})
        masks: dict[tuple[str, ...], tuple[int, list[str]]] = {}
        for peers in lists:
            targets, beyond = 0, []
            for peer in peers:
                if peer in slots:
                    targets |= 1 << slots[peer]
                else:
                    beyond.append(peer)
            masks[peers] = (targets, beyond)
        rows, spill = [], []
        for payload, ref, expires, peers in items:
            targets, beyond = masks[tuple(peers)]
            if targets:
                rows.append((bytes(payload), ref, expires, targets))
            spill += [(peer, payload, ref, expires) for peer in beyond]
        if rows:
            self.relays.add(rows, now)
        woken = {peer for peers in lists for peer in peers if peer in slots}
        return woken | (self.enqueue_many(spill, kind=GOSSIP_KIND, now=now) if spill else set())

    def due(self, peer: str, now: int, *, limit: int = 100, max_bytes: int = 1 << 20) -> list[Delivery]:
        """The next batch for ``peer``: the head of its queue if the head is due, then the deliveries
        behind it of the same kind, up to ``limit`` rows and ``max_bytes`` of payload (at least one).
        Expired deliveries of the peer are dead-lettered first: sending them would be wasted."""
        limit = max(limit, 1)
        with self.store.transaction():
            self._bury(
                "expired", now, None, "peer = ? AND expires_at IS NOT NULL AND expires_at <= ?", (peer, now)
            )
            rows = self.store.query(
                f"SELECT {_COLUMNS} FROM {self._rows} WHERE peer = ? ORDER BY id LIMIT ?", (peer, limit)
            )
            if self.payload_once and len(rows) < limit:
                rows += self._relayed(peer, now, limit - len(rows))
        if not rows or rows[0]["next_at"] > now:
            return []
        batch: list[Delivery] = []
        size = 0
        for row in rows:
            size += len(row["payload"])
            # A relayed payload deferred (a Retry-After, a backoff) waits behind a due direct row.
            if batch and (row["kind"] != rows[0]["kind"] or size > max_bytes or row["next_at"] > now):
                break
            batch.append(Delivery(**row))
        return batch

    def _relayed(self, peer: str, now: int, limit: int) -> list[dict]:
        """The peer's next relayed payloads as delivery rows (expired ones dead-lettered first)."""
        while True:
            pending = self.relays.pending(peer, limit)
            expired = [r for r in pending if r["expires_at"] is not None and r["expires_at"] <= now]
            if not expired:
                break
            self._bury_relayed("expired", now, None, [_relay_id(r) for r in expired])
            if self.on_expired is not None:
                self.on_expired(peer, len(expired))
        return [
            {"id": _relay_id(r), "peer": peer, "kind": GOSSIP_KIND, "ref": r["ref"], "payload": r["payload"],
             "created_at": r["created_at"], "expires_at": r["expires_at"], "attempts": r["attempts"],
             "next_at": r["next_at"], "last_error": r["last_error"]}
            for r in pending
        ]  # fmt: skip

    def mark_delivered(self, ids: Sequence[int]) -> None:
        rows, relayed = self._split(ids)
        with self.store.transaction():
            if rows:
                self.store.execute(f"DELETE FROM {self._rows} WHERE id IN ({_marks(rows)})", list(rows))
            for slot, seqs in _by_slot(relayed).items():
                self.relays.settle(slot, seqs)
                self.store.execute("UPDATE relay_peers SET attempts = 0, next_at = 0 WHERE slot = ?", [slot])

    def mark_failed(self, ids: Sequence[int], now: int, error: str) -> list[int]:
        """Count one more attempt for each delivery. Those that reached ``max_attempts`` are
        dead-lettered (their ids are returned); the rest wait one backoff delay, drawn once for the
        batch so it stays together and in order."""
        if not ids:
            return []
        rows, relayed = self._split(ids)
        dead: list[int] = []
        with self.store.transaction():
            if rows:
                dead += self._fail_rows(rows, now, error)
            for slot, seqs in _by_slot(relayed).items():  # the cursor's attempts are its head's
                self.store.execute(
                    "UPDATE relay_peers SET attempts = attempts + 1, last_error = ? WHERE slot = ?", [error, slot]
                )
                cursor = self.store.query_one("SELECT attempts FROM relay_peers WHERE slot = ?", [slot])
                attempts = cursor["attempts"] if cursor else 1
                if attempts >= self.max_attempts:
                    ids_of = [relaylog.RELAY_BASE + seq * 64 + slot for seq in seqs]
                    dead += self._bury_relayed("max_attempts", now, None, ids_of)
                    self.relays.set_state(slot, attempts=0)
                else:
                    self.relays.set_state(slot, next_at=now + self.backoff.delay(attempts, self._rand))
        return dead

    def _fail_rows(self, ids: Sequence[int], now: int, error: str) -> list[int]:
        t = self._rows
        self.store.execute(
            f"UPDATE {t} SET attempts = attempts + 1, last_error = ? WHERE id IN ({_marks(ids)})", [error, *ids]
        )
        dead = self._bury(
            "max_attempts", now, None, f"id IN ({_marks(ids)}) AND attempts >= ?", [*ids, self.max_attempts]
        )
        # The oldest delivery has failed most often: its count sets the delay for the batch.
        head = self.store.query_one(f"SELECT max(attempts) AS attempts FROM {t} WHERE id IN ({_marks(ids)})", list(ids))
        if head and head["attempts"]:
            next_at = now + self.backoff.delay(head["attempts"], self._rand)
            self.store.execute(f"UPDATE {t} SET next_at = ? WHERE id IN ({_marks(ids)})", [next_at, *ids])
        return dead

    def defer(self, ids: Sequence[int], next_at: int, error: str) -> None:
        """The peer refused these for a retryable reason (``rate_limited``, ``busy``, a 429): send them
        again at ``next_at``. Not an attempt that failed, so it never dead-letters them (their expiry
        still does); they keep their place at the head of the queue."""
        if not ids:
            return
        rows, relayed = self._split(ids)
        with self.store.transaction():
            if rows:
                self.store.execute(
                    f"UPDATE {self._rows} SET next_at = ?, last_error = ? WHERE id IN ({_marks(rows)})",
                    [next_at, error, *rows],
                )
            for slot in _by_slot(relayed):
                self.relays.set_state(slot, next_at=next_at, error=error)

    def settle(self, delivered: Sequence[int], deferred: Sequence[int], next_at: int, error: str) -> None:
        """One answered batch: ``delivered`` are gone, ``deferred`` wait until ``next_at`` (one
        transaction, so a kill between the two cannot lose the deferred ones nor resend the others)."""
        with self.store.transaction():
            if delivered:
                self.mark_delivered(delivered)
            self.defer(deferred, next_at, error)

    def mark_rejected(self, ids: Sequence[int], now: int, error: str) -> list[int]:
        """The peer refused these for good (resending the same bytes cannot help): dead-letter them."""
        if not ids:
            return []
        rows, relayed = self._split(ids)
        with self.store.transaction():
            dead = self._bury("rejected", now, error, f"id IN ({_marks(rows)})", list(rows)) if rows else []
            return dead + self._bury_relayed("rejected", now, error, relayed)

    def _bury(self, reason: str, now: int, error: str | None, where: str, params: Sequence[object]) -> list[int]:
        t = self._rows
        rows = self.store.query(f"SELECT id, peer FROM {t} WHERE {where} ORDER BY id", params)
        ids = [r["id"] for r in rows]
        if ids:
            self._to_dead(t, reason, now, error, ids)
            self.store.execute(f"DELETE FROM {t} WHERE id IN ({_marks(ids)})", ids)
            if reason == "expired" and self.on_expired is not None:
                for peer, count in Counter(r["peer"] for r in rows).items():
                    self.on_expired(peer, count)
        return ids

    def _bury_relayed(self, reason: str, now: int, error: str | None, ids: Sequence[int]) -> list[int]:
        """Dead-letter relayed deliveries: a copy for the peer in ``outbox_dead``, settled in the log."""
        if not ids:
            return []
        self._to_dead("outbox", reason, now, error, ids)  # the view has the per-peer row
        for slot, seqs in _by_slot(ids).items():
            self.relays.settle(slot, seqs)
        return list(ids)

    def _to_dead(self, table: str, reason: str, now: int, error: str | None, ids: Sequence[int]) -> None:
        self.store.execute(
            "INSERT INTO outbox_dead (id, peer, kind, ref, payload, created_at, attempts, reason, "
            "last_error, dead_at) SELECT id, peer, kind, ref, payload, created_at, attempts, ?, "
            f"coalesce(?, last_error), ? FROM {table} WHERE id IN ({_marks(ids)})",
            [reason, error, now, *ids],
        )
        peers = self.store.query(f"SELECT DISTINCT peer FROM outbox_dead WHERE id IN ({_marks(ids)})", list(ids))
        for row in peers:
            self._trim_dead(row["peer"])

    def _trim_dead(self, peer: str) -> None:
        """Keep ``peer``'s newest ``dead_per_peer`` dead letters (by when they died, then id)."""
        oldest_kept = self.store.query_one(
            "SELECT dead_at, id FROM outbox_dead WHERE peer = ? ORDER BY dead_at DESC, id DESC LIMIT 1 OFFSET ?",
            (peer, self.dead_per_peer - 1),
        )
        if oldest_kept is not None:
            at, last = oldest_kept["dead_at"], oldest_kept["id"]
            self.store.execute(
                "DELETE FROM outbox_dead WHERE peer = ? AND (dead_at < ? OR (dead_at = ? AND id < ?))",
                [peer, at, at, last],
            )

    def prune_dead(self, now: int) -> int:
        """Drop the dead letters older than ``dead_kept_ms``; how many went."""
        with self.store.transaction():
            return self.store.execute("DELETE FROM outbox_dead WHERE dead_at <= ?", [now - self.dead_kept_ms])

    def _split(self, ids: Sequence[int]) -> tuple[list[int], list[int]]:
        """(per-row ids, relayed ids)."""
        if not self.payload_once:
            return list(ids), []
        rows = [i for i in ids if not relaylog.is_relayed(i)]
        return rows, [i for i in ids if relaylog.is_relayed(i)]

    def drop_access(self, peer: str, grant_hex: str) -> int:
        """Drop the pushes of a grant's data still queued for ``peer`` (the grant ended: they must never
        be sent); how many. Joins the caller's transaction."""
        with self.store.transaction():
            return self.store.execute(
                f"DELETE FROM {self._rows} WHERE peer = ? AND kind = ? AND ref LIKE ?",
                [peer, ACCESS_KIND, access_refs_of(grant_hex)],
            )

    def resend(self, deliveries: Sequence[tuple[int, int | None]], now: int) -> int:
        """Queue these dead letters (``(dead id, expires_at)``) again, due now with their attempts
        reset, and drop them from ``outbox_dead``; one still queued under the same ``(peer, kind, ref)``
        is only dropped. How many were queued. The caller decides which are still worth sending."""
        with self.store.transaction():
            queued = self.store.execute_many(
                f"INSERT INTO {self._rows} (peer, kind, ref, payload, created_at, expires_at, next_at) "
                "SELECT peer, kind, ref, payload, created_at, ?, ? FROM outbox_dead WHERE id = ? "
                "ON CONFLICT (peer, kind, ref) DO NOTHING",
                [(expires_at, now, dead_id) for dead_id, expires_at in deliveries],
            )
            self.store.execute_many("DELETE FROM outbox_dead WHERE id = ?", [(dead_id,) for dead_id, _ in deliveries])
        return queued

    # -- reads -------------------------------------------------------------------------------------

    def next_at(self, peer: str) -> int | None:
        """When the head of ``peer``'s queue is due (None when the queue is empty)."""
        row = self.store.query_one(f"SELECT next_at FROM {self._rows} WHERE peer = ? ORDER BY id LIMIT 1", (peer,))
        if row is not None:
            return row["next_at"]
        if self.payload_once and self.relays.has_pending(peer):
            cursor = self.relays.cursor(peer)
            return cursor["next_at"] if cursor else None
        return None

    def peers(self) -> list[str]:
        """Peers with something queued (what a restarted node must resume sending to)."""
        found = {r["peer"] for r in self.store.query(f"SELECT DISTINCT peer FROM {self._rows}")}
        if self.payload_once:
            found |= {r["peer"] for r in self.store.query("SELECT peer FROM relay_peers") if self.relays.has_pending(r["peer"])}
        return sorted(found)

    def pending_counts(self) -> dict[str, int]:
        rows = self.store.query("SELECT peer, count(*) AS n FROM outbox GROUP BY peer ORDER BY peer")
        return {r["peer"]: r["n"] for r in rows}

    def dead(self, peer: str | None = None, reason: str | None = None) -> list[DeadDelivery]:
        """The dead letters, of ``peer`` and for ``reason`` when given, oldest first."""
        found = [("peer = ?", peer), ("reason = ?", reason)]
        where = " AND ".join(clause for clause, value in found if value is not None)
        rows = self.store.query(
            "SELECT id, peer, kind, ref, payload, created_at, attempts, reason, last_error, dead_at "
            f"FROM outbox_dead {'WHERE ' + where if where else ''} ORDER BY id",
            [value for _, value in found if value is not None],
        )
        return [DeadDelivery(**r) for r in rows]


def _marks(ids: Sequence[object]) -> str:
    return ", ".join("?" for _ in ids)


def _relay_id(row: dict) -> int:
    return relaylog.RELAY_BASE + row["seq"] * 64 + row["slot"]


def _by_slot(ids: Sequence[int]) -> dict[int, list[int]]:
    """Relayed delivery ids grouped by slot: their seqs."""
    out: dict[int, list[int]] = {}
    for i in ids:
        seq, slot = relaylog.split(i)
        out.setdefault(slot, []).append(seq)
    return out
