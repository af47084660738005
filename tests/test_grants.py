"""Consented access in one process (node/grants/): the fixtures (``Pair``: a person's store and a
vendor's), the benchmark's test and the message vectors. The behaviour is tested in
tests/test_grants_access.py (requests, approvals, the grant check, the access) and
tests/test_grants_endings.py (revocation, deletion, endings, pushes, hostile bodies).

Also the message vectors: ``python -m tests.test_grants`` (re)writes ``tests/vectors/grants.json``
(``--check`` exits 1 when it differs from a fresh generation): a request, grant, receipt, revoke and
deletion, built with the reference encoder and pyca's signer, and a sealed box. The tests check the
file on both backends and that the node's own code makes exactly these bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from node import envelope
from node.backends import NATIVE, REFERENCE
from node.grants import Grants, check_deletion_body, check_grant_body, check_request_body, check_revoke_body
from node.identity import Identity
from node.intents import intent_row
from node.offers import Offers
from node.reasons import Reason
from node.receipts import check_receipt_body
from node.seal import open_sealed, seal, x25519_public_key
from node.store import Store
from node.vault import Vault
from tests.test_offers import _from_json, _vector, protocol_intent
from tests.test_offers import vector as offer_vector
from tests.helpers import Clock

VECTORS_PATH = Path(__file__).resolve().parent / "vectors" / "grants.json"
T0 = 1_700_000_000_000
MINUTE = 60_000
DAY = 24 * 60 * MINUTE
PERSON = Identity.from_seed(bytes([1]) * 32)
VENDOR = Identity.from_seed(bytes([3]) * 32)
OTHER_VENDOR = Identity.from_seed(bytes([4]) * 32)
MALLORY = Identity.from_seed(bytes([10]) * 32)
VAULT = {
    "shipping_address": "SECRET-ADDR 1 Main Street, Springfield",
    "email": "SECRET-MAIL alice@example.org",
    "phone": "SECRET-PHONE +1 555 0100",
}
PURPOSE = "ship order 123"


# -- the vectors ---------------------------------------------------------------------------------------

# The story of the vectors: acme (seed 03) asks for the shipping address for the offer of PROTOCOL.md
# section 8 (accepted by the person of seed 01), she grants it for one use, acme fetches it (receipt 1),
# she revokes, acme answers with its deletion statement.
REQUESTED, GRANTED, FETCHED, REVOKED, DELETED = (T0 + n * MINUTE for n in (3, 4, 5, 6, 7))
SEAL_EPHEMERAL = bytes([7]) * 32
ADDRESS = "1 Main Street, Springfield"


def message_vectors() -> dict[str, Any]:
    offer_id = bytes.fromhex(offer_vector("offer")["id"])
    request = _vector(
        "request",
        VENDOR.seed(),
        "request",
        {"to": PERSON.public_key, "fields": ["shipping_address"], "purpose": PURPOSE, "duration": 30 * DAY,
         "for": offer_id},
        REQUESTED,
        REQUESTED + 7 * DAY,
    )
    grant = _vector(
        "grant",
        PERSON.seed(),
        "grant",
        {"to": VENDOR.public_key, "fields": ["shipping_address"], "purpose": PURPOSE, "uses": 1, "terms": [],
         "for": offer_id, "request": bytes.fromhex(request["id"]), "push": False},
        GRANTED,
        GRANTED + 30 * DAY,
    )
    grant_id = bytes.fromhex(grant["id"])
    receipt = _vector(
        "receipt",
        PERSON.seed(),
        "receipt",
        {"to": VENDOR.public_key, "seq": 1, "prev": bytes(32), "grant": grant_id, "fields": ["shipping_address"],
         "purpose": PURPOSE, "at": FETCHED, "outcome": "ok"},
        FETCHED,
        FETCHED + 10 * 365 * DAY,
    )
    revoke = _vector(
        "revoke",
        PERSON.seed(),
        "revoke",
        {"to": VENDOR.public_key, "grant": grant_id, "reason": "revoked"},
        REVOKED,
        REVOKED + 30 * DAY,
    )
    deletion = _vector(
        "deletion",
        VENDOR.seed(),
        "deletion",
        {"to": PERSON.public_key, "grant": grant_id, "revoke": bytes.fromhex(revoke["id"]),
         "fields": ["shipping_address"]},
        DELETED,
        DELETED + 30 * DAY,
    )
    values = {"shipping_address": ADDRESS}
    plaintext = REFERENCE.encode(values)
    box = seal(VENDOR.public_key, plaintext, info=grant_id, ephemeral=SEAL_EPHEMERAL)
    eph_pub = X25519PrivateKey.from_private_bytes(SEAL_EPHEMERAL).public_key().public_bytes_raw()
    shared = X25519PrivateKey.from_private_bytes(SEAL_EPHEMERAL).exchange(
        X25519PublicKey.from_public_bytes(x25519_public_key(VENDOR.public_key))
    )
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"vrm-seal-v1" + grant_id).derive(shared)
    sealed = {
        "recipient_seed": VENDOR.seed().hex(),
        "recipient_public_key": VENDOR.public_key.hex(),
        "recipient_x25519_public_key": x25519_public_key(VENDOR.public_key).hex(),
        "ephemeral_private_key": SEAL_EPHEMERAL.hex(),
        "ephemeral_public_key": eph_pub.hex(),
        "info": grant_id.hex(),
        "shared_secret": shared.hex(),
        "key": key.hex(),
        "values": values,
        "plaintext": plaintext.hex(),
        "sealed": box.hex(),
        "sealed_sha256": hashlib.sha256(box).hexdigest(),
    }
    return {
        "about": "Consented access messages (PROTOCOL.md, consented access): acme (seed 03) asks the person of "
        "seed 01 for her shipping address for the section 8 offer, she grants it for one use, acme fetches it "
        "(her receipt 1), she revokes, acme states the deletion; and the sealed answer. Generated by "
        "`python -m tests.test_grants`; bytes in bodies as {\"hex\"}.",
        "envelopes": [request, grant, receipt, revoke, deletion],
        "seal": sealed,
    }


def _dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file differs from a fresh run")
    args = parser.parse_args(argv)
    fresh = _dumps(message_vectors())
    if args.check:
        same = VECTORS_PATH.exists() and VECTORS_PATH.read_text(encoding="utf-8") == fresh
        print("up to date" if same else f"{VECTORS_PATH} differs from a fresh generation")
        return 0 if same else 1
    VECTORS_PATH.write_text(fresh, encoding="utf-8")
    print(f"wrote {VECTORS_PATH}")
    return 0


VECTORS = json.loads(VECTORS_PATH.read_text(encoding="utf-8")) if VECTORS_PATH.exists() else None
BACKENDS = {"native": NATIVE, "reference": REFERENCE}
CHECKERS = {
    "request": check_request_body,
    "grant": check_grant_body,
    "receipt": check_receipt_body,
    "revoke": check_revoke_body,
    "deletion": check_deletion_body,
}


def vector(name: str) -> dict[str, Any]:
    return next(v for v in VECTORS["envelopes"] if v["name"] == name)


def test_the_vector_file_is_what_the_generator_writes():
    assert VECTORS is not None, "run python -m tests.test_grants"
    assert VECTORS_PATH.read_text(encoding="utf-8") == _dumps(message_vectors())
    assert [v["name"] for v in VECTORS["envelopes"]] == list(CHECKERS)


def test_protocol_md_prints_these_vectors():
    """Every ``#### Envelope `request|grant|receipt|revoke|deletion``` block printed in PROTOCOL.md is
    this file's, and once one is printed all five are, with the sealed box."""
    text = (VECTORS_PATH.parents[2] / "PROTOCOL.md").read_text(encoding="utf-8")
    kinds = "|".join(CHECKERS)
    blocks = re.findall(rf"^#### Envelope `({kinds})`\n\n```text\n(.*?)```", text, re.M | re.S)
    for name, block in blocks:
        fields = dict(re.findall(r"^(\w+) +(.*(?:\n {14}[0-9a-f]+)*)", block, re.M))
        printed = {k: re.sub(r"\s+", "", fields[k]) for k in ("seed", "id", "envelope", "signed_bytes")}
        assert printed == {k: vector(name)[k] for k in printed}, name
    if blocks:
        assert sorted(name for name, _ in blocks) == sorted(CHECKERS)
        [sealed] = re.findall(r"^#### Sealed box\n\n```text\n(.*?)```", text, re.M | re.S)
        fields = dict(re.findall(r"^(\w+) +(.*(?:\n {14}[0-9a-f]+)*)", sealed, re.M))
        assert re.sub(r"\s+", "", fields["sealed"]) == VECTORS["seal"]["sealed"]
        assert re.sub(r"\s+", "", fields["key"]) == VECTORS["seal"]["key"]


