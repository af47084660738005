"""Consented access in one process, how grants end and what they carry: revocation and deletion, the
endings (expiry, budget, intent), pushes, the vendor's held data, reading, hostile bodies of each kind,
and no vault value outside the vault (fixtures and vectors in tests/test_grants.py)."""

from __future__ import annotations

import json
import sqlite3

import pytest

from node import envelope
from node.errors import ConflictError, NotFoundError, ValidationError
from node.grants import DELETION_KEYS, GRANT_KEYS, REQUEST_KEYS, REVOKE_KEYS, Grants
from node.intents import Intents
from node.reasons import Reason
from node.receipts import Receipts
from node.store import Store
from node.vault import Vault
from tests.helpers import Clock
from tests.conftest import vendor_engines
from tests.test_grants import (  # noqa: F401 (pair is a fixture)
    CHECKERS,
    DAY,
    MALLORY,
    MINUTE,
    OTHER_VENDOR,
    PERSON,
    T0,
    VAULT,
    VENDOR,
    ask,
    pair,
)


# -- revocation, deletion, endings ---------------------------------------------------------------------


@vendor_engines
def test_revocation_deletion_and_its_confirmation(pair):
    grant_id = pair.give(["email", "phone"])
    pair.vendor.store_fetched(grant_id, pair.access(grant_id).values)
    assert pair.vendor.held(grant_id) == {"email": VAULT["email"], "phone": VAULT["phone"]}
    assert pair.vendor.get(grant_id).uses_spent == 1

    pair.clock.now += MINUTE
    ended, revoke = pair.person.revoke(PERSON, grant_id[:8])
    assert (ended.status, ended.end_reason, ended.ended_at, ended.revoke_id) == (
        "ended", "revoked", pair.clock.now, revoke.id.hex()
    )
    assert revoke.body == {"to": VENDOR.public_key, "grant": bytes.fromhex(grant_id), "reason": "revoked"}
    assert revoke.expires == revoke.created + 30 * DAY
    with pytest.raises(ConflictError):
        pair.person.revoke(PERSON, grant_id)
    assert pair.access(grant_id).reason == Reason.REVOKED

    assert pair.vendor.revoke_received(OTHER_VENDOR, revoke) == (Reason.NOT_FOR_ROLE, None)
    forged = envelope.create(MALLORY, "revoke", revoke.body, created=pair.clock.now, ttl_ms=DAY)
    assert pair.vendor.revoke_received(VENDOR, forged) == (Reason.WRONG_AUTHOR, None)
    unknown = envelope.create(PERSON, "revoke", {**revoke.body, "grant": bytes(32)}, created=pair.clock.now, ttl_ms=DAY)
    assert pair.vendor.revoke_received(VENDOR, unknown) == (Reason.NO_GRANT, None)
    assert pair.vendor.held(grant_id) != {}
    reason, deletion = pair.vendor.revoke_received(VENDOR, revoke)
    assert reason == Reason.OK and pair.vendor.held(grant_id) == {}
    theirs = pair.vendor.get(grant_id)
    assert (theirs.status, theirs.end_reason, theirs.revoke_id, theirs.deletion_id) == (
        "ended", "revoked", revoke.id.hex(), deletion.id.hex()
    )
    assert deletion.author == VENDOR.public_key and deletion.body == {
        "to": PERSON.public_key, "grant": bytes.fromhex(grant_id), "revoke": revoke.id, "fields": ["email", "phone"]
    }
    assert pair.vendor.revoke_received(VENDOR, revoke) == (Reason.DUPLICATE, None)
    # Data fetched after the grant ended is not kept.
    pair.vendor.store_fetched(grant_id, {"email": "late"})
    assert pair.vendor.held(grant_id) == {}

    by_other = envelope.create(OTHER_VENDOR, "deletion", deletion.body, created=pair.clock.now, ttl_ms=DAY)
    assert pair.person.deletion_received(by_other) == Reason.NOT_GRANTEE
    def stated(**changes):
        return envelope.create(VENDOR, "deletion", {**deletion.body, **changes}, created=pair.clock.now, ttl_ms=DAY)

    assert pair.person.deletion_received(stated(revoke=bytes(32))) == Reason.INVALID_BODY
    assert pair.person.deletion_received(stated(fields=["name"])) == Reason.INVALID_BODY
    assert pair.person.deletion_received(stated(grant=bytes(32))) == Reason.NO_GRANT
    assert pair.person.deletion_received(deletion, me=OTHER_VENDOR.public_key) == Reason.NOT_FOR_ROLE
    assert pair.person.get(grant_id).deletion_confirmed_at is None
    pair.clock.now += 1
    assert pair.person.deletion_received(deletion, me=PERSON.public_key) == Reason.OK
    mine = pair.person.get(grant_id)
    assert (mine.deletion_id, mine.deletion_confirmed_at) == (deletion.id.hex(), pair.clock.now)
    assert pair.person.deletion_received(deletion) == Reason.DUPLICATE


