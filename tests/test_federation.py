"""Several real nodes on 127.0.0.1, talking over HTTP: what a person and vendors see of each other.

Each test builds its own small network (tests/fednet.py): fresh homes, NodeRuntime servers on port 0,
peering through the ops the CLI runs. Every wait is polled under the test's ``trio.fail_after``.
"""

from __future__ import annotations

from functools import partial

import httpx
import pytest
import trio

from federation import wire
from federation.auth import SignatureAuth
from federation.outbox import DEAD_KEPT_MS, Outbox
from federation.peerclient import PeerClient
from federation.ratelimit import RateLimiter
from node import envelope
from node.errors import ConflictError, DeliveryError
from node.gossiplog import GossipLog
from node.identity import Identity
from node.intents import parse_intent
from node.leads import Leads
from node.offers import Offers
from node.peers import Peers
from node.reasons import Reason
from node.records import Records
from tests.fednet import FedNet, eventually

HOUR = 3_600_000
FLIGHT = "Need ?flight SFO->JFK max:400USD"
TIMEOUT = 30


@pytest.fixture
async def net(nursery, tmp_path):
    yield FedNet(nursery, tmp_path)


def live_leads(store):
    return Leads(store).list()


def received_offers(store):
    return Offers(store).list(direction="received", status="all")


def sent_offers(store):
    return Offers(store).list(direction="sent", status="all")


async def vendor(net: FedNet, name: str, subscription: str, **options):
    node = await net.node(name, "vendor", **options)
    await node.op("subscriptions.add", {"text": subscription})
    return node


async def cast_and_lead(alice, air, text: str = FLIGHT):
    """Alice casts; returns (intent, the lead it became at the vendor)."""
    intent = await alice.op("intent.cast", {"text": text, "ttl_ms": HOUR, "terms": ["no-resale"]})
    leads = await eventually(lambda: air.read(live_leads))
    assert [lead.intent_id for lead in leads] == [intent["id"]]
    return intent, leads[0]


async def make_offer(air, lead, price: int = 34_900) -> dict:
    args = {"lead": lead.id, "price_minor": price, "currency": "USD", "text": "SFO->JFK, seat 12A", "ttl_ms": HOUR}
    return await air.op("offers.make", args)


async def test_an_intent_reaches_only_matching_vendors(net):
    with trio.fail_after(TIMEOUT):
        alice = await net.node("alice")
        air = await vendor(net, "acme", "?flight")
        cabs = await vendor(net, "cabs", "?taxi")
        await net.peer(alice, air)
        await net.peer(alice, cabs)
        intent, lead = await cast_and_lead(alice, air)
        assert lead.author == alice.key and lead.text == FLIGHT and lead.status == "live"
        # The taxi vendor holds the envelope (it gossips it on) but has no lead from it.
        await eventually(lambda: cabs.read(lambda s: GossipLog(s).get(intent["id"])))
        assert await cabs.read(live_leads) == []
        # Both vendors now know alice as a peer (her hello), with her URL for pushing.
        for node in (air, cabs):
            peer = await node.read(lambda s: Peers(s).by_key(alice.key))
            assert peer.source == "announced" and peer.url == alice.url and peer.role == "person"


async def test_withdrawal_propagates_and_stops_offers(net):
    with trio.fail_after(TIMEOUT):
        alice = await net.node("alice")
        air = await vendor(net, "acme", "?flight")
        await net.peer(alice, air)
        intent, lead = await cast_and_lead(alice, air)
        withdrawn = await alice.op("intent.withdraw", {"ref": intent["id"][:10]})
        assert withdrawn["status"] == "withdrawn"
        await eventually(lambda: air.read(lambda s: Leads(s).get(lead.id).status == "withdrawn"))
        assert await air.read(live_leads) == []
        with pytest.raises(ConflictError, match="withdrawn"):
            await make_offer(air, lead)


async def test_a_node_without_public_url_gets_its_offers_by_pulling_its_inbox(net):
    with trio.fail_after(TIMEOUT):
        alice = await net.node("alice", reachable=False)  # behind NAT: announces no URL
        air = await vendor(net, "acme", "?flight")
        await net.peer(alice, air)
        assert (await air.read(lambda s: Peers(s).by_key(alice.key))).url is None
        intent, lead = await cast_and_lead(alice, air)
        offer = await make_offer(air, lead)
        assert await air.read(lambda s: s.count("outbox")) == 0  # nobody to push it to
        assert await alice.read(received_offers) == []
        result = await alice.op("sync")
        assert result == {"peers": 1, "reached": 1, "received": 1, "fetched": 1}  # the offer, from her inbox
        [got] = await alice.read(received_offers)
        assert (got.id, got.intent_id, got.price_minor, got.status) == (offer["id"], intent["id"], 34_900, "open")
        assert (await alice.read(lambda s: Peers(s).by_key(air.key))).inbox_cursor > 0
        assert (await alice.op("sync"))["received"] == 0  # the cursor moved: nothing twice


