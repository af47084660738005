"""Consented access between real nodes on 127.0.0.1: requests, grants, fetches, pushes, receipts,
revocation and deletion, each refusal with its reason and its receipt (tests/fednet.py).

Alice is a person with a vault; acme and bolt are vendors. Every wait is polled under the test's
``trio.fail_after``.
"""

from __future__ import annotations

import logging
import secrets

import httpx
import pytest
import trio

from federation import wire
from federation.auth import SignatureAuth
from federation.peerclient import PeerClient
from node import envelope
from node.refusals import StrangerRefusals
from node.errors import AccessRefused
from node.grants import Grants
from node.identity import Identity
from node.reasons import Reason
from node.receipts import Receipts
from tests.fednet import FedNet, eventually

DAY = 86_400_000
MINUTE = 60_000
TIMEOUT = 30
VAULT = {
    "shipping_address": "SECRET-7f3a 1 Main Street, Springfield",
    "email": "SECRET-alice-5c1e@example.org",
    "phone": "SECRET-+1-555-0199-d42b",
}
FLIGHT = "Need ?flight SFO->JFK max:400USD"


@pytest.fixture
async def net(nursery, tmp_path):
    yield FedNet(nursery, tmp_path)


async def person(net: FedNet, name: str = "alice", **options):
    node = await net.node(name, **options)
    for field, value in VAULT.items():
        await node.op("vault.set", {"name": field, "value": value})
    return node


async def pair(net: FedNet, **alice_options):
    """Alice (with her vault) and the vendor acme, peered both ways (alice added acme)."""
    alice = await person(net, **alice_options)
    acme = await net.node("acme", "vendor")
    await net.peer(alice, acme)
    return alice, acme


def grants_of(node_direction: str, status: str = "all"):
    return lambda s: Grants(s).list(direction=node_direction, status=status)


def receipts(store):
    return Receipts(store).list()


async def receipt_outcomes(node) -> list[str]:
    return [r.outcome for r in await node.read(receipts)]


async def requested_and_approved(alice, acme, fields, approve=None, **request):
    """Acme asks alice for ``fields``; she approves (``approve``: narrower terms); the grant reaches
    acme. Returns the grant as acme holds it."""
    args = {"person": alice.node_id, "fields": fields, "purpose": "ship order 123", "duration_ms": 30 * DAY}
    args.update({"for": None, **request})
    asked = await acme.op("access.request", args)
    [pending] = await eventually(lambda: alice.read(lambda s: Grants(s).pending()))
    assert pending.id == asked["id"] and list(pending.fields) == sorted(fields)
    given = await alice.op("grants.approve", {"request": pending.id, "push": False, **(approve or {})})
    return await received_grant(acme, given["id"])


async def received_grant(vendor, grant_id: str):
    def held(store):
        return [g for g in Grants(store).list(direction="received", status="all") if g.id == grant_id]

    [grant] = await eventually(lambda: vendor.read(held))
    return grant


async def given_grant(alice, acme, fields, **options):
    """Alice grants acme ``fields`` without a request; the grant as acme holds it."""
    args = {
        "vendor": acme.node_id,
        "fields": fields,
        "purpose": "deliveries",
        "duration_ms": 30 * DAY,
        "uses": None,
        "for": None,
        "push": False,
        **options,
    }
    given = await alice.op("grants.create", args)
    return await received_grant(acme, given["id"])


async def fetch_as(node_or_identity, url: str, grant_id: str | bytes, fields=None):
    identity = node_or_identity if isinstance(node_or_identity, Identity) else node_or_identity.identity
    async with PeerClient(identity, timeout=5) as client:
        return await client.fetch(url, grant_id, fields)


async def refused(node_or_identity, url: str, grant_id, fields=None) -> str:
    with pytest.raises(AccessRefused) as caught:
        await fetch_as(node_or_identity, url, grant_id, fields)
    return caught.value.reason


# -- requests, grants, fetches ------------------------------------------------------------------------


