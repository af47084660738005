"""Replay memory survives restarts (issue 10, item 5): a captured signed grant fetch is refused after
a graceful restart and after a crash (the home as it was on disk while the node ran, kill -9 style),
and spends none of the grant's uses."""

from __future__ import annotations

import shutil

import httpx
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from federation import wire
from federation.auth import SignatureAuth
from federation.noncecache import AHEAD_CAPACITY, AHEAD_MARGIN, Admission, NonceCache, ReplayFloor
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
    assert floor.load() == (1_001, {})  # on disk (fsynced) before the answer
    assert cache.admit(("k", "n2"), 1_001, 1_001) is Admission.NEW
    assert floor.load() == (1_001, {})  # within the margin: no write
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
    # the clock's second + margin for everyone; mallory, a minute ahead, gets a floor of her own
    assert floor.load() == (1_001, {"mallory": 1_060 + AHEAD_MARGIN})
    restarted = NonceCache(capacity=4, persist=floor)
    assert restarted.floor_of("alice") == 1_001 and restarted.floor_of("mallory") == 1_060 + AHEAD_MARGIN
    for key, created in ((("alice", "a1"), 1_000), (("mallory", "m0"), 1_060), (("mallory", "m4"), 1_061)):
        assert restarted.admit(key, created, 1_001) is Admission.FORGOTTEN
    # mallory's minute ahead holds off only her: alice's next request passes at once
    assert restarted.admit(("alice", "a2"), 1_002, 1_002) is Admission.NEW
    assert restarted.admit(("mallory", "m5"), 1_060 + AHEAD_MARGIN, 1_002) is Admission.FORGOTTEN
    assert restarted.admit(("mallory", "m6"), 1_061 + AHEAD_MARGIN, 1_002) is Admission.NEW


def test_a_clock_stepped_back_does_not_revive_an_expired_request():
    cache = NonceCache(window=300)
    assert cache.admit(("k", "n1"), 1_000, 1_000) is Admission.NEW
    assert cache.admit(("k", "n2"), 1_400, 1_400) is Admission.NEW  # n1's entry expires here
    # NTP steps the clock back 200 s: n1 would pass the time check again, its entry is gone
    assert cache.admit(("k", "n1"), 1_000, 1_200) is Admission.FORGOTTEN
    assert cache.admit(("k", "n3"), 1_200, 1_200) is Admission.NEW  # honest requests at the new time pass
    # a step back of more than the window is followed, or every honest request would be refused
    assert cache.admit(("k", "n4"), 1_000, 1_000) is Admission.NEW


class CountingFloor(ReplayFloor):
    writes = 0

    def store(self, value, own=None):
        self.writes += 1
        super().store(value, own)


def test_signers_ahead_of_the_clock_have_few_floors_of_their_own_then_hold_everyone(tmp_path):
    floor = CountingFloor(tmp_path / "replay.floor")
    cache = NonceCache(persist=floor, margin=1)
    ahead = [f"fast{i}".encode() for i in range(AHEAD_CAPACITY)]
    for i, signer in enumerate(ahead):
        assert cache.admit((signer, "n"), 1_030, 1_000) is Admission.NEW
    assert floor.writes == AHEAD_CAPACITY  # one each (the first also wrote the clock's second)
    for second in range(1, 5):  # within AHEAD_MARGIN they cost nothing more than the clock's floor
        for signer in ahead:
            assert cache.admit((signer, f"n{second}"), 1_030 + second, 1_000 + second) is Admission.NEW
    assert floor.writes == AHEAD_CAPACITY + 2  # the clock's floor, written past its margin: at 1_002, 1_004
    # one more signer ahead: no room for its own floor, so everyone is held to it after a restart
    assert cache.admit((b"one-too-many", "n"), 1_050, 1_005) is Admission.NEW
    assert floor.writes == AHEAD_CAPACITY + 3
    restarted = NonceCache(persist=floor)
    assert restarted.floor_of(b"someone") == 1_051
    assert floor.load()[1] == {s: 1_030 + AHEAD_MARGIN for s in ahead}  # kept, though 1_051 covers them now
    assert restarted.admit((b"one-too-many", "n"), 1_050, 1_006) is Admission.FORGOTTEN
    # past the window a signer's floor cannot matter: its room is taken by the next signer ahead
    late = 1_030 + AHEAD_MARGIN + restarted.window + 1
    assert restarted.admit((b"newcomer", "n"), late + 30, late) is Admission.NEW
    assert floor.load() == (late + 1, {b"newcomer": late + 30 + AHEAD_MARGIN})


def test_the_floor_file_of_an_older_version_or_a_damaged_one(tmp_path):
    path = tmp_path / "replay.floor"
    path.write_text("1001")  # one number: the global floor, as versions before signers' own floors wrote it
    assert ReplayFloor(path).load() == (1_001, {})
    path.write_text("1001\nb 00ff 1070\ns 616c696365 1065\n")
    assert ReplayFloor(path).load() == (1_001, {b"\x00\xff": 1_070, "alice": 1_065})
    path.write_text("1001\nb zz 1070\n")  # a floor that cannot be read might have been anyone's
    value, own = ReplayFloor(path).load()
    assert value > 1_070 and own == {}


_STEP = st.tuples(
    st.integers(0, 3),  # seconds the clock moves on
    st.sampled_from([b"a", b"b", b"c", "d", "e"] + [bytes([i]) for i in range(AHEAD_CAPACITY + 2)]),
    st.integers(-30, 60),  # created, relative to the clock (up to MAX_SKEW ahead)
    st.booleans(),  # the node restarts before this request
)


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(_STEP, max_size=80))
def test_no_request_is_admitted_twice_across_any_restarts(tmp_path_factory, steps):
    """Whatever the signers' clocks and however often the node restarts, each admitted request is
    refused when it comes again (a replay of every one so far is tried after each step)."""
    path = tmp_path_factory.mktemp("floor") / "replay.floor"
    cache = NonceCache(capacity=8, persist=ReplayFloor(path), margin=1)
    now, admitted = 1_000, []
    for n, (tick, signer, ahead, restart) in enumerate(steps):
        now += tick
        if restart:
            cache = NonceCache(capacity=8, persist=ReplayFloor(path), margin=1)
        if cache.admit((signer, n), now + ahead, now) is Admission.NEW:
            admitted.append(((signer, n), now + ahead))
        for key, created in admitted:
            assert cache.admit(key, created, now) is not Admission.NEW, (key, created, now)
