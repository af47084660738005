"""The ingest pipeline over real stores: offers and decisions through a relay, pull pages, a failed
ingest, and the direct kinds taken only by their addressee (tests/pipelinenodes.py builds the nodes)."""

from __future__ import annotations

import pytest

from federation import wire
from federation.outbox import Outbox
from federation.pipeline import GOSSIP_KIND
from node import envelope
from node.errors import ValidationError
from node.grants import Grants
from node.identity import Identity
from node.intents import Intents
from node.leads import Leads
from node.offers import Offers, offer_body
from node.reasons import Reason
from tests.conftest import vendor_engines
from tests.pipelinenodes import ALICE, BOB, HOUR, NOW, OTHER, RELAY, VENDOR, Node, cast, held_ids, intent_env, item


# -- offers and decisions ----------------------------------------------------------------------------


def offer_for(intent: envelope.Envelope, *, author: Identity = VENDOR, to: bytes | None = None, **kw):
    body = offer_body(intent.id, to or intent.author, 39900, "USD", "Window seat, direct", "acme-air", "Acme Air")
    return envelope.create(author, "offer", body, created=kw.get("created", NOW), expires=kw.get("expires", NOW + HOUR))


@vendor_engines
def test_offer_accept_round_trip_through_a_relay(make_node):
    alice = make_node(ALICE, "person")
    relay = make_node(RELAY, "relay")
    vendor = make_node(VENDOR, "vendor", subscriptions=("?flight",))
    alice.peer(relay)
    relay.peer(alice)
    relay.peer(vendor)
    vendor.peer(relay)
    intent = cast(alice, "?flight SFO->JFK")
    assert relay.ingest(alice.queued(relay), alice.key) == [0]
    assert vendor.ingest(relay.queued(vendor), relay.key) == [0]
    [lead] = Leads(vendor.store, clock=vendor.clock).list()
    _, offer = Offers(vendor.store, clock=vendor.clock).make(
        VENDOR, lead, price_minor=39900, currency="USD", text="Direct", ttl_ms=HOUR, handle="acme", name="Acme"
    )
    assert vendor.pipeline.publish(offer) == {relay.key}
    assert relay.ingest(vendor.queued(relay), vendor.key) == [0]
    assert relay.queued(alice)[-1] == wire.GossipItem(3, offer.raw)
    assert alice.ingest(relay.queued(alice)[-1:], relay.key) == [0]
    [received] = Offers(alice.store, clock=alice.clock).list(direction="received")
    assert received.id == offer.id.hex() and received.status == "open"
    # The offer reached its addressee: it is not passed on from there.
    assert alice.queued(relay) == [wire.GossipItem(4, intent.raw)]
    _, accept = Offers(alice.store, clock=alice.clock).accept(ALICE, received.id)
    alice.pipeline.publish(accept)
    assert relay.ingest(alice.queued(relay)[-1:], alice.key) == [0]
    assert vendor.ingest(relay.queued(vendor)[-1:], relay.key) == [0]
    [sent] = Offers(vendor.store, clock=vendor.clock).list(direction="sent", status="all")
    assert sent.status == "accepted"
    # The inbox: a person behind NAT pulls what is addressed to her.
    assert [i.envelope for i in relay.pages.page(0, 10, recipient=alice.key).items] == [offer.raw]


def test_offers_for_withdrawn_intents_are_refused(make_node):
    alice = make_node(ALICE, "person")
    relay = make_node(RELAY, "relay")
    intent = cast(alice, "?flight")
    offer = offer_for(intent)
    Intents(alice.store, clock=alice.clock).withdraw(ALICE, intent.id.hex())
    assert alice.ingest([item(offer)]) == [Reason.WITHDRAWN]
    assert Offers(alice.store, clock=alice.clock).list(status="all") == []
    # A relay holding the intent and its withdrawal refuses to carry offers for it too.
    withdrawal = envelope.decode(alice.store.query_one("SELECT withdrawal_raw FROM intents")["withdrawal_raw"])
    assert relay.ingest([item(intent), item(withdrawal), item(offer)]) == [0, 0, Reason.WITHDRAWN]