@pytest.mark.parametrize("backend_name", sorted(BACKENDS))
@pytest.mark.parametrize("name", list(CHECKERS))
def test_vectors_on_both_backends(backend_name, name):
    backend = BACKENDS[backend_name]
    v = vector(name)
    identity = Identity.from_seed(bytes.fromhex(v["seed"]))
    body = _from_json(v["body"])
    made = envelope.create(identity, v["kind"], body, created=v["created"], expires=v["expires"], backend=backend)
    assert made.raw.hex() == v["envelope"] and made.id.hex() == v["id"] and made.sig.hex() == v["signature"]
    assert backend.signed_bytes(identity.public_key, body, v["created"], v["expires"], v["kind"]).hex() == v[
        "signed_bytes"
    ]
    raw = bytes.fromhex(v["envelope"])
    assert backend.Verifier().verify_one(raw, v["created"] + 1) == (0, bytes.fromhex(v["id"]))
    assert CHECKERS[name](envelope.decode(raw, backend).body) == body


@pytest.mark.parametrize("backend_name", sorted(BACKENDS))
def test_the_real_flow_reproduces_the_vectors(tmp_path, backend_name):
    """The vendor's and the person's nodes make exactly the vector bytes, and the box opens."""
    backend = BACKENDS[backend_name]
    clock_p, clock_v = Clock(T0 + 2 * MINUTE), Clock(REQUESTED)
    with Store(tmp_path / "p.db") as ps, Store(tmp_path / "v.db") as vs:
        with ps.transaction():
            intent = protocol_intent()
            ps.insert("intents", intent_row(intent, intent.body))
        offer = envelope.decode(bytes.fromhex(offer_vector("offer")["envelope"]), backend)
        assert Offers(ps, clock=clock_p, backend=backend).receive(offer, me=PERSON.public_key) == Reason.OK
        Vault(ps, None, clock=clock_p).set("shipping_address", ADDRESS)
        person, vendor = Grants(ps, clock=clock_p, backend=backend), Grants(vs, clock=clock_v, backend=backend)

        asked, request = vendor.request(
            VENDOR, PERSON.public_key, fields=["shipping_address"], purpose=PURPOSE, duration_ms=30 * DAY,
            for_ref=offer.id.hex(),
        )
        assert request.raw.hex() == vector("request")["envelope"] and asked.status == "pending"
        clock_p.now = REQUESTED
        assert person.request_received(request, me=PERSON.public_key) == Reason.OK
        clock_p.now = GRANTED
        grant, grant_env = person.approve(PERSON, asked.id[:8], uses=1)
        assert grant_env.raw.hex() == vector("grant")["envelope"]
        clock_v.now = GRANTED
        assert vendor.grant_received(grant_env, me=VENDOR.public_key) == Reason.OK
        clock_p.now = FETCHED
        outcome = person.access(PERSON, Vault(ps, None), grant.id, VENDOR.public_key.hex(), None)
        assert outcome.ok and outcome.receipt.raw.hex() == vector("receipt")["envelope"]
        box = bytes.fromhex(VECTORS["seal"]["sealed"])
        assert backend.decode(open_sealed(VENDOR, box, info=bytes.fromhex(grant.id))) == outcome.values
        vendor.store_fetched(grant.id, outcome.values)
        clock_p.now = REVOKED
        _, revoke = person.revoke(PERSON, grant.id)
        assert revoke.raw.hex() == vector("revoke")["envelope"]
        clock_v.now = DELETED
        reason, deletion = vendor.revoke_received(VENDOR, revoke)
        assert reason == Reason.OK and deletion.raw.hex() == vector("deletion")["envelope"]
        assert person.deletion_received(deletion, me=PERSON.public_key) == Reason.OK


