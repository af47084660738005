"""Signed requests end to end: httpx with ``SignatureAuth`` against a Starlette app behind
``SignatureMiddleware`` — in memory through ASGITransport, and once through a real Hypercorn server."""

from __future__ import annotations

import json
import time
from functools import partial

import httpx
import hypercorn.trio
import msgpack
import pytest
import trio
from hypercorn.config import Config
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from federation.auth import REASON_HEADER, SignatureAuth, SignatureMiddleware, verified_peer
from federation.noncecache import NonceCache
from node.identity import Identity
from node.nodeid import encode_node_id

NOW = 1_700_000_000
ALICE = Identity.from_seed(bytes([0xA1]) * 32)
BOB = Identity.from_seed(bytes([0xB0]) * 32)
BASE_URL = "http://peer.test:8470"


async def push(request: Request) -> JSONResponse:
    peer = verified_peer(request)
    body = await request.body()
    return JSONResponse(
        {"peer": peer.node_id, "key": peer.key.hex(), "size": len(body), "query": str(request.query_params)}
    )


def make_app(*, clock=lambda: NOW, **options) -> SignatureMiddleware:
    app = Starlette(routes=[Route("/gossip/push", push, methods=["GET", "POST"])])
    return SignatureMiddleware(app, nonces=NonceCache(), clock=clock, **options)


def client(app, identity: Identity | None = ALICE, clock=lambda: NOW) -> httpx.AsyncClient:
    auth = SignatureAuth(identity, clock=clock) if identity else None
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL, auth=auth)


def refused(response: httpx.Response) -> str:
    assert response.status_code == 401
    assert response.json() == {"error": "bad_request_signature", "reason": response.headers[REASON_HEADER]}
    assert response.headers["www-authenticate"].startswith("Signature")
    return response.headers[REASON_HEADER]


async def test_signed_request_reaches_the_handler_with_the_peer_key():
    with trio.fail_after(5):
        async with client(make_app()) as http:
            response = await http.post("/gossip/push?hops=3", content=b"\x93\x01\x02\x03")
            empty = await http.get("/gossip/push")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "peer": encode_node_id(ALICE.public_key),
        "key": ALICE.public_key.hex(),
        "size": 4,
        "query": "hops=3",
    }
    assert empty.status_code == 200 and empty.json()["size"] == 0


async def test_unsigned_request_is_refused():
    with trio.fail_after(5):
        async with client(make_app(), identity=None) as http:
            response = await http.post("/gossip/push", content=b"x")
    assert refused(response) == "missing_signature"


async def test_refusal_in_msgpack_when_asked():
    with trio.fail_after(5):
        async with client(make_app(), identity=None) as http:
            response = await http.post("/gossip/push", content=b"x", headers={"Accept": "application/msgpack"})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/msgpack"
    assert msgpack.unpackb(response.content) == {"error": "bad_request_signature", "reason": "missing_signature"}


async def test_replayed_request_is_refused():
    app = make_app()
    with trio.fail_after(5):
        async with client(app) as signer, client(app, identity=None) as replayer:
            request = signer.build_request("POST", "/gossip/push", content=b"batch")
            first = await signer.send(request)
            copy = first.request  # exactly what went on the wire, signature included
            again = await replayer.send(
                httpx.Request(copy.method, copy.url, headers=copy.headers, content=copy.content)
            )
    assert first.status_code == 200
    assert refused(again) == "replayed"


async def test_tampered_and_bad_signatures_are_refused():
    app = make_app()
    with trio.fail_after(5):
        async with client(app) as signer, client(app, identity=None) as attacker:
            good = (await signer.post("/gossip/push?hops=3", content=b"batch")).request
            forged_body = httpx.Request(good.method, good.url, headers=good.headers, content=b"other")
            forged_query = httpx.Request(
                good.method, str(good.url).replace("hops=3", "hops=9"), headers=good.headers, content=b"batch"
            )
            headers = good.headers.copy()
            headers["Signature"] = "vrm=:AAAA"
            garbage = httpx.Request("POST", good.url, headers=headers, content=b"batch")
            reasons = [refused(await attacker.send(r)) for r in (forged_body, forged_query, garbage)]
    assert reasons == ["digest_mismatch", "bad_signature", "malformed_signature"]


async def test_stale_and_future_clocks_are_refused():
    app = make_app()
    with trio.fail_after(5):
        async with client(app, clock=lambda: NOW - 301) as slow, client(app, clock=lambda: NOW + 61) as fast:
            assert refused(await slow.post("/gossip/push", content=b"x")) == "stale"
            assert refused(await fast.post("/gossip/push", content=b"x")) == "from_future"
        async with client(app, clock=lambda: NOW + 59) as ok:
            assert (await ok.post("/gossip/push", content=b"x")).status_code == 200


async def test_pinned_peer_refuses_other_keys():
    app = make_app(accept_key=BOB.public_key.__eq__)
    with trio.fail_after(5):
        async with client(app, identity=ALICE) as alice, client(app, identity=BOB) as bob:
            assert refused(await alice.post("/gossip/push", content=b"x")) == "unknown_key"
            assert (await bob.post("/gossip/push", content=b"x")).json()["key"] == BOB.public_key.hex()


async def test_oversize_body_is_refused_before_verifying():
    with trio.fail_after(5):
        async with client(make_app(max_body=1000)) as http:
            response = await http.post("/gossip/push", content=b"x" * 1001)
    assert response.status_code == 413
    assert response.json() == {"error": "request_too_large", "limit": 1000}


async def test_real_hypercorn_server_on_loopback():
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    stop = trio.Event()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            serve = partial(hypercorn.trio.serve, make_app(clock=time.time), config, shutdown_trigger=stop.wait)
            binds = await nursery.start(serve)
            url = binds[0] + "/gossip/push?hops=1"
            try:
                async with httpx.AsyncClient(auth=SignatureAuth(ALICE)) as signer, httpx.AsyncClient() as replayer:
                    first = await signer.post(url, content=bytes(300_000))  # arrives in several chunks
                    sent = first.request
                    again = await replayer.send(httpx.Request("POST", url, headers=sent.headers, content=sent.content))
            finally:
                stop.set()
    assert first.status_code == 200, first.text
    assert json.loads(first.text)["peer"] == encode_node_id(ALICE.public_key)
    assert json.loads(first.text)["size"] == 300_000
    assert refused(again) == "replayed"


@pytest.mark.parametrize("path", ["/gossip/push", "/nowhere"])
async def test_routing_happens_only_after_verification(path):
    with trio.fail_after(5):
        async with client(make_app(), identity=None) as http:
            response = await http.get(path)
    assert refused(response) == "missing_signature"