@vendor_engines
def test_a_vendor_revocation_of_a_grant_it_received_is_refused(pair):
    grant_id = pair.give()
    with pytest.raises(ValidationError):
        pair.vendor.revoke(VENDOR, grant_id)
    with pytest.raises(ValidationError):
        pair.person.revoke(PERSON, grant_id, reason="bored")


@vendor_engines
def test_end_due_ends_expired_spent_and_intent_bound_grants(pair):
    intent = Intents(pair.ps, clock=pair.clock).cast(PERSON, "?flight SFO->JFK", ttl_ms=2 * DAY)
    live = pair.give(["email"])
    short = pair.give(["phone"], duration_ms=MINUTE)
    spent = pair.give(["email"], uses=1)
    bound = pair.give(["shipping_address"], for_ref=intent.id)
    assert pair.access(spent).ok
    assert pair.person.end_due(PERSON, pair.clock.now) != []  # the spent one, right away
    assert pair.person.get(spent).end_reason == "budget_spent"
    pair.clock.now += MINUTE
    Intents(pair.ps, clock=pair.clock).withdraw(PERSON, intent.id)
    revokes = pair.person.end_due(PERSON, pair.clock.now)
    assert sorted((e.body["grant"].hex(), e.body["reason"]) for e in revokes) == sorted(
        [(short, "expired"), (bound, "intent_ended")]
    )
    assert all(e.kind == "revoke" and e.created == pair.clock.now for e in revokes)
    assert [g.id for g in pair.person.list(direction="given")] == [live]
    assert pair.person.end_due(PERSON, pair.clock.now) == []
    assert pair.access(bound).reason == Reason.REVOKED and pair.access(spent).reason == Reason.BUDGET_SPENT
    assert pair.access(short).reason == Reason.EXPIRED
    # An intent that expires (not withdrawn) ends its grant the same way.
    later = Intents(pair.ps, clock=pair.clock).cast(PERSON, "?taxi", ttl_ms=DAY)
    ride = pair.give(["phone"], for_ref=later.id, duration_ms=30 * DAY)
    [revoke] = pair.person.end_due(PERSON, pair.clock.now + DAY)
    assert revoke.body["grant"].hex() == ride and revoke.body["reason"] == "expired"  # ends with the intent


@vendor_engines
def test_the_vendor_deletes_data_of_grants_past_their_expiry(pair):
    grant_id = pair.give(["email"], duration_ms=MINUTE)
    other = pair.give(["phone"])
    pair.vendor.store_fetched(grant_id, {"email": VAULT["email"]})
    pair.vendor.store_fetched(other, {"phone": VAULT["phone"]})
    assert pair.vendor.end_expired_received(pair.clock.now) == []
    assert pair.vendor.end_expired_received(pair.clock.now + MINUTE) == [grant_id]
    assert pair.vendor.held(grant_id) == {} and pair.vendor.held(other) == {"phone": VAULT["phone"]}
    assert pair.vendor.get(grant_id).end_reason == "expired"
    # The person's revocation for the expiry still gets its deletion statement, naming what was deleted.
    [revoke] = pair.person.end_due(PERSON, pair.clock.now + MINUTE)
    reason, deletion = pair.vendor.revoke_received(VENDOR, revoke)
    assert reason == Reason.OK and deletion.body["fields"] == ["email"]


