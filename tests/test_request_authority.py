"""A signed request is accepted only by the node it was signed for (its ``@authority`` is one of the
receiver's own names), so a peer that captured one cannot replay it at other nodes; and every
request, forged or unsigned too, spends its source's and the node's budget before it is verified."""

from __future__ import annotations

from contextlib import asynccontextmanager

import httpx
import pytest
import trio
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from app.root import build_core, federation_app_for
from federation.admission import Admission
from federation.auth import REASON_HEADER, SignatureAuth, SignatureMiddleware, verified_peer
from federation.httpsig import OwnAuthorities, authority_of
from federation.noncecache import NonceCache
from federation.ratelimit import RateLimiter
from federation.server import listener_urls
from node.identity import Identity
from node.nodeid import encode_node_id
from node.store import AsyncStore
from tests.fednet import FedNet
from tests.test_httpsig import ALICE, reason_of, signed, verify

NODE = Identity.from_seed(b"\x12" * 32)
VENDOR = Identity.from_seed(b"\x7e" * 32)
SLOW = 0.001  # tokens a second: no bucket refills during a test


def capture(url: str, identity: Identity = VENDOR) -> httpx.Request:
    """A request signed for ``url``, as the node at ``url`` receives it."""
    return next(SignatureAuth(identity).auth_flow(httpx.Request("GET", url)))


def replay_to(base: str, captured: httpx.Request) -> httpx.Request:
    """The captured request sent, headers unchanged (its Host too), to the node at ``base``."""
    return httpx.Request(captured.method, base + captured.url.raw_path.decode(), headers=dict(captured.headers))


# -- the signature check -----------------------------------------------------------------------------


def test_a_request_signed_for_another_authority_is_refused_and_spends_no_nonce():
    nonces = NonceCache()
    parts = signed(authority="a.example:8470")
    assert reason_of(parts, nonces=nonces, authorities=OwnAuthorities(["http://b.example"])) == "wrong_authority"
    assert len(nonces) == 0  # refused before the replay memory: the right node still takes it
    assert verify(parts, nonces=nonces, authorities=OwnAuthorities(["http://a.example:8470"])).key == ALICE.public_key
    assert len(nonces) == 1


def test_wrong_authority_is_checked_before_the_digest_and_the_signature():
    forged = signed(authority="a.example:8470").with_field("content-digest", "sha-256=:AAAA:")
    assert reason_of(forged, authorities=frozenset({"b.example"})) == "wrong_authority"
    assert reason_of(forged, authorities=frozenset({"a.example:8470"})) == "digest_mismatch"


def test_authorities_are_normalized_as_the_signature_base_has_them():
    assert authority_of("https://Node.Example:443/") == "node.example"
    assert authority_of("http://node.example:8470") == "node.example:8470"
    assert authority_of("http://[::1]:8470") == "[::1]:8470"
    own = OwnAuthorities(["https://node.example:443", "http://127.0.0.1:80"])
    assert verify(signed(authority="NODE.example"), authorities=own)  # scheme http, no port: as given
    assert reason_of(signed(authority="node.example:443"), authorities=own) == "wrong_authority"  # http, not https
    assert verify(signed(authority="127.0.0.1:80"), authorities=own)  # http's default port dropped
    assert verify(signed(authority="127.0.0.1"), authorities=own)


def test_a_listener_on_all_interfaces_is_named_by_this_hosts_addresses():
    assert listener_urls("https", "localhost", 8470, "127.0.0.1") == ["https://localhost:8470", "https://127.0.0.1:8470"]
    assert listener_urls("http", "::1", 8470, "::1") == ["http://[::1]:8470"]
    everywhere = listener_urls("http", "0.0.0.0", 8470)
    assert "http://127.0.0.1:8470" in everywhere and "http://localhost:8470" in everywhere
    assert "http://0.0.0.0:8470" not in everywhere  # it names no host: every such node would share it


# -- the middleware: in memory -----------------------------------------------------------------------


def who_app(**options) -> SignatureMiddleware:
    async def who(request):
        return PlainTextResponse(verified_peer(request).node_id)

    return SignatureMiddleware(Starlette(routes=[Route("/v1/inbox", who)]), nonces=NonceCache(), **options)


async def test_a_capture_replayed_at_another_node_is_refused_there_and_still_good_where_signed():
    node_a = who_app(authorities=OwnAuthorities(["http://a.example:8470"]))
    node_b = who_app(authorities=OwnAuthorities(["http://b.example"]))
    captured = capture("http://a.example:8470/v1/inbox?after=0")
    with trio.fail_after(5):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=node_b)) as http:
            refused = await http.send(replay_to("http://b.example", captured))
            assert (refused.status_code, refused.headers[REASON_HEADER]) == (401, "wrong_authority")
            assert refused.json() == {"error": "bad_request_signature", "reason": "wrong_authority"}
            own = await http.send(capture("http://b.example/v1/inbox?after=0"))
            assert (own.status_code, own.text) == (200, encode_node_id(VENDOR.public_key))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=node_a)) as http:
            assert (await http.send(replay_to("http://a.example:8470", captured))).status_code == 200


