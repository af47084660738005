"""Export and import: everything a person owns, in one open JSON document, restorable into a new home."""

from __future__ import annotations

import copy
import json
import stat

import pytest

from node.errors import ExchangeError, PassphraseError
from node.exchange import FORMAT, dump_document, export_home, import_home, load_document, write_export
from node.home import init_home, load_home, open_store, open_vault
from node.keystore import derive_vault_key, load_identity
from node.records import RECORD_TABLES, Records
from node.scorecard import scorecard
from node.search import search

PASSPHRASE = "export passphrase"
T0 = 1_700_000_000_000
SECRET_VALUES = {"email": "alice.secret@example.org", "shipping_address": "221B Baker Street, London"}


def _populate(home, passphrase):
    """A row in every record table and two vault fields."""
    with open_store(home) as store:
        records = Records(store, clock=lambda: T0)
        acme = records.add_vendor(
            "Acme Air", handle="@acme-air", website="https://acme.example", engagement="casual"
        )
        other = records.add_vendor("Zephyr Rentals", started_at=T0 - 1000)
        records.add_purchase(acme.id, "Flight SFO-JFK", price_minor=38900, currency="USD", bought_at=T0 + 1)
        records.add_purchase(acme.id, "Gift card", bought_at=T0 + 2)  # no price
        records.add_note(acme.id, "Friendly crew", tags=["flights", "service"], at=T0 + 3)
        records.rate(acme.id, 4, comment="good value", at=T0 + 4)
        records.recommend(acme.id, True, text="cheap", at=T0 + 5)
        records.recommend(other.id, False, at=T0 + 5)
        issue = records.open_issue(acme.id, "Lost luggage", at=T0 + 6)
        records.add_reply(issue.id, "vendor", "Found your bag", at=T0 + 7)
        records.resolve_issue(issue.id, at=T0 + 8)
        records.open_issue(acme.id, "Wifi broken", at=T0 + 9)
        records.set_engagement(acme.id, "engaged", at=T0 + 10)
        records.end_relationship(other.id, reason="moved away", at=T0 + 11)
        vault = open_vault(home, store, passphrase, clock=lambda: T0 + 12)
        for name, value in SECRET_VALUES.items():
            vault.set(name, value)


@pytest.fixture(scope="module")
def encrypted_home(tmp_path_factory):
    """Built once (Argon2id is slow on purpose); tests only read it."""
    home = init_home(tmp_path_factory.mktemp("source") / "alice", PASSPHRASE, clock=lambda: T0)
    _populate(home, PASSPHRASE)
    return home


@pytest.fixture(scope="module")
def opened_doc(encrypted_home):
    """The home exported with its vault opened."""
    return export_home(encrypted_home, passphrase=PASSPHRASE, decrypt=True)


def test_the_document_is_open_json_with_every_table(encrypted_home):
    doc = export_home(encrypted_home, clock=lambda: T0 + 100)
    assert json.loads(json.dumps(doc)) == doc
    assert (doc["format"], doc["version"], doc["exported_at"]) == (FORMAT, 1, T0 + 100)
    assert doc["node"] == {
        "public_key": encrypted_home.public_key,
        "node_id": encrypted_home.node_id,
        "role": "person",
        "name": "",
        "handle": "",
        "created_at": T0,
    }
    records = doc["sections"]["records"]
    assert set(records) == set(RECORD_TABLES) and all(records[t] for t in RECORD_TABLES)
    assert records["notes"][0]["tags"] == ["flights", "service"]
    assert [r["would_recommend"] for r in records["recommendations"]] == [True, False]
    assert records["vendors"][1]["end_reason"] == "moved away"


def test_a_sealed_export_holds_no_secret(encrypted_home):
    doc = export_home(encrypted_home)
    vault = doc["sections"]["vault"]
    assert vault["encrypted"] and vault["kdf"]["kdf"] == "argon2id" and "wrapped" in vault["kdf"]
    assert [e["name"] for e in vault["entries"]] == sorted(SECRET_VALUES)
    text = dump_document(doc)
    seed = load_identity(encrypted_home.key_path, PASSPHRASE).seed()
    vault_key = derive_vault_key(encrypted_home.key_path, PASSPHRASE)
    for secret in [*SECRET_VALUES.values(), seed.hex(), PASSPHRASE, vault_key.hex()]:
        assert secret not in text
    opened = export_home(encrypted_home, passphrase=PASSPHRASE, decrypt=True)
    assert {e["name"]: e["value"] for e in opened["sections"]["vault"]["entries"]} == SECRET_VALUES
    assert seed.hex() not in dump_document(opened)  # the secret key never leaves the node
    with pytest.raises(PassphraseError):
        export_home(encrypted_home, decrypt=True)
    with pytest.raises(PassphraseError):
        export_home(encrypted_home, passphrase="wrong", decrypt=True)