@vendor_engines
def test_store_fetched_refuses_what_was_not_granted(pair):
    grant_id = pair.give(["email"])
    for values in ({"phone": "x"}, {"email": 1}, ["email"]):
        with pytest.raises(ValidationError):
            pair.vendor.store_fetched(grant_id, values)
    mine = pair.give(["phone"], grantee=OTHER_VENDOR)
    with pytest.raises(ValidationError):
        pair.person.store_fetched(mine, {"phone": "x"})
    assert pair.vs.count("held_data") == 0


# -- push ----------------------------------------------------------------------------------------------


@vendor_engines
def test_pushes_follow_the_vault_and_the_vendor_keeps_the_latest(pair):
    grant_id = pair.give(["email", "shipping_address"], push=True)
    pair.give(["phone"])  # not a push grant
    [(grantee, gid, version, values)] = pair.person.pushes_due(pair.vault)
    assert (grantee, gid, version) == (VENDOR.public_key.hex(), grant_id, 1)
    assert values == {"email": VAULT["email"], "shipping_address": VAULT["shipping_address"]}
    assert pair.person.pushes_due(pair.vault) == []
    person_hex = PERSON.public_key.hex()
    assert pair.vendor.store_pushed(person_hex, grant_id, 1, values) == Reason.OK
    assert pair.vendor.store_pushed(person_hex, grant_id, 1, values) == Reason.DUPLICATE

    pair.clock.now += 1
    pair.vault.set("phone", "not granted")
    assert pair.person.pushes_due(pair.vault) == []
    pair.vault.set("email", "new@example.org")
    [(_, _, version, values)] = pair.person.pushes_due(pair.vault)
    assert version == 2 and values["email"] == "new@example.org"
    pair.vault.delete("shipping_address")
    [(_, _, version, values)] = pair.person.pushes_due(pair.vault)
    assert version == 3 and values == {"email": "new@example.org"}
    assert pair.vendor.store_pushed(person_hex, grant_id, 3, values) == Reason.OK
    assert pair.vendor.held(grant_id) == {"email": "new@example.org"}  # replaced: the deleted field is gone
    assert pair.vendor.store_pushed(person_hex, grant_id, 2, {"email": "older"}) == Reason.DUPLICATE

    # Nothing of this is kept on the person's side: only names and times.
    state = pair.ps.query_one("SELECT pushed_state FROM grants WHERE id = ?", [grant_id])["pushed_state"]
    assert "new@example.org" not in state and "email" in state


@vendor_engines
def test_pushed_data_is_refused_when_it_should_be(pair):
    grant_id = pair.give(["email"], push=True, duration_ms=MINUTE)
    person_hex = PERSON.public_key.hex()
    assert pair.vendor.store_pushed(MALLORY.public_key.hex(), grant_id, 1, {"email": "x"}) == Reason.NO_GRANT
    assert pair.vendor.store_pushed(person_hex, "zz", 1, {"email": "x"}) == Reason.NO_GRANT
    assert pair.vendor.store_pushed(person_hex, grant_id, 1, {"phone": "x"}) == Reason.INVALID_BODY
    assert pair.vendor.store_pushed(person_hex, grant_id, 1, {"email": b"x"}) == Reason.INVALID_BODY
    assert pair.vendor.store_pushed(person_hex, grant_id, 0, {"email": "x"}) == Reason.INVALID_BODY
    assert pair.vendor.store_pushed(person_hex, grant_id, True, {"email": "x"}) == Reason.INVALID_BODY
    assert pair.vs.count("held_data") == 0
    pair.clock.now += MINUTE
    assert pair.vendor.store_pushed(person_hex, grant_id, 1, {"email": "x"}) == Reason.EXPIRED
    assert pair.person.pushes_due(pair.vault) == []  # an expired grant pushes nothing
    pair.clock.now -= MINUTE
    [revoke] = pair.person.end_due(PERSON, pair.clock.now + MINUTE)
    pair.vendor.revoke_received(VENDOR, revoke)
    assert pair.vendor.store_pushed(person_hex, grant_id, 1, {"email": "x"}) == Reason.REVOKED


