"""The federation API end to end: signed requests through httpx into the Starlette app (in memory via
ASGITransport, and once over a real Hypercorn server on 127.0.0.1), refusals, rate limits, and hostile
bytes that must never take the node down."""

from __future__ import annotations

import random
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import msgpack
import pytest
import trio

from app.root import build_core, federation_app_for
from federation import wire
from federation.auth import SignatureAuth
from federation.peerclient import PeerClient
from federation.pipeline import Pipeline
from federation.ratelimit import RateLimiter
from federation.server import serve
from node import envelope
from node.errors import AccessRefused, ConflictError, DeliveryError
from node.grants import Grants
from node.identity import Identity
from node.intents import parse_intent
from node.nodeid import encode_node_id
from node.offers import offer_body
from node.peers import Peers
from node.reasons import Reason
from node.receipts import Receipts
from node.seal import seal
from node.store import AsyncStore
from node.vault import Vault
from tests.helpers import Clock

HOUR = 3_600_000
RELAY = Identity.from_seed(b"\x12" * 32)
ALICE = Identity.from_seed(b"\xa1" * 32)
BOB = Identity.from_seed(b"\xb0" * 32)
CAROL = Identity.from_seed(b"\xca" * 32)
VENDOR = Identity.from_seed(b"\x7e" * 32)
BASE = "http://relay.test"


@dataclass
class Served:
    store: AsyncStore
    app: object
    notified: list[frozenset[str]]
    limiter_clock: Clock  # the rate limiter's: time moves only when a test says so

    def client(self, identity: Identity | None = ALICE) -> httpx.AsyncClient:
        auth = SignatureAuth(identity) if identity else None
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=BASE, auth=auth)

    @asynccontextmanager
    async def peer(self, identity: Identity = ALICE):
        async with self.client(None) as http:
            yield PeerClient(identity, http, timeout=5)


@pytest.fixture
async def relay(tmp_path):
    store = await AsyncStore.open(tmp_path / "relay.db")
    core = await store.run(build_core, store.store, RELAY.public_key, "relay")
    clock = Clock(1_000_000)
    notified: list[frozenset[str]] = []
    app = federation_app_for(
        store,
        core,
        node_id=encode_node_id(RELAY.public_key),
        role="relay",
        name="Relay One",
        on_ingest=notified.append,
        limiter=RateLimiter(rate=100, burst=200, clock=clock),
    )
    try:
        yield Served(store, app, notified, clock)
    finally:
        await store.aclose()


def intent(identity: Identity, text: str) -> envelope.Envelope:
    return envelope.create(identity, "intent", parse_intent(text).body(), ttl_ms=HOUR)


def items(n: int, who: Identity = ALICE, ttl: int = 4) -> list[wire.GossipItem]:
    return [wire.GossipItem(ttl, intent(who, f"?thing{i}").raw) for i in range(n)]


async def test_push_pull_node_and_hello(relay):
    batch = items(3)
    with trio.fail_after(10):
        async with relay.peer(ALICE) as alice:
            info = await alice.node_info(BASE)
            assert info == wire.NodeInfo(encode_node_id(RELAY.public_key), "relay", "Relay One", 1, ("reconcile/1", "reconcile-tokens/1"))
            assert await alice.push(BASE, batch) == bytes(3)
            assert await alice.push(BASE, batch[:1]) == bytes([Reason.DUPLICATE])
            page = await alice.pull(BASE, after=0, limit=2)
            rest = await alice.pull(BASE, after=page.next)
            assert [i.envelope for i in page.items + rest.items] == [i.envelope for i in batch]
            assert [i.ttl for i in page.items] == [3, 3]
            assert await alice.pull(BASE, after=rest.next) == wire.PullPage([], rest.next)
            # Hello records the signer as an announced peer whose URL is only a claim (verified before
            # any use); the answer is the node info.
            assert await alice.hello(BASE, "http://alice.test:8470", "person", "Alice") == info
        peers = await relay.store.run(Peers(relay.store.store).list)
    assert [(p.public_key, p.url, p.claimed_url, p.role, p.name, p.source) for p in peers] == [
        (ALICE.public_key.hex(), None, "http://alice.test:8470", "person", "Alice", "announced")
    ]
    assert relay.notified == []  # nobody to forward to yet


async def test_a_push_the_store_could_not_take_now_is_answered_busy_not_malformed(relay, monkeypatch):
    """A fleet's listeners racing on the same envelopes past the pipeline's retries (ConflictError):
    nothing was stored, so the push is refused as retryable (503 busy, Retry-After), which a sender
    re-queues, never as malformed (400), which it would dead-letter."""

    def conflicting(self, prepared, from_peer=None, *, pushed=True):
        raise ConflictError("an envelope in the batch is already held")

    monkeypatch.setattr(Pipeline, "commit", conflicting)
    with trio.fail_after(10):
        async with relay.client(ALICE) as http:
            response = await http.post("/v1/gossip", content=wire.encode_batch(
                [wire.encode_item(i.ttl, i.envelope) for i in items(2)]))  # fmt: skip
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert msgpack.unpackb(response.content)["error"] == "busy"
    assert await relay.store.run(relay.store.store.count, "envelopes") == 0