async def test_a_stopped_person_gets_its_offers_when_it_comes_back(net):
    with trio.fail_after(TIMEOUT):
        alice = await net.node("alice")
        air = await vendor(net, "acme", "?flight")
        await net.peer(alice, air)
        intent, lead = await cast_and_lead(alice, air)
        await net.stop(alice)
        offer = await make_offer(air, lead)
        await net.start(alice)  # a new port: it says hello with its new URL and pulls its inbox
        [got] = await eventually(lambda: alice.read(received_offers))
        assert got.id == offer["id"] and got.intent_id == intent["id"]
        # Her start-up pull read her inbox at air (air may also have pushed it once it heard her hello).
        await eventually(lambda: alice.read(lambda s: Peers(s).by_key(air.key).inbox_cursor > 0))
        assert (await alice.read(lambda s: Peers(s).by_key(air.key))).failures == 0
        await eventually(lambda: air.read(lambda s: Peers(s).by_key(alice.key).url == alice.url))


async def test_a_restarted_vendor_resends_what_it_had_queued(net):
    with trio.fail_after(TIMEOUT):
        alice = await net.node("alice")
        air = await vendor(net, "acme", "?flight")
        await net.peer(alice, air)
        intent, lead = await cast_and_lead(alice, air)
        port = alice.port
        await net.stop(alice)
        offer = await make_offer(air, lead)  # alice is down: the push fails and stays queued
        await eventually(lambda: air.read(lambda s: s.query_one("SELECT attempts FROM outbox WHERE attempts > 0")))
        await net.stop(air)
        assert await air.read(lambda s: s.count("outbox")) == 1
        await net.start(alice, port=port)  # same URL; air is down, so her start-up hello and pull fail
        await eventually(lambda: alice.read(lambda s: Peers(s).by_key(air.key).failures >= 2))
        assert await alice.read(received_offers) == []
        await net.start(air)  # its deliverer resumes the queue
        [got] = await eventually(lambda: alice.read(received_offers))
        assert got.id == offer["id"]
        assert (await alice.read(lambda s: Peers(s).by_key(air.key))).inbox_cursor == 0  # pushed, not pulled
        await eventually(lambda: air.read(lambda s: s.count("outbox") == 0))


async def test_a_flood_from_one_peer_is_rate_limited_while_others_get_through(net):
    with trio.fail_after(TIMEOUT):
        air = await vendor(net, "acme", "?flight", app_options={"limiter": RateLimiter(2.0, 20)})
        alice = await net.node("alice")
        await net.peer(alice, air)
        mallory = Identity.generate()
        limited = accepted = refused_requests = 0
        async with PeerClient(mallory) as flooder:
            for batch in range(5):
                items = [wire.GossipItem(4, _intent(mallory, f"?spam number {batch}-{i}")) for i in range(15)]
                try:
                    reasons = await flooder.push(air.url, items)
                except DeliveryError as exc:
                    assert "429" in str(exc) and "rate_limited" in str(exc)
                    refused_requests += 1
                    continue
                accepted += reasons.count(Reason.OK)
                limited += reasons.count(Reason.RATE_LIMITED)
        assert limited > 0 and refused_requests > 0
        assert accepted <= 20 + 2  # the burst, plus what refilled meanwhile
        # Alice has her own bucket: her intent is not held up by mallory's flood.
        await cast_and_lead(alice, air)


async def test_bad_and_replayed_signatures_are_refused(net):
    with trio.fail_after(TIMEOUT):
        air = await net.node("acme", "vendor")
        mallory = Identity.generate()
        async with httpx.AsyncClient() as http:
            unsigned = await http.get(air.url + "/v1/node")
            assert unsigned.status_code == 401
            assert unsigned.headers["Vrm-Signature-Error"] == "missing_signature"

            signed = _signed(http, mallory, "GET", air.url + "/v1/node")
            first = await http.send(signed)
            assert first.status_code == 200
            assert wire.decode_node_info(first.content).node_id == air.node_id
            again = await http.send(signed)
            assert (again.status_code, again.headers["Vrm-Signature-Error"]) == (401, "replayed")

            forged = _signed(http, mallory, "POST", air.url + "/v1/gossip", content=wire.encode_batch([]))
            forged.headers["Signature"] = "vrm=:" + "A" * 86 + "==:"
            refused = await http.send(forged)
            assert (refused.status_code, refused.headers["Vrm-Signature-Error"]) == (401, "bad_signature")

            intent = wire.encode_item(4, _intent(mallory, "?flight cheap"))
            swapped = _signed(http, mallory, "POST", air.url + "/v1/gossip", content=wire.encode_batch([]))
            swapped.stream = httpx.ByteStream(wire.encode_batch([intent]))  # another body, same signature
            swapped.headers["Content-Length"] = str(len(wire.encode_batch([intent])))
            refused = await http.send(swapped)
            assert (refused.status_code, refused.headers["Vrm-Signature-Error"]) == (401, "digest_mismatch")
        assert await air.read(lambda s: s.count("envelopes")) == 0  # nothing got in


