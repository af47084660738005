"""Refused fetches that name no grant this node gave, counted in aggregate.

A receipt is signed, kept and sent for every access and refusal concerning a real grant: that is the
person's exact record. A fetch naming a grant that does not exist concerns nobody's data; receipting
it one by one would let strangers with fresh keys grow the log without bound (issue 10: 3,000 such
fetches made 3,000 receipts, 9 MB). They are counted instead, one row per source address, hour and
reason, so the person still sees that someone probed and from where.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from node.store import Store

HOUR_MS = 3_600_000  # the clock is the grants' one: unix milliseconds


class RefusalCount(NamedTuple):
    source: str
    hour: int  # unix milliseconds at the start of the hour
    reason: str
    count: int


class StrangerRefusals:
    def __init__(self, store: Store, *, clock: Callable[[], float]) -> None:
        self._store = store
        self._clock = clock

    def count(self, source: str, reason: str) -> None:
        """One more refusal from ``source`` (an address, or the IPv6 /64; '' when unknown) this hour."""
        hour = int(self._clock()) // HOUR_MS * HOUR_MS
        self._store.execute(
            "INSERT INTO stranger_refusals (source, hour, reason, count) VALUES (?, ?, ?, 1) "
            "ON CONFLICT (source, hour, reason) DO UPDATE SET count = count + 1",
            [source, hour, reason],
        )

    def counts(self) -> list[RefusalCount]:
        """Every counted hour, newest first."""
        rows = self._store.query(
            "SELECT source, hour, reason, count FROM stranger_refusals ORDER BY hour DESC, source, reason"
        )
        return [RefusalCount(r["source"], r["hour"], r["reason"], r["count"]) for r in rows]