@vendor_engines
def test_offer_rules_at_the_addressee_and_on_the_way(make_node):
    alice = make_node(ALICE, "person")
    relay = make_node(RELAY, "relay")
    vendor = make_node(VENDOR, "vendor")
    intent = cast(alice, "?flight", ttl_ms=HOUR)
    never_cast = intent_env(ALICE, "?never")
    wrong_to = offer_for(intent, to=BOB.public_key)
    assert alice.ingest([item(offer_for(never_cast))]) == [Reason.UNKNOWN_INTENT]
    assert vendor.ingest([item(offer_for(intent, author=OTHER, to=VENDOR.public_key))]) == [Reason.NOT_FOR_ROLE]
    assert relay.ingest([item(intent), item(wrong_to)]) == [0, Reason.INVALID_BODY]
    # An offer for someone else's intent the relay does not hold is carried (it cannot judge it).
    assert relay.ingest([item(offer_for(never_cast))]) == [0]
    # Once the intent is dead, offers for it are too late.
    late = offer_for(intent, created=NOW + HOUR, expires=NOW + 2 * HOUR)
    alice.clock.now = relay.clock.now = NOW + HOUR
    assert alice.ingest([item(late)]) == [Reason.EXPIRED]
    assert relay.ingest([item(late)]) == [Reason.EXPIRED]


def test_decisions_checked_on_the_way(make_node):
    relay = make_node(RELAY, "relay")
    intent = intent_env(ALICE, "?flight")
    offer = offer_for(intent)
    body = {"intent": intent.id, "offer": offer.id, "to": VENDOR.public_key}
    by_bob = envelope.create(BOB, "accept", body, created=NOW, expires=offer.expires)
    by_alice = envelope.create(ALICE, "accept", body, created=NOW, expires=offer.expires)
    assert relay.ingest([item(intent), item(offer), item(by_bob), item(by_alice)]) == [0, 0, Reason.WRONG_AUTHOR, 0]
    person = make_node(BOB, "person")
    assert person.ingest([item(envelope.create(VENDOR, "decline", dict(body, to=BOB.public_key), created=NOW,
                                               expires=offer.expires))]) == [Reason.NOT_FOR_ROLE]  # fmt: skip


def test_pull_pages_follow_seq_and_limit(make_node):
    relay = make_node(RELAY, "relay")
    envs = [intent_env(ALICE, f"?thing{i}") for i in range(7)]
    relay.ingest([item(e) for e in envs])
    first = relay.pages.page(0, 3)
    second = relay.pages.page(first.next, 3)
    third = relay.pages.page(second.next, 3)
    assert [i.envelope for i in first.items + second.items + third.items] == [e.raw for e in envs]
    assert relay.pages.page(third.next, 3) == wire.PullPage([], third.next)


@vendor_engines
def test_a_failed_ingest_changes_nothing(make_node, monkeypatch):
    """The batch is one transaction: if anything fails half way, nothing of it stays."""
    vendor = make_node(VENDOR, "vendor", subscriptions=("?sofa",))
    vendor.peer(OTHER)

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    for write in ("add_many", "add_matched"):  # whichever writes the lead, after the envelope's row
        monkeypatch.setattr(vendor.pipeline._leads, write, broken)
    with pytest.raises(RuntimeError):
        vendor.ingest([item(intent_env(ALICE, "?sofa"))])
    assert vendor.store.count("envelopes") == vendor.store.count("outbox") == vendor.store.count("leads") == 0