@pytest.mark.parametrize(
    ("signed_for", "forwarded", "client", "status", "reason"),
    [
        ("https://node.example", "node.example", "10.0.0.1", 200, None),
        # a capture made at another node, forwarded with the host it was signed for
        ("https://other.example", "other.example", "10.0.0.1", 401, "wrong_authority"),
        # not a trusted proxy: X-Forwarded-Host is ignored; the Host (the bound address) is checked and
        # passes, the signature over it does not
        ("https://node.example", "node.example", "10.0.0.2", 401, "bad_signature"),
    ],
)
async def test_behind_a_trusted_proxy_the_forwarded_host_is_what_is_checked(signed_for, forwarded, client, status, reason):
    own = OwnAuthorities(["https://node.example", "http://127.0.0.1:8470"])
    app = who_app(authorities=own, trusted_proxies=frozenset({"10.0.0.1"}))
    captured = capture(signed_for + "/v1/inbox")
    headers = {k: v for k, v in captured.headers.items() if k.lower() != "host"}
    headers |= {"Host": "127.0.0.1:8470", "X-Forwarded-Host": forwarded, "X-Forwarded-Proto": "https"}
    transport = httpx.ASGITransport(app=app, client=(client, 40000))
    with trio.fail_after(5):
        async with httpx.AsyncClient(transport=transport) as http:
            answer = await http.get("http://127.0.0.1:8470/v1/inbox", headers=headers)
    assert (answer.status_code, answer.headers.get(REASON_HEADER)) == (status, reason)


# -- real nodes on loopback --------------------------------------------------------------------------


async def test_the_reviewers_replay_between_two_running_nodes_is_refused(tmp_path):
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            net = FedNet(nursery, tmp_path)
            try:
                a, b = await net.node("a"), await net.node("b")
                captured = capture(a.url + "/v1/inbox?after=0")  # what a receives from its peer
                async with httpx.AsyncClient(timeout=10) as http:
                    replayed = await http.send(replay_to(b.url, captured))
                    assert (replayed.status_code, replayed.headers[REASON_HEADER]) == (401, "wrong_authority")
                    assert (await http.send(capture(b.url + "/v1/inbox?after=0"))).status_code == 200
                    assert (await http.send(replay_to(a.url, captured))).status_code == 200
            finally:
                await net.stop_all()


# -- budgets: every request pays, once ---------------------------------------------------------------


@asynccontextmanager
async def federation_node(tmp_path, admission: Admission):
    store = await AsyncStore.open(tmp_path / "n.db")
    core = await store.run(build_core, store.store, NODE.public_key, "person", identity=NODE)
    app = federation_app_for(
        store, core, node_id=encode_node_id(NODE.public_key), role="person", admission=admission,
        limiter=RateLimiter(rate=1e6, burst=10**6),
    )
    try:
        yield app
    finally:
        await store.aclose()


def forged(url: str) -> httpx.Request:
    request = capture(url)
    signature = request.headers["signature"]
    request.headers["signature"] = signature[:5] + ("B" if signature[5] == "A" else "A") + signature[6:]
    return request


async def test_forged_and_unsigned_requests_spend_the_source_budget_then_get_busy(tmp_path):
    async with federation_node(tmp_path, Admission(source_rate=SLOW, source_burst=3)) as app:
        transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 40000))
        with trio.fail_after(10):
            async with httpx.AsyncClient(transport=transport, base_url="http://node.test") as http:
                answers = [await http.send(forged("http://node.test/v1/node")) for _ in range(2)]
                answers.append(await http.get("/v1/node"))  # unsigned
                answers.append(await http.send(forged("http://node.test/v1/node")))
                answers.append(await http.send(capture("http://node.test/v1/node")))  # valid, same source
    assert [(r.status_code, r.headers.get(REASON_HEADER)) for r in answers] == [
        (401, "bad_signature"), (401, "bad_signature"), (401, "missing_signature"), (503, None), (503, None),
    ]
    assert answers[-1].content == b"\x81\xa5error\xa4busy" and int(answers[-1].headers["retry-after"]) >= 1


async def test_forged_requests_spend_the_node_budget_shared_by_every_source(tmp_path):
    async with federation_node(tmp_path, Admission(global_rate=SLOW, global_burst=2)) as app:
        with trio.fail_after(10):
            for client, request, status in (
                ("198.51.100.7", forged, 401), ("198.51.100.7", forged, 401), ("203.0.113.9", capture, 503),
            ):
                transport = httpx.ASGITransport(app=app, client=(client, 40000))
                async with httpx.AsyncClient(transport=transport) as http:
                    assert (await http.send(request("http://node.test/v1/node"))).status_code == status


async def test_a_valid_request_spends_one_token_of_its_source(tmp_path):
    async with federation_node(tmp_path, Admission(source_rate=SLOW, source_burst=2)) as app:
        transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 40000))
        with trio.fail_after(10):
            async with httpx.AsyncClient(transport=transport, auth=SignatureAuth(VENDOR)) as http:
                codes = [(await http.get("http://node.test/v1/node")).status_code for _ in range(3)]
    assert codes == [200, 200, 503]  # charged twice, the second would be refused; never, the third passes
