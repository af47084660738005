"""app.ops without a daemon (``direct_services``, what the CLI runs when no `vrm serve` is up):
argument checks, what each op stores and queues for peers, and peering/sync against real nodes."""

from __future__ import annotations

import pytest
import trio

from app.ops import OPS, run_op
from app.root import direct_services
from node.errors import ConflictError, IntentSyntaxError, NotFoundError, ValidationError
from node.gossiplog import GossipLog
from node.home import init_home
from node.identity import Identity
from node.keystore import load_identity
from node.leads import Leads
from node.nodeid import encode_node_id
from node.peers import Peers
from tests.fednet import FedNet

HOUR = 3_600_000
TIMEOUT = 20
DEAD_URL = "http://127.0.0.1:9"  # the discard port: nothing listens there


@pytest.fixture
def alice(tmp_path):
    home = init_home(tmp_path / "alice", None, "person")
    return home, load_identity(home.key_path, None)


@pytest.fixture
def acme(tmp_path):
    home = init_home(tmp_path / "acme", None, "vendor", name="Acme Air", handle="acme-air")
    return home, load_identity(home.key_path, None)


def _add_peer(services, role: str = "vendor", url: str | None = DEAD_URL) -> str:
    key = Identity.generate().public_key
    Peers(services.store.store).add(public_key=key, url=url, role=role, name="")
    return key.hex()


async def test_the_op_table_is_the_designed_one():
    assert sorted(OPS) == sorted(
        [
            "intent.cast",
            "intent.withdraw",
            "peers.add",
            "peers.remove",
            "peers.resend",
            "subscriptions.add",
            "subscriptions.remove",
            "offers.make",
            "offers.accept",
            "offers.decline",
            "blocks.add",
            "blocks.remove",
            "sync",
            "access.request",
            "access.fetch",
            "grants.approve",
            "grants.deny",
            "grants.create",
            "grants.revoke",
            "vault.set",
            "vault.delete",
        ]
    )


async def test_bad_arguments_are_refused_before_anything_is_written(alice):
    with trio.fail_after(TIMEOUT):
        async with direct_services(*alice) as services:
            with pytest.raises(ValidationError) as unknown:
                await run_op(services, "intent.shout", {})
            assert unknown.value.field == "op"
            with pytest.raises(ValidationError) as extra:
                await run_op(services, "intent.cast", {"text": "?flight", "colour": "red"})
            assert extra.value.field == "colour"
            with pytest.raises(ValidationError) as ttl:
                await run_op(services, "intent.cast", {"text": "?flight", "ttl_ms": "1h"})
            assert ttl.value.field == "ttl_ms"
            with pytest.raises(ValidationError) as terms:
                await run_op(services, "intent.cast", {"text": "?flight", "terms": [1]})
            assert terms.value.field == "terms"
            with pytest.raises(IntentSyntaxError):
                await run_op(services, "intent.cast", {"text": "no token here"})
            with pytest.raises(ValidationError):
                await run_op(services, "sync", {"now": True})
            assert await services.store.run(lambda: services.store.store.count("intents")) == 0


async def test_cast_and_withdraw_are_stored_and_queued_for_every_pushable_peer(alice):
    with trio.fail_after(TIMEOUT):
        async with direct_services(*alice) as services:
            changed: list[set[str]] = []
            services.changed = changed.append
            vendor = await services.store.run(_add_peer, services)
            await services.store.run(_add_peer, services, "vendor", None)  # no URL: never pushed to
            cast = await run_op(services, "intent.cast", {"text": "?flight to:JFK", "ttl_ms": HOUR, "terms": []})
            assert cast["status"] == "live" and cast["author"] == alice[0].public_key
            withdrawn = await run_op(services, "intent.withdraw", {"ref": cast["id"][:8]})
            assert withdrawn["status"] == "withdrawn"
            assert changed == [{vendor}, {vendor}]
            store = services.store.store
            queued = await services.store.run(store.query, "SELECT peer, ref FROM outbox ORDER BY id")
            assert queued == [
                {"peer": vendor, "ref": cast["id"]},
                {"peer": vendor, "ref": withdrawn["withdrawal_id"]},
            ]
            log = GossipLog(store)
            held = await services.store.run(log.get, cast["id"])
            assert held is not None and held.kind == "intent" and held.from_peer is None
            with pytest.raises(ConflictError):
                await run_op(services, "intent.withdraw", {"ref": cast["id"]})
            with pytest.raises(NotFoundError):
                await run_op(services, "intent.withdraw", {"ref": "abcdef01"})


