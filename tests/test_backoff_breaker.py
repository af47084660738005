"""The pure retry policy: backoff bounds, growth and jitter; the circuit breaker's state machine."""

from __future__ import annotations

import random
import statistics

import pytest

from federation.backoff import Backoff
from federation.breaker import BreakerState, CircuitBreaker


def test_ceiling_doubles_then_caps():
    b = Backoff(base_ms=100, cap_ms=1_000, floor_ms=10)
    assert [b.ceiling(n) for n in range(1, 7)] == [100, 200, 400, 800, 1_000, 1_000]
    assert b.ceiling(10_000) == 1_000  # no huge intermediate
    with pytest.raises(ValueError):
        b.ceiling(0)


@pytest.mark.parametrize("attempt", [1, 2, 3, 5, 8, 50])
def test_delay_within_bounds(attempt):
    b = Backoff(base_ms=100, cap_ms=5_000, floor_ms=10)
    rng = random.Random(attempt)
    delays = [b.delay(attempt, rng.random) for _ in range(2_000)]
    assert all(b.floor_ms <= d < b.ceiling(attempt) for d in delays)
    assert b.delay(attempt, lambda: 0.0) == b.floor_ms
    assert b.delay(attempt, lambda: 0.999999) == b.ceiling(attempt) - 1


def test_full_jitter_is_uniform_and_seeded():
    b = Backoff(base_ms=1_000, cap_ms=60_000, floor_ms=0)
    rng = random.Random(42)
    delays = [b.delay(4, rng.random) for _ in range(20_000)]
    ceiling = b.ceiling(4)
    # Uniform on [0, ceiling): mean ceiling/2, every decile about a tenth of the draws.
    assert abs(statistics.fmean(delays) - ceiling / 2) < ceiling * 0.01
    deciles = [0] * 10
    for d in delays:
        deciles[d * 10 // ceiling] += 1
    assert all(1_800 < n < 2_200 for n in deciles)
    again = random.Random(42)
    assert [b.delay(4, again.random) for _ in range(20_000)] == delays


def test_jitter_spreads_retries_but_mean_grows():
    b = Backoff(base_ms=100, cap_ms=100_000, floor_ms=0)
    rng = random.Random(7)
    means = [statistics.fmean(b.delay(n, rng.random) for _ in range(2_000)) for n in range(1, 8)]
    assert all(later > earlier * 1.6 for earlier, later in zip(means, means[1:], strict=False))


def test_backoff_refuses_inverted_bounds():
    with pytest.raises(ValueError):
        Backoff(base_ms=100, cap_ms=50)
    with pytest.raises(ValueError):
        Backoff(base_ms=100, cap_ms=500, floor_ms=200)


def test_breaker_opens_after_threshold_consecutive_failures():
    br = CircuitBreaker(threshold=3, cooldown_ms=1_000)
    assert br.state(0) is BreakerState.CLOSED and br.allows(0)
    br.record_failure(0)
    br.record_failure(1)
    br.record_success()  # a success resets the count: failures must be consecutive
    br.record_failure(2)
    br.record_failure(3)
    assert br.state(3) is BreakerState.CLOSED and br.retry_at(3) is None
    br.record_failure(10)
    assert br.state(10) is BreakerState.OPEN and not br.allows(10)
    assert br.retry_at(500) == 1_010


def test_breaker_half_open_probe_success_closes():
    br = CircuitBreaker(threshold=1, cooldown_ms=1_000)
    br.record_failure(0)
    assert br.state(999) is BreakerState.OPEN
    assert br.state(1_000) is BreakerState.HALF_OPEN and br.allows(1_000) and br.retry_at(1_000) is None
    br.record_success()
    assert br.state(1_001) is BreakerState.CLOSED and br.failures == 0


def test_breaker_half_open_probe_failure_reopens_for_a_full_cooldown():
    br = CircuitBreaker(threshold=5, cooldown_ms=1_000)
    for t in range(5):
        br.record_failure(t)
    assert br.state(4) is BreakerState.OPEN
    assert br.state(1_004) is BreakerState.HALF_OPEN
    br.record_failure(1_500)  # one failed probe is enough, not another five
    assert br.state(1_500) is BreakerState.OPEN and br.retry_at(1_500) == 2_500
    assert br.state(2_500) is BreakerState.HALF_OPEN


def test_breaker_refuses_bad_settings():
    with pytest.raises(ValueError):
        CircuitBreaker(threshold=0)
    with pytest.raises(ValueError):
        CircuitBreaker(cooldown_ms=-1)
