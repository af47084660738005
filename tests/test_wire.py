"""The gossip wire: items and batches round-trip, caps are enforced before work, hostile bytes give a
typed WireError and never anything else."""

from __future__ import annotations

import os

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from federation import wire
from node.errors import VrmError, WireError
from node.identity import Identity
from node.nodeid import encode_node_id

ENV = b"\x87" + bytes(range(40))  # the wire does not look inside envelopes


def test_item_and_batch_round_trip():
    items = [wire.encode_item(4, ENV), wire.encode_item(0, b"x" * 70_000), wire.encode_item(8, b"")]
    body = wire.encode_batch(items)
    assert msgpack.unpackb(body) == [[4, ENV], [0, b"x" * 70_000], [8, b""]]
    assert wire.decode_batch(body) == [
        wire.GossipItem(4, ENV),
        wire.GossipItem(0, b"x" * 70_000),  # an oversize envelope is refused per item, later
        wire.GossipItem(8, b""),
    ]


@pytest.mark.parametrize("n", [0, 1, 15, 16, 65535, 65536])
def test_array_header_is_msgpacks_own(n):
    assert wire.array_header(n) == msgpack.packb([None] * n)[: len(wire.array_header(n))]


@pytest.mark.parametrize("n", [0, 1, 255, 256, 65535, 65536])
def test_an_item_is_msgpacks_own_bytes(n):
    envelope = bytes([n % 251]) * n
    for ttl in range(wire.MAX_TTL + 1):
        assert wire.encode_item(ttl, envelope) == msgpack.packb([ttl, envelope], use_bin_type=True)
    assert wire.encode_item(2, bytearray(envelope)) == msgpack.packb([2, envelope], use_bin_type=True)


def test_a_batch_of_many_encoded_items_is_one_array():
    items = [wire.encode_item(3, bytes([i % 256]) * 3) for i in range(1000)]
    assert wire.decode_batch(wire.encode_batch(items))[999] == wire.GossipItem(3, bytes([999 % 256]) * 3)


def test_ttl_is_clamped_to_the_maximum():
    body = msgpack.packb([[200, ENV], [2**64 - 1, ENV]])
    assert [i.ttl for i in wire.decode_batch(body)] == [wire.MAX_TTL, wire.MAX_TTL]


def test_encode_item_refuses_a_ttl_out_of_range():
    for ttl in (-1, 9, True, 1.0):
        with pytest.raises(ValueError):
            wire.encode_item(ttl, ENV)


def test_too_many_items_is_too_large_before_decoding():
    body = msgpack.packb([[1, ENV]] * 1001)
    with pytest.raises(WireError) as info:
        wire.decode_batch(body)
    assert info.value.reason == "too_large"
    # Only the header is looked at: a lying header with no items behind it is refused just the same.
    with pytest.raises(WireError) as info:
        wire.decode_batch(b"\xdd\xff\xff\xff\xff")
    assert info.value.reason == "too_large"


def test_too_many_bytes_is_too_large():
    with pytest.raises(WireError) as info:
        wire.decode_batch(b"\x91" + bytes(wire.MAX_BATCH_BYTES))
    assert info.value.reason == "too_large"


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1},
        [[1]],
        [[1, ENV, 3]],
        [[-1, ENV]],
        [[True, ENV]],
        [[1.5, ENV]],
        [[1, "text, not bytes"]],
        [[1, None]],
        [1, 2],
        "x",
    ],
)
def test_malformed_batches(value):
    with pytest.raises(WireError) as info:
        wire.decode_batch(msgpack.packb(value))
    assert info.value.reason == "malformed"


@pytest.mark.parametrize(
    "body",
    [b"", b"\xc1", b"\x91", b"\x91\x92\x01", msgpack.packb([]) + b"\x00", b"\x91" * 5000, b"\xd4\x01\x01"],
)
def test_undecodable_batches(body):
    with pytest.raises(WireError) as info:
        wire.decode_batch(body)
    assert info.value.reason in ("malformed", "too_large")


@given(st.binary(max_size=300))
def test_random_bytes_never_escape_as_anything_but_wire_error(body):
    for decode in (wire.decode_batch, wire.decode_pull, wire.decode_node_info, wire.decode_hello):
        try:
            decode(body)
        except WireError:
            pass
    try:
        wire.decode_reasons(body, 3)
    except WireError:
        pass
    assert isinstance(wire.decode_error(body), str)


def test_random_megabytes_are_refused_quickly():
    body = os.urandom(1 << 20)
    with pytest.raises(WireError):
        wire.decode_batch(b"\x92" + body)


def test_reasons_round_trip_and_check_the_count():
    body = wire.encode_reasons(bytes([0, 17, 16]))
    assert msgpack.unpackb(body) == {"reasons": bytes([0, 17, 16])}
    assert wire.decode_reasons(body, 3) == bytes([0, 17, 16])
    for bad, n in ((body, 2), (msgpack.packb({"reasons": "abc"}), 3), (msgpack.packb([1]), 1)):
        with pytest.raises(WireError):
            wire.decode_reasons(bad, n)


