"""An intent is a permission, to the end: real nodes on 127.0.0.1 (tests/fednet.py).

Accepting an offer closes its intent by default (a signed withdrawal, reason ``fulfilled``, reaches the
vendors: their leads show closed and take no new offer; the person's other offers on it are
superseded, and so are the vendors'); ``keep_open`` keeps it live. Accepting after the intent was
withdrawn or expired, or after the offer expired, is refused and changes nothing on either side.
"""

from __future__ import annotations

import pytest
import trio

from federation import wire
from federation.peerclient import PeerClient
from node import envelope
from node.agreements import Agreements
from node.errors import ConflictError
from node.grants import Grants
from node.intents import Intents
from node.leads import Leads
from node.offers import Offers
from node.reasons import Reason
from tests.fednet import FedNet, eventually

MINUTE = 60_000
HOUR = 60 * MINUTE
TIMEOUT = 40
FLIGHT = "Need ?flight SFO->JFK max:400USD"
TERMS = ["no-resale", "delete-after-use"]
STATE_TABLES = ("intents", "offers", "agreements", "vendors", "purchases", "notes", "envelopes", "outbox", "grants")


@pytest.fixture
async def net(nursery, tmp_path):
    yield FedNet(nursery, tmp_path)


def state(store) -> dict[str, list[dict]]:
    """Every row a decision could touch: a refused accept must leave all of it as it was."""
    return {t: store.query(f"SELECT * FROM {t} ORDER BY rowid") for t in STATE_TABLES}


async def settled(node) -> dict[str, list[dict]]:
    """The node's state once it has sent everything it queued (so a snapshot is not racing delivery)."""
    await eventually(lambda: node.read(lambda s: s.count("outbox") == 0))
    return await node.read(state)


async def person_and_vendors(net: FedNet, *names: str, **alice_options):
    alice = await net.node("alice", **alice_options)
    vendors = []
    for name in names:
        vendor = await net.node(name, "vendor")
        await vendor.op("subscriptions.add", {"text": "?flight"})
        await net.peer(alice, vendor)
        vendors.append(vendor)
    return alice, vendors


async def cast(alice, vendors, ttl_ms: int = HOUR, terms=TERMS):
    intent = await alice.op("intent.cast", {"text": FLIGHT, "ttl_ms": ttl_ms, "terms": terms})
    for vendor in vendors:
        await eventually(lambda v=vendor: v.read(lambda s: Leads(s).list()))
    return intent


async def offer_from(vendor, alice, intent, price: int, ttl_ms: int = HOUR, **args) -> dict:
    [lead] = await vendor.read(lambda s: [x for x in Leads(s).list(status="all") if x.intent_id == intent["id"]])
    made = await vendor.op(
        "offers.make",
        {"lead": lead.id, "price_minor": price, "currency": "USD", "text": f"seat for {price}", "ttl_ms": ttl_ms}
        | args,
    )
    await eventually(lambda: alice.read(lambda s: [o for o in Offers(s).list(status="all") if o.id == made["id"]]))
    return made


def sent(offer_id):
    return lambda s: Offers(s).get(offer_id)


