"""Peer scoring (issue 10, item 8): real nodes on loopback.

A peer that relays forged envelopes and sends malformed batches loses score with each, is throttled,
then refused for a cool-down, and stays refused across a restart; an honest peer pushing at the same
time keeps its full score. `vrm peers list` shows both, with why.
"""

from __future__ import annotations

import json

import pytest
import trio
from typer.testing import CliRunner

from cli.main import app
from federation import wire
from federation.peerclient import PeerClient
from node import envelope
from node.errors import DeliveryError
from node.identity import Identity
from node.reasons import Reason
from node.scores import FULL, PENALTIES, Standing
from node.scores import Scores
from tests.fednet import FedNet
from tests.test_defence_refusals import intents


@pytest.fixture
async def net(nursery, tmp_path):
    yield FedNet(nursery, tmp_path)


def forged(raw: bytes) -> bytes:
    sig = envelope.decode(raw).sig
    return raw.replace(sig, sig[:-1] + bytes([sig[-1] ^ 1]))  # the signature's last byte flipped


async def test_a_misbehaving_peer_is_throttled_then_refused_and_honest_ones_are_not(net):
    with trio.fail_after(40):
        node = await net.node("v", "vendor")
        mallory, honest = Identity.generate(), Identity.generate()
        async with PeerClient(mallory) as bad, PeerClient(honest) as good:
            await bad.hello(node.url, None, "relay", "Mallory")
            await good.hello(node.url, None, "relay", "Honest")
            statuses = []
            for round_ in range(20):
                if statuses and statuses[-1] == 403:
                    break
                assert await good.push(node.url, [wire.GossipItem(4, r) for r in intents(honest, 5)]) == bytes(5)
                try:
                    if round_ % 2:
                        await bad.push(node.url, [b"\xc1garbage"])
                    else:
                        reasons = await bad.push(node.url, [wire.GossipItem(4, forged(r)) for r in intents(mallory, 3)])
                        assert reasons == bytes([Reason.BAD_SIGNATURE]) * 3
                    statuses.append(200)
                except DeliveryError as exc:
                    statuses.append(int(str(exc).split("HTTP ")[1][:3]))
                    if statuses[-1] == 429:  # throttled: one request a second
                        await trio.sleep(1.0)
            assert 429 in statuses and statuses[-1] == 403  # throttled on the way, then refused
            with pytest.raises(DeliveryError, match="403 peer_refused"):
                await bad.node_info(node.url)
        standings = await node.read(lambda s: (Scores(s).get(mallory.public_key.hex()), Scores(s).get(honest.public_key.hex())))
        assert standings[0].state(standings[0].updated_at) == "refused"
        assert set(standings[0].offences) == {"bad_signature", "malformed_batch"}
        assert standings[1].offences == {} and standings[1].score == FULL

        await net.stop(node)
        await net.start(node)  # the score is persisted: still refused after a restart
        async with PeerClient(mallory) as bad, PeerClient(honest) as good:
            await signed_after_the_floor(good, node.url)
            with pytest.raises(DeliveryError, match="403 peer_refused"):
                await bad.node_info(node.url)
            await good.node_info(node.url)
        await net.stop(node)
        listed = CliRunner().invoke(app, ["peers", "list", "--json"], env={"VRM_HOME": node.home.path})
        rows = {row["name"]: row for row in json.loads(listed.stdout)}
        assert rows["Mallory"]["state"] == "refused" and rows["Mallory"]["offences"]["bad_signature"] >= 3
        assert rows["Honest"]["state"] == "ok" and rows["Honest"]["score"] == FULL
        table = CliRunner().invoke(app, ["peers", "list"], env={"VRM_HOME": node.home.path, "COLUMNS": "400"})
        assert "refused" in table.stdout and "bad_signature" in table.stdout


async def signed_after_the_floor(client: PeerClient, url: str) -> None:
    """Requests signed within a second of the restart are refused 401 once (the replay floor)."""
    for _ in range(30):
        try:
            await client.node_info(url)
            return
        except DeliveryError as exc:
            assert "401" in str(exc)
            await trio.sleep(0.1)


def test_scores_fall_recover_and_cool_down():
    s = Standing("ab" * 32)
    s.offend({"limit_hit": 1}, 0)
    assert s.current(0) == FULL - PENALTIES["limit_hit"] and s.state(0) == "ok"
    assert s.current(60_000) == FULL  # recovered within a minute
    for t in range(3):
        s.offend({"malformed_batch": 1}, 1000 + t)
    assert s.state(2000) == "throttled"
    s.offend({"bad_signature": 20}, 3000)  # one request costs at most MAX_PENALTY
    assert s.state(3000) == "refused" and s.refused_until == 3000 + 600_000
    assert s.state(3000 + 600_000) != "refused"
