"""Envelopes (PROTOCOL.md section 2) verified in batches: a batch equals one-by-one verification and the
reference twin, bad signatures and torsion at every position, the key cache, and hostile input.
"""

from __future__ import annotations

import random
import threading

import pytest

from node.errors import EnvelopeError
from node.reasons import Reason
from tests.vectors.loaders import (
    KINDS,
    NOW_MS,
    build_envelope,
    canonical,
    expected_id,
    outcome,
)
from tests.test_envelope import (
    ALICE,
    AUTHORS,
    BOB,
    IDENTITY_NONCANONICAL,
    IDENTITY_SIGNED_ZERO,
    ZERO_ID,
    flip,
    identity_key_signature,
    verify_both_ways,
)
from tests.test_envelope_reasons import CODEC_CASES, STRUCTURE_CASES, TIME_AND_SIG_CASES, _bad_sig, _torsion


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


def test_hot_key_tables_never_change_a_verdict(native, reference):
    """A key that signs often is checked with a fixed-base table of its multiples: the verdicts stay
    the reference's on good, forged, torsion-component and hostile envelopes, and no table is built
    before its key's uses reach the threshold."""
    hot = native.Verifier(hot_key_uses=2)
    plain = reference.Verifier()
    items = mixed_items() + [_torsion(a, 1 + i % 7, body={"t": i}) for i, a in enumerate(AUTHORS[:8])]
    items += [_bad_sig(a, body={"b": i}) for i, a in enumerate(AUTHORS[:8])]
    assert hot.hot_keys_len() == 0
    for round_ in range(3):  # the first use of each key is plain, later ones use its table
        for raw in items:
            assert hot.verify_one(raw, NOW_MS) == tuple(plain.verify_one(raw, NOW_MS)), (round_, raw.hex())
    assert hot.hot_keys_len() >= 8
    # the default waits for 64 uses of one key
    default = native.Verifier()
    good, bad = build_envelope(ALICE), _bad_sig(ALICE)
    for _ in range(63):
        assert default.verify_one(good, NOW_MS)[0] == Reason.OK
    assert default.hot_keys_len() == 0
    assert default.verify_one(good, NOW_MS)[0] == Reason.OK
    assert default.hot_keys_len() == 1
    assert default.verify_one(bad, NOW_MS)[0] == Reason.BAD_SIGNATURE
    assert default.verify_one(good, NOW_MS)[0] == Reason.OK
    assert default.verify_one(_torsion(ALICE, 3), NOW_MS)[0] == Reason.OK


def test_hot_key_tables_are_bounded(native):
    small = native.Verifier(hot_keys=2, hot_key_uses=1)
    for a in AUTHORS[:10]:
        assert small.verify_one(build_envelope(a), NOW_MS)[0] == Reason.OK
        assert small.hot_keys_len() <= 2
    assert small.hot_keys_len() == 2
    none = native.Verifier(hot_keys=0, hot_key_uses=1)
    for _ in range(3):
        assert none.verify_one(build_envelope(ALICE), NOW_MS)[0] == Reason.OK
    assert none.hot_keys_len() == 0


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
