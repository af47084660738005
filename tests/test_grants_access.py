"""Consented access in one process, the asking and the answering: requests, narrower approvals,
grants and what each side refuses, every refusal of the grant check, and the access transaction with
its receipt (fixtures and vectors in tests/test_grants.py)."""

from __future__ import annotations


import pytest

from node import envelope
from node.blocks import Blocks
from node.errors import ConflictError, NotFoundError, PassphraseError, ValidationError
from node.grants import Grants
from node.intents import Intents
from node.reasons import Reason
from node.receipts import Receipts
from node.refusals import StrangerRefusals
from node.store import Store
from node.vault import Vault
from tests.helpers import Clock
from tests.conftest import vendor_engines
from tests.test_grants import (  # noqa: F401 (pair is a fixture)
    DAY,
    MALLORY,
    MINUTE,
    OTHER_VENDOR,
    PERSON,
    PURPOSE,
    T0,
    VAULT,
    VENDOR,
    ask,
    pair,
)


# -- requests and approvals ----------------------------------------------------------------------------


@vendor_engines
def test_a_request_is_approved_narrower_and_the_grant_reaches_the_vendor(pair):
    asked, env = ask(pair, fields=["shipping_address", "email", "phone", "email"])
    assert asked.fields == ("email", "phone", "shipping_address") and asked.direction == "sent"
    assert env.body["duration"] == 30 * DAY and env.expires == env.created + 7 * DAY
    [pending] = pair.person.pending()
    assert (pending.id, pending.direction, pending.vendor) == (asked.id, "received", VENDOR.public_key.hex())

    pair.clock.now += MINUTE
    grant, grant_env = pair.person.approve(PERSON, asked.id[:10], fields=["email"], duration_ms=DAY, uses=2)
    assert grant.fields == ("email",) and grant.uses_allowed == 2 and grant.request_id == asked.id
    assert grant_env.expires == pair.clock.now + DAY and grant_env.body["purpose"] == PURPOSE
    assert pair.person.pending() == []
    assert pair.person.request_by_ref(asked.id).status == "approved"
    assert pair.person.request_by_ref(asked.id).grant_id == grant.id

    assert pair.vendor.grant_received(grant_env, me=VENDOR.public_key) == Reason.OK
    theirs = pair.vendor.get(grant.id)
    assert (theirs.direction, theirs.person) == ("received", PERSON.public_key.hex())
    assert theirs.grantee == VENDOR.public_key.hex()
    assert pair.vendor.requests(direction="sent")[0].status == "approved"
    assert pair.vendor.grant_received(grant_env, me=VENDOR.public_key) == Reason.DUPLICATE


@vendor_engines
def test_an_approval_cannot_widen_the_request(pair):
    asked, _ = ask(pair, fields=["email"], duration_ms=DAY)
    before = pair.counts()
    for options, field in [
        ({"fields": ["email", "phone"]}, "fields"),
        ({"duration_ms": DAY + 1}, "duration_ms"),
        ({"duration_ms": 1000}, "duration_ms"),
        ({"uses": 0}, "uses"),
        ({"push": "yes"}, "push"),
        ({"fields": ["Not A Name"]}, "fields"),
    ]:
        with pytest.raises(ValidationError) as caught:
            pair.person.approve(PERSON, asked.id, **options)
        assert caught.value.field == field
    assert pair.counts() == before and pair.person.pending()[0].id == asked.id


@vendor_engines
def test_deny_and_what_cannot_be_answered_twice(pair):
    asked, _ = ask(pair)
    assert pair.person.deny(asked.id).status == "denied"
    assert pair.person.pending() == []
    with pytest.raises(ConflictError):
        pair.person.approve(PERSON, asked.id)
    with pytest.raises(ConflictError):
        pair.person.deny(asked.id)
    with pytest.raises(NotFoundError):
        pair.person.approve(PERSON, "abcdef12")
    other, _ = ask(pair, purpose="another")
    pair.clock.now += 7 * DAY
    assert pair.person.requests(direction="received", status="expired")[0].id == other.id
    with pytest.raises(ConflictError):
        pair.person.approve(PERSON, other.id)


