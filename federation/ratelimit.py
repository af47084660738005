"""Per-peer token buckets: how many gossip items (or requests) a peer may send us.

Each peer (a hex public key) has a bucket of ``burst`` tokens refilled at ``rate`` tokens per second;
an item costs one token. Memory is bounded: at ``max_peers`` buckets, a bucket that has refilled to
full is dropped first (a full bucket is the same as none, so nothing is forgotten), otherwise the one
idle longest. Keys are free to make, so whoever floods with fresh keys gets at most the burst per key
— and every request still needs a valid signature first. The clock is injected (milliseconds).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable

from node.clock import wall_clock_ms


class _Bucket:
    __slots__ = ("tokens", "at")

    def __init__(self, tokens: float, at: int) -> None:
        self.tokens = tokens
        self.at = at


class RateLimiter:
    """Token buckets keyed by peer. ``take(peer, n)`` grants up to ``n`` tokens now."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], int] = wall_clock_ms,
        max_peers: int = 10_000,
    ) -> None:
        if rate <= 0 or burst < 1 or max_peers < 1:
            raise ValueError("rate must be positive, burst and max_peers at least 1")
        self.rate = float(rate)  # tokens per second
        self.burst = int(burst)
        self.max_peers = max_peers
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()  # least recently used first

    def __len__(self) -> int:
        return len(self._buckets)

    def _bucket(self, peer: str, now: int) -> _Bucket:
        bucket = self._buckets.get(peer)
        if bucket is None:
            if len(self._buckets) >= self.max_peers:
                self._evict(now)
            bucket = self._buckets[peer] = _Bucket(float(self.burst), now)
        else:
            self._buckets.move_to_end(peer)
            elapsed = max(0, now - bucket.at)  # a clock stepping back refills nothing
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate / 1000)
            bucket.at = max(bucket.at, now)
        return bucket

    def _evict(self, now: int) -> None:
        for peer, bucket in self._buckets.items():  # oldest first
            if bucket.tokens + max(0, now - bucket.at) * self.rate / 1000 >= self.burst:
                del self._buckets[peer]
                return
        self._buckets.popitem(last=False)

    def take(self, peer: str, n: int = 1) -> int:
        """Spend up to ``n`` whole tokens of ``peer``'s bucket; returns how many were granted (0..n)."""
        if n <= 0:
            return 0
        bucket = self._bucket(peer, self._clock())
        granted = min(n, int(bucket.tokens))
        bucket.tokens -= granted
        return granted

    def available(self, peer: str) -> int:
        """The whole tokens ``peer`` could spend now (none spent)."""
        return int(self._bucket(peer, self._clock()).tokens)

    def retry_after(self, peer: str) -> float:
        """Seconds until ``peer`` has one whole token again (0 when it has one now)."""
        bucket = self._bucket(peer, self._clock())
        missing = 1.0 - bucket.tokens
        return 0.0 if missing <= 0 else missing / self.rate

    def retry_after_header(self, peer: str) -> str:
        """``Retry-After`` in whole seconds, at least 1."""
        return str(max(1, math.ceil(self.retry_after(peer))))
