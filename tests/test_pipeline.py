"""The ingest pipeline over real stores: a person's node, a relay and a vendor passing items by hand.

Items travel as they would on the wire: what one node queues for another is read from its outbox and
handed to the other's ``ingest``; every node has its own store and clock.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from app.root import build_core
from federation import wire
from federation.pages import Pages
from federation.outbox import Outbox
from federation.pipeline import GOSSIP_KIND, Ingested, Pipeline
from node import envelope
from node.errors import ValidationError
from node.grants import Grants
from node.identity import Identity
from node.intents import Intents, parse_intent
from node.leads import Leads
from node.offers import Offers, offer_body
from node.peers import Peers
from node.reasons import Reason
from node.store import Store
from node.subscriptions import Subscriptions
from tests.conftest import vendor_engines

NOW = 1_750_000_000_000
HOUR = 3_600_000
ALICE = Identity.from_seed(b"\xa1" * 32)  # a person
BOB = Identity.from_seed(b"\xb0" * 32)  # another person
RELAY = Identity.from_seed(b"\x12" * 32)
VENDOR = Identity.from_seed(b"\x7e" * 32)
OTHER = Identity.from_seed(b"\x0f" * 32)  # some other node


class Clock:
    def __init__(self) -> None:
        self.ms = NOW

    def __call__(self) -> int:
        return self.ms


@dataclass
class Node:
    identity: Identity
    role: str
    store: Store
    pipeline: Pipeline
    pages: Pages
    clock: Clock

    @property
    def key(self) -> str:
        return self.identity.public_key.hex()

    def ingest(self, items: list[wire.GossipItem], from_peer: str | None = None) -> list[int]:
        result = self.pipeline.ingest(items, from_peer)
        assert isinstance(result, Ingested) and len(result.reasons) == len(items)
        return list(result.reasons)

    def peer(self, other: Node | Identity, url: str | None = "http://peer.test") -> None:
        identity = other.identity if isinstance(other, Node) else other
        role = other.role if isinstance(other, Node) else "relay"
        Peers(self.store, clock=self.clock).add(public_key=identity.public_key, url=url, role=role, name="")

    def queued(self, peer: Node | Identity) -> list[wire.GossipItem]:
        """What this node queued for ``peer``, decoded as the peer would receive it."""
        key = (peer.identity if isinstance(peer, Node) else peer).public_key.hex()
        rows = self.store.query("SELECT kind, payload FROM outbox WHERE peer = ? ORDER BY id", [key])
        assert all(r["kind"] == GOSSIP_KIND for r in rows)
        return wire.decode_batch(wire.encode_batch([r["payload"] for r in rows]))


@pytest.fixture
def make_node(tmp_path, open_vendor_store):
    """A node of ``role``; a vendor's store is of the test's engine (``@vendor_engines``: both)."""
    stores = []

    def make(identity: Identity, role: str, *, subscriptions: tuple[str, ...] = ()) -> Node:
        clock = Clock()
        name = identity.public_key.hex()[:8]
        if role == "vendor":
            store = open_vendor_store(name, clock)
        else:
            store = Store(tmp_path / f"{name}.db", clock=clock)
            stores.append(store)
        subs = Subscriptions(store, clock=clock)
        for text in subscriptions:
            subs.add(text)
        core = build_core(store, identity.public_key, role, None, subs.index, clock, identity=identity)
        return Node(identity, role, store, core.pipeline, core.pages, clock)

    yield make
    for store in stores:
        store.close()


def cast(node: Node, text: str, ttl_ms: int = 24 * HOUR) -> envelope.Envelope:
    """A person's node casts an intent and publishes it."""
    record = Intents(node.store, clock=node.clock).cast(node.identity, text, ttl_ms=ttl_ms)
    env = envelope.decode(record.raw)
    node.pipeline.publish(env)
    return env


def intent_env(identity: Identity, text: str, *, created: int = NOW - 1000, expires: int = NOW + HOUR):
    body = parse_intent(text).body()
    return envelope.create(identity, "intent", body, created=created, expires=expires)


def item(env: envelope.Envelope | bytes, ttl: int = 4) -> wire.GossipItem:
    return wire.GossipItem(ttl, env if isinstance(env, bytes) else env.raw)


def held_ids(node: Node) -> set[str]:
    return {r["id"] for r in node.store.query("SELECT id FROM envelopes")}


# -- verification, dedupe, expiry -------------------------------------------------------------------


