"""Offers over real stores: the vendor makes one, the person receives it, accepts or declines it, the
vendor learns the decision, records follow; and the block list (fixtures, bodies and vectors in
tests/test_offers.py)."""

from __future__ import annotations

import json

import pytest

from node import envelope
from node.backends import NATIVE
from node.blocks import Blocks
from node.errors import ConflictError, NotFoundError, ValidationError
from node.intents import Intents
from node.leads import Leads
from node.nodeid import encode_node_id
from node.offers import check_offer_body
from node.reasons import Reason
from node.records import Records
from tests.conftest import vendor_engines
from tests.test_offers import (  # noqa: F401 (the fixtures are used by name)
    CURRENCY,
    DAY,
    FLIGHT,
    HANDLE,
    HOUR,
    MALLORY,
    MINUTE,
    NAME,
    OFFER_TEXT,
    OTHER_VENDOR,
    PERSON,
    PRICE,
    T0,
    VENDOR,
    cast,
    intent_env,
    clock,
    lead,
    make,
    person_offers,
    person_store,
    protocol_intent,
    records_state,
    signed_offer,
    table,
    vendor_offers,
)


# -- vendor side: make ---------------------------------------------------------------------------------


@vendor_engines
def test_make_signs_an_offer_to_the_intents_author(vendor_offers, lead, clock):
    offer, env = make(vendor_offers, lead, handle="@Acme-Air", currency=" usd ")
    verified = envelope.verify(env.raw, T0, NATIVE.Verifier())
    assert verified.kind == "offer" and verified.author == VENDOR.public_key
    assert verified.created == T0 and verified.expires == T0 + DAY
    assert check_offer_body(verified.body) == {
        "intent": bytes.fromhex(lead.intent_id),
        "to": PERSON.public_key,
        "price": {"money": PRICE, "cur": "USD"},
        "text": OFFER_TEXT,
        "vendor": {"handle": "acme-air", "name": NAME},
        "v": 2,
        "terms": [],  # the intent has no terms: the offer agrees to none
    }
    assert offer.id == env.id.hex() and offer.direction == "sent" and offer.status == "open"
    assert (offer.vendor, offer.person) == (VENDOR.public_key.hex(), lead.author)
    assert offer.intent_id == lead.intent_id
    assert (offer.price_minor, offer.currency, offer.vendor_handle) == (PRICE, "USD", "acme-air")
    assert offer.raw == env.raw and offer.decision_id is None
    assert vendor_offers.list(direction="sent") == [offer] and vendor_offers.list(direction="received") == []
    json.dumps(offer.to_json())
    assert offer.to_json()["vendor_node_id"] == encode_node_id(VENDOR.public_key)
    clock.now = T0 + DAY
    assert vendor_offers.get(offer.id[:6]).status == "expired"


@vendor_engines
def test_an_offer_never_outlives_its_intent(vendor_offers, lead):
    _, env = make(vendor_offers, lead, ttl_ms=30 * DAY)
    assert env.expires == lead.expires == T0 + 7 * DAY


@vendor_engines
def test_no_offer_for_a_withdrawn_or_expired_lead(vendor_store, vendor_offers, lead, clock):
    leads = Leads(vendor_store, clock=clock)
    leads.withdraw(lead.intent_id, T0)
    with pytest.raises(ConflictError, match="withdrawn"):
        make(vendor_offers, lead)
    leads.add_many([(protocol_intent(), [])])
    other = leads.get(protocol_intent().id.hex())
    clock.now = other.expires
    with pytest.raises(ConflictError, match="expired"):
        make(vendor_offers, other)
    assert table(vendor_store, "offers") == []


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"ttl_ms": MINUTE - 1}, "expires"),
        ({"ttl_ms": "1d"}, "expires"),
        ({"currency": "US"}, "price.cur"),
        ({"currency": 840}, "price.cur"),
        ({"price_minor": -1}, "price.money"),
        ({"price_minor": 1.5}, "price.money"),
        ({"text": ""}, "text"),
        ({"text": "x" * 1001}, "text"),
        ({"text": "\ud800"}, "text"),
        ({"handle": ""}, "handle"),
        ({"handle": "acme air"}, "vendor.handle"),
        ({"name": "  "}, "name"),
        ({"name": "N" * 201}, "vendor.name"),
    ],
)
@vendor_engines
def test_make_refuses_bad_arguments_and_stores_nothing(vendor_store, vendor_offers, lead, changes, field):
    with pytest.raises(ValidationError) as info:
        make(vendor_offers, lead, **changes)
    assert info.value.field == field
    assert table(vendor_store, "offers") == []


@vendor_engines
def test_make_needs_a_lead(vendor_offers):
    with pytest.raises(ValidationError):
        make(vendor_offers, {"intent_id": "00" * 32})


# -- person side: receive ------------------------------------------------------------------------------


