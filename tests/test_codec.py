"""The canonical MessagePack subset (PROTOCOL.md section 1), on both backends.

Expected encodings come from msgpack-python (an independent implementation: shortest forms, bin type
for bytes, keys sorted by us), refusals from PROTOCOL.md's table and its detection order. The property
tests at the end check that the native core and the reference agree exactly, on valid values, on
random bytes and on mutated valid encodings.

The refusals are tests/test_codec_refusals.py.
"""

from __future__ import annotations

import random

import msgpack
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from node.reasons import Reason
from tests.vectors.loaders import canonical, mutate, outcome, reason_of, tagged

MAX = 65_536
U64 = 2**64 - 1
I64_MIN = -(2**63)

# -- strategies ---------------------------------------------------------------------------------------

INT_EDGES = [
    0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, U64,
    -1, -31, -32, -33, -127, -128, -129, -32767, -32768, -32769, -(2**31), -(2**31) - 1, I64_MIN,
]  # fmt: skip
ints = st.integers(I64_MIN, U64) | st.sampled_from(INT_EDGES)
texts = st.text(max_size=40) | st.sampled_from(["", "a" * 31, "a" * 32, "é" * 16, "\U0001f600", "\x00"])
blobs = st.binary(max_size=40)
scalars = st.none() | st.booleans() | ints | texts | blobs
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5)
    | st.tuples(children, children)
    | st.dictionaries(st.text(max_size=6), children, max_size=5),
    max_leaves=25,
)
# things an encoder must refuse, mixed into otherwise valid structures
hostile_scalars = (
    st.floats(allow_nan=False)
    | st.integers(min_value=U64 + 1, max_value=2**70)
    | st.integers(min_value=-(2**70), max_value=I64_MIN - 1)
    | st.just(object())
    | st.frozensets(st.integers(0, 3), max_size=2)
    | st.sets(st.integers(0, 3), max_size=2)
)
hostile_values = st.recursive(
    scalars | hostile_scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=4) | st.integers(0, 3) | st.binary(max_size=2), children, max_size=4),
    max_leaves=12,
)


def depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, (list, tuple)):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


def nested_lists(levels: int, inner=None):
    value = [] if inner is None else inner
    for _ in range(levels - (0 if inner is not None else 1)):
        value = [value]
    return value


def nested_maps(levels: int):
    value: dict = {}
    for _ in range(levels - 1):
        value = {"k": value}
    return value


# -- constants -------------------------------------------------------------------------------------------


def test_constants(backend):
    assert backend.PROTOCOL_VERSION == 1
    assert backend.SIGNING_PREFIX == b"vrm-envelope-v1\x00"
    assert len(backend.SIGNING_PREFIX) == 16
    assert backend.MAX_ENVELOPE_BYTES == MAX
    assert backend.MAX_DEPTH == 16
    assert backend.MAX_CLOCK_SKEW_MS == 300_000
    assert tuple(backend.KINDS) == (
        "accept", "decline", "deletion", "grant", "intent",
        "offer", "receipt", "request", "revoke", "withdraw",
    )  # fmt: skip
    assert list(backend.KINDS) == sorted(backend.KINDS)


# -- valid values ---------------------------------------------------------------------------------------

ROUND_TRIPS = [
    (None, "c0"),
    (False, "c2"),
    (True, "c3"),
    (0, "00"),
    (127, "7f"),
    (128, "cc80"),
    (255, "ccff"),
    (256, "cd0100"),
    (65535, "cdffff"),
    (65536, "ce00010000"),
    (2**32 - 1, "ceffffffff"),
    (2**32, "cf0000000100000000"),
    (U64, "cfffffffffffffffff"),
    (-1, "ff"),
    (-32, "e0"),
    (-33, "d0df"),
    (-128, "d080"),
    (-129, "d1ff7f"),
    (-32768, "d18000"),
    (-32769, "d2ffff7fff"),
    (-(2**31), "d280000000"),
    (-(2**31) - 1, "d3ffffffff7fffffff"),
    (I64_MIN, "d38000000000000000"),
    ("", "a0"),
    ("a", "a161"),
    ("a" * 31, "bf" + "61" * 31),
    ("a" * 32, "d920" + "61" * 32),
    ("é", "a2c3a9"),
    ("\U0001f600", "a4f09f9880"),
    (b"", "c400"),
    (b"\x00\xff", "c40200ff"),
    ([], "90"),
    ([1, [2, []]], "920192029" + "0"),
    ({}, "80"),
    ({"a": 1, "b": [True, None]}, "82a16101a16292c3c0"),
    ({"": 0}, "81a000"),
]


