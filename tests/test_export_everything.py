"""Export and import of everything a node owns, made by real nodes on 127.0.0.1 (tests/fednet.py):
peers, blocks, intents, offers, access requests, grants given and received, the receipt chain and its
copies, subscriptions, leads and held-data metadata; and the identity backup that makes an import the
same node. Round trip: every row comes back; the receipt chain verifies; the node id is kept."""

from __future__ import annotations

import copy
import json

import pytest
import trio

from node.agreements import Agreements
from node.errors import ExchangeError, PassphraseError
from node.exchange import dump_document, export_home, import_home, load_document
from node.exchange_data import DATA_TABLES, METADATA_ONLY
from node.grants import Grants
from node.identity import Identity
from node.keystore import load_identity
from node.leads import Leads
from node.nodeid import encode_node_id
from node.offers import Offers
from node.receipts import Receipts
from node.store import Store
from tests.fednet import FedNet, eventually
from tests.test_access import DAY, FLIGHT, given_grant, pair, requested_and_approved

TIMEOUT = 40
BACKUP = "the backup passphrase"


@pytest.fixture
async def net(nursery, tmp_path):
    yield FedNet(nursery, tmp_path / "net")


async def two_nodes_with_every_kind_of_data(net: FedNet):
    alice, acme = await pair(net)
    await acme.op("subscriptions.add", {"text": "?flight"})
    await alice.op("intent.cast", {"text": FLIGHT, "ttl_ms": DAY, "terms": ["contact-only-about-this"]})
    [lead] = await eventually(lambda: acme.read(lambda s: Leads(s).list()))
    await acme.op(
        "offers.make",
        {"lead": lead.id, "price_minor": 34900, "currency": "USD", "text": "SFO->JFK economy", "ttl_ms": DAY},
    )
    [offer] = await eventually(lambda: alice.read(lambda s: Offers(s).list(direction="received")))
    grant = await requested_and_approved(alice, acme, ["email"])
    pushed = await given_grant(alice, acme, ["shipping_address"], push=True)
    await eventually(lambda: acme.read(lambda s: Grants(s).held(pushed.id)))
    await acme.op("access.fetch", {"grant": grant.id, "fields": None})
    await eventually(lambda: acme.read(lambda s: len(Receipts(s).list()) >= 2))
    await alice.op("offers.accept", {"ref": offer.id})  # an agreement on both sides
    await eventually(lambda: acme.read(lambda s: Agreements(s).list()))
    spammer = Identity.from_seed(bytes([7]) * 32)
    await alice.op("blocks.add", {"ref": encode_node_id(spammer.public_key), "note": "spam"})
    await net.stop_all()
    return alice, acme


async def test_every_kind_of_data_round_trips_and_the_identity_backup_keeps_the_node_id(net, tmp_path):
    with trio.fail_after(TIMEOUT):
        alice, acme = await two_nodes_with_every_kind_of_data(net)

    # alice, moving with her identity: the same node id, her chain still hers and intact
    exported = export_home(alice.home, identity_passphrase=BACKUP)
    data = exported["sections"]["data"]
    for table in ("peers", "blocked", "access_requests", "offers", "agreements", "grants", "receipts"):
        assert data[table], f"alice's export has no {table}"
    alices_agreements = data["agreements"]
    assert len(data["receipts"]) >= 2 and BACKUP not in dump_document(exported)
    assert load_identity(alice.home.key_path, None).seed().hex() not in dump_document(exported)
    document = load_document(dump_document(exported))  # through the JSON text, as a file would go
    with pytest.raises(PassphraseError):
        import_home(document, tmp_path / "wrong", passphrase=None, source_passphrase="not it")
    assert not (tmp_path / "wrong").exists()
    restored = import_home(document, tmp_path / "alice-on-the-pi", passphrase=None, source_passphrase=BACKUP)
    assert restored.home.node_id == alice.node_id
    assert restored.counts["receipts"] == len(data["receipts"]) and restored.counts["grants"] == len(data["grants"])
    with Store(restored.home.db_path) as store:
        report = Receipts(store).verify(bytes.fromhex(alice.key))
        assert report.ok and report.count == len(data["receipts"])
        # the same key: she can go on signing, and the chain goes on from where it was
        receipts = Receipts(store)
        receipts.append(
            load_identity(restored.home.key_path, None), to=bytes.fromhex(acme.key), grant=bytes(32),
            fields=["email"], purpose="", outcome="no_grant",
        )  # fmt: skip
        assert receipts.verify(bytes.fromhex(alice.key)).ok
    again = export_home(tmp_path / "alice-on-the-pi")["sections"]["data"]
    assert again["receipts"][: len(data["receipts"])] == data["receipts"]
    assert {t: again[t] for t in DATA_TABLES if t != "receipts"} == {t: data[t] for t in DATA_TABLES if t != "receipts"}

    # acme, a vendor: subscriptions, leads, offers made, grants received, receipt copies, held metadata
    exported = export_home(acme.home)
    data = exported["sections"]["data"]
    for table in (
        "subscriptions", "leads", "offers", "agreements", "access_requests", "grants", "receipt_copies", "held_data"
    ):
        assert data[table], f"acme's export has no {table}"
    assert data["agreements"] == alices_agreements  # the same signed agreement on both sides
    assert all(set(row) == {"grant_id", "name", "received_at"} for row in data["held_data"])  # no values
    assert "identity" not in exported["sections"]
    moved = import_home(load_document(dump_document(exported)), tmp_path / "acme-moved", passphrase=None)
    assert moved.home.node_id != acme.node_id  # no backup: a new identity
    again = export_home(tmp_path / "acme-moved")["sections"]["data"]
    assert {t: again[t] for t in DATA_TABLES if t not in METADATA_ONLY} == {
        t: data[t] for t in DATA_TABLES if t not in METADATA_ONLY
    }
    assert again["held_data"] == []  # the values were never exported: fetched again under the grants