@vendor_engines
def test_the_person_refuses_requests_she_cannot_take(pair, tmp_path):
    intent = Intents(pair.ps, clock=pair.clock).cast(PERSON, "?flight SFO->JFK", ttl_ms=DAY)
    make = lambda **b: envelope.create(  # noqa: E731
        VENDOR, "request", {"to": PERSON.public_key, "fields": ["email"], "purpose": "p", "duration": DAY,
                            "for": None, **b}, created=pair.clock.now, ttl_ms=DAY)
    first = make()
    assert pair.person.request_received(first, me=PERSON.public_key) == Reason.OK
    assert pair.person.request_received(first, me=PERSON.public_key) == Reason.DUPLICATE
    assert pair.person.request_received(make(to=MALLORY.public_key), me=PERSON.public_key) == Reason.NOT_FOR_ROLE
    assert pair.person.request_received(make(**{"for": bytes(32)})) == Reason.UNKNOWN_INTENT
    assert pair.person.request_received(make(fields=["b", "a"])) == Reason.INVALID_BODY
    self_asked = envelope.create(PERSON, "request", make().body, created=pair.clock.now, ttl_ms=DAY)
    assert pair.person.request_received(self_asked) == Reason.INVALID_BODY
    served = make(**{"for": bytes.fromhex(intent.id)}, purpose="for the flight")
    assert pair.person.request_received(served) == Reason.OK
    pair.clock.now += DAY
    assert pair.person.request_received(make(**{"for": bytes.fromhex(intent.id)}, purpose="late")) == Reason.EXPIRED
    pair.clock.now -= DAY
    Intents(pair.ps, clock=pair.clock).withdraw(PERSON, intent.id)
    assert pair.person.request_received(make(**{"for": bytes.fromhex(intent.id)}, purpose="gone")) == Reason.WITHDRAWN
    Blocks(pair.ps, clock=pair.clock).block(VENDOR.public_key.hex())
    assert pair.person.request_received(make(purpose="blocked")) == Reason.BLOCKED
    assert pair.ps.count("access_requests") == 2
    with pytest.raises(ValidationError):
        pair.person.request_received(envelope.create(VENDOR, "grant", {}, created=T0, ttl_ms=DAY))


@vendor_engines
def test_the_vendor_refuses_grants_it_cannot_take(pair):
    asked, _ = ask(pair, fields=["email"])
    body = {"to": VENDOR.public_key, "fields": ["email"], "purpose": "p", "uses": None, "terms": [],
            "for": None, "request": None, "push": False}
    make = lambda who=PERSON, **b: envelope.create(who, "grant", {**body, **b}, created=T0, ttl_ms=DAY)  # noqa: E731
    assert pair.vendor.grant_received(make(request=bytes(32))) == Reason.UNKNOWN_INTENT
    assert pair.vendor.grant_received(make(MALLORY, request=bytes.fromhex(asked.id))) == Reason.WRONG_AUTHOR
    wider = make(request=bytes.fromhex(asked.id), fields=["email", "phone"])
    assert pair.vendor.grant_received(wider) == Reason.INVALID_BODY
    assert pair.vendor.grant_received(make(to=OTHER_VENDOR.public_key), me=VENDOR.public_key) == Reason.NOT_FOR_ROLE
    assert pair.vendor.grant_received(make(VENDOR)) == Reason.INVALID_BODY  # granted to its own author
    assert pair.vendor.grant_received(make(uses=0)) == Reason.INVALID_BODY
    assert pair.vs.count("grants") == 0 and pair.vendor.requests(direction="sent")[0].status == "pending"
    # A grant signed by somebody else is held as theirs: it opens nothing at the person's node.
    assert pair.vendor.grant_received(make(MALLORY)) == Reason.OK
    assert pair.vendor.list(direction="received")[0].person == MALLORY.public_key.hex()


@vendor_engines
def test_create_checks_its_arguments_and_changes_nothing_when_refused(pair):
    before = pair.counts()
    good = {"fields": ["email"], "purpose": "p", "duration_ms": DAY}
    for change, field in [
        ({"fields": []}, "fields"),
        ({"fields": [f"f{i}" for i in range(33)]}, "fields"),
        ({"purpose": ""}, "purpose"),
        ({"purpose": "x" * 501}, "purpose"),
        ({"purpose": "tab\there"}, "purpose"),
        ({"duration_ms": 59_999}, "duration_ms"),
        ({"duration_ms": 366 * DAY}, "duration_ms"),
        ({"uses": 0}, "uses"),
        ({"terms": ["be-nice"]}, "terms"),
        ({"for_ref": "xyz"}, "for"),
    ]:
        with pytest.raises(ValidationError) as caught:
            pair.person.create(PERSON, VENDOR.public_key, **{**good, **change})
        assert caught.value.field == field, change
    with pytest.raises(ValidationError) as caught:
        pair.person.create(PERSON, PERSON.public_key, **good)
    assert caught.value.field == "grantee"
    with pytest.raises(ValidationError) as caught:  # no point: nothing could be sealed to it
        pair.person.create(PERSON, bytes.fromhex("02" + "00" * 31), **good)
    assert caught.value.field == "grantee"
    with pytest.raises(NotFoundError):
        pair.person.create(PERSON, VENDOR.public_key, **good, for_ref="abcdef")
    assert pair.counts() == before


