"""Leads: the intents a vendor's node matched, alive exactly as long as their intent."""

from __future__ import annotations

import pytest

from node import envelope
from node.errors import NotFoundError, ValidationError
from node.identity import Identity
from node.intents import parse_intent
from node.leads import Lead, Leads
from tests.conftest import vendor_engines
from tests.helpers import Clock

pytestmark = vendor_engines  # a vendor's leads: on its SQLite store and on a fleet's PostgreSQL

T0 = 1_700_000_000_000
DAY = 86_400_000
ALICE = Identity.from_seed(bytes([9]) * 32)
BOB = Identity.from_seed(bytes([11]) * 32)


@pytest.fixture
def store(vendor_store):
    return vendor_store


@pytest.fixture
def clock():
    return Clock(T0)


@pytest.fixture
def leads(store, clock):
    return Leads(store, clock=clock)


def intent(text="?flight SFO->JFK max:400USD", author=ALICE, created=T0, ttl=DAY):
    body = parse_intent(text).body(["no-resale"])
    return envelope.create(author, "intent", body, created=created, ttl_ms=ttl)


def test_add_many_keeps_each_intent_once(leads, clock):
    a, b = intent(), intent("?taxi near:u33db", BOB)
    clock.now = T0 + 3
    assert leads.add_many([(a, [2, 1, 2]), (b, [1])]) == 2
    assert leads.add_many([(a, [5]), (b, [])]) == 0  # duplicates are skipped, not errors
    first, second = leads.list()
    assert first == Lead(
        id=first.id,
        intent_id=a.id.hex(),
        author=ALICE.public_key.hex(),
        text="?flight SFO->JFK max:400USD",
        body=a.body,
        subscription_ids=[1, 2],
        created=T0,
        expires=T0 + DAY,
        received_at=T0 + 3,
        status="live",
        withdrawn_at=None,
    )
    assert second.intent_id == b.id.hex() and second.body["constraints"] == {"near": {"geohash": "u33db"}}
    assert first.to_json()["subscription_ids"] == [1, 2]


def test_status_follows_withdrawal_and_expiry(leads, clock):
    a, b = intent(), intent("?taxi", BOB, ttl=10)
    leads.add_many([(a, [1]), (b, [1])])
    assert leads.withdraw(a.id.hex(), T0 + 1) is True
    assert leads.withdraw(a.id.hex(), T0 + 2) is False  # once
    assert leads.withdraw("00" * 32, T0) is False  # a withdrawal for an intent we never had
    clock.now = T0 + 10
    assert leads.list() == []
    (withdrawn,) = leads.list(status="withdrawn")
    assert withdrawn.status == "withdrawn" and withdrawn.withdrawn_at == T0 + 1
    assert [lead.intent_id for lead in leads.list(status="expired")] == [b.id.hex()]
    assert len(leads.list(status="all")) == 2
    with pytest.raises(ValidationError):
        leads.list(status="dead")


def test_get_by_number_or_intent_id(leads):
    a = intent()
    leads.add_many([(a, [1])])
    (lead,) = leads.list()
    assert leads.get(lead.id) == lead and leads.get(str(lead.id)) == lead
    assert leads.get(a.id.hex()) == lead and leads.get(a.id.hex()[:6].upper()) == lead
    for missing in (99, "99", "0" * 64 if not a.id.hex().startswith("0") else "f" * 64):
        with pytest.raises(NotFoundError):
            leads.get(missing)
    for bad in ("abc", "xyzxyz", "a" * 65, -1, None, 1.0, True):
        with pytest.raises(ValidationError):
            leads.get(bad)


@pytest.mark.parametrize(
    "bad",
    [
        (envelope.create(ALICE, "offer", {"text": "x"}, created=T0, ttl_ms=DAY), [1]),
        (envelope.create(ALICE, "intent", ["?flight"], created=T0, ttl_ms=DAY), [1]),
        (envelope.create(ALICE, "intent", {"text": 5}, created=T0, ttl_ms=DAY), [1]),
        ({"kind": "intent"}, [1]),
        (intent("?taxi"), "1"),
        (intent("?taxi"), [True]),
        (intent("?taxi"), ["1"]),
    ],
)
def test_hostile_rows_change_nothing(leads, store, bad):
    with pytest.raises(ValidationError):
        leads.add_many([(intent(), [1]), bad])
    assert store.query("SELECT * FROM leads") == []