async def test_accepted_items_are_forwarded_and_the_callback_told(relay):
    with trio.fail_after(10):
        await relay.store.run(
            lambda: Peers(relay.store.store).add(public_key=BOB.public_key, url="http://bob.test", role="person", name="Bob")
        )
        async with relay.peer(CAROL) as carol, relay.peer(ALICE) as alice:
            await carol.hello(BASE, "http://carol.test", "person", "Carol")  # announced: never a push target
            assert await alice.push(BASE, items(2)) == bytes(2)
    assert relay.notified == [frozenset({BOB.public_key.hex()})]


async def test_inbox_returns_only_what_is_addressed_to_the_signer(relay):
    wanted = intent(ALICE, "?flight")
    body = offer_body(wanted.id, ALICE.public_key, 100, "EUR", "Yes", "acme", "Acme")
    offer = envelope.create(VENDOR, "offer", body, ttl_ms=HOUR)
    with trio.fail_after(10):
        async with relay.peer(VENDOR) as vendor, relay.peer(ALICE) as alice, relay.peer(BOB) as bob:
            assert await vendor.push(BASE, [wire.GossipItem(4, wanted.raw), wire.GossipItem(4, offer.raw)]) == bytes(2)
            assert [i.envelope for i in (await alice.inbox(BASE)).items] == [offer.raw]
            assert (await bob.inbox(BASE)).items == []


async def test_unsigned_forged_and_replayed_requests_get_401(relay):
    body = wire.encode_batch([wire.encode_item(4, i.envelope) for i in items(1)])
    with trio.fail_after(10):
        async with relay.client(None) as anonymous, relay.client(ALICE) as signer:
            unsigned = await anonymous.post("/v1/gossip", content=body)
            nowhere = await anonymous.get("/v1/nothing-here")
            good = await signer.post("/v1/gossip", content=body)
            sent = good.request
            replay = await anonymous.send(httpx.Request("POST", sent.url, headers=sent.headers, content=body))
            forged = await anonymous.send(httpx.Request("POST", sent.url, headers=sent.headers, content=body + b"\x00"))
            headers = sent.headers.copy()
            headers["Signature"] = "vrm=:" + "A" * 86 + "==:"
            bad = await anonymous.send(httpx.Request("POST", sent.url, headers=headers, content=body))
    assert good.status_code == 200
    for response, reason in (
        (unsigned, "missing_signature"),
        (nowhere, "missing_signature"),
        (replay, "replayed"),
        (forged, "digest_mismatch"),
        (bad, "bad_signature"),
    ):
        assert response.status_code == 401 and response.headers["vrm-signature-error"] == reason


async def test_oversize_requests_get_413(relay):
    too_many = wire.encode_batch([wire.encode_item(0, b"e")] * (wire.MAX_ITEMS + 1))
    with trio.fail_after(20):
        async with relay.client(ALICE) as http:
            many = await http.post("/v1/gossip", content=too_many)
            huge = await http.post("/v1/gossip", content=b"\x91" + bytes(wire.MAX_BATCH_BYTES))
            hello = await http.post("/v1/hello", content=bytes(wire.MAX_SMALL_BODY + 1))
        async with relay.peer(ALICE) as alice:
            with pytest.raises(DeliveryError) as info:
                await alice.push(BASE, [b"\x92\x00\xc4\x01e"] * (wire.MAX_ITEMS + 1))
    assert many.status_code == 413 and msgpack.unpackb(many.content)["error"] == "too_large"
    assert huge.status_code == 413  # refused by the signature layer before hashing
    assert hello.status_code == 413
    assert info.value.retry is False and "413" in str(info.value)


async def test_a_flooding_peer_is_limited_while_another_gets_through(relay):
    with trio.fail_after(20):
        async with relay.peer(ALICE) as alice, relay.peer(BOB) as bob, relay.client(ALICE) as raw:
            flood = items(250, ALICE)
            reasons = await alice.push(BASE, flood)
            # The burst is 200 tokens: the rest of the batch is answered rate_limited, not dropped silently.
            assert reasons == bytes(200) + bytes([Reason.RATE_LIMITED]) * 50
            refused = await raw.post("/v1/gossip", content=wire.encode_batch([wire.encode_item(4, flood[0].envelope)]))
            assert refused.status_code == 429
            assert msgpack.unpackb(refused.content) == {"error": "rate_limited"}
            assert int(refused.headers["retry-after"]) >= 1
            # Another peer has its own budget.
            assert await bob.push(BASE, items(5, BOB)) == bytes(5)
            # Time refills the bucket: the limited items can be sent again.
            relay.limiter_clock.now += 1000
            assert await alice.push(BASE, flood[200:]) == bytes(50)


