"""The canonical MessagePack subset (PROTOCOL.md section 1): what a decoder and an encoder refuse, on both
backends, with PROTOCOL.md's reason codes and detection order (valid values and the differential
tests are tests/test_codec.py).
"""

from __future__ import annotations

import re

import pytest

from node.reasons import Reason
from tests.vectors.loaders import outcome, reason_of
from tests.test_codec import I64_MIN, MAX, U64


# -- decode refusals ---------------------------------------------------------------------------------------

NC, MAL, FLT, TRL, DEEP, BIG = (
    Reason.NON_CANONICAL,
    Reason.MALFORMED,
    Reason.FLOAT_FORBIDDEN,
    Reason.TRAILING_BYTES,
    Reason.TOO_DEEP,
    Reason.TOO_LARGE,
)

REFUSED = [
    # non-shortest unsigned ints, every width
    ("cc00", NC),
    ("cc7f", NC),
    ("cd0000", NC),
    ("cd00ff", NC),
    ("ce00000000", NC),
    ("ce0000ffff", NC),
    ("cf0000000000000000", NC),
    ("cf00000000ffffffff", NC),
    # signed forms carrying a value >= 0
    ("d000", NC),
    ("d07f", NC),
    ("d10000", NC),
    ("d100ff", NC),
    ("d27fffffff", NC),
    ("d20000ffff", NC),
    ("d30000000000000000", NC),
    ("d37fffffffffffffff", NC),
    # negative values in a longer signed form than needed
    ("d0e0", NC),
    ("d0ff", NC),
    ("d1ff80", NC),
    ("d1ffff", NC),
    ("d2ffff8000", NC),
    ("d2ffffffff", NC),
    ("d3ffffffff80000000", NC),
    ("d3ffffffffffffffff", NC),
    # non-shortest length forms
    ("d900", NC),
    ("d91f" + "61" * 31, NC),
    ("da0000", NC),
    ("da00ff" + "61" * 255, NC),
    ("db00000000", NC),
    ("db000000ff" + "61" * 255, NC),
    ("c50000", NC),
    ("c500ff" + "00" * 255, NC),
    ("c600000000", NC),
    ("c6000000ff" + "00" * 255, NC),
    ("dc0000", NC),
    ("dc000f" + "c0" * 15, NC),
    ("dd00000000", NC),
    ("dd0000000f" + "c0" * 15, NC),
    ("de0000", NC),
    ("de000fa0c0", NC),  # shortness is decided before the entries are read
    ("df00000000", NC),
    ("df0000ffff", NC),
    # a length that is not shortest is non_canonical even when the input is too short for it
    ("d905", NC),
    ("c50001", NC),
    # map keys
    ("82a162c0a161c0", NC),  # unsorted
    ("82a161c0a161c0", NC),  # duplicate
    ("82a26162c0a161c0", NC),  # "ab" before "a"
    ("8201c0", NC),  # the non-text key is met before the missing second entry
    ("8101c0", NC),  # int key
    ("81c401" + "61" + "c0", NC),  # bin key
    ("81c0c0", NC),  # nil key
    ("8190c0", NC),  # array key
    ("81cc05c0", NC),  # key's own problem (non-shortest) comes first - same code
    ("81c1c0", MAL),  # key's own problem first: malformed, not non_canonical
    ("81ca00000000c0", FLT),  # float key -> float_forbidden, not non_canonical
    ("82a162c0a161ca00000000", NC),  # unsorted key reported before the float value that follows
    ("81a161", MAL),  # value missing
    ("81", MAL),
    # floats and forbidden type bytes
    ("ca00000000", FLT),
    ("cb0000000000000000", FLT),
    ("ca", FLT),  # the type byte decides, before the (missing) payload
    ("cb00", FLT),
    ("91ca3f800000", FLT),
    ("c1", MAL),
    ("c700", MAL),
    ("c70100ff", MAL),
    ("c8000100ff", MAL),
    ("c900000001" + "00ff", MAL),
    ("d400ff", MAL),
    ("d500ffff", MAL),
    ("d600ffffffff", MAL),
    ("d700" + "ff" * 8, MAL),
    ("d800" + "ff" * 16, MAL),
    ("d6ff00000000", MAL),  # the timestamp extension too
    ("92c1ca00000000", MAL),  # first problem wins
    ("92ca00000000c1", FLT),
    # truncation
    ("", MAL),
    ("cc", MAL),
    ("cd01", MAL),
    ("ce000100", MAL),
    ("cf00000001000000", MAL),
    ("d0", MAL),
    ("d1ff", MAL),
    ("d2ffff", MAL),
    ("d3ffffffffff", MAL),
    ("a1", MAL),
    ("a36162", MAL),
    ("d920" + "61" * 31, MAL),
    ("d9", MAL),
    ("da00", MAL),
    ("db000000", MAL),
    ("c4", MAL),
    ("c40561", MAL),
    ("c5", MAL),
    ("c6000100", MAL),
    ("c6ffffffff", MAL),  # a huge claimed length
    ("dbffffffff", MAL),
    ("ddffffffff", MAL),
    ("dfffffffff", MAL),
    ("dc", MAL),
    ("dc00", MAL),
    ("de00", MAL),
    ("91", MAL),
    ("9201", MAL),
    ("dc0010" + "c0" * 15, MAL),
    # invalid UTF-8
    ("a1ff", MAL),
    ("a180", MAL),
    ("a2c328", MAL),
    ("a2c080", MAL),  # overlong
    ("a3eda080", MAL),  # a surrogate
    ("a4f4908080", MAL),  # above U+10FFFF
    ("a2e282", MAL),  # a truncated sequence inside the text
    ("81a1ffc0", MAL),  # in a key
    # trailing bytes
    ("c0c0", TRL),
    ("0000", TRL),
    ("90c1", TRL),  # whatever the extra byte is
    ("a161ff", TRL),
    ("c40100" + "00", TRL),
    # depth
    ("91" * 16 + "c0", None),  # 16 containers: fine
    ("91" * 17 + "c0", DEEP),
    ("91" * 17, DEEP),  # too deep is decided by the type byte, before the truncation
    ("91" * 16, MAL),  # ... while 16 deep runs out of input
    ("81a16b" * 16 + "c0", None),
    ("81a16b" * 17 + "c0", DEEP),
    ("91" * 16 + "ca00000000", FLT),  # a scalar at depth 17 is fine except when it is a float
    ("91" * 16 + "90", DEEP),
    ("91" * 16 + "80", DEEP),
]


