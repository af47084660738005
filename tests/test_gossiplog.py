"""The gossip log: holding envelopes once, pulling them in order, inboxes, expiry."""

from __future__ import annotations

import pytest

from node import envelope
from node.errors import ConflictError, ValidationError
from node.gossiplog import MAX_TTL, ORIGIN_TTL, GossipLog, Held, addressing, envelope_row
from node.identity import Identity
from tests.helpers import Clock
from tests.conftest import vendor_engines

T0 = 1_700_000_000_000
DAY = 86_400_000
ALICE = Identity.from_seed(bytes([9]) * 32)
VENDOR = Identity.from_seed(bytes([3]) * 32)
INTENT_ID = bytes([7]) * 32
OFFER_ID = bytes([8]) * 32


@pytest.fixture
def store(vendor_store):
    """The store a vendor's node uses: SQLite, and PostgreSQL too for tests marked ``@vendor_engines``."""
    return vendor_store


@pytest.fixture
def clock():
    return Clock(T0)


@pytest.fixture
def log(store, clock):
    return GossipLog(store, clock=clock)


def env(kind="intent", body=None, *, author=ALICE, created=T0, ttl=DAY):
    return envelope.create(author, kind, {"n": 0} if body is None else body, created=created, ttl_ms=ttl)


def offer(to=ALICE.public_key, n=0, **kw):
    return env("offer", {"intent": INTENT_ID, "to": to, "n": n}, author=VENDOR, **kw)


def rows(store):
    return store.query("SELECT * FROM envelopes ORDER BY seq")


def test_addressing_of_every_kind():
    assert addressing(env("intent")) == (None, None)
    assert addressing(env("withdraw", {"intent": INTENT_ID})) == (None, INTENT_ID.hex())
    assert addressing(offer()) == (ALICE.public_key.hex(), INTENT_ID.hex())
    for kind in ("accept", "decline"):
        body = {"intent": INTENT_ID, "offer": OFFER_ID, "to": VENDOR.public_key}
        assert addressing(env(kind, body)) == (VENDOR.public_key.hex(), OFFER_ID.hex())
    assert addressing(env("receipt", {"to": b"x"})) == (None, None)
    for kind, body in (("offer", {"intent": INTENT_ID}), ("accept", "x"), ("withdraw", {"intent": b"short"})):
        with pytest.raises(ValidationError):
            addressing(env(kind, body))


@vendor_engines
def test_add_get_known_and_count(log, clock):
    first, second = env(body={"n": 1}), offer()
    s1 = log.add(first, ttl=ORIGIN_TTL, recipient=None, ref=None, from_peer=None)
    clock.now = T0 + 5
    s2 = log.add(second, ttl=3, recipient=ALICE.public_key.hex(), ref=INTENT_ID.hex(), from_peer="ab" * 32)
    assert s2 > s1
    held = log.get(second.id.hex())
    assert held == Held(
        seq=s2,
        id=second.id.hex(),
        kind="offer",
        author=VENDOR.public_key.hex(),
        created=second.created,
        expires=second.expires,
        recipient=ALICE.public_key.hex(),
        ref=INTENT_ID.hex(),
        ttl=3,
        raw=second.raw,
        received_at=T0 + 5,
        from_peer="ab" * 32,
    )
    assert held.to_json()["raw"] == second.raw.hex()
    assert log.get("00" * 32) is None
    assert log.known([first.id, bytes(32), second.id]) == {first.id, second.id}
    assert log.known([]) == set()
    with pytest.raises(ValidationError):  # hex is not an id here: it would never match a BLOB
        log.known([first.id.hex()])
    assert log.count_by_kind() == {"intent": 1, "offer": 1}
    assert log.by_ref(INTENT_ID.hex()) == [held] and log.by_ref(INTENT_ID.hex(), "withdraw") == []