async def test_accepting_closes_the_intent_for_every_vendor_and_both_keep_the_agreement(net):
    with trio.fail_after(TIMEOUT):
        alice, (air, jet) = await person_and_vendors(net, "air", "jet")
        intent = await cast(alice, [air, jet])
        won = await offer_from(air, alice, intent, 34_900)
        lost = await offer_from(jet, alice, intent, 36_000)
        assert won["terms"] == TERMS and won["version"] == 2  # the intent's terms, agreed by default
        assert (await air.read(sent(won["id"]))).delivery in ("queued", "delivered")

        done = await alice.op("offers.accept", {"ref": won["id"][:10]})
        assert done["status"] == "accepted" and done["intent_closed"] and done["superseded"] == [lost["id"]]

        # the person's side: the intent is closed as fulfilled, the other offer superseded
        closed = await alice.read(lambda s: Intents(s).get(intent["id"]))
        assert (closed.status, closed.withdraw_reason) == ("withdrawn", "fulfilled")
        withdrawal = envelope.decode(closed.withdrawal_raw)
        assert withdrawal.body == {"intent": bytes.fromhex(intent["id"]), "reason": "fulfilled"}
        assert (await alice.read(sent(lost["id"]))).status == "superseded"
        before = await settled(alice)
        with pytest.raises(ConflictError, match="superseded"):
            await alice.op("offers.accept", {"ref": lost["id"]})
        assert await alice.read(state) == before

        # the vendors' side: both leads closed; the winner sees its offer accepted, the other superseded
        for vendor in (air, jet):
            [lead] = await eventually(lambda v=vendor: v.read(lambda s: Leads(s).list(status="closed")))
            assert lead.intent_id == intent["id"] and await vendor.read(lambda s: Leads(s).list()) == []
        accepted = await eventually(lambda: air.read(lambda s: Offers(s).list(status="accepted")))
        assert [o.delivery for o in accepted] == ["accepted"]
        assert (await jet.read(sent(lost["id"]))).delivery == "superseded"
        assert await jet.read(lambda s: Offers(s).list(status="superseded")) != []
        with pytest.raises(ConflictError, match="closed"):
            await jet.op(
                "offers.make",
                {"lead": lead.id, "price_minor": 30_000, "currency": "USD", "text": "cheaper!", "ttl_ms": HOUR},
            )

        # both nodes hold the same agreement: the two signed envelopes, the terms agreed, the same id
        [theirs] = await eventually(lambda: air.read(lambda s: Agreements(s).list()))
        [mine] = await alice.read(lambda s: Agreements(s).list())
        assert mine == theirs
        assert mine.id == done["agreement"]["id"] and mine.offer_id == won["id"] and mine.intent_id == intent["id"]
        assert mine.terms == tuple(TERMS) and (mine.person, mine.vendor) == (alice.key, air.key)
        assert envelope.decode(mine.offer_raw).author.hex() == air.key
        assert envelope.decode(mine.accept_raw).author.hex() == alice.key
        assert await air.read(lambda s: Agreements(s).verify(theirs))
        assert await jet.read(lambda s: Agreements(s).list()) == []


async def test_keep_open_leaves_the_intent_live_and_taking_offers(net):
    with trio.fail_after(TIMEOUT):
        alice, (air, jet) = await person_and_vendors(net, "air", "jet")
        intent = await cast(alice, [air, jet])
        first = await offer_from(air, alice, intent, 34_900)
        other = await offer_from(jet, alice, intent, 36_000)
        done = await alice.op("offers.accept", {"ref": first["id"], "keep_open": True})
        assert not done["intent_closed"] and done["withdrawal_id"] is None and done["superseded"] == []
        assert (await alice.read(lambda s: Intents(s).get(intent["id"]))).status == "live"
        assert (await alice.read(sent(other["id"]))).status == "open"
        await eventually(lambda: air.read(lambda s: Offers(s).list(status="accepted")))
        await eventually(lambda: air.read(lambda s: Agreements(s).list()))
        # the acceptance has arrived and no withdrawal came with it: the leads stay live
        assert [x.status for x in await air.read(lambda s: Leads(s).list(status="all"))] == ["live"]
        assert [x.status for x in await jet.read(lambda s: Leads(s).list(status="all"))] == ["live"]
        again = await offer_from(air, alice, intent, 20_000)  # still takes offers
        assert (await alice.read(sent(again["id"]))).status == "open"
        await alice.op("offers.accept", {"ref": other["id"]})  # and a later accept closes it
        [lead] = await eventually(lambda: jet.read(lambda s: Leads(s).list(status="closed")))
        assert lead.intent_id == intent["id"]
        assert (await alice.read(sent(again["id"]))).status == "superseded"
        assert len(await alice.read(lambda s: Agreements(s).list())) == 2


