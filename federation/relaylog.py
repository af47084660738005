"""Relayed gossip stored once, with a delivery cursor per peer (migration 12; ``Outbox`` uses it).

A relayed batch used to be an outbox row per (envelope, peer): five peers, five copies of every
payload, five index entries of 64-character keys. Here each payload is one ``relay`` row whose
``targets`` bitmask names the peers it is for (a peer is a ``slot``, 0..62, in ``relay_peers``),
and each peer has one cursor row: ``after`` (every targeted row up to it is settled), its
attempts, backoff time and last error, shared by the head of its queue as the per-row outbox
shares them within a batch. A row settled out of order (acknowledged while one before it was
deferred, or dead-lettered) is listed in ``relay_settled`` until the cursor passes it, so nothing is
sent twice once acknowledged. Rows every cursor passed are pruned.

A relayed delivery's id (``Delivery.id``) is ``RELAY_BASE + seq * 64 + slot``: unique per (payload,
peer), above every per-row id (so ``ORDER BY id`` keeps rows first, then relayed payloads in order),
and it tells ``Outbox`` where to settle it. The ``outbox`` view (node/schema_datapath.py, migration 12) shows
both as one queue, with these ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from node.store import Store

RELAY_BASE = 1 << 60
SLOTS = 63  # targets is a signed 64-bit integer
_COLUMNS = "seq, ref, payload, created_at, expires_at"


def is_relayed(delivery_id: int) -> bool:
    return delivery_id >= RELAY_BASE


def split(delivery_id: int) -> tuple[int, int]:
    """(seq, slot) of a relayed delivery id."""
    return divmod(delivery_id - RELAY_BASE, 64)


class RelayLog:
    """The relay tables of one Store (every method joins the caller's transaction)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- writes ------------------------------------------------------------------------------------

    def slots(self, peers: Iterable[str]) -> dict[str, int]:
        """The slot of each peer that has or can get one (at most SLOTS peers ever: the others
        are left out, and the caller queues them per row)."""
        wanted = set(peers)
        if not wanted:
            return {}
        rows = self.store.query("SELECT peer, slot FROM relay_peers")
        have = {r["peer"]: r["slot"] for r in rows}
        free = sorted(set(range(SLOTS)) - set(have.values()))
        start = self._last_seq()
        for peer in sorted(wanted - set(have)):
            if not free:
                break
            slot = free.pop(0)
            self.store.execute("INSERT INTO relay_peers (peer, slot, after) VALUES (?, ?, ?)", [peer, slot, start])
            have[peer] = slot
        return {p: s for p, s in have.items() if p in wanted}

    def add(self, rows: Sequence[tuple[bytes, str, int | None, int]], now: int) -> None:
        """Store ``(payload, ref, expires_at, targets)`` once each."""
        before = self._last_seq()
        targeted = 0
        for row in rows:
            targeted |= row[3]
        self.store.execute_many(
            "INSERT INTO relay (ref, payload, created_at, expires_at, targets) VALUES (?, ?, ?, ?, ?)",
            [(ref, payload, now, expires_at, targets) for payload, ref, expires_at, targets in rows],
        )
        # A peer with nothing pending and nothing in this batch stays settled up to the end, so its
        # cursor never holds back pruning.
        self.store.execute(
            "UPDATE relay_peers SET after = ? WHERE after = ? AND (? >> slot) & 1 = 0",
            [self._last_seq(), before, targeted],
        )

    def settle(self, slot: int, seqs: Sequence[int]) -> None:
        """These rows are done for ``slot`` (delivered or dead): advance its cursor over every
        settled row, remember the ones beyond it, prune what every cursor passed."""
        if not seqs:
            return
        self.store.execute_many(
            "INSERT OR IGNORE INTO relay_settled (slot, seq) VALUES (?, ?)", [(slot, s) for s in seqs]
        )
        after = self._after(slot)
        first = self.store.query_one(
            "SELECT min(r.seq) AS seq FROM relay r WHERE r.seq > ? AND (r.targets >> ?) & 1 "
            "AND NOT EXISTS (SELECT 1 FROM relay_settled s WHERE s.slot = ? AND s.seq = r.seq)",
            [after, slot, slot],
        )
        pending = first["seq"] if first else None
        to = self._last_seq() if pending is None else pending - 1
        if to > after:
            self.store.execute("UPDATE relay_peers SET after = ? WHERE slot = ?", [to, slot])
            self.store.execute("DELETE FROM relay_settled WHERE slot = ? AND seq <= ?", [slot, to])
        self.store.execute("DELETE FROM relay WHERE seq <= (SELECT min(after) FROM relay_peers)")

    def set_state(self, slot: int, *, next_at: int | None = None, error: str | None = None,
                  attempts: int | None = None) -> None:  # fmt: skip
        sets, params = [], []
        for column, value in (("next_at", next_at), ("last_error", error), ("attempts", attempts)):
            if value is not None:
                sets.append(f"{column} = ?")
                params.append(value)
        if sets:
            self.store.execute(f"UPDATE relay_peers SET {', '.join(sets)} WHERE slot = ?", [*params, slot])

    # -- reads -------------------------------------------------------------------------------------

    def cursor(self, peer: str) -> dict | None:
        return self.store.query_one(
            "SELECT slot, after, attempts, next_at, last_error FROM relay_peers WHERE peer = ?", [peer]
        )

    def peer_of(self, slot: int) -> str | None:
        row = self.store.query_one("SELECT peer FROM relay_peers WHERE slot = ?", [slot])
        return row["peer"] if row else None

    def pending(self, peer: str, limit: int) -> list[dict]:
        """The peer's unsettled rows in order (at most ``limit``), with its cursor's state."""
        return self.store.query(
            "SELECT r.seq, r.ref, r.payload, r.created_at, r.expires_at, p.slot, p.attempts, p.next_at, "
            "p.last_error FROM relay_peers p JOIN relay r ON r.seq > p.after AND (r.targets >> p.slot) & 1 "
            "WHERE p.peer = ? AND NOT EXISTS (SELECT 1 FROM relay_settled s WHERE s.slot = p.slot AND s.seq = r.seq) "
            "ORDER BY r.seq LIMIT ?",
            [peer, limit],
        )

    def has_pending(self, peer: str) -> bool:
        return bool(self.pending(peer, 1))

    def _after(self, slot: int) -> int:
        row = self.store.query_one("SELECT after FROM relay_peers WHERE slot = ?", [slot])
        return row["after"] if row else 0

    def _last_seq(self) -> int:
        row = self.store.query_one("SELECT seq FROM sqlite_sequence WHERE name = 'relay'")
        return row["seq"] if row else 0