@vendor_engines
def test_a_grant_for_an_intent_ends_no_later_and_carries_its_terms(pair):
    intent = Intents(pair.ps, clock=pair.clock).cast(PERSON, "?flight SFO->JFK", ttl_ms=DAY, terms=["no-resale"])
    grant, env = pair.person.create(
        PERSON, VENDOR.public_key, fields=["shipping_address"], purpose="p", duration_ms=30 * DAY, for_ref=intent.id[:8]
    )
    assert grant.for_ref == intent.id and env.expires == intent.expires
    assert grant.terms == ()  # create takes the terms it is given
    Intents(pair.ps, clock=pair.clock).withdraw(PERSON, intent.id)
    with pytest.raises(ConflictError):
        pair.person.create(PERSON, VENDOR.public_key, fields=["email"], purpose="p", duration_ms=DAY, for_ref=intent.id)
    served, _ = pair.person.create(
        PERSON, VENDOR.public_key, fields=["email"], purpose="p", duration_ms=DAY, terms="no-profiling no-resale"
    )
    assert served.terms == ("no-profiling", "no-resale")


@vendor_engines
def test_an_approved_request_for_an_intent_takes_its_terms(pair):
    intent = Intents(pair.ps, clock=pair.clock).cast(PERSON, "?taxi", ttl_ms=DAY, terms=["no-resale", "no-profiling"])
    asked, _ = ask(pair, for_ref=intent.id)  # a full id needs no lead on the vendor's node
    grant, env = pair.person.approve(PERSON, asked.id)
    assert grant.terms == ("no-resale", "no-profiling") and env.expires == intent.expires


# -- the grant check and the access --------------------------------------------------------------------


@vendor_engines
def test_every_refusal_of_the_check(pair):
    once = pair.give(["email"], uses=1)
    short = pair.give(["phone"], duration_ms=MINUTE)
    gone = pair.give(["shipping_address"])
    intent = Intents(pair.ps, clock=pair.clock).cast(PERSON, "?flight SFO->JFK", ttl_ms=2 * DAY)
    bound = pair.give(["email"], for_ref=intent.id)
    me, now = VENDOR.public_key.hex(), pair.clock.now
    check = pair.person.check

    assert check("ab" * 32, me, None, now) == (Reason.NO_GRANT, None)
    assert check("not hex", me, None, now) == (Reason.NO_GRANT, None)
    assert check(once.upper(), me, None, now) == (Reason.NO_GRANT, None)
    assert check(once, OTHER_VENDOR.public_key.hex(), None, now)[0] == Reason.NOT_GRANTEE
    assert check(once, me, ["phone"], now)[0] == Reason.OUT_OF_SCOPE
    assert check(once, me, ["email", "phone"], now)[0] == Reason.OUT_OF_SCOPE
    assert check(once, me, ["email"], now)[0] == Reason.OK
    assert pair.access(once).ok
    assert check(once, me, ["email"], now)[0] == Reason.BUDGET_SPENT
    assert check(short, me, None, now + MINUTE - 1)[0] == Reason.OK
    assert check(short, me, None, now + MINUTE)[0] == Reason.EXPIRED
    pair.person.revoke(PERSON, gone)
    assert check(gone, me, None, now)[0] == Reason.REVOKED
    assert check(gone, OTHER_VENDOR.public_key.hex(), None, now)[0] == Reason.NOT_GRANTEE  # tells a stranger nothing
    assert check(bound, me, None, now)[0] == Reason.OK
    assert check(bound, me, None, now + 2 * DAY)[0] == Reason.EXPIRED  # it expires with the intent
    Intents(pair.ps, clock=pair.clock).withdraw(PERSON, intent.id)
    assert check(bound, me, None, now)[0] == Reason.REVOKED
    # The vendor's own copy of a grant is not a grant it gave: nothing is answered from it.
    assert pair.vendor.check(short, me, None, now) == (Reason.NO_GRANT, None)


