"""Vendor-held data encrypted at rest (issue 10, item 6): a vendor node with a passphrase fetches
granted fields from a real person's node on loopback; none of the values appears in its node.db,
node.db-wal or node.db-shm bytes, while it holds them nor after the grant ends (revoked: deleted)."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from node.errors import PassphraseError
from node.grants import Grants
from node.home import init_home
from node.keystore import derive_vault_key, load_identity
from tests.fednet import FAST, FedNet, Node, eventually
from tests.test_access import VAULT, given_grant, person

PASSPHRASE = "acme vendor passphrase"


@pytest.fixture
async def net(nursery, tmp_path):
    yield FedNet(nursery, tmp_path)


def plaintext_found(home_path) -> dict[str, int]:
    """How many times each granted value occurs in the store's files, as bytes."""
    found = {}
    home_path = Path(home_path)
    for suffix in ("", "-wal", "-shm"):
        path = home_path / f"node.db{suffix}"
        data = path.read_bytes() if path.exists() else b""
        for name, value in VAULT.items():
            found[f"{name}{suffix}"] = data.count(value.encode("utf-8"))
    return found


async def test_a_vendor_with_a_passphrase_keeps_no_granted_value_in_plaintext(net, tmp_path):
    with trio.fail_after(60):
        alice = await person(net)
        home = init_home(tmp_path / "acme", PASSPHRASE, "vendor", name="Acme", handle="acme")
        key = derive_vault_key(home.key_path, PASSPHRASE)
        acme = Node("acme", home, load_identity(home.key_path, PASSPHRASE), {**FAST, "vault_key": key})
        net.nodes["acme"] = acme
        await net.start(acme)
        await net.peer(alice, acme)
        grant = await given_grant(alice, acme, list(VAULT), uses=5)
        fetched = await acme.op("access.fetch", {"grant": grant.id, "fields": None})
        assert fetched["values"] == VAULT
        assert await acme.read(lambda s: Grants(s, held_key=key).held(grant.id)) == VAULT  # it opens
        with pytest.raises(PassphraseError):  # and only with the key
            await acme.read(lambda s: Grants(s).held(grant.id))
        assert sum(plaintext_found(home.path).values()) == 0, plaintext_found(home.path)

        await alice.op("grants.revoke", {"ref": grant.id})
        await eventually(lambda: acme.read(lambda s: Grants(s).get(grant.id).status == "ended"))
        assert await acme.read(lambda s: Grants(s).held_names(grant.id)) == []
        assert sum(plaintext_found(home.path).values()) == 0, plaintext_found(home.path)
        await net.stop(acme)
        assert sum(plaintext_found(home.path).values()) == 0, plaintext_found(home.path)
