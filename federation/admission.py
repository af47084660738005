"""Admission beyond the key (issue 10, item 2): budgets per source and in all, a small budget for
authors the node has never seen, and proof of work asked of those when that budget is spent.

Keys are free, so a per-key token bucket alone lets a fresh key per request through unthrottled.
Every request (and every pushed item) therefore also spends tokens of:

- its **source**: one bucket per IPv4 address or IPv6 /64 (``federation.limits.source_of``), the
  same size as a key's by default, so a flood of fresh keys from one source gets no more through
  than one key does;
- the **node**: one global bucket, so many sources together cannot exceed what the node can judge.

A pushed item whose author the node has never seen (no envelope of that author held, not a peer)
also spends a token of the **strangers** bucket, shared by all such authors. When that is empty the
node is under pressure: a stranger's item is then admitted only with a proof of work (node/pow.py)
of ``pow_bits`` leading zero bits on its envelope id (``pow_required``, 32), or, with proof of work
off (``pow_bits`` 0), refused ``busy`` (31). ``pow_bits`` is advertised in ``GET /v1/node``.

Refusals are per item and retryable: ``rate_limited`` (the key's budget), ``busy`` (source, node or
strangers), ``pow_required``; the items were not looked at and the sender re-queues them
(federation/delivery.py).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import msgpack

from federation import wire
from federation.ratelimit import RateLimiter
from node import envelope as envelopes
from node.clock import wall_clock_ms
from node.errors import EnvelopeError
from node.gossiplog import GossipLog
from node.pow import MAX_BITS, meets
from node.reasons import Reason
from node.store import AsyncStore, Clock, Store, in_list

GLOBAL = "*"


class Admission:
    """The source, global and strangers budgets of one federation port (rates in items per second)."""

    def __init__(
        self,
        *,
        source_rate: float = 2_000.0,
        source_burst: int = 5_000,
        global_rate: float = 10_000.0,
        global_burst: int = 20_000,
        stranger_rate: float = 200.0,
        stranger_burst: int = 1_000,
        pow_bits: int = 12,
        clock: Clock = wall_clock_ms,
        max_sources: int = 10_000,
    ) -> None:
        if not 0 <= pow_bits <= MAX_BITS:
            raise ValueError(f"pow_bits must be 0..{MAX_BITS}")
        self.sources = RateLimiter(source_rate, source_burst, clock=clock, max_peers=max_sources)
        self.everyone = RateLimiter(global_rate, global_burst, clock=clock, max_peers=1)
        self.strangers = RateLimiter(stranger_rate, stranger_burst, clock=clock, max_peers=1)
        self.pow_bits = pow_bits
        # Authors found known, remembered (oldest out past KNOWN_CACHE) so a push of authors seen
        # before needs no store query: that query would wait behind the commit of the batch before,
        # and with it the verification of this one (federation/pipeline.py overlaps the two). Only
        # positive answers are kept; an author whose envelopes all expired stays known until evicted.
        self._known: OrderedDict[str, None] = OrderedDict()

    def request(self, source: str) -> bool:
        """Spend one token of ``source`` and of the node for a request; False: refuse it (503 busy)."""
        if self.sources.take(source, 1) == 0:
            return False
        return self.everyone.take(GLOBAL, 1) == 1

    def allowed(self, limiter: RateLimiter, peer: str, source: str, count: int) -> tuple[int, int]:
        """How many of ``count`` items the signer's budget admits, and how many of those the source's
        and the node's budgets allow too (each spent for what it granted). The request's own tokens
        (``SignatureMiddleware``, ``guarded``) paid for the first item."""
        if count <= 0:
            return 0, 0
        admitted = min(count, 1 + limiter.take(peer, count - 1))
        allowed = min(admitted, 1 + self.sources.take(source, admitted - 1))
        return admitted, min(allowed, 1 + self.everyone.take(GLOBAL, allowed - 1))

    def spend(self, limiter: RateLimiter, peer: str, source: str, cost: int) -> str | None:
        """Spend ``cost`` (the request's own token counted) of the signer's, the source's and the
        node's budgets, all or none: None when spent, else the refusal, ``rate_limited`` (the
        signer's) or ``busy`` (the source's or the node's). A request that costs what many items do
        (a reconciliation message, a fetch by ids) so costs a flood of fresh keys from one source
        what it costs one key, and a refused one spends nothing more."""
        more = cost - 1
        if more <= 0:
            return None
        if limiter.available(peer) < more:
            return wire.RATE_LIMITED
        if self.sources.available(source) < more or self.everyone.available(GLOBAL) < more:
            return "busy"
        limiter.take(peer, more)
        self.sources.take(source, more)
        self.everyone.take(GLOBAL, more)
        return None

    def retry_after_header(self, source: str) -> str:
        return str(max(int(self.sources.retry_after_header(source)), int(self.everyone.retry_after_header(GLOBAL))))

    def advertise(self, info: bytes) -> bytes:
        """The ``GET /v1/node`` answer with ``pow_bits`` added (0: no proof of work is ever asked)."""
        value = msgpack.unpackb(info)
        value["pow_bits"] = self.pow_bits
        return msgpack.packb(value)

    def _remembered(self, authors: set[str]) -> set[str]:
        hits = {a for a in authors if a in self._known}
        for a in hits:
            self._known.move_to_end(a)
        return hits

    def _remember(self, authors: set[str]) -> None:
        for a in authors:
            self._known[a] = None
            self._known.move_to_end(a)
        while len(self._known) > KNOWN_CACHE:
            self._known.popitem(last=False)

    async def judge(
        self, store: AsyncStore, limiter: RateLimiter, peer: str, source: str, items: Sequence[wire.GossipItem]
    ) -> bytearray:
        """One verdict per pushed item: 0 (admitted: judge it) or the retryable refusal. The request's
        own tokens (``guarded``) paid for the first item."""
        count = len(items)
        verdicts = bytearray(count)
        if not count:
            return verdicts
        admitted, allowed = self.allowed(limiter, peer, source, count)
        verdicts[admitted:] = bytes([Reason.RATE_LIMITED]) * (count - admitted)
        verdicts[allowed:admitted] = bytes([Reason.BUSY]) * (admitted - allowed)
        # The author sits at a fixed place in a canonical envelope (its first key): no decode per
        # item. An item without that prefix is not canonical; the pipeline refuses it with its reason.
        # Authors are compared as bytes; only the batch's few distinct ones become hex, and only the
        # distinct heads (up to the author's end) are looked at: 0.14 ms a batch of 1,000, not 0.36.
        raws = wire.Items.of(items).envelopes[:allowed]
        heads = {raw[:_AUTHOR_END] for raw in raws}
        distinct = {a.hex(): a for a in set(map(_author_key, heads)) if a is not None}
        known = self._remembered(set(distinct))
        unsure = set(distinct) - known
        if unsure:
            found = await store.run(known_authors, store.store, unsure)
            self._remember(found)
            known |= found
        if len(known) == len(distinct):  # every author seen before: the common case, no loop
            return verdicts
        known_keys = {distinct[a] for a in known if a in distinct}
        for i, raw in enumerate(raws):
            author = _author_key(raw)
            if author is None or author in known_keys:
                continue
            if self.strangers.take(GLOBAL, 1):
                continue
            if self.pow_bits and _meets(raw, self.pow_bits):
                continue
            verdicts[i] = Reason.POW_REQUIRED if self.pow_bits else Reason.BUSY
        return verdicts


# A canonical envelope begins with a map of 7 keys whose first is "author", a bin 8 of 32 bytes
# (PROTOCOL.md section 2: keys in bytewise order).
_AUTHOR_PREFIX = b"\x87\xa6author\xc4\x20"
_AUTHOR_START = len(_AUTHOR_PREFIX)
_AUTHOR_END = _AUTHOR_START + 32


def _author_key(raw: bytes) -> bytes | None:
    """The author key of a canonical envelope, read in place (None: not one)."""
    if len(raw) < _AUTHOR_END or not raw.startswith(_AUTHOR_PREFIX):
        return None
    return raw[_AUTHOR_START:_AUTHOR_END]


def _meets(raw: bytes, bits: int) -> bool:
    """Whether the envelope's id carries ``bits`` of proof of work (False: it does not decode)."""
    try:
        return meets(envelopes.decode(raw).id, bits)
    except EnvelopeError:
        return False


KNOWN_CACHE = 65_536  # authors an Admission remembers as known


def known_authors(store: Store, authors: set[str]) -> set[str]:
    """Which of ``authors`` (hex keys) the node has seen: an envelope of theirs is held (within the
    hour: ``GossipLog.authors_held``), or a peer."""
    if not authors:
        return set()
    held = GossipLog(store).authors_held([bytes.fromhex(a) for a in authors])
    hexes = in_list(list(authors))
    peers = store.query(f"SELECT public_key AS k FROM peers WHERE public_key IN {hexes[0]}", hexes[1])
    return {a.hex() for a in held} | {r["k"] for r in peers}


def merge(verdicts: bytes, reasons: bytes) -> bytes:
    """The answer's reasons: each admitted item's (in order, from ``reasons``), else its verdict."""
    if verdicts.count(0) == len(verdicts):  # every item admitted: the answer is the pipeline's
        return bytes(reasons)
    judged = iter(reasons)
    return bytes(next(judged) if v == 0 else v for v in verdicts)
