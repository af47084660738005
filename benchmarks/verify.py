"""Signature verification: native single and batch against pyca/cryptography on the same messages."""

from __future__ import annotations

from benchmarks.data import NOW_MS, Corpus
from benchmarks.harness import Bench, Suite

BASELINE = "verify.pyca.single"


def run(suite: Suite, native, reference, corpus: Corpus) -> None:
    items, envelopes, keys = corpus.items, corpus.envelopes, corpus.pyca_keys
    n = len(corpus)
    _check(native, reference, corpus)
    benches: list[Bench] = []

    def pyca():
        for key, (_, msg, sig) in zip(keys, items):
            key.verify(sig, msg)

    benches.append(Bench(BASELINE, f"pyca/cryptography Ed25519 verify (keys loaded, {n})", pyca, ops=n))

    ed_verify = native.ed25519_verify

    def native_raw():
        for pk, msg, sig in items:
            ed_verify(pk, msg, sig)

    benches.append(Bench("verify.native.ed25519_verify", "native ed25519_verify (single, raw)", native_raw,
                         ops=n, baseline=BASELINE))  # fmt: skip

    verifier = native.Verifier()
    one = verifier.verify_one

    def native_one():
        for raw in envelopes:
            one(raw, NOW_MS)

    benches.append(Bench("verify.native.verify_one", "native Verifier.verify_one (envelope)", native_one,
                         ops=n, baseline=BASELINE))  # fmt: skip

    for size in (64, 256):
        if size > n:
            continue
        chunks = [envelopes[i : i + size] for i in range(0, n - size + 1, size)]
        raw_chunks = [items[i : i + size] for i in range(0, n - size + 1, size)]
        batch = verifier.verify_batch
        ed_batch = native.ed25519_verify_batch

        def native_batch(chunks=chunks):
            for chunk in chunks:
                batch(chunk, NOW_MS)

        def native_raw_batch(raw_chunks=raw_chunks):
            for chunk in raw_chunks:
                ed_batch(chunk)

        benches.append(Bench(f"verify.native.batch{size}", f"native Verifier.verify_batch ({size}/batch, per sig)",
                             native_batch, ops=size * len(chunks), baseline=BASELINE))  # fmt: skip
        benches.append(Bench(f"verify.native.ed25519_batch{size}", f"native ed25519_verify_batch ({size}/batch, per sig)",
                             native_raw_batch, ops=size * len(raw_chunks), baseline=BASELINE))  # fmt: skip

    suite.run_group("verify", benches)

    if not suite.quick:  # the reference is ~50x slower than pyca: a few items are enough to place it
        ref_verifier = reference.Verifier()
        sample = envelopes[:8]

        def reference_one():
            for raw in sample:
                ref_verifier.verify_one(raw, NOW_MS)

        suite.run_group("verify", [Bench("verify.reference.verify_one", "reference Verifier.verify_one (pure Python)",
                                         reference_one, ops=len(sample), baseline=BASELINE)])  # fmt: skip


def _check(native, reference, corpus: Corpus) -> None:
    """Everything timed must really verify (a benchmark of failures would measure nothing)."""
    verifier = native.Verifier()
    codes, _ = verifier.verify_batch(corpus.envelopes, NOW_MS)
    if codes != bytes(len(corpus)):
        raise SystemExit(f"benchmark corpus does not verify natively: codes {set(codes)}")
    if not all(verifier.verify_one(raw, NOW_MS)[0] == 0 for raw in corpus.envelopes):
        raise SystemExit("benchmark corpus: verify_one disagrees")
    if native.ed25519_verify_batch(corpus.items) != bytes([1]) * len(corpus):
        raise SystemExit("benchmark corpus: ed25519_verify_batch refuses valid signatures")
    ref = reference.Verifier()
    if ref.verify_batch(corpus.envelopes[:4], NOW_MS)[0] != bytes(4):
        raise SystemExit("benchmark corpus does not verify on the reference")
