"""Envelopes (PROTOCOL.md section 2): structure, signing, ids, verification order, batches, hostile input.

Envelopes are built here with msgpack + pyca/cryptography (tests/vectors/loaders.py), independently of
the code under test, so the tests can also make every kind of broken envelope.

Every reason code is tests/test_envelope_reasons.py; batches, the key cache and hostile input
tests/test_envelope_batches.py.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.errors import EnvelopeError
from node.reasons import Reason
from tests.vectors.loaders import (
    ED25519_L,
    KINDS,
    NOW_MS,
    SIGNING_PREFIX,
    Author,
    build_envelope,
    canonical,
    envelope_map,
    expected_id,
    expected_signed_bytes,
    outcome,
    reason_of,
    zip215_decode_point,
)

ZERO_ID = bytes(32)
AUTHORS = [Author.numbered(i) for i in range(72)]
ALICE, BOB = AUTHORS[0], AUTHORS[1]
P = 2**255 - 19


def _not_a_point() -> bytes:
    for y in range(2, 1000):
        candidate = y.to_bytes(32, "little")
        if zip215_decode_point(candidate) is None:
            return candidate
    raise AssertionError("unreachable")


NOT_A_POINT = _not_a_point()
# y = 1 + p: a non-canonical encoding of the identity (valid under ZIP-215), and y = 1 with the sign bit
# set (x = 0 with sign 1, also valid under ZIP-215).
IDENTITY_NONCANONICAL = (1 + P).to_bytes(32, "little")
IDENTITY_SIGNED_ZERO = (1 | (1 << 255)).to_bytes(32, "little")


def identity_key_signature(seed: bytes = b"\x42" * 32) -> bytes:
    """A signature valid for EVERY message under a key that is the identity point: R = rB, S = r."""
    digest = hashlib.sha512(seed).digest()
    scalar = int.from_bytes(digest[:32], "little")
    scalar &= (1 << 254) - 8
    scalar |= 1 << 254
    return Author(seed).public_key + (scalar % ED25519_L).to_bytes(32, "little")


def flip(data: bytes, index: int, mask: int = 0x01) -> bytes:
    out = bytearray(data)
    out[index] ^= mask
    return bytes(out)


def verify_both_ways(backend, items, now=NOW_MS, verifier=None):
    """verify_batch and verify_one per item must agree; returns [(code, id)]."""
    verifier = verifier or backend.Verifier()
    codes, ids = verifier.verify_batch(items, now)
    assert isinstance(codes, bytes) and isinstance(ids, bytes)
    assert len(codes) == len(items) and len(ids) == 32 * len(items)
    batch = [(codes[i], ids[32 * i : 32 * i + 32]) for i in range(len(items))]
    single = [tuple(verifier.verify_one(raw, now)) for raw in items]
    assert batch == single
    return batch


def check(backend, raw: bytes, reason: Reason, now: int = NOW_MS) -> None:
    """The envelope gives `reason` from verify_one and verify_batch, with the right id; the structural
    reasons (1..12) also come out of decode_envelope."""
    [(code, id_)] = verify_both_ways(backend, [raw], now)
    assert Reason(code) == reason
    if reason <= Reason.BAD_EXPIRY and reason != Reason.OK:
        assert id_ == ZERO_ID
        assert reason_of(backend.decode_envelope, raw) == reason
    else:
        assert id_ == expected_id(raw)
        decoded = backend.decode_envelope(raw)
        assert decoded[8] == id_


# -- building and decoding ------------------------------------------------------------------------------


def test_signed_bytes_and_encoding_match_the_spec(backend):
    fields = envelope_map(ALICE, kind="offer", body={"price": 1250, "sku": "A-1", "tags": ["x", b"\x00"]})
    raw = canonical(fields)
    unsigned = {k: v for k, v in fields.items() if k != "sig"}
    sb = backend.signed_bytes(fields["author"], fields["body"], fields["created"], fields["expires"], "offer")
    assert sb == SIGNING_PREFIX + canonical(unsigned)
    assert sb.startswith(b"vrm-envelope-v1\x00")
    assert sb == expected_signed_bytes(raw)
    enc = backend.encode_envelope(
        fields["author"], fields["body"], fields["created"], fields["expires"], "offer", fields["sig"]
    )
    assert enc == raw
    assert list(fields) != sorted(fields)  # the builder's dict is not sorted: the encoding sorts it
    assert raw.startswith(bytes.fromhex("87a6617574686f72c420"))  # map of 7, "author", bin 32


def test_decode_envelope_returns_every_field(backend):
    body = {"a": [1, -2, None, True], "b": b"\xff" * 40, "c": "é"}
    raw = build_envelope(BOB, kind="request", body=body, created=NOW_MS - 5, expires=NOW_MS + 10)
    v, kind, author, created, expires, got_body, sig, sb, id_ = backend.decode_envelope(raw)
    assert (v, kind, author, created, expires) == (1, "request", BOB.public_key, NOW_MS - 5, NOW_MS + 10)
    assert got_body == body
    assert sig == envelope_map(BOB, kind="request", body=body, created=NOW_MS - 5, expires=NOW_MS + 10)["sig"]
    assert sb == expected_signed_bytes(raw)
    assert id_ == hashlib.sha256(sb).digest()
    assert id_ == expected_id(raw)


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_verifies(backend, kind):
    check(backend, build_envelope(ALICE, kind=kind), Reason.OK)


def test_id_does_not_depend_on_the_signature(backend):
    raw = build_envelope(ALICE)
    other_sig = build_envelope(ALICE, sig=b"\x01" * 64)
    assert backend.decode_envelope(raw)[8] == backend.decode_envelope(other_sig)[8]
    assert backend.decode_envelope(raw)[8] != backend.decode_envelope(build_envelope(ALICE, body=2))[8]


def test_encode_envelope_refusals(backend):
    pk, sig, body = ALICE.public_key, b"\x00" * 64, {"x": 1}
    enc = backend.encode_envelope
    assert reason_of(enc, pk[:31], body, 1, 2, "intent", sig) == Reason.WRONG_TYPE
    assert reason_of(enc, pk + b"\x00", body, 1, 2, "intent", sig) == Reason.WRONG_TYPE
    assert reason_of(enc, pk, body, 1, 2, "intent", sig[:63]) == Reason.WRONG_TYPE
    assert reason_of(enc, pk, body, 1, 2, "nope", sig) == Reason.UNKNOWN_KIND
    assert reason_of(enc, pk, body, 2, 2, "intent", sig) == Reason.BAD_EXPIRY
    assert reason_of(enc, pk, body, 3, 2, "intent", sig) == Reason.BAD_EXPIRY
    assert reason_of(enc, pk, {"x": 1.5}, 1, 2, "intent", sig) == Reason.FLOAT_FORBIDDEN
    assert reason_of(enc, pk, b"\x00" * 70_000, 1, 2, "intent", sig) == Reason.TOO_LARGE
    assert enc(pk, body, 0, 2**63 - 1, "intent", sig)  # the largest times are fine


def _sized_envelope(total: int) -> bytes:
    """A validly signed envelope of exactly `total` bytes (body = bytes)."""
    base = len(build_envelope(ALICE, body=b""))
    for pad in range(total - base - 6, total - base + 1):
        raw = build_envelope(ALICE, body=b"\x00" * pad)
        if len(raw) == total:
            return raw
    raise AssertionError(total)


def test_size_cap_is_exactly_65536(backend):
    at_cap = _sized_envelope(65_536)
    check(backend, at_cap, Reason.OK)
    over = _sized_envelope(65_537)
    check(backend, over, Reason.TOO_LARGE)
    f = backend.decode_envelope(at_cap)
    assert backend.encode_envelope(f[2], f[5], f[3], f[4], f[1], f[6]) == at_cap
    assert reason_of(backend.encode_envelope, f[2], f[5] + b"\x00", f[3], f[4], f[1], f[6]) == Reason.TOO_LARGE


# -- tampering ----------------------------------------------------------------------------------------------


def test_tampering_with_any_byte_never_verifies(native, reference):
    raw = build_envelope(ALICE, kind="offer", body={"amount": 1999, "currency": "EUR", "note": "ok"})
    for backend, masks in ((native, (0x01, 0x80, 0xFF, 0x20)), (reference, (0x01,))):
        verifier = backend.Verifier()
        items = [flip(raw, i, m) for m in masks for i in range(len(raw))]
        codes, ids = verifier.verify_batch(items, NOW_MS)
        assert Reason.OK not in [Reason(c) for c in codes]
        for i, item in enumerate(items):  # tampered but decodable items get the id of what they say
            if codes[i] >= Reason.NOT_YET_VALID:
                assert ids[32 * i : 32 * i + 32] == expected_id(item)
        assert verifier.verify_batch([raw], NOW_MS)[0] == b"\x00"
    # and both backends classify every tampered copy the same way
    items = [flip(raw, i) for i in range(len(raw))]
    assert native.Verifier().verify_batch(items, NOW_MS) == reference.Verifier().verify_batch(items, NOW_MS)


# -- the public API: node.envelope -----------------------------------------------------------------------


def test_create_decode_verify_round_trip(backend):
    from node import envelope
    from node.identity import Identity

    me = Identity.generate()
    before = envelope.now_ms()
    env = envelope.create(me, "intent", {"want": "bike", "max": 30000}, ttl_ms=60_000, backend=backend)
    after = envelope.now_ms()
    assert before <= env.created <= after
    assert env.expires == env.created + 60_000
    assert (env.version, env.kind, env.author, env.body) == (1, "intent", me.public_key, {"want": "bike", "max": 30000})
    assert env.raw == canonical(envelope_map(None, public_key=me.public_key, kind="intent", body=env.body,
                                             created=env.created, expires=env.expires, sig=env.sig))  # fmt: skip
    signed = backend.signed_bytes(me.public_key, env.body, env.created, env.expires, "intent")
    assert signed.startswith(SIGNING_PREFIX)
    assert env.id == hashlib.sha256(signed).digest() == expected_id(env.raw)
    assert envelope.decode(env.raw, backend) == env
    # verifies on both backends whoever made it
    from node.backends import get_backend

    for other in ("native", "reference"):
        b = get_backend(other)
        assert envelope.verify(env.raw, env.created, b.Verifier(), b) == env
    with pytest.raises(EnvelopeError) as info:
        envelope.verify(env.raw, env.expires, backend.Verifier(), backend)
    assert info.value.reason == Reason.EXPIRED
    tampered = flip(env.raw, len(env.raw) - 10)  # inside the signature (the map ends with sig, v)
    with pytest.raises(EnvelopeError) as info:
        envelope.verify(tampered, env.created, backend.Verifier(), backend)
    assert info.value.reason == Reason.BAD_SIGNATURE


def test_create_is_deterministic_and_backend_independent(native, reference):
    from node import envelope
    from node.identity import Identity

    me = Identity.from_seed(bytes(range(32)))
    assert me.public_key == Author(bytes(range(32))).public_key
    a = envelope.create(me, "offer", {"p": 1}, created=NOW_MS, ttl_ms=1000, backend=native)
    b = envelope.create(me, "offer", {"p": 1}, created=NOW_MS, expires=NOW_MS + 1000, backend=reference)
    assert a == b
    assert a.raw == build_envelope(Author(bytes(range(32))), kind="offer", body={"p": 1}, created=NOW_MS, expires=NOW_MS + 1000)


def test_create_refusals(backend):
    from node import envelope
    from node.identity import Identity

    me = Identity.generate()
    with pytest.raises(EnvelopeError) as info:
        envelope.create(me, "nope", {}, ttl_ms=1000, backend=backend)
    assert info.value.reason == Reason.UNKNOWN_KIND
    with pytest.raises(EnvelopeError) as info:
        envelope.create(me, "intent", {}, ttl_ms=0, backend=backend)
    assert info.value.reason == Reason.BAD_EXPIRY
    with pytest.raises(EnvelopeError) as info:
        envelope.create(me, "intent", {"x": 0.5}, ttl_ms=10, backend=backend)
    assert info.value.reason == Reason.FLOAT_FORBIDDEN
    with pytest.raises(EnvelopeError) as info:
        envelope.create(me, "intent", b"\x00" * 70_000, ttl_ms=10, backend=backend)
    assert info.value.reason == Reason.TOO_LARGE
    with pytest.raises(EnvelopeError) as info:
        envelope.decode(b"\xc1", backend)
    assert info.value.reason == Reason.MALFORMED


# -- property tests: both backends build and read envelopes identically ----------------------------------

_scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=20) | st.binary(max_size=20)
_bodies = st.recursive(
    _scalars,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=5), c, max_size=4),
    max_leaves=15,
)
_times = st.integers(0, 2**63 - 1)


@given(body=_bodies, kind=st.sampled_from(KINDS), created=_times, expires=_times, author=st.integers(0, 7))
def test_property_encode_envelope_matches_msgpack(native, reference, body, kind, created, expires, author):
    pk = AUTHORS[author].public_key
    sig = bytes(range(64))
    results = []
    for backend in (native, reference):
        results.append(
            (
                outcome(backend.signed_bytes, pk, body, created, expires, kind),
                outcome(backend.encode_envelope, pk, body, created, expires, kind, sig),
            )
        )
    assert results[0] == results[1]
    (kind_sb, sb), (kind_env, raw) = results[0]
    if expires <= created:
        assert (kind_sb, sb) == (kind_env, raw) == ("err", Reason.BAD_EXPIRY)
        return
    fields = envelope_map(None, public_key=pk, body=body, kind=kind, created=created, expires=expires, sig=sig)
    if kind_env == "ok":
        assert raw == canonical(fields)
        assert sb == expected_signed_bytes(raw)
        assert native.decode_envelope(raw)[7:] == reference.decode_envelope(raw)[7:] == (sb, hashlib.sha256(sb).digest())
    else:  # only a too-deep body can fail here
        assert raw == Reason.TOO_DEEP


_field_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, NOW_MS, NOW_MS + 300_001]),
    st.sampled_from(["intent", "nope", "", "1"]),
    st.binary(min_size=0, max_size=3),
    st.sampled_from([b"\x00" * 31, b"\x00" * 32, b"\x00" * 64, b"\x00" * 65, NOT_A_POINT]),
    st.lists(st.integers(0, 2), max_size=2),
)


@given(
    changes=st.dictionaries(
        st.sampled_from(["author", "body", "created", "expires", "kind", "sig", "v", "x", "a", "zz"]),
        _field_values,
        max_size=3,
    ),
    drops=st.sets(st.sampled_from(["author", "body", "created", "expires", "kind", "sig", "v"]), max_size=2),
)
def test_property_field_variants_agree(native, reference, changes, drops):
    fields = envelope_map(ALICE)
    fields.update(changes)
    for name in drops:
        fields.pop(name, None)
    raw = canonical(fields)
    n, r = outcome(native.decode_envelope, raw), outcome(reference.decode_envelope, raw)
    assert n == r
    nv, rv = native.Verifier(), reference.Verifier()
    assert nv.verify_one(raw, NOW_MS) == rv.verify_one(raw, NOW_MS)
    assert nv.verify_batch([raw], NOW_MS) == rv.verify_batch([raw], NOW_MS)


def test_clock_outside_the_64_bit_range(native, reference):
    """The clock is an int64 of milliseconds: both implementations refuse anything else the same
    way, instead of one answering and the other raising."""
    raw = build_envelope(ALICE)
    for now in (2**63, 2**64, -(2**63) - 1):
        for backend in (native, reference):
            assert outcome(backend.Verifier().verify_one, raw, now) == ("exc", "OverflowError")
            assert outcome(backend.Verifier().verify_batch, [raw], now) == ("exc", "OverflowError")
    for now in (-1, -(2**63)):  # a clock before 1970: created is then in the future
        for backend in (native, reference):
            assert backend.Verifier().verify_one(raw, now)[0] == Reason.NOT_YET_VALID
