"""Peer exchange between real nodes on loopback (issue 14): a node learns of a vendor only from a peer's
``GET /v1/peers``, verifies it and then gossips its intents there; what a node shares is bounded to
known-good peers and only with verified peers; hostile answers (garbage, oversized, private addresses,
nodes that are not where they are said to be) are refused or bounded, scored, and change no peer."""

from __future__ import annotations

from functools import partial

import httpx
import msgpack
import pytest
import trio

from federation import wire
from federation.auth import SignatureAuth
from federation.discovery import PER_SOURCE, decode_exchange
from federation.peerexchange import MAX_ANSWER, Discovery, literal_private
from federation.scoring import PeerScoring
from federation.server import serve
from node.blocks import Blocks
from node.identity import Identity
from node.leads import Leads
from node.nodeid import encode_node_id
from node.peers import Peers
from tests.fednet import FedNet, eventually

HOUR = 3_600_000
TIMEOUT = 40


def _peer_row(store, node_id):
    return next((p for p in Peers(store).list() if p.node_id == node_id), None)


def _intent_from(store, author_key):
    row = store.query_one("SELECT from_peer FROM envelopes WHERE kind = 'intent' AND author = ?", [bytes.fromhex(author_key)])
    return row and row["from_peer"]


async def test_a_vendor_learnt_by_peer_exchange_receives_the_intents(nursery, tmp_path):
    with trio.fail_after(TIMEOUT):
        net = FedNet(nursery, tmp_path)
        bob = await net.node("bob")
        vendor = await net.node("air", "vendor")
        await vendor.op("subscriptions.add", {"text": "?flight"})
        await net.peer(vendor, bob)  # bob knows the vendor only as an announced, verified peer: no gossip to it
        carol = await net.node("carol", exchange_interval=0.2)
        assert await carol.read(lambda s: _peer_row(s, vendor.node_id)) is None
        await net.peer(carol, bob)
        found = await eventually(lambda: carol.read(lambda s: _peer_row(s, vendor.node_id)))
        assert (found.source, found.url, found.role) == ("added", vendor.url, "vendor")

        async def noted():
            return [(f["state"], f["source"]) for f in (await carol.runtime.status())["discovery"]
                    if f["node_id"] == vendor.node_id and f["state"] != "pending"]

        assert await eventually(noted) == [("added", f"exchange:{bob.node_id}")]
        intent = await carol.op("intent.cast", {"text": "Need ?flight to Oslo", "ttl_ms": HOUR, "terms": []})
        leads = await eventually(lambda: vendor.read(lambda s: Leads(s).list()))
        assert [lead.intent_id for lead in leads] == [intent["id"]]
        # straight from carol: bob never pushes gossip to a peer that only announced itself
        assert await vendor.read(lambda s: _intent_from(s, carol.key)) == carol.key
        # removed by carol's operator: bob keeps naming it, it is not added again
        await carol.op("peers.remove", {"ref": vendor.node_id})

        async def removed():
            return [f["state"] for f in (await carol.runtime.status())["discovery"]
                    if f["node_id"] == vendor.node_id and f["state"] == "removed"]

        await eventually(removed)
        await trio.sleep(0.6)  # three more rounds
        assert await carol.read(lambda s: _peer_row(s, vendor.node_id)) is None
        await net.stop_all()


async def _signed_get(identity: Identity, url: str) -> httpx.Response:
    async with httpx.AsyncClient(auth=SignatureAuth(identity)) as http:
        return await http.get(url + "/v1/peers", headers={"Accept": wire.MEDIA_TYPE})


async def test_peers_are_shared_with_verified_peers_only_and_only_good_ones(nursery, tmp_path):
    with trio.fail_after(TIMEOUT):
        net = FedNet(nursery, tmp_path)
        bob = await net.node("bob")
        good, blocked, carol = await net.node("good", "vendor"), await net.node("blocked"), await net.node("carol")
        gone = await net.node("gone")
        for other in (good, blocked, gone):
            await net.peer(bob, other)
        await net.stop(gone)
        await bob.op("sync")  # gone does not answer: its last contact failed
        await bob.read(lambda s: Blocks(s).block(blocked.node_id))
        stranger = Identity.generate()
        refused = await _signed_get(stranger, bob.url)
        assert refused.status_code == 403 and msgpack.unpackb(refused.content)["error"] == "not_a_peer"
        await net.peer(carol, bob)  # carol's hello: her URL verified at bob
        answer = await _signed_get(carol.identity, bob.url)
        assert answer.status_code == 200
        entries = msgpack.unpackb(answer.content)["peers"]
        assert entries == [[good.node_id, good.url, "vendor"]]
        await net.stop_all()