@pytest.mark.parametrize(("hex_", "reason"), REFUSED, ids=[(h[:30] or "empty") for h, _ in REFUSED])
def test_decode_refusals(backend, hex_, reason):
    raw = bytes.fromhex(hex_)
    if reason is None:
        backend.decode(raw)
    else:
        assert reason_of(backend.decode, raw) == reason


def test_too_large_is_checked_before_anything(backend):
    for raw in (b"\xc1" * (MAX + 1), b"\xc0" * (MAX + 1), b"\xca" + bytes(MAX), b"\x91" * (MAX + 1)):
        assert reason_of(backend.decode, raw) == Reason.TOO_LARGE
    assert reason_of(backend.decode, b"\x00" * MAX) == Reason.TRAILING_BYTES


@pytest.mark.parametrize("byte", range(0xC7, 0xCA))
def test_ext_types_with_any_payload(backend, byte):
    for tail in (b"", b"\x00", b"\x01\x01\x00", b"\x00\x00\x00\x00\x00\x00"):
        assert reason_of(backend.decode, bytes([byte]) + tail) == Reason.MALFORMED


@pytest.mark.parametrize("byte", range(0xD4, 0xD9))
def test_fixext_types(backend, byte):
    assert reason_of(backend.decode, bytes([byte]) + bytes(17)) == Reason.MALFORMED
    assert reason_of(backend.decode, bytes([byte])) == Reason.MALFORMED


def test_every_single_type_byte_is_classified_like_the_spec(backend):
    """Each of the 256 possible first bytes with 8 zero bytes after it."""
    for byte in range(256):
        raw = bytes([byte]) + bytes(8)
        got = outcome(backend.decode, raw)
        if byte in (0xC1,) or 0xC7 <= byte <= 0xC9 or 0xD4 <= byte <= 0xD8:
            assert got == ("err", Reason.MALFORMED), hex(byte)
        elif byte in (0xCA, 0xCB):
            assert got == ("err", Reason.FLOAT_FORBIDDEN), hex(byte)
        elif byte == 0x98:  # fixarray of 8 zeros
            assert got == ("ok", [0] * 8)
        elif byte == 0xA8:  # fixstr of 8 NULs
            assert got == ("ok", "\x00" * 8)
        else:
            assert got[0] == "err" and got[1] in (
                Reason.TRAILING_BYTES,
                Reason.NON_CANONICAL,
                Reason.MALFORMED,
            ), (hex(byte), got)


# -- encode refusals ---------------------------------------------------------------------------------------

ENCODE_REFUSED = [
    (1.0, Reason.FLOAT_FORBIDDEN),
    (0.0, Reason.FLOAT_FORBIDDEN),
    (float("nan"), Reason.FLOAT_FORBIDDEN),
    ([1, 2.5], Reason.FLOAT_FORBIDDEN),
    ({"a": {"b": -0.0}}, Reason.FLOAT_FORBIDDEN),
    ({1, 2}, Reason.WRONG_TYPE),
    (frozenset(), Reason.WRONG_TYPE),
    (object(), Reason.WRONG_TYPE),
    (1j, Reason.WRONG_TYPE),
    ([None, object()], Reason.WRONG_TYPE),
    (U64 + 1, Reason.WRONG_TYPE),
    (2**200, Reason.WRONG_TYPE),
    (I64_MIN - 1, Reason.WRONG_TYPE),
    ({"x": [2**64]}, Reason.WRONG_TYPE),
    ({1: "a"}, Reason.WRONG_TYPE),
    ({b"k": "a"}, Reason.WRONG_TYPE),
    ({None: "a"}, Reason.WRONG_TYPE),
    ({"ok": {(1,): 2}}, Reason.WRONG_TYPE),
]


def _stable_id(value: object) -> str:
    """A test id that is the same in every process (pytest-xdist workers must collect the same
    tests): a bare object's repr holds its address."""
    return re.sub(r" at 0x[0-9a-f]+", "", repr(value))[:30]


@pytest.mark.parametrize(("value", "reason"), ENCODE_REFUSED, ids=[_stable_id(v) for v, _ in ENCODE_REFUSED])
def test_encode_refusals(backend, value, reason):
    assert reason_of(backend.encode, value) == reason


def test_encode_refusals_agree_on_odd_types(native, reference):
    """Types the contract does not list: whatever the answer, both backends give the same one."""
    for value in (bytearray(b"ab"), memoryview(b"ab"), range(3), {"a": bytearray(b"")}, "\ud800", {"\udc00": 1}):
        assert outcome(native.encode, value) == outcome(reference.encode, value), repr(value)
