"""Every URL a hello brings is a claim, verified before use (federation/peerverify.py), and a hello
waits for its own claim only, a bounded time: signed hellos through the federation app, the claimed
URLs real servers on 127.0.0.1 (one answering as a node, a tarpit that accepts and never answers)."""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial

import httpx
import trio
from starlette.applications import Starlette
from starlette.responses import Response

from app.root import build_core, federation_app_for
from federation import wire
from federation.auth import SignatureAuth
from federation.peerclient import PeerClient
from federation.peerverify import ClaimVerifier
from federation.ratelimit import RateLimiter
from federation.server import serve
from node.identity import Identity
from node.nodeid import encode_node_id
from node.peers import CLAIM_RETRY_MS, Peer, Peers
from node.store import AsyncStore
from tests.fednet import eventually
from tests.helpers import Clock

NODE = Identity.from_seed(b"\x12" * 32)
ALICE = Identity.from_seed(b"\xa1" * 32)
BOB = Identity.from_seed(b"\xb0" * 32)
BASE = "http://node.test"
TIMEOUT = 30


@dataclass
class Node:
    store: AsyncStore
    app: object
    verifier: ClaimVerifier
    clock: Clock

    async def hello(self, identity: Identity, url: str | None) -> float:
        """Say hello as ``identity`` claiming ``url``; the seconds it took to be answered."""
        started = time.monotonic()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=BASE) as http:
            await PeerClient(identity, http, timeout=TIMEOUT).hello(BASE, url, "person", "p")
        return time.monotonic() - started

    async def peer(self, identity: Identity) -> Peer | None:
        return await self.store.run(lambda: Peers(self.store.store).by_key(identity.public_key.hex()))

    async def add(self, identity: Identity, url: str) -> None:
        """Pin ``identity`` at ``url`` as discovery does once a candidate answered as itself."""
        await self.store.run(
            lambda: Peers(self.store.store).add(public_key=identity.public_key, url=url, role="person", name="d")
        )


@asynccontextmanager
async def node(tmp_path, background: trio.Nursery, **verifier_options):
    """A person's node whose hellos verify their claims with a ClaimVerifier running in ``background``."""
    clock = Clock(int(time.time() * 1000))
    store = await AsyncStore.open(tmp_path / "node.db")
    try:
        core = await store.run(build_core, store.store, NODE.public_key, "person", clock=clock)
        async with httpx.AsyncClient() as http:
            verifier = ClaimVerifier(store, http, SignatureAuth(NODE), clock=clock, **verifier_options)
            app = federation_app_for(
                store, core, node_id=encode_node_id(NODE.public_key), role="person", name="N",
                limiter=RateLimiter(rate=1e6, burst=10**6), on_hello=partial(verifier.verify, background),
            )
            yield Node(store, app, verifier, clock)
            background.cancel_scope.cancel()  # verifications still waiting on a tarpit
    finally:
        await store.aclose()


async def nodes_at(nursery: trio.Nursery, *identities: Identity) -> str:
    """A server where ``BASE/<i>/v1/node`` answers as ``identities[i]``; its URL."""
    infos = [wire.encode_node_info(encode_node_id(i.public_key), "person", "p") for i in identities]

    async def app(scope, receive, send) -> None:
        if scope["type"] != "http":
            return await Starlette()(scope, receive, send)
        index, _, rest = scope["path"].lstrip("/").partition("/")
        found = index.isdigit() and int(index) < len(infos) and rest == "v1/node"
        await Response(infos[int(index)] if found else b"", 200 if found else 404)(scope, receive, send)

    bound = await nursery.start(partial(serve, app, host="127.0.0.1", port=0))
    return bound.url


async def tarpit(nursery: trio.Nursery) -> str:
    """A URL on 127.0.0.1 that accepts connections and never answers."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")

    async def hold(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()

    nursery.start_soon(trio.serve_listeners, hold, listeners)
    return f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}"


async def test_an_added_peer_cannot_point_the_node_at_a_forbidden_address(tmp_path):
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as background, node(tmp_path, background, allow_private=False) as n:
            await n.add(ALICE, "http://alice.example")
            for target in ("http://169.254.169.254/latest/meta-data", "http://127.0.0.1:6379"):
                await n.hello(ALICE, target)
                alice = await n.peer(ALICE)
                assert (alice.source, alice.url, alice.claimed_url) == ("added", "http://alice.example", None)
                assert alice.last_error == "url not verified: address not allowed"
                assert [p.url for p in await n.store.run(Peers(n.store.store).pushable)] == ["http://alice.example"]
                n.clock.now += CLAIM_RETRY_MS  # past the pause a failed claim sets
            assert n.verifier.requests == 0


async def test_an_added_peers_new_url_replaces_its_url_only_once_it_answers_as_that_peer(tmp_path):
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as background, node(tmp_path, background, allow_private=True) as n:
            server = await nodes_at(background, NODE, ALICE)
            await n.add(ALICE, "http://alice.example")
            await n.hello(ALICE, f"{server}/0")  # this very node answers there
            alice = await n.peer(ALICE)
            assert (alice.source, alice.url, alice.claimed_url) == ("added", "http://alice.example", None)
            assert alice.last_error == "url not verified: another node answers there"
            n.clock.now += CLAIM_RETRY_MS
            await n.hello(ALICE, f"{server}/1")
            alice = await n.peer(ALICE)
            assert (alice.source, alice.url, alice.claimed_url) == ("added", f"{server}/1", None)
            assert n.verifier.requests == 2


async def test_strangers_whose_urls_never_answer_delay_no_other_hello(tmp_path):
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as background, node(
            tmp_path, background, allow_private=True, timeout=TIMEOUT, hello_wait=1.0
        ) as n:
            pit, server = await tarpit(background), await nodes_at(background, ALICE)
            strangers: list[float] = []

            async def stranger(i: int) -> None:
                strangers.append(await n.hello(Identity.from_seed(bytes([i + 1]) * 32), pit))

            async with trio.open_nursery() as hellos:
                for i in range(12):
                    hellos.start_soon(stranger, i)
                await trio.sleep(0.2)  # their claims are being verified, and never will be
                honest = await n.hello(ALICE, f"{server}/0")
            assert (await n.peer(ALICE)).url == f"{server}/0"  # verified before its hello was answered
            assert honest < 1.0
            assert len(strangers) == 12 and max(strangers) < 3.0  # each its own deadline, not the backlog
            assert n.verifier.requests == 13


async def test_a_hello_past_its_deadline_is_answered_and_its_claim_checked_in_the_background(tmp_path):
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as background, node(
            tmp_path, background, allow_private=True, timeout=2.0, hello_wait=1.0, concurrency=2
        ) as n:
            pit, server = await tarpit(background), await nodes_at(background, ALICE, BOB)
            await n.add(ALICE, "http://alice.example")
            async with trio.open_nursery() as hellos:
                for i in range(6):  # the two verification slots of announced peers: taken for 6 s
                    hellos.start_soon(n.hello, Identity.from_seed(bytes([i + 1]) * 32), pit)
                await trio.sleep(0.2)
                assert await n.hello(BOB, f"{server}/1") < 3.0  # answered with its claim queued
                bob = await n.peer(BOB)
                assert (bob.url, bob.claimed_url) == (None, f"{server}/1")
                await n.hello(ALICE, f"{server}/0")  # an added peer's claim never queues behind strangers'
                assert (await n.peer(ALICE)).url == f"{server}/0"

            async def bob_verified() -> bool:
                return (await n.peer(BOB)).url == f"{server}/1"

            await eventually(bob_verified, interval=0.1)