@vendor_engines
def test_known_answers_thousands_of_ids_in_one_query(log):
    held = [env(body={"n": i}) for i in range(5)]
    log.add_many(
        [envelope_row(e, ttl=1, recipient=None, ref=None, from_peer=None, received_at=T0) for e in held]
    )
    asked = [i.to_bytes(32, "big") for i in range(5000)] + [e.id for e in held]
    assert log.known(asked) == {e.id for e in held}


def intent_row(id_: bytes, raw: bytes = b"\x01" * 40) -> tuple:
    """An ``add_intents`` row (INTENT_COLUMNS) with a chosen id: ids whose first 8 bytes collide."""
    return (bytearray(id_), "intent", bytearray(ALICE.public_key), T0, T0 + DAY, 1, bytearray(raw), T0, None)


@vendor_engines
def test_ids_sharing_their_first_8_bytes_stay_apart(log, store):
    # The SQLite index holds the ids' first 8 bytes (migration 15): every lookup still names the whole id.
    held, twin = b"\xab" * 8 + b"\x01" * 24, b"\xab" * 8 + b"\x02" * 24
    with store.transaction():
        log.add_intents([intent_row(held, b"held")])
    assert log.known([twin]) == set() and log.known([twin, held]) == {held}
    assert log.get(twin.hex()) is None and log.get(held.hex()).raw == b"held"
    twin_env = envelope.Envelope(1, "intent", ALICE.public_key, T0, T0 + DAY, {"n": 0}, bytes(64), twin, b"twin")
    (seq,) = log.add_many([envelope_row(twin_env, ttl=1, recipient=None, ref=None, from_peer=None, received_at=T0)])
    assert log.known([twin, held]) == {twin, held} and log.get(twin.hex()).seq == seq
    with pytest.raises(ConflictError):  # the prefix index is not UNIQUE: add_many refuses a held id itself
        log.add_many([envelope_row(twin_env, ttl=1, recipient=None, ref=None, from_peer=None, received_at=T0)])


def test_id_lookups_search_the_prefix_index(store):
    from node.gossiplog import id_in

    where, params = id_in([bytes(32), bytes([1]) * 32])
    rows = store.query(f"EXPLAIN QUERY PLAN SELECT id FROM envelopes WHERE {where}", params)
    plan = " ".join(r["detail"] for r in rows)
    assert "USING INDEX envelopes_id" in plan and "SCAN" not in plan


@vendor_engines
def test_a_duplicate_is_refused_and_the_batch_stores_nothing(log, store):
    a, b = env(body={"n": 1}), env(body={"n": 2})
    log.add(a, ttl=1, recipient=None, ref=None, from_peer=None)
    before = rows(store)
    batch = [envelope_row(e, ttl=1, recipient=None, ref=None, from_peer=None, received_at=T0) for e in (b, a)]
    with pytest.raises(ConflictError):
        log.add_many(batch)
    assert rows(store) == before
    with pytest.raises(ConflictError):  # the same envelope twice in one batch
        log.add_many([batch[0], batch[0]])
    assert rows(store) == before


@vendor_engines
def test_add_many_joins_the_callers_transaction(log, store):
    row = envelope_row(env(), ttl=1, recipient=None, ref=None, from_peer=None, received_at=T0)
    with pytest.raises(RuntimeError), store.transaction():
        assert log.add_many([row]) == [1]
        raise RuntimeError("the pipeline failed later in the batch")
    assert rows(store) == []


GOOD = {
    "id": "ab" * 32,
    "kind": "intent",
    "author": "cd" * 32,
    "created": T0,
    "expires": T0 + DAY,
    "recipient": None,
    "ref": None,
    "ttl": 4,
    "raw": b"\x80",
    "received_at": None,
    "from_peer": None,
}