async def test_a_narrower_approval_gives_exactly_the_granted_fields(net):
    with trio.fail_after(TIMEOUT):
        alice, acme = await pair(net)
        grant = await requested_and_approved(
            alice, acme, ["email", "phone", "shipping_address"], approve={"fields": ["shipping_address", "email"]}
        )
        assert grant.fields == ("email", "shipping_address") and grant.status == "live"
        assert grant.person == alice.key and grant.grantee == acme.key

        fetched = await acme.op("access.fetch", {"grant": grant.id, "fields": None})
        assert fetched == {
            "grant": grant.id,
            "fields": ["email", "shipping_address"],
            "values": {"email": VAULT["email"], "shipping_address": VAULT["shipping_address"]},
        }
        only = await acme.op("access.fetch", {"grant": grant.id[:12], "fields": ["email"]})
        assert only["values"] == {"email": VAULT["email"]}
        assert await acme.read(lambda s: Grants(s).held(grant.id)) == fetched["values"]
        with pytest.raises(AccessRefused) as caught:
            await acme.op("access.fetch", {"grant": grant.id, "fields": ["phone"]})
        assert caught.value.reason == "out_of_scope"

        assert await receipt_outcomes(alice) == ["ok", "ok", "out_of_scope"]
        mine = await alice.read(receipts)
        assert [(r.vendor, r.grant, r.purpose) for r in mine] == [(acme.key, grant.id, "ship order 123")] * 3
        assert [list(r.fields) for r in mine] == [["email", "shipping_address"], ["email"], ["phone"]]
        # The vendor receives its copy of each receipt.
        copies = await eventually(lambda: acme.read(lambda s: len(Receipts(s).list()) == 3 and Receipts(s).list()))
        assert [c.id for c in copies] == [r.id for r in mine]
        assert (await alice.read(lambda s: Receipts(s).verify(alice.identity.public_key))).ok


async def test_a_denied_request_gives_no_grant(net):
    with trio.fail_after(TIMEOUT):
        alice, acme = await pair(net)
        args = {"person": alice.node_id, "fields": ["email"], "purpose": "newsletter", "duration_ms": DAY, "for": None}
        asked = await acme.op("access.request", args)
        await eventually(lambda: alice.read(lambda s: Grants(s).pending()))
        denied = await alice.op("grants.deny", {"request": asked["id"]})
        assert denied["status"] == "denied"
        assert await alice.read(lambda s: Grants(s).pending()) == []
        assert await alice.read(grants_of("given")) == []


async def test_every_refusal_has_its_reason_and_its_receipt(net):
    with trio.fail_after(TIMEOUT):
        now = [envelope.now_ms()]
        alice, acme = await pair(net, clock=lambda: now[0])
        bolt = await net.node("bolt", "vendor")
        once = await given_grant(alice, acme, ["email"], uses=1)
        short = await given_grant(alice, acme, ["phone"], duration_ms=MINUTE)
        gone = await given_grant(alice, acme, ["shipping_address"])

        assert await refused(acme, alice.url, secrets.token_bytes(32)) == "no_grant"
        assert await refused(bolt, alice.url, once.id) == "not_grantee"
        assert await refused(acme, alice.url, once.id, ["phone"]) == "out_of_scope"
        assert (await fetch_as(acme, alice.url, once.id)).values == {"email": VAULT["email"]}
        assert await refused(acme, alice.url, once.id) == "budget_spent"
        await alice.op("grants.revoke", {"ref": gone.id})
        assert await refused(acme, alice.url, gone.id) == "revoked"
        now[0] += MINUTE + 1  # the short grant has expired
        assert await refused(acme, alice.url, short.id) == "expired"

        # Every refusal concerning one of her grants is receipted; a fetch naming none is only counted.
        outcomes = ["not_grantee", "out_of_scope", "ok", "budget_spent", "revoked", "expired"]
        mine = await alice.read(receipts)
        assert [r.outcome for r in mine] == outcomes
        assert [r.vendor for r in mine] == [bolt.key, *[acme.key] * 5]
        counted = await alice.read(lambda s: StrangerRefusals(s, clock=lambda: 0).counts())
        assert [(c.source, c.reason, c.count) for c in counted] == [("127.0.0.1", "no_grant", 1)]
        assert (await alice.read(lambda s: Receipts(s).verify(alice.identity.public_key))).ok