async def test_an_altered_receipt_chain_or_a_foreign_backup_is_refused(net, tmp_path):
    with trio.fail_after(TIMEOUT):
        alice, acme = await two_nodes_with_every_kind_of_data(net)
    exported = export_home(alice.home, identity_passphrase=BACKUP)

    edited = copy.deepcopy(exported)
    edited["sections"]["data"]["receipts"][0]["purpose"] = "something else"
    with pytest.raises(ExchangeError, match="receipt chain"):
        import_home(edited, tmp_path / "edited", passphrase=None, source_passphrase=BACKUP)

    dropped = copy.deepcopy(exported)
    del dropped["sections"]["data"]["receipts"][0]
    with pytest.raises(ExchangeError, match="receipt chain"):
        import_home(dropped, tmp_path / "dropped", passphrase=None, source_passphrase=BACKUP)

    forged = copy.deepcopy(exported)
    raw = bytearray.fromhex(forged["sections"]["data"]["grants"][0]["raw"])
    raw[-10] ^= 1  # inside the signature (the envelope ends with sig, then v)
    forged["sections"]["data"]["grants"][0]["raw"] = raw.hex()
    with pytest.raises(ExchangeError, match=r"data\.grants\[0\]"):
        import_home(forged, tmp_path / "forged", passphrase=None, source_passphrase=BACKUP)

    # an agreement is its two signed envelopes: a changed term or a changed signature is refused
    for change in ("terms", "accept_raw"):
        altered = copy.deepcopy(exported)
        row = altered["sections"]["data"]["agreements"][0]
        if change == "terms":
            row["terms"] = "[]"
        else:
            raw = bytearray.fromhex(row["accept_raw"])
            raw[-10] ^= 1
            row["accept_raw"] = raw.hex()
        with pytest.raises(ExchangeError, match=r"data\.agreements\[0\]"):
            import_home(altered, tmp_path / f"altered-{change}", passphrase=None, source_passphrase=BACKUP)
        assert not (tmp_path / f"altered-{change}").exists()

    foreign = copy.deepcopy(exported)
    foreign["sections"]["identity"] = export_home(acme.home, identity_passphrase=BACKUP)["sections"]["identity"]
    with pytest.raises(ExchangeError, match="not the key of the exported node"):
        import_home(foreign, tmp_path / "foreign", passphrase=None, source_passphrase=BACKUP)

    wrong_type = copy.deepcopy(exported)
    wrong_type["sections"]["data"]["peers"][0]["added_at"] = "yesterday"
    with pytest.raises(ExchangeError, match="added_at"):
        import_home(wrong_type, tmp_path / "typed", passphrase=None, source_passphrase=BACKUP)
    assert not any(p.name in ("edited", "dropped", "forged", "foreign", "typed") for p in tmp_path.iterdir())
    json.dumps(exported)  # the document is plain JSON
