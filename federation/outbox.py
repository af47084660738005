"""The persistent delivery queue: what this node still owes each peer, in SQLite (migration 5).

Each peer's queue is strictly FIFO: ``due`` hands out a batch only from the head of the queue, and a
failed batch moves the head's ``next_at`` by the backoff, so nothing behind it overtakes it. Because
the queue lives in the store, a node killed at any moment re-sends on restart whatever was not
acknowledged (delivery is at-least-once; receivers deduplicate by envelope id).

A delivery ends in one of two places: deleted when the peer acknowledged it, or moved to
``outbox_dead`` with a reason (``max_attempts``, ``expired``, ``rejected``) so it can be reported.
Every method is synchronous over a ``Store``; the trio edge (federation/delivery.py) runs them through
``AsyncStore``. Times are integer milliseconds passed in by the caller.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from federation.backoff import Backoff
from node.errors import ValidationError
from node.store import Store

DEAD_REASONS = ("max_attempts", "expired", "rejected")
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
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.store = store
        self.backoff = backoff
        self.max_attempts = max_attempts
        self._rand = rand

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
            return self.store.insert("outbox", row)
        columns = ", ".join(row)
        marks = ", ".join(f":{c}" for c in row)
        added = self.store.execute(
            f"INSERT INTO outbox ({columns}) VALUES ({marks}) ON CONFLICT (peer, kind, ref) DO NOTHING", row
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
            "INSERT INTO outbox (peer, kind, ref, payload, created_at, expires_at, next_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (peer, kind, ref) DO NOTHING",
            rows,
        )
        return {row[0] for row in rows} if added else set()

    def due(self, peer: str, now: int, *, limit: int = 100, max_bytes: int = 1 << 20) -> list[Delivery]:
        """The next batch for ``peer``: the head of its queue if the head is due, then the deliveries
        behind it of the same kind, up to ``limit`` rows and ``max_bytes`` of payload (at least one).
        Expired deliveries of the peer are dead-lettered first: sending them would be wasted."""
        with self.store.transaction():
            self._bury(
                "expired", now, None, "peer = ? AND expires_at IS NOT NULL AND expires_at <= ?", (peer, now)
            )
            rows = self.store.query(
                f"SELECT {_COLUMNS} FROM outbox WHERE peer = ? ORDER BY id LIMIT ?", (peer, max(limit, 1))
            )
        if not rows or rows[0]["next_at"] > now:
            return []
        batch: list[Delivery] = []
        size = 0
        for row in rows:
            size += len(row["payload"])
            if batch and (row["kind"] != rows[0]["kind"] or size > max_bytes):
                break
            batch.append(Delivery(**row))
        return batch

    def mark_delivered(self, ids: Sequence[int]) -> None:
        with self.store.transaction():
            self.store.execute(f"DELETE FROM outbox WHERE id IN ({_marks(ids)})", list(ids))

    def mark_failed(self, ids: Sequence[int], now: int, error: str) -> list[int]:
        """Count one more attempt for each delivery. Those that reached ``max_attempts`` are
        dead-lettered (their ids are returned); the rest wait one backoff delay, drawn once for the
        batch so it stays together and in order."""
        if not ids:
            return []
        with self.store.transaction():
            self.store.execute(
                f"UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE id IN ({_marks(ids)})",
                [error, *ids],
            )
            dead = self._bury(
                "max_attempts", now, None, f"id IN ({_marks(ids)}) AND attempts >= ?", [*ids, self.max_attempts]
            )
            # The oldest delivery has failed most often: its count sets the delay for the batch.
            head = self.store.query_one(
                f"SELECT max(attempts) AS attempts FROM outbox WHERE id IN ({_marks(ids)})", list(ids)
            )
            if head and head["attempts"]:
                next_at = now + self.backoff.delay(head["attempts"], self._rand)
                self.store.execute(f"UPDATE outbox SET next_at = ? WHERE id IN ({_marks(ids)})", [next_at, *ids])
        return dead

    def defer(self, ids: Sequence[int], next_at: int, error: str) -> None:
        """The peer refused these for a retryable reason (``rate_limited``, ``busy``, a 429): send them
        again at ``next_at``. Not an attempt that failed, so it never dead-letters them (their expiry
        still does); they keep their place at the head of the queue."""
        if not ids:
            return
        with self.store.transaction():
            self.store.execute(
                f"UPDATE outbox SET next_at = ?, last_error = ? WHERE id IN ({_marks(ids)})",
                [next_at, error, *ids],
            )

    def settle(self, delivered: Sequence[int], deferred: Sequence[int], next_at: int, error: str) -> None:
        """One answered batch: ``delivered`` are gone, ``deferred`` wait until ``next_at`` (one
        transaction, so a kill between the two cannot lose the deferred ones nor resend the others)."""
        with self.store.transaction():
            if delivered:
                self.store.execute(f"DELETE FROM outbox WHERE id IN ({_marks(delivered)})", list(delivered))
            self.defer(deferred, next_at, error)

    def mark_rejected(self, ids: Sequence[int], now: int, error: str) -> list[int]:
        """The peer refused these for good (resending the same bytes cannot help): dead-letter them."""
        if not ids:
            return []
        with self.store.transaction():
            return self._bury("rejected", now, error, f"id IN ({_marks(ids)})", list(ids))

    def _bury(self, reason: str, now: int, error: str | None, where: str, params: Sequence[object]) -> list[int]:
        ids = [r["id"] for r in self.store.query(f"SELECT id FROM outbox WHERE {where} ORDER BY id", params)]
        if ids:
            self.store.execute(
                "INSERT INTO outbox_dead (id, peer, kind, ref, payload, created_at, attempts, reason, "
                "last_error, dead_at) SELECT id, peer, kind, ref, payload, created_at, attempts, ?, "
                f"coalesce(?, last_error), ? FROM outbox WHERE id IN ({_marks(ids)})",
                [reason, error, now, *ids],
            )
            self.store.execute(f"DELETE FROM outbox WHERE id IN ({_marks(ids)})", ids)
        return ids

    # -- reads -------------------------------------------------------------------------------------

    def next_at(self, peer: str) -> int | None:
        """When the head of ``peer``'s queue is due (None when the queue is empty)."""
        row = self.store.query_one("SELECT next_at FROM outbox WHERE peer = ? ORDER BY id LIMIT 1", (peer,))
        return row["next_at"] if row else None

    def peers(self) -> list[str]:
        """Peers with something queued (what a restarted node must resume sending to)."""
        return [r["peer"] for r in self.store.query("SELECT DISTINCT peer FROM outbox ORDER BY peer")]

    def pending_counts(self) -> dict[str, int]:
        rows = self.store.query("SELECT peer, count(*) AS n FROM outbox GROUP BY peer ORDER BY peer")
        return {r["peer"]: r["n"] for r in rows}

    def dead(self, peer: str | None = None) -> list[DeadDelivery]:
        where, params = ("WHERE peer = ?", (peer,)) if peer is not None else ("", ())
        rows = self.store.query(
            "SELECT id, peer, kind, ref, payload, created_at, attempts, reason, last_error, dead_at "
            f"FROM outbox_dead {where} ORDER BY id",
            params,
        )
        return [DeadDelivery(**r) for r in rows]


def _marks(ids: Sequence[object]) -> str:
    return ", ".join("?" for _ in ids)
