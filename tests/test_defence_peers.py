"""Peers a stranger cannot steer (issue 10, item 3): real nodes on loopback.

300 strangers say hello, each naming a URL on a sink that counts every request it gets; then one push
of 100 intents. Only the operator-added peer is a push target, and each stranger URL costs at most
one verification request: ≤ 1,000 deliveries queued and ≤ 400 requests to stranger URLs.
"""

from __future__ import annotations

from functools import partial

import httpx
import pytest
import trio
from starlette.applications import Starlette
from starlette.responses import Response

from federation import wire
from federation.peerclient import PeerClient
from federation.auth import SignatureAuth
from federation.egress import serves_privately, url_allowed
from federation.peerverify import ClaimVerifier
from federation.server import serve
from node.errors import DeliveryError
from node.identity import Identity
from node.peers import Peers
from node.store import AsyncStore
from tests.fednet import FedNet, eventually
from tests.test_defence_refusals import intents

TIMEOUT = 90  # 300 signed hellos, each answered once its URL was tried: ~10 s on a quiet machine


@pytest.fixture
async def net(nursery, tmp_path):
    yield FedNet(nursery, tmp_path)


class Sink:
    """Counts every request to the stranger URLs; answers 404 (no node lives there)."""

    def __init__(self) -> None:
        self.requests = 0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            self.requests += 1
            await Response(b"", 404)(scope, receive, send)
        else:
            await Starlette()(scope, receive, send)


async def nursery_client(nursery) -> httpx.AsyncClient:
    http = httpx.AsyncClient(timeout=30)

    async def close_at_end() -> None:
        try:
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await http.aclose()

    nursery.start_soon(close_at_end)
    return http


def deliveries(store) -> int:
    return store.count("outbox") + store.count("outbox_dead")


async def test_300_stranger_hellos_then_one_push_stay_bounded(net, nursery):
    with trio.fail_after(TIMEOUT):
        sink = Sink()
        bound = await nursery.start(partial(serve, sink, host="127.0.0.1", port=0))
        node = await net.node("relay")
        friend = await net.node("friend")
        await net.peer(node, friend)  # the one peer the operator added
        strangers = [Identity.generate() for _ in range(300)]

        http = await nursery_client(nursery)

        async def hello(i: int, stranger: Identity, limiter: trio.CapacityLimiter) -> None:
            async with limiter:
                await PeerClient(stranger, http, 30).hello(node.url, f"{bound.url}/stranger/{i}", "person", f"s{i}")

        limiter = trio.CapacityLimiter(10)  # under the per-source cap of requests in flight (16)
        async with trio.open_nursery() as hellos:
            for i, stranger in enumerate(strangers):
                hellos.start_soon(hello, i, stranger, limiter)
        announced = await node.read(lambda s: [p for p in Peers(s).list() if p.source == "announced"])
        assert len(announced) == 300
        assert all(p.url is None and p.last_error.startswith("url not verified") for p in announced)

        author = Identity.generate()
        async with PeerClient(author) as client:
            reasons = await client.push(node.url, [wire.GossipItem(4, raw) for raw in intents(author, 100)])
        assert reasons == bytes(100)
        await eventually(lambda: friend.read(lambda s: s.count("envelopes") == 100), interval=0.05)
        await trio.sleep(0.5)  # whatever else the push would set off has had time to start
        queued = await node.read(deliveries) + node.runtime.deliverer.stats[friend.key].delivered
        assert queued <= 1_000 and queued == 100  # to the friend only
        assert sink.requests <= 400 and sink.requests == 300  # one verification per stranger, nothing more

        # The same strangers saying hello again cost nothing for a while (their claims failed).
        async with trio.open_nursery() as hellos:
            for i, stranger in enumerate(strangers[:50]):
                hellos.start_soon(hello, i, stranger, limiter)
        assert sink.requests == 300