def _comparable(doc):
    """The parts that must survive a round trip (identity and export time differ by design)."""
    return {"schema_version": doc["schema_version"], "role": doc["node"]["role"], "sections": doc["sections"]}


def test_round_trip_of_a_sealed_export_into_a_new_home(encrypted_home, opened_doc, tmp_path):
    original = opened_doc
    sealed = load_document(dump_document(export_home(encrypted_home)))  # through a file's worth of text
    result = import_home(
        sealed, tmp_path / "restored", passphrase="new passphrase", source_passphrase=PASSPHRASE
    )
    restored = load_home(tmp_path / "restored")
    assert result.home == restored and restored.encrypted
    assert result.counts["vendors"] == 2 and result.counts["vault"] == 2
    assert restored.node_id != encrypted_home.node_id  # a new identity: keys never travel
    assert restored.imported_from["node_id"] == encrypted_home.node_id
    again = export_home(restored, passphrase="new passphrase", decrypt=True)
    assert _comparable(again) == _comparable(original)
    # the restored home works: its search index and scorecards are rebuilt from the rows
    with open_store(restored) as store:
        assert [h.kind for h in search(store, "luggage")] == ["issue"]
        assert scorecard(store, "@acme-air").issues_resolved == 1
        with pytest.raises(PassphraseError):
            open_vault(restored, store, PASSPHRASE)  # sealed again under the new passphrase
        assert open_vault(restored, store, "new passphrase").get("email") == SECRET_VALUES["email"]


def test_round_trip_of_a_plain_home(tmp_path):
    home = init_home(tmp_path / "plain", None)
    _populate(home, None)
    original = export_home(home)
    assert original["sections"]["vault"]["encrypted"] is False
    import_home(original, tmp_path / "copy", passphrase=None)
    assert _comparable(export_home(tmp_path / "copy")) == _comparable(original)


def test_a_vendor_profile_survives_the_round_trip_and_old_exports_still_import(tmp_path):
    home = init_home(tmp_path / "acme", None, role="vendor", name="Acme Air", handle="acme-air")
    doc = export_home(home)
    restored = import_home(doc, tmp_path / "copy", passphrase=None).home
    assert (restored.role, restored.name, restored.handle) == ("vendor", "Acme Air", "acme-air")
    old = copy.deepcopy(doc)
    del old["node"]["name"], old["node"]["handle"]
    assert import_home(old, tmp_path / "old", passphrase=None).home.name == ""
    bad = copy.deepcopy(doc)
    bad["node"]["handle"] = 7
    with pytest.raises(ExchangeError):
        import_home(bad, tmp_path / "bad", passphrase=None)
    assert not (tmp_path / "bad").exists()


def test_import_refuses_a_target_that_is_not_new(encrypted_home, opened_doc, tmp_path):
    doc = opened_doc
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    with pytest.raises(ExchangeError):
        import_home(doc, tmp_path / "busy", passphrase=None)
    assert [p.name for p in (tmp_path / "busy").iterdir()] == ["keep.txt"]
    with pytest.raises(ExchangeError):
        import_home(doc, encrypted_home.path, passphrase=PASSPHRASE)
    (tmp_path / "empty").mkdir()
    import_home(doc, tmp_path / "empty", passphrase=None)  # an empty directory is fine
    assert load_home(tmp_path / "empty").encrypted is False


def test_a_sealed_vault_needs_its_passphrase_and_leaves_nothing_behind(encrypted_home, tmp_path):
    doc = export_home(encrypted_home)
    with pytest.raises(PassphraseError):
        import_home(doc, tmp_path / "new", passphrase="other", source_passphrase="wrong")
    with pytest.raises(ExchangeError):
        import_home(doc, tmp_path / "new", passphrase=None)  # no passphrase to open the vault with
    assert list(tmp_path.iterdir()) == []


