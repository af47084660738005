"""The receipt chain (node/receipts.py): appended in order and linked, verified against the node's
key, and every kind of tampering found: each column edited, the envelope altered, an entry removed,
entries moved or reordered, a receipt forged with another key, a broken link. Plus the vendor's copies,
the export, and hostile receipt bodies.
"""

from __future__ import annotations

import json

import pytest

from node import envelope
from node.backends import NATIVE, REFERENCE
from node.errors import ValidationError
from node.identity import Identity
from node.reasons import Reason
from node.receipts import FIRST_PREV, NO_GRANT_ID, RECEIPT_KEYS, Receipts, check_receipt_body
from node.store import Store
from tests.conftest import vendor_engines

T0 = 1_700_000_000_000
PERSON = Identity.from_seed(bytes([1]) * 32)
VENDOR = Identity.from_seed(bytes([3]) * 32)
OTHER = Identity.from_seed(bytes([4]) * 32)
MALLORY = Identity.from_seed(bytes([10]) * 32)
GRANT = bytes([0x22]) * 32


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        self.now += 1  # every receipt at its own millisecond
        return self.now


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "person.db") as s:
        yield s


def chain(store: Store, n: int = 5, *, backend=NATIVE) -> tuple[Receipts, list[envelope.Envelope]]:
    receipts = Receipts(store, clock=Clock(T0), backend=backend)
    made = []
    outcomes = ["ok", "pushed", "out_of_scope", "budget_spent", "no_grant", "revoked", "not_grantee", "expired"]
    for i in range(n):
        outcome = outcomes[i % len(outcomes)]
        made.append(
            receipts.append(
                PERSON,
                to=(VENDOR if i % 2 == 0 else OTHER).public_key,
                grant=NO_GRANT_ID if outcome == "no_grant" else GRANT,
                fields=["shipping_address", "email"][: 1 + i % 2],
                purpose="" if outcome == "no_grant" else "ship order 123",
                outcome=outcome,
            )
        )
    return receipts, made


def test_receipts_are_numbered_linked_signed_and_listed(store):
    receipts, made = chain(store, 4)
    listed = receipts.list()
    assert [r.seq for r in listed] == [1, 2, 3, 4]
    assert listed[0].prev == FIRST_PREV.hex()
    assert [r.prev for r in listed[1:]] == [r.id for r in listed[:-1]]
    assert [r.id for r in listed] == [e.id.hex() for e in made]
    assert all(r.person == PERSON.public_key.hex() and not r.copy for r in listed)
    first = made[0]
    assert first.kind == "receipt" and first.author == PERSON.public_key
    assert first.body == {
        "to": VENDOR.public_key,
        "seq": 1,
        "prev": FIRST_PREV,
        "grant": GRANT,
        "fields": ["shipping_address"],
        "purpose": "ship order 123",
        "at": T0 + 1,
        "outcome": "ok",
    }
    assert first.created == T0 + 1 and first.expires == T0 + 1 + 10 * 365 * 86_400_000
    assert listed[1].fields == ("email", "shipping_address")  # sorted
    assert [r.seq for r in receipts.list(vendor=OTHER.public_key.hex())] == [2, 4]
    report = receipts.verify(PERSON.public_key)
    assert report.ok and report.count == 4 and report.problem is None


@pytest.mark.parametrize("backend", [NATIVE, REFERENCE], ids=["native", "reference"])
def test_an_empty_chain_and_one_of_each_backend_verify(store, backend):
    assert Receipts(store, backend=backend).verify(PERSON.public_key).ok
    receipts, _ = chain(store, 3, backend=backend)
    assert receipts.verify(PERSON.public_key).ok


def test_append_joins_the_callers_transaction(store):
    receipts, _ = chain(store, 2)
    with pytest.raises(RuntimeError):
        with store.transaction():
            receipts.append(PERSON, to=VENDOR.public_key, grant=GRANT, fields=["email"], purpose="p", outcome="ok")
            raise RuntimeError("the access failed after its receipt")
    assert [r.seq for r in receipts.list()] == [1, 2]
    receipts.append(PERSON, to=VENDOR.public_key, grant=GRANT, fields=["email"], purpose="p", outcome="ok")
    assert receipts.verify(PERSON.public_key).ok


