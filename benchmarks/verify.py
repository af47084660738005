"""Signature verification: native single and batch against pyca/cryptography on the same messages."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from benchmarks.data import NOW_MS, Corpus, make_intents, subscriptions
from benchmarks.harness import Bench, Suite

BASELINE = "verify.pyca.single"
PER_CALL = 1024  # envelopes per call for the threads and ingest comparisons
ONE_THREAD = "verify.native.batch1024.threads1"
THREADS = "verify.native.batch1024.threads"  # every core the Verifier has
# The threaded gate's baseline: what the machine's cores give the same work in the same rounds.
SIDE_BY_SIDE = "verify.native.batch1024.side_by_side"
SEPARATE = "ingest.native.separate"


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

    # verify_one as a node runs it for signers it has seen before (pyca's keys are loaded too): each
    # author has been checked hot_key_uses (64) times, so its key has a fixed-base table. And for
    # authors never seen: no tables, every check the plain one.
    verifier = native.Verifier()
    _warm_hot_keys(verifier, corpus)
    one = verifier.verify_one
    cold_one = native.Verifier(hot_keys=0).verify_one

    def native_one():
        for raw in envelopes:
            one(raw, NOW_MS)

    def native_one_cold():
        for raw in envelopes:
            cold_one(raw, NOW_MS)

    benches.append(Bench("verify.native.verify_one", "native Verifier.verify_one (envelope, known signers)", native_one,
                         ops=n, baseline=BASELINE))  # fmt: skip
    benches.append(Bench("verify.native.verify_one_cold", "native Verifier.verify_one (envelope, no key tables)",
                         native_one_cold, ops=n, baseline=BASELINE))  # fmt: skip

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
    run_threads_and_ingest(suite, native)

    if not suite.quick:  # the reference is ~50x slower than pyca: a few items are enough to place it
        ref_verifier = reference.Verifier()
        sample = envelopes[:8]

        def reference_one():
            for raw in sample:
                ref_verifier.verify_one(raw, NOW_MS)

        suite.run_group("verify", [Bench("verify.reference.verify_one", "reference Verifier.verify_one (pure Python)",
                                         reference_one, ops=len(sample), baseline=BASELINE)])  # fmt: skip


def _warm_hot_keys(verifier, corpus: Corpus) -> None:
    """Verify the corpus until each author's key has its fixed-base table (64 passes give each
    author at least 64 uses, the default threshold)."""
    for _ in range(64):
        if verifier.hot_keys_len() >= corpus.authors:
            return
        for raw in corpus.envelopes:
            verifier.verify_one(raw, NOW_MS)
    raise SystemExit(f"benchmark corpus: {verifier.hot_keys_len()} of {corpus.authors} keys got a table")


def run_threads_and_ingest(suite: Suite, native) -> None:
    """1024 intents per call: verify_batch on every core vs one thread, and the one-pass ingest
    (decode, id, dedupe, verify, body check, match) vs what it replaces (verify_batch, then per item
    decode_envelope and check_body, then match_envelopes), both against 40 subscriptions."""
    from node.envelope import decode
    from node.intents import check_body

    intents = make_intents(native, PER_CALL)
    index = native.MatchIndex(subscriptions(40))
    all_cores, one_core = native.Verifier(), native.Verifier(threads=1)
    held = native.Verifier()  # the same intents once committed: all remembered duplicates
    held.remember(held.ingest(intents, NOW_MS).ids)
    _check_ingest(native, all_cores, one_core, held, intents, index)
    helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-side-by-side")
    side_by_side = side_by_side_batch(native, intents, helper)
    if side_by_side() != one_core.verify_batch(intents, NOW_MS)[0]:
        raise SystemExit("benchmark: the side-by-side halves disagree with one verify_batch")

    def batch_all():
        all_cores.verify_batch(intents, NOW_MS)

    def batch_one():
        one_core.verify_batch(intents, NOW_MS)

    def one_pass():
        all_cores.ingest(intents, NOW_MS, index)

    def remembered():
        held.ingest(intents, NOW_MS, index)

    def separate():
        codes, _ = all_cores.verify_batch(intents, NOW_MS)
        accepted = []
        for raw, code in zip(intents, codes):
            if code == 0:
                check_body(decode(raw, native).body, backend=native)
                accepted.append(raw)
        index.match_envelopes(accepted)

    n = len(intents)
    try:
        suite.run_group("verify", [
            Bench(ONE_THREAD, f"native verify_batch, one thread ({n}/call)", batch_one, ops=n),
            Bench(THREADS, f"native verify_batch, {all_cores.threads} threads ({n}/call)",
                  batch_all, ops=n, baseline=ONE_THREAD),
            Bench(SIDE_BY_SIDE, f"two one-thread verify_batch calls side by side ({n // 2} each)", side_by_side,
                  ops=n, baseline=ONE_THREAD),
        ])  # fmt: skip
    finally:
        helper.shutdown()
    suite.run_group("ingest", [
        Bench(SEPARATE, f"verify_batch + decode + check_body + match ({n}/call)", separate, ops=n),
        Bench("ingest.native.pass", f"native Verifier.ingest, one pass ({n}/call)", one_pass, ops=n, baseline=SEPARATE),
        # A remembered duplicate is read from its framing, never decoded (envelope::framed).
        Bench("ingest.native.remembered", f"native Verifier.ingest, {n} remembered duplicates", remembered, ops=n,
              baseline="ingest.native.pass"),
    ])  # fmt: skip


def side_by_side_batch(native, intents: list[bytes], helper: ThreadPoolExecutor) -> Callable[[], bytes]:
    """One call's work split by hand: a one-thread Verifier on each half of ``intents``, the first
    on the calling thread while ``helper`` runs the second (both let go of the GIL). It gets from
    the machine's cores what two independent callers would, at that moment: when the hypervisor or
    a neighbour holds one core, it slows as much as the threaded call does. Returns the codes."""
    half = len(intents) // 2
    first, second = intents[:half], intents[half:]
    mine, theirs = native.Verifier(threads=1), native.Verifier(threads=1)

    def run() -> bytes:
        other = helper.submit(theirs.verify_batch, second, NOW_MS)
        codes, _ = mine.verify_batch(first, NOW_MS)
        return codes + other.result()[0]

    return run


def _check_ingest(native, all_cores, one_core, held, intents, index) -> None:
    """Both sides of each comparison must do the same work and accept everything (``held`` remembers
    every intent: all duplicates)."""
    from node.reasons import Reason

    if all_cores.verify_batch(intents, NOW_MS) != one_core.verify_batch(intents, NOW_MS):
        raise SystemExit("benchmark: threaded and one-thread verify_batch disagree")
    if held.ingest(intents, NOW_MS, index).codes != bytes([Reason.DUPLICATE]) * len(intents):
        raise SystemExit("benchmark: remembered intents are not all duplicates")
    result = all_cores.ingest(intents, NOW_MS, index)
    if result.codes != bytes(len(intents)):
        raise SystemExit(f"benchmark intents are not all accepted by ingest: codes {set(result.codes)}")
    flags, offsets, ids = index.match_envelopes(intents)
    if (result.match_offsets, result.match_ids) != (offsets, ids) or not ids:
        raise SystemExit("benchmark: ingest's matches differ from match_envelopes (or nothing matches)")


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