async def test_accepting_after_withdrawal_or_expiry_is_refused_and_changes_nothing(net):
    with trio.fail_after(TIMEOUT):
        now = [envelope.now_ms()]
        alice, (air,) = await person_and_vendors(net, "air", clock=lambda: now[0])

        async def refused(offer_id: str, match: str) -> None:
            mine, theirs = await settled(alice), await settled(air)
            with pytest.raises(ConflictError, match=match):
                await alice.op("offers.accept", {"ref": offer_id})
            assert await alice.read(state) == mine
            await trio.sleep(0.2)  # were anything sent, it would reach the vendor meanwhile
            assert await air.read(state) == theirs

        # withdrawn: the intent is the permission, and withdrawing ended it
        withdrawn = await cast(alice, [air])
        offer = await offer_from(air, alice, withdrawn, 30_000)
        await alice.op("intent.withdraw", {"ref": withdrawn["id"]})
        await eventually(lambda: air.read(lambda s: Leads(s).list(status="withdrawn")))
        await refused(offer["id"], "withdrew")

        # the offer expired (its intent lives on)
        lasting = await alice.op("intent.cast", {"text": "?flight to LIS", "ttl_ms": 2 * HOUR, "terms": TERMS})
        await eventually(lambda: air.read(lambda s: [x for x in Leads(s).list() if x.intent_id == lasting["id"]]))
        short = await offer_from(air, alice, lasting, 25_000, ttl_ms=MINUTE)
        now[0] = short["expires"]
        assert (await alice.read(lambda s: Intents(s).get(lasting["id"]))).status == "live"
        await refused(short["id"], "has expired")

        # the intent expired while the offer still stands (a vendor may make it outlive the intent)
        brief = await alice.op("intent.cast", {"text": "?flight to OPO", "ttl_ms": HOUR, "terms": TERMS})
        body = {
            "intent": bytes.fromhex(brief["id"]),
            "to": bytes.fromhex(alice.key),
            "price": {"money": 9_900, "cur": "USD"},
            "text": "OPO, any day",
            "vendor": {"handle": "air", "name": "Air"},
            "v": 2,
            "terms": TERMS,
        }
        outliving = envelope.create(
            air.identity, "offer", body, created=now[0], expires=brief["expires"] + HOUR
        )
        async with PeerClient(air.identity, timeout=5) as client:
            assert await client.push(alice.url, [wire.GossipItem(4, outliving.raw)]) == bytes([Reason.OK])
        now[0] = brief["expires"]
        held = await alice.read(sent(outliving.id.hex()))
        assert held.status == "open" and held.expires > now[0]
        await refused(outliving.id.hex(), "intent that has expired")
        assert await alice.read(lambda s: Agreements(s).list()) == []


async def test_an_offer_that_leaves_out_a_term_is_refused(net):
    with trio.fail_after(TIMEOUT):
        alice, (air,) = await person_and_vendors(net, "air")
        intent = await cast(alice, [air])
        base = {
            "intent": bytes.fromhex(intent["id"]),
            "to": bytes.fromhex(alice.key),
            "price": {"money": 9_900, "cur": "USD"},
            "text": "a seat",
            "vendor": {"handle": "air", "name": "Air"},
        }
        created = envelope.now_ms()

        def signed(body):
            return envelope.create(air.identity, "offer", body, created=created, expires=created + HOUR).raw

        partial = signed(base | {"v": 2, "terms": ["no-resale"]})
        none = signed(base)  # body version 1: agrees to no term
        reordered = signed(base | {"v": 2, "terms": list(reversed(TERMS))})
        unknown = signed(base | {"v": 2, "terms": [*TERMS, "no-spam"]})
        before = await settled(alice)
        async with PeerClient(air.identity, timeout=5) as client:
            reasons = await client.push(alice.url, [wire.GossipItem(4, raw) for raw in (partial, none, unknown)])
            assert list(reasons) == [Reason.TERMS_NOT_AGREED, Reason.TERMS_NOT_AGREED, Reason.INVALID_BODY]
            assert await alice.read(state) == before
            assert await client.push(alice.url, [wire.GossipItem(4, reordered)]) == bytes([Reason.OK])
        [kept] = await alice.read(lambda s: Offers(s).list())
        assert kept.terms == tuple(reversed(TERMS))

        # the vendor's own node can be told to agree to fewer terms; the person's node refuses that offer
        dropped = await air.op(
            "offers.make",
            {"lead": 1, "price_minor": 100, "currency": "USD", "text": "x", "ttl_ms": HOUR, "terms": ["no-resale"]},
        )
        assert dropped["terms"] == ["no-resale"]
        await eventually(lambda: air.read(lambda s: s.count("outbox") == 0))  # delivered, and answered
        assert [o.id for o in await alice.read(lambda s: Offers(s).list(status="all"))] == [kept.id]


