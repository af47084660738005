"""Envelopes (PROTOCOL.md section 2): every reason code a verifier gives, with the order rules between
them (structure, then time and key, then signature; the codec's own refusals through verification).

The broken envelopes are built with tests/vectors/loaders.py, as in tests/test_envelope.py.
"""

from __future__ import annotations


import pytest

from node.reasons import ENVELOPE_REASONS, Reason
from tests.vectors.loaders import (
    ED25519_L,
    NOW_MS,
    SIGNING_PREFIX,
    Author,
    build_envelope,
    canonical,
    cofactorless_verify,
    envelope_map,
    expected_signed_bytes,
    zip215_decode_point,
)
from tests.test_envelope import (
    ALICE,
    BOB,
    IDENTITY_NONCANONICAL,
    IDENTITY_SIGNED_ZERO,
    NOT_A_POINT,
    check,
    flip,
    identity_key_signature,
)


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
