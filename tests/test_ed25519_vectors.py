"""Ed25519 under ZIP-215: the public suites in tests/vectors/public and the project's edge vectors.

Expected counts come from tests/vectors/public/README.md; per-item verdicts from each suite where it has one,
and for CCTV (flags only) from an independent textbook ZIP-215 check (tests/vectors/loaders.py), which
must itself reproduce the documented count. Single, batch and batch-with-fallback must all agree.
"""

from __future__ import annotations

import functools
import random

import pytest

from tests.vectors.loaders import (
    PUBLIC_SUITES,
    SigVector,
    cofactorless_verify,
    load_edge,
    zip215_verify,
)

SUITES = list(PUBLIC_SUITES)


@functools.cache
def suite(name: str) -> tuple[SigVector, ...]:
    loader, total, _ = PUBLIC_SUITES[name]
    vectors = tuple(loader())
    assert len(vectors) == total
    return vectors


@functools.cache
def expected(name: str) -> tuple[bool, ...]:
    """Per-item ZIP-215 verdicts: the suite's own where it has them, else the oracle's."""
    vectors = suite(name)
    if all(v.expected is not None for v in vectors):
        return tuple(bool(v.expected) for v in vectors)
    return tuple(zip215_verify(*v.item) for v in vectors)


def accepted_count(name: str) -> int:
    return PUBLIC_SUITES[name][2]


def mismatches(name: str, got) -> list[str]:
    return [
        f"{v.name}: expected {'valid' if e else 'invalid'}"
        for v, e, g in zip(suite(name), expected(name), got, strict=True)
        if bool(g) != e
    ]


@pytest.mark.parametrize("name", SUITES)
def test_expected_verdicts_match_the_documented_counts(name):
    """The oracle and the transcribed verdicts give the README's counts (checks the checker)."""
    assert sum(expected(name)) == accepted_count(name)
    if name != "cctv":  # the oracle agrees with the suites' own verdicts too
        assert [zip215_verify(*v.item) for v in suite(name)] == list(expected(name))


@pytest.mark.parametrize("name", SUITES)
def test_native_single(native, name):
    got = [native.ed25519_verify(*v.item) for v in suite(name)]
    assert all(type(g) is bool for g in got)
    assert sum(got) == accepted_count(name)
    assert mismatches(name, got) == []


@pytest.mark.parametrize("name", SUITES)
def test_native_batch_whole_suite_in_one_call(native, name):
    got = native.ed25519_verify_batch([v.item for v in suite(name)])
    assert isinstance(got, bytes) and set(got) <= {0, 1}
    assert sum(got) == accepted_count(name)
    assert mismatches(name, got) == []


@pytest.mark.parametrize("name", SUITES)
def test_native_batch_per_item(native, name):
    got = [native.ed25519_verify_batch([v.item]) for v in suite(name)]
    assert all(len(g) == 1 for g in got)
    flat = [g[0] for g in got]
    assert sum(flat) == accepted_count(name)
    assert mismatches(name, flat) == []


@pytest.mark.parametrize("name", SUITES)
def test_native_batch_check_accepts_exactly_the_accepted(native, name):
    vectors, verdicts = suite(name), expected(name)
    good = [v.item for v, ok in zip(vectors, verdicts) if ok]
    bad = [v for v, ok in zip(vectors, verdicts) if not ok]
    assert native.ed25519_batch_check(good) is True
    rng = random.Random(name)
    for v in bad:  # any single rejected item makes the combined equation fail, wherever it sits
        items = list(good)
        items.insert(rng.randrange(len(items) + 1), v.item)
        assert native.ed25519_batch_check(items) is False, v.name


@pytest.mark.parametrize("name", SUITES)
def test_reference_single(reference, name):
    got = [reference.ed25519_verify(*v.item) for v in suite(name)]
    assert sum(bool(g) for g in got) == accepted_count(name)
    assert mismatches(name, got) == []


@pytest.mark.parametrize("name", ["speccheck", "wycheproof", "rfc8032"])
def test_reference_batch(reference, name):
    got = reference.ed25519_verify_batch([v.item for v in suite(name)])
    assert sum(got) == accepted_count(name)
    assert mismatches(name, got) == []


@pytest.mark.parametrize("name", ["speccheck", "wycheproof", "rfc8032"])
def test_reference_batch_check(reference, name):
    vectors, verdicts = suite(name), expected(name)
    good = [v.item for v, ok in zip(vectors, verdicts) if ok]
    assert reference.ed25519_batch_check(good) is True
    for v in [v for v, ok in zip(vectors, verdicts) if not ok][:6]:
        assert reference.ed25519_batch_check(good[:5] + [v.item]) is False, v.name


def test_reference_batch_check_on_cctv_torsion(reference):
    """The cofactored batch equation accepts the CCTV items with torsion components (sampled)."""
    rng = random.Random(5)
    vectors, verdicts = suite("cctv"), expected("cctv")
    good = [v.item for v, ok in zip(vectors, verdicts) if ok]
    bad = [v.item for v, ok in zip(vectors, verdicts) if not ok]
    sample = rng.sample(good, 40)
    assert reference.ed25519_batch_check(sample) is True
    for item in rng.sample(bad, 3):
        assert reference.ed25519_batch_check(sample[:10] + [item]) is False