@pytest.mark.parametrize(
    "change, field",
    [
        ({"ttl": MAX_TTL + 1}, "ttl"),
        ({"ttl": -1}, "ttl"),
        ({"ttl": True}, "ttl"),
        ({"ttl": "4"}, "ttl"),
        ({"id": "AB" * 32}, "id"),
        ({"id": "ab" * 31}, "id"),
        ({"id": b"\xab" * 32}, "id"),
        ({"author": None}, "author"),
        ({"kind": ""}, "kind"),
        ({"kind": "k" * 33}, "kind"),
        ({"raw": b""}, "raw"),
        ({"raw": "80"}, "raw"),
        ({"created": -1}, "created"),
        ({"expires": T0}, "expires"),
        ({"expires": 2**63}, "expires"),
        ({"recipient": "xyz"}, "recipient"),
        ({"ref": "ab" * 33}, "ref"),
        ({"from_peer": 5}, "from_peer"),
        ({"received_at": -5}, "received_at"),
    ],
)
@vendor_engines
def test_hostile_rows_change_nothing(log, store, change, field):
    fine = {**GOOD, "id": "ef" * 32}
    with pytest.raises(ValidationError) as info:
        log.add_many([fine, {**GOOD, **change}])
    assert info.value.field == field
    assert rows(store) == []


@vendor_engines
def test_add_many_defaults_received_at_to_now(log, clock):
    clock.now = T0 + 99
    (seq,) = log.add_many([GOOD])
    assert log.get(GOOD["id"]).received_at == T0 + 99 and seq == 1


@vendor_engines
def test_since_pages_live_envelopes_in_order(log, clock):
    short = env(body={"n": "short"}, ttl=10)
    many = [env(body={"n": i}) for i in range(5)]
    for e in [short, *many]:
        log.add(e, ttl=2, recipient=None, ref=None, from_peer=None)
    items, nxt = log.since(0, 3)
    assert [h.raw for h in items] == [short.raw, many[0].raw, many[1].raw] and nxt == items[-1].seq
    clock.now = T0 + 10  # `short` is dead now: never handed out again
    items, nxt = log.since(0, 3)
    assert [h.raw for h in items] == [e.raw for e in many[:3]]
    items, nxt2 = log.since(nxt, 1000)
    assert [h.raw for h in items] == [e.raw for e in many[3:]]
    assert log.since(nxt2, 10) == ([], nxt2)


@vendor_engines
def test_inbox_is_only_what_is_addressed_to_the_recipient(log):
    mine, theirs = offer(n=1), offer(to=VENDOR.public_key, n=2)
    log.add(env(), ttl=4, recipient=None, ref=None, from_peer=None)
    for e in (mine, theirs):
        recipient, ref = addressing(e)
        log.add(e, ttl=4, recipient=recipient, ref=ref, from_peer=None)
    items, nxt = log.since(0, 100, recipient=ALICE.public_key.hex())
    assert [h.raw for h in items] == [mine.raw] and nxt == items[0].seq
    assert log.since(0, 100, recipient="00" * 32) == ([], 0)


@pytest.mark.parametrize(
    "args, kwargs",
    [((-1, 10), {}), ((0, 0), {}), ((0, 1001), {}), (("0", 10), {}), ((0, 10), {"recipient": "x"})],
)
@vendor_engines
def test_since_refuses_bad_arguments(log, args, kwargs):
    with pytest.raises(ValidationError):
        log.since(*args, **kwargs)


@vendor_engines
def test_prune_drops_what_expired(log, store):
    for i, ttl in enumerate((10, 20, DAY)):
        log.add(env(body={"n": i}, ttl=ttl), ttl=1, recipient=None, ref=None, from_peer=None)
    assert log.prune(T0 + 9) == 0
    assert log.prune(T0 + 20) == 2
    assert len(rows(store)) == 1 and log.count_by_kind() == {"intent": 1}