@vendor_engines
def test_receive_keeps_an_offer_for_my_live_intent(person_offers, vendor_offers, lead, clock):
    _, env = make(vendor_offers, lead)
    clock.now = T0 + 5
    assert person_offers.receive(env, me=PERSON.public_key) == Reason.OK
    (offer,) = person_offers.list(direction="received")
    assert offer.direction == "received" and offer.status == "open" and offer.received_at == T0 + 5
    assert (offer.vendor_name, offer.vendor_handle, offer.text) == (NAME, HANDLE, OFFER_TEXT)
    assert person_offers.get(env.id.hex()[:7].upper()) == offer


def test_every_refusal_of_an_offer_changes_nothing(person_store, person_offers, cast, clock):
    intent_id, me = bytes.fromhex(cast.id), PERSON.public_key

    def refused(env, reason, now=T0):
        clock.now = now
        before = table(person_store, "offers")
        assert person_offers.receive(env, me=me) == reason
        assert table(person_store, "offers") == before

    # invalid_body: well signed, but the body breaks the offer's rules
    refused(signed_offer(intent_id, me, note="extra"), Reason.INVALID_BODY)
    refused(signed_offer(intent_id, me, text="x" * 1001), Reason.INVALID_BODY)
    refused(signed_offer(intent_id, me, price={"money": -5, "cur": "USD"}), Reason.INVALID_BODY)
    refused(envelope.create(VENDOR, "offer", "just text", created=T0, expires=T0 + DAY), Reason.INVALID_BODY)
    # unknown_intent: an intent I never cast, or addressed to somebody else, or an intent of someone else
    refused(signed_offer(bytes(32), me), Reason.UNKNOWN_INTENT)
    refused(signed_offer(intent_id, MALLORY.public_key), Reason.UNKNOWN_INTENT)
    assert person_offers.receive(signed_offer(intent_id, me), me=MALLORY.public_key) == Reason.UNKNOWN_INTENT
    # duplicate
    first = signed_offer(intent_id, me)
    assert person_offers.receive(first, me=me) == Reason.OK
    refused(first, Reason.DUPLICATE)
    # blocked
    Blocks(person_store, clock=clock).block(encode_node_id(OTHER_VENDOR.public_key), note="spam")
    refused(signed_offer(intent_id, me, OTHER_VENDOR), Reason.BLOCKED)
    # expired: the intent is dead at receipt even though the offer is not
    late = signed_offer(intent_id, me, created=T0 + 7 * DAY - 1, expires=T0 + 9 * DAY)
    refused(late, Reason.EXPIRED, T0 + 7 * DAY)
    # withdrawn (and withdrawn says more than expired)
    clock.now = T0
    Intents(person_store, clock=clock).withdraw(PERSON, cast.id)
    refused(signed_offer(intent_id, me, MALLORY), Reason.WITHDRAWN)
    refused(signed_offer(intent_id, me, MALLORY, expires=T0 + 9 * DAY), Reason.WITHDRAWN, T0 + 8 * DAY)
    assert len(table(person_store, "offers")) == 1


def test_receive_takes_only_offers(person_offers):
    env = envelope.create(VENDOR, "intent", {"x": 1}, created=T0, expires=T0 + DAY)
    with pytest.raises(ValidationError):
        person_offers.receive(env, me=PERSON.public_key)


# -- person side: accept and decline -------------------------------------------------------------------


@pytest.fixture
def received(person_offers, vendor_offers, lead):
    _, env = make(vendor_offers, lead)
    assert person_offers.receive(env, me=PERSON.public_key) == Reason.OK
    return env


def test_accept_signs_and_records_the_deal(person_store, person_offers, received, cast, clock):
    clock.now = T0 + HOUR
    offer, env = person_offers.accept(PERSON, received.id.hex()[:10])
    verified = envelope.verify(env.raw, T0 + HOUR, NATIVE.Verifier())
    assert verified.kind == "accept" and verified.author == PERSON.public_key
    assert verified.expires == received.expires and verified.created == T0 + HOUR
    assert verified.body == {"intent": bytes.fromhex(cast.id), "offer": received.id, "to": VENDOR.public_key}
    assert offer.status == "accepted" and offer.decided_at == T0 + HOUR
    assert offer.decision_id == env.id.hex() and offer.decision_raw == env.raw
    records = Records(person_store, clock=clock)
    (vendor,) = records.list_vendors()
    assert (vendor.handle, vendor.name) == ("@acme-air", NAME)
    assert vendor.node_id == encode_node_id(VENDOR.public_key)
    (purchase,) = records.list_purchases(vendor.id)
    assert (purchase.product, purchase.price_minor, purchase.currency) == (FLIGHT, PRICE, CURRENCY)
    assert purchase.bought_at == T0 + HOUR
    kinds = [event.kind for event in records.timeline(vendor.id)]
    assert {"started", "purchase", "note"} <= set(kinds)
    (note,) = records.list_notes(vendor.id)
    assert OFFER_TEXT in note.text and note.tags == ("offer",)
    assert person_offers.list() == [] and person_offers.list(status="accepted") == [offer]