def test_private_addresses_are_recognised_without_resolving():
    for url in ("http://127.0.0.1:1", "http://10.1.2.3", "http://[::1]:80", "http://localhost:8470",
                "http://192.168.0.7", "http://169.254.1.1", "http://[fe80::1]"):
        assert literal_private(url), url
    for url in ("https://93.184.216.34", "https://vendor.example", "http://[2606:4700::1]"):
        assert not literal_private(url), url


HUGE = 50 * 1024 * 1024


async def _hostile_app(scope, receive, send, answers):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    path = scope["path"]
    kind = path.split("/")[1]
    if kind == "huge":  # streamed forever-ish: the asker must stop reading at its cap
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/msgpack")]})
        chunk = b"\x00" * 65536

        async def stream(cancel_scope) -> None:
            for _ in range(HUGE // len(chunk)):
                answers["huge_sent"] = answers.get("huge_sent", 0) + len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            cancel_scope.cancel()

        # The server would buffer on after the asker hung up: stop when it says so, so that what was
        # sent measures what the asker took.
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stream, nursery.cancel_scope)
            while (await receive())["type"] != "http.disconnect":
                pass
            nursery.cancel_scope.cancel()
        return
    body = answers[kind]
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/msgpack")]})
    await send({"type": "http.response.body", "body": body})


def _ids(n: int) -> list[str]:
    return [encode_node_id(Identity.generate().public_key) for _ in range(n)]


async def test_hostile_exchange_answers_are_refused_bounded_and_change_no_peer(nursery, tmp_path):
    with trio.fail_after(TIMEOUT):
        net = FedNet(nursery, tmp_path)
        carol = await net.node("carol")
        bob = await net.node("bob")  # a real node the liar says other nodes live at
        private_ids = _ids(200)
        private_urls = ["http://10.0.0.{}", "http://192.168.1.{}", "http://127.0.0.{}", "http://localhost:{}"]
        answers = {
            "garbage": b"\xc1\xff not msgpack",
            "private": msgpack.packb({"peers": [[nid, private_urls[k % 4].format(k + 1), "vendor"]
                                                 for k, nid in enumerate(private_ids)]}),
            "liar": msgpack.packb({"peers": [[nid, bob.url, "vendor"] for nid in _ids(3)]}),
            "wrongshape": msgpack.packb({"peers": [[1, 2, 3], "x", {"a": 1}] * 50, "extra": [0] * 10}),
        }
        bound = await nursery.start(partial(serve, partial(_hostile_app, answers=answers), host="127.0.0.1", port=0))
        store = carol.runtime.store
        sources = {}
        for kind in ("garbage", "huge", "private", "liar", "wrongshape"):
            key = Identity.generate().public_key
            sources[kind] = await store.run(partial(Peers(store.store).add, public_key=key, url=f"{bound.url}/{kind}",
                                                    role="person", name=kind))
        before = await store.run(lambda: Peers(store.store).list())
        added = []

        async def add(candidate, info):
            added.append(candidate)
            return True

        scoring = PeerScoring(store)
        async with httpx.AsyncClient() as client:
            # a public node: peers' private addresses are never dialled
            strict = Discovery(store, client, SignatureAuth(carol.identity), own_id=carol.node_id, add=add,
                               allow_private=False, max_peers=100, scoring=scoring)
            for kind in ("garbage", "huge", "wrongshape"):
                assert await strict.ask(sources[kind]) == 0, kind
            assert answers["huge_sent"] < HUGE  # the asker stopped reading at its cap
            assert await strict.ask(sources["private"]) == PER_SOURCE  # bounded per source
            for _ in range(3):
                assert await strict.verify() == []
            # a loopback federation: the liar's nodes are dialled, and another node answers there
            lenient = Discovery(store, client, SignatureAuth(carol.identity), own_id=carol.node_id, add=add,
                                allow_private=True, max_peers=100, scoring=scoring)
            assert await lenient.ask(sources["liar"]) == 3
            assert await lenient.verify() == []
        assert added == [] and len(strict.pool) == len(lenient.pool) == 0
        details = [f.detail for f in strict.found.values()]
        assert details == ["address not allowed"] * PER_SOURCE and strict.requests == 0
        details = [f.detail for f in lenient.found.values()]
        assert details == ["another node answers there"] * 3 and lenient.requests == 3
        assert await store.run(lambda: Peers(store.store).list()) == before
        offences = {kind: (await scoring.standing(sources[kind].public_key)).offences for kind in sources}
        assert offences["garbage"] == {"malformed_batch": 1}
        assert offences["huge"] == {"limit_hit": 1}
        # a source vouching for nodes that cannot be used loses standing with each of them
        assert offences["liar"] == {"unanswered_promise": 3}
        assert offences["private"] == {"unanswered_promise": PER_SOURCE}
        assert (await scoring.standing(sources["private"].public_key)).state(carol.runtime.clock()) != "ok"
        assert offences["wrongshape"] == {}  # well-formed, with only unusable entries: skipped, not scored
        await net.stop_all()


