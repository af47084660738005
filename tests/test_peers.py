"""Peers: pinned by key, added by the operator or announced by themselves, contact and cursors."""

from __future__ import annotations

import pytest

from node.errors import ConflictError, NotFoundError, ValidationError
from node.identity import Identity
from node.nodeid import encode_node_id
from node.peers import CLAIM_RETRY_MS, Peer, Peers, check_url
from tests.helpers import Clock
from tests.conftest import vendor_engines

T0 = 1_700_000_000_000
A = Identity.from_seed(bytes([1]) * 32).public_key
B = Identity.from_seed(bytes([2]) * 32).public_key
C = Identity.from_seed(bytes([3]) * 32).public_key


@pytest.fixture
def store(vendor_store):
    """The store a vendor's node uses: SQLite, and PostgreSQL too for tests marked ``@vendor_engines``."""
    return vendor_store


@pytest.fixture
def clock():
    return Clock(T0)


@pytest.fixture
def peers(store, clock):
    return Peers(store, clock=clock)


@vendor_engines
def test_add_pins_a_peer(peers):
    peer = peers.add(public_key=A, url="HTTP://Node.Example:8470/", role="vendor", name=" Acme Air ")
    assert peer == Peer(
        id=peer.id,
        public_key=A.hex(),
        node_id=encode_node_id(A),
        url="http://node.example:8470",
        role="vendor",
        name="Acme Air",
        source="added",
        added_at=T0,
        last_contact_at=None,
        last_error=None,
        failures=0,
        pull_cursor=0,
        inbox_cursor=0,
    )
    assert peer.to_json()["node_id"] == encode_node_id(A)
    assert peer.to_json()["url"] == "http://node.example:8470"
    with pytest.raises(ConflictError):
        peers.add(public_key=A, url="http://other:1", role="relay", name="")
    assert peers.list() == [peer]


@vendor_engines
def test_an_announcement_never_replaces_a_pinned_key(peers, clock):
    added = peers.add(public_key=A, url="http://a.example", role="vendor", name="Acme")
    clock.now = T0 + 1
    after = peers.announce(public_key=A, url="https://a.example:9000", role="relay", name="Acme relay")
    assert (after.id, after.public_key, after.source, after.added_at) == (added.id, A.hex(), "added", T0)
    assert (after.url, after.claimed_url) == ("http://a.example", "https://a.example:9000")
    assert (after.role, after.name, after.last_contact_at) == ("relay", "Acme relay", T0 + 1)
    assert peers.pushable() == [after]
    # behind NAT now: the URL we know and the pending claim are kept rather than forgotten
    again = peers.announce(public_key=A, url=None, role="relay", name="Acme relay")
    assert (again.url, again.claimed_url) == ("http://a.example", "https://a.example:9000")


@vendor_engines
def test_an_added_peers_new_url_is_used_only_once_verified(peers, clock):
    added = peers.add(public_key=A, url="http://a.example", role="vendor", name="Acme")
    peers.announce(public_key=A, url="http://169.254.169.254/latest", role="vendor", name="Acme")
    assert [p.public_key for p in peers.claims()] == [A.hex()]
    peers.settle_claim(A.hex(), "http://169.254.169.254/latest", False, "address not allowed")
    refused = peers.by_key(A.hex())
    assert (refused.source, refused.url, refused.claimed_url) == ("added", "http://a.example", None)
    assert refused.last_error == "url not verified: address not allowed"
    assert peers.pushable() == [refused]
    # a failed claim holds back the next ones a while, as for an announced peer
    assert peers.announce(public_key=A, url="http://a2.example", role="vendor", name="Acme").claimed_url is None
    clock.now = T0 + CLAIM_RETRY_MS
    peers.announce(public_key=A, url="http://a2.example", role="vendor", name="Acme")
    peers.settle_claim(A.hex(), "http://a2.example", True)
    moved = peers.by_key(A.hex())
    assert (moved.id, moved.source, moved.url, moved.claimed_url) == (added.id, "added", "http://a2.example", None)
    assert moved.verified_at == T0 + CLAIM_RETRY_MS
    # the URL held is no claim
    assert peers.announce(public_key=A, url="http://a2.example", role="vendor", name="Acme").claimed_url is None


@vendor_engines
def test_announced_peers_and_their_upgrade(peers, clock):
    announced = peers.announce(public_key=B, url=None, role="person", name="")
    assert (announced.source, announced.url, announced.last_contact_at) == ("announced", None, T0)
    assert peers.pushable() == []
    with pytest.raises(ConflictError):
        peers.add(public_key=B, url=None, role="person", name="", source="announced")
    upgraded = peers.add(public_key=B, url="http://b.example", role="person", name="Bob")
    assert (upgraded.id, upgraded.source) == (announced.id, "added")
    assert (upgraded.url, upgraded.name) == ("http://b.example", "Bob")
    assert peers.pushable() == [upgraded]