@pytest.mark.parametrize(("value", "hex_"), ROUND_TRIPS, ids=[h[:24] for _, h in ROUND_TRIPS])
def test_round_trip_known_encodings(backend, value, hex_):
    raw = bytes.fromhex(hex_)
    assert backend.encode(value) == raw
    assert canonical(value) == raw  # the table itself agrees with msgpack-python
    assert tagged(backend.decode(raw)) == tagged(value)


@pytest.mark.parametrize(
    ("length", "prefix"),
    [(31, "bf"), (32, "d920"), (255, "d9ff"), (256, "da0100"), (65535, "daffff"), (65536, "db00010000")],
)
def test_text_length_forms(backend, length, prefix):
    value = "x" * length
    raw = backend.encode(value)
    assert raw.hex().startswith(prefix)
    assert raw == canonical(value)
    if len(raw) <= MAX:
        assert backend.decode(raw) == value


@pytest.mark.parametrize(("length", "prefix"), [(255, "c4ff"), (256, "c50100"), (65535, "c5ffff"), (65536, "c600010000")])
def test_bytes_length_forms(backend, length, prefix):
    value = b"\x07" * length
    raw = backend.encode(value)
    assert raw.hex().startswith(prefix)
    assert raw == canonical(value)
    if len(raw) <= MAX:
        assert backend.decode(raw) == value


@pytest.mark.parametrize(("length", "prefix"), [(15, "9f"), (16, "dc0010"), (65535, "dcffff"), (65536, "dd00010000")])
def test_array_length_forms(backend, length, prefix):
    value = [None] * length
    raw = backend.encode(value)
    assert raw.hex().startswith(prefix)
    assert raw == canonical(value)
    if len(raw) <= MAX:
        assert backend.decode(raw) == value


@pytest.mark.parametrize(("length", "prefix"), [(15, "8f"), (16, "de0010"), (65536, "df00010000")])
def test_map_length_forms(backend, length, prefix):
    value = {f"k{i:05d}": i % 3 for i in range(length)}
    raw = backend.encode(value)
    assert raw.hex().startswith(prefix)
    assert raw == canonical(value)
    if len(raw) <= MAX:
        assert backend.decode(raw) == value


def test_types_of_decoded_values(backend):
    value = backend.decode(backend.encode({"b": b"x", "l": (1, 2), "t": True, "n": None, "s": "s"}))
    assert type(value) is dict
    assert type(value["b"]) is bytes
    assert type(value["l"]) is list  # tuples encode as arrays, arrays decode as lists
    assert value["t"] is True
    assert value["n"] is None
    assert list(value) == ["b", "l", "n", "s", "t"]  # wire order == sorted order


def test_bool_is_not_int(backend):
    assert backend.encode(True) == b"\xc3"
    assert backend.encode(1) == b"\x01"
    assert backend.decode(b"\xc3") is True
    assert backend.decode(b"\x01") is not True


def test_keys_sorted_by_utf8_bytes_whatever_the_dict_order(backend):
    # U+FF61 sorts before U+1F600 in UTF-8 (and in code points) but after it in UTF-16
    keys = ["\U0001f600", "\uff61", "b", "a", "ab", "", "Z", "é"]
    forward = {k: i for i, k in enumerate(keys)}
    backward = {k: i for i, k in enumerate(reversed(keys))}
    raw = backend.encode(forward)
    assert raw == canonical(forward)
    assert backend.encode(dict(sorted(forward.items()))) == raw
    decoded = backend.decode(raw)
    assert list(decoded) == sorted(keys, key=lambda k: k.encode())
    assert backend.encode({k: forward[k] for k in backward}) == raw


def test_depth_limit_accepts_16(backend):
    for value in (nested_lists(16), nested_maps(16), nested_lists(15, inner={"k": 1})):
        assert depth(value) == 16
        raw = backend.encode(value)
        assert raw == canonical(value)
        assert backend.decode(raw) == value


def test_depth_limit_refuses_17_on_encode_and_decode(backend):
    for value in (nested_lists(17), nested_maps(17), nested_lists(16, inner={})):
        assert depth(value) == 17
        assert reason_of(backend.encode, value) == Reason.TOO_DEEP
        assert reason_of(backend.decode, canonical(value)) == Reason.TOO_DEEP