async def test_ops_for_the_other_role_are_refused(alice, acme):
    with trio.fail_after(TIMEOUT):
        someone = encode_node_id(Identity.generate().public_key)
        async with direct_services(*alice) as services:
            for name, args in (
                ("subscriptions.add", {"text": "?flight"}),
                ("offers.make", {"lead": 1, "price_minor": 100, "currency": "USD", "text": "x", "ttl_ms": HOUR}),
                ("access.request", {"person": someone, "fields": ["email"], "purpose": "x", "duration_ms": HOUR}),
                ("access.fetch", {"grant": "abcdef01"}),
            ):
                with pytest.raises(ValidationError) as refused:
                    await run_op(services, name, args)
                assert refused.value.field == "role"
        async with direct_services(*acme) as services:
            for name, args in (
                ("offers.accept", {"ref": "abcdef01"}),
                ("offers.decline", {"ref": "abcdef01"}),
                ("grants.approve", {"request": "abcdef01"}),
                ("grants.deny", {"request": "abcdef01"}),
                ("grants.revoke", {"ref": "abcdef01"}),
                ("grants.create", {"vendor": someone, "fields": ["email"], "purpose": "x", "duration_ms": HOUR}),
            ):
                with pytest.raises(ValidationError) as refused:
                    await run_op(services, name, args)
                assert refused.value.field == "role"


async def test_access_arguments_are_checked_before_anything_is_written(alice, acme):
    with trio.fail_after(TIMEOUT):
        async with direct_services(*acme) as services:
            for args, field in (
                ({"person": "vrm1nope", "fields": ["email"], "purpose": "x", "duration_ms": HOUR}, "person"),
                ({"person": alice[0].node_id, "fields": "email", "purpose": "x", "duration_ms": "1h"}, "duration_ms"),
                ({"person": alice[0].node_id, "fields": [1], "purpose": "x", "duration_ms": HOUR}, "fields"),
            ):
                with pytest.raises(ValidationError) as refused:
                    await run_op(services, "access.request", args)
                assert refused.value.field == field
            with pytest.raises(ValidationError) as refused:
                await run_op(services, "access.fetch", {"grant": "abcdef01", "fields": "x", "more": 1})
            assert refused.value.field == "more"
            assert await services.store.run(lambda: services.store.store.count("envelopes")) == 0
        async with direct_services(*alice) as services:
            with pytest.raises(ValidationError) as refused:
                await run_op(services, "grants.approve", {"request": "abcdef01", "push": "yes"})
            assert refused.value.field == "push"
            with pytest.raises(ValidationError) as refused:
                await run_op(services, "grants.create", {"vendor": "x", "fields": ["email"], "purpose": "x", "duration_ms": HOUR})
            assert refused.value.field == "vendor"


async def test_an_access_request_is_sent_to_the_person_alone(alice, acme):
    with trio.fail_after(TIMEOUT):
        async with direct_services(*acme) as services:
            changed: list[set[str]] = []
            services.changed = changed.append
            store = services.store.store
            await services.store.run(
                lambda: Peers(store).add(public_key=bytes.fromhex(alice[0].public_key), url=DEAD_URL, role="person", name="")
            )
            other = await services.store.run(_add_peer, services, "relay")
            args = {"person": alice[0].node_id, "fields": ["shipping_address", "email"], "purpose": "ship order 123"}
            made = await run_op(services, "access.request", {**args, "duration_ms": 30 * 24 * HOUR, "for": None})
            assert made["fields"] == ["email", "shipping_address"] and made["status"] == "pending"
            assert changed == [{alice[0].public_key}]
            queued = await services.store.run(store.query, "SELECT peer, ref FROM outbox")
            assert queued == [{"peer": alice[0].public_key, "ref": made["id"]}]
            assert other not in {row["peer"] for row in queued}


async def test_vault_ops_never_return_the_value(alice):
    with trio.fail_after(TIMEOUT):
        async with direct_services(*alice) as services:
            entry = await run_op(services, "vault.set", {"name": "email", "value": "alice@example.org"})
            assert set(entry) == {"name", "encrypted", "created_at", "updated_at"} and entry["name"] == "email"
            assert "alice@example.org" not in repr(entry)
            assert await run_op(services, "vault.delete", {"name": "email"}) == {**entry}
            with pytest.raises(NotFoundError):
                await run_op(services, "vault.delete", {"name": "email"})
            with pytest.raises(ValidationError):
                await run_op(services, "vault.set", {"name": "Bad Name", "value": "x"})