@vendor_engines
def test_get_by_every_kind_of_reference(peers):
    a = peers.add(public_key=A, url="http://a.example/base", role="vendor", name="")
    b = peers.add(public_key=B, url=None, role="person", name="")
    assert peers.get(encode_node_id(A)) == a
    assert peers.get(encode_node_id(A).upper()) == a
    assert peers.get(A.hex()) == a and peers.get(A.hex()[:8].upper()) == a
    assert peers.get(b.id) == b and peers.get(str(b.id)) == b
    assert peers.get("http://a.example/base/") == a
    assert peers.by_key(B.hex()) == b and peers.by_key(C.hex()) is None
    for missing in (encode_node_id(C), C.hex(), 99, "https://nobody.example"):
        with pytest.raises(NotFoundError):
            peers.get(missing)
    for bad in ("vrm1qqqq", "xyz", "abc", None, True, 1.5, "ftp://a.example"):
        with pytest.raises(ValidationError):
            peers.get(bad)


@vendor_engines
def test_a_shared_url_is_ambiguous(peers):
    peers.add(public_key=A, url="http://shared.example", role="relay", name="")
    peers.add(public_key=B, url="http://shared.example", role="relay", name="")
    with pytest.raises(ValidationError, match="more than one"):
        peers.get("http://shared.example")


@vendor_engines
def test_remove(peers):
    a = peers.add(public_key=A, url=None, role="vendor", name="")
    assert peers.remove(encode_node_id(A)) == a
    assert peers.list() == []
    with pytest.raises(NotFoundError):
        peers.remove(A.hex())


@vendor_engines
def test_contact_outcomes(peers, clock):
    peers.add(public_key=A, url="http://a.example", role="vendor", name="")
    peers.record_contact(A.hex(), False, "timeout")
    peers.record_contact(A.hex(), False, "x" * 10_000)
    peer = peers.by_key(A.hex())
    assert (peer.failures, len(peer.last_error), peer.last_contact_at) == (2, 500, None)
    clock.now = T0 + 7
    peers.record_contact(A.hex(), True)
    peer = peers.by_key(A.hex())
    assert (peer.failures, peer.last_error, peer.last_contact_at) == (0, None, T0 + 7)
    peers.record_contact(C.hex(), False, "gone")  # a peer removed meanwhile: nothing to note
    assert len(peers.list()) == 1


@vendor_engines
def test_cursors(peers):
    peers.add(public_key=A, url=None, role="vendor", name="")
    peers.set_cursor(A.hex(), pull=40)
    peers.set_cursor(A.hex(), inbox=3)
    peers.set_cursor(A.hex())
    peer = peers.by_key(A.hex())
    assert (peer.pull_cursor, peer.inbox_cursor) == (40, 3)
    for bad in ({"pull": -1}, {"inbox": "5"}, {"pull": True}, {"inbox": 2**63}):
        with pytest.raises(ValidationError):
            peers.set_cursor(A.hex(), **bad)
    assert peers.by_key(A.hex()) == peer


@pytest.mark.parametrize(
    "change, field",
    [
        ({"public_key": A[:31]}, "public_key"),
        ({"public_key": A.hex()}, "public_key"),
        ({"url": "ftp://a.example"}, "url"),
        ({"url": "http://"}, "url"),
        ({"url": "http://a b.example"}, "url"),
        ({"url": "http://a.example/?q=1"}, "url"),
        ({"url": "http://a.example:99999"}, "url"),
        ({"url": "a.example"}, "url"),
        ({"url": "http://a.example/" + "x" * 2048}, "url"),
        ({"url": 80}, "url"),
        ({"role": "admin"}, "role"),
        ({"role": None}, "role"),
        ({"name": "n" * 201}, "name"),
        ({"name": "two\nlines"}, "name"),
        ({"name": b"bytes"}, "name"),
        ({"source": "gossip"}, "source"),
    ],
)
@vendor_engines
def test_hostile_input_changes_nothing(peers, store, change, field):
    args = {"public_key": A, "url": "http://a.example", "role": "vendor", "name": "Acme", **change}
    with pytest.raises(ValidationError) as info:
        peers.add(**args)
    assert info.value.field == field
    if "source" not in change:
        args.pop("source", None)
        with pytest.raises(ValidationError):
            peers.announce(**args)
    assert store.query("SELECT * FROM peers") == []


def test_check_url():
    assert check_url(None) is None
    assert check_url(" https://Relay.Example/vrm/ ") == "https://relay.example/vrm"
    assert check_url("http://[::1]:8470") == "http://[::1]:8470"
    for bad in ("ftp://a.example", "http://a.example/x\x7f", "http://a\x00.example", "http://a.example:99999", "relay"):
        with pytest.raises(ValidationError, match="url"):
            check_url(bad)