async def test_a_grant_under_delete_after_use_ends_when_the_deal_is_done(net):
    with trio.fail_after(TIMEOUT):
        alice, (air,) = await person_and_vendors(net, "air")
        await alice.op("vault.set", {"name": "email", "value": "alice@example.org"})
        intent = await cast(alice, [air])
        asked = await air.op(
            "access.request",
            {"person": alice.node_id, "fields": ["email"], "purpose": "tickets", "duration_ms": HOUR,
             "for": intent["id"]},
        )  # fmt: skip
        await eventually(lambda: alice.read(lambda s: Grants(s).pending()))
        granted = await alice.op("grants.approve", {"request": asked["id"], "push": False})
        assert granted["terms"] == TERMS  # the grant serving the intent carries its terms
        await eventually(lambda: air.read(lambda s: Grants(s).list(direction="received")))
        await air.op("access.fetch", {"grant": granted["id"], "fields": None})
        assert await air.read(lambda s: Grants(s).held(granted["id"])) == {"email": "alice@example.org"}
        offer = await offer_from(air, alice, intent, 34_900)
        done = await alice.op("offers.accept", {"ref": offer["id"], "keep_open": True})
        assert done["grants_ended"] == 1 and not done["intent_closed"]
        [ended] = await alice.read(lambda s: Grants(s).list(direction="given", status="all"))
        assert (ended.status, ended.end_reason) == ("ended", "intent_ended")
        # the vendor got the revocation, deleted what it held and said so
        await eventually(lambda: air.read(lambda s: not Grants(s).held(granted["id"])))
        await eventually(
            lambda: alice.read(
                lambda s: Grants(s).list(direction="given", status="all")[0].deletion_confirmed_at is not None
            )
        )


async def test_a_withdrawal_with_a_reason_no_one_defined_is_refused_and_closes_nothing(net):
    with trio.fail_after(TIMEOUT):
        alice, (air,) = await person_and_vendors(net, "air")
        intent = await cast(alice, [air])
        body = {"intent": bytes.fromhex(intent["id"]), "reason": "bored"}
        odd = envelope.create(alice.identity, "withdraw", body, created=envelope.now_ms(), expires=intent["expires"])
        fulfilled = envelope.create(
            alice.identity, "withdraw", {**body, "reason": "fulfilled"}, created=envelope.now_ms(),
            expires=intent["expires"],
        )  # fmt: skip
        forged = envelope.create(
            air.identity, "withdraw", {**body, "reason": "fulfilled"}, created=envelope.now_ms(),
            expires=intent["expires"],
        )  # fmt: skip
        async with PeerClient(alice.identity, timeout=5) as client:
            reasons = await client.push(air.url, [wire.GossipItem(4, odd.raw), wire.GossipItem(4, forged.raw)])
            assert list(reasons) == [Reason.INVALID_BODY, Reason.WRONG_AUTHOR]
            assert [x.status for x in await air.read(lambda s: Leads(s).list(status="all"))] == ["live"]
            assert await client.push(air.url, [wire.GossipItem(4, fulfilled.raw)]) == bytes([Reason.OK])
        assert [x.status for x in await air.read(lambda s: Leads(s).list(status="all"))] == ["closed"]