def test_native_random_mixed_batches_equal_single(native):
    """Batches drawn from every suite, mixed with rejected items at random positions: the batch
    answer (with its bisection fallback) equals the single check item by item."""
    rng = random.Random(215)
    pool = [(v.item, ok) for name in SUITES for v, ok in zip(suite(name), expected(name))]
    for _ in range(60):
        size = rng.choice((1, 2, 3, 7, 16, 33, 64, 100))
        chosen = rng.sample(pool, size)
        items = [item for item, _ in chosen]
        assert native.ed25519_verify_batch(items) == bytes(ok for _, ok in chosen)
        assert native.ed25519_batch_check(items) is all(ok for _, ok in chosen)


def test_wrong_lengths_are_false_not_errors(backend):
    v = suite("rfc8032")[0]
    pk, msg, sig = v.item
    assert backend.ed25519_verify(pk, msg, sig) is True
    for args in ((pk[:31], msg, sig), (pk + b"\x00", msg, sig), (pk, msg, sig[:63]), (pk, msg, sig + b"\x00"), (b"", b"", b"")):
        assert backend.ed25519_verify(*args) is False
        assert backend.ed25519_verify_batch([args, v.item]) == b"\x00\x01"
        assert backend.ed25519_batch_check([args]) is False
    assert backend.ed25519_batch_check([]) is True
    assert backend.ed25519_verify_batch([]) == b""


def test_one_bad_at_every_position_with_public_vectors(backend):
    """12 valid RFC 8032 / Wycheproof items; a rejected speccheck case at each position in turn."""
    good = [v.item for name in ("rfc8032", "wycheproof") for v, ok in zip(suite(name), expected(name)) if ok][:12]
    bad_cases = [v.item for v, ok in zip(suite("speccheck"), expected("speccheck")) if not ok]
    for pos in range(len(good) + 1):
        items = list(good)
        items.insert(pos, bad_cases[pos % len(bad_cases)])
        want = bytearray([1] * len(items))
        want[pos] = 0
        assert backend.ed25519_verify_batch(items) == bytes(want), pos


# -- the project's edge vectors (tests/vectors/edge.json) ---------------------------------------------------

EDGE = load_edge()
EDGE_GOOD = [v for v in EDGE if v.expected]
EDGE_BAD = [v for v in EDGE if not v.expected]


def test_edge_vectors_are_what_they_claim():
    """The JSON's verdicts agree with the independent oracle (ZIP-215 and cofactorless)."""
    assert len(EDGE_GOOD) >= 20 and len(EDGE_BAD) >= 5
    assert any(f == "cofactorless:false" for v in EDGE_GOOD for f in v.flags)  # cases that split networks
    for v in EDGE:
        assert zip215_verify(*v.item) == v.expected, v.name
        assert v.flags == (f"cofactorless:{str(cofactorless_verify(*v.item)).lower()}",), v.name


@pytest.mark.parametrize("vector", EDGE, ids=[v.name for v in EDGE])
def test_edge_vector_single_and_batch(backend, vector):
    assert backend.ed25519_verify(*vector.item) is vector.expected
    assert backend.ed25519_verify_batch([vector.item]) == bytes([vector.expected])
    # the fallback path: next to a bad item the combined check fails, bisection must decide alike
    bad = EDGE_BAD[0].item
    assert backend.ed25519_verify_batch([vector.item, bad]) == bytes([vector.expected, 0])
    assert backend.ed25519_verify_batch([bad, vector.item, bad]) == bytes([0, vector.expected, 0])
    assert backend.ed25519_batch_check([vector.item]) is vector.expected


def test_edge_vectors_in_one_batch(backend):
    assert backend.ed25519_verify_batch([v.item for v in EDGE]) == bytes(bool(v.expected) for v in EDGE)
    assert backend.ed25519_batch_check([v.item for v in EDGE_GOOD]) is True


def test_edge_batch_check_refuses_each_bad_item(native):
    good = [v.item for v in EDGE_GOOD]
    for v in EDGE_BAD:
        for pos in (0, len(good) // 2, len(good)):
            items = list(good)
            items.insert(pos, v.item)
            assert native.ed25519_batch_check(items) is False, (v.name, pos)


def test_edge_batch_check_refuses_bad_items_reference(reference):
    good = [v.item for v in EDGE_GOOD][::3]
    for v in EDGE_BAD:
        assert reference.ed25519_batch_check(good + [v.item]) is False, v.name


def test_edge_one_bad_at_every_position_native(native):
    good = [v.item for v in EDGE_GOOD]
    for bad in EDGE_BAD:
        for pos in range(len(good) + 1):
            items = list(good)
            items.insert(pos, bad.item)
            want = bytearray([1] * len(items))
            want[pos] = 0
            assert native.ed25519_verify_batch(items) == bytes(want), (bad.name, pos)


def test_edge_one_bad_at_every_position_reference(reference):
    good = [v.item for v in EDGE_GOOD if "torsion" in v.name or "small_order_A_T1" in v.name][:10]
    assert len(good) >= 6
    for pos in range(len(good) + 1):
        bad = EDGE_BAD[pos % len(EDGE_BAD)]
        items = list(good)
        items.insert(pos, bad.item)
        want = bytearray([1] * len(items))
        want[pos] = 0
        assert reference.ed25519_verify_batch(items) == bytes(want), (bad.name, pos)


def test_edge_native_equals_reference_on_random_mixes(native, reference):
    rng = random.Random(8)
    for _ in range(12):
        chosen = rng.sample(EDGE, rng.choice((2, 5, 9)))
        items = [v.item for v in chosen]
        want = bytes(bool(v.expected) for v in chosen)
        assert native.ed25519_verify_batch(items) == reference.ed25519_verify_batch(items) == want