# -- fixtures ------------------------------------------------------------------------------------------


class Pair:
    """A person's store (with her vault) and a vendor's, each with its Grants, on one clock."""

    def __init__(self, tmp_path: Path, vendor_store: Store | None = None) -> None:
        self.clock = Clock(T0)
        self.ps = Store(tmp_path / "person.db")
        self.vs = vendor_store if vendor_store is not None else Store(tmp_path / "vendor.db")
        self.person = Grants(self.ps, clock=self.clock)
        self.vendor = Grants(self.vs, clock=self.clock)
        self.vault = Vault(self.ps, None, clock=self.clock)
        for name, value in VAULT.items():
            self.vault.set(name, value)

    def give(self, fields=("email",), *, grantee=VENDOR, **options) -> str:
        options = {"purpose": "deliveries", "duration_ms": 30 * DAY, **options}
        grant, env = self.person.create(PERSON, grantee.public_key, fields=list(fields), **options)
        if grantee is VENDOR:
            assert self.vendor.grant_received(env, me=VENDOR.public_key) == Reason.OK
        return grant.id

    def access(self, grant_id: str, fields=None, *, by=VENDOR):
        return self.person.access(PERSON, self.vault, grant_id, by.public_key.hex(), fields)

    def counts(self) -> dict[str, int]:
        tables = ("access_requests", "grants", "held_data", "receipts", "receipt_copies")
        return {f"{side}.{t}": store.count(t) for side, store in (("p", self.ps), ("v", self.vs)) for t in tables}

    def close(self) -> None:
        self.ps.close()
        self.vs.close()


