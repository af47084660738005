"""Pull pages: what ``GET /v1/gossip`` and ``GET /v1/inbox`` answer, read in the store's thread."""

from __future__ import annotations

from federation import wire
from federation.kinds import DIRECT_KINDS
from node.gossiplog import GossipLog
from node.store import Store, in_list


class Pages:
    def __init__(self, store: Store, log: GossipLog) -> None:
        self.store = store
        self._log = log

    def page(self, after: int, limit: int, *, recipient: str | None = None) -> wire.PullPage:
        """Live envelopes with seq > ``after`` in seq order, without withdrawn intents, at most
        ``limit`` items and MAX_BATCH_BYTES of envelopes; ``next`` is the last seq looked at (``after``
        when none). With ``recipient`` (``/v1/inbox``) only what is addressed to it; without, no direct
        envelope (they go to their addressee's inbox only)."""
        held, next_seq = self._log.since(after, limit, recipient=recipient)
        withdrawn = self._withdrawn([h.id for h in held if h.kind == "intent"])
        items: list[wire.GossipItem] = []
        size, last = 0, after
        for h in held:
            size += len(h.raw) + 16  # the item's own framing, generously
            if size > wire.MAX_BATCH_BYTES - 64 and last != after:
                next_seq = last  # the rest comes with the next page
                break
            last = h.seq
            if h.id in withdrawn or (recipient is None and h.kind in DIRECT_KINDS):
                continue  # direct envelopes go to their addressee's inbox only
            items.append(wire.GossipItem(h.ttl, h.raw))
        return wire.PullPage(items, next_seq)

    def _withdrawn(self, intent_ids: list[str]) -> set[str]:
        """Which of these intents a held withdrawal ended (one query)."""
        if not intent_ids:
            return set()
        marks, params = in_list([bytes.fromhex(i) for i in intent_ids])
        rows = self.store.query(f"SELECT ref FROM envelopes WHERE kind = 'withdraw' AND ref IN {marks}", params)
        return {bytes(r["ref"]).hex() for r in rows}