def test_append_refuses_what_is_not_a_receipt(store):
    receipts = Receipts(store, clock=Clock(T0))
    good = {"to": VENDOR.public_key, "grant": GRANT, "fields": ["email"], "purpose": "p", "outcome": "ok"}
    for change, field in [
        ({"outcome": "maybe"}, "outcome"),
        ({"fields": ["Bad Name"]}, "fields"),
        ({"grant": b"short"}, "grant"),
        ({"to": "not bytes"}, "to"),
        ({"purpose": "x" * 501}, "purpose"),
        ({"purpose": "line\x00break"}, "purpose"),
    ]:
        with pytest.raises(ValidationError) as caught:
            receipts.append(PERSON, **{**good, **change})
        assert caught.value.field == field
    assert store.count("receipts") == 0


# -- tampering -----------------------------------------------------------------------------------------

EDITS = {
    "id": "'" + "ab" * 32 + "'",
    "prev": "'" + "cd" * 32 + "'",
    "grant_id": "'" + "00" * 32 + "'",
    "vendor": "'" + MALLORY.public_key.hex() + "'",
    "fields": """'["email","phone"]'""",
    "purpose": "'marketing'",
    "at": "at + 1",
    "outcome": "'ok'",
}


@pytest.mark.parametrize("column", sorted(EDITS))
def test_an_edited_column_is_found(store, column):
    receipts, _ = chain(store, 5)
    target = 3  # an out_of_scope refusal: setting its outcome to 'ok' is an edit
    with store.transaction():
        assert store.execute(f"UPDATE receipts SET {column} = {EDITS[column]} WHERE seq = ?", [target]) == 1
    report = receipts.verify(PERSON.public_key)
    assert not report.ok and (report.seq, report.what) == (target, "edited")
    assert column in report.problem


def test_an_edited_number_is_found(store):
    receipts, _ = chain(store, 5)
    with store.transaction():
        store.execute("UPDATE receipts SET seq = 99 WHERE seq = 3")
    report = receipts.verify(PERSON.public_key)
    assert not report.ok and report.seq == 4 and report.what == "gap"
    with store.transaction():
        store.execute("UPDATE receipts SET seq = 3 WHERE seq = 99")
        store.execute("UPDATE receipts SET seq = 98 WHERE seq = 5")  # the last one renumbered
    report = receipts.verify(PERSON.public_key)
    assert not report.ok and (report.seq, report.what) == (98, "reordered")


@pytest.mark.parametrize("where", ["signature", "body", "kind", "decode"])
def test_an_altered_envelope_is_found(store, where):
    receipts, made = chain(store, 4)
    raw = bytearray(made[1].raw)
    if where == "signature":
        raw[raw.index(made[1].sig)] ^= 1
    elif where == "body":
        at = raw.index(b"ship order 123")
        raw[at : at + 4] = b"SHIP"
    elif where == "kind":
        at = raw.index(b"receipt")
        raw[at : at + 7] = b"request"
    else:
        raw = raw[:-3]
    with store.transaction():
        store.execute("UPDATE receipts SET raw = ? WHERE seq = 2", [bytes(raw)])
    report = receipts.verify(PERSON.public_key)
    assert not report.ok and report.seq == 2
    assert report.what == ("malformed" if where == "decode" else "bad_signature")


def test_a_removed_entry_is_found(store):
    receipts, _ = chain(store, 5)
    with store.transaction():
        store.execute("DELETE FROM receipts WHERE seq = 2")
    report = receipts.verify(PERSON.public_key)
    assert not report.ok and (report.seq, report.what) == (3, "gap")
    # Closing the gap by renumbering is found too: the number is signed.
    with store.transaction():
        for seq in (3, 4, 5):
            store.execute("UPDATE receipts SET seq = ? WHERE seq = ?", [seq - 1, seq])
    report = receipts.verify(PERSON.public_key)
    assert not report.ok and (report.seq, report.what) == (2, "reordered")


def test_a_removed_first_entry_is_found(store):
    receipts, _ = chain(store, 3)
    with store.transaction():
        store.execute("DELETE FROM receipts WHERE seq = 1")
    assert receipts.verify(PERSON.public_key).what == "gap"