def test_the_unbroken_document_imports(opened_doc, tmp_path):
    """The control for the broken documents below: each differs from this one in one place."""
    assert import_home(copy.deepcopy(opened_doc), tmp_path / "new", passphrase=None).counts["vault"] == 2


def _typo(text: str) -> str:
    return text[:-1] + ("q" if text[-1] != "q" else "p")


def _broken(doc, change):
    doc = copy.deepcopy(doc)
    change(doc)
    return doc


BROKEN = {
    "not an export": lambda d: d.update(format="something-else"),
    "future version": lambda d: d.update(version=2),
    "unknown section": lambda d: d["sections"].update(grants=[{"fields": ["email"]}]),
    "unknown top-level field": lambda d: d.update(extra=1),
    "newer schema": lambda d: d.update(schema_version=99),
    "unknown table": lambda d: d["sections"]["records"].update(offers=[]),
    "unknown column": lambda d: d["sections"]["records"]["vendors"][0].update(colour="blue"),
    "missing column": lambda d: d["sections"]["records"]["notes"][0].pop("text"),
    "dangling vendor": lambda d: d["sections"]["records"]["ratings"][0].update(vendor_id=99),
    "rating out of range": lambda d: d["sections"]["records"]["ratings"][0].update(stars=9),
    "unknown engagement": lambda d: d["sections"]["records"]["vendors"][0].update(engagement="fanatic"),
    "duplicate handle": lambda d: d["sections"]["records"]["vendors"][1].update(handle="@acme-air"),
    "bad handle": lambda d: d["sections"]["records"]["vendors"][0].update(handle="Acme Air"),
    "text time": lambda d: d["sections"]["records"]["issues"][0].update(opened_at="yesterday"),
    "missing id": lambda d: d["sections"]["records"]["notes"][0].update(id=None),
    "float price": lambda d: d["sections"]["records"]["purchases"][0].update(price_minor=389.0),
    "bad tag": lambda d: d["sections"]["records"]["notes"][0].update(tags=["two words"]),
    "number for a bool": lambda d: d["sections"]["records"]["recommendations"][0].update(would_recommend=1),
    "bad vault name": lambda d: d["sections"]["vault"]["entries"][0].update(name="Email"),
    "duplicate vault name": lambda d: d["sections"]["vault"]["entries"].append(
        d["sections"]["vault"]["entries"][0]
    ),
    "vault value not text": lambda d: d["sections"]["vault"]["entries"][0].update(value=5),
    "public key of another node": lambda d: d["node"].update(public_key="00" * 32),
    "huge time": lambda d: d["sections"]["records"]["ratings"][0].update(at=2**64),
    "bad node id": lambda d: d["node"].update(node_id=_typo(d["node"]["node_id"])),
}


@pytest.mark.parametrize("change", BROKEN.values(), ids=BROKEN.keys())
def test_a_broken_document_is_refused_and_creates_nothing(opened_doc, tmp_path, change):
    with pytest.raises(ExchangeError):
        import_home(_broken(opened_doc, change), tmp_path / "new", passphrase=None)
    assert not (tmp_path / "new").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no half-built staging home


def test_a_tampered_sealed_value_is_refused(encrypted_home, tmp_path):
    doc = export_home(encrypted_home)
    entry = doc["sections"]["vault"]["entries"][0]
    entry["ciphertext"] = ("1" if entry["ciphertext"][0] != "1" else "2") + entry["ciphertext"][1:]
    with pytest.raises(ExchangeError):
        import_home(doc, tmp_path / "new", passphrase=PASSPHRASE)
    assert not (tmp_path / "new").exists()


def test_write_export_is_private_and_never_overwrites(encrypted_home, tmp_path):
    doc = export_home(encrypted_home)
    path = tmp_path / "export.json"
    write_export(path, doc)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_document(path.read_bytes()) == doc
    with pytest.raises(ExchangeError):
        write_export(path, {"format": FORMAT})
    assert load_document(path.read_text()) == doc
    for bad in (b"{not json", b"[1, 2]", b"\xff\xfe"):
        with pytest.raises(ExchangeError):
            load_document(bad)
