"""`vrm peers resend`: what the outbox gave up on after its last attempt is queued again when still
worth sending (a held, unexpired envelope; a push under a grant still live), and delivered by a real
node once its peer is back."""

from __future__ import annotations

import json

import pytest
import trio
from typer.testing import CliRunner

from app.ops import run_op
from cli.main import app
from tests.fednet import FedNet, eventually
from tests.helpers import person_with_away_vendor

HOUR = 3_600_000
MINUTE = 60_000
TIMEOUT = 30


@pytest.fixture
async def net(nursery, tmp_path):
    fed = FedNet(nursery, tmp_path)
    yield fed
    await fed.stop_all()


def _give_up(services, peer: str, now: int) -> None:
    """Every delivery queued for ``peer`` fails its last attempt (the peer stayed away)."""
    outbox = services.outbox
    outbox.max_attempts = 1
    while batch := outbox.due(peer, now):
        outbox.mark_failed([d.id for d in batch], now, "connection refused")


def _queued(services, peer: str) -> list[tuple[str, str]]:
    rows = services.store.store.query("SELECT kind, ref FROM outbox WHERE peer = ? ORDER BY id", [peer])
    return [(r["kind"], r["ref"]) for r in rows]


async def test_only_what_is_still_live_and_consented_is_queued_again(tmp_path):
    now = [1_000_000_000_000]
    with trio.fail_after(TIMEOUT):
        async with person_with_away_vendor(tmp_path / "alice", lambda: now[0]) as (services, vendor):
            grant = await run_op(services, "grants.create", {"vendor": vendor.hex(), "fields": ["email"],
                                                             "purpose": "receipts", "duration_ms": HOUR, "push": True})  # fmt: skip
            lasting = await run_op(services, "intent.cast", {"text": "?flight SFO->JFK", "ttl_ms": HOUR})
            brief = await run_op(services, "intent.cast", {"text": "?taxi SFO", "ttl_ms": 2 * MINUTE})
            queued = _queued(services, vendor.hex())
            assert ("access", f"{grant['id']}:1") in queued and len(queued) == 5  # grant, push, receipt, 2 intents
            await services.store.run(_give_up, services, vendor.hex(), now[0])
            assert _queued(services, vendor.hex()) == []

            now[0] += 3 * MINUTE  # the brief intent is dead by now: sending it would only be refused
            result = await run_op(services, "peers.resend", {"ref": vendor.hex()})
            assert (result["queued"], result["already_queued"], result["not_resent"]) == (4, 0, 1)
            again = _queued(services, vendor.hex())
            gossip = [ref for kind, ref in again if kind == "gossip"]  # the grant, its receipt, the intent
            assert len(gossip) == 3 and gossip[0] == grant["id"] and gossip[-1] == lasting["id"]
            assert ("access", f"{grant['id']}:1") in again and brief["id"] not in {ref for _, ref in again}
            [left] = services.outbox.dead(vendor.hex())
            assert left.ref == brief["id"]
            expiry = services.store.store.query_one("SELECT expires_at FROM outbox WHERE ref = ?", [lasting["id"]])
            assert expiry["expires_at"] == lasting["expires"]  # still dead-lettered `expired` in its turn
            push = services.store.store.query_one("SELECT expires_at FROM outbox WHERE ref = ?", [f"{grant['id']}:1"])
            assert push["expires_at"] == grant["expires"]  # the push ends with its consent, as first queued

            # The consent ends while the vendor is still away: the push is never sent on; the revocation is.
            await services.store.run(_give_up, services, vendor.hex(), now[0])
            revoked = await run_op(services, "grants.revoke", {"ref": grant["id"]})
            await services.store.run(_give_up, services, vendor.hex(), now[0])
            result = await run_op(services, "peers.resend", {"ref": vendor.hex()})
            again = _queued(services, vendor.hex())
            assert ("access", f"{grant['id']}:1") not in again and len(again) == result["queued"] >= 3
            assert result["not_resent"] == 2  # the push and the brief intent
            assert revoked["status"] == "ended"

            # A refusal is final: resend leaves it dead.
            services.outbox.mark_rejected([services.outbox.due(vendor.hex(), now[0])[0].id], now[0], "HTTP 400")
            assert "rejected" in {d.reason for d in services.outbox.dead(vendor.hex())}
            before = len(services.outbox.dead(vendor.hex()))
            assert (await run_op(services, "peers.resend", {"ref": vendor.hex()}))["queued"] == 0
            assert len(services.outbox.dead(vendor.hex())) == before


async def test_a_peer_back_from_away_receives_what_was_given_up(net):
    with trio.fail_after(TIMEOUT):
        alice = await net.node("alice", max_attempts=2)
        acme = await net.node("acme", "vendor")
        await acme.op("subscriptions.add", {"text": "?flight"})
        await net.peer(alice, acme)
        port = acme.port
        await net.stop(acme)
        for i in range(2):
            await alice.op("intent.cast", {"text": f"?flight SFO->JFK seat {i}", "ttl_ms": HOUR, "terms": []})
        await eventually(lambda: alice.read(lambda s: s.count("outbox_dead") == 2))
        await net.start(acme, port=port)

        result = await trio.to_thread.run_sync(  # `vrm` with the daemon up: the op runs in it
            lambda: CliRunner().invoke(app, ["--home", str(alice.home.path), "peers", "resend", acme.node_id])
        )
        assert result.exit_code == 0, result.output
        assert f"queued 2 delivery(ies) again for {acme.node_id}" in result.stdout
        await eventually(lambda: acme.read(lambda s: s.count("leads") == 2))
        await eventually(lambda: alice.read(lambda s: s.count("outbox") == 0 and s.count("outbox_dead") == 0))
        status = await trio.to_thread.run_sync(
            lambda: CliRunner().invoke(app, ["--home", str(alice.home.path), "status", "--json"])
        )
        assert json.loads(status.stdout)["queues"]["dead"] == 0