def test_accepts_once_then_says_duplicate(make_node):
    relay = make_node(RELAY, "relay")
    a, b = intent_env(ALICE, "?taxi to the airport"), intent_env(BOB, "?bike repair")
    assert relay.ingest([item(a), item(b), item(a)]) == [Reason.OK, Reason.OK, Reason.DUPLICATE]
    assert relay.ingest([item(b), item(a)]) == [Reason.DUPLICATE, Reason.DUPLICATE]
    assert held_ids(relay) == {a.id.hex(), b.id.hex()}


def test_committed_ids_are_remembered_so_their_copies_skip_verification(make_node):
    relay = make_node(RELAY, "relay")
    a = intent_env(ALICE, "?taxi to the airport")
    verifier = relay.pipeline._verifier
    before = verifier.recent_len()
    assert relay.ingest([item(a)]) == [Reason.OK]
    assert verifier.recent_len() == before + 1  # remembered once its transaction committed
    # A copy whose signature is broken has the same id (the id does not cover the signature): it is
    # answered duplicate without a signature check, and changes nothing.
    forged = bytearray(a.raw)
    forged[-5] ^= 1
    assert relay.ingest([item(bytes(forged))]) == [Reason.DUPLICATE]
    assert held_ids(relay) == {a.id.hex()}


def test_an_id_held_in_the_store_but_not_remembered_is_a_duplicate_and_then_remembered(make_node):
    relay = make_node(RELAY, "relay")
    a = intent_env(ALICE, "?bike repair")
    assert relay.ingest([item(a)]) == [Reason.OK]
    relay.pipeline._verifier = relay.pipeline._verifier.__class__()  # a restarted node: memory empty
    assert relay.ingest([item(a)]) == [Reason.DUPLICATE]  # the store's index says so
    assert relay.pipeline._verifier.recent_len() == 1


def test_an_ingest_inside_a_callers_transaction_remembers_nothing_until_it_is_its_own(make_node):
    relay = make_node(RELAY, "relay")
    a = intent_env(ALICE, "?sofa delivery")
    verifier = relay.pipeline._verifier
    with pytest.raises(RuntimeError), relay.store.transaction():
        assert relay.ingest([item(a)]) == [Reason.OK]
        raise RuntimeError("the caller rolls back")
    assert verifier.recent_len() == 0 and held_ids(relay) == set()
    assert relay.ingest([item(a)]) == [Reason.OK]  # not mistaken for a duplicate of what rolled back
    assert verifier.recent_len() == 1


def test_a_bad_signature_in_the_middle_refuses_only_that_item(make_node):
    relay = make_node(RELAY, "relay")
    envs = [intent_env(ALICE, f"?item{i}") for i in range(5)]
    forged = bytearray(envs[2].raw)
    forged[-5] ^= 1  # inside the signature (the map ends with the sig then "v": 1)
    items = [item(e) for e in envs]
    items[2] = item(bytes(forged))
    assert relay.ingest(items) == [0, 0, Reason.BAD_SIGNATURE, 0, 0]
    assert envs[2].id.hex() not in held_ids(relay) and len(held_ids(relay)) == 4


def test_dead_and_future_envelopes_are_refused(make_node):
    relay = make_node(RELAY, "relay")
    expired = intent_env(ALICE, "?old", created=NOW - 2 * HOUR, expires=NOW - 1)
    future = intent_env(ALICE, "?soon", created=NOW + 10 * 60_000, expires=NOW + HOUR)
    garbage = b"\x81\xa1a\x01"
    assert relay.ingest([item(expired), item(future), item(garbage)]) == [
        Reason.EXPIRED,
        Reason.NOT_YET_VALID,
        Reason.MISSING_FIELD,
    ]
    assert held_ids(relay) == set()
    # An envelope held until it expires is no longer served to pullers.
    fine = intent_env(ALICE, "?fine", expires=NOW + 1000)
    assert relay.ingest([item(fine)]) == [0]
    assert [i.envelope for i in relay.pages.page(0, 10).items] == [fine.raw]
    relay.clock.ms = NOW + 1000
    assert relay.pages.page(0, 10).items == []