@vendor_engines
def test_a_second_deal_with_the_same_vendor_joins_its_relationship(
    person_store, person_offers, vendor_offers, lead, received, clock
):
    _, second = make(vendor_offers, lead, price_minor=12_000, text="Same flight, no luggage")
    assert person_offers.receive(second, me=PERSON.public_key) == Reason.OK
    person_offers.accept(PERSON, received.id.hex(), keep_open=True)  # the intent still takes offers
    person_offers.accept(PERSON, second.id.hex())
    records = Records(person_store, clock=clock)
    (vendor,) = records.list_vendors()
    assert sorted(p.price_minor for p in records.list_purchases(vendor.id)) == [12_000, PRICE]


def test_a_known_vendor_is_found_by_node_id_whatever_its_handle(person_store, person_offers, received, clock):
    records = Records(person_store, clock=clock)
    mine = records.add_vendor("Acme (my name for it)", handle="acme", node_id=encode_node_id(VENDOR.public_key))
    person_offers.accept(PERSON, received.id.hex())
    assert [v.id for v in records.list_vendors()] == [mine.id]
    assert len(records.list_purchases(mine.id)) == 1


def test_a_taken_handle_never_lends_its_relationship(person_store, person_offers, received, clock):
    records = Records(person_store, clock=clock)
    impostor_target = records.add_vendor("The real Acme", handle="acme-air")
    person_offers.accept(PERSON, received.id.hex())
    assert records.list_purchases(impostor_target.id) == []
    new = next(v for v in records.list_vendors() if v.id != impostor_target.id)
    node_id = encode_node_id(VENDOR.public_key)
    assert new.handle == f"@acme-air-{node_id[4:12]}" and new.node_id == node_id


def test_a_failed_accept_changes_nothing(person_store, person_offers, received, clock):
    records = Records(person_store, clock=clock)
    node_id = encode_node_id(VENDOR.public_key)
    records.add_vendor("One", handle="acme-air")
    records.add_vendor("Two", handle=f"acme-air-{node_id[4:12]}")  # the fallback handle is taken too
    before = records_state(person_store)
    with pytest.raises(ConflictError):
        person_offers.accept(PERSON, received.id.hex())
    assert records_state(person_store) == before
    assert person_offers.get(received.id.hex()).status == "open"


def test_decline_signs_and_records_nothing(person_store, person_offers, received, cast, clock):
    offer, env = person_offers.decline(PERSON, received.id.hex())
    assert envelope.verify(env.raw, T0, NATIVE.Verifier()).kind == "decline"
    assert env.body == {"intent": bytes.fromhex(cast.id), "offer": received.id, "to": VENDOR.public_key}
    assert env.expires == received.expires
    assert offer.status == "declined" and offer.decision_id == env.id.hex()
    assert table(person_store, "vendors") == [] and table(person_store, "purchases") == []
    assert person_offers.list(status="declined") == [offer]


def test_decisions_are_refused_when_they_cannot_be_made(person_store, person_offers, received, clock):
    ref = received.id.hex()
    before = records_state(person_store)
    with pytest.raises(ConflictError, match="another identity"):
        person_offers.accept(MALLORY, ref)
    Blocks(person_store, clock=clock).block(VENDOR.public_key.hex())
    with pytest.raises(ConflictError, match="blocked"):
        person_offers.accept(PERSON, ref)
    clock.now = received.expires
    for decide in (person_offers.accept, person_offers.decline):
        with pytest.raises(ConflictError, match="expired"):
            decide(PERSON, ref)
    assert records_state(person_store) == before
    clock.now = T0
    person_offers.decline(PERSON, ref)
    for decide in (person_offers.accept, person_offers.decline):
        with pytest.raises(ConflictError, match="already declined"):
            decide(PERSON, ref)


def test_an_offer_for_a_withdrawn_intent_cannot_be_accepted(person_store, person_offers, received, cast, clock):
    Intents(person_store, clock=clock).withdraw(PERSON, cast.id)
    before = records_state(person_store)
    with pytest.raises(ConflictError, match="withdrew"):
        person_offers.accept(PERSON, received.id.hex())
    assert records_state(person_store) == before
    assert person_offers.get(received.id.hex()).status == "open"
    assert table(person_store, "purchases") == []


@vendor_engines
def test_a_vendor_cannot_accept_its_own_offer(vendor_offers, lead):
    offer, _ = make(vendor_offers, lead)
    with pytest.raises(ConflictError, match="you made"):
        vendor_offers.accept(VENDOR, offer.id)