def test_outbox_rows_are_gossip_items(make_node):
    relay = make_node(RELAY, "relay")
    relay.peer(OTHER)
    env = intent_env(ALICE, "?x")
    relay.ingest([item(env)])
    [row] = Outbox(relay.store).due(OTHER.public_key.hex(), NOW)
    assert row.payload == wire.encode_item(3, env.raw) and row.kind == GOSSIP_KIND
    assert row.ref == env.id.hex() and row.expires_at == env.expires


# -- direct kinds -------------------------------------------------------------------------------------


def access_request(vendor: Node, person: Node) -> envelope.Envelope:
    """The vendor's node signs a request for the person's email (and holds it as sent)."""
    _, env = Grants(vendor.store, clock=vendor.clock).request(
        vendor.identity, person.identity.public_key, fields=["email"], purpose="receipts", duration_ms=HOUR,
        for_ref=None,
    )
    return env


@vendor_engines
def test_a_direct_envelope_is_taken_only_by_its_addressee_in_its_role(make_node):
    alice, vendor, relay = make_node(ALICE, "person"), make_node(VENDOR, "vendor"), make_node(RELAY, "relay")
    bob = make_node(BOB, "person")
    for node in (alice, relay, bob):
        node.peer(OTHER)
    request = access_request(vendor, alice)
    # Anybody but the addressee refuses it and keeps nothing: direct envelopes are never relayed.
    assert relay.ingest([item(request)]) == [Reason.NOT_FOR_ROLE]
    assert bob.ingest([item(request)]) == [Reason.NOT_FOR_ROLE]
    assert held_ids(relay) == held_ids(bob) == set() and relay.store.count("outbox") == 0
    # Its addressee takes it (ttl 0, recipient herself), stores the request, and forwards nothing.
    assert alice.ingest([item(request, ttl=4)], OTHER.public_key.hex()) == [Reason.OK]
    [held] = alice.pipeline.log.since(0, 10, recipient=alice.key)[0]
    assert (held.id, held.ttl, held.recipient) == (request.id.hex(), 0, alice.key)
    assert alice.store.count("outbox") == 0
    assert [r.id for r in Grants(alice.store, clock=alice.clock).pending()] == [request.id.hex()]
    assert alice.ingest([item(request)]) == [Reason.DUPLICATE]
    # A request addressed to a vendor's node does not fit its role.
    to_vendor = access_request(make_node(OTHER, "vendor"), vendor)
    assert vendor.ingest([item(to_vendor)]) == [Reason.NOT_FOR_ROLE]


@vendor_engines
def test_publish_direct_queues_for_the_addressee_alone_and_gossip_pulls_leave_it_out(make_node):
    vendor, alice = make_node(VENDOR, "vendor"), make_node(ALICE, "person")
    vendor.peer(alice)
    vendor.peer(RELAY)
    vendor.peer(OTHER)
    request = access_request(vendor, alice)
    assert vendor.pipeline.publish(request) == {alice.key}  # publish sends a direct kind directly too
    assert vendor.queued(alice) == [wire.GossipItem(0, request.raw)]
    assert vendor.queued(RELAY) == vendor.queued(OTHER) == []
    assert vendor.pipeline.publish_direct(request, alice.key) == set()  # once
    gossip = vendor.pages.page(0, 10)
    assert gossip.items == [] and gossip.next > 0  # left out, but the cursor moves past it
    assert vendor.pages.page(0, 10, recipient=alice.key).items == [wire.GossipItem(0, request.raw)]
    assert vendor.pages.page(0, 10, recipient=RELAY.public_key.hex()).items == []
    with pytest.raises(ValidationError):
        vendor.pipeline.publish_direct(request, RELAY.public_key.hex())
    # Addressed to a node that is no peer with a URL: held for its inbox, queued for nobody.
    bob = make_node(BOB, "person")
    vendor.peer(bob, url=None)
    assert vendor.pipeline.publish(access_request(vendor, bob)) == set()
    assert vendor.queued(bob) == []
    assert len(vendor.pages.page(0, 10, recipient=bob.key).items) == 1
