"""The `vrm` CLI driven in-process: the vault's "never print a secret" rule, export / import (with and
without the identity) and changing the passphrase (fixtures and homes in tests/test_cli.py)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from cli.main import app
from tests.test_cli import (  # noqa: F401 (the fixtures are used by name)
    ADDRESS,
    EMAIL,
    PASSPHRASE,
    Vrm,
    add_vendors,
    plain,
    templates,
    vrm,
)


# -- vault ----------------------------------------------------------------------------------------


def test_vault_never_prints_a_value_unless_asked_by_name(vrm):
    vrm("vault", "set", "email", EMAIL)
    vrm("vault", "set", "shipping_address", "-", input=ADDRESS)
    shown = [
        vrm("vault", "list").stdout,
        vrm("vault", "list", "--json").stdout,
        vrm("id").stdout,
        vrm("id", "--json").stdout,
        vrm("vault", "set", "email", EMAIL).stdout,
    ]
    seed_hex = json.loads((vrm.home / "identity.json").read_text())["secret"]
    for text in shown:
        assert EMAIL not in text and ADDRESS not in text and seed_hex not in text
    assert vrm("vault", "get", "email").stdout == EMAIL + "\n"
    assert vrm("vault", "get", "shipping_address").stdout == ADDRESS + "\n"
    assert vrm("vault", "get", "shipping_address").stderr == ""


def test_vault_on_disk_holds_no_plaintext(vrm):
    vrm("vault", "set", "email", EMAIL)
    for path in vrm.home.iterdir():
        assert EMAIL.encode() not in path.read_bytes(), path.name


def test_vault_delete_and_errors(vrm):
    vrm("vault", "set", "sizes", "shoe 42, shirt M")
    vrm("vault", "delete", "sizes", passphrase=None)  # deleting reads no value: no passphrase
    vrm("vault", "get", "sizes", code=3)
    vrm("vault", "delete", "sizes", code=3)
    vrm("vault", "set", "Bad Name", "x", code=6)
    vrm("vault", "set", "name", code=2)  # no value, no terminal to ask on


def test_plain_vault_warns(plain):
    result = plain("vault", "set", "name", "Alice")
    assert "unencrypted" in result.stderr
    assert plain("vault", "get", "name").stdout == "Alice\n"
    assert plain.json("vault", "list")[0]["encrypted"] is False


# -- export / import ------------------------------------------------------------------------------


def test_export_import_round_trip(vrm, tmp_path):
    add_vendors(vrm)
    vrm("issues", "open", "acme-air", "Late bag")
    vrm("vault", "set", "email", EMAIL)
    intent = vrm.json("intent", "?flight to:JFK")
    export = tmp_path / "alice.json"
    assert "3 vendors" in vrm("export", str(export)).stdout
    assert EMAIL not in export.read_text()  # sealed unless --decrypt
    before = export.read_bytes()
    vrm("export", str(export), code=4)
    assert export.read_bytes() == before
    vrm("export", str(tmp_path / "missing" / "x.json"), code=3)

    new_home = tmp_path / "restored"
    result = vrm("import", str(export), "--home", str(new_home))
    assert "3 vendors" in result.stdout
    restored = Vrm(new_home)
    assert [v["handle"] for v in restored.json("vendors", "list")] == ["@acme-air", "@blue-bikes", "@cafe"]
    assert restored.json("issues", "list")[0]["title"] == "Late bag"
    assert restored("vault", "get", "email").stdout == EMAIL + "\n"
    assert restored.json("id")["imported_from"]["node_id"] == vrm.json("id")["node_id"]
    [copy] = restored.json("intents", "list")
    assert (copy["id"], copy["raw"]) == (intent["id"], intent["raw"])
    restored("intents", "withdraw", intent["id"], code=4)  # signed by the old key, which stayed behind
    vrm("import", str(export), "--home", str(new_home), code=4)

    clear = tmp_path / "clear.json"
    assert "in the clear" in vrm("export", str(clear), "--decrypt").stderr
    assert EMAIL in clear.read_text()
    vrm("export", str(tmp_path / "never.json"), "--decrypt", passphrase="wrong", code=5)
    assert not (tmp_path / "never.json").exists()


def test_export_with_the_identity_imports_as_the_same_node(vrm, plain, tmp_path):
    vrm("vault", "set", "email", EMAIL)
    intent = vrm.json("intent", "?flight to:JFK")
    export = tmp_path / "moving.json"
    assert "identity backup" in vrm("export", str(export), "--identity").stdout
    text = export.read_text()
    assert EMAIL not in text and PASSPHRASE not in text
    result = vrm("import", str(export), "--home", str(tmp_path / "pi"))
    assert "the same node" in result.stdout
    moved = Vrm(tmp_path / "pi")
    assert moved.json("id")["node_id"] == vrm.json("id")["node_id"]
    assert moved("vault", "get", "email").stdout == EMAIL + "\n"
    moved("intents", "withdraw", intent["id"])  # its own key now: the intent can be withdrawn

    # a node without a passphrase seals its backup under $VRM_BACKUP_PASSPHRASE (else refuses)
    plain("export", str(tmp_path / "refused.json"), "--identity", code=5)
    assert not (tmp_path / "refused.json").exists()
    env = {"VRM_HOME": str(plain.home), "VRM_BACKUP_PASSPHRASE": "backup words"}
    done = CliRunner().invoke(app, ["export", str(tmp_path / "plain.json"), "--identity"], env=env)
    assert done.exit_code == 0, done.stdout
    env = {"VRM_HOME": str(tmp_path / "plain-moved"), "VRM_PASSPHRASE": None, "VRM_SOURCE_PASSPHRASE": "backup words"}
    done = CliRunner().invoke(app, ["import", str(tmp_path / "plain.json"), "--no-passphrase"], env=env)
    assert done.exit_code == 0, done.stdout
    assert Vrm(tmp_path / "plain-moved", passphrase=None).json("id")["node_id"] == plain.json("id")["node_id"]


def test_passphrase_change(vrm, plain):
    """`vrm passphrase change`: the old passphrase opens nothing afterwards, the new one opens the same
    identity and the same vault values; refusals change nothing."""
    vrm("vault", "set", "email", EMAIL)
    node_id = vrm.json("id")["node_id"]
    key_file = vrm.home / "identity.json"
    before = key_file.read_bytes()

    def change(passphrase: str, new: str | None) -> object:
        env = {"VRM_HOME": str(vrm.home), "VRM_PASSPHRASE": passphrase, "VRM_NEW_PASSPHRASE": new}
        return CliRunner().invoke(app, ["passphrase", "change", "--json"], env=env)

    assert change("wrong", "a new passphrase").exit_code == 5
    assert change(PASSPHRASE, None).exit_code == 5  # no new one given, and no terminal to ask on
    assert change(PASSPHRASE, PASSPHRASE).exit_code == 5
    assert key_file.read_bytes() == before

    result = change(PASSPHRASE, "a new passphrase")
    assert result.exit_code == 0, result.stdout
    assert json.loads(result.stdout) == {"node_id": node_id, "changed": True, "kdf": "argon2id"}
    vrm("vault", "get", "email", code=5)  # the old passphrase no longer opens the vault
    renewed = Vrm(vrm.home, passphrase="a new passphrase")
    assert renewed("vault", "get", "email").stdout == EMAIL + "\n"
    assert renewed.json("id")["node_id"] == node_id
    assert json.loads(key_file.read_text())["encryption"]["kdf"] == "argon2id"

    plain("passphrase", "change", code=5)  # nothing to change on a home without a passphrase
