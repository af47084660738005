"""Agreements over real stores and through the CLI; the offer body's versions and the withdrawal's
reason; a vendor's view of each offer's delivery (queued, delivered, accepted, superseded) on real
nodes. The multi-node closing of intents is tests/test_accept_closes_intent.py."""

from __future__ import annotations

import json

import pytest
import trio
from typer.testing import CliRunner

from cli.main import app
from node import envelope
from node.agreements import Agreements, agreement_row
from node.errors import ConflictError, ValidationError
from node.home import init_home
from node.intents import Intents, check_withdraw_body, withdraw_body
from node.leads import Leads
from node.offers import Offers, check_offer_body, offer_body
from node.reasons import Reason
from node.store import Store
from tests.fednet import FedNet, eventually
from tests.helpers import Clock
from tests.test_offers import DAY, HOUR, MALLORY, PERSON, T0, VENDOR, signed_offer

TERMS = ("no-resale", "delete-after-use")


@pytest.fixture
def clock():
    return Clock(T0)


@pytest.fixture
def stores(tmp_path):
    with Store(tmp_path / "person.db") as ps, Store(tmp_path / "vendor.db") as vs:
        yield ps, vs


def deal(ps, vs, clock, *, terms=TERMS):
    """Alice casts with ``terms``, the vendor offers (agreeing to them by default), she receives it."""
    intent = Intents(ps, clock=clock).cast(PERSON, "?flight SFO->JFK", ttl_ms=DAY, terms=terms)
    Leads(vs, clock=clock).add_many([(envelope.decode(intent.raw), [1])])
    lead = Leads(vs, clock=clock).get(intent.id)
    vendor = Offers(vs, clock=clock)
    _, offer = vendor.make(
        VENDOR, lead, price_minor=100, currency="EUR", text="a seat", ttl_ms=HOUR, handle="air", name="Air"
    )
    person = Offers(ps, clock=clock)
    assert person.receive(offer, me=PERSON.public_key) == Reason.OK
    return intent, offer, person, vendor


def test_an_acceptance_makes_the_same_agreement_on_both_sides(stores, clock):
    ps, vs = stores
    intent, offer, person, vendor = deal(ps, vs, clock)
    clock.now += 1000
    done = person.accept_deal(PERSON, offer.id.hex())
    assert done.envelopes == [done.accept, done.withdrawal]  # the acceptance first
    assert vendor.decision_received(done.accept) == Reason.OK
    [mine], [theirs] = Agreements(ps).list(), Agreements(vs).list()
    assert mine == theirs == done.agreement
    assert (mine.id, mine.offer_id, mine.intent_id) == (done.accept.id.hex(), offer.id.hex(), intent.id)
    assert mine.terms == TERMS and mine.made_at == T0 + 1000 and mine.offer_raw == offer.raw
    assert Agreements(vs).verify(theirs) and Agreements(vs).get(theirs.id[:8]) == theirs
    assert Agreements(ps).for_offer(offer.id.hex()) == mine
    json.dumps(mine.to_json())
    # the same acceptance again is kept once; nothing else can become this offer's agreement
    assert vendor.decision_received(done.accept) == Reason.DUPLICATE
    assert Agreements(vs).record(offer, done.accept) == theirs
    other = envelope.create(PERSON, "accept", done.accept.body, created=T0 + 5, expires=offer.expires)
    with pytest.raises(ConflictError):
        Agreements(vs).record(offer, other)
    assert Agreements(vs).list() == [theirs]


def test_an_agreement_is_only_an_offer_and_its_addressees_acceptance(stores, clock):
    ps, vs = stores
    _, offer, person, _ = deal(ps, vs, clock)
    _, accept = person.accept(PERSON, offer.id.hex())
    by_mallory = envelope.create(MALLORY, "accept", accept.body, created=T0, expires=offer.expires)
    other_offer = envelope.create(PERSON, "accept", {**accept.body, "offer": bytes(32)}, created=T0, expires=T0 + 1)
    for off, acc in ((offer, by_mallory), (offer, other_offer), (accept, offer), (offer, offer)):
        with pytest.raises(ValidationError):
            agreement_row(off, acc)
    forged = Agreements(ps).list()[0]
    tampered = forged.__class__(**{**forged.__dict__, "terms": ()})
    assert Agreements(ps).verify(forged) and not Agreements(ps).verify(tampered)