def test_body_rules_and_kinds_not_gossiped(make_node):
    relay = make_node(RELAY, "relay")
    good = intent_env(ALICE, "?flight SFO->JFK")
    body = dict(good.body, tokens=["train"])  # not what the text gives
    lying = envelope.create(ALICE, "intent", body, created=NOW, expires=NOW + HOUR)
    request = envelope.create(ALICE, "request", {"x": 1}, created=NOW, expires=NOW + HOUR)  # no addressee
    offer_bad = envelope.create(VENDOR, "offer", {"intent": b"x"}, created=NOW, expires=NOW + HOUR)
    assert relay.ingest([item(lying), item(request), item(offer_bad), item(good)]) == [
        Reason.INVALID_BODY,
        Reason.INVALID_BODY,
        Reason.INVALID_BODY,
        Reason.OK,
    ]


# -- forwarding and the hop limit -------------------------------------------------------------------


def test_forwards_with_one_hop_less_to_every_peer_but_the_source_and_the_author(make_node):
    relay = make_node(RELAY, "relay")
    for peer in (ALICE, OTHER, VENDOR):
        relay.peer(peer)
    relay.peer(BOB, url=None)  # behind NAT: pulls, is never pushed to
    env = intent_env(ALICE, "?plumber")
    result = relay.pipeline.ingest([item(env, ttl=3)], VENDOR.public_key.hex())
    assert result.reasons == b"\x00"
    assert result.peers == {OTHER.public_key.hex()}  # not the source (vendor), not the author (alice)
    assert relay.queued(OTHER) == [wire.GossipItem(2, env.raw)]
    assert relay.queued(ALICE) == relay.queued(VENDOR) == relay.queued(BOB) == []
    [row] = relay.store.query("SELECT ref, expires_at FROM outbox")
    assert row == {"ref": env.id.hex(), "expires_at": env.expires}
    # What pullers get is the ttl passed on, so an envelope goes as far by pull as by push.
    assert relay.pages.page(0, 10).items == [wire.GossipItem(2, env.raw)]


def test_the_hop_limit(make_node):
    relay = make_node(RELAY, "relay")
    relay.peer(OTHER)
    last_hop, greedy = intent_env(ALICE, "?last hop"), intent_env(ALICE, "?greedy")
    result = relay.pipeline.ingest([item(last_hop, ttl=0), item(greedy, ttl=250)], None)
    assert result.reasons == b"\x00\x00"
    # ttl 0: accepted and held (pullable with ttl 0) but never pushed on; 250 is clamped to 8.
    assert relay.queued(OTHER) == [wire.GossipItem(wire.MAX_TTL - 1, greedy.raw)]
    assert {i.envelope: i.ttl for i in relay.pages.page(0, 10).items} == {last_hop.raw: 0, greedy.raw: 7}


def test_a_chain_of_relays_stops_after_the_hops_allowed(make_node):
    """Origin sends ttl 4: the envelope reaches at most 5 nodes past the author along a line."""
    ids = [Identity.from_seed(bytes([0x30 + i]) * 32) for i in range(8)]
    nodes = [make_node(i, "relay") for i in ids]
    for a, b in zip(nodes, nodes[1:]):
        a.peer(b)
    env = intent_env(ALICE, "?chain")
    reached = 0
    items = [item(env, ttl=wire.ORIGIN_TTL)]
    source = None
    for node, nxt in zip(nodes, nodes[1:] + [None]):
        if not items:
            break
        assert node.ingest(items, source) == [0]
        reached += 1
        items = node.queued(nxt) if nxt else []
        source = node.key
    assert reached == 5


# -- publish -----------------------------------------------------------------------------------------


def test_publish_holds_and_queues_for_every_pushable_peer_once(make_node):
    alice = make_node(ALICE, "person")
    alice.peer(RELAY)
    alice.peer(OTHER)
    alice.peer(BOB, url=None)
    env = cast(alice, "?haircut")
    assert alice.queued(RELAY) == alice.queued(OTHER) == [wire.GossipItem(wire.ORIGIN_TTL, env.raw)]
    assert alice.pipeline.publish(env) == set()  # again: nothing new
    assert len(alice.queued(RELAY)) == 1
    # Its own envelope coming back from the network is a duplicate.
    assert alice.ingest([item(env)], RELAY.public_key.hex()) == [Reason.DUPLICATE]


# -- withdrawals -------------------------------------------------------------------------------------