def test_pull_round_trip():
    body = wire.encode_pull([(4, ENV), (0, b"e2")], 42)
    assert msgpack.unpackb(body) == {"items": [[4, ENV], [0, b"e2"]], "next": 42}
    assert wire.decode_pull(body) == wire.PullPage([wire.GossipItem(4, ENV), wire.GossipItem(0, b"e2")], 42)
    assert wire.decode_pull(wire.encode_pull([], 7)) == wire.PullPage([], 7)
    for bad in ({"items": [], "next": -1}, {"items": {}, "next": 1}, {"next": 1}, [1]):
        with pytest.raises(WireError):
            wire.decode_pull(msgpack.packb(bad))


def test_node_info_and_hello():
    node_id = encode_node_id(Identity.from_seed(b"\x07" * 32).public_key)
    info = wire.decode_node_info(wire.encode_node_info(node_id, "vendor", "Acme Air"))
    assert info == wire.NodeInfo(node_id, "vendor", "Acme Air", 1)
    assert msgpack.unpackb(wire.encode_node_info(node_id, "relay", "")) == {
        "node_id": node_id,
        "role": "relay",
        "name": "",
        "protocol": 1,
    }
    served = wire.encode_node_info(node_id, "person", "", gossip=("reconcile/1",))
    assert wire.decode_node_info(served).gossip == ("reconcile/1",)
    # a capability list we cannot read is none (the peer is legacy), never a refusal
    for gossip in ("reconcile/1", [1, b"x"], {"a": 1}):
        odd = msgpack.packb({"node_id": node_id, "role": "person", "name": "", "protocol": 1, "gossip": gossip})
        assert wire.decode_node_info(odd).gossip == ()
    hello = wire.decode_hello(wire.encode_hello("http://127.0.0.1:8470", "person", "Ann"))
    assert hello == wire.Hello("http://127.0.0.1:8470", "person", "Ann")
    assert wire.decode_hello(wire.encode_hello(None, "vendor", "")).url is None


@pytest.mark.parametrize(
    "value",
    [
        {"url": "ftp://x", "role": "person", "name": ""},
        {"url": "http://", "role": "person", "name": ""},
        {"url": None, "role": "king", "name": ""},
        {"url": None, "role": "person", "name": "x" * 201},
        {"url": 5, "role": "person", "name": ""},
        ["not", "a", "map"],
    ],
)
def test_bad_hellos(value):
    with pytest.raises(WireError):
        wire.decode_hello(msgpack.packb(value))


def test_bad_node_info():
    for value in ({"node_id": "vrm1nope", "role": "person", "name": "", "protocol": 1}, {"role": "person"}):
        with pytest.raises(WireError):
            wire.decode_node_info(msgpack.packb(value))


def test_wire_error_is_a_typed_vrm_error():
    error = WireError("malformed", "item 3")
    assert isinstance(error, VrmError) and str(error) == "malformed: item 3"
    with pytest.raises(ValueError):
        WireError("whatever")


def test_error_bodies():
    assert msgpack.unpackb(wire.error_body("too_large")) == {"error": "too_large"}
    body = wire.error_body("malformed_batch", "item 2 is not an array")
    assert msgpack.unpackb(body) == {"error": "malformed_batch", "detail": "item 2 is not an array"}
    assert wire.decode_error(body) == "malformed_batch" and wire.decode_error(b"junk") == ""


def test_the_documented_example():
    """The bytes shown in the protocol text for one item and its refusal."""
    body = wire.encode_batch([wire.encode_item(4, b"\xc0\xc0\xc0")])
    assert body.hex(" ") == "91 92 04 c4 03 c0 c0 c0"
    assert wire.encode_reasons(b"\x01").hex(" ") == "81 a7 72 65 61 73 6f 6e 73 c4 01 01"


def test_a_push_by_column_keeps_only_what_admission_admitted():
    """``Items.admitted``: the items whose verdict is 0, their ttls and envelopes still paired and in
    order; ``Items.of`` clamps ttls and passes Items through."""
    items = wire.Items.of([wire.GossipItem(ttl, bytes([ttl])) for ttl in (0, 3, 9, 1)])
    assert items.ttls == bytes([0, 3, wire.MAX_TTL, 1]) and wire.Items.of(items) is items
    kept = items.admitted(bytearray([0, 31, 0, 17]))
    assert list(kept) == [wire.GossipItem(0, b"\x00"), wire.GossipItem(wire.MAX_TTL, b"\x09")]
    assert len(items.admitted(bytes(4))) == 4 and len(items.admitted(bytes([1] * 4))) == 0
