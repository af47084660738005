"""Per-peer token buckets under an injected clock."""

from __future__ import annotations

import pytest

from federation.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.ms = 1_000_000

    def __call__(self) -> int:
        return self.ms


def test_burst_then_the_rate():
    clock = Clock()
    limiter = RateLimiter(rate=100, burst=500, clock=clock)
    assert limiter.take("a", 400) == 400
    assert limiter.take("a", 400) == 100  # the rest of the burst
    assert limiter.take("a", 1) == 0
    clock.ms += 1000  # one second refills 100
    assert limiter.take("a", 1000) == 100
    clock.ms += 60_000  # never more than the burst
    assert limiter.take("a", 10_000) == 500


def test_peers_are_independent():
    clock = Clock()
    limiter = RateLimiter(rate=10, burst=20, clock=clock)
    assert limiter.take("flood", 10_000) == 20
    assert limiter.take("flood", 1) == 0
    assert limiter.take("calm", 5) == 5


def test_retry_after():
    clock = Clock()
    limiter = RateLimiter(rate=4, burst=4, clock=clock)
    assert limiter.retry_after("a") == 0
    limiter.take("a", 4)
    assert limiter.retry_after("a") == pytest.approx(0.25)
    assert limiter.retry_after_header("a") == "1"
    clock.ms += 250
    assert limiter.take("a", 5) == 1
    slow = RateLimiter(rate=0.1, burst=1, clock=clock)
    slow.take("b")
    assert slow.retry_after_header("b") == "10"


def test_a_clock_stepping_back_refills_nothing():
    clock = Clock()
    limiter = RateLimiter(rate=1000, burst=10, clock=clock)
    limiter.take("a", 10)
    clock.ms -= 60_000
    assert limiter.take("a", 1) == 0
    clock.ms += 60_000 + 1
    assert limiter.take("a", 5) == 1


def test_memory_is_bounded_and_exhausted_buckets_are_kept_over_full_ones():
    clock = Clock()
    limiter = RateLimiter(rate=10, burst=10, clock=clock, max_peers=3)
    limiter.take("greedy", 10)  # drained: a second to refill, must not be forgotten while full buckets can go
    for i in range(6):
        clock.ms += 150  # each newcomer's single token is back after 100 ms: its bucket is full again
        limiter.take(f"new{i}", 1)
        assert len(limiter) <= 3
    assert limiter.take("greedy", 10) == 9  # 900 ms of refill, not a fresh burst
    # With every bucket drained, the least recently used goes.
    limiter = RateLimiter(rate=1, burst=10, clock=clock, max_peers=2)
    limiter.take("a", 10)
    limiter.take("b", 10)
    limiter.take("c", 10)
    assert len(limiter) == 2 and limiter.take("b", 1) == 0


def test_bad_parameters():
    for kwargs in ({"rate": 0, "burst": 1}, {"rate": 1, "burst": 0}, {"rate": 1, "burst": 1, "max_peers": 0}):
        with pytest.raises(ValueError):
            RateLimiter(**kwargs)
