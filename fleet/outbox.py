"""Deliveries shared by a fleet's listeners: each is claimed by one listener for a lease.

Every listener runs a deliverer over the same ``outbox`` table. ``due`` claims the rows it returns
(``FOR UPDATE SKIP LOCKED``: a listener never waits for, nor takes, rows another is claiming) until
``now + lease``; a listener that dies holding claims loses them when the lease expires and another
sends them (at least once: the receiving node deduplicates by envelope id). ``next_at`` counts a
claimed row as due when its lease ends, so a waiting deliverer wakes to take it over.

The lease must outlast one send: the claim, one POST (bounded by the deliverer's request timeout)
and the acknowledgement; ``lease_for`` gives three request timeouts. Whatever ends a send (failed,
deferred, settled) releases the claims along with it, so a deferred row waits for its ``next_at``,
not for the rest of a lease.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from federation.outbox import Delivery, Outbox

_COLUMNS = "id, peer, kind, ref, payload, created_at, expires_at, attempts, next_at, last_error"
DEFAULT_LEASE_MS = 30_000


def lease_for(request_timeout: float) -> int:
    """The claim lease (ms) of a deliverer whose requests time out after ``request_timeout`` seconds."""
    return max(1_000, int(request_timeout * 3_000))


class ClaimingOutbox(Outbox):
    def __init__(self, store: Any, *, listener: str, lease_ms: int = DEFAULT_LEASE_MS, **options: Any) -> None:
        super().__init__(store, **options)
        self.listener = listener
        self.lease_ms = lease_ms

    def due(self, peer: str, now: int, *, limit: int = 100, max_bytes: int = 1 << 20) -> list[Delivery]:
        with self.store.transaction():
            self._bury(
                "expired", now, None, "peer = ? AND expires_at IS NOT NULL AND expires_at <= ?", (peer, now)
            )
            rows = self.store.query(
                f"SELECT {_COLUMNS} FROM outbox WHERE peer = ? AND next_at <= ? AND claim_until <= ? "
                "ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED",
                (peer, now, now, max(limit, 1)),
            )
            batch: list[Delivery] = []
            size = 0
            for row in rows:
                size += len(row["payload"])
                if batch and (row["kind"] != rows[0]["kind"] or size > max_bytes):
                    break
                batch.append(Delivery(**{**row, "payload": bytes(row["payload"])}))
            if batch:
                ids = [d.id for d in batch]
                self.store.execute(
                    f"UPDATE outbox SET claimed_by = ?, claim_until = ? WHERE id IN ({_marks(ids)})",
                    [self.listener, now + self.lease_ms, *ids],
                )
        return batch

    def mark_failed(self, ids: Sequence[int], now: int, error: str) -> list[int]:
        with self.store.transaction():
            dead = super().mark_failed(ids, now, error)
            self._release(ids)
        return dead

    def defer(self, ids: Sequence[int], next_at: int, error: str) -> None:
        with self.store.transaction():
            super().defer(ids, next_at, error)
            self._release(ids)

    def _release(self, ids: Sequence[int]) -> None:
        # Only our own claims: after our lease ran out another listener may hold these rows now.
        if ids:
            self.store.execute(
                f"UPDATE outbox SET claimed_by = NULL, claim_until = 0 WHERE claimed_by = ? AND id IN ({_marks(ids)})",
                [self.listener, *ids],
            )

    def next_at(self, peer: str) -> int | None:
        row = self.store.query_one(
            "SELECT min(greatest(next_at, claim_until)) AS at FROM outbox WHERE peer = ?", (peer,)
        )
        return None if row is None or row["at"] is None else int(row["at"])


def _marks(ids: Sequence[object]) -> str:
    return ", ".join("?" for _ in ids)