async def test_a_forged_grant_is_refused(net):
    with trio.fail_after(TIMEOUT):
        alice, acme = await pair(net)
        real = await given_grant(alice, acme, ["email"])
        mallory = Identity.generate()
        # The same grant signed by somebody else: not a grant alice gave.
        forged = envelope.create(mallory, "grant", envelope.decode(real.raw).body, ttl_ms=DAY)
        async with PeerClient(mallory, timeout=5) as client:
            await client.push(acme.url, [wire.GossipItem(0, forged.raw)])
        assert await refused(acme, alice.url, forged.id) == "no_grant"
        # Alice's grant with its fields changed no longer verifies: acme refuses to hold it.
        tampered = bytearray(real.raw)
        at = bytes(tampered).find(b"email")
        tampered[at : at + 5] = b"phone"
        async with PeerClient(mallory, timeout=5) as client:
            assert await client.push(acme.url, [wire.GossipItem(0, bytes(tampered))]) == bytes([Reason.BAD_SIGNATURE])
        assert await receipt_outcomes(alice) == []  # it names no grant of hers: counted, not receipted
        counted = await alice.read(lambda s: StrangerRefusals(s, clock=lambda: 0).counts())
        assert [(c.reason, c.count) for c in counted] == [("no_grant", 1)]


async def test_a_grant_presented_by_another_vendor_is_refused(net):
    with trio.fail_after(TIMEOUT):
        alice, acme = await pair(net)
        bolt = await net.node("bolt", "vendor")
        await net.peer(alice, bolt)
        grant = await given_grant(alice, acme, ["email"])
        assert await refused(bolt, alice.url, grant.id) == "not_grantee"
        [receipt] = await alice.read(receipts)
        assert (receipt.outcome, receipt.vendor, receipt.grant) == ("not_grantee", bolt.key, grant.id)
        # The refusal's receipt goes to the vendor that tried, not to the grantee.
        [copy] = await eventually(lambda: bolt.read(lambda s: Receipts(s).list()))
        assert copy.id == receipt.id
        assert await acme.read(lambda s: Receipts(s).list()) == []


async def test_a_replayed_fetch_request_is_refused_before_the_grant_check(net):
    with trio.fail_after(TIMEOUT):
        alice, acme = await pair(net)
        grant = await given_grant(alice, acme, ["email"])
        async with httpx.AsyncClient() as http:
            request = http.build_request(
                "POST",
                alice.url + "/v1/access",
                content=wire.encode_access_ask(bytes.fromhex(grant.id), None),
                headers={"Content-Type": wire.MEDIA_TYPE},
            )
            signed = next(SignatureAuth(acme.identity).auth_flow(request))
            first = await http.send(signed)
            assert first.status_code == 200
            assert wire.decode_access_answer(first.content).fields == ["email"]
            again = await http.send(signed)
            assert (again.status_code, again.headers["Vrm-Signature-Error"]) == (401, "replayed")
        assert await receipt_outcomes(alice) == ["ok"]  # the replay spent nothing and left no receipt


async def test_no_access_succeeds_after_the_revocation_is_stored(net):
    with trio.fail_after(TIMEOUT):
        alice, acme = await pair(net)
        grant = await given_grant(alice, acme, ["email", "phone"])
        outcomes: list[str] = []
        revoked = trio.Event()

        async def fetcher() -> None:
            async with PeerClient(acme.identity, timeout=5) as client:
                while True:
                    try:
                        await client.fetch(alice.url, grant.id)
                    except AccessRefused as exc:
                        outcomes.append(exc.reason)
                        if revoked.is_set():
                            return
                    else:
                        outcomes.append("ok")

        async with trio.open_nursery() as nursery:
            for _ in range(4):
                nursery.start_soon(fetcher)
            async def enough() -> bool:
                return outcomes.count("ok") >= 20

            await eventually(enough)
            await alice.op("grants.revoke", {"ref": grant.id})
            revoked.set()

        ended = await alice.read(lambda s: Grants(s).get(grant.id))
        assert ended.status == "ended" and ended.end_reason == "revoked"
        chain = await alice.read(receipts)
        assert [r.seq for r in chain] == list(range(1, len(chain) + 1))
        first_refusal = next(i for i, r in enumerate(chain) if r.outcome != "ok")
        assert all(r.outcome == "ok" for r in chain[:first_refusal])
        assert all(r.outcome == "revoked" for r in chain[first_refusal:])
        assert all(r.at <= ended.ended_at for r in chain if r.outcome == "ok")
        assert outcomes.count("ok") == first_refusal >= 20
        assert set(outcomes[outcomes.index("revoked") :]) <= {"ok", "revoked"}  # oks in flight were stored before


