"""Token-filtered reconciliation (issue 14, item 3): a vendor back from offline reconciles only the
intents its subscriptions could match, and receives exactly the matching ones it lacks (counted on
the wire); filters are canonical and bounded."""

from __future__ import annotations

import pytest
import trio

from app.ops import run_op
from app.root import build_core, direct_services
from federation import catchup
from federation.catchup import CatchUp, parse_filter, token_filter
from federation.wire import GossipItem
from node import envelope
from node.backends import NATIVE
from node.errors import WireError
from node.home import init_home
from node.identity import Identity
from node.intents import parse_intent
from node.keystore import load_identity
from node.leads import Leads
from node.store import Store
from tests.fednet import FedNet, eventually

HOUR = 3_600_000
TIMEOUT = 40


def _intents_with(store, token: str) -> int:
    return sum(1 for r in store.query("SELECT raw FROM envelopes WHERE kind = 'intent'")
               if token in catchup._intent_tokens(bytes(r["raw"]), NATIVE))


async def _cast(node, texts):
    for text in texts:
        await node.op("intent.cast", {"text": text, "ttl_ms": HOUR, "terms": []})


async def test_a_vendor_back_from_offline_fetches_only_the_matching_intents_it_lacks(nursery, tmp_path):
    home = init_home(tmp_path / "air", None, "vendor", name="Air", handle="air")
    air = home, load_identity(home.key_path, None)
    with trio.fail_after(TIMEOUT):
        net = FedNet(nursery, tmp_path / "net")
        alice = await net.node("alice")
        bob = await net.node("bob")
        await net.peer(alice, bob)  # alice pushes to bob
        await _cast(alice, [f"Need ?flight f{i}" for i in range(3)] + [f"Need ?hotel h{i}" for i in range(2)])
        await eventually(lambda: bob.read(lambda s: s.count("envelopes") == 5))
        async with direct_services(*air) as services:
            await run_op(services, "subscriptions.add", {"text": "?flight"})
            await run_op(services, "subscriptions.add", {"text": "?bike ?repair"})  # "?bike" is enough
            assert await services.store.run(services.catchup.own_filter) == "?bike ?flight"
            await run_op(services, "peers.add", {"url": alice.url, "node_id": alice.node_id})
            assert await run_op(services, "sync", {}) == {"peers": 1, "reached": 1, "received": 3, "fetched": 3}
        # away: more of both, one carrying both tokens, one only the second token of a subscription
        await _cast(alice, [f"Need ?flight g{i}" for i in range(4)] + [f"Need ?hotel k{i}" for i in range(5)]
                    + ["Need ?flight ?hotel both", "Need ?repair only", "Need ?bike ?repair near"])
        await eventually(lambda: bob.read(lambda s: s.count("envelopes") == 16))
        async with direct_services(*air) as services:
            # she knows bob now, who holds the same: the 3 she has are not sent again
            await run_op(services, "peers.remove", {"ref": alice.node_id})
            await run_op(services, "peers.add", {"url": bob.url, "node_id": bob.node_id})
            assert await run_op(services, "sync", {}) == {"peers": 1, "reached": 1, "received": 6, "fetched": 6}
            store = services.store.store
            assert await services.store.run(_intents_with, store, "flight") == 8
            assert await services.store.run(_intents_with, store, "bike") == 1
            assert await services.store.run(lambda: store.count("envelopes")) == 9  # no hotel-only, no ?repair alone
            leads = await services.store.run(lambda: Leads(store).list())
            assert len(leads) == 9  # each fetched intent matched a subscription
            assert await run_op(services, "sync", {}) == {"peers": 1, "reached": 1, "received": 0, "fetched": 0}
        await net.stop_all()


def test_filters_are_canonical_and_bounded():
    assert parse_filter("") is None
    assert parse_filter("?bike ?flight") == {"bike", "flight"}
    assert token_filter(["flight", "bike", "flight"]) == "?bike ?flight"
    assert token_filter([]) == "" and token_filter([f"t{k}" for k in range(catchup.MAX_FILTER_TOKENS + 1)]) == ""
    assert parse_filter(token_filter([f"t{k}" for k in range(catchup.MAX_FILTER_TOKENS)])) is not None
    assert parse_filter("?caf\u00e9 ?\u65c5\u884c") == {"caf\u00e9", "\u65c5\u884c"}  # any text but controls
    for bad in ("flight", "?flight ?bike", "?a ?a", "?", "?a ", " ?a", "?a?b", "?a\n", "?a\x7f", "?a\x9f", "?" + "x" * 101,
                " ".join(f"?t{k:03}" for k in range(catchup.MAX_FILTER_TOKENS + 1))):
        with pytest.raises(WireError):
            parse_filter(bad)