async def test_subscriptions_change_the_matcher(acme):
    with trio.fail_after(TIMEOUT):
        async with direct_services(*acme) as services:
            changed: list[set[str]] = []
            services.changed = changed.append
            sub = await run_op(services, "subscriptions.add", {"text": "?flight"})
            assert sub["text"] == "?flight"
            removed = await run_op(services, "subscriptions.remove", {"id": sub["id"]})
            assert removed["id"] == sub["id"]
            assert changed == [{"subscriptions"}, {"subscriptions"}]
            with pytest.raises(NotFoundError):
                await run_op(services, "subscriptions.remove", {"id": sub["id"]})
            with pytest.raises(ValidationError):
                await run_op(services, "subscriptions.remove", {"id": "one"})


async def test_block_and_unblock(alice):
    with trio.fail_after(TIMEOUT):
        vendor = Identity.generate()
        node_id = encode_node_id(vendor.public_key)
        async with direct_services(*alice) as services:
            blocked = await run_op(services, "blocks.add", {"ref": node_id, "note": "spam"})
            assert blocked == {"public_key": vendor.public_key.hex(), "node_id": node_id}
            with pytest.raises(ConflictError):
                await run_op(services, "blocks.add", {"ref": vendor.public_key.hex()})
            assert await run_op(services, "blocks.remove", {"ref": node_id}) == blocked
            with pytest.raises(NotFoundError):
                await run_op(services, "blocks.remove", {"ref": node_id})
            with pytest.raises(ValidationError):
                await run_op(services, "blocks.add", {"ref": "not a node"})


async def test_peers_add_pins_the_key_and_says_hello(alice, nursery, tmp_path):
    with trio.fail_after(TIMEOUT):
        net = FedNet(nursery, tmp_path / "net")
        bob = await net.node("bob", "vendor")
        other = Identity.generate()
        async with direct_services(*alice) as services:
            with pytest.raises(ConflictError, match="not the expected"):
                await run_op(services, "peers.add", {"url": bob.url, "node_id": encode_node_id(other.public_key)})
            with pytest.raises(ConflictError, match="could not reach"):
                await run_op(services, "peers.add", {"url": DEAD_URL, "node_id": None})
            with pytest.raises(ValidationError):
                await run_op(services, "peers.add", {"url": "ftp://example.com"})
            assert await services.store.run(Peers(services.store.store).list) == []

            peer = await run_op(services, "peers.add", {"url": bob.url + "/", "node_id": bob.node_id})
            assert [peer[k] for k in ("node_id", "url", "role", "source")] == [bob.node_id, bob.url, "vendor", "added"]
            assert peer["last_contact_at"] is not None  # the hello went through
            with pytest.raises(ConflictError, match="already a peer"):
                await run_op(services, "peers.add", {"url": bob.url, "node_id": None})
            # Bob learnt of alice from her hello: announced, without a URL (no daemon, nothing to push to).
            known = await bob.read(lambda s: Peers(s).by_key(alice[0].public_key))
            assert (known.source, known.url, known.role) == ("announced", None, "person")

            removed = await run_op(services, "peers.remove", {"ref": bob.node_id})
            assert removed["node_id"] == bob.node_id
            with pytest.raises(NotFoundError):
                await run_op(services, "peers.remove", {"ref": bob.node_id})


async def test_peers_add_refuses_this_node_itself(nursery, tmp_path):
    with trio.fail_after(TIMEOUT):
        bob = await FedNet(nursery, tmp_path).node("bob")
        with pytest.raises(ValidationError, match="this node itself"):
            await bob.op("peers.add", {"url": bob.url})
        assert await bob.read(lambda s: Peers(s).list()) == []


async def test_sync_pulls_gossip_into_the_pipeline_and_records_failures(acme, nursery, tmp_path):
    with trio.fail_after(TIMEOUT):
        net = FedNet(nursery, tmp_path / "net")
        bob = await net.node("bob")
        intent = await bob.op("intent.cast", {"text": "Need ?flight to:JFK", "ttl_ms": HOUR, "terms": []})
        async with direct_services(*acme) as services:
            await run_op(services, "subscriptions.add", {"text": "?flight"})
            await run_op(services, "peers.add", {"url": bob.url})
            dead = await services.store.run(_add_peer, services, "person")
            result = await run_op(services, "sync", {})
            assert result == {"peers": 2, "reached": 1, "received": 1, "fetched": 1}
            leads = await services.store.run(Leads(services.store.store).list)
            assert [lead.intent_id for lead in leads] == [intent["id"]]
            peers = {p.public_key: p for p in await services.store.run(Peers(services.store.store).list)}
            assert peers[dead].failures == 1 and "127.0.0.1:9" in peers[dead].last_error
            # bob serves reconcile/1: the intent came by reconciliation, the gossip cursor did not move
            assert peers[bob.key].failures == 0 and peers[bob.key].pull_cursor == 0
            assert await run_op(services, "sync", {}) == {"peers": 2, "reached": 1, "received": 0, "fetched": 0}