async def test_bad_query_parameters(relay):
    with trio.fail_after(10):
        async with relay.client(ALICE) as http:
            statuses = [
                (await http.get("/v1/gossip", params=params)).status_code
                for params in ({"after": "-1"}, {"limit": "0"}, {"after": "x"}, {"after": "9" * 40}, {"limit": "1e3"})
            ]
            clamped = await http.get("/v1/gossip", params={"limit": "999999", "after": str(2**63 - 1)})
            wrong_method = await http.delete("/v1/gossip")
    assert statuses == [400] * 5
    assert clamped.status_code == 200 and msgpack.unpackb(clamped.content) == {"items": [], "next": 2**63 - 1}
    assert wrong_method.status_code == 405


def hostile_bodies(rng: random.Random) -> list[bytes]:
    crafted = [
        b"",
        b"\xc1",
        b"\x91" * 100_000,  # deep nesting
        b"\xdd\x00\x00\x03\xe8",  # 1000 items announced, none there
        b"\x92\x92\x00",
        b"\x91\x92\xff\xc4\x05abc",  # negative ttl, truncated bin
        msgpack.packb([[1, "x"]]),
        msgpack.packb({"url": None}),
        msgpack.packb([[0, b"\x87" + b"\xc1" * 50]]),  # an envelope that is garbage: a per-item reason
        b"\xde\xff\xff" + b"\xa1a\x01" * 10,
        b"\xd9\x05hello",
    ]
    return crafted + [rng.randbytes(rng.randrange(1, 2000)) for _ in range(150)]


async def test_random_and_hostile_bytes_never_hurt_the_node(relay):
    rng = random.Random(4)
    bodies = hostile_bodies(rng)
    seen: set[int] = set()
    with trio.fail_after(60):
        async with relay.client(ALICE) as http:
            for body in bodies:
                for path in ("/v1/gossip", "/v1/hello", "/v1/access", "/v1/access/push"):
                    response = await http.post(path, content=body)
                    seen.add(response.status_code)
                    assert response.status_code in (200, 400, 413), (path, body[:20], response.text)
                    if response.status_code != 200:
                        assert isinstance(msgpack.unpackb(response.content)["error"], str)
                    else:
                        assert path in ("/v1/gossip", "/v1/access/push")
                        reasons = msgpack.unpackb(response.content)["reasons"]
                        assert all(r != Reason.OK for r in reasons)
                relay.limiter_clock.now += 10_000  # the flood of junk is not what is tested here
            junk_query = await http.get("/v1/gossip?" + rng.randbytes(50).hex() + "=%ff%00&after=%00")
            assert junk_query.status_code in (200, 400)
        # Still up and well.
        async with relay.peer(BOB) as bob:
            assert await bob.push(BASE, items(2, BOB)) == bytes(2)
    assert 400 in seen


async def test_over_a_real_server_on_loopback(relay):
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            bound = await nursery.start(serve, relay.app)
            try:
                async with PeerClient(ALICE, timeout=5) as alice, PeerClient(BOB, timeout=5) as bob:
                    assert (await alice.node_info(bound.url)).role == "relay"
                    batch = items(150)
                    assert await alice.push(bound.url, batch[:150]) == bytes(150)
                    pulled = await bob.pull(bound.url, after=0, limit=1000)
                    assert [i.envelope for i in pulled.items] == [i.envelope for i in batch[:150]]
                    async with httpx.AsyncClient() as anonymous:
                        response = await anonymous.post(bound.url + "/v1/gossip", content=b"\x90")
                        assert response.status_code == 401
                        response = await anonymous.post(
                            bound.url + "/v1/gossip",
                            content=rng_bytes(),
                            auth=SignatureAuth(BOB),
                        )
                        assert response.status_code == 400
            finally:
                nursery.cancel_scope.cancel()


def rng_bytes() -> bytes:
    return random.Random(7).randbytes(5000)


# -- consented access ---------------------------------------------------------------------------------

SECRETS = {"email": "alice@example.org", "phone": "+1 555 0100"}


@dataclass
class Person:
    served: Served
    grant: str  # a grant alice gave VENDOR for email and phone