def test_the_filtered_set_holds_live_matching_intents_only(tmp_path):
    home = init_home(tmp_path / "bob", None, "person")
    alice = Identity.generate()
    with Store(home.db_path) as store:
        core = build_core(store, load_identity(home.key_path, None).public_key, "person")

        def held(text: str):
            env = envelope.create(alice, "intent", parse_intent(text).body(), ttl_ms=HOUR)
            assert core.pipeline.ingest([GossipItem(3, env.raw)], None).reasons == b"\x00"
            return env

        flight, hotel, both = held("Need ?flight a"), held("Need ?hotel b"), held("Need ?flight ?hotel c")
        withdrawn = held("Need ?flight d")
        w = envelope.create(alice, "withdraw", {"intent": withdrawn.id}, expires=withdrawn.expires)
        assert core.pipeline.ingest([GossipItem(3, w.raw)], None).reasons == b"\x00"
        ids = lambda f: {i for _, i in CatchUp(store).items(f).items}  # noqa: E731
        assert ids("?flight") == {flight.id, both.id}
        assert ids("?hotel") == {hotel.id, both.id}
        assert ids("?bike ?hotel") == {hotel.id, both.id}
        assert ids("?bike") == set()
        assert ids("") == {flight.id, hotel.id, both.id, w.id}