def test_offer_bodies_of_both_versions(stores, clock):
    v1 = offer_body(bytes(32), bytes(32), 1, "EUR", "x", "air", "Air")
    v2 = offer_body(bytes(32), bytes(32), 1, "EUR", "x", "air", "Air", TERMS)
    assert "v" not in v1 and v2["v"] == 2 and v2["terms"] == list(TERMS)
    assert check_offer_body(v1) is v1 and check_offer_body(v2) is v2
    for bad, field in (
        ({**v2, "v": 3}, "v"),
        ({**v2, "v": True}, "v"),
        ({**v2, "terms": ["no-resale", "no-resale"]}, "terms"),
        ({**v2, "terms": ["NO-RESALE"]}, "terms"),
        ({**v2, "terms": "no-resale"}, "terms"),
        ({**v2, "terms": ["sell-everything"]}, "terms"),
        ({**v2, "terms": [7]}, "terms"),
        ({**v1, "terms": []}, "body"),  # terms without a version
        ({k: v for k, v in v2.items() if k != "terms"}, "body"),
    ):
        with pytest.raises(ValidationError) as info:
            check_offer_body(bad)
        assert info.value.field == field, bad


def test_a_version_1_offer_is_kept_only_for_an_intent_without_terms(stores, clock):
    ps, _ = stores
    intents, offers = Intents(ps, clock=clock), Offers(ps, clock=clock)
    plain = intents.cast(PERSON, "?taxi", ttl_ms=DAY)
    strict = intents.cast(PERSON, "?flight", ttl_ms=DAY, terms=["no-resale"])
    me = PERSON.public_key
    assert offers.receive(signed_offer(bytes.fromhex(plain.id), me), me=me) == Reason.OK
    assert offers.receive(signed_offer(bytes.fromhex(strict.id), me), me=me) == Reason.TERMS_NOT_AGREED
    [kept] = offers.list()
    assert (kept.version, kept.terms, kept.intent_id) == (1, (), plain.id)


def test_withdrawal_bodies_and_reasons(stores, clock):
    ps, _ = stores
    assert check_withdraw_body({"intent": bytes(32)}) == (bytes(32), None)
    assert check_withdraw_body(withdraw_body(bytes(32), "fulfilled")) == (bytes(32), "fulfilled")
    for bad in ({"intent": bytes(32), "reason": "bored"}, {"intent": bytes(31)}, {"intent": bytes(32), "x": 1}, []):
        with pytest.raises(ValidationError):
            check_withdraw_body(bad)
    intents = Intents(ps, clock=clock)
    cast = intents.cast(PERSON, "?taxi", ttl_ms=DAY)
    with pytest.raises(ValidationError):
        intents.withdraw(PERSON, cast.id, reason="bored")
    assert intents.get(cast.id).status == "live"
    done = intents.withdraw(PERSON, cast.id, reason="fulfilled")
    assert (done.status, done.withdraw_reason) == ("withdrawn", "fulfilled")
    assert envelope.decode(done.withdrawal_raw).body == {"intent": bytes.fromhex(cast.id), "reason": "fulfilled"}


def test_accept_refuses_an_offer_missing_a_term_even_if_it_was_kept(stores, clock):
    """An offer kept before a term check (an older node) still cannot become an agreement."""
    ps, vs = stores
    _, offer, person, _ = deal(ps, vs, clock)
    with ps.transaction():
        ps.execute("UPDATE offers SET terms = '[\"no-resale\"]' WHERE id = ?", [offer.id.hex()])
    with pytest.raises(ConflictError, match="delete-after-use"):
        person.accept(PERSON, offer.id.hex())
    assert Agreements(ps).list() == [] and person.get(offer.id.hex()).status == "open"


# -- the CLI -------------------------------------------------------------------------------------------


