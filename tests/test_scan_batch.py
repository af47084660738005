"""``scan_batch`` (native/src/batch.rs and its twin node/reference/batch.py): a pushed batch's items
by column. Both must accept exactly what ``wire.decode_batch`` accepts, with the same items, in any
MessagePack encoding a peer may choose, and refuse (None) everything else, hostile bodies included;
``wire.decode_push`` then raises decode_batch's own error.
"""

from __future__ import annotations

import struct

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation import wire
from node.errors import WireError


def reference_items(body: bytes) -> list[wire.GossipItem] | None:
    """What ``decode_batch`` makes of ``body`` (None: it refuses it)."""
    try:
        return wire.decode_batch(body)
    except WireError:
        return None


def as_items(scanned: tuple[bytes, list[bytes]] | None) -> list[wire.GossipItem] | None:
    return None if scanned is None else list(wire.Items(*scanned))


# Every MessagePack encoding of an array length, an unsigned integer and a byte string.
def _array(n: int, form: int) -> bytes:
    if form == 0 and n < 16:
        return bytes([0x90 | n])
    return b"\xdc" + struct.pack(">H", n) if form == 1 and n < 65536 else b"\xdd" + struct.pack(">I", n)


def _uint(v: int, form: int) -> bytes:
    if form == 0 and v < 128:
        return bytes([v])
    for head, fmt, top in ((0xCC, ">B", 0xFF), (0xCD, ">H", 0xFFFF), (0xCE, ">I", 0xFFFFFFFF), (0xCF, ">Q", 2**64 - 1),
                           (0xD0, ">b", 0x7F), (0xD1, ">h", 0x7FFF), (0xD2, ">i", 0x7FFFFFFF), (0xD3, ">q", 2**63 - 1))[form % 8:]:  # fmt: skip
        if v <= top:
            return bytes([head]) + struct.pack(fmt, v)
    return b"\xcf" + struct.pack(">Q", v)


def _bin(b: bytes, form: int) -> bytes:
    if form == 0 and len(b) < 256:
        return b"\xc4" + bytes([len(b)]) + b
    return b"\xc5" + struct.pack(">H", len(b)) + b if form == 1 else b"\xc6" + struct.pack(">I", len(b)) + b


items_st = st.lists(
    st.tuples(st.integers(0, 2**64 - 1) | st.integers(0, 12), st.binary(max_size=40), st.integers(0, 8), st.integers(0, 2)),
    max_size=20,
)


def encode(items, forms) -> bytes:
    return _array(len(items), forms) + b"".join(
        _array(2, f % 3) + _uint(t, u) + _bin(e, f % 3) for t, e, u, f in items
    )


@settings(max_examples=300, deadline=None)
@given(items_st, st.integers(0, 2))
def test_every_encoding_of_a_batch_reads_as_decode_batch_reads_it(native, reference, items, form):
    body = encode(items, form)
    expected = reference_items(body)
    assert expected == [wire.GossipItem(min(t, wire.MAX_TTL), e) for t, e, _, _ in items]
    for backend in (native, reference):
        assert as_items(backend.scan_batch(body, wire.MAX_ITEMS, wire.MAX_TTL)) == expected
        assert list(wire.decode_push(body, backend.scan_batch)) == expected


def _mutations(body: bytes, data) -> bytes:
    how = data.draw(st.sampled_from(["cut", "flip", "append", "insert", "raw"]))
    if how == "raw":
        return data.draw(st.binary(max_size=64))
    if how == "cut":
        return body[: data.draw(st.integers(0, len(body)))]
    at = data.draw(st.integers(0, max(len(body) - 1, 0)))
    if how == "flip" and body:
        return body[:at] + bytes([data.draw(st.integers(0, 255))]) + body[at + 1 :]
    extra = data.draw(st.binary(min_size=1, max_size=6))
    return body + extra if how == "append" else body[:at] + extra + body[at:]


@settings(max_examples=1500, deadline=None)
@given(items_st, st.integers(0, 2), st.data())
def test_hostile_bodies_are_refused_exactly_when_decode_batch_refuses_them(native, reference, items, form, data):
    body = _mutations(encode(items, form), data)
    expected = reference_items(body)
    for backend in (native, reference):
        assert as_items(backend.scan_batch(body, wire.MAX_ITEMS, wire.MAX_TTL)) == expected
        if expected is None:
            with pytest.raises(WireError):
                wire.decode_push(body, backend.scan_batch)
        else:
            assert list(wire.decode_push(body, backend.scan_batch)) == expected


@pytest.mark.parametrize(
    "body",
    [
        msgpack.packb([[1, b"x"]] * (wire.MAX_ITEMS + 1)),  # too many items
        b"\xdd\xff\xff\xff\xff",  # a count no body holds: nothing reserved for it
        msgpack.packb([[True, b"x"]]),  # a bool is no ttl
        msgpack.packb([[-1, b"x"]]),
        msgpack.packb([[1.0, b"x"]]),
        msgpack.packb([[1, "x"]]),  # text is no envelope
        msgpack.packb([[1, b"x", 2]]),
        msgpack.packb({"items": []}),
        msgpack.packb([[1, b"x"]]) + b"\x00",  # trailing bytes
        b"\x91\x92\x01\xc6\xff\xff\xff\xff",  # an envelope longer than the body
    ],
)
def test_the_scan_refuses_what_the_decoder_refuses_with_the_decoders_reason(native, reference, body):
    with pytest.raises(WireError) as refused:
        wire.decode_batch(body)
    for backend in (native, reference):
        assert backend.scan_batch(body, wire.MAX_ITEMS, wire.MAX_TTL) is None
        with pytest.raises(WireError) as raised:
            wire.decode_push(body, backend.scan_batch)
        assert (raised.value.reason, raised.value.detail) == (refused.value.reason, refused.value.detail)


def test_items_by_column_index_slice_and_clamp():
    items = wire.Items.of([wire.GossipItem(3, b"a"), wire.GossipItem(12, b"b"), wire.GossipItem(-1, b"c")])
    assert items.ttls == bytes([3, wire.MAX_TTL, 0]) and items.envelopes == [b"a", b"b", b"c"]
    assert items[1] == wire.GossipItem(wire.MAX_TTL, b"b") and list(items[1:]) == [(wire.MAX_TTL, b"b"), (0, b"c")]
    assert wire.Items.of(items) is items and len(items) == 3
    with pytest.raises(ValueError):
        wire.Items(b"\x01", [])
