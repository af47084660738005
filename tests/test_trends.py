"""Trends: which ?tokens people ask for, where, over the intents held for gossip."""

from __future__ import annotations

import pytest

from node import envelope
from node.backends import NATIVE, REFERENCE
from node.errors import ValidationError
from node.gossiplog import GossipLog, addressing
from node.identity import Identity
from node.intents import parse_intent
from node.trends import trends
from tests.conftest import vendor_engines

T0 = 1_700_000_000_000
HOUR = 3_600_000
DAY = 24 * HOUR
PEOPLE = [Identity.from_seed(bytes([i]) * 32) for i in range(1, 6)]


def hold(store, author, text, *, created=T0, kind="intent", body=None):
    env = envelope.create(
        author, kind, parse_intent(text).body() if body is None else body, created=created, ttl_ms=7 * DAY
    )
    recipient, ref = addressing(env)
    GossipLog(store, clock=lambda: created).add(env, ttl=4, recipient=recipient, ref=ref, from_peer=None)
    return env


@pytest.fixture
def store(vendor_store):
    """The store a vendor's node uses: SQLite, and PostgreSQL too for tests marked ``@vendor_engines``."""
    return vendor_store


@pytest.fixture
def held(store):
    a, b, c, d, e = PEOPLE
    hold(store, a, "?flight near:u33db")
    hold(store, a, "?flight near:u33dc ?hotel", created=T0 + 1)  # the same person again: counted once
    hold(store, b, "?flight near:u33x")
    hold(store, c, "?flight near:u09")
    hold(store, d, "?taxi ?flight")
    hold(store, e, "?flight near:u33", created=T0 - 2 * DAY)  # outside a one-day window
    return store


@pytest.mark.parametrize("backend", [NATIVE, REFERENCE], ids=["native", "reference"])
@vendor_engines
def test_people_per_token_and_area(held, backend):
    got = trends(held, now=T0 + HOUR, window_ms=DAY, backend=backend)
    assert got == [
        {"token": "flight", "area": "u33", "count": 2},
        {"token": "flight", "area": "", "count": 1},
        {"token": "flight", "area": "u09", "count": 1},
        {"token": "hotel", "area": "u33", "count": 1},
        {"token": "taxi", "area": "", "count": 1},
    ]
    assert trends(held, now=T0 + HOUR, window_ms=3 * DAY)[0] == {"token": "flight", "area": "u33", "count": 3}


@vendor_engines
def test_near_filters_and_refines_the_areas(held):
    assert trends(held, now=T0 + HOUR, window_ms=DAY, near="U33D") == [
        {"token": "flight", "area": "u33d", "count": 1},
        {"token": "hotel", "area": "u33d", "count": 1},
    ]
    assert trends(held, now=T0 + HOUR, window_ms=DAY, near_len=5)[:2] == [
        {"token": "flight", "area": "", "count": 1},
        {"token": "flight", "area": "u09", "count": 1},
    ]
    assert trends(held, now=T0 + HOUR, window_ms=DAY, near="zz") == []


@vendor_engines
def test_window_limit_and_what_does_not_count(store):
    a, b = PEOPLE[:2]
    gone = hold(store, a, "?piano")
    hold(store, a, "?piano", created=T0 + 5)
    hold(store, b, "?piano", created=T0 + HOUR + 1)  # after `now`
    hold(store, b, "?violin", kind="receipt", body={"tokens": ["violin"]})  # not an intent
    hold(store, a, "?x", kind="withdraw", body={"intent": gone.id})  # withdraws one of a's two intents
    assert trends(store, now=T0 + HOUR, window_ms=DAY) == [{"token": "piano", "area": "", "count": 1}]
    hold(store, PEOPLE[2], "?cello")
    assert trends(store, now=T0 + HOUR, window_ms=DAY, limit=1) == [{"token": "cello", "area": "", "count": 1}]
    assert trends(store, now=T0 + HOUR, window_ms=1) == []


def test_a_fulfilled_intent_still_counts_a_plain_withdrawal_does_not(store):
    """Accepting an offer closes its intent (a withdrawal, reason fulfilled): that demand was met, not
    taken back."""
    met = hold(store, PEOPLE[0], "?piano")
    gone = hold(store, PEOPLE[1], "?piano")
    hold(store, PEOPLE[0], "?x", kind="withdraw", body={"intent": met.id, "reason": "fulfilled"})
    hold(store, PEOPLE[1], "?x", kind="withdraw", body={"intent": gone.id})
    assert trends(store, now=T0 + 1, window_ms=DAY) == [{"token": "piano", "area": "", "count": 1}]


@vendor_engines
def test_a_withdrawal_by_someone_else_does_not_hide_an_intent(store):
    mine = hold(store, PEOPLE[0], "?piano")
    hold(store, PEOPLE[1], "?x", kind="withdraw", body={"intent": mine.id})
    assert trends(store, now=T0 + 1, window_ms=DAY) == [{"token": "piano", "area": "", "count": 1}]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"now": -1},
        {"now": "now"},
        {"window_ms": 0},
        {"window_ms": 1.5},
        {"near": "ai"},
        {"near": "u" * 13},
        {"near": 5},
        {"near_len": 0},
        {"near_len": 13},
        {"limit": 0},
        {"limit": 1001},
    ],
)
@vendor_engines
def test_bad_arguments(store, kwargs):
    with pytest.raises(ValidationError):
        trends(store, **{"now": T0, "window_ms": DAY, **kwargs})
