"""Bounded logs under abuse (issue 10, item 7): 3,000 fetches naming random grants, each from a fresh
key, against a real person's node on loopback grow its signed receipt log by at most 10 rows; they are
counted per source address and hour instead. Fetches concerning a real grant stay receipted exactly."""

from __future__ import annotations

import os

import httpx
import pytest
import trio

from federation import wire
from federation.auth import SignatureAuth
from node.identity import Identity
from node.refusals import StrangerRefusals
from tests.fednet import FedNet
from tests.test_access import given_grant, person

STRANGERS = 3_000


@pytest.fixture
async def net(nursery, tmp_path):
    yield FedNet(nursery, tmp_path)


def receipts(store) -> int:
    return store.count("receipts")


async def test_3000_stranger_fetches_grow_the_receipt_log_by_at_most_10_rows(net):
    with trio.fail_after(240):
        alice = await person(net)
        acme = await net.node("acme", "vendor")
        await net.peer(alice, acme)
        grant = await given_grant(alice, acme, ["email"], uses=5)
        before = await alice.read(receipts)
        statuses: dict[int, int] = {}
        keys = [Identity.generate() for _ in range(STRANGERS)]

        async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=8)) as http:

            async def fetch_all(part: list[Identity]) -> None:
                for key in part:
                    body = wire.encode_access_ask(os.urandom(32), None)
                    answer = await http.post(alice.url + "/v1/access", content=body, auth=SignatureAuth(key))
                    statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1

            async with trio.open_nursery() as nursery:
                for i in range(8):
                    nursery.start_soon(fetch_all, keys[i::8])

            grown = await alice.read(receipts) - before
            counted = sum(c.count for c in await alice.read(lambda s: StrangerRefusals(s, clock=lambda: 0).counts()))
            assert sum(statuses.values()) == STRANGERS and set(statuses) <= {403, 429, 503}, statuses
            assert grown <= 10, grown
            assert statuses.get(403, 0) > 0 and counted == statuses[403]  # every refused fetch is counted
            rows = await alice.read(lambda s: s.count("stranger_refusals"))
            assert rows <= 2  # one source (127.0.0.1), this hour (or the next), one reason

            # A fetch concerning the real grant is still receipted, one by one: an ok and a refusal.
            ok = await http.post(
                alice.url + "/v1/access", content=wire.encode_access_ask(bytes.fromhex(grant.id), None),
                auth=SignatureAuth(acme.identity),
            )
            out_of_scope = await http.post(
                alice.url + "/v1/access",
                content=wire.encode_access_ask(bytes.fromhex(grant.id), ["phone"]),
                auth=SignatureAuth(acme.identity),
            )
            assert (ok.status_code, out_of_scope.status_code) == (200, 403)
            assert await alice.read(receipts) - before == grown + 2
        print(f"\n{STRANGERS} stranger fetches: statuses {statuses}, receipts +{grown}, counted {counted}")