@vendor_engines
def test_a_locked_vault_postpones_pushes(pair, tmp_path):
    key = bytes(range(32))
    with Store(tmp_path / "sealed.db") as store:
        Vault(store, key).set("email", "sealed value")
        grants = Grants(store, clock=Clock(T0))
        grant, _ = grants.create(PERSON, VENDOR.public_key, fields=["email"], purpose="p", duration_ms=DAY, push=True)
        assert grants.pushes_due(Vault(store, None)) == []
        due = grants.pushes_due(Vault(store, key))
        assert due == [(VENDOR.public_key.hex(), grant.id, 1, {"email": "sealed value"})]


# -- reading -------------------------------------------------------------------------------------------


@vendor_engines
def test_lists_refs_and_json(pair):
    first = pair.give(["email"])
    pair.clock.now += 1
    second = pair.give(["phone"])
    pair.person.revoke(PERSON, first)
    assert [g.id for g in pair.person.list(direction="given", status="all")] == [second, first]
    assert [g.id for g in pair.person.list(status="ended")] == [first]
    assert [g.id for g in pair.vendor.list(direction="received")] == [second, first]
    with pytest.raises(ValidationError):
        pair.person.list(status="open")
    with pytest.raises(ValidationError):
        pair.person.list(direction="sent")
    with pytest.raises(ValidationError):
        pair.person.get("abc")
    with pytest.raises(NotFoundError):
        pair.person.get("f" * 64)
    doc = json.loads(json.dumps(pair.person.get(first).to_json()))
    assert doc["id"] == first and doc["status"] == "ended" and doc["grantee_node_id"].startswith("vrm1")
    asked, _ = ask(pair)
    assert json.loads(json.dumps(asked.to_json()))["fields"] == ["email", "shipping_address"]
    assert pair.vendor.held("00" * 32) == {}


# -- hostile bodies ------------------------------------------------------------------------------------


def _bodies() -> dict[str, dict]:
    return {
        "request": {"to": PERSON.public_key, "fields": ["email"], "purpose": "p", "duration": DAY, "for": None},
        "grant": {"to": VENDOR.public_key, "fields": ["email"], "purpose": "p", "uses": None, "terms": [],
                  "for": None, "request": None, "push": False},
        "revoke": {"to": VENDOR.public_key, "grant": bytes(32), "reason": "revoked"},
        "deletion": {"to": PERSON.public_key, "grant": bytes(32), "revoke": None, "fields": []},
    }


HOSTILE = [
    ("request", {"extra": 1}, "body"),
    ("request", {"to": bytes(31)}, "to"),
    ("request", {"fields": []}, "fields"),
    ("request", {"fields": ["email", "email"]}, "fields"),
    ("request", {"fields": ["phone", "email"]}, "fields"),
    ("request", {"fields": ["e mail"]}, "fields"),
    ("request", {"fields": [b"email"]}, "fields"),
    ("request", {"purpose": ""}, "purpose"),
    ("request", {"purpose": "a\nb"}, "purpose"),
    ("request", {"purpose": 5}, "purpose"),
    ("request", {"duration": 59_999}, "duration"),
    ("request", {"duration": 366 * DAY}, "duration"),
    ("request", {"duration": True}, "duration"),
    ("request", {"for": "id"}, "for"),
    ("grant", {"uses": 0}, "uses"),
    ("grant", {"uses": -1}, "uses"),
    ("grant", {"uses": False}, "uses"),
    ("grant", {"terms": ["no-resale", "no-resale"]}, "terms"),
    ("grant", {"terms": ["No-Resale"]}, "terms"),
    ("grant", {"terms": "no-resale"}, "terms"),
    ("grant", {"terms": [1]}, "terms"),
    ("grant", {"request": bytes(33)}, "request"),
    ("grant", {"push": 1}, "push"),
    ("grant", {"fields": "email"}, "fields"),
    ("revoke", {"reason": "because"}, "reason"),
    ("revoke", {"grant": None}, "grant"),
    ("revoke", {"reason": ["revoked"]}, "reason"),
    ("deletion", {"fields": ["b", "a"]}, "fields"),
    ("deletion", {"revoke": b"x"}, "revoke"),
    ("deletion", {"to": None}, "to"),
]


