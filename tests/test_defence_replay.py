"""Replay memory survives restarts (issue 10, item 5): a captured signed grant fetch is refused after
a graceful restart and after a crash (the home as it was on disk while the node ran, kill -9 style),
and spends none of the grant's uses."""

from __future__ import annotations

import shutil

import httpx
import pytest
import trio

from federation import wire
from federation.auth import SignatureAuth
from federation.noncecache import Admission, NonceCache, ReplayFloor
from node.grants import Grants
from node.home import load_home
from tests.fednet import FedNet, Node
from tests.test_access import VAULT, given_grant, person

TIMEOUT = 30


@pytest.fixture
async def net(nursery, tmp_path):
    yield FedNet(nursery, tmp_path)


def uses_spent(grant_id: str):
    return lambda s: next(g for g in Grants(s).list(direction="given", status="all") if g.id == grant_id).uses_spent


async def test_a_captured_fetch_is_refused_after_graceful_restart_and_after_a_crash(net, tmp_path):
    with trio.fail_after(TIMEOUT):
        alice = await person(net)
        acme = await net.node("acme", "vendor")
        await net.peer(alice, acme)
        grant = await given_grant(alice, acme, ["email"], uses=5)
        port = alice.port
        async with httpx.AsyncClient(timeout=5) as http:
            body = wire.encode_access_ask(bytes.fromhex(grant.id), None)
            captured = next(
                SignatureAuth(acme.identity).auth_flow(http.build_request("POST", alice.url + "/v1/access", content=body))
            )
            assert (await http.send(captured)).status_code == 200
            assert await alice.read(uses_spent(grant.id)) == 1
            assert (await http.send(captured)).headers["Vrm-Signature-Error"] == "replayed"

            # What is on disk right now is what a kill -9 would leave: restart a copy of it later.
            crashed = tmp_path / "alice-crashed"
            shutil.copytree(alice.home.path, crashed, ignore=shutil.ignore_patterns("admin.json"))

            await net.stop(alice)
            await net.start(alice, port=port)
            again = await http.send(captured)
            assert again.status_code == 401 and again.headers["Vrm-Signature-Error"] == "stale"
            assert await alice.read(uses_spent(grant.id)) == 1

            await net.stop(alice)
            copy = Node("alice-crashed", load_home(crashed), alice.identity, dict(alice.options))
            await net.start(copy, port=port)
            again = await http.send(captured)
            assert again.status_code == 401 and again.headers["Vrm-Signature-Error"] == "stale"
            assert await copy.read(uses_spent(grant.id)) == 1
            # An honest fetch signed now still goes through (and spends one use).
            fresh = await http.post(
                copy.url + "/v1/access", content=body, auth=SignatureAuth(acme.identity)
            )
            for _ in range(40):  # requests signed within the floor's margin are refused once
                if fresh.status_code == 200:
                    break
                await trio.sleep(0.1)
                fresh = await http.post(copy.url + "/v1/access", content=body, auth=SignatureAuth(acme.identity))
            assert fresh.status_code == 200
            assert await copy.read(uses_spent(grant.id)) == 2
        assert VAULT  # the vault answered from the copy too


def test_the_floor_is_written_before_a_request_is_admitted(tmp_path):
    floor = ReplayFloor(tmp_path / "replay.floor")
    cache = NonceCache(persist=floor, margin=1)
    assert cache.admit(("k", "n1"), 1_000, 1_000) is Admission.NEW
    assert floor.load() == 1_001  # on disk (fsynced) before the answer
    assert cache.admit(("k", "n2"), 1_001, 1_001) is Admission.NEW
    assert floor.load() == 1_001  # within the margin: no write
    restarted = NonceCache(persist=floor)
    assert restarted.admit(("k", "n1"), 1_000, 1_002) is Admission.FORGOTTEN
    assert restarted.admit(("k", "n2"), 1_001, 1_002) is Admission.FORGOTTEN
    assert restarted.admit(("k", "n3"), 1_002, 1_002) is Admission.NEW
    (tmp_path / "replay.floor").write_text("garbage")
    assert NonceCache(persist=floor).admit(("k", "n4"), 1_003, 1_003) is Admission.FORGOTTEN


def test_after_a_flood_and_a_restart_no_signers_request_is_admitted_again(tmp_path):
    floor = ReplayFloor(tmp_path / "replay.floor")
    cache = NonceCache(capacity=4, persist=floor, margin=1)
    for i in range(4):  # mallory fills the memory a minute ahead
        assert cache.admit(("mallory", f"m{i}"), 1_060, 1_000) is Admission.NEW
    assert cache.admit(("mallory", "m4"), 1_061, 1_000) is Admission.NEW  # evicts one of her own
    assert cache.admit(("alice", "a1"), 1_000, 1_000) is Admission.NEW  # makes room from mallory's
    assert cache.floor is None and cache.floor_of("mallory") == 1_060
    assert floor.load() == 1_061  # 1_060 + margin, which also covers 1_061
    restarted = NonceCache(capacity=4, persist=floor)
    assert restarted.floor_of("alice") == restarted.floor_of("mallory") == 1_061
    for key, created in ((("alice", "a1"), 1_000), (("mallory", "m0"), 1_060), (("mallory", "m4"), 1_061)):
        assert restarted.admit(key, created, 1_001) is Admission.FORGOTTEN
    assert restarted.admit(("alice", "a2"), 1_062, 1_002) is Admission.NEW