def test_vrm_agreements_list_and_show(tmp_path, clock):
    home = init_home(tmp_path / "alice", None, "person")
    runner = CliRunner()
    env = {"VRM_HOME": str(home.path), "VRM_PASSPHRASE": ""}
    from node.keystore import load_identity

    alice = load_identity(home.key_path, None)
    with Store(home.db_path) as ps, Store(tmp_path / "vendor.db") as vs:
        intent = Intents(ps).cast(alice, "?flight", ttl_ms=DAY, terms=TERMS)
        Leads(vs).add_many([(envelope.decode(intent.raw), [1])])
        _, offer = Offers(vs).make(
            VENDOR, Leads(vs).get(intent.id), price_minor=100, currency="EUR", text="a seat", ttl_ms=HOUR,
            handle="air", name="Air",
        )  # fmt: skip
        assert Offers(ps).receive(offer, me=alice.public_key) == Reason.OK
    accepted = runner.invoke(app, ["offers", "accept", offer.id.hex()[:10], "--json"], env=env)
    assert accepted.exit_code == 0, accepted.stdout
    done = json.loads(accepted.stdout)
    assert done["intent_closed"] and done["agreement"]["terms"] == list(TERMS)
    listed = runner.invoke(app, ["agreements", "list", "--json"], env=env)
    [row] = json.loads(listed.stdout)
    assert row["offer_id"] == offer.id.hex() and row["terms"] == list(TERMS)
    shown = runner.invoke(app, ["agreements", "show", row["id"][:8]], env=env)
    assert shown.exit_code == 0 and "both verify" in shown.stdout and "delete-after-use" in shown.stdout
    again = runner.invoke(app, ["offers", "accept", offer.id.hex()], env=env)
    assert again.exit_code != 0 and "already accepted" in (again.stdout + again.stderr)


# -- a vendor's view of delivery, on real nodes --------------------------------------------------------


@pytest.fixture
async def net(nursery, tmp_path):
    yield FedNet(nursery, tmp_path / "net")


async def test_a_vendor_sees_each_offers_delivery(net):
    with trio.fail_after(40):
        alice = await net.node("alice")
        air = await net.node("air", "vendor")
        await air.op("subscriptions.add", {"text": "?flight"})
        await net.peer(alice, air)
        intent = await alice.op("intent.cast", {"text": "?flight", "ttl_ms": DAY, "terms": list(TERMS)})
        [lead] = await eventually(lambda: air.read(lambda s: Leads(s).list()))
        await net.stop(alice)  # unreachable: the offer waits in the vendor's outbox

        def offer_args(price):
            return {"lead": lead.id, "price_minor": price, "currency": "USD", "text": "seat", "ttl_ms": HOUR}

        first = await air.op("offers.make", offer_args(100))
        second = await air.op("offers.make", offer_args(200))
        assert (first["delivery"], second["delivery"]) == ("queued", "queued")
        await net.start(net.nodes["alice"])
        await air.op("sync", {})

        def deliveries(store):
            return {o.id: o.delivery for o in Offers(store).list(direction="sent", status="all")}

        await eventually(lambda: air.read(lambda s: set(deliveries(s).values()) == {"delivered"}))
        await eventually(lambda: alice.read(lambda s: len(Offers(s).list()) == 2))
        await alice.op("offers.accept", {"ref": first["id"]})
        await eventually(
            lambda: air.read(
                lambda s: deliveries(s) == {first["id"]: "accepted", second["id"]: "superseded"}
            )
        )
        assert [x.status for x in await air.read(lambda s: Leads(s).list(status="all"))] == ["closed"]
        assert (await alice.read(lambda s: Intents(s).get(intent["id"]))).withdraw_reason == "fulfilled"


@pytest.fixture(scope="module")
def pg_url():
    from tests.pgcluster import PgCluster

    with PgCluster() as pg:
        yield pg.url


def test_a_vendor_on_postgresql_keeps_the_agreement_and_closes_its_lead(pg_url, tmp_path, clock):
    """The fleet's store (fleet/pgschema.py migration 3): the vendor's side of a deal, on PostgreSQL."""
    from fleet.pgstore import PgStore

    with Store(tmp_path / "person.db") as ps, PgStore(pg_url) as vs:
        intent, offer, person, vendor = deal(ps, vs, clock)
        _, other = vendor.make(
            VENDOR, Leads(vs, clock=clock).get(intent.id), price_minor=90, currency="EUR", text="another",
            ttl_ms=HOUR, handle="air", name="Air",
        )  # fmt: skip
        assert vendor.get(offer.id.hex()).terms == TERMS
        done = person.accept_deal(PERSON, offer.id.hex())
        with vs.transaction():  # as the pipeline judges a batch: the withdrawal may come first
            assert vendor.intent_closed(intent.id, done.withdrawal.created) == 2
            assert vendor.decision_received(done.accept) == Reason.OK
            Leads(vs, clock=clock).withdraw(intent.id, done.withdrawal.created)
        assert Agreements(vs).list() == Agreements(ps).list() == [done.agreement]
        assert Leads(vs, clock=clock).get(intent.id).status == "closed"
        assert {o.id: o.delivery for o in vendor.list(direction="sent", status="all")} == {
            offer.id.hex(): "accepted",
            other.id.hex(): "superseded",
        }