def test_offer_lookups(person_offers, received):
    for bad in ("abc", "zzzzzz", "0" * 65, 12, None):
        with pytest.raises(ValidationError):
            person_offers.get(bad)
    with pytest.raises(NotFoundError):
        person_offers.get("f" * 64 if not received.id.hex().startswith("f") else "0" * 64)
    with pytest.raises(ValidationError):
        person_offers.list(status="pending")
    with pytest.raises(ValidationError):
        person_offers.list(direction="both")
    assert [o.id for o in person_offers.list(status="all")] == [received.id.hex()]


# -- vendor side: the decision comes back --------------------------------------------------------------


@pytest.fixture
def sent(vendor_offers, person_offers, lead):
    offer, env = make(vendor_offers, lead)
    assert person_offers.receive(env, me=PERSON.public_key) == Reason.OK
    return env


@vendor_engines
def test_the_vendor_learns_the_acceptance(vendor_offers, person_offers, sent):
    _, accept = person_offers.accept(PERSON, sent.id.hex())
    assert vendor_offers.decision_received(accept) == Reason.OK
    offer = vendor_offers.get(sent.id.hex())
    assert offer.status == "accepted" and offer.decision_id == accept.id.hex()
    assert offer.decided_at == accept.created
    assert vendor_offers.decision_received(accept) == Reason.DUPLICATE  # the first decision stands
    decline = envelope.create(PERSON, "decline", accept.body, created=T0 + 1, expires=sent.expires)
    assert vendor_offers.decision_received(decline) == Reason.DUPLICATE
    assert vendor_offers.get(sent.id.hex()).status == "accepted"


@vendor_engines
def test_every_refusal_of_a_decision_changes_nothing(vendor_store, vendor_offers, sent, lead):
    good = {"intent": bytes.fromhex(lead.intent_id), "offer": sent.id, "to": VENDOR.public_key}

    def decision(identity=PERSON, kind="decline", expires=sent.expires, **body):
        return envelope.create(identity, kind, {**good, **body}, created=T0, expires=expires)

    before = table(vendor_store, "offers")
    for env, reason in (
        (decision(extra=1), Reason.INVALID_BODY),
        (decision(offer=b"short"), Reason.INVALID_BODY),
        (envelope.create(PERSON, "accept", [1, 2], created=T0, expires=sent.expires), Reason.INVALID_BODY),
        (decision(intent=bytes(32)), Reason.INVALID_BODY),
        (decision(to=MALLORY.public_key), Reason.INVALID_BODY),
        (decision(offer=bytes(32)), Reason.UNKNOWN_INTENT),
        (decision(MALLORY), Reason.WRONG_AUTHOR),
        (decision(kind="accept", expires=sent.expires - 1), Reason.WRONG_AUTHOR),
    ):
        assert vendor_offers.decision_received(env) == reason, env.body
        assert table(vendor_store, "offers") == before
    assert vendor_offers.decision_received(decision()) == Reason.OK
    assert vendor_offers.get(sent.id.hex()).status == "declined"


@vendor_engines
def test_decision_received_takes_only_decisions(vendor_offers, sent):
    with pytest.raises(ValidationError):
        vendor_offers.decision_received(sent)


@vendor_engines
def test_a_received_offer_is_no_sent_offer(person_offers, sent, lead):
    """A person's node does not take a decision about an offer it only received."""
    body = {"intent": bytes.fromhex(lead.intent_id), "offer": sent.id, "to": VENDOR.public_key}
    env = envelope.create(PERSON, "accept", body, created=T0, expires=sent.expires)
    assert person_offers.decision_received(env) == Reason.UNKNOWN_INTENT


# -- blocks --------------------------------------------------------------------------------------------


def test_blocks(person_store, clock):
    blocks = Blocks(person_store, clock=clock)
    node_id = encode_node_id(VENDOR.public_key)
    block = blocks.block(node_id, note=" spam ")
    assert block.to_json() == {
        "public_key": VENDOR.public_key.hex(),
        "node_id": node_id,
        "note": "spam",
        "blocked_at": T0,
    }
    assert blocks.is_blocked(VENDOR.public_key.hex()) and not blocks.is_blocked(MALLORY.public_key.hex())
    with pytest.raises(ConflictError):
        blocks.block(VENDOR.public_key.hex().upper())
    assert blocks.list() == [block]
    for bad in ("vrm1nope", "00" * 31, 7, ""):
        with pytest.raises(ValidationError):
            blocks.block(bad)
    with pytest.raises(ValidationError):
        blocks.block(encode_node_id(MALLORY.public_key), note="n" * 1001)
    assert blocks.list() == [block]
    assert blocks.unblock(node_id) == block
    with pytest.raises(NotFoundError):
        blocks.unblock(node_id)
    assert blocks.list() == []