def test_a_long_lived_catchup_follows_the_log_and_keeps_its_token_cache_bounded(tmp_path, monkeypatch):
    """One CatchUp answers every message of a running node: its remembered sets follow new envelopes
    and the clock, and its token cache stays within MAX_CACHED (rebuilt from the set last asked)."""
    monkeypatch.setattr(catchup, "MAX_CACHED", 4)
    home = init_home(tmp_path / "bob", None, "person")
    alice = Identity.generate()
    now = [envelope.now_ms()]
    with Store(home.db_path) as store:
        core = build_core(store, load_identity(home.key_path, None).public_key, "person")
        serving = CatchUp(store, clock=lambda: now[0])

        def held(text: str, ttl_ms: int = HOUR):
            env = envelope.create(alice, "intent", parse_intent(text).body(), ttl_ms=ttl_ms)
            assert core.pipeline.ingest([GossipItem(3, env.raw)], None).reasons == b"\x00"
            return env.id

        flights = {held(f"Need ?flight n{i}") for i in range(6)}
        hotels = {held(f"Need ?hotel n{i}") for i in range(3)}
        ids = lambda f: {i for _, i in serving.items(f).items}  # noqa: E731
        for _ in range(2):  # the second time from what it remembers
            assert ids("?flight") == flights and ids("?hotel") == hotels and ids("?bike ?hotel") == hotels
            assert len(serving._tokens) <= 9
        assert serving.items("?flight") is serving.items("?flight")  # nothing new: not built again
        flights.add(held("Need ?flight late"))
        assert ids("?flight") == flights  # a new envelope: built again
        short = held("Need ?flight brief", ttl_ms=2_000)
        assert short in ids("?flight")
        now[0] += 5_000  # past its expiry: the next slot's set leaves it out
        assert ids("?flight") == flights and short not in ids("")
        assert short not in serving._tokens  # what left the sets left the token cache


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_set_updated_in_place_is_the_set_read_whole(tmp_path, seed, monkeypatch):
    """Whatever arrives, is withdrawn or expires between messages, and however the clock moves, the
    set a long-lived CatchUp updates in place is the one a fresh CatchUp reads whole; at a small
    MAX_SET it holds only live items, at most MAX_SET of them, and is whole again REBUILD_MS after
    its last read once it lost some."""
    import random

    rng = random.Random(seed)
    home = init_home(tmp_path / "bob", None, "person")
    authors = [Identity.generate() for _ in range(3)]
    start = envelope.now_ms()
    now = [start]
    filters = ["", "?flight", "?hotel", "?flight ?hotel"]
    with Store(home.db_path) as store:
        core = build_core(store, load_identity(home.key_path, None).public_key, "person")
        serving = CatchUp(store, clock=lambda: now[0])
        cycled = CatchUp(store, clock=lambda: now[0])
        many = ["?bike", "?flight", "?hotel", "?bike ?flight", "?bike ?hotel", "?flight ?hotel", "?bike ?flight ?hotel",
                "?bike ?car", "?car ?flight"][: catchup.MAX_SETS + 1]  # fmt: skip
        assert len(many) > catchup.MAX_SETS
        held = []
        for _ in range(60):
            step = rng.random()
            if step < 0.5:
                token = rng.choice(["flight", "hotel", "bike"])
                env = envelope.create(rng.choice(authors), "intent", parse_intent(f"Need ?{token} {rng.random()}").body(),
                                      ttl_ms=rng.choice([2_000, 20_000, HOUR]))  # fmt: skip
                assert core.pipeline.ingest([GossipItem(3, env.raw)], None).reasons == b"\x00"
                held.append((env, authors.index(next(a for a in authors if a.public_key == env.author))))
            elif step < 0.6 and held:
                env, who = rng.choice(held)
                w = envelope.create(authors[who], "withdraw", {"intent": env.id}, expires=env.expires)
                core.pipeline.ingest([GossipItem(3, w.raw)], None)  # may be a duplicate or expired
            elif step < 0.85:
                now[0] += rng.choice([0, 500, 3_000, 15_000])
            else:
                now[0] = max(start, now[0] - rng.choice([0, 1_000]))
            for f in filters:
                fresh = CatchUp(store, clock=lambda: now[0]).items(f).items
                assert serving.items(f).items == fresh
            for f in many:  # more filters than are kept: each is built again, from the kept intents' set
                assert cycled.items(f).items == CatchUp(store, clock=lambda: now[0]).items(f).items
        monkeypatch.setattr(catchup, "MAX_SET", 4)
        capped = CatchUp(store, clock=lambda: now[0])
        for _ in range(10):
            env = envelope.create(authors[0], "intent", parse_intent("Need ?flight more").body(), ttl_ms=3_000)
            core.pipeline.ingest([GossipItem(3, env.raw)], None)
            now[0] += 1_000
            live = set(CatchUp(store, clock=lambda: now[0]).items("").items) | set(
                (c, i) for c, i in ((r["created_at"], bytes(r["id"])) for r in store.query(
                    "SELECT created_at, id FROM envelopes WHERE expires_at > ?", [now[0]])))  # fmt: skip
            got = capped.items("").items
            assert len(got) <= 4 and set(got) <= live
        now[0] += catchup.REBUILD_MS  # a set that lost items at the cap is read whole again: refilled
        whole = lambda: CatchUp(store, clock=lambda: now[0]).items("").items  # noqa: E731
        assert capped.items("").items == whole()
        for _ in range(2):  # older than what follows: what a whole read refills with
            body = parse_intent(f"Need ?bike {rng.random()}").body()
            env = envelope.create(authors[2], "intent", body, expires=now[0] + HOUR)
            assert core.pipeline.ingest([GossipItem(3, env.raw)], None).reasons == b"\x00"
        for ttl in (HOUR, HOUR, HOUR, HOUR, 2_000):  # the newest four, the last of them brief
            body = parse_intent(f"Need ?hotel {ttl} {rng.random()}").body()
            env = envelope.create(authors[1], "intent", body, expires=now[0] + ttl)  # by the set's clock
            assert core.pipeline.ingest([GossipItem(3, env.raw)], None).reasons == b"\x00"
        kept = CatchUp(store, clock=lambda: now[0])
        assert kept.items("").items == whole() and len(whole()) == 4
        assert len(kept.items("?hotel").items) == 4  # the live intents' set, which filters are built from
        now[0] += 3_000  # the brief one expired: one short of a whole read until REBUILD_MS passed
        assert len(kept.items("").items) == 3 and len(whole()) == 4
        fresh = lambda f: CatchUp(store, clock=lambda: now[0]).items(f).items  # noqa: E731
        assert len(kept.items("?bike ?hotel").items) == 3 and len(fresh("?bike ?hotel")) == 4  # built short
        now[0] += catchup.REBUILD_MS
        assert kept.items("").items == whole()
        assert kept.items("?bike ?hotel").items == fresh("?bike ?hotel")  # and refilled like the rest