async def test_announced_peers_are_capped(store):
    peers = Peers(store)
    for i in range(12):
        peers.announce(public_key=bytes([i]) * 32, url=f"http://n{i}.example", role="person", name="", max_announced=10)
    kept = [p.public_key for p in peers.list()]
    assert len(kept) == 10 and (bytes([0]) * 32).hex() not in kept and (bytes([11]) * 32).hex() in kept


async def test_only_global_addresses_unless_allowed():
    async def resolver_to(address):
        async def resolve(host, port):
            return [address]

        return resolve

    for url in ("http://10.1.2.3", "http://127.0.0.1:80", "http://169.254.169.254/latest", "http://[::1]:8",
                "http://[fe80::1]", "http://[fc00::5]", "http://0.0.0.0", "http://[::ffff:192.168.1.1]",
                "http://224.0.0.1", "http://[2002:7f00:1::]", "http://[2002:a9fe:a9fe::1]", "http://[fec0::1]"):
        assert not await url_allowed(url, allow_private=False), url
    assert await url_allowed("http://127.0.0.1:80", allow_private=True)
    assert not await url_allowed("http://224.0.0.1", allow_private=True)  # multicast: never
    assert await url_allowed("https://8.8.8.8", allow_private=False)
    assert await url_allowed("https://[2002:808:808::1]", allow_private=False)  # 6to4 of a global address
    assert await url_allowed("http://[::1]:8", allow_private=True)  # loopback, though inside ::/8
    assert await url_allowed("http://[64:ff9b::808:808]", allow_private=False)  # DNS64's NAT64 of 8.8.8.8
    assert not await url_allowed("http://[64:ff9b::a9fe:a9fe]", allow_private=False)  # … of 169.254.169.254
    assert not await url_allowed("ftp://8.8.8.8", allow_private=True)
    assert not await url_allowed("http://intranet.example", allow_private=False, resolver=await resolver_to("10.0.0.7"))
    assert await url_allowed("http://public.example", allow_private=False, resolver=await resolver_to("93.184.216.34"))
    assert serves_privately("127.0.0.1") and serves_privately("192.168.1.4") and serves_privately("localhost")
    assert not serves_privately("0.0.0.0") and not serves_privately("203.0.113.9".replace("203.0.113", "8.8.8"))


async def test_a_hello_claiming_a_url_with_a_control_character_is_refused_and_changes_nothing(net, nursery):
    with trio.fail_after(TIMEOUT):
        node = await net.node("relay")
        http = await nursery_client(nursery)
        with pytest.raises(DeliveryError, match="HTTP 400 malformed_request"):  # a DEL: httpx could not use it
            await PeerClient(Identity.generate(), http, 30).hello(node.url, f"{node.url}/x\x7f", "person", "s")
        assert await node.read(lambda s: [p for p in Peers(s).list() if p.source == "announced"]) == []


async def test_a_claimed_url_no_request_can_be_built_for_fails_verification_instead_of_raising(tmp_path):
    with trio.fail_after(TIMEOUT):
        store = await AsyncStore.open(tmp_path / "node.db")
        try:
            # Valid syntax, a host that resolves to a global address, and an empty Punycode label:
            # httpx cannot build the request (an IDNA error). The hello handler used to answer 500,
            # and the run's other claims were never settled.
            await store.run(
                lambda: Peers(store.store).announce(
                    public_key=Identity.generate().public_key, url="http://xn--.example", role="person", name="s"
                )
            )

            async def resolver(host: str, port: int) -> list[str]:
                return ["93.184.216.34"]

            async with httpx.AsyncClient() as http:
                verifier = ClaimVerifier(
                    store, http, SignatureAuth(Identity.generate()), allow_private=False, resolver=resolver
                )
                assert await verifier.run() is False
            (peer,) = await store.run(Peers(store.store).list)
            assert peer.claimed_url is None and peer.url is None
            assert "not a usable URL" in peer.last_error
        finally:
            await store.aclose()