async def test_withdrawing_the_intent_ends_its_grant_and_the_vendor_deletes(net):
    with trio.fail_after(TIMEOUT):
        alice, acme = await pair(net)
        intent = await alice.op("intent.cast", {"text": FLIGHT, "ttl_ms": DAY, "terms": []})
        grant = await given_grant(alice, acme, ["shipping_address"], **{"for": intent["id"]})
        await acme.op("access.fetch", {"grant": grant.id, "fields": None})
        assert await acme.read(lambda s: Grants(s).held(grant.id)) == {"shipping_address": VAULT["shipping_address"]}

        await alice.op("intent.withdraw", {"ref": intent["id"]})
        mine = await alice.read(lambda s: Grants(s).get(grant.id))
        assert (mine.status, mine.end_reason) == ("ended", "intent_ended")
        assert await refused(acme, alice.url, grant.id) == "revoked"
        # The vendor got the revocation, deleted what it held and confirmed it.
        await eventually(lambda: acme.read(lambda s: Grants(s).get(grant.id).status == "ended"))
        assert await acme.read(lambda s: Grants(s).held(grant.id)) == {}
        confirmed = await eventually(
            lambda: alice.read(lambda s: Grants(s).get(grant.id).deletion_confirmed_at is not None)
        )
        assert confirmed


async def test_revocation_makes_the_vendor_delete_and_confirm(net):
    with trio.fail_after(TIMEOUT):
        alice, acme = await pair(net)
        grant = await requested_and_approved(alice, acme, ["email", "shipping_address"], approve={"uses": 2})
        await acme.op("access.fetch", {"grant": grant.id, "fields": None})
        assert len(await acme.read(lambda s: Grants(s).held(grant.id))) == 2
        revoked = await alice.op("grants.revoke", {"ref": grant.id[:10]})
        assert revoked["status"] == "ended" and revoked["end_reason"] == "revoked"

        def confirmed(store):
            g = Grants(store).get(grant.id)
            return g if g.deletion_confirmed_at is not None else None

        mine = await eventually(lambda: alice.read(confirmed))
        assert mine.deletion_id is not None and mine.revoke_id is not None
        theirs = await acme.read(lambda s: Grants(s).get(grant.id))
        assert theirs.status == "ended" and await acme.read(lambda s: Grants(s).held(grant.id)) == {}
        # The deletion statement is signed by the vendor and names the revocation.
        deletion = await alice.read(lambda s: s.query_one("SELECT raw FROM envelopes WHERE id = ?", [bytes.fromhex(mine.deletion_id)]))
        statement = envelope.decode(deletion["raw"])
        assert statement.kind == "deletion" and statement.author.hex() == acme.key
        assert statement.body["grant"].hex() == grant.id and statement.body["revoke"].hex() == mine.revoke_id


# -- push ---------------------------------------------------------------------------------------------