async def test_offer_accept_round_trip_updates_both_sides(net):
    with trio.fail_after(TIMEOUT):
        alice = await net.node("alice")
        air = await vendor(net, "acme", "?flight")
        await net.peer(alice, air)
        intent, lead = await cast_and_lead(alice, air)
        offer = await make_offer(air, lead, price=34_900)
        [got] = await eventually(lambda: alice.read(received_offers))
        assert (got.vendor, got.vendor_handle, got.vendor_name) == (air.key, "acme", "Acme")
        accepted = await alice.op("offers.accept", {"ref": offer["id"][:8]})
        assert accepted["status"] == "accepted"
        [mine] = await eventually(
            lambda: air.read(lambda s: [o for o in sent_offers(s) if o.status == "accepted"])
        )
        assert mine.id == offer["id"]

        def relationship(store):
            records = Records(store)
            [acme] = records.list_vendors()
            return acme, records.list_purchases(acme.id)

        acme, purchases = await alice.read(relationship)
        assert (acme.handle, acme.name, acme.node_id) == ("@acme", "Acme", air.node_id)
        assert [(p.product, p.price_minor, p.currency) for p in purchases] == [(FLIGHT, 34_900, "USD")]
        with pytest.raises(ConflictError, match="already accepted"):
            await alice.op("offers.decline", {"ref": offer["id"]})


def _intent(identity: Identity, text: str) -> bytes:
    now = envelope.now_ms()
    body = parse_intent(text).body(())
    return envelope.create(identity, "intent", body, created=now, expires=now + HOUR).raw


def _signed(http: httpx.AsyncClient, identity: Identity, method: str, url: str, **kwargs) -> httpx.Request:
    """A request signed once, as SignatureAuth signs it, to be sent (and resent) as is."""
    request = http.build_request(method, url, **kwargs)
    return next(SignatureAuth(identity).auth_flow(request))


async def test_removing_a_peer_drops_what_was_queued_for_it(net):
    with trio.fail_after(TIMEOUT):
        alice = await net.node("alice")
        bob = await net.node("bob")
        await net.peer(alice, bob)
        await net.stop(bob)
        await alice.op("intent.cast", {"text": FLIGHT, "ttl_ms": HOUR, "terms": []})
        await eventually(lambda: alice.read(lambda s: s.query_one("SELECT 1 FROM outbox WHERE attempts > 0")))
        await alice.op("peers.remove", {"ref": bob.node_id})
        sql = "SELECT peer, reason, last_error FROM outbox_dead"
        dead = await eventually(lambda: alice.read(lambda s: s.query(sql)))
        assert dead == [{"peer": bob.key, "reason": "rejected", "last_error": "peer removed"}]
        assert await alice.read(lambda s: s.count("outbox")) == 0


async def test_expired_envelopes_are_swept(net):
    with trio.fail_after(TIMEOUT):
        now = [envelope.now_ms()]
        alice = await net.node("alice", clock=lambda: now[0], sweep_interval=0.02)
        await alice.op("intent.cast", {"text": FLIGHT, "ttl_ms": 60_000, "terms": []})
        assert await alice.read(lambda s: s.count("envelopes")) == 1
        now[0] += 60_000  # the instant it expires
        await eventually(lambda: alice.read(lambda s: s.count("envelopes") == 0))
        assert await alice.read(lambda s: s.count("intents")) == 1  # her own record stays (as expired)



async def test_old_dead_letters_are_swept(net):
    """A running node drops dead letters once they are DEAD_KEPT_MS old, with the expired envelopes."""
    with trio.fail_after(TIMEOUT):
        now = [envelope.now_ms()]
        alice = await net.node("alice", clock=lambda: now[0], sweep_interval=0.02)

        def dead_letter(store):
            outbox = Outbox(store)
            with store.transaction():
                queued = outbox.enqueue("ab" * 32, b"refused", kind="intent", now=now[0])
            outbox.mark_rejected([queued], now[0], "HTTP 400")

        await alice.read(dead_letter)
        now[0] += DEAD_KEPT_MS - 1
        await trio.sleep(0.1)  # sweeps ran: it is not yet old enough
        assert await alice.read(lambda s: s.count("outbox_dead")) == 1
        now[0] += 1
        await eventually(lambda: alice.read(lambda s: s.count("outbox_dead") == 0))

async def test_server_reports_the_bound_port_and_drains_requests_on_shutdown():
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from federation.server import serve

    async def slow(request):
        await trio.sleep(0.3)
        return PlainTextResponse("done")

    app = Starlette(routes=[Route("/slow", slow)])
    stop = trio.Event()
    with trio.fail_after(TIMEOUT):
        async with httpx.AsyncClient() as http:
            async with trio.open_nursery() as nursery:
                bound = await nursery.start(partial(serve, app, port=0, shutdown_trigger=stop.wait))
                assert bound.host == "127.0.0.1" and bound.port > 0 and bound.url == f"http://127.0.0.1:{bound.port}"
                answers = []

                async def call() -> None:
                    answers.append((await http.get(bound.url + "/slow")).text)

                nursery.start_soon(call)
                await trio.sleep(0.1)  # the request is in flight
                stop.set()
            assert answers == ["done"]  # finished although shutdown began meanwhile
            with pytest.raises(httpx.ConnectError):
                await http.get(bound.url + "/slow")