@vendor_engines
def test_withdrawal_kills_the_intent_for_matching_and_gossip(make_node):
    alice = make_node(ALICE, "person")
    vendor = make_node(VENDOR, "vendor", subscriptions=("?flight",))
    alice.peer(vendor)
    intent = cast(alice, "?flight SFO->JFK max:400USD")
    assert vendor.ingest(alice.queued(vendor), alice.key) == [0]
    [lead] = Leads(vendor.store, clock=vendor.clock).list()
    assert lead.intent_id == intent.id.hex()
    assert [i.envelope for i in vendor.pages.page(0, 10).items] == [intent.raw]

    Intents(alice.store, clock=alice.clock).withdraw(ALICE, intent.id.hex())
    withdrawal = envelope.decode(alice.store.query_one("SELECT withdrawal_raw FROM intents")["withdrawal_raw"])
    alice.pipeline.publish(withdrawal)
    assert vendor.ingest(alice.queued(vendor)[1:], alice.key) == [0]
    assert Leads(vendor.store, clock=vendor.clock).list() == []
    assert Leads(vendor.store, clock=vendor.clock).list(status="withdrawn")[0].intent_id == intent.id.hex()
    # Pullers get the withdrawal, never the dead intent; the cursor still moves past it.
    page = vendor.pages.page(0, 10)
    assert [i.envelope for i in page.items] == [withdrawal.raw]
    assert page.next == max(r["seq"] for r in vendor.store.query("SELECT seq FROM envelopes"))
    # The dead intent arriving again is a duplicate, not a new lead.
    assert vendor.ingest([item(intent)], OTHER.public_key.hex()) == [Reason.DUPLICATE]
    assert Leads(vendor.store, clock=vendor.clock).list() == []


def test_withdrawal_rules(make_node):
    relay = make_node(RELAY, "relay")
    intent = intent_env(ALICE, "?sofa", expires=NOW + HOUR)

    def withdraw(identity, target=intent, expires=None, created=NOW):
        body = {"intent": target.id if isinstance(target, envelope.Envelope) else target}
        return envelope.create(identity, "withdraw", body, created=created, expires=expires or intent.expires)

    unknown = withdraw(ALICE, target=b"\x01" * 32)
    by_bob = withdraw(BOB)
    other_expiry = withdraw(ALICE, expires=intent.expires + 1)
    good = withdraw(ALICE)
    again = withdraw(ALICE, created=NOW + 1)
    bad_body = envelope.create(ALICE, "withdraw", {"intent": b"short"}, created=NOW, expires=intent.expires)
    items = [item(x) for x in (unknown, intent, by_bob, other_expiry, bad_body, good, again)]
    assert relay.ingest(items) == [
        Reason.UNKNOWN_INTENT,
        Reason.OK,
        Reason.WRONG_AUTHOR,
        Reason.WRONG_AUTHOR,
        Reason.INVALID_BODY,
        Reason.OK,
        Reason.WITHDRAWN,
    ]
    assert relay.ingest([item(again)]) == [Reason.WITHDRAWN]


@vendor_engines
def test_intent_and_withdrawal_in_one_batch_make_no_lead(make_node):
    vendor = make_node(VENDOR, "vendor", subscriptions=("?sofa",))
    intent = intent_env(ALICE, "?sofa")
    gone = envelope.create(ALICE, "withdraw", {"intent": intent.id}, created=NOW, expires=intent.expires)
    assert vendor.ingest([item(intent), item(gone)]) == [0, 0]
    assert Leads(vendor.store, clock=vendor.clock).list(status="all") == []


# -- vendor matching ---------------------------------------------------------------------------------


@vendor_engines
def test_a_vendor_matches_new_intents_in_one_batch_into_leads(make_node):
    vendor = make_node(VENDOR, "vendor", subscriptions=("?flight", "?hotel", "?flight ?hotel"))
    envs = [
        intent_env(ALICE, "?flight SFO->JFK"),
        intent_env(BOB, "?hotel nights:2"),
        intent_env(ALICE, "?bike"),
        intent_env(BOB, "?flight ?hotel"),
    ]
    assert vendor.ingest([item(e) for e in envs]) == [0, 0, 0, 0]
    leads = {lead.intent_id: lead.subscription_ids for lead in Leads(vendor.store, clock=vendor.clock).list()}
    assert leads == {envs[0].id.hex(): [1], envs[1].id.hex(): [2], envs[3].id.hex(): [1, 2, 3]}


def test_relays_and_persons_make_no_leads(make_node):
    relay = make_node(RELAY, "relay", subscriptions=("?flight",))
    assert relay.ingest([item(intent_env(ALICE, "?flight"))]) == [0]
    assert relay.store.count("leads") == 0


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
    alice.clock.ms = relay.clock.ms = NOW + HOUR
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

    monkeypatch.setattr(vendor.pipeline._leads, "add_many", broken)
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