def test_reordered_entries_are_found(store):
    receipts, _ = chain(store, 5)
    rows = {r["seq"]: r for r in store.query("SELECT * FROM receipts WHERE seq IN (2, 4)")}
    with store.transaction():  # rows 2 and 4 trade places: each keeps the other's contents
        store.execute("DELETE FROM receipts WHERE seq IN (2, 4)")
        for seq, other in ((2, 4), (4, 2)):
            store.insert("receipts", {**rows[other], "seq": seq})
    report = receipts.verify(PERSON.public_key)
    assert not report.ok and (report.seq, report.what) == (2, "reordered")


def test_an_older_receipt_moved_to_the_end_is_found(store):
    receipts, _ = chain(store, 3)
    first = store.query_one("SELECT * FROM receipts WHERE seq = 1")
    with store.transaction():
        store.execute("DELETE FROM receipts WHERE seq = 1")
        store.insert("receipts", {**first, "seq": 4})
    report = receipts.verify(PERSON.public_key)
    assert not report.ok and (report.seq, report.what) == (2, "gap")
    with store.transaction():  # put back where it was, the chain verifies again
        store.execute("UPDATE receipts SET seq = 1 WHERE seq = 4")
    assert receipts.verify(PERSON.public_key).ok


def test_a_forged_receipt_is_found(store):
    receipts, _ = chain(store, 3)
    last = store.query_one("SELECT * FROM receipts WHERE seq = 3")
    body = {
        "to": VENDOR.public_key,
        "seq": 4,
        "prev": bytes.fromhex(last["id"]),
        "grant": GRANT,
        "fields": ["email"],
        "purpose": "ship order 123",
        "at": T0 + 100,
        "outcome": "ok",
    }
    forged = envelope.create(MALLORY, "receipt", body, created=T0 + 100, ttl_ms=1000)
    with store.transaction():
        store.insert(
            "receipts",
            {"seq": 4, "id": forged.id.hex(), "prev": last["id"], "grant_id": GRANT.hex(),
             "vendor": VENDOR.public_key.hex(), "fields": json.dumps(["email"]), "purpose": "ship order 123",
             "at": T0 + 100, "outcome": "ok", "raw": forged.raw},
        )
    report = receipts.verify(PERSON.public_key)
    assert not report.ok and (report.seq, report.what) == (4, "forged")
    # Verified against another key, the whole chain is someone else's.
    assert Receipts(store).verify(MALLORY.public_key).what == "forged"


def test_a_broken_link_is_found(store):
    """A receipt signed by the node itself but not linked to the one before (a fork)."""
    receipts, made = chain(store, 3)
    body = {**made[2].body, "prev": made[0].id}
    resigned = envelope.create(PERSON, "receipt", body, created=made[2].created, expires=made[2].expires)
    with store.transaction():
        store.execute(
            "UPDATE receipts SET id = ?, prev = ?, raw = ? WHERE seq = 3",
            [resigned.id.hex(), made[0].id.hex(), resigned.raw],
        )
    report = receipts.verify(PERSON.public_key)
    assert not report.ok and (report.seq, report.what) == (3, "prev_mismatch")


def test_a_stored_envelope_of_another_kind_is_found(store):
    receipts, made = chain(store, 2)
    # a grant where a receipt should be (living a day: a grant cannot live a receipt's ten years)
    other = envelope.create(PERSON, "grant", made[1].body, created=made[1].created, expires=made[1].created + 86_400_000)
    with store.transaction():
        store.execute("UPDATE receipts SET raw = ?, id = ? WHERE seq = 2", [other.raw, other.id.hex()])
    assert receipts.verify(PERSON.public_key).what == "malformed"


# -- copies, export ------------------------------------------------------------------------------------