@pytest.fixture
def pair(tmp_path, open_vendor_store):
    """The vendor's side on the test's engine (``@vendor_engines``: SQLite and PostgreSQL)."""
    p = Pair(tmp_path, open_vendor_store())
    yield p
    p.close()


def ask(pair: Pair, fields=("email", "shipping_address"), **options):
    options = {"purpose": PURPOSE, "duration_ms": 30 * DAY, "for_ref": None, **options}
    asked, env = pair.vendor.request(VENDOR, PERSON.public_key, fields=list(fields), **options)
    assert pair.person.request_received(env, me=PERSON.public_key) == Reason.OK
    return asked, env


# -- the benchmark -------------------------------------------------------------------------------------


def test_the_benchmark_measures_both_latencies_and_gates_the_check():
    from benchmarks import grants as bench
    from benchmarks.harness import Gate, Suite, evaluate_gates

    suite = Suite(quick=True, verbose=False)
    meta = bench.run(suite, NATIVE, grants=300)
    assert meta["grants"] == 300
    check, access = suite.results["grants.check"], suite.results["grants.access"]
    assert 0 < check.extra["p50_s"] <= check.extra["p99_s"] <= check.extra["max_s"]
    assert access.extra["p50_s"] > check.extra["p50_s"]  # the access also signs and commits
    # The gate is a same-run CPU ratio against one SQLite point query, never a wall-time limit.
    passing = Gate("check within 1000x a query", "grants.check", "grants.point_query", 0.001)
    failing = Gate("check 1000x faster than a query", "grants.check", "grants.point_query", 1000.0)
    missing = Gate("not measured", "grants.nothing", "grants.point_query", 0.1)
    evaluate_gates(suite, [passing, failing, missing])
    assert (passing.passed, failing.passed, missing.passed) == (True, False, False)
    assert missing.describe().startswith("not measured: grants.nothing vs grants.point_query = not measured")


if __name__ == "__main__":
    sys.exit(main())