async def test_a_person_without_public_url_pushes_granted_data_and_its_changes(net):
    with trio.fail_after(TIMEOUT):
        alice, acme = await pair(net, reachable=False)
        grant = await given_grant(alice, acme, ["email", "shipping_address"], push=True)
        expected = {"email": VAULT["email"], "shipping_address": VAULT["shipping_address"]}
        await eventually(lambda: acme.read(lambda s: Grants(s).held(grant.id) == expected))

        await alice.op("vault.set", {"name": "email", "value": "SECRET-new-9e0a@example.org"})
        await alice.op("vault.set", {"name": "phone", "value": "SECRET-not-granted-0c77"})
        expected = {**expected, "email": "SECRET-new-9e0a@example.org"}
        await eventually(lambda: acme.read(lambda s: Grants(s).held(grant.id) == expected))
        assert "phone" not in await acme.read(lambda s: Grants(s).held(grant.id))
        pushed = [r for r in await alice.read(receipts) if r.outcome == "pushed"]
        assert len(pushed) == 2
        await eventually(lambda: acme.read(lambda s: len(Receipts(s).list()) == 2))
        # A fetch would have nowhere to go: the person's node has no URL.
        with pytest.raises(Exception, match="pushes the data"):
            await acme.op("access.fetch", {"grant": grant.id, "fields": None})


async def test_a_request_reaches_a_person_behind_nat_through_her_inbox(net):
    with trio.fail_after(TIMEOUT):
        alice, acme = await pair(net, reachable=False)
        args = {"person": alice.node_id, "fields": ["email"], "purpose": "receipts", "duration_ms": DAY, "for": None}
        asked = await acme.op("access.request", args)
        assert await acme.read(lambda s: s.count("outbox")) == 0  # nowhere to push it
        await alice.op("sync")  # (her pull after peering may have fetched it already)
        [pending] = await alice.read(lambda s: Grants(s).pending())
        assert pending.id == asked["id"]
        given = await alice.op("grants.approve", {"request": pending.id, "fields": None, "push": True})
        grant = await received_grant(acme, given["id"])
        assert grant.request_id == asked["id"]
        await eventually(lambda: acme.read(lambda s: Grants(s).held(grant.id) == {"email": VAULT["email"]}))
        sent = await acme.read(lambda s: Grants(s).requests(direction="sent"))
        assert [(r.id, r.status, r.grant_id) for r in sent] == [(asked["id"], "approved", grant.id)]


# -- secrets ------------------------------------------------------------------------------------------


async def test_no_vault_value_appears_in_logs_or_receipts(net, caplog):
    caplog.set_level(logging.DEBUG)
    with trio.fail_after(TIMEOUT):
        alice, acme = await pair(net)
        bolt = await net.node("bolt", "vendor")
        grant = await requested_and_approved(alice, acme, ["email", "phone", "shipping_address"], approve={"uses": 3})
        await acme.op("access.fetch", {"grant": grant.id, "fields": None})
        await refused(bolt, alice.url, grant.id)
        await refused(acme, alice.url, grant.id, ["name"])
        pushed = await given_grant(alice, acme, ["phone"], push=True)
        await eventually(lambda: acme.read(lambda s: Grants(s).held(pushed.id)))
        await alice.op("vault.set", {"name": "phone", "value": VAULT["phone"] + "-v2"})
        await alice.op("grants.revoke", {"ref": grant.id})
        await eventually(lambda: alice.read(lambda s: Grants(s).get(grant.id).deletion_confirmed_at))

        def dump(store) -> bytes:
            """Every row of the tables a receipt or an envelope lives in, as bytes."""
            out = []
            for table in ("envelopes", "outbox", "outbox_dead", *[t for t in store.table_names() if "receipt" in t]):
                for row in store.query(f"SELECT * FROM {table}"):
                    out.extend(v if isinstance(v, bytes) else str(v).encode() for v in row.values())
            return b"\n".join(out)

        exported = await alice.read(lambda s: repr(Receipts(s).export()).encode())
        stored = [await node.read(dump) for node in (alice, acme, bolt)]
    logged = "\n".join(
        record.getMessage() + (record.exc_text or "") + repr(record.args) for record in caplog.records
    )
    assert logged  # the nodes did log (requests, deliveries): the scan looked at something
    for value in [*VAULT.values(), VAULT["phone"] + "-v2"]:
        secret = value.encode()
        assert value not in logged
        assert secret not in exported
        for blob in stored:
            assert secret not in blob
