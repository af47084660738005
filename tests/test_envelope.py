"""Envelopes (PROTOCOL.md section 2): structure, signing, ids, verification order, batches, hostile input.

Envelopes are built here with msgpack + pyca/cryptography (tests/vectors/loaders.py), independently of
the code under test, so the tests can also make every kind of broken envelope.
"""

from __future__ import annotations

import hashlib
import random
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.errors import EnvelopeError
from node.reasons import ENVELOPE_REASONS, Reason
from tests.vectors.loaders import (
    ED25519_L,
    KINDS,
    NOW_MS,
    SIGNING_PREFIX,
    Author,
    build_envelope,
    canonical,
    cofactorless_verify,
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


# -- every reason, with the order rules ---------------------------------------------------------------------

W, MISS, UNK, VER, KIND, EXP = (
    Reason.WRONG_TYPE,
    Reason.MISSING_FIELD,
    Reason.UNKNOWN_FIELD,
    Reason.UNSUPPORTED_VERSION,
    Reason.UNKNOWN_KIND,
    Reason.BAD_EXPIRY,
)

STRUCTURE_CASES = {
    # 1. not a map
    "array": (lambda: canonical([1, 2]), W),
    "text": (lambda: canonical("envelope"), W),
    "nil": (lambda: canonical(None), W),
    "array-of-envelope": (lambda: canonical([envelope_map(ALICE)]), W),
    "empty-map": (lambda: canonical({}), MISS),
    # 2. v
    "v-missing": (lambda: build_envelope(ALICE, drop=("v",)), MISS),
    "v-missing+extra": (lambda: build_envelope(ALICE, drop=("v",), extra={"x": 1}), MISS),
    "v-missing+author-wrong": (lambda: build_envelope(ALICE, drop=("v",), public_key=b"x"), MISS),
    "v-text": (lambda: build_envelope(ALICE, v="1"), W),
    "v-negative": (lambda: build_envelope(ALICE, v=-1), W),
    "v-bool": (lambda: build_envelope(ALICE, v=True), W),
    "v-bytes": (lambda: build_envelope(ALICE, v=b"\x01"), W),
    "v-nil": (lambda: build_envelope(ALICE, v=None), W),
    "v-text+missing": (lambda: build_envelope(ALICE, v="1", drop=("kind",)), W),
    "v-0": (lambda: build_envelope(ALICE, v=0), VER),
    "v-2": (lambda: build_envelope(ALICE, v=2), VER),
    "v-max": (lambda: build_envelope(ALICE, v=2**64 - 1), VER),
    "v-2+extra": (lambda: build_envelope(ALICE, v=2, extra={"x": 1}), VER),
    "v-2+missing": (lambda: build_envelope(ALICE, v=2, drop=("author", "sig")), VER),
    "v-2+wrong-author": (lambda: build_envelope(ALICE, v=2, public_key=b"short"), VER),
    "v-2-only": (lambda: canonical({"v": 2}), VER),
    # 3. missing fields, in order
    **{
        f"missing-{name}": (lambda name=name: build_envelope(ALICE, drop=(name,)), MISS)
        for name in ("author", "body", "created", "expires", "kind", "sig")
    },
    "missing+extra": (lambda: build_envelope(ALICE, drop=("sig",), extra={"zz": 1}), MISS),
    "missing+wrong-type": (lambda: build_envelope(ALICE, drop=("expires",), public_key=b"x"), MISS),
    "missing+unknown-kind": (lambda: build_envelope(ALICE, drop=("body",), kind="nope"), MISS),
    "v-only": (lambda: canonical({"v": 1}), MISS),
    # 4. unknown fields
    "extra-x": (lambda: build_envelope(ALICE, extra={"x": 1}), UNK),
    "extra-first": (lambda: build_envelope(ALICE, extra={"a": 1}), UNK),
    "extra-last": (lambda: build_envelope(ALICE, extra={"zzz": None}), UNK),
    "extra-empty-key": (lambda: build_envelope(ALICE, extra={"": 0}), UNK),
    "extra-id": (lambda: build_envelope(ALICE, extra={"id": b"\x00" * 32}), UNK),
    "extra+wrong-type": (lambda: build_envelope(ALICE, extra={"x": 1}, public_key=b"x"), UNK),
    "extra+unknown-kind": (lambda: build_envelope(ALICE, extra={"x": 1}, kind="nope"), UNK),
    "extra+bad-expiry": (lambda: build_envelope(ALICE, extra={"x": 1}, expires=NOW_MS - 10**7), UNK),
    # 5. types
    "author-31": (lambda: build_envelope(ALICE, public_key=ALICE.public_key[:31]), W),
    "author-33": (lambda: build_envelope(ALICE, public_key=ALICE.public_key + b"\x00"), W),
    "author-text": (lambda: build_envelope(ALICE, public_key="a" * 32), W),
    "author-nil": (lambda: build_envelope(ALICE, public_key=None), W),
    "author-array": (lambda: build_envelope(ALICE, public_key=list(ALICE.public_key)), W),
    "created-negative": (lambda: build_envelope(ALICE, created=-1, expires=NOW_MS + 1000), W),
    "created-text": (lambda: build_envelope(ALICE, created="1", expires=NOW_MS + 1000), W),
    "created-bool": (lambda: build_envelope(ALICE, created=True, expires=NOW_MS + 1000), W),
    "created-2^63": (lambda: build_envelope(ALICE, created=2**63, expires=2**63 + 1), W),
    "expires-2^63": (lambda: build_envelope(ALICE, expires=2**63), W),
    "expires-max": (lambda: build_envelope(ALICE, expires=2**64 - 1), W),
    "expires-negative": (lambda: build_envelope(ALICE, expires=-5), W),
    "expires-nil": (lambda: build_envelope(ALICE, expires=None), W),
    "kind-bytes": (lambda: build_envelope(ALICE, kind=b"intent"), W),
    "kind-int": (lambda: build_envelope(ALICE, kind=1), W),
    "sig-63": (lambda: build_envelope(ALICE, sig=b"\x00" * 63), W),
    "sig-65": (lambda: build_envelope(ALICE, sig=b"\x00" * 65), W),
    "sig-text": (lambda: build_envelope(ALICE, sig="s" * 64), W),
    "sig-empty": (lambda: build_envelope(ALICE, sig=b""), W),
    "wrong-sig+unknown-kind": (lambda: build_envelope(ALICE, sig=b"\x00" * 63, kind="nope"), W),
    "wrong-created+unknown-kind": (lambda: build_envelope(ALICE, created="x", expires=5, kind="nope"), W),
    "wrong-author+bad-expiry": (lambda: build_envelope(ALICE, public_key=b"", expires=NOW_MS - 10**7), W),
    "wrong-sig+bad-expiry": (lambda: build_envelope(ALICE, sig=b"", expires=1), W),
    # 6. kind
    "kind-unknown": (lambda: build_envelope(ALICE, kind="nope"), KIND),
    "kind-capital": (lambda: build_envelope(ALICE, kind="Intent"), KIND),
    "kind-empty": (lambda: build_envelope(ALICE, kind=""), KIND),
    "kind-space": (lambda: build_envelope(ALICE, kind="intent "), KIND),
    "kind-nul": (lambda: build_envelope(ALICE, kind="intent\x00"), KIND),
    "kind-unknown+bad-expiry": (lambda: build_envelope(ALICE, kind="nope", expires=1), KIND),
    "kind-unknown+expired": (lambda: build_envelope(ALICE, kind="nope", created=1, expires=2), KIND),
    # 7. expiry
    "expires==created": (lambda: build_envelope(ALICE, created=NOW_MS, expires=NOW_MS), EXP),
    "expires<created": (lambda: build_envelope(ALICE, created=NOW_MS, expires=NOW_MS - 1), EXP),
    "expires=created=0": (lambda: build_envelope(ALICE, created=0, expires=0), EXP),
    "bad-expiry+bad-sig": (lambda: build_envelope(ALICE, created=NOW_MS, expires=1, sig=b"\x01" * 64), EXP),
    "bad-expiry+bad-key": (lambda: build_envelope(ALICE, expires=1, public_key=NOT_A_POINT), EXP),
}


@pytest.mark.parametrize("name", list(STRUCTURE_CASES))
def test_structure_reasons(backend, name):
    make, reason = STRUCTURE_CASES[name]
    check(backend, make(), reason)


def _good_sig_with(author: Author, **kwargs) -> bytes:
    return build_envelope(author, **kwargs)


def _bad_sig(author: Author, **kwargs) -> bytes:
    fields = envelope_map(author, **kwargs)
    fields["sig"] = flip(fields["sig"], 5)
    return canonical(fields)


def _s_plus_l(author: Author) -> bytes:
    fields = envelope_map(author)
    s = int.from_bytes(fields["sig"][32:], "little") + ED25519_L
    fields["sig"] = fields["sig"][:32] + s.to_bytes(32, "little")
    return canonical(fields)


def _undecodable_r(author: Author) -> bytes:
    fields = envelope_map(author)
    fields["sig"] = NOT_A_POINT + fields["sig"][32:]
    return canonical(fields)


def _torsion(author: Author, multiple: int = 1, **kwargs) -> bytes:
    """Validly signed except that R carries a small-order component: ZIP-215 accepts it."""
    fields = envelope_map(author, **kwargs)
    unsigned = {k: v for k, v in fields.items() if k != "sig"}
    fields["sig"] = author.sign_with_torsion(SIGNING_PREFIX + canonical(unsigned), multiple)
    return canonical(fields)


def test_torsion_envelopes_really_need_the_cofactored_check():
    for multiple in (1, 2, 4, 7):
        raw = _torsion(ALICE, multiple)
        sig = raw[-67:-3]  # the map ends with sig (c4 40 + 64 bytes), then "v": 1
        assert not cofactorless_verify(ALICE.public_key, expected_signed_bytes(raw), sig)


TIME_AND_SIG_CASES = {
    "ok": (lambda: build_envelope(ALICE), Reason.OK, NOW_MS),
    # time
    "created-at-skew-limit": (lambda: build_envelope(ALICE, created=NOW_MS + 300_000), Reason.OK, NOW_MS),
    "created-past-skew": (lambda: build_envelope(ALICE, created=NOW_MS + 300_001), Reason.NOT_YET_VALID, NOW_MS),
    "created-far-future": (lambda: build_envelope(ALICE, created=2**63 - 2, expires=2**63 - 1), Reason.NOT_YET_VALID, NOW_MS),
    "expires-now": (lambda: build_envelope(ALICE, created=NOW_MS - 10, expires=NOW_MS), Reason.EXPIRED, NOW_MS),
    "expires-now+1": (lambda: build_envelope(ALICE, created=NOW_MS - 10, expires=NOW_MS + 1), Reason.OK, NOW_MS),
    "expired-long-ago": (lambda: build_envelope(ALICE, created=0, expires=1), Reason.EXPIRED, NOW_MS),
    "expired+bad-sig": (lambda: _bad_sig(ALICE, created=1, expires=2), Reason.EXPIRED, NOW_MS),
    "expired+bad-key": (lambda: build_envelope(ALICE, created=1, expires=2, public_key=NOT_A_POINT), Reason.EXPIRED, NOW_MS),
    "not-yet-valid+bad-sig": (lambda: _bad_sig(ALICE, created=NOW_MS + 10**6), Reason.NOT_YET_VALID, NOW_MS),
    "not-yet-valid+bad-key": (lambda: build_envelope(ALICE, created=NOW_MS + 10**6, public_key=NOT_A_POINT), Reason.NOT_YET_VALID, NOW_MS),
    "clock-at-zero": (lambda: build_envelope(ALICE, created=0, expires=1), Reason.OK, 0),
    "clock-at-zero-future": (lambda: build_envelope(ALICE, created=300_001, expires=300_002), Reason.NOT_YET_VALID, 0),
    "clock-at-max": (lambda: build_envelope(ALICE, created=2**63 - 3, expires=2**63 - 1), Reason.EXPIRED, 2**63 - 1),
    "clock-near-max": (lambda: build_envelope(ALICE, created=2**63 - 3, expires=2**63 - 1), Reason.OK, 2**63 - 2),
    # lifetime (an intent lives at most 365 days), checked before the clock
    "lifetime-at-limit": (lambda: build_envelope(ALICE, created=NOW_MS, expires=NOW_MS + 365 * 86_400_000), Reason.OK, NOW_MS),
    "lifetime-past-limit": (lambda: build_envelope(ALICE, created=NOW_MS, expires=NOW_MS + 365 * 86_400_000 + 1), Reason.TOO_LONG_LIVED, NOW_MS),
    "lifetime-forever": (lambda: build_envelope(ALICE, created=0, expires=2**63 - 1), Reason.TOO_LONG_LIVED, NOW_MS),
    "lifetime+expired+bad-sig": (lambda: _bad_sig(ALICE, created=0, expires=366 * 86_400_000), Reason.TOO_LONG_LIVED, NOW_MS),
    # key
    "bad-key": (lambda: build_envelope(ALICE, public_key=NOT_A_POINT), Reason.BAD_KEY, NOW_MS),
    "bad-key+bad-sig": (lambda: build_envelope(ALICE, public_key=NOT_A_POINT, sig=b"\x00" * 64), Reason.BAD_KEY, NOW_MS),
    "bad-key-all-ff": (lambda: build_envelope(ALICE, public_key=b"\xff" * 32), None, NOW_MS),
    # ZIP-215 keys: non-canonical encodings of a point are keys, so a matching signature verifies
    "identity-key-noncanonical": (lambda: build_envelope(None, public_key=IDENTITY_NONCANONICAL, sig=identity_key_signature()), Reason.OK, NOW_MS),
    "identity-key-signed-zero": (lambda: build_envelope(None, public_key=IDENTITY_SIGNED_ZERO, sig=identity_key_signature()), Reason.OK, NOW_MS),
    # R with a torsion component: valid under ZIP-215's cofactored equation (not under a cofactorless one)
    "torsion-R-order-8": (lambda: _torsion(ALICE, 1), Reason.OK, NOW_MS),
    "torsion-R-order-2": (lambda: _torsion(BOB, 4), Reason.OK, NOW_MS),
    "torsion-R-expired": (lambda: _torsion(ALICE, 3, created=1, expires=2), Reason.EXPIRED, NOW_MS),
    "torsion-R-tampered": (lambda: flip(_torsion(ALICE, 1), -10), Reason.BAD_SIGNATURE, NOW_MS),
    # signature
    "sig-bit-flipped": (lambda: _bad_sig(ALICE), Reason.BAD_SIGNATURE, NOW_MS),
    "sig-zero": (lambda: build_envelope(ALICE, sig=b"\x00" * 64), Reason.BAD_SIGNATURE, NOW_MS),
    "sig-by-other-key": (lambda: build_envelope(BOB, public_key=ALICE.public_key), Reason.BAD_SIGNATURE, NOW_MS),
    "sig-of-other-body": (lambda: build_envelope(ALICE, sig=envelope_map(ALICE, body=1)["sig"]), Reason.BAD_SIGNATURE, NOW_MS),
    "sig-S-plus-l": (lambda: _s_plus_l(ALICE), Reason.BAD_SIGNATURE, NOW_MS),
    "sig-R-undecodable": (lambda: _undecodable_r(ALICE), Reason.BAD_SIGNATURE, NOW_MS),
    "sig-without-prefix": (lambda: build_envelope(ALICE, sig=ALICE.sign(canonical({k: v for k, v in envelope_map(ALICE).items() if k != "sig"}))), Reason.BAD_SIGNATURE, NOW_MS),
}


@pytest.mark.parametrize("name", list(TIME_AND_SIG_CASES))
def test_time_key_and_signature_reasons(backend, name):
    make, reason, now = TIME_AND_SIG_CASES[name]
    raw = make()
    if reason is None:  # b"\xff"*32 is y = 2^255-1 mod p with sign 1: decide by the independent oracle
        reason = Reason.BAD_KEY if zip215_decode_point(b"\xff" * 32) is None else Reason.BAD_SIGNATURE
    check(backend, raw, reason, now)


CODEC_CASES = {
    "trailing-byte": (lambda: build_envelope(ALICE) + b"\x00", Reason.TRAILING_BYTES),
    "truncated": (lambda: build_envelope(ALICE)[:-1], Reason.MALFORMED),
    "empty": (lambda: b"", Reason.MALFORMED),
    "float-body": (lambda: build_envelope(ALICE, body={"price": 1.5}), Reason.FLOAT_FORBIDDEN),
    "float-created": (lambda: build_envelope(ALICE, created=1.0, expires=2), Reason.FLOAT_FORBIDDEN),
    "body-depth-16": (lambda: build_envelope(ALICE, body=_nest(15)), Reason.OK),
    "body-depth-17": (lambda: build_envelope(ALICE, body=_nest(16)), Reason.TOO_DEEP),
    "unsorted-keys": (lambda: _unsorted(envelope_map(ALICE)), Reason.NON_CANONICAL),
    "long-int-created": (lambda: _replace(build_envelope(ALICE, created=5, expires=NOW_MS + 1000), b"\xa7created\x05", b"\xa7created\xcc\x05"), Reason.NON_CANONICAL),
    "ext-in-body": (lambda: _replace(build_envelope(ALICE, body=None), b"\xa4body\xc0", b"\xa4body\xd4\x00\x00"), Reason.MALFORMED),
    "huge-map": (lambda: b"\xdf\xff\xff\xff\xff", Reason.MALFORMED),
    "huge-bin": (lambda: b"\xc6\xff\xff\xff\xff", Reason.MALFORMED),
    "huge-array": (lambda: b"\xdd\xff\xff\xff\xff", Reason.MALFORMED),
    "huge-str-key": (lambda: b"\x81\xdb\xff\xff\xff\xff", Reason.MALFORMED),
    "oversize": (lambda: b"\x00" * 65_537, Reason.TOO_LARGE),
    "oversize-huge": (lambda: build_envelope(ALICE) + b"\x00" * 70_000, Reason.TOO_LARGE),
    "deep": (lambda: b"\x91" * 5000, Reason.TOO_DEEP),
    "deep-maps": (lambda: b"\x81\xa1k" * 1000, Reason.TOO_DEEP),
}


def _nest(levels: int):
    value: list = []
    for _ in range(levels - 1):
        value = [value]
    return value


def _unsorted(fields: dict) -> bytes:
    import msgpack

    return msgpack.packb(dict(reversed(list(canonical_order(fields).items()))), use_bin_type=True)


def canonical_order(fields: dict) -> dict:
    return {k: fields[k] for k in sorted(fields)}


def _replace(raw: bytes, old: bytes, new: bytes) -> bytes:
    assert raw.count(old) == 1, (raw, old)
    return raw.replace(old, new)


@pytest.mark.parametrize("name", list(CODEC_CASES))
def test_codec_reasons_through_verification(backend, name):
    make, reason = CODEC_CASES[name]
    check(backend, make(), reason)


def test_every_reason_code_is_produced(backend):
    """All 18 envelope codes (0 to 16 and 30) come out of the verifier (batch and single) for the inputs above."""
    items, nows = [], []
    for make, _ in STRUCTURE_CASES.values():
        items.append(make())
        nows.append(NOW_MS)
    for make, _, now in TIME_AND_SIG_CASES.values():
        items.append(make())
        nows.append(now)
    for make, _ in CODEC_CASES.values():
        items.append(make())
        nows.append(NOW_MS)
    verifier = backend.Verifier()
    seen = {verifier.verify_one(raw, now)[0] for raw, now in zip(items, nows)}
    seen |= set(verifier.verify_batch([raw for raw, now in zip(items, nows) if now == NOW_MS], NOW_MS)[0])
    assert {Reason(c) for c in seen} == ENVELOPE_REASONS


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


# -- batches ------------------------------------------------------------------------------------------------


def mixed_items() -> list[bytes]:
    items = [build_envelope(a, kind=KINDS[i % len(KINDS)], body={"i": i}) for i, a in enumerate(AUTHORS[:8])]
    items += [make() for make, _ in list(STRUCTURE_CASES.values())[::7]]
    items += [make() for make, _, now in TIME_AND_SIG_CASES.values() if now == NOW_MS]
    items += [make() for make, _ in CODEC_CASES.values() if len(make()) < 10_000]
    items += [build_envelope(ALICE)] * 3  # duplicates are verified each time
    random.Random(7).shuffle(items)
    return items


def test_batch_equals_one_by_one_on_a_mixed_batch(backend):
    items = mixed_items()
    results = verify_both_ways(backend, items)
    codes = [Reason(c) for c, _ in results]
    assert codes.count(Reason.OK) >= 8 + 3
    assert {Reason.BAD_SIGNATURE, Reason.BAD_KEY, Reason.EXPIRED, Reason.MALFORMED} <= set(codes)
    for raw, (code, id_) in zip(items, results):
        if code == Reason.OK or code >= Reason.NOT_YET_VALID:
            assert id_ == expected_id(raw)
        else:
            assert id_ == ZERO_ID


def test_native_and_reference_agree_on_a_mixed_batch(native, reference):
    items = mixed_items()
    assert native.Verifier().verify_batch(items, NOW_MS) == reference.Verifier().verify_batch(items, NOW_MS)


def test_empty_batch(backend):
    assert tuple(backend.Verifier().verify_batch([], NOW_MS)) == (b"", b"")


def _good_batch(n: int) -> list[bytes]:
    return [build_envelope(AUTHORS[i % len(AUTHORS)], body={"n": i}) for i in range(n)]


@pytest.mark.parametrize("size", [16])
def test_one_bad_signature_at_every_position(backend, size):
    good = _good_batch(size)
    verifier = backend.Verifier()
    codes, ids = verifier.verify_batch(good, NOW_MS)
    assert codes == bytes(size)
    for pos in range(size):
        items = list(good)
        items[pos] = _bad_sig(AUTHORS[pos % len(AUTHORS)], body={"n": pos})
        codes, ids = verifier.verify_batch(items, NOW_MS)
        expected = bytearray(size)
        expected[pos] = Reason.BAD_SIGNATURE
        assert codes == bytes(expected), pos
        assert ids[32 * pos : 32 * pos + 32] == expected_id(items[pos])


@pytest.mark.parametrize("size", [64, 200])
def test_one_bad_signature_at_every_position_native(native, size):
    good = _good_batch(size)
    verifier = native.Verifier()
    positions = range(size) if size <= 64 else sorted({0, 1, size // 2, size - 2, size - 1, 63, 64, 127, 128})
    for pos in positions:
        items = list(good)
        items[pos] = _bad_sig(AUTHORS[pos % len(AUTHORS)], body={"n": pos})
        codes, _ = verifier.verify_batch(items, NOW_MS)
        expected = bytearray(size)
        expected[pos] = Reason.BAD_SIGNATURE
        assert codes == bytes(expected), pos


def test_several_bad_signatures(backend):
    rng = random.Random(3)
    good = _good_batch(16)
    verifier = backend.Verifier()
    for trial in range(4):
        bad = set(rng.sample(range(16), trial + 2))
        items = [(_bad_sig(AUTHORS[i], body={"n": i}) if i in bad else raw) for i, raw in enumerate(good)]
        codes, _ = verifier.verify_batch(items, NOW_MS)
        assert [i for i, c in enumerate(codes) if c] == sorted(bad)
        assert set(codes) == {0, Reason.BAD_SIGNATURE}
    all_bad = [_bad_sig(AUTHORS[i], body={"n": i}) for i in range(8)]
    assert verifier.verify_batch(all_bad, NOW_MS)[0] == bytes([Reason.BAD_SIGNATURE]) * 8


def test_batch_with_low_order_author_and_torsion(backend):
    """A batch mixing ordinary items with identity-key items and torsion-component signatures (all
    valid under ZIP-215) accepts them all, and still pins a bad signature among them."""
    items = _good_batch(6)
    items.insert(2, build_envelope(None, public_key=IDENTITY_NONCANONICAL, sig=identity_key_signature()))
    items.insert(5, build_envelope(None, public_key=IDENTITY_SIGNED_ZERO, sig=identity_key_signature(b"\x07" * 32)))
    items += [_torsion(AUTHORS[10 + m], m, body={"m": m}) for m in range(1, 8)]
    results = verify_both_ways(backend, items)
    assert [c for c, _ in results] == [0] * 15
    rng = random.Random(8)
    verifier = backend.Verifier()
    for pos in rng.sample(range(len(items)), 4):
        mixed = list(items)
        mixed[pos] = flip(mixed[pos], -10)
        want = bytearray(len(items))
        want[pos] = Reason.BAD_SIGNATURE
        assert verifier.verify_batch(mixed, NOW_MS)[0] == bytes(want), pos


@pytest.mark.parametrize("size", [16])
def test_torsion_item_at_every_position_is_accepted(backend, size):
    """Cofactored batch == cofactored single: a torsion-component signature anywhere in a batch."""
    verifier = backend.Verifier()
    good = _good_batch(size)
    for pos in range(size):
        items = list(good)
        items[pos] = _torsion(AUTHORS[pos], 1 + pos % 7, body={"n": pos})
        assert verifier.verify_batch(items, NOW_MS)[0] == bytes(size), pos


# -- the key cache ------------------------------------------------------------------------------------------------


def test_native_key_cache_fills_and_is_bounded(native):
    verifier = native.Verifier(key_cache_size=4096)
    assert verifier.cache_len() == 0
    verifier.verify_one(build_envelope(ALICE), NOW_MS)
    assert verifier.cache_len() == 1
    verifier.verify_one(build_envelope(ALICE, body=3), NOW_MS)
    assert verifier.cache_len() == 1  # same author, same entry
    items = [build_envelope(a) for a in AUTHORS[:10]]
    assert verifier.verify_batch(items, NOW_MS)[0] == bytes(10)
    assert verifier.cache_len() == 10

    small = native.Verifier(key_cache_size=4)
    codes, _ = small.verify_batch([build_envelope(a) for a in AUTHORS[:20]], NOW_MS)
    assert codes == bytes(20)
    assert 1 <= small.cache_len() <= 4
    for a in AUTHORS[20:40]:
        assert small.verify_one(build_envelope(a), NOW_MS)[0] == 0
        assert small.cache_len() <= 4
    assert small.cache_len() == 4


def test_key_cache_never_caches_verdicts(backend):
    verifier = backend.Verifier(key_cache_size=2)
    good, bad = build_envelope(ALICE), _bad_sig(ALICE)
    for _ in range(3):
        assert verifier.verify_one(good, NOW_MS)[0] == Reason.OK
        assert verifier.verify_one(bad, NOW_MS)[0] == Reason.BAD_SIGNATURE
    assert verifier.verify_batch([good, bad, good], NOW_MS)[0] == bytes([0, 16, 0])
    # a thrashing cache gives the same answers as a fresh verifier
    items = [build_envelope(a) for a in AUTHORS[:6]] + [_bad_sig(BOB)]
    assert verifier.verify_batch(items, NOW_MS) == backend.Verifier().verify_batch(items, NOW_MS)


def test_native_verifier_shared_between_threads(native):
    verifier = native.Verifier(key_cache_size=8)
    items = _good_batch(48)
    items[17] = _bad_sig(AUTHORS[17], body={"n": 17})
    expected = verifier.verify_batch(items, NOW_MS)
    errors: list[BaseException] = []

    def work():
        try:
            for _ in range(5):
                assert verifier.verify_batch(items, NOW_MS) == expected
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert expected[0][17] == Reason.BAD_SIGNATURE and expected[0].count(0) == 47


# -- hostile input ---------------------------------------------------------------------------------------


def test_random_bytes_never_crash_and_agree(native, reference):
    rng = random.Random(99)
    items = [rng.randbytes(rng.randrange(0, 300)) for _ in range(400)]
    items += [bytes([0x87]) + rng.randbytes(rng.randrange(0, 200)) for _ in range(200)]
    n = native.Verifier().verify_batch(items, NOW_MS)
    r = reference.Verifier().verify_batch(items, NOW_MS)
    assert n == r
    assert Reason.OK not in set(n[0])


@pytest.mark.parametrize(
    "bad_item", [None, 123, "text", ["list"], 1.5, object()], ids=lambda v: type(v).__name__
)
def test_non_bytes_items_raise_type_error(backend, bad_item):
    verifier = backend.Verifier()
    with pytest.raises(TypeError):
        verifier.verify_batch([build_envelope(ALICE), bad_item], NOW_MS)
    with pytest.raises(TypeError):
        verifier.verify_one(bad_item, NOW_MS)
    assert verifier.verify_one(build_envelope(ALICE), NOW_MS)[0] == 0  # still works afterwards


def test_non_sequence_and_bad_clock_raise_cleanly(backend):
    verifier = backend.Verifier()
    with pytest.raises(TypeError):
        verifier.verify_batch(None, NOW_MS)
    with pytest.raises(TypeError):
        verifier.verify_one(build_envelope(ALICE), "now")
    with pytest.raises(TypeError):
        backend.decode_envelope(None)


def test_bytes_like_items_agree(native, reference):
    raw = build_envelope(ALICE)
    for item in (bytearray(raw), memoryview(raw)):
        assert outcome(native.Verifier().verify_one, item, NOW_MS) == outcome(
            reference.Verifier().verify_one, item, NOW_MS
        )


def test_decode_envelope_errors_are_envelope_errors(backend):
    for raw in (b"", b"\xc1", b"\x91" * 70_000, b"\xdf\xff\xff\xff\xff", canonical([1])):
        with pytest.raises(EnvelopeError):
            backend.decode_envelope(raw)


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