def test_an_answer_at_the_cap_still_decodes():
    many = [[encode_node_id(Identity.generate().public_key), f"https://n{k}.example:8470", "person"] for k in range(64)]
    body = msgpack.packb({"peers": many})
    assert len(body) < MAX_ANSWER
    me = encode_node_id(Identity.generate().public_key)
    assert len(decode_exchange(body, me, own_id=me)) == 64


async def test_a_refused_candidate_is_not_dialled_again_soon(nursery, tmp_path):
    with trio.fail_after(TIMEOUT):
        net = FedNet(nursery, tmp_path)
        carol = await net.node("carol")
        bob = await net.node("bob")
        liar_ids = _ids(2)
        answers = {"liar": msgpack.packb({"peers": [[nid, bob.url, "vendor"] for nid in liar_ids]})}
        bound = await nursery.start(partial(serve, partial(_hostile_app, answers=answers), host="127.0.0.1", port=0))
        store = carol.runtime.store
        liar = await store.run(partial(Peers(store.store).add, public_key=Identity.generate().public_key,
                                       url=f"{bound.url}/liar", role="person", name="liar"))

        async def add(candidate, info):
            return True

        async with httpx.AsyncClient() as client:
            discovery = Discovery(store, client, SignatureAuth(carol.identity), own_id=carol.node_id, add=add,
                                  allow_private=True, max_peers=100)
            for _ in range(3):  # named again every round: dialled once
                await discovery.ask(liar)
                assert await discovery.verify() == []
        assert discovery.requests == 2
        await net.stop_all()


def test_discovery_settings_reach_the_runtime(tmp_path):
    from typer.testing import CliRunner

    from cli.main import app
    from cli.serve_cmd import run_options
    from node.config import load
    from node.home import init_home

    home = init_home(tmp_path / "pi", None, "person").path
    options = run_options(load(home))
    assert (options["exchange_interval"], options["max_peers"], options["mdns"]) == (300.0, 8, False)
    runner = CliRunner()
    for args in (["federation.exchange_interval", "0"], ["federation.max_peers", "3"], ["federation.mdns", "true"]):
        assert runner.invoke(app, ["--home", str(home), "config", "set", *args]).exit_code == 0
    options = run_options(load(home))
    assert (options["exchange_interval"], options["max_peers"], options["mdns"]) == (None, 3, True)  # 0: never asks
    for args in (["federation.exchange_interval", "-1"], ["federation.exchange_interval", "nan"],
                 ["federation.max_peers", "-2"]):
        refused = runner.invoke(app, ["--home", str(home), "config", "set", "--", *args])
        assert refused.exit_code == 6 and args[0] in refused.output, args
