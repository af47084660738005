"""The ingest pipeline over real stores: verification, dedupe, expiry, forwarding and the hop limit,
publishing, withdrawals and a vendor's matching (offers and direct kinds: test_pipeline_offers.py).

Items travel as they would on the wire: what one node queues for another is read from its outbox and
handed to the other's ``ingest``; every node has its own store and clock (tests/pipelinenodes.py).
"""

from __future__ import annotations

import pytest

from federation import wire
from node import envelope
from node.identity import Identity
from node.intents import Intents
from node.leads import Leads
from node.reasons import Reason
from tests.conftest import vendor_engines
from tests.pipelinenodes import ALICE, BOB, HOUR, NOW, OTHER, RELAY, VENDOR, cast, held_ids, intent_env, item


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


def test_inside_a_batch_an_item_is_a_duplicate_only_of_one_accepted(make_node):
    """PROTOCOL.md section 7, "Judging a batch": a forged copy before the genuine one does not make the
    genuine one a duplicate (it is stored), a copy of a refused item keeps its reason, and a copy of
    an accepted one is a duplicate."""
    relay = make_node(RELAY, "relay")
    a = intent_env(ALICE, "?taxi to the airport")
    forged = bytearray(a.raw)
    forged[-5] ^= 1
    late = intent_env(ALICE, "?late", created=NOW - 2 * HOUR, expires=NOW - 1)
    pushed = [item(bytes(forged)), item(a), item(a), item(late), item(late), item(bytes(forged))]
    # ... and any copy after the accepted one, forged or not, is a duplicate (the node holds it now)
    assert relay.ingest(pushed) == [Reason.BAD_SIGNATURE, Reason.OK, Reason.DUPLICATE, Reason.EXPIRED,
                                    Reason.EXPIRED, Reason.DUPLICATE]  # fmt: skip
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
    relay.clock.now = NOW + 1000
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


def test_a_mixed_batch_is_stored_and_forwarded_in_its_own_order(make_node):
    """Intents join a batch by column and other kinds one by one; rows and forwards still keep the
    batch's order (a withdrawal after its intent, for pullers and peers alike)."""
    relay = make_node(RELAY, "relay")
    relay.peer(OTHER)
    a, b = intent_env(ALICE, "?sofa"), intent_env(BOB, "?bike repair")
    gone = envelope.create(ALICE, "withdraw", {"intent": a.id}, created=NOW, expires=a.expires)
    assert relay.ingest([item(a, ttl=3), item(gone, ttl=3), item(b, ttl=3)]) == [0, 0, 0]
    stored = [bytes(r["raw"]) for r in relay.store.query("SELECT raw FROM envelopes ORDER BY seq")]
    assert stored == [a.raw, gone.raw, b.raw]
    assert relay.queued(OTHER) == [wire.GossipItem(2, x.raw) for x in (a, gone, b)]


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