@vendor_engines
def test_an_author_is_held_while_an_envelope_of_theirs_may_be(log, store):
    """``authors`` (admission's "seen before?"): until the latest expiry, rounded up to the hour, so a busy
    author's row changes once an hour, and pruning never forgets an author whose envelope is held."""
    hour, bob = 3_600_000, Identity.from_seed(bytes([10]) * 32)

    def held_until():
        return {bytes(r["author"]): r["held_until"] for r in store.query("SELECT * FROM authors")}

    for i, ttl in enumerate((10, 20)):
        log.add(env(body={"n": i}, ttl=ttl), ttl=1, recipient=None, ref=None, from_peer=None)
    first_hour = -(-(T0 + 20) // hour) * hour
    assert log.authors_held([ALICE.public_key, bob.public_key]) == {ALICE.public_key}
    assert held_until() == {ALICE.public_key: first_hour}
    log.add(env(body={"n": 2}, ttl=3 * hour), ttl=1, recipient=None, ref=None, from_peer=None)
    assert held_until() == {ALICE.public_key: -(-(T0 + 3 * hour) // hour) * hour}
    assert log.prune(first_hour) == 2 and log.authors_held([ALICE.public_key]) == {ALICE.public_key}
    assert log.prune(T0 + 3 * hour) == 1
    assert log.authors_held([ALICE.public_key]) == {ALICE.public_key}  # within the hour of the last
    log.prune(T0 + 4 * hour)
    assert log.authors_held([ALICE.public_key]) == set() and held_until() == {}



def test_the_data_path_migration_keeps_every_envelope_and_never_reuses_a_seq(tmp_path, clock):
    """Migrations 12 and 13 (the data path) rebuild ``envelopes`` without its CHECKs and with ids and keys as
    bytes: rows, indexes and the seq history stay (a seq given out before, even to a pruned envelope, is never
    given again: pull cursors hold). 14 moves whose envelopes are held from an index into ``authors``."""
    from node.schema import MIGRATIONS
    from node.store import Store

    path = tmp_path / "old.db"
    with Store(path, migrations=MIGRATIONS[:10], clock=clock) as old:
        # Rows as a node of that version wrote them: ids and keys as hex text; the second an offer, addressed.
        held = [env(body={"n": 0}), env("offer", {"to": ALICE.public_key, "intent": INTENT_ID}), env(body={"n": 2}, ttl=10)]
        with old.transaction():
            seqs = old.insert_many("envelopes", [
                {"id": e.id.hex(), "kind": e.kind, "author": e.author.hex(), "created_at": e.created, "expires_at": e.expires,
                 "recipient": ALICE.public_key.hex() if e.kind == "offer" else None,
                 "ref": INTENT_ID.hex() if e.kind == "offer" else None, "ttl": 1, "raw": e.raw, "received_at": T0,
                 "from_peer": None} for e in held])  # fmt: skip
            assert old.execute("DELETE FROM envelopes WHERE expires_at <= ?", [T0 + 10]) == 1  # its prune: seq 3 went
        kept = rows(old)
    with Store(path, clock=clock) as new:
        as_bytes = ("id", "author", "recipient", "ref")
        assert new.schema_version == len(MIGRATIONS)
        assert rows(new) == [{k: bytes.fromhex(v) if k in as_bytes and v else v for k, v in r.items()} for r in kept]
        indexes = {r["name"] for r in new.query("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'envelopes'")}
        assert {"envelopes_expires", "envelopes_recipient", "envelopes_ref", "envelopes_kind_created"} <= indexes
        assert "envelopes_author" not in indexes
        # each held author once, with the latest expiry of theirs
        latest = {bytes.fromhex(r["author"]): max(k["expires_at"] for k in kept if k["author"] == r["author"]) for r in kept}
        assert {bytes(r["author"]): r["held_until"] for r in new.query("SELECT * FROM authors")} == latest
        log = GossipLog(new, clock=clock)
        assert log.add(env(body={"n": 9}), ttl=1, recipient=None, ref=None, from_peer=None) == seqs[-1] + 1
        assert log.known([bytes.fromhex(kept[0]["id"])]) == {bytes.fromhex(kept[0]["id"])}
        assert log.get(kept[0]["id"]).raw == kept[0]["raw"]
        assert log.by_ref(INTENT_ID.hex()) == [log.get(kept[1]["id"])] and log.get(kept[1]["id"]).recipient == ALICE.public_key.hex()
        with pytest.raises(ConflictError):  # the id stays unique
            log.add(env(body={"n": 0}), ttl=1, recipient=None, ref=None, from_peer=None)
