"""Differential fuzzing of whole envelopes: native and reference must give identical codes and ids on
mutated valid envelopes, and nothing may crash the interpreter.

A fixed-seed random.Random drives it, so a failure is reproducible; the hex of the first disagreeing
item is in the assertion message.
"""

from __future__ import annotations

import random

import pytest

from tests.vectors.loaders import (
    KINDS,
    NOW_MS,
    Author,
    canonical,
    envelope_map,
    mutate,
    outcome,
    tagged,
)

AUTHORS = [Author.numbered(100 + i) for i in range(6)]
P = 2**255 - 19

FIELD_POOL = [
    None, True, 0, 1, 2, -1, 2**63 - 1, 2**63, 2**64 - 1, "", "intent", "nope", "x" * 40,
    b"", b"\x00" * 31, b"\x00" * 32, b"\xff" * 32, (1 + P).to_bytes(32, "little"), b"\x00" * 64,
    [], [1, 2], {}, {"a": 1}, NOW_MS, NOW_MS + 300_001, NOW_MS - 1,
]  # fmt: skip


def corpus(rng: random.Random) -> list[bytes]:
    """Valid envelopes, plus field-level variants (wrong types, missing/extra keys, odd times)."""
    out = []
    for i in range(24):
        author = AUTHORS[i % len(AUTHORS)]
        body = rng.choice(
            [None, 0, "text", {"amount": 1999, "currency": "EUR"}, [1, [2, [3]]], {"blob": b"\x01" * 40, "k": "é"}]
        )
        created = NOW_MS - rng.choice((0, 1000, 10**6))
        fields = envelope_map(author, kind=KINDS[i % len(KINDS)], body=body, created=created,
                              expires=created + rng.choice((1, 10**7, 10**9, 10**10)))  # fmt: skip
        out.append(canonical(fields))
        variant = dict(fields)
        op = rng.randrange(4)
        name = rng.choice(sorted(variant))
        if op == 0:
            variant[name] = rng.choice(FIELD_POOL)
        elif op == 1:
            del variant[name]
        elif op == 2:
            variant[rng.choice(("a", "x", "zz", "id"))] = rng.choice(FIELD_POOL)
        else:
            variant["v"] = rng.choice((0, 2, "1", None))
        try:
            out.append(canonical(variant))
        except Exception:  # noqa: BLE001 - msgpack cannot pack some pool values (2**64 fits; fine)
            pass
    return out


def _chunks(items, size):
    for i in range(0, len(items), size):
        yield items[i : i + size]


@pytest.mark.parametrize("seed", [1, 2])
def test_mutated_envelopes_native_equals_reference(native, reference, seed):
    rng = random.Random(seed)
    base = corpus(rng)
    items = list(base)
    while len(items) < 1500:
        raw = rng.choice(base)
        if rng.random() < 0.3:  # a single bit flip: often still structurally valid
            i = rng.randrange(len(raw))
            items.append(raw[:i] + bytes([raw[i] ^ (1 << rng.randrange(8))]) + raw[i + 1 :])
        else:
            items.append(mutate(raw, rng))
    native_verifier = native.Verifier(key_cache_size=16)
    reference_verifier = reference.Verifier(key_cache_size=16)
    native_codes, native_ids = bytearray(), bytearray()
    for chunk in _chunks(items, 64):
        codes, ids = native_verifier.verify_batch(chunk, NOW_MS)
        native_codes += codes
        native_ids += ids
    disagreements = []
    for i, raw in enumerate(items):
        n_single = native_verifier.verify_one(raw, NOW_MS)
        r_single = tuple(reference_verifier.verify_one(raw, NOW_MS))
        n_batch = (native_codes[i], bytes(native_ids[32 * i : 32 * i + 32]))
        if not (tuple(n_single) == r_single == n_batch):
            disagreements.append((raw.hex(), tuple(n_single), r_single, n_batch))
    assert disagreements == []
    # the reference batch path too, on a slice
    sample = items[:200]
    assert reference_verifier.verify_batch(sample, NOW_MS) == native_verifier.verify_batch(sample, NOW_MS)
    # a good share of the mutations must get past the structure checks, or the test proves little
    assert sum(1 for c in native_codes if c >= 13 or c == 0) > 150
    assert len(set(native_codes)) >= 10


@pytest.mark.parametrize("seed", [3])
def test_mutated_envelopes_decode_envelope_agrees(native, reference, seed):
    rng = random.Random(seed)
    base = corpus(rng)
    for _ in range(3000):
        raw = mutate(rng.choice(base), rng)
        n, r = outcome(native.decode_envelope, raw), outcome(reference.decode_envelope, raw)
        if n[0] == "ok" and r[0] == "ok":
            assert tagged(list(n[1])) == tagged(list(r[1])), raw.hex()
        else:
            assert n == r, raw.hex()
        n, r = outcome(native.decode, raw), outcome(reference.decode, raw)
        assert (n[0], tagged(n[1]) if n[0] == "ok" else n[1]) == (r[0], tagged(r[1]) if r[0] == "ok" else r[1]), raw.hex()


def test_random_garbage_batches(native, reference):
    rng = random.Random(4)
    items = []
    for _ in range(1000):
        n = rng.choice((0, 1, 2, 5, 9, 40, 200))
        prefix = rng.choice((b"", b"\x87", b"\x87\xa6author\xc4\x20", b"\xdf", b"\xdd", b"\x91" * 20))
        items.append(prefix + rng.randbytes(n))
    n = native.Verifier().verify_batch(items, NOW_MS)
    r = reference.Verifier().verify_batch(items, NOW_MS)
    assert n == r
    assert 0 not in n[0]


# -- arguments that size memory: bounded, with a clear error (never an abort or a PanicException) ------------

HUGE = [2**30, 2**31, 2**63 - 1, 2**63]


@pytest.mark.parametrize("name", ["key_cache_size", "recent_ids", "threads", "hot_keys", "hot_key_uses"])
@pytest.mark.parametrize("value", HUGE)
def test_verifier_sizes_are_bounded(backend, name, value):
    with pytest.raises(ValueError, match=name):
        backend.Verifier(**{name: value})


@pytest.mark.parametrize("name", ["key_cache_size", "recent_ids", "threads", "hot_keys", "hot_key_uses"])
@pytest.mark.parametrize("value", [-1, -(2**63), 2**64, 2**100])
def test_verifier_sizes_out_of_64_bits_overflow(backend, name, value):
    with pytest.raises(OverflowError):
        backend.Verifier(**{name: value})


def test_verifier_size_edges(backend):
    assert backend.Verifier(131_072, threads=64, recent_ids=1 << 20).cache_len() == 0
    assert backend.Verifier(0, threads=1, recent_ids=0).recent_len() == 0
    for bad in (131_073,):
        with pytest.raises(ValueError, match="between 0 and 131072"):
            backend.Verifier(bad)
    with pytest.raises(ValueError, match="threads must be between 1 and 64"):
        backend.Verifier(threads=0)
    with pytest.raises(ValueError, match="recent_ids"):
        backend.Verifier(recent_ids=(1 << 20) + 1)
    backend.Verifier(hot_keys=0, hot_key_uses=1)
    backend.Verifier(hot_keys=1024, hot_key_uses=1 << 20)
    with pytest.raises(ValueError, match="hot_keys must be between 0 and 1024"):
        backend.Verifier(hot_keys=1025)
    with pytest.raises(ValueError, match="hot_key_uses must be between 1 and 1048576"):
        backend.Verifier(hot_key_uses=0)
    with pytest.raises(TypeError):
        backend.Verifier("4096")
