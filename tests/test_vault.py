"""The personal data vault: named fields, sealed per field when the home has a passphrase."""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from node.errors import NotFoundError, PassphraseError, ValidationError, VaultError
from node.home import init_home, load_home, open_store, open_vault
from node.keystore import derive_vault_key
from node.vault import MAX_VALUE_BYTES, Vault

PASSPHRASE = "vault passphrase"
ADDRESS = "221B Baker Street, London NW1 6XE"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000

    def __call__(self) -> int:
        self.now += 1
        return self.now


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    """An empty plain home and an empty encrypted one with its vault key, made once (Argon2id is slow on purpose)."""
    root = tmp_path_factory.mktemp("templates")
    plain = init_home(root / "plain", None)
    encrypted = init_home(root / "encrypted", PASSPHRASE)
    return {
        "plain": (plain, None),
        "encrypted": (encrypted, derive_vault_key(encrypted.key_path, PASSPHRASE)),
    }


@pytest.fixture(params=["plain", "encrypted"])
def home_and_key(request, templates, tmp_path):
    template, key = templates[request.param]
    shutil.copytree(template.path, tmp_path / "home")
    return load_home(tmp_path / "home"), key


@pytest.fixture
def home(home_and_key):
    return home_and_key[0]


@pytest.fixture
def store(home):
    with open_store(home) as s:
        yield s


@pytest.fixture
def vault(home_and_key, store):
    return Vault(store, home_and_key[1], clock=Clock())


def test_set_get_list_delete(vault):
    vault.set("shipping_address", ADDRESS)
    vault.set("email", "alice@example.org")
    vault.set("sizes", "shoe EU 38")
    assert vault.get("shipping_address") == ADDRESS
    listed = vault.list()
    assert [e.name for e in listed] == ["email", "shipping_address", "sizes"]
    assert all(e.encrypted == vault.encrypted for e in listed)
    for entry in listed:  # list never carries a value
        assert "value" not in dataclasses.asdict(entry)
        assert ADDRESS not in repr(entry)
    vault.delete("email")
    assert [e.name for e in vault.list()] == ["shipping_address", "sizes"]
    with pytest.raises(NotFoundError):
        vault.get("email")
    with pytest.raises(NotFoundError):
        vault.delete("email")


def test_update_keeps_created_and_moves_updated(vault):
    first = vault.set("email", "old@example.org")
    second = vault.set("email", "new@example.org")
    assert second.created_at == first.created_at and second.updated_at > first.updated_at
    assert vault.get("email") == "new@example.org"


def test_unicode_and_long_values(vault):
    vault.set("name", "Zoë Ångström 山田")
    assert vault.get("name") == "Zoë Ångström 山田"
    vault.set("preferences", "x" * MAX_VALUE_BYTES)
    with pytest.raises(ValidationError):
        vault.set("preferences", "x" * (MAX_VALUE_BYTES + 1))
    assert vault.get("preferences") == "x" * MAX_VALUE_BYTES


@pytest.mark.parametrize("name", ["", "Email", "shipping address", "../etc", "_x", "é", "a" * 65, None, 3])
def test_bad_field_names_are_refused_and_nothing_is_written(vault, store, name):
    with pytest.raises(ValidationError) as info:
        vault.set(name, "value")
    assert info.value.field == "name"
    assert store.count("vault") == 0


def test_non_text_values_are_refused(vault, store):
    with pytest.raises(ValidationError):
        vault.set("sizes", 38)
    assert store.count("vault") == 0


def test_values_are_ciphertext_in_the_database_when_encrypted(home, store, vault):
    vault.set("shipping_address", ADDRESS)
    [row] = store.query("SELECT scheme, nonce, value FROM vault")
    if home.encrypted:
        assert row["scheme"] == "chacha20poly1305" and len(row["nonce"]) == 12
        assert ADDRESS.encode() not in row["value"]
    else:
        assert row["scheme"] == "plain" and bytes(row["value"]) == ADDRESS.encode()


def test_a_ciphertext_moved_to_another_field_does_not_open(tmp_path):
    home = init_home(tmp_path / "h", PASSPHRASE)
    with open_store(home) as store:
        vault = open_vault(home, store, PASSPHRASE)
        vault.set("email", "alice@example.org")
        vault.set("shipping_address", ADDRESS)
        with store.transaction():  # an attacker with write access swaps the two ciphertexts
            store.execute(
                "UPDATE vault SET value = (SELECT value FROM vault WHERE name = 'shipping_address'), "
                "nonce = (SELECT nonce FROM vault WHERE name = 'shipping_address') WHERE name = 'email'"
            )
        with pytest.raises(VaultError):
            vault.get("email")
        with store.transaction():  # or flips one bit
            row = store.query_one("SELECT value FROM vault WHERE name = 'shipping_address'")
            flipped = bytearray(row["value"])
            flipped[0] ^= 1
            store.execute("UPDATE vault SET value = ? WHERE name = 'shipping_address'", [bytes(flipped)])
        with pytest.raises(VaultError):
            vault.get("shipping_address")


def test_an_encrypted_vault_without_its_key(tmp_path):
    home = init_home(tmp_path / "h", PASSPHRASE)
    with open_store(home) as store:
        open_vault(home, store, PASSPHRASE).set("email", "alice@example.org")
        keyless = Vault(store, None)
        assert [e.name for e in keyless.list()] == ["email"]  # names are not secret
        with pytest.raises(PassphraseError):
            keyless.get("email")
        with pytest.raises(VaultError):
            keyless.set("sizes", "38")  # would store a plain value beside sealed ones
        assert [e.name for e in keyless.list()] == ["email"]
        with pytest.raises(VaultError):
            Vault(store, bytes(32)).get("email")  # some other key
        with pytest.raises(PassphraseError):
            open_vault(home, store, "wrong passphrase")