@pytest.fixture(params=[False, True], ids=["vault_open", "vault_locked"])
async def person(tmp_path, request):
    """Alice's node: a vault, a grant to VENDOR, VENDOR a peer with a URL (receipt copies go there).
    ``vault_locked``: the vault is encrypted and the node runs without its key."""
    store = await AsyncStore.open(tmp_path / "alice.db")
    key = bytes(range(32))
    locked = request.param

    def setup(s):
        vault = Vault(s, key if locked else None)
        for name, value in SECRETS.items():
            vault.set(name, value)
        Peers(s).add(public_key=VENDOR.public_key, url="http://vendor.test", role="vendor", name="")
        grant, _ = Grants(s).create(
            ALICE, VENDOR.public_key, fields=["email", "phone"], purpose="deliveries", duration_ms=HOUR
        )
        return grant.id

    grant = await store.run(setup, store.store)
    core = await store.run(lambda: build_core(store.store, ALICE.public_key, "person", identity=ALICE))
    notified: list[frozenset[str]] = []
    app = federation_app_for(
        store,
        core,
        node_id=encode_node_id(ALICE.public_key),
        role="person",
        on_ingest=notified.append,
        limiter=RateLimiter(rate=100, burst=200, clock=Clock(1_000_000)),
    )
    try:
        yield Person(Served(store, app, notified, Clock(1_000_000)), grant), locked
    finally:
        await store.aclose()


async def test_access_answers_only_the_grantee_and_receipts_every_answer(person):
    alice, locked = person
    with trio.fail_after(10):
        async with alice.served.peer(VENDOR) as vendor, alice.served.peer(BOB) as bob:
            if locked:
                with pytest.raises(DeliveryError, match="503 vault_locked"):
                    await vendor.fetch(BASE, alice.grant, ["email"])
                assert await alice.served.store.run(lambda: Receipts(alice.served.store.store).list()) == []
                return
            got = await vendor.fetch(BASE, alice.grant, ["email"])
            assert (got.grant, got.fields, got.values) == (alice.grant, ["email"], {"email": SECRETS["email"]})
            assert (await vendor.fetch(BASE, alice.grant)).values == SECRETS
            for who, grant, fields, reason in (
                (bob, alice.grant, None, "not_grantee"),
                (vendor, "ab" * 32, None, "no_grant"),
                (vendor, alice.grant, ["name"], "out_of_scope"),
            ):
                with pytest.raises(AccessRefused) as caught:
                    await who.fetch(BASE, grant, fields)
                assert caught.value.reason == reason
        outcomes = await alice.served.store.run(lambda: [r.outcome for r in Receipts(alice.served.store.store).list()])
    assert outcomes == ["ok", "ok", "not_grantee", "out_of_scope"]  # no_grant names none of hers: only counted
    # Receipt copies were queued for the vendor, a peer with a URL (BOB is none: his waits in the inbox).
    assert frozenset({VENDOR.public_key.hex()}) in alice.served.notified


async def test_access_bodies_that_break_the_wire_rules_get_400(person):
    alice, _ = person
    with trio.fail_after(10):
        async with alice.served.client(VENDOR) as http:
            for body in (
                msgpack.packb({"grant": b"x" * 31, "fields": None}),
                msgpack.packb({"grant": b"x" * 32}),
                msgpack.packb({"grant": b"x" * 32, "fields": []}),
                msgpack.packb({"grant": b"x" * 32, "fields": [1]}),
                msgpack.packb({"grant": b"x" * 32, "fields": None, "more": 1}),
                msgpack.packb({"grant": b"x" * 32, b"fields": None}),  # a bytes key beside a text one
                msgpack.packb([b"x" * 32]),
            ):
                response = await http.post("/v1/access", content=body)
                assert response.status_code == 400
                assert msgpack.unpackb(response.content)["error"] == wire.MALFORMED_REQUEST
            for body in (msgpack.packb([[b"x" * 32, -1, b""]]), msgpack.packb([[b"x" * 32, 1]]), b"\x81"):
                response = await http.post("/v1/access/push", content=body)
                assert response.status_code == 400
        assert await alice.served.store.run(lambda: Receipts(alice.served.store.store).list()) == []


async def test_access_push_answers_one_reason_per_item(person):
    """Alice's node holds no grant received from BOB: what he pushes is refused item by item."""
    alice, _ = person
    grant = bytes.fromhex(alice.grant)
    good = seal(ALICE.public_key, envelope_codec({"email": "x"}), info=grant)
    with trio.fail_after(10):
        async with alice.served.peer(BOB) as bob:
            reasons = await bob.push_data(
                BASE,
                [
                    wire.PushItem(grant, 1, good),
                    wire.PushItem(grant, 1, b"not sealed to alice"),
                    wire.PushItem(bytes(32), 1, good),  # sealed with another grant id as info
                ],
            )
    assert reasons[1] == reasons[2] == Reason.INVALID_BODY
    assert reasons[0] not in (Reason.OK, Reason.INVALID_BODY)  # no grant from BOB here


def envelope_codec(value) -> bytes:
    from node.backends import NATIVE

    return NATIVE.encode(value)