@pytest.mark.parametrize("kind,change,field", HOSTILE, ids=[f"{k}-{f}-{i}" for i, (k, _, f) in enumerate(HOSTILE)])
@vendor_engines
def test_hostile_bodies_are_refused_naming_the_field_and_change_nothing(pair, kind, change, field):
    body = {**_bodies()[kind], **change}
    with pytest.raises(ValidationError) as caught:
        CHECKERS[kind](body)
    assert caught.value.field == field
    grant_id = pair.give(["email"])
    _, revoke = pair.person.revoke(PERSON, grant_id)
    before = pair.counts()
    author = VENDOR if kind in ("request", "deletion") else PERSON
    env = envelope.create(author, kind, body, created=pair.clock.now, ttl_ms=DAY)
    if kind == "request":
        assert pair.person.request_received(env) == Reason.INVALID_BODY
    elif kind == "grant":
        assert pair.vendor.grant_received(env) == Reason.INVALID_BODY
    elif kind == "revoke":
        assert pair.vendor.revoke_received(VENDOR, env) == (Reason.INVALID_BODY, None)
    else:
        assert pair.person.deletion_received(env) == Reason.INVALID_BODY
    assert pair.counts() == before


def test_bodies_that_are_not_maps_are_refused():
    for kind, check in CHECKERS.items():
        for body in (None, [], "x", {}, {"to": VENDOR.public_key}):
            with pytest.raises(ValidationError) as caught:
                check(body)
            assert caught.value.field == "body", kind
    assert sorted(_bodies()["request"]) == list(REQUEST_KEYS)
    assert sorted(_bodies()["grant"]) == list(GRANT_KEYS)
    assert sorted(_bodies()["revoke"]) == list(REVOKE_KEYS)
    assert sorted(_bodies()["deletion"]) == list(DELETION_KEYS)


# -- no secrets ----------------------------------------------------------------------------------------


@vendor_engines
def test_no_vault_value_is_ever_stored_outside_the_vault_on_the_persons_side(pair):
    """Receipts (rows and envelopes), grants, requests: the person's node records who saw which fields,
    never the values. The vendor keeps what it got, and only under a live grant."""
    asked, _ = ask(pair, fields=["email", "phone", "shipping_address"])
    granted, env = pair.person.approve(PERSON, asked.id, uses=5, push=True)
    pair.vendor.grant_received(env)
    pair.access(granted.id)
    pair.access(granted.id, ["phone"], by=OTHER_VENDOR)
    pair.access(granted.id, ["name"])
    for _, gid, version, values in pair.person.pushes_due(pair.vault):
        pair.vendor.store_pushed(PERSON.public_key.hex(), gid, version, values)
    pair.vault.set("email", VAULT["email"] + "-v2")
    pair.person.pushes_due(pair.vault)
    pair.person.end_due(PERSON, pair.clock.now)
    _, revoke = pair.person.revoke(PERSON, granted.id)
    _, deletion = pair.vendor.revoke_received(VENDOR, revoke)
    pair.person.deletion_received(deletion)
    for outcome in Receipts(pair.ps).list():
        Receipts(pair.vs).copy_received(envelope.decode(outcome.raw))
    exported = json.dumps(Receipts(pair.ps).export()).encode()

    conn = sqlite3.connect(pair.ps.path)
    dumped = b"\n".join(
        line.encode() for line in conn.iterdump() if not line.startswith('INSERT INTO "vault"')
    )
    conn.close()
    vendor_receipts = b"".join(
        bytes(v) if isinstance(v, bytes) else str(v).encode()
        for row in pair.vs.query("SELECT * FROM receipt_copies") for v in row.values()
    )
    assert pair.vs.count("held_data") == 0  # deleted on revocation
    for value in [*VAULT.values(), VAULT["email"] + "-v2"]:
        for secret in (value.encode(), value.encode().hex().encode()):
            assert secret not in dumped
            assert secret not in exported
            assert secret not in vendor_receipts