@vendor_engines
def test_an_access_answers_the_fields_present_spends_a_use_and_receipts_it(pair):
    pair.vault.delete("phone")
    grant_id = pair.give(["email", "phone", "shipping_address"], uses=3)
    pair.clock.now += 5
    first = pair.access(grant_id)
    assert first.ok and first.values == {"email": VAULT["email"], "shipping_address": VAULT["shipping_address"]}
    assert first.grant.uses_spent == 1
    assert first.receipt.body["fields"] == ["email", "shipping_address"] and first.receipt.body["outcome"] == "ok"
    assert first.receipt.body["to"] == VENDOR.public_key and first.receipt.body["purpose"] == "deliveries"
    second = pair.access(grant_id, ["email", "email"])
    assert second.values == {"email": VAULT["email"]} and second.receipt.body["fields"] == ["email"]
    refused = pair.access(grant_id, ["name"])
    assert (refused.ok, refused.reason, refused.values) == (False, Reason.OUT_OF_SCOPE, {})
    assert refused.receipt.body["fields"] == ["name"] and pair.person.get(grant_id).uses_spent == 2
    assert pair.access(grant_id).ok
    spent = pair.access(grant_id)
    assert spent.reason == Reason.BUDGET_SPENT
    assert spent.receipt.body["fields"] == ["email", "phone", "shipping_address"]
    receipts = Receipts(pair.ps)
    assert [r.outcome for r in receipts.list()] == ["ok", "ok", "out_of_scope", "ok", "budget_spent"]
    assert receipts.verify(PERSON.public_key).ok


@vendor_engines
def test_refusals_receipt_what_the_requester_may_know(pair):
    grant_id = pair.give(["email"])
    stranger = pair.access(grant_id, by=OTHER_VENDOR)
    assert stranger.reason == Reason.NOT_GRANTEE and stranger.values == {}
    body = stranger.receipt.body
    assert (body["to"], body["grant"], body["fields"], body["purpose"]) == (
        OTHER_VENDOR.public_key, bytes.fromhex(grant_id), [], ""
    )
    unknown = pair.access("cd" * 32)
    assert unknown.reason == Reason.NO_GRANT and unknown.grant is None
    assert unknown.receipt is None  # names no grant we gave: counted per source and hour instead
    counted = StrangerRefusals(pair.ps, clock=lambda: 0).counts()
    assert [(c.reason, c.count) for c in counted] == [("no_grant", 1)]
    assert pair.person.get(grant_id).uses_spent == 0


@vendor_engines
def test_an_access_with_bad_arguments_writes_nothing(pair):
    grant_id = pair.give(["email"])
    before = pair.counts()
    for fields in (["Bad"], "email", [1], [f"f{i}" for i in range(33)], []):
        with pytest.raises(ValidationError):
            pair.access(grant_id, fields)
    with pytest.raises(ValidationError):
        pair.person.access(PERSON, pair.vault, grant_id, "vendor", None)
    assert pair.counts() == before


@vendor_engines
def test_an_access_that_cannot_read_the_vault_spends_nothing(pair, tmp_path):
    key = bytes(range(32))
    with Store(tmp_path / "sealed.db") as store:
        Vault(store, key).set("email", "sealed value")
        grants = Grants(store, clock=Clock(T0))
        grant, _ = grants.create(PERSON, VENDOR.public_key, fields=["email"], purpose="p", duration_ms=DAY)
        with pytest.raises(PassphraseError):
            grants.access(PERSON, Vault(store, None), grant.id, VENDOR.public_key.hex(), None)
        assert grants.get(grant.id).uses_spent == 0 and store.count("receipts") == 0
        outcome = grants.access(PERSON, Vault(store, key), grant.id, VENDOR.public_key.hex(), None)
        assert outcome.values == {"email": "sealed value"}


@vendor_engines
def test_a_revocation_committed_by_another_connection_is_always_seen(pair):
    """The check and the spend run in one transaction: a revocation committed before (here by a
    second connection to the same file, as the CLI would) never lets an access through."""
    grant_id = pair.give(["email"])
    with Store(pair.ps.path) as other:
        Grants(other, clock=pair.clock).revoke(PERSON, grant_id)
    outcome = pair.access(grant_id)
    assert outcome.reason == Reason.REVOKED and outcome.values == {}
    # And one that raced between the check and the spend is caught by the conditional spend.
    grant_id = pair.give(["phone"], uses=1)
    original = pair.person.check
    calls = []

    def racing_check(*args):
        calls.append(1)
        result = original(*args)
        if len(calls) == 1:
            pair.ps.execute(
                "UPDATE grants SET status = 'ended', end_reason = 'revoked', ended_at = ? WHERE id = ?",
                [pair.clock.now, grant_id],
            )
        return result

    pair.person.check = racing_check  # type: ignore[method-assign]
    raced = pair.access(grant_id)
    assert len(calls) == 2 and raced.reason == Reason.REVOKED and raced.values == {}
    assert pair.person.get(grant_id).uses_spent == 0
