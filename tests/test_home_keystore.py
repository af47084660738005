"""The node home and its key file: init never overwrites, secrets are encrypted at rest."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from node.errors import HomeError, IdentityError, PassphraseError, ValidationError
from node.home import (
    CONFIG_FILE,
    DB_FILE,
    KEY_FILE,
    init_home,
    is_home,
    load_home,
    open_store,
    open_vault,
    resolve_home,
    set_profile,
)
from node.keystore import (
    Argon2Params,
    change_passphrase,
    derive_vault_key,
    load_identity,
    needs_upgrade,
    read_public,
    write_new_file,
)
from node.nodeid import decode_node_id
from node.records import Records

PASSPHRASE = "correct horse battery staple"


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


# -- where the home is -------------------------------------------------------------------------------


def test_resolve_home_prefers_explicit_then_env_then_platform_dir(tmp_path):
    env = {"VRM_HOME": str(tmp_path / "from-env")}
    assert resolve_home(tmp_path / "explicit", environ=env) == tmp_path / "explicit"
    assert resolve_home(None, environ=env) == tmp_path / "from-env"
    default = resolve_home(None, environ={})
    assert default.name == "vrm-node" and default.is_absolute()


# -- init --------------------------------------------------------------------------------------------


def test_init_creates_a_private_home_with_an_identity(tmp_path):
    home = tmp_path / "alice"
    info = init_home(home, None, clock=lambda: 1_700_000_000_000)
    assert sorted(p.name for p in home.iterdir() if not p.name.startswith(DB_FILE)) == sorted(
        [KEY_FILE, CONFIG_FILE]
    )
    assert (home / DB_FILE).exists()
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / KEY_FILE).stat().st_mode) == 0o600
    assert info.role == "person" and info.encrypted is False and info.created_at == 1_700_000_000_000
    assert decode_node_id(info.node_id).hex() == info.public_key
    assert load_home(home) == info
    config = json.loads((home / CONFIG_FILE).read_text())
    assert config["role"] == "person" and config["schema_version"] == info.schema_version >= 1
    identity = load_identity(info.key_path, None)
    assert identity.public_key.hex() == info.public_key


def test_init_twice_never_overwrites(tmp_path):
    home = tmp_path / "alice"
    first = init_home(home, PASSPHRASE)
    before = _snapshot(home)
    for passphrase in (PASSPHRASE, None, "another"):
        with pytest.raises(HomeError):
            init_home(home, passphrase)
    assert _snapshot(home) == before
    assert load_home(home).node_id == first.node_id


def test_init_refuses_a_non_empty_directory_or_a_file(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "thesis.txt").write_text("precious")
    with pytest.raises(HomeError):
        init_home(tmp_path / "docs", None)
    assert [p.name for p in (tmp_path / "docs").iterdir()] == ["thesis.txt"]
    (tmp_path / "plain-file").write_text("x")
    with pytest.raises(HomeError):
        init_home(tmp_path / "plain-file", None)


def test_init_into_an_existing_empty_directory_works(tmp_path):
    (tmp_path / "empty").mkdir()
    assert init_home(tmp_path / "empty", None).path == str(tmp_path / "empty")


def test_empty_passphrase_and_unknown_role_are_refused_before_anything_is_created(tmp_path):
    with pytest.raises(PassphraseError):
        init_home(tmp_path / "a", "")
    with pytest.raises(HomeError):
        init_home(tmp_path / "b", None, role="admin")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_an_interrupted_init_is_reported_and_not_initialised_over(tmp_path):
    home = tmp_path / "alice"
    init_home(home, None)
    (home / CONFIG_FILE).unlink()  # as if init died before writing its last file
    with pytest.raises(HomeError, match="incomplete"):
        load_home(home)
    assert not is_home(home)
    with pytest.raises(HomeError):
        init_home(home, None)


# -- the name and handle a node shows its peers ---------------------------------------------------------


def test_a_vendor_home_keeps_its_name_and_handle(tmp_path):
    info = init_home(tmp_path / "shop", None, role="vendor", name="  Acme Air ", handle="@Acme-Air")
    assert (info.role, info.name, info.handle) == ("vendor", "Acme Air", "acme-air")
    config = json.loads((tmp_path / "shop" / CONFIG_FILE).read_text())
    assert (config["name"], config["handle"]) == ("Acme Air", "acme-air")
    assert load_home(tmp_path / "shop") == info


def test_a_home_written_before_names_existed_loads_with_empty_ones(tmp_path):
    home = tmp_path / "old"
    init_home(home, None)
    config = json.loads((home / CONFIG_FILE).read_text())
    assert "name" not in config and "handle" not in config  # a person gave none: nothing written
    (home / CONFIG_FILE).write_text(json.dumps({**config, "name": 7}))  # a hand edit gone wrong
    info = load_home(home)
    assert (info.name, info.handle) == ("", "")


@pytest.mark.parametrize(
    ("name", "handle", "field"),
    [("x" * 201, "", "name"), ("two\nlines", "", "name"), ("Acme", "acme air", "handle"),
     ("Acme", "-acme", "handle"), ("Acme", "a" * 64, "handle")],
)  # fmt: skip
def test_a_bad_name_or_handle_is_refused_before_anything_is_created(tmp_path, name, handle, field):
    with pytest.raises(ValidationError) as caught:
        init_home(tmp_path / "shop", None, role="vendor", name=name, handle=handle)
    assert caught.value.field == field and not (tmp_path / "shop").exists()


def test_set_profile_changes_clears_and_keeps(tmp_path):
    home = tmp_path / "shop"
    init_home(home, None, role="vendor", name="Acme Air", handle="acme-air")
    before = _snapshot(home)[KEY_FILE]
    info = set_profile(home, handle="acme")
    assert (info.name, info.handle) == ("Acme Air", "acme")
    info = set_profile(home, name="")
    assert (info.name, info.handle) == ("", "acme")
    assert "name" not in json.loads((home / CONFIG_FILE).read_text())
    with pytest.raises(ValidationError):
        set_profile(home, handle="no spaces")
    assert load_home(home).handle == "acme" and _snapshot(home)[KEY_FILE] == before
    assert stat.S_IMODE((home / CONFIG_FILE).stat().st_mode) == 0o600
    assert not [p for p in home.iterdir() if p.name.endswith(".tmp")]


def test_load_home_of_a_directory_that_is_not_one(tmp_path):
    with pytest.raises(HomeError):
        load_home(tmp_path)


def test_write_new_file_never_replaces_and_leaves_no_temporary_files(tmp_path):
    target = tmp_path / "f.json"
    write_new_file(target, b"first")
    with pytest.raises(HomeError):
        write_new_file(target, b"second")
    assert target.read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


# -- passphrases -------------------------------------------------------------------------------------


def test_encrypted_key_loads_only_with_the_right_passphrase(tmp_path):
    info = init_home(tmp_path / "alice", PASSPHRASE)
    assert info.encrypted
    before = _snapshot(tmp_path / "alice")
    for wrong in ("Correct horse battery staple", "correct horse battery stapl", "x"):
        with pytest.raises(PassphraseError):
            load_identity(info.key_path, wrong)
    with pytest.raises(PassphraseError, match="needed"):
        load_identity(info.key_path, None)
    assert _snapshot(tmp_path / "alice") == before  # a wrong passphrase changes nothing

    identity = load_identity(info.key_path, PASSPHRASE)
    assert identity.public_key.hex() == info.public_key
    signature = identity.sign(b"hello")
    Ed25519PublicKey.from_public_bytes(identity.public_key).verify(signature, b"hello")


def test_the_passphrase_is_unicode_normalised(tmp_path):
    info = init_home(tmp_path / "h", "caf\u00e9")  # é precomposed
    assert (
        load_identity(info.key_path, "cafe\u0301").public_key.hex() == info.public_key
    )  # e + combining accent


def test_wrong_passphrase_for_the_vault(tmp_path):
    info = init_home(tmp_path / "alice", PASSPHRASE)
    with open_store(info) as store:
        with pytest.raises(PassphraseError):
            open_vault(info, store, "wrong")
        with pytest.raises(PassphraseError):
            open_vault(info, store, None)
        assert open_vault(info, store, PASSPHRASE).encrypted
    assert len(derive_vault_key(info.key_path, PASSPHRASE)) == 32


def test_a_tampered_key_file_is_refused(tmp_path):
    info = init_home(tmp_path / "alice", PASSPHRASE)
    doc = json.loads(info.key_path.read_text())

    def rewrite(**changes):
        info.key_path.write_text(json.dumps({**doc, **changes}))

    other = init_home(tmp_path / "bob", None)
    rewrite(public_key=other.public_key, node_id=other.node_id)  # someone swaps in another public key
    with pytest.raises(PassphraseError):  # the public key is the AAD: the seed no longer opens
        load_identity(info.key_path, PASSPHRASE)

    secret = bytearray(bytes.fromhex(doc["secret"]))
    secret[0] ^= 1
    rewrite(secret=secret.hex())
    with pytest.raises(PassphraseError):
        load_identity(info.key_path, PASSPHRASE)

    rewrite(node_id=other.node_id)  # node id that does not match the key
    with pytest.raises(IdentityError):
        read_public(info.key_path)

    for absurd in ({"m": 2**40}, {"t": 10**6}, {"p": 0}, {"m": True}, {"kdf": "md5"}):  # absurd work or none
        rewrite(encryption={**doc["encryption"], **absurd})
        with pytest.raises(IdentityError):
            load_identity(info.key_path, PASSPHRASE)

    info.key_path.write_text("{not json")
    with pytest.raises(IdentityError):
        load_identity(info.key_path, PASSPHRASE)


def test_a_plain_key_whose_seed_does_not_match_is_refused(tmp_path):
    info = init_home(tmp_path / "alice", None)
    doc = json.loads(info.key_path.read_text())
    info.key_path.write_text(json.dumps({**doc, "secret": "11" * 32}))
    with pytest.raises(IdentityError):
        load_identity(info.key_path, None)


# -- nothing secret on disk ----------------------------------------------------------------------------


def test_no_plaintext_secret_anywhere_in_the_home(tmp_path):
    """The seed, the vault values and the passphrase must not appear in any file of an encrypted home,
    including the SQLite write-ahead log while the store is open."""
    home = tmp_path / "alice"
    info = init_home(home, PASSPHRASE)
    seed = load_identity(info.key_path, PASSPHRASE).seed()
    values = {
        "email": "alice.secret@example.org",
        "shipping_address": "221B Baker Street, London NW1 6XE",
        "sizes": "shoe EU 38; dress 36",
    }
    needles = [seed, seed.hex().encode(), seed.hex().upper().encode(), PASSPHRASE.encode()]
    needles += [v.encode("utf-8") for v in values.values()]
    needles += [v.encode("utf-16-le") for v in values.values()]

    def assert_clean() -> int:
        scanned = 0
        for path in home.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                scanned += 1
                for needle in needles:
                    assert needle not in data, f"{path.name} holds a plaintext secret"
        return scanned

    store = open_store(info)
    vault = open_vault(info, store, PASSPHRASE)
    for name, value in values.items():
        vault.set(name, value)
    vault.set("email", values["email"])  # an update writes a fresh ciphertext
    Records(store).add_vendor("Acme Air")
    assert (home / (DB_FILE + "-wal")).exists()
    assert assert_clean() >= 4  # key file, config, node.db, node.db-wal (and -shm)
    assert vault.get("shipping_address") == values["shipping_address"]
    store.close()
    assert_clean()
    # The scan can fail: the same home without a passphrase does hold the values in the clear.
    plain = init_home(tmp_path / "plain", None)
    with open_store(plain) as store:
        open_vault(plain, store, None).set("email", values["email"])
    assert any(
        values["email"].encode() in p.read_bytes() for p in (tmp_path / "plain").rglob("*") if p.is_file()
    )


def test_key_file_permissions_survive_a_permissive_umask(tmp_path):
    old = os.umask(0)
    try:
        info = init_home(tmp_path / "alice", None)
    finally:
        os.umask(old)
    assert stat.S_IMODE(info.key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(info.config_path.stat().st_mode) == 0o600


# -- a failed init leaves no half-made home (issue 10, item 9) ---------------------------------------


@pytest.mark.parametrize("existing", [False, True])
def test_an_init_whose_store_cannot_be_opened_leaves_nothing(tmp_path, monkeypatch, existing):
    import node.home as home_module
    from node.errors import StoreError

    target = tmp_path / "home"
    if existing:
        target.mkdir()

    def broken_store(*args, **kwargs):
        raise StoreError("disk I/O error")

    monkeypatch.setattr(home_module, "Store", broken_store)
    with pytest.raises(StoreError):
        home_module.init_home(target, None)
    assert sorted(p.name for p in tmp_path.iterdir()) == (["home"] if existing else [])
    if existing:
        assert list(target.iterdir()) == []
    monkeypatch.undo()
    info = home_module.init_home(target, None)  # and the same path works once the store opens
    assert home_module.load_home(target) == info
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]


# -- key derivation: argon2id, the upgrade of scrypt key files, changing the passphrase ----------------

CHEAP = Argon2Params(t=1, m=64, p=1)  # tests only: the same code path at a fraction of the cost


def test_a_new_key_file_uses_argon2id_with_owasp_parameters(tmp_path):
    info = init_home(tmp_path / "alice", PASSPHRASE)
    doc = json.loads(info.key_path.read_text())
    assert doc["version"] == 2
    for section in (doc["encryption"], doc["vault"]):
        assert {k: section[k] for k in ("kdf", "t", "m", "p")} == {"kdf": "argon2id", "t": 2, "m": 19456, "p": 1}
    assert doc["encryption"]["salt"] != doc["vault"]["salt"]
    assert not needs_upgrade(info.key_path)


def _write_v1_key_file(path: Path, seed: bytes, passphrase: str) -> bytes:
    """A version 1 key file as the previous release wrote it (scrypt, a derived vault key), built here
    from pyca/cryptography alone; N=2^10 keeps it quick. Returns the vault key it implies."""
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    from node.identity import Identity
    from node.nodeid import encode_node_id

    public_key = Identity.from_seed(seed).public_key
    salt, nonce, vault_salt, check_nonce = (bytes([i]) * n for i, n in ((1, 16), (2, 12), (3, 16), (4, 12)))

    def scrypt(s: bytes) -> bytes:
        return Scrypt(salt=s, length=32, n=2**10, r=8, p=1).derive(passphrase.encode())

    vault_key = scrypt(vault_salt)
    params = {"kdf": "scrypt", "n": 2**10, "r": 8, "p": 1}
    doc = {
        "version": 1,
        "public_key": public_key.hex(),
        "node_id": encode_node_id(public_key),
        "encryption": {**params, "salt": salt.hex(), "aead": "chacha20poly1305", "nonce": nonce.hex()},
        "secret": ChaCha20Poly1305(scrypt(salt)).encrypt(nonce, seed, public_key).hex(),
        "vault": {**params, "salt": vault_salt.hex(), "check_nonce": check_nonce.hex(),
                  "check": ChaCha20Poly1305(vault_key).encrypt(check_nonce, b"", b"vrm-vault-check-v1").hex()},
    }  # fmt: skip
    path.write_text(json.dumps(doc))
    return vault_key


def test_a_scrypt_key_file_is_upgraded_on_its_next_unlock(tmp_path):
    info = init_home(tmp_path / "alice", PASSPHRASE, kdf=CHEAP)
    seed = bytes(range(32))
    info.key_path.unlink()
    old_vault_key = _write_v1_key_file(info.key_path, seed, PASSPHRASE)
    with open_store(info) as store:
        from node.vault import Vault

        Vault(store, old_vault_key).set("email", "alice@example.org")  # written by the old release
    assert needs_upgrade(info.key_path)
    assert derive_vault_key(info.key_path, PASSPHRASE) == old_vault_key  # readable before the upgrade
    with pytest.raises(PassphraseError):
        load_identity(info.key_path, "wrong")
    assert needs_upgrade(info.key_path)  # a failed unlock rewrites nothing

    identity = load_identity(info.key_path, PASSPHRASE, upgrade_kdf=CHEAP)
    assert identity.seed() == seed
    doc = json.loads(info.key_path.read_text())
    assert doc["version"] == 2 and doc["encryption"]["kdf"] == doc["vault"]["kdf"] == "argon2id"
    assert (doc["encryption"]["t"], doc["encryption"]["m"]) == (CHEAP.t, CHEAP.m)
    assert not needs_upgrade(info.key_path)
    assert stat.S_IMODE(info.key_path.stat().st_mode) == 0o600
    assert [p.name for p in info.key_path.parent.iterdir() if p.name.endswith(".tmp")] == []
    # the same identity and the same vault key: the old vault values open with the passphrase
    assert load_identity(info.key_path, PASSPHRASE).seed() == seed
    assert derive_vault_key(info.key_path, PASSPHRASE) == old_vault_key
    with open_store(info) as store:
        assert open_vault(info, store, PASSPHRASE).get("email") == "alice@example.org"


def test_changing_the_passphrase_keeps_the_identity_and_the_vault(tmp_path):
    info = init_home(tmp_path / "alice", PASSPHRASE, kdf=CHEAP)
    with open_store(info) as store:
        open_vault(info, store, PASSPHRASE).set("email", "alice@example.org")
    before = info.key_path.read_bytes()
    with pytest.raises(PassphraseError):
        change_passphrase(info.key_path, "wrong", "new one", kdf=CHEAP)
    with pytest.raises(PassphraseError):
        change_passphrase(info.key_path, PASSPHRASE, "", kdf=CHEAP)
    assert info.key_path.read_bytes() == before  # refused: nothing changed

    changed = change_passphrase(info.key_path, PASSPHRASE, "a new passphrase", kdf=CHEAP)
    assert changed.node_id == info.node_id
    with pytest.raises(PassphraseError):
        load_identity(info.key_path, PASSPHRASE)
    assert load_identity(info.key_path, "a new passphrase").public_key.hex() == info.public_key
    with open_store(info) as store:
        with pytest.raises(PassphraseError):
            open_vault(info, store, PASSPHRASE)
        assert open_vault(info, store, "a new passphrase").get("email") == "alice@example.org"


def test_a_home_without_a_passphrase_has_none_to_change(tmp_path):
    info = init_home(tmp_path / "plain", None)
    before = info.key_path.read_bytes()
    with pytest.raises(PassphraseError, match="no passphrase"):
        change_passphrase(info.key_path, "x", "y", kdf=CHEAP)
    assert info.key_path.read_bytes() == before
