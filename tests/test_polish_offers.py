"""A vendor sees what became of its offers, on real nodes on loopback: one the person's node refused
shows ``refused`` with the reason it answered (`vrm offers list`, `vrm offers show`, the page), one
still waiting for a peer that is down shows ``queued`` on the page as in the CLI."""

from __future__ import annotations

import json

import pytest
import trio
from typer.testing import CliRunner

from cli.main import app
from node.leads import Leads
from node.offers import Offers
from tests.fednet import FedNet, eventually

TIMEOUT = 40
HOUR = 3_600_000
TERMS = ["no-resale", "delete-after-use"]


@pytest.fixture
async def net(nursery, tmp_path):
    yield FedNet(nursery, tmp_path)


async def person_and_vendor(net: FedNet):
    alice = await net.node("alice")
    air = await net.node("acme", "vendor")
    await air.op("subscriptions.add", {"text": "?flight"})
    await net.peer(alice, air)
    await alice.op("intent.cast", {"text": "Need ?flight SFO->JFK", "ttl_ms": HOUR, "terms": TERMS})
    [lead] = await eventually(lambda: air.read(lambda s: Leads(s).list()))
    return alice, air, lead


def offer_args(lead, **more) -> dict:
    return {"lead": lead.id, "price_minor": 100, "currency": "USD", "text": "a seat", "ttl_ms": HOUR} | more


async def vrm(node, *args: str):
    result = await trio.to_thread.run_sync(lambda: CliRunner().invoke(app, ["--home", str(node.home.path), *args]))
    assert result.exit_code == 0, result.output
    return result.stdout


async def test_an_offer_the_persons_node_refuses_shows_refused_with_its_reason(net):
    with trio.fail_after(TIMEOUT):
        alice, air, lead = await person_and_vendor(net)
        good = await air.op("offers.make", offer_args(lead))
        dropped = await air.op("offers.make", offer_args(lead, text="cheaper", terms=["no-resale"]))
        await eventually(lambda: air.read(lambda s: s.count("outbox") == 0))  # both answered
        assert [o.id for o in await alice.read(lambda s: Offers(s).list())] == [good["id"]]

        doc = {o["id"]: o for o in json.loads(await vrm(air, "offers", "list", "--json"))}
        assert doc[dropped["id"]]["delivery"] == "refused"
        assert doc[dropped["id"]]["refused_reason"] == "terms_not_agreed"
        assert doc[good["id"]]["delivery"] == "delivered" and doc[good["id"]]["refused_reason"] is None
        table = await vrm(air, "offers", "list")
        assert "refused" in table and "delivered" in table
        shown = await vrm(air, "offers", "show", dropped["id"][:12])
        assert "refused: terms_not_agreed" in shown
        shown_json = json.loads(await vrm(air, "offers", "show", dropped["id"], "--json"))
        assert shown_json["delivery"] == "refused" and shown_json["refused_reason"] == "terms_not_agreed"

        # the vendor's page says it too
        from ui import queries

        page = await air.read(lambda s: queries.offers_sent(s, air.runtime.clock))
        rows = {row["offer"].id: row["delivery"] for row in page["offers"]}
        assert rows == {dropped["id"]: "refused (terms_not_agreed)", good["id"]: "delivered"}


async def test_the_page_shows_an_offer_queued_for_a_person_who_is_away(net):
    with trio.fail_after(TIMEOUT):
        alice, air, lead = await person_and_vendor(net)
        await net.stop(alice)
        made = await air.op("offers.make", offer_args(lead))
        assert made["delivery"] == "queued"
        from ui import queries

        await eventually(lambda: air.read(lambda s: s.query_one("SELECT 1 FROM outbox WHERE attempts > 0")))
        page = await air.read(lambda s: queries.offers_sent(s, air.runtime.clock))
        [row] = page["offers"]
        assert row["offer"].id == made["id"] and row["delivery"].startswith("queued, ")
        assert "tries" in row["delivery"]


async def test_the_deliverer_keeps_only_the_refusals_it_is_asked_to_and_never_a_held_or_retryable_one(
    store, autojump_clock
):
    """In mock time: refused items the rule picks are dead-lettered ``refused: <reason>``; the rest
    (refused or not) are acknowledged, a retryable refusal is re-queued, the rule never sees held ones."""
    from tests.deliverynet import InlineStore, Peer, deliverer, item, network, outbox_for, until

    peer = Peer(refuse_items={b"offer": 33, b"other": 21, b"dup": 17, b"busy": 31})
    outbox = outbox_for(store)
    with store.transaction():
        for ref in ("offer", "other", "dup", "busy", "ok"):
            outbox.enqueue("a", item(ref.encode()), kind="gossip", now=0, ref=ref)
    asked: list[str] = []

    def keeps(peer_key: str, delivery) -> bool:
        asked.append(delivery.ref)
        return peer_key == "a" and delivery.ref in ("offer", "dup")

    async with network({"a": peer}) as client, trio.open_nursery() as nursery:
        d = deliverer(InlineStore(store), outbox, client)
        d.keeps_refusal = keeps
        await nursery.start(d.run)
        await until(lambda: len(peer.received) >= 5)
        await until(lambda: outbox.pending_counts() == {"a": 1})
        assert sorted(asked) == ["offer", "other"]  # refused for good: neither held nor retryable
        [dead] = outbox.dead()
        assert (dead.ref, dead.reason, dead.last_error) == ("offer", "rejected", "refused: terms_not_agreed")
        assert [r["ref"] for r in store.query("SELECT ref FROM outbox")] == ["busy"]  # later, not refused
        assert d.stats["a"].delivered == 3
        nursery.cancel_scope.cancel()