@vendor_engines
def test_a_vendor_keeps_copies_of_its_receipts(open_vendor_store, store):
    _, made = chain(store, 3)
    with open_vendor_store() as vendor_store:
        copies = Receipts(vendor_store, clock=Clock(T0 + 10))
        assert copies.copy_received(made[0], me=VENDOR.public_key) == Reason.OK
        assert copies.copy_received(made[0], me=VENDOR.public_key) == Reason.DUPLICATE
        assert copies.copy_received(made[1], me=VENDOR.public_key) == Reason.NOT_FOR_ROLE  # it is OTHER's
        assert copies.copy_received(made[2]) == Reason.OK
        listed = copies.list()
        assert [(c.seq, c.id, c.copy, c.person) for c in listed] == [
            (1, made[0].id.hex(), True, PERSON.public_key.hex()),
            (3, made[2].id.hex(), True, PERSON.public_key.hex()),
        ]
        assert copies.verify(VENDOR.public_key).ok and copies.verify(VENDOR.public_key).count == 0
        bad = envelope.create(PERSON, "receipt", {**made[0].body, "outcome": "seen"}, created=T0, ttl_ms=1000)
        assert copies.copy_received(bad) == Reason.INVALID_BODY
        self_addressed = envelope.create(VENDOR, "receipt", made[0].body, created=T0, ttl_ms=1000)
        assert copies.copy_received(self_addressed) == Reason.INVALID_BODY
        assert vendor_store.count("receipt_copies") == 2
        with pytest.raises(ValidationError):
            copies.copy_received(envelope.create(PERSON, "grant", {}, created=T0, ttl_ms=1000))


def test_export_is_open_json_with_each_signed_envelope(store):
    receipts, made = chain(store, 3)
    document = json.loads(json.dumps(receipts.export()))
    assert document["format"] == "vrm-receipts" and document["version"] == 1
    assert document["person"] == PERSON.public_key.hex() and document["count"] == 3
    assert document["head"] == made[-1].id.hex()
    for entry, env in zip(document["receipts"], made):
        decoded = envelope.decode(bytes.fromhex(entry["envelope"]), REFERENCE)
        assert decoded.id == env.id and entry["id"] == env.id.hex()
        assert entry["seq"] == decoded.body["seq"] and entry["prev"] == decoded.body["prev"].hex()
        assert entry["fields"] == decoded.body["fields"] and entry["outcome"] == decoded.body["outcome"]
        assert REFERENCE.Verifier().verify_one(decoded.raw, decoded.created + 1)[0] == Reason.OK


# -- bodies --------------------------------------------------------------------------------------------


def _good() -> dict:
    return {
        "to": VENDOR.public_key,
        "seq": 2,
        "prev": bytes([7]) * 32,
        "grant": GRANT,
        "fields": ["email", "shipping_address"],
        "purpose": "ship order 123",
        "at": T0,
        "outcome": "ok",
    }


HOSTILE = [
    ("body", None),
    ("body", []),
    ("body", {k: v for k, v in _good().items() if k != "at"}),
    ("body", {**_good(), "extra": 1}),
    ("to", {**_good(), "to": bytes(31)}),
    ("prev", {**_good(), "prev": "00" * 32}),
    ("grant", {**_good(), "grant": None}),
    ("seq", {**_good(), "seq": 0}),
    ("seq", {**_good(), "seq": True}),
    ("seq", {**_good(), "seq": 2**63}),
    ("at", {**_good(), "at": -1}),
    ("prev", {**_good(), "seq": 1}),
    ("fields", {**_good(), "fields": "email"}),
    ("fields", {**_good(), "fields": ["shipping_address", "email"]}),
    ("fields", {**_good(), "fields": ["email", "email"]}),
    ("fields", {**_good(), "fields": ["Email"]}),
    ("fields", {**_good(), "fields": [f"f{i:02}" for i in range(33)]}),
    ("purpose", {**_good(), "purpose": None}),
    ("purpose", {**_good(), "purpose": "   "}),
    ("purpose", {**_good(), "purpose": "a\x1bb"}),
    ("outcome", {**_good(), "outcome": "OK"}),
    ("outcome", {**_good(), "outcome": 0}),
]


@pytest.mark.parametrize("field,body", HOSTILE, ids=[f"{f}-{i}" for i, (f, _) in enumerate(HOSTILE)])
def test_hostile_receipt_bodies_are_refused_naming_the_field(field, body):
    with pytest.raises(ValidationError) as caught:
        check_receipt_body(body)
    assert caught.value.field == field


def test_the_receipt_body_keys():
    assert sorted(_good()) == list(RECEIPT_KEYS)
    assert check_receipt_body(_good()) == _good()
    assert check_receipt_body({**_good(), "fields": [], "purpose": "", "outcome": "no_grant"})