def test_deep_recursion_is_refused_not_crashing(backend):
    value = nested_lists(100_000)
    assert reason_of(backend.encode, value) == Reason.TOO_DEEP
    assert reason_of(backend.decode, b"\x91" * 60_000 + b"\xc0") == Reason.TOO_DEEP
    assert reason_of(backend.decode, b"\x81\xa1k" * 20_000 + b"\xc0") == Reason.TOO_DEEP


def test_encode_has_no_size_cap_but_decode_has(backend):
    value = b"\x00" * (MAX - 3)  # c5 + 2-byte length: exactly the cap
    raw = backend.encode(value)
    assert len(raw) == MAX
    assert backend.decode(raw) == value
    bigger = backend.encode(value + b"\x00")
    assert len(bigger) == MAX + 1
    assert reason_of(backend.decode, bigger) == Reason.TOO_LARGE


# -- independent implementation check ------------------------------------------------------------------------


@given(values)
def test_encode_equals_msgpack_with_sorted_keys(backend, value):
    if depth(value) > 16:
        assert reason_of(backend.encode, value) == Reason.TOO_DEEP
        return
    raw = backend.encode(value)
    assert raw == canonical(value)
    if len(raw) <= MAX:
        decoded = backend.decode(raw)
        assert tagged(decoded) == tagged(msgpack.unpackb(raw, raw=False, strict_map_key=False))
        assert backend.encode(decoded) == raw


# -- differential: native == reference --------------------------------------------------------------------------


@given(values)
def test_differential_encode(native, reference, value):
    n, r = outcome(native.encode, value), outcome(reference.encode, value)
    assert n == r


@given(hostile_values)
def test_differential_encode_hostile(native, reference, value):
    assert outcome(native.encode, value) == outcome(reference.encode, value)


def _decode_outcome(backend, raw):
    kind, result = outcome(backend.decode, raw)
    return (kind, tagged(result) if kind == "ok" else result)


@given(st.binary(max_size=64))
@example(b"")
@example(b"\xdf\xff\xff\xff\xff")
@example(b"\xc6\xff\xff\xff\xff")
@example(b"\xd9\x05a")
def test_differential_decode_random_bytes(native, reference, raw):
    assert _decode_outcome(native, raw) == _decode_outcome(reference, raw)


# MessagePack-looking bytes: sequences of interesting type bytes and short payloads
TOKENS = [bytes([b]) for b in (0x00, 0x7F, 0x80, 0x81, 0x90, 0x91, 0xA0, 0xA1, 0xBF, 0xC0, 0xC1, 0xC2, 0xC3)]
TOKENS += [bytes([b]) for b in range(0xC4, 0xE0)] + [b"\xe0", b"\xff", b"\x61", b"\x62", b"\xc3\xa9", b"\xed\xa0\x80"]
msgpackish = st.lists(st.sampled_from(TOKENS), max_size=24).map(b"".join)


@given(msgpackish)
def test_differential_decode_token_soup(native, reference, raw):
    assert _decode_outcome(native, raw) == _decode_outcome(reference, raw)


@given(values, st.integers(0, 2**32 - 1))
def test_differential_decode_mutated_encodings(native, reference, value, seed):
    assume(depth(value) <= 16)
    raw = canonical(value)
    rng = random.Random(seed)
    for _ in range(8):
        mutated = mutate(raw, rng)
        n, r = _decode_outcome(native, mutated), _decode_outcome(reference, mutated)
        assert n == r, mutated.hex()
        if n[0] == "ok":  # whatever decodes must be canonical: re-encoding gives the same bytes
            assert native.encode(native.decode(mutated)) == mutated


def test_differential_decode_mutation_loop(native, reference):
    """A fixed-seed loop over many mutations of a few typical values (fast, reproducible)."""
    rng = random.Random(20240611)
    samples = [
        {"a": 1, "b": [True, None, -200, 70000, "é" * 20], "c": {"d": b"\x00" * 40}},
        [2**64 - 1, I64_MIN, -33, 128, "x" * 300, b"y" * 300],
        {"z" * 40: {"k": [[[[1]]]]}, "": ""},
        nested_lists(16),
    ]
    disagreements = []
    for _ in range(3000):
        raw = mutate(canonical(rng.choice(samples)), rng)
        n, r = _decode_outcome(native, raw), _decode_outcome(reference, raw)
        if n != r:
            disagreements.append((raw.hex(), n, r))
    assert disagreements == []
