"""Replay memory shared by a fleet's listeners: a request replayed to another listener is refused.

``SharedNonceCache`` is the local ``NonceCache`` (bounded, with its floor: a local replay is refused
without a round trip) backed by the ``fleet_nonces`` table: a nonce is new only when its row could be
inserted (the primary key decides between listeners racing on the same request). Rows older than
the replay window are deleted now and then; past the window the time check refuses a replay anyway.

The signature check calls ``admit`` synchronously, so this is one short loopback INSERT on the event
loop per signed request, on a connection of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable

from federation.noncecache import Admission, NonceCache
from fleet.pgstore import PgStore

_PRUNE_EVERY = 1024  # admissions between deletes of rows past the window


class SharedNonceCache(NonceCache):
    __slots__ = ("_pg", "_admitted", "_lock")

    def __init__(self, pg: PgStore, **options: int) -> None:
        super().__init__(**options)
        self._pg = pg
        self._admitted = 0
        self._lock = threading.Lock()

    def admit(self, key: Hashable, created: int, now: int) -> Admission:
        local = super().admit(key, created, now)
        if local is not Admission.NEW:
            return local
        signer, nonce = key  # type: ignore[misc]
        signer_hex = bytes(signer).hex() if isinstance(signer, (bytes, bytearray)) else str(signer)
        with self._lock, self._pg.connection() as conn:
            cur = conn.execute(
                "INSERT INTO fleet_nonces (key, nonce, created) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                (signer_hex, str(nonce), created),
            )
            self._admitted += 1
            if self._admitted % _PRUNE_EVERY == 0:
                conn.execute("DELETE FROM fleet_nonces WHERE created < %s", (now - self.window,))
        return Admission.NEW if cur.rowcount == 1 else Admission.REPLAYED
